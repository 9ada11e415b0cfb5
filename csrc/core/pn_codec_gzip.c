/*
 * pn_codec_gzip — the gzip content coding (RFC 9110 §8.4.1.3, RFC 1952)
 * with zlib: response encoder and request decoder behind pn_codec_ops
 * (pn_compress_codec.h).  Without PN_HAVE_ZLIB, a stub table.
 */
#include "pn_compress_codec.h"

#ifdef PN_HAVE_ZLIB

#include <errno.h>
#include <stdlib.h>

#include <zlib.h>

/* zlib counts in uInt: inputs and output space are handed to it in slices
 * of at most this much (1 GiB, well inside 32 bits). */
#define GZIP_SLICE (1u << 30)

/* windowBits 15 + 16: a gzip wrapper (RFC 1952), not zlib's; for the
 * decoder, gzip only, so a raw or zlib stream is not "gzip". */
#define GZIP_WINDOW_BITS 31

typedef struct gzip_encoder {
    pn_encoder base;
    z_stream z;
} gzip_encoder;

typedef struct gzip_decoder {
    pn_decoder base;
    z_stream z;
} gzip_decoder;

/* zlib's allocator hooks, only to count its allocations. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    uint64_t *allocs = opaque;
    (*allocs)++;
    return calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    free(p);
}

/* ---- encoder ---------------------------------------------------------- */

static int gzip_enc_init(pn_encoder *e, const pn_compress_opts *opts, uint64_t *allocs)
{
    z_stream *z = &((gzip_encoder *)e)->z;
    z->zalloc = z_alloc;
    z->zfree = z_free;
    z->opaque = allocs;
    if (deflateInit2(z, opts->gzip_level, Z_DEFLATED, GZIP_WINDOW_BITS, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -ENOMEM;
    return 0;
}

static int gzip_enc_begin(pn_encoder *e, int64_t size)
{
    (void)size;
    return deflateReset(&((gzip_encoder *)e)->z) == Z_OK ? 0 : -EINVAL;
}

static int gzip_enc_write(pn_encoder *e, const unsigned char *p, size_t n, pn_flush mode,
                          pn_buf *out)
{
    z_stream *z = &((gzip_encoder *)e)->z;
    size_t room = pn_codec_first_room(n);
    do {
        /* Feed huge inputs in slices, flushing only after the last one. */
        uInt take = n > GZIP_SLICE ? GZIP_SLICE : (uInt)n;
        int last = take == n;
        int flush = !last                     ? Z_NO_FLUSH
                    : mode == PN_FLUSH_FINISH ? Z_FINISH
                    : mode == PN_FLUSH_SYNC   ? Z_SYNC_FLUSH
                                              : Z_NO_FLUSH;
        z->next_in = (Bytef *)p;
        z->avail_in = take;
        for (;;) {
            if (pn_buf_reserve(out, room) != 0)
                return -ENOMEM;
            size_t space = pn_buf_space(out);
            if (space > GZIP_SLICE)
                space = GZIP_SLICE;
            z->next_out = (Bytef *)pn_buf_tail(out);
            z->avail_out = (uInt)space;
            int rc = deflate(z, flush);
            out->len += space - z->avail_out;
            if (rc == Z_STREAM_END)
                break;
            if (rc != Z_OK && rc != Z_BUF_ERROR)
                return -EINVAL;
            /* Done when the input is in and, for a flush, zlib had room to
             * spare (zlib: avail_out == 0 means "call again"). */
            if (z->avail_in == 0 && (flush == Z_NO_FLUSH || z->avail_out != 0))
                break;
            if (z->avail_out == 0)
                room = space * 2;
        }
        p += take;
        n -= take;
    } while (n > 0);
    return 0;
}

static void gzip_enc_free(pn_encoder *e)
{
    deflateEnd(&((gzip_encoder *)e)->z);
}

/* ---- decoder ---------------------------------------------------------- */

static int gzip_dec_init(pn_decoder *d)
{
    return inflateInit2(&((gzip_decoder *)d)->z, GZIP_WINDOW_BITS) == Z_OK ? 0 : -ENOMEM;
}

static int gzip_dec_write(pn_decoder *d, const unsigned char *p, size_t n, pn_buf *out)
{
    z_stream *z = &((gzip_decoder *)d)->z;
    while (n > 0) {
        uInt take = n > GZIP_SLICE ? GZIP_SLICE : (uInt)n;
        z->next_in = (Bytef *)p;
        z->avail_in = take;
        for (;;) {
            if (d->ended) {
                if (z->avail_in == 0)
                    break;
                /* RFC 1952 §2.2: a gzip file is a series of members. */
                if (inflateReset(z) != Z_OK)
                    return d->status = PN_DECODE_BAD;
                d->ended = 0;
            }
            size_t room = pn_decode_room(d);
            if (pn_buf_reserve(out, room) != 0)
                return -ENOMEM;
            z->next_out = (Bytef *)pn_buf_tail(out);
            z->avail_out = (uInt)room;
            int rc = inflate(z, Z_NO_FLUSH);
            if (pn_decode_count(d, out, room - z->avail_out))
                return d->status;
            if (rc == Z_STREAM_END) {
                d->ended = 1;
                continue;
            }
            if (rc == Z_BUF_ERROR && z->avail_in == 0)
                break; /* needs more input */
            if (rc != Z_OK)
                return d->status = PN_DECODE_BAD;
            if (z->avail_in == 0 && z->avail_out != 0)
                break;
        }
        p += take;
        n -= take;
    }
    return 0;
}

static void gzip_dec_free(pn_decoder *d)
{
    inflateEnd(&((gzip_decoder *)d)->z);
}

const pn_codec_ops pn_codec_gzip = {
    .codec = PN_CODEC_GZIP,
    .name = "gzip",
    .available = 1,
    .enc_size = sizeof(gzip_encoder),
    .enc_init = gzip_enc_init,
    .enc_begin = gzip_enc_begin,
    .enc_write = gzip_enc_write,
    .enc_free = gzip_enc_free,
    .dec_size = sizeof(gzip_decoder),
    .dec_init = gzip_dec_init,
    .dec_write = gzip_dec_write,
    .dec_free = gzip_dec_free,
};

#else

const pn_codec_ops pn_codec_gzip = {.codec = PN_CODEC_GZIP, .name = "gzip"};

#endif
