/*
 * pn_codec_zstd — the zstd content coding (RFC 8878, RFC 9659) with
 * libzstd: response encoder and request decoder behind pn_codec_ops
 * (pn_compress_codec.h).  Without PN_HAVE_ZSTD, a stub table.
 */
#include "pn_compress_codec.h"

#ifdef PN_HAVE_ZSTD

#include <errno.h>
#include <string.h>

#include <zstd.h>

/* RFC 9659 §3: a zstd content coding must not need a window over 8 MiB, so
 * a decoder never allocates more than that for a hostile frame header. */
#define PN_ZSTD_WINDOW_LOG_MAX 23

/* The longest frame header (RFC 8878 §3.1.1.1): magic 4, descriptor 1,
 * window 1, dictionary ID 4, content size 8. */
#define ZSTD_HEADER_MAX 18

typedef struct zstd_encoder {
    pn_encoder base;
    ZSTD_CCtx *zc;
} zstd_encoder;

typedef struct zstd_decoder {
    pn_decoder base;
    ZSTD_DCtx *zd;
    int znew;                            /* the next input byte starts a frame */
    unsigned char zhdr[ZSTD_HEADER_MAX]; /* that frame's header, gathered (see zstd_read) */
    size_t zhdr_len;
} zstd_decoder;

/* ---- encoder ---------------------------------------------------------- */

static int zstd_enc_init(pn_encoder *e, const pn_compress_opts *opts, uint64_t *allocs)
{
    /* libzstd's allocations are not visible without its experimental API
     * (bench/compress_micro.c counts them). */
    (void)allocs;
    zstd_encoder *z = (zstd_encoder *)e;
    z->zc = ZSTD_createCCtx();
    if (z->zc &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(z->zc, ZSTD_c_compressionLevel, opts->zstd_level)))
        return 0;
    ZSTD_freeCCtx(z->zc);
    return -ENOMEM;
}

static int zstd_enc_begin(pn_encoder *e, int64_t size)
{
    ZSTD_CCtx *zc = ((zstd_encoder *)e)->zc;
    /* A session reset keeps the level and the workspace; only an unknown
     * size (a stream) needs the window capped, see the header. */
    if (ZSTD_isError(ZSTD_CCtx_reset(zc, ZSTD_reset_session_only)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_windowLog,
                                            size < 0 ? PN_COMPRESS_STREAM_WINDOW_LOG : 0)) ||
        ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(zc, size < 0 ? ZSTD_CONTENTSIZE_UNKNOWN
                                                              : (unsigned long long)size)))
        return -EINVAL;
    return 0;
}

static int zstd_enc_write(pn_encoder *e, const unsigned char *p, size_t n, pn_flush mode,
                          pn_buf *out)
{
    ZSTD_CCtx *zc = ((zstd_encoder *)e)->zc;
    ZSTD_inBuffer in = {p, n, 0};
    ZSTD_EndDirective d = mode == PN_FLUSH_FINISH ? ZSTD_e_end
                          : mode == PN_FLUSH_SYNC ? ZSTD_e_flush
                                                  : ZSTD_e_continue;
    size_t room = pn_codec_first_room(n);
    for (;;) {
        if (pn_buf_reserve(out, room) != 0)
            return -ENOMEM;
        size_t space = pn_buf_space(out);
        ZSTD_outBuffer o = {pn_buf_tail(out), space, 0};
        size_t r = ZSTD_compressStream2(zc, &o, &in, d);
        out->len += o.pos;
        if (ZSTD_isError(r))
            return -EINVAL;
        /* For flush and end, r is what is still buffered inside: 0 = done. */
        if (d == ZSTD_e_continue ? in.pos == in.size : r == 0)
            return 0;
        if (o.pos == space)
            room = space * 2;
    }
}

static void zstd_enc_free(pn_encoder *e)
{
    ZSTD_freeCCtx(((zstd_encoder *)e)->zc);
}

/* ---- decoder ---------------------------------------------------------- */

static int zstd_dec_init(pn_decoder *d)
{
    zstd_decoder *z = (zstd_decoder *)d;
    z->zd = ZSTD_createDCtx();
    z->znew = 1;
    if (z->zd &&
        !ZSTD_isError(ZSTD_DCtx_setParameter(z->zd, ZSTD_d_windowLogMax, PN_ZSTD_WINDOW_LOG_MAX)))
        return 0;
    ZSTD_freeDCtx(z->zd);
    return -ENOMEM;
}

/* Run libzstd on `in` until it is consumed and the output flushed, or until
 * a frame ends (then the next byte starts a frame: z->znew). */
static int zstd_run(zstd_decoder *z, ZSTD_inBuffer *in, pn_buf *out)
{
    pn_decoder *d = &z->base;
    for (;;) {
        size_t room = pn_decode_room(d);
        if (pn_buf_reserve(out, room) != 0)
            return -ENOMEM;
        ZSTD_outBuffer o = {pn_buf_tail(out), room, 0};
        size_t in_before = in->pos;
        size_t r = ZSTD_decompressStream(z->zd, &o, in);
        if (ZSTD_isError(r))
            return d->status = PN_DECODE_BAD;
        if (pn_decode_count(d, out, o.pos))
            return d->status;
        /* r == 0: the frame ended and is fully flushed.  Return to let
         * zstd_read gather the next frame's header; this also never calls
         * libzstd with no input at a boundary, where it would answer the
         * next header's size without making progress. */
        if (r == 0) {
            d->ended = 1;
            z->znew = 1;
            return 0;
        }
        if (o.pos > 0 || in->pos > in_before)
            d->ended = 0;
        if (in->pos == in->size && o.pos < o.size)
            return 0;
    }
}

/* Size of the frame header that starts with h[0..n), or 0 if n bytes do not
 * tell yet; -1 if it is neither a Zstandard nor a skippable frame.  RFC 8878
 * §3.1.1.1 (Frame_Header_Descriptor) and §3.1.2. */
static int zstd_header_size(const unsigned char *h, size_t n)
{
    if (n < 4)
        return 0;
    uint32_t m = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    if ((m & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START)
        return 8; /* magic, Frame_Size */
    if (m != ZSTD_MAGICNUMBER)
        return -1;
    if (n < 5)
        return 0;
    static const int did[4] = {0, 1, 2, 4}, fcs[4] = {0, 2, 4, 8};
    unsigned fhd = h[4], single = (fhd >> 5) & 1;
    return 5 + !single + did[fhd & 3] + (fhd >> 6 == 0 ? (int)single : fcs[fhd >> 6]);
}

/* Each frame's header is gathered here and given to libzstd whole, in one
 * call of its own, after checking that the frame starts with the Zstandard
 * or a skippable magic number (RFC 8878 §3.1).  Found by
 * fuzz/fuzz_decompress.c; with libzstd 1.5.4 as Debian builds it:
 *  - legacy support decodes the pre-1.0 formats too, whose decoders ignore
 *    ZSTD_d_windowLogMax: a 13-byte v0.7 frame made it allocate a 128 MiB
 *    window.  They are not the "zstd" content coding; now they are BAD.
 *  - when a header arrives over several calls, its "single-pass" shortcut
 *    re-parses the frame from the start of the LAST call's input, i.e. from
 *    the middle of the header: bytes there that look like a whole frame were
 *    decoded in place of the real one, so the result depended on how the
 *    body was split.  A header fed in one call of its own starts at the
 *    frame's first byte and holds no block, so the shortcut never fires. */
static int zstd_read(pn_decoder *d, const unsigned char *p, size_t n, pn_buf *out)
{
    zstd_decoder *z = (zstd_decoder *)d;
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        if (z->znew) {
            /* Byte by byte until the size is known (5 bytes at most), then
             * the rest: need <= sizeof(z->zhdr). */
            int need;
            while ((need = zstd_header_size(z->zhdr, z->zhdr_len)) == 0 && in.pos < in.size)
                z->zhdr[z->zhdr_len++] = p[in.pos++];
            if (need < 0)
                return d->status = PN_DECODE_BAD;
            if (need > 0) {
                size_t take = (size_t)need - z->zhdr_len;
                if (take > in.size - in.pos)
                    take = in.size - in.pos;
                memcpy(z->zhdr + z->zhdr_len, p + in.pos, take);
                z->zhdr_len += take;
                in.pos += take;
            }
            if (z->zhdr_len == 0)
                return 0;
            d->ended = 0; /* inside a frame: ending here is truncation */
            if (need == 0 || z->zhdr_len < (size_t)need)
                return 0;
            z->znew = 0;
            ZSTD_inBuffer head = {z->zhdr, z->zhdr_len, 0};
            z->zhdr_len = 0;
            int rc = zstd_run(z, &head, out);
            if (rc != 0)
                return rc;
            continue; /* an empty skippable frame ends with its header */
        }
        int rc = zstd_run(z, &in, out);
        if (rc != 0 || in.pos == in.size)
            return rc;
        /* A frame ended inside this piece: the next one starts here. */
    }
}

static void zstd_dec_free(pn_decoder *d)
{
    ZSTD_freeDCtx(((zstd_decoder *)d)->zd);
}

const pn_codec_ops pn_codec_zstd = {
    .codec = PN_CODEC_ZSTD,
    .name = "zstd",
    .available = 1,
    .enc_size = sizeof(zstd_encoder),
    .enc_init = zstd_enc_init,
    .enc_begin = zstd_enc_begin,
    .enc_write = zstd_enc_write,
    .enc_free = zstd_enc_free,
    .dec_size = sizeof(zstd_decoder),
    .dec_init = zstd_dec_init,
    .dec_write = zstd_read,
    .dec_free = zstd_dec_free,
};

#else

const pn_codec_ops pn_codec_zstd = {.codec = PN_CODEC_ZSTD, .name = "zstd"};

#endif
