/*
 * pn_ws_deflate — permessage-deflate (RFC 7692) over zlib.  See the header.
 */
#include "pn_ws_deflate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void pn_ws_deflate_init(pn_ws_deflate *d, const pn_ws_deflate_params *params, int level,
                        int mem_level)
{
    memset(d, 0, sizeof *d);
    d->params = *params;
    d->level = level;
    d->mem_level = mem_level;
}

#ifdef PN_HAVE_ZLIB

#include <zlib.h>

/* RFC 7692 §7.2.1: the sync flush ends with this empty stored block; the
 * sender removes it and the receiver appends it again. */
static const uint8_t TAIL[4] = {0x00, 0x00, 0xff, 0xff};

/* Output is produced in steps of at most this much buffer space. */
enum { STEP = 16384 };

int pn_ws_deflate_available(void)
{
    return 1;
}

void pn_ws_deflate_free(pn_ws_deflate *d)
{
    if (d->tx) {
        deflateEnd(d->tx);
        free(d->tx);
    }
    if (d->rx) {
        inflateEnd(d->rx);
        free(d->rx);
    }
    d->tx = d->rx = NULL;
}

static int tx_stream(pn_ws_deflate *d, z_stream **out)
{
    if (!d->tx) {
        z_stream *z = calloc(1, sizeof *z);
        if (!z)
            return PN_WS_DEFLATE_NOMEM;
        int wbits = d->params.server_max_window_bits;
        /* zlib refuses raw deflate with an 8-bit window. */
        if (wbits < 9 || wbits > 15)
            wbits = 15;
        if (deflateInit2(z, d->level, Z_DEFLATED, -wbits, d->mem_level, Z_DEFAULT_STRATEGY) !=
            Z_OK) {
            free(z);
            return PN_WS_DEFLATE_NOMEM;
        }
        d->tx = z;
    }
    *out = d->tx;
    return 0;
}

static int rx_stream(pn_ws_deflate *d, z_stream **out)
{
    if (!d->rx) {
        z_stream *z = calloc(1, sizeof *z);
        if (!z)
            return PN_WS_DEFLATE_NOMEM;
        /* Always a 32 KiB window, whatever the client said it would use:
         * zlib does not enforce a smaller window strictly (a distance past
         * it is accepted or refused depending on how the input happens to
         * be split into reads — found by fuzz_ws_frame), and a full window
         * decodes every valid stream the same way, however it arrives. */
        int wbits = 15;
        if (inflateInit2(z, -wbits) != Z_OK) {
            free(z);
            return PN_WS_DEFLATE_NOMEM;
        }
        d->rx = z;
    }
    *out = d->rx;
    return 0;
}

int pn_ws_deflate_message(pn_ws_deflate *d, const void *in, size_t n, pn_buf *out)
{
    z_stream *z;
    int rc = tx_stream(d, &z);
    if (rc)
        return rc;
    size_t start = out->len;
    z->next_in = (Bytef *)(uintptr_t)in;
    /* z_stream counts in uInt; feed huge messages in slices. */
    size_t left = n;
    for (;;) {
        uInt slice = left > 0x40000000u ? 0x40000000u : (uInt)left;
        z->avail_in = slice;
        left -= slice;
        int flush = left ? Z_NO_FLUSH : Z_SYNC_FLUSH;
        do {
            size_t want = (size_t)deflateBound(z, z->avail_in) + 16;
            if (want > STEP)
                want = STEP;
            if (pn_buf_reserve(out, want) != 0)
                return PN_WS_DEFLATE_NOMEM;
            z->next_out = (Bytef *)pn_buf_tail(out);
            z->avail_out = (uInt)pn_buf_space(out);
            size_t space = z->avail_out;
            int zr = deflate(z, flush);
            /* Z_BUF_ERROR: no progress possible (nothing new to flush). */
            if (zr != Z_OK && zr != Z_BUF_ERROR)
                return PN_WS_DEFLATE_NOMEM;
            out->len += space - z->avail_out;
            if (zr == Z_BUF_ERROR)
                break;
        } while (z->avail_in > 0 || z->avail_out == 0);
        if (!left)
            break;
    }
    /* Strip the sync flush's empty stored block (RFC 7692 §7.2.1). */
    if (out->len - start >= sizeof TAIL &&
        memcmp(out->data + out->len - sizeof TAIL, TAIL, sizeof TAIL) == 0)
        out->len -= sizeof TAIL;
    /* Nothing left (an empty message after an earlier flush): send one
     * 0x00, the header of an empty stored block (§7.2.3.6).  An empty
     * payload would make the receiver's appended 00 00 ff ff start a block
     * of its own and misread the next message. */
    if (out->len == start) {
        if (pn_buf_append(out, TAIL, 1) != 0)
            return PN_WS_DEFLATE_NOMEM;
    }
    if (d->params.server_no_context_takeover)
        deflateReset(z);
    return PN_WS_DEFLATE_OK;
}

/* Inflate in[0..n) into out, counting against the message cap. */
static int inflate_some(pn_ws_deflate *d, z_stream *z, const void *in, size_t n, pn_buf *out,
                        uint64_t max_message)
{
    z->next_in = (Bytef *)(uintptr_t)in;
    size_t left = n;
    z->avail_in = 0;
    for (;;) {
        if (z->avail_in == 0 && left) {
            /* z_stream counts in uInt; feed huge pieces in slices. */
            uInt slice = left > 0x40000000u ? 0x40000000u : (uInt)left;
            z->avail_in = slice;
            left -= slice;
        }
        size_t want = STEP;
        /* Never room for more than one byte over the cap, so a bomb stops
         * after at most one step of output. */
        if (max_message && max_message - d->rx_total < want - 1)
            want = (size_t)(max_message - d->rx_total) + 1;
        if (pn_buf_reserve(out, want) != 0)
            return PN_WS_DEFLATE_NOMEM;
        z->next_out = (Bytef *)pn_buf_tail(out);
        z->avail_out = (uInt)want;
        int zr = inflate(z, Z_SYNC_FLUSH);
        size_t got = want - z->avail_out;
        out->len += got;
        d->rx_total += got;
        if (max_message && d->rx_total > max_message)
            return PN_WS_DEFLATE_TOO_BIG;
        if (zr == Z_STREAM_END) {
            /* The peer ended the stream with a BFINAL block.  What follows
             * (at least our appended tail) starts a fresh stream; a peer that
             * does this keeps no context either. */
            inflateReset(z);
        } else if (zr == Z_MEM_ERROR) {
            return PN_WS_DEFLATE_NOMEM;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            return PN_WS_DEFLATE_BAD_DATA;
        }
        /* Done when all input is in and the output did not fill up (a full
         * output buffer may mean more output is pending). */
        if (z->avail_in == 0 && !left && (z->avail_out != 0 || zr == Z_BUF_ERROR))
            return PN_WS_DEFLATE_OK;
    }
}

int pn_ws_inflate(pn_ws_deflate *d, const void *in, size_t n, int fin, pn_buf *out,
                  uint64_t max_message)
{
    z_stream *z;
    int rc = rx_stream(d, &z);
    if (rc)
        return rc;
    rc = inflate_some(d, z, in, n, out, max_message);
    d->rx_in += n;
    /* An entirely empty payload is an empty message; appending the tail to
     * it would leave the stream inside a stored block header. */
    if (rc == PN_WS_DEFLATE_OK && fin && d->rx_in)
        rc = inflate_some(d, z, TAIL, sizeof TAIL, out, max_message);
    if (fin || rc != PN_WS_DEFLATE_OK)
        d->rx_total = d->rx_in = 0;
    if (rc == PN_WS_DEFLATE_OK && fin && d->params.client_no_context_takeover)
        inflateReset(z);
    return rc;
}

#else /* !PN_HAVE_ZLIB */

int pn_ws_deflate_available(void)
{
    return 0;
}

void pn_ws_deflate_free(pn_ws_deflate *d)
{
    (void)d;
}

int pn_ws_deflate_message(pn_ws_deflate *d, const void *in, size_t n, pn_buf *out)
{
    (void)d, (void)in, (void)n, (void)out;
    return PN_WS_DEFLATE_UNAVAILABLE;
}

int pn_ws_inflate(pn_ws_deflate *d, const void *in, size_t n, int fin, pn_buf *out,
                  uint64_t max_message)
{
    (void)d, (void)in, (void)n, (void)fin, (void)out, (void)max_message;
    return PN_WS_DEFLATE_UNAVAILABLE;
}

#endif
