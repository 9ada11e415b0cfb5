/*
 * pn_compress_codec — the interface between pn_compress.c (names, the
 * per-worker encoder pool, decoders) and the codec files pn_codec_gzip.c,
 * pn_codec_zstd.c and pn_codec_br.c.  Private to the protocol core: users
 * include pn_compress.h.
 *
 * In the manner of h2o's h2o_compress_context_t, each codec is one file
 * that fills one pn_codec_ops table.  A codec whose library is absent at
 * build time (no PN_HAVE_ZLIB, PN_HAVE_ZSTD or PN_HAVE_BROTLI) compiles to
 * a stub table, available = 0 and no functions, so nothing outside its own
 * file tests the PN_HAVE_* macro or switches on the codec.
 *
 * Objects: a codec's encoder (decoder) is a struct of its own whose FIRST
 * member is the generic pn_encoder (pn_decoder).  pn_compress.c allocates
 * enc_size (dec_size) zeroed bytes, fills the generic part, and passes the
 * generic pointer to the ops, which cast it back.
 *
 * Threads: as pn_compress.h.  An encoder, its pool and a decoder belong to
 * one worker thread; the ops tables are const.
 */
#ifndef PN_COMPRESS_CODEC_H
#define PN_COMPRESS_CODEC_H

#include "pn_compress.h"

typedef struct pn_codec_ops pn_codec_ops;

/* What every encoder has; owned by pn_compress.c. */
struct pn_encoder {
    const pn_codec_ops *ops;
    pn_compress_pool *pool;
    pn_encoder *next; /* idle list */
    int finished, dead;
    int64_t size; /* pledged total or PN_SIZE_UNKNOWN */
};

/* What every decoder has.  The codec's dec_write reads and sets `ended` and
 * sets `status` (through pn_decode_count, or when the data is bad). */
struct pn_decoder {
    const pn_codec_ops *ops;
    int ended;  /* the input so far ends at a member/frame/stream boundary */
    int status; /* sticky PN_DECODE_TOO_BIG / PN_DECODE_BAD */
    uint64_t max, total, total_in;
};

struct pn_codec_ops {
    pn_codec codec;
    const char *name; /* the Content-Encoding token */
    int available;    /* 0: a stub, the library was absent at build time */

    /* Encoders (responses), pooled per worker. */
    size_t enc_size;
    /* Once per encoder, on a pool miss: allocate the library state.  The
     * allocations the library reports go to *allocs.  0 or -ENOMEM (the
     * state is released again on failure). */
    int (*enc_init)(pn_encoder *e, const pn_compress_opts *opts, uint64_t *allocs);
    /* Per response: reset for a body of `size` bytes (or PN_SIZE_UNKNOWN). */
    int (*enc_begin)(pn_encoder *e, int64_t size);
    /* Compress p[0..n) (p is never NULL) and append to out; 0, -ENOMEM or
     * -EINVAL. */
    int (*enc_write)(pn_encoder *e, const unsigned char *p, size_t n, pn_flush mode, pn_buf *out);
    /* The encoder goes back to the idle list (may be NULL). */
    void (*enc_idle)(pn_encoder *e);
    /* Release the library state (not e itself). */
    void (*enc_free)(pn_encoder *e);

    /* Decoders (request bodies), one per request. */
    size_t dec_size;
    int (*dec_init)(pn_decoder *d); /* 0 or -ENOMEM (nothing to free then) */
    /* Decode p[0..n) (p is never NULL), appending to out: 0, or -ENOMEM, or
     * d->status once it is set. */
    int (*dec_write)(pn_decoder *d, const unsigned char *p, size_t n, pn_buf *out);
    void (*dec_free)(pn_decoder *d);
};

extern const pn_codec_ops pn_codec_gzip, pn_codec_zstd, pn_codec_br;

/* ---- helpers the codec files share ------------------------------------ */

static inline int pn_codec_clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Output space an encoder asks for first: compressed text is usually well
 * under half of its input; the write loops grow `out` when it is not. */
static inline size_t pn_codec_first_room(size_t n)
{
    return n / 2 + 256;
}

/* Decode in slices of at most this much, so the cap is checked often. */
#define PN_DECODE_SLICE ((size_t)64 << 10)

/* Room for a decoder's next slice of output: one byte more than the cap
 * allows, so that overshooting is seen without ever writing much past it. */
static inline size_t pn_decode_room(const pn_decoder *d)
{
    if (d->max == 0)
        return PN_DECODE_SLICE;
    uint64_t left = d->max - d->total + 1;
    return left < PN_DECODE_SLICE ? (size_t)left : PN_DECODE_SLICE;
}

/* Account for `got` new bytes at the tail of out; 1 when the cap is
 * exceeded (d->status is then PN_DECODE_TOO_BIG). */
static inline int pn_decode_count(pn_decoder *d, pn_buf *out, size_t got)
{
    out->len += got;
    d->total += got;
    if (d->max && d->total > d->max) {
        d->status = PN_DECODE_TOO_BIG;
        return 1;
    }
    return 0;
}

#endif
