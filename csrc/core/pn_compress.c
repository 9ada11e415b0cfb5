/*
 * pn_compress — see pn_compress.h for the contract.  This file holds the
 * codec names, the per-worker encoder pool, the three encoders, the three
 * request decoders and the "should we compress" policy.
 */
#include "pn_compress.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifdef PN_HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef PN_HAVE_ZSTD
#include <zstd.h>
#endif
#ifdef PN_HAVE_BROTLI
#include <brotli/decode.h>
#include <brotli/encode.h>
#endif

/* ---- small string helpers --------------------------------------------- */

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int ieq(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++)
        if (lower((unsigned char)a[i]) != b[i])
            return 0;
    return 1;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Trim optional whitespace (RFC 9110 §5.6.3) from both ends of [*p, *p+*n). */
static void trim(const char **p, size_t *n)
{
    while (*n && is_ows(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && is_ows((*p)[*n - 1]))
        (*n)--;
}

/* Next comma-separated element of [*s, end); empty elements are returned
 * too (the caller skips them, RFC 9110 §5.6.1).  0 at the end. */
static int next_elem(const char **s, const char *end, const char **e, size_t *en)
{
    if (*s > end)
        return 0;
    const char *c = memchr(*s, ',', (size_t)(end - *s));
    const char *stop = c ? c : end;
    *e = *s;
    *en = (size_t)(stop - *s);
    trim(e, en);
    *s = c ? c + 1 : end + 1;
    return 1;
}

/* ---- codec names ------------------------------------------------------- */

const char *pn_codec_name(pn_codec c)
{
    switch (c) {
    case PN_CODEC_GZIP:
        return "gzip";
    case PN_CODEC_ZSTD:
        return "zstd";
    case PN_CODEC_BR:
        return "br";
    case PN_CODEC_IDENTITY:
        break;
    }
    return "identity";
}

int pn_codec_available(pn_codec c)
{
    switch (c) {
    case PN_CODEC_IDENTITY:
        return 1;
    case PN_CODEC_GZIP:
#ifdef PN_HAVE_ZLIB
        return 1;
#else
        return 0;
#endif
    case PN_CODEC_ZSTD:
#ifdef PN_HAVE_ZSTD
        return 1;
#else
        return 0;
#endif
    case PN_CODEC_BR:
#ifdef PN_HAVE_BROTLI
        return 1;
#else
        return 0;
#endif
    }
    return 0;
}

#ifdef PN_HAVE_ZSTD
#define PN_ZSTD_NAME ",zstd"
#else
#define PN_ZSTD_NAME ""
#endif
#ifdef PN_HAVE_BROTLI
#define PN_BR_NAME ",br"
#else
#define PN_BR_NAME ""
#endif
#ifdef PN_HAVE_ZLIB
#define PN_GZIP_NAME ",gzip"
#else
#define PN_GZIP_NAME ""
#endif

const char *pn_compress_codecs(void)
{
    static const char list[] = "" PN_ZSTD_NAME PN_BR_NAME PN_GZIP_NAME;
    return list[0] ? list + 1 : list;
}

int pn_codec_from_token(const char *s, size_t n)
{
    /* RFC 9110 §8.4.1.3: x-gzip is an alias a recipient should accept. */
    if (ieq(s, n, "gzip") || ieq(s, n, "x-gzip"))
        return PN_CODEC_GZIP;
    if (ieq(s, n, "zstd"))
        return PN_CODEC_ZSTD;
    if (ieq(s, n, "br"))
        return PN_CODEC_BR;
    return -1;
}

int pn_codec_parse_order(const char *s, pn_codec *order, size_t *norder, const char **bad,
                         size_t *badlen)
{
    const char *end = s + strlen(s), *e;
    size_t en, n = 0;
    unsigned seen = 0;
    while (next_elem(&s, end, &e, &en)) {
        if (en == 0)
            continue;
        int c = pn_codec_from_token(e, en);
        if (c < 0 || (seen & (1u << c))) {
            if (bad)
                *bad = e;
            if (badlen)
                *badlen = en;
            return -EINVAL;
        }
        seen |= 1u << c;
        if (pn_codec_available((pn_codec)c))
            order[n++] = (pn_codec)c;
    }
    *norder = n;
    return 0;
}

/* ---- encoders ---------------------------------------------------------- */

#ifdef PN_HAVE_BROTLI
/* Brotli has no reset, so its state is re-created per response.  This cache
 * makes that allocation-free after warm-up: blocks freed by the old state are
 * kept and handed to the new one (which asks for the same sizes, in the same
 * order, for the same quality).  Bounded by PN_BR_SLOTS blocks and
 * PN_BR_CACHE_MAX bytes; anything beyond goes straight to malloc/free. */
enum { PN_BR_SLOTS = 64 }; /* libbrotli 1.2 holds more blocks than 1.0 */
#define PN_BR_CACHE_MAX ((size_t)16 << 20)

typedef struct pn_br_block {
    void *p;
    size_t n;
    int used;
} pn_br_block;

typedef struct pn_br_cache {
    pn_br_block b[PN_BR_SLOTS];
    int nb;
    size_t bytes;
    uint64_t *allocs; /* the pool's lib_allocs counter */
} pn_br_cache;

static void *br_alloc(void *opaque, size_t n)
{
    pn_br_cache *c = opaque;
    int best = -1;
    for (int i = 0; i < c->nb; i++)
        if (!c->b[i].used && c->b[i].n >= n && (best < 0 || c->b[i].n < c->b[best].n))
            best = i;
    if (best >= 0) {
        c->b[best].used = 1;
        return c->b[best].p;
    }
    void *p = malloc(n);
    if (p == NULL)
        return NULL;
    (*c->allocs)++;
    if (c->nb < PN_BR_SLOTS && c->bytes + n <= PN_BR_CACHE_MAX) {
        c->b[c->nb++] = (pn_br_block){p, n, 1};
        c->bytes += n;
    }
    return p;
}

static void br_free(void *opaque, void *p)
{
    pn_br_cache *c = opaque;
    if (p == NULL)
        return;
    for (int i = 0; i < c->nb; i++)
        if (c->b[i].p == p) {
            c->b[i].used = 0;
            return;
        }
    free(p);
}

static void br_cache_clear(pn_br_cache *c)
{
    for (int i = 0; i < c->nb; i++)
        free(c->b[i].p);
    c->nb = 0;
    c->bytes = 0;
}
#endif

struct pn_encoder {
    pn_compress_pool *pool;
    pn_encoder *next; /* idle list */
    pn_codec codec;
    int finished, dead;
    int64_t size; /* pledged total or PN_SIZE_UNKNOWN */
#ifdef PN_HAVE_ZLIB
    z_stream z;
#endif
#ifdef PN_HAVE_ZSTD
    ZSTD_CCtx *zc;
#endif
#ifdef PN_HAVE_BROTLI
    BrotliEncoderState *br;
    pn_br_cache cache;
#endif
};

struct pn_compress_pool {
    pn_compress_opts opts;
    pn_encoder *idle[PN_CODEC_COUNT];
    int nidle[PN_CODEC_COUNT];
    pn_compress_stats st;
};

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int pn_compress_pool_new(pn_compress_pool **out, const pn_compress_opts *opts)
{
    pn_compress_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    pn_compress_opts d = PN_COMPRESS_OPTS_DEFAULT;
    if (opts)
        d = *opts;
    d.gzip_level = clamp(d.gzip_level, 1, 9);
    d.zstd_level = clamp(d.zstd_level, 1, 19);
    d.brotli_quality = clamp(d.brotli_quality, 0, 11);
    if (d.max_idle <= 0)
        d.max_idle = 4;
    p->opts = d;
    *out = p;
    return 0;
}

static void encoder_destroy(pn_encoder *e)
{
    switch (e->codec) {
    case PN_CODEC_GZIP:
#ifdef PN_HAVE_ZLIB
        deflateEnd(&e->z);
#endif
        break;
    case PN_CODEC_ZSTD:
#ifdef PN_HAVE_ZSTD
        ZSTD_freeCCtx(e->zc);
#endif
        break;
    case PN_CODEC_BR:
#ifdef PN_HAVE_BROTLI
        if (e->br)
            BrotliEncoderDestroyInstance(e->br);
        br_cache_clear(&e->cache);
#endif
        break;
    case PN_CODEC_IDENTITY:
        break;
    }
    e->pool->st.destroyed++;
    free(e);
}

void pn_compress_pool_free(pn_compress_pool *pool)
{
    if (pool == NULL)
        return;
    for (int c = 0; c < PN_CODEC_COUNT; c++) {
        pn_encoder *e = pool->idle[c];
        while (e) {
            pn_encoder *next = e->next;
            encoder_destroy(e);
            e = next;
        }
    }
    free(pool);
}

void pn_compress_pool_stats(const pn_compress_pool *pool, pn_compress_stats *st)
{
    *st = pool->st;
}

pn_codec pn_encoder_codec(const pn_encoder *e)
{
    return e->codec;
}

#ifdef PN_HAVE_ZLIB
/* zlib's allocator hooks, only to count its allocations. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    pn_compress_pool *pool = opaque;
    pool->st.lib_allocs++;
    return calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    free(p);
}
#endif

/* The first, allocating half of an encoder's life: only on a pool miss. */
static pn_encoder *encoder_create(pn_compress_pool *pool, pn_codec codec)
{
    pn_encoder *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->pool = pool;
    e->codec = codec;
    switch (codec) {
    case PN_CODEC_GZIP:
#ifdef PN_HAVE_ZLIB
        e->z.zalloc = z_alloc;
        e->z.zfree = z_free;
        e->z.opaque = pool;
        /* windowBits 31 = 15 + 16: a gzip wrapper (RFC 1952), not zlib's. */
        if (deflateInit2(&e->z, pool->opts.gzip_level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) ==
            Z_OK)
            goto ok;
#endif
        break;
    case PN_CODEC_ZSTD:
#ifdef PN_HAVE_ZSTD
        e->zc = ZSTD_createCCtx();
        if (e->zc && !ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_compressionLevel,
                                                          pool->opts.zstd_level)))
            goto ok;
        ZSTD_freeCCtx(e->zc);
#endif
        break;
    case PN_CODEC_BR:
#ifdef PN_HAVE_BROTLI
        e->cache.allocs = &pool->st.lib_allocs;
        goto ok; /* the state itself is made per response */
#endif
        break;
    case PN_CODEC_IDENTITY:
        break;
    }
    free(e);
    return NULL;
#if defined(PN_HAVE_ZLIB) || defined(PN_HAVE_ZSTD) || defined(PN_HAVE_BROTLI)
ok:
    pool->st.created++;
    return e;
#endif
}

#ifdef PN_HAVE_BROTLI
static int ceil_log2(uint64_t v)
{
    int l = 0;
    while (l < 63 && ((uint64_t)1 << l) < v)
        l++;
    return l;
}
#endif

/* Prepare an encoder (new or idle) for a response: reset, not re-create. */
static int encoder_begin(pn_encoder *e, int64_t size)
{
    e->finished = e->dead = 0;
    e->size = size;
    switch (e->codec) {
    case PN_CODEC_GZIP:
#ifdef PN_HAVE_ZLIB
        return deflateReset(&e->z) == Z_OK ? 0 : -EINVAL;
#endif
        break;
    case PN_CODEC_ZSTD:
#ifdef PN_HAVE_ZSTD
        /* A session reset keeps the level and the workspace; only an unknown
         * size (a stream) needs the window capped, see the header. */
        if (ZSTD_isError(ZSTD_CCtx_reset(e->zc, ZSTD_reset_session_only)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_windowLog,
                                                size < 0 ? PN_COMPRESS_STREAM_WINDOW_LOG : 0)) ||
            ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(e->zc, size < 0 ? ZSTD_CONTENTSIZE_UNKNOWN
                                                                     : (unsigned long long)size)))
            return -EINVAL;
        return 0;
#endif
        break;
    case PN_CODEC_BR:
#ifdef PN_HAVE_BROTLI
    {
        if (e->br)
            BrotliEncoderDestroyInstance(e->br);
        e->br = BrotliEncoderCreateInstance(br_alloc, br_free, &e->cache);
        if (e->br == NULL)
            return -ENOMEM;
        int lgwin = PN_COMPRESS_STREAM_WINDOW_LOG;
        if (size >= 0)
            lgwin = clamp(ceil_log2((uint64_t)size), BROTLI_MIN_WINDOW_BITS, 22);
        BrotliEncoderSetParameter(e->br, BROTLI_PARAM_QUALITY,
                                  (uint32_t)e->pool->opts.brotli_quality);
        BrotliEncoderSetParameter(e->br, BROTLI_PARAM_LGWIN, (uint32_t)lgwin);
        /* The hint is rounded up to the window size: newer libbrotli sizes
         * its buffers from it, and a few size classes keep the block cache
         * hitting (an exact hint allocates anew for every body length). */
        if (size >= 0)
            BrotliEncoderSetParameter(e->br, BROTLI_PARAM_SIZE_HINT, (uint32_t)1 << lgwin);
        return 0;
    }
#endif
    break;
    case PN_CODEC_IDENTITY:
        break;
    }
    return -EINVAL;
}

pn_encoder *pn_encoder_get(pn_compress_pool *pool, pn_codec codec, int64_t size)
{
    if (codec == PN_CODEC_IDENTITY || !pn_codec_available(codec))
        return NULL;
    pn_encoder *e = pool->idle[codec];
    if (e) {
        pool->idle[codec] = e->next;
        pool->nidle[codec]--;
    } else {
        e = encoder_create(pool, codec);
        if (e == NULL)
            return NULL;
    }
    e->next = NULL;
    if (encoder_begin(e, size) != 0) {
        encoder_destroy(e);
        return NULL;
    }
    pool->st.taken++;
    return e;
}

void pn_encoder_put(pn_encoder *e)
{
    if (e == NULL)
        return;
    pn_compress_pool *pool = e->pool;
    if (pool->nidle[e->codec] >= pool->opts.max_idle) {
        encoder_destroy(e);
        return;
    }
#ifdef PN_HAVE_BROTLI
    if (e->codec == PN_CODEC_BR && e->br) {
        /* Free the state now, so its blocks wait in the cache, not in use. */
        BrotliEncoderDestroyInstance(e->br);
        e->br = NULL;
    }
#endif
    e->next = pool->idle[e->codec];
    pool->idle[e->codec] = e;
    pool->nidle[e->codec]++;
}

#if defined(PN_HAVE_ZLIB) || defined(PN_HAVE_ZSTD) || defined(PN_HAVE_BROTLI)
/* Output space to ask for first: compressed text is usually well under half
 * of its input; the loops below grow `out` when it is not. */
static size_t first_room(size_t n)
{
    return n / 2 + 256;
}
#endif

#ifdef PN_HAVE_ZLIB
static int gzip_write(pn_encoder *e, const unsigned char *p, size_t n, pn_flush mode, pn_buf *out)
{
    z_stream *z = &e->z;
    size_t room = first_room(n);
    do {
        /* zlib counts in uInt: feed huge inputs in slices, flushing only after
         * the last one. */
        uInt take = n > (1u << 30) ? (1u << 30) : (uInt)n;
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
            if (space > (1u << 30))
                space = 1u << 30;
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
#endif

#ifdef PN_HAVE_ZSTD
static int zstd_write(pn_encoder *e, const unsigned char *p, size_t n, pn_flush mode, pn_buf *out)
{
    ZSTD_inBuffer in = {p, n, 0};
    ZSTD_EndDirective d = mode == PN_FLUSH_FINISH ? ZSTD_e_end
                          : mode == PN_FLUSH_SYNC ? ZSTD_e_flush
                                                  : ZSTD_e_continue;
    size_t room = first_room(n);
    for (;;) {
        if (pn_buf_reserve(out, room) != 0)
            return -ENOMEM;
        size_t space = pn_buf_space(out);
        ZSTD_outBuffer o = {pn_buf_tail(out), space, 0};
        size_t r = ZSTD_compressStream2(e->zc, &o, &in, d);
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
#endif

#ifdef PN_HAVE_BROTLI
static int br_write(pn_encoder *e, const unsigned char *p, size_t n, pn_flush mode, pn_buf *out)
{
    BrotliEncoderOperation op = mode == PN_FLUSH_FINISH ? BROTLI_OPERATION_FINISH
                                : mode == PN_FLUSH_SYNC ? BROTLI_OPERATION_FLUSH
                                                        : BROTLI_OPERATION_PROCESS;
    size_t avail_in = n;
    const uint8_t *next_in = p;
    size_t room = first_room(n);
    for (;;) {
        if (pn_buf_reserve(out, room) != 0)
            return -ENOMEM;
        size_t space = pn_buf_space(out), avail_out = space;
        uint8_t *next_out = (uint8_t *)pn_buf_tail(out);
        if (!BrotliEncoderCompressStream(e->br, op, &avail_in, &next_in, &avail_out, &next_out,
                                         NULL))
            return -EINVAL;
        out->len += space - avail_out;
        if (op == BROTLI_OPERATION_FINISH  ? BrotliEncoderIsFinished(e->br)
            : op == BROTLI_OPERATION_FLUSH ? avail_in == 0 && !BrotliEncoderHasMoreOutput(e->br)
                                           : avail_in == 0)
            return 0;
        if (avail_out == 0)
            room = space * 2;
    }
}
#endif

int pn_encoder_write(pn_encoder *e, const void *p, size_t n, pn_flush mode, pn_buf *out)
{
    if (e->finished || e->dead)
        return -EINVAL;
    int rc = -EINVAL;
    const unsigned char *in = n ? p : (const unsigned char *)"";
    switch (e->codec) {
    case PN_CODEC_GZIP:
#ifdef PN_HAVE_ZLIB
        rc = gzip_write(e, in, n, mode, out);
#endif
        break;
    case PN_CODEC_ZSTD:
#ifdef PN_HAVE_ZSTD
        rc = zstd_write(e, in, n, mode, out);
#endif
        break;
    case PN_CODEC_BR:
#ifdef PN_HAVE_BROTLI
        rc = br_write(e, in, n, mode, out);
#endif
        break;
    case PN_CODEC_IDENTITY:
        break;
    }
    (void)in;
    (void)out;
    if (rc != 0)
        e->dead = 1;
    else if (mode == PN_FLUSH_FINISH)
        e->finished = 1;
    return rc;
}

/* ---- decoders ---------------------------------------------------------- */

/* RFC 9659 §3: a zstd content coding must not need a window over 8 MiB, so
 * a decoder never allocates more than that for a hostile frame header. */
#define PN_ZSTD_WINDOW_LOG_MAX 23
/* Decode in slices of at most this much, so the cap is checked often. */
#define PN_DECODE_SLICE ((size_t)64 << 10)

struct pn_decoder {
    pn_codec codec;
    int ended;  /* the input so far ends at a member/frame/stream boundary */
    int status; /* sticky PN_DECODE_TOO_BIG / PN_DECODE_BAD */
    uint64_t max, total, total_in;
#ifdef PN_HAVE_ZLIB
    z_stream z;
#endif
#ifdef PN_HAVE_ZSTD
    ZSTD_DCtx *zd;
    int znew;               /* the next input byte starts a frame */
    unsigned char zhdr[18]; /* that frame's header, gathered (see zstd_read) */
    size_t zhdr_len;
#endif
#ifdef PN_HAVE_BROTLI
    BrotliDecoderState *bd;
#endif
};

int pn_decoder_new(pn_decoder **out, pn_codec codec, uint64_t max_out)
{
    if (codec == PN_CODEC_IDENTITY || !pn_codec_available(codec))
        return -EINVAL;
    pn_decoder *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    d->codec = codec;
    d->max = max_out;
    switch (codec) {
    case PN_CODEC_GZIP:
#ifdef PN_HAVE_ZLIB
        /* 31: gzip wrapper only; a raw or zlib stream is not "gzip". */
        if (inflateInit2(&d->z, 31) == Z_OK)
            goto ok;
#endif
        break;
    case PN_CODEC_ZSTD:
#ifdef PN_HAVE_ZSTD
        d->zd = ZSTD_createDCtx();
        d->znew = 1;
        if (d->zd && !ZSTD_isError(ZSTD_DCtx_setParameter(d->zd, ZSTD_d_windowLogMax,
                                                          PN_ZSTD_WINDOW_LOG_MAX)))
            goto ok;
        ZSTD_freeDCtx(d->zd);
#endif
        break;
    case PN_CODEC_BR:
#ifdef PN_HAVE_BROTLI
        d->bd = BrotliDecoderCreateInstance(NULL, NULL, NULL);
        if (d->bd)
            goto ok;
#endif
        break;
    case PN_CODEC_IDENTITY:
        break;
    }
    free(d);
    (void)out;
    return -ENOMEM;
#if defined(PN_HAVE_ZLIB) || defined(PN_HAVE_ZSTD) || defined(PN_HAVE_BROTLI)
ok:
    *out = d;
    return 0;
#endif
}

void pn_decoder_free(pn_decoder *d)
{
    if (d == NULL)
        return;
#ifdef PN_HAVE_ZLIB
    if (d->codec == PN_CODEC_GZIP)
        inflateEnd(&d->z);
#endif
#ifdef PN_HAVE_ZSTD
    if (d->codec == PN_CODEC_ZSTD)
        ZSTD_freeDCtx(d->zd);
#endif
#ifdef PN_HAVE_BROTLI
    if (d->codec == PN_CODEC_BR)
        BrotliDecoderDestroyInstance(d->bd);
#endif
    free(d);
}

uint64_t pn_decoder_total(const pn_decoder *d)
{
    return d->total;
}

#if defined(PN_HAVE_ZLIB) || defined(PN_HAVE_ZSTD) || defined(PN_HAVE_BROTLI)
/* Room for the next slice of output: one byte more than the cap allows, so
 * that overshooting is seen without ever writing much past it. */
static size_t decode_room(const pn_decoder *d)
{
    if (d->max == 0)
        return PN_DECODE_SLICE;
    uint64_t left = d->max - d->total + 1;
    return left < PN_DECODE_SLICE ? (size_t)left : PN_DECODE_SLICE;
}

/* Account for `got` new bytes; 1 when the cap is exceeded. */
static int decode_count(pn_decoder *d, pn_buf *out, size_t got)
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

#ifdef PN_HAVE_ZLIB
static int gzip_read(pn_decoder *d, const unsigned char *p, size_t n, pn_buf *out)
{
    z_stream *z = &d->z;
    while (n > 0) {
        uInt take = n > (1u << 30) ? (1u << 30) : (uInt)n;
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
            size_t room = decode_room(d);
            if (pn_buf_reserve(out, room) != 0)
                return -ENOMEM;
            z->next_out = (Bytef *)pn_buf_tail(out);
            z->avail_out = (uInt)room;
            int rc = inflate(z, Z_NO_FLUSH);
            if (decode_count(d, out, room - z->avail_out))
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
#endif

#ifdef PN_HAVE_ZSTD
/* Run libzstd on `in` until it is consumed and the output flushed, or until
 * a frame ends (then the next byte starts a frame: d->znew). */
static int zstd_run(pn_decoder *d, ZSTD_inBuffer *in, pn_buf *out)
{
    for (;;) {
        size_t room = decode_room(d);
        if (pn_buf_reserve(out, room) != 0)
            return -ENOMEM;
        ZSTD_outBuffer o = {pn_buf_tail(out), room, 0};
        size_t in_before = in->pos;
        size_t r = ZSTD_decompressStream(d->zd, &o, in);
        if (ZSTD_isError(r))
            return d->status = PN_DECODE_BAD;
        if (decode_count(d, out, o.pos))
            return d->status;
        /* r == 0: the frame ended and is fully flushed.  Return to let
         * zstd_read gather the next frame's header; this also never calls
         * libzstd with no input at a boundary, where it would answer the
         * next header's size without making progress. */
        if (r == 0) {
            d->ended = 1;
            d->znew = 1;
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
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        if (d->znew) {
            /* Byte by byte until the size is known (5 bytes at most), then
             * the rest: need <= sizeof(d->zhdr). */
            int need;
            while ((need = zstd_header_size(d->zhdr, d->zhdr_len)) == 0 && in.pos < in.size)
                d->zhdr[d->zhdr_len++] = p[in.pos++];
            if (need < 0)
                return d->status = PN_DECODE_BAD;
            if (need > 0) {
                size_t take = (size_t)need - d->zhdr_len;
                if (take > in.size - in.pos)
                    take = in.size - in.pos;
                memcpy(d->zhdr + d->zhdr_len, p + in.pos, take);
                d->zhdr_len += take;
                in.pos += take;
            }
            if (d->zhdr_len == 0)
                return 0;
            d->ended = 0; /* inside a frame: ending here is truncation */
            if (need == 0 || d->zhdr_len < (size_t)need)
                return 0;
            d->znew = 0;
            ZSTD_inBuffer head = {d->zhdr, d->zhdr_len, 0};
            d->zhdr_len = 0;
            int rc = zstd_run(d, &head, out);
            if (rc != 0)
                return rc;
            continue; /* an empty skippable frame ends with its header */
        }
        int rc = zstd_run(d, &in, out);
        if (rc != 0 || in.pos == in.size)
            return rc;
        /* A frame ended inside this piece: the next one starts here. */
    }
}
#endif

#ifdef PN_HAVE_BROTLI
static int br_read(pn_decoder *d, const unsigned char *p, size_t n, pn_buf *out)
{
    size_t avail_in = n;
    const uint8_t *next_in = p;
    for (;;) {
        size_t room = decode_room(d);
        if (pn_buf_reserve(out, room) != 0)
            return -ENOMEM;
        size_t avail_out = room;
        uint8_t *next_out = (uint8_t *)pn_buf_tail(out);
        BrotliDecoderResult r =
            BrotliDecoderDecompressStream(d->bd, &avail_in, &next_in, &avail_out, &next_out, NULL);
        if (decode_count(d, out, room - avail_out))
            return d->status;
        switch (r) {
        case BROTLI_DECODER_RESULT_SUCCESS:
            /* One brotli stream per body (RFC 7932 has no members): bytes
             * after its end are garbage. */
            if (avail_in > 0)
                return d->status = PN_DECODE_BAD;
            d->ended = 1;
            return 0;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
            /* Beware: libbrotlidec 1.0.9 can ask for input while decoded
             * bytes still wait in its ring buffer (seen after an output
             * buffer filled exactly); drain them before returning. */
            if (BrotliDecoderHasMoreOutput(d->bd))
                break;
            return 0;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
            break;
        default:
            return d->status = PN_DECODE_BAD;
        }
    }
}
#endif

int pn_decoder_write(pn_decoder *d, const void *p, size_t n, int last, pn_buf *out)
{
    if (d->status)
        return d->status;
    if (n > 0 && d->codec == PN_CODEC_BR && d->ended)
        return d->status = PN_DECODE_BAD;
    int rc = PN_DECODE_BAD;
    const unsigned char *in = n ? p : (const unsigned char *)"";
    d->total_in += n;
    switch (d->codec) {
    case PN_CODEC_GZIP:
#ifdef PN_HAVE_ZLIB
        rc = gzip_read(d, in, n, out);
#endif
        break;
    case PN_CODEC_ZSTD:
#ifdef PN_HAVE_ZSTD
        rc = zstd_read(d, in, n, out);
#endif
        break;
    case PN_CODEC_BR:
#ifdef PN_HAVE_BROTLI
        rc = br_read(d, in, n, out);
#endif
        break;
    case PN_CODEC_IDENTITY:
        break;
    }
    (void)in;
    (void)out;
    if (rc != 0)
        return rc;
    if (!last)
        return PN_DECODE_MORE;
    /* An empty body is accepted as an empty stream (clients send the header
     * on empty bodies); anything else must end on a boundary, or it was
     * truncated. */
    if (d->total_in == 0 || d->ended)
        return PN_DECODE_DONE;
    return d->status = PN_DECODE_BAD;
}

/* ---- policy ------------------------------------------------------------ */

void pn_compress_resp_init(pn_compress_resp *r, int status, int is_head)
{
    memset(r, 0, sizeof(*r));
    r->status = status;
    r->is_head = is_head;
    r->body_size = PN_SIZE_UNKNOWN;
}

static int64_t parse_length(const char *v, size_t n)
{
    trim(&v, &n);
    if (n == 0 || n > 18)
        return PN_SIZE_UNKNOWN;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return PN_SIZE_UNKNOWN;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

void pn_compress_resp_header(pn_compress_resp *r, const char *name, size_t nlen, const char *value,
                             size_t vlen)
{
    if (ieq(name, nlen, "content-type")) {
        r->content_type = value;
        r->content_type_len = vlen;
    } else if (ieq(name, nlen, "content-encoding")) {
        r->has_content_encoding = 1;
    } else if (ieq(name, nlen, "cache-control")) {
        if (pn_cache_control_no_transform(value, vlen))
            r->no_transform = 1;
    } else if (ieq(name, nlen, "content-range")) {
        r->has_content_range = 1;
    } else if (ieq(name, nlen, "content-length")) {
        if (r->body_size < 0)
            r->body_size = parse_length(value, vlen);
    }
}

int pn_compress_eligible(const pn_compress_policy *pol, const pn_compress_resp *r)
{
    /* No content to encode: 1xx, 204, 304 (RFC 9110 §15.3.5, §15.4.5), and
     * HEAD, whose headers would describe a body nobody encodes. */
    if (r->status < 200 || r->status == 204 || r->status == 304 || r->is_head)
        return 0;
    /* A 206 or a Content-Range describes byte ranges of the unencoded
     * representation; encoding them would break the ranges (RFC 9110 §14). */
    if (r->status == 206 || r->has_content_range)
        return 0;
    /* The app encoded it already, or forbade transformation
     * (RFC 9111 §5.2.2.6 no-transform). */
    if (r->has_content_encoding || r->no_transform)
        return 0;
    if (r->body_size == 0 || (r->body_size > 0 && pol && r->body_size < pol->min_size))
        return 0;
    if (r->content_type == NULL)
        return 0;
    return pn_compress_type_ok(r->content_type, r->content_type_len, pol ? pol->types : NULL);
}

/* Split a media type into type and subtype (lowercase compare later);
 * parameters after ';' are ignored.  0 if malformed. */
static int split_type(const char *ct, size_t n, const char **t, size_t *tn, const char **s,
                      size_t *sn)
{
    const char *semi = memchr(ct, ';', n);
    if (semi)
        n = (size_t)(semi - ct);
    trim(&ct, &n);
    const char *slash = memchr(ct, '/', n);
    if (slash == NULL)
        return 0;
    *t = ct;
    *tn = (size_t)(slash - ct);
    *s = slash + 1;
    *sn = n - *tn - 1;
    trim(t, tn);
    trim(s, sn);
    return *tn > 0 && *sn > 0;
}

static int iends(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n > k && ieq(s + n - k, k, suffix);
}

static int ieqn(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

int pn_compress_type_ok(const char *ct, size_t n, const char *extra)
{
    const char *t, *s;
    size_t tn, sn;
    if (!split_type(ct, n, &t, &tn, &s, &sn))
        return 0;
    if (ieq(t, tn, "text"))
        return 1;
    if (ieq(s, sn, "json") || iends(s, sn, "+json") || ieq(s, sn, "xml") || iends(s, sn, "+xml"))
        return 1;
    if (ieq(s, sn, "javascript") || ieq(s, sn, "x-javascript") || ieq(s, sn, "ecmascript"))
        return 1;
    if (extra == NULL)
        return 0;
    const char *p = extra, *end = extra + strlen(extra), *e;
    size_t en;
    while (next_elem(&p, end, &e, &en)) {
        const char *et, *es;
        size_t etn, esn;
        if (!split_type(e, en, &et, &etn, &es, &esn))
            continue;
        if (ieqn(t, tn, et, etn) && ((esn == 1 && es[0] == '*') || ieqn(s, sn, es, esn)))
            return 1;
    }
    return 0;
}

int pn_compress_types_valid(const char *extra)
{
    const char *p = extra, *end = extra + strlen(extra), *e;
    size_t en;
    while (next_elem(&p, end, &e, &en)) {
        const char *t, *s;
        size_t tn, sn;
        if (en == 0)
            continue;
        if (memchr(e, ';', en) || !split_type(e, en, &t, &tn, &s, &sn))
            return -EINVAL;
        for (size_t i = 0; i < en; i++)
            if ((unsigned char)e[i] <= ' ' || e[i] == '"' || e[i] == ',' || e[i] == 0x7f)
                return -EINVAL;
    }
    return 0;
}

/* 1 if the comma list v has an element whose token (before any '=') equals
 * `want` case-insensitively. */
static int list_has(const char *v, size_t n, const char *want)
{
    const char *p = v, *end = v + n, *e;
    size_t en;
    while (next_elem(&p, end, &e, &en)) {
        const char *eq = memchr(e, '=', en);
        if (eq) {
            en = (size_t)(eq - e);
            trim(&e, &en);
        }
        if (ieq(e, en, want))
            return 1;
    }
    return 0;
}

int pn_cache_control_no_transform(const char *v, size_t n)
{
    return list_has(v, n, "no-transform");
}

int pn_vary_has_accept_encoding(const char *v, size_t n)
{
    return list_has(v, n, "accept-encoding") || list_has(v, n, "*");
}

int pn_etag_weaken(const char *v, size_t n, pn_buf *out)
{
    trim(&v, &n);
    /* RFC 9110 §8.8.3: entity-tag = [ "W/" ] opaque-tag; only a strong,
     * well-formed tag is rewritten, anything else is passed through. */
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        if (pn_buf_append(out, "W/", 2) != 0)
            return -ENOMEM;
    }
    return pn_buf_append(out, v, n);
}
