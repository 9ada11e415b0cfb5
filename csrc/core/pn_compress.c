/*
 * pn_compress — see pn_compress.h for the contract.  This file holds the
 * codec names, the per-worker encoder pool and the decoders' life cycle;
 * the codecs themselves are pn_codec_gzip.c, pn_codec_zstd.c and
 * pn_codec_br.c behind pn_codec_ops (pn_compress_codec.h), and the
 * "should we compress" policy is pn_compress_policy.c.
 */
#include "pn_compress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pn_compress_codec.h"
#include "pn_http_token.h"

/* ---- codec names ------------------------------------------------------- */

/* Indexed by pn_codec; identity has no codec. */
static const pn_codec_ops *const codec_table[PN_CODEC_COUNT] = {
    [PN_CODEC_GZIP] = &pn_codec_gzip,
    [PN_CODEC_ZSTD] = &pn_codec_zstd,
    [PN_CODEC_BR] = &pn_codec_br,
};

/* The ops of codec c (a stub when this build lacks it), or NULL for
 * identity and values outside pn_codec. */
static const pn_codec_ops *codec_ops(pn_codec c)
{
    return (unsigned)c < PN_CODEC_COUNT ? codec_table[c] : NULL;
}

/* The ops of an available codec, or NULL. */
static const pn_codec_ops *available_ops(pn_codec c)
{
    const pn_codec_ops *ops = codec_ops(c);
    return ops && ops->available ? ops : NULL;
}

const char *pn_codec_name(pn_codec c)
{
    const pn_codec_ops *ops = codec_ops(c);
    return ops ? ops->name : "identity";
}

int pn_codec_available(pn_codec c)
{
    return c == PN_CODEC_IDENTITY || available_ops(c) != NULL;
}

const char *pn_compress_codecs(void)
{
    /* The available codecs in the default preference order (zstd, br,
     * gzip): one constant string per combination, so nothing is built at
     * run time.  Index: zstd 4 + br 2 + gzip 1. */
    static const char *const lists[8] = {
        "", "gzip", "br", "br,gzip", "zstd", "zstd,gzip", "zstd,br", "zstd,br,gzip",
    };
    return lists[pn_codec_zstd.available << 2 | pn_codec_br.available << 1 |
                 pn_codec_gzip.available];
}

int pn_codec_from_token(const char *s, size_t n)
{
    /* RFC 9110 §8.4.1.3: x-gzip is an alias a recipient should accept. */
    if (pn_http_ieq(s, n, PN_STRLIT("x-gzip")))
        return PN_CODEC_GZIP;
    for (int c = PN_CODEC_IDENTITY + 1; c < PN_CODEC_COUNT; c++)
        if (pn_http_ieq(s, n, codec_table[c]->name, strlen(codec_table[c]->name)))
            return c;
    return -1;
}

int pn_codec_parse_order(const char *s, pn_codec *order, size_t *norder, const char **bad,
                         size_t *badlen)
{
    size_t len = strlen(s), pos = 0, en, n = 0;
    const char *e;
    unsigned seen = 0;
    while (pn_http_list_next(s, len, &pos, &e, &en)) {
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

struct pn_compress_pool {
    pn_compress_opts opts;
    pn_encoder *idle[PN_CODEC_COUNT];
    int nidle[PN_CODEC_COUNT];
    pn_compress_stats st;
};

int pn_compress_pool_new(pn_compress_pool **out, const pn_compress_opts *opts)
{
    pn_compress_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    pn_compress_opts d = PN_COMPRESS_OPTS_DEFAULT;
    if (opts)
        d = *opts;
    d.gzip_level = pn_codec_clamp(d.gzip_level, 1, 9);
    d.zstd_level = pn_codec_clamp(d.zstd_level, 1, 19);
    d.brotli_quality = pn_codec_clamp(d.brotli_quality, 0, 11);
    if (d.max_idle <= 0)
        d.max_idle = 4;
    p->opts = d;
    *out = p;
    return 0;
}

static void encoder_destroy(pn_encoder *e)
{
    e->ops->enc_free(e);
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
    return e->ops->codec;
}

/* The first, allocating half of an encoder's life: only on a pool miss. */
static pn_encoder *encoder_create(pn_compress_pool *pool, const pn_codec_ops *ops)
{
    pn_encoder *e = calloc(1, ops->enc_size);
    if (e == NULL)
        return NULL;
    e->ops = ops;
    e->pool = pool;
    if (ops->enc_init(e, &pool->opts, &pool->st.lib_allocs) != 0) {
        free(e);
        return NULL;
    }
    pool->st.created++;
    return e;
}

pn_encoder *pn_encoder_get(pn_compress_pool *pool, pn_codec codec, int64_t size)
{
    const pn_codec_ops *ops = available_ops(codec);
    if (ops == NULL)
        return NULL;
    pn_encoder *e = pool->idle[codec];
    if (e) {
        pool->idle[codec] = e->next;
        pool->nidle[codec]--;
    } else {
        e = encoder_create(pool, ops);
        if (e == NULL)
            return NULL;
    }
    e->next = NULL;
    /* Prepare it (new or idle) for this response: reset, not re-create. */
    e->finished = e->dead = 0;
    e->size = size;
    if (ops->enc_begin(e, size) != 0) {
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
    pn_codec c = e->ops->codec;
    if (pool->nidle[c] >= pool->opts.max_idle) {
        encoder_destroy(e);
        return;
    }
    if (e->ops->enc_idle)
        e->ops->enc_idle(e);
    e->next = pool->idle[c];
    pool->idle[c] = e;
    pool->nidle[c]++;
}

int pn_encoder_write(pn_encoder *e, const void *p, size_t n, pn_flush mode, pn_buf *out)
{
    if (e->finished || e->dead)
        return -EINVAL;
    const unsigned char *in = n ? p : (const unsigned char *)"";
    int rc = e->ops->enc_write(e, in, n, mode, out);
    if (rc != 0)
        e->dead = 1;
    else if (mode == PN_FLUSH_FINISH)
        e->finished = 1;
    return rc;
}

/* ---- decoders ---------------------------------------------------------- */

int pn_decoder_new(pn_decoder **out, pn_codec codec, uint64_t max_out)
{
    const pn_codec_ops *ops = available_ops(codec);
    if (ops == NULL)
        return -EINVAL;
    pn_decoder *d = calloc(1, ops->dec_size);
    if (d == NULL)
        return -ENOMEM;
    d->ops = ops;
    d->max = max_out;
    if (ops->dec_init(d) != 0) {
        free(d);
        return -ENOMEM;
    }
    *out = d;
    return 0;
}

void pn_decoder_free(pn_decoder *d)
{
    if (d == NULL)
        return;
    d->ops->dec_free(d);
    free(d);
}

uint64_t pn_decoder_total(const pn_decoder *d)
{
    return d->total;
}

int pn_decoder_write(pn_decoder *d, const void *p, size_t n, int last, pn_buf *out)
{
    if (d->status)
        return d->status;
    const unsigned char *in = n ? p : (const unsigned char *)"";
    d->total_in += n;
    int rc = d->ops->dec_write(d, in, n, out);
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
