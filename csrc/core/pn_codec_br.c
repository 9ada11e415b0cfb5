/*
 * pn_codec_br — the br content coding (RFC 7932) with libbrotli: response
 * encoder and request decoder behind pn_codec_ops (pn_compress_codec.h).
 * Without PN_HAVE_BROTLI, a stub table.
 */
#include "pn_compress_codec.h"

#ifdef PN_HAVE_BROTLI

#include <errno.h>
#include <stdlib.h>

#include <brotli/decode.h>
#include <brotli/encode.h>

/* Brotli has no reset, so its state is re-created per response.  This cache
 * makes that allocation-free after warm-up: blocks freed by the old state are
 * kept and handed to the new one (which asks for the same sizes, in the same
 * order, for the same quality).  Bounded by PN_BR_SLOTS blocks and
 * PN_BR_CACHE_MAX bytes; anything beyond goes straight to malloc/free. */
enum { PN_BR_SLOTS = 64 }; /* libbrotli 1.2 holds more blocks than 1.0 */
#define PN_BR_CACHE_MAX ((size_t)16 << 20)

/* The largest window for a response of known size: 4 MiB.  A larger body
 * still compresses, with back-references limited to this distance. */
#define BR_LGWIN_MAX 22

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

typedef struct br_encoder {
    pn_encoder base;
    BrotliEncoderState *br; /* per response; NULL while idle */
    int quality;
    pn_br_cache cache;
} br_encoder;

typedef struct br_decoder {
    pn_decoder base;
    BrotliDecoderState *bd;
} br_decoder;

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

static int ceil_log2(uint64_t v)
{
    int l = 0;
    while (l < 63 && ((uint64_t)1 << l) < v)
        l++;
    return l;
}

/* ---- encoder ---------------------------------------------------------- */

static int br_enc_init(pn_encoder *e, const pn_compress_opts *opts, uint64_t *allocs)
{
    br_encoder *b = (br_encoder *)e;
    b->quality = opts->brotli_quality;
    b->cache.allocs = allocs;
    return 0; /* the state itself is made per response */
}

static int br_enc_begin(pn_encoder *e, int64_t size)
{
    br_encoder *b = (br_encoder *)e;
    if (b->br)
        BrotliEncoderDestroyInstance(b->br);
    b->br = BrotliEncoderCreateInstance(br_alloc, br_free, &b->cache);
    if (b->br == NULL)
        return -ENOMEM;
    int lgwin = PN_COMPRESS_STREAM_WINDOW_LOG;
    if (size >= 0)
        lgwin = pn_codec_clamp(ceil_log2((uint64_t)size), BROTLI_MIN_WINDOW_BITS, BR_LGWIN_MAX);
    BrotliEncoderSetParameter(b->br, BROTLI_PARAM_QUALITY, (uint32_t)b->quality);
    BrotliEncoderSetParameter(b->br, BROTLI_PARAM_LGWIN, (uint32_t)lgwin);
    /* The hint is rounded up to the window size: newer libbrotli sizes
     * its buffers from it, and a few size classes keep the block cache
     * hitting (an exact hint allocates anew for every body length). */
    if (size >= 0)
        BrotliEncoderSetParameter(b->br, BROTLI_PARAM_SIZE_HINT, (uint32_t)1 << lgwin);
    return 0;
}

static int br_enc_write(pn_encoder *e, const unsigned char *p, size_t n, pn_flush mode, pn_buf *out)
{
    BrotliEncoderState *br = ((br_encoder *)e)->br;
    BrotliEncoderOperation op = mode == PN_FLUSH_FINISH ? BROTLI_OPERATION_FINISH
                                : mode == PN_FLUSH_SYNC ? BROTLI_OPERATION_FLUSH
                                                        : BROTLI_OPERATION_PROCESS;
    size_t avail_in = n;
    const uint8_t *next_in = p;
    size_t room = pn_codec_first_room(n);
    for (;;) {
        if (pn_buf_reserve(out, room) != 0)
            return -ENOMEM;
        size_t space = pn_buf_space(out), avail_out = space;
        uint8_t *next_out = (uint8_t *)pn_buf_tail(out);
        if (!BrotliEncoderCompressStream(br, op, &avail_in, &next_in, &avail_out, &next_out, NULL))
            return -EINVAL;
        out->len += space - avail_out;
        if (op == BROTLI_OPERATION_FINISH  ? BrotliEncoderIsFinished(br)
            : op == BROTLI_OPERATION_FLUSH ? avail_in == 0 && !BrotliEncoderHasMoreOutput(br)
                                           : avail_in == 0)
            return 0;
        if (avail_out == 0)
            room = space * 2;
    }
}

/* Back in the pool: free the state now, so its blocks wait in the cache,
 * not in use. */
static void br_enc_idle(pn_encoder *e)
{
    br_encoder *b = (br_encoder *)e;
    if (b->br) {
        BrotliEncoderDestroyInstance(b->br);
        b->br = NULL;
    }
}

static void br_enc_free(pn_encoder *e)
{
    br_enc_idle(e);
    br_cache_clear(&((br_encoder *)e)->cache);
}

/* ---- decoder ---------------------------------------------------------- */

static int br_dec_init(pn_decoder *d)
{
    br_decoder *b = (br_decoder *)d;
    b->bd = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    return b->bd ? 0 : -ENOMEM;
}

static int br_dec_write(pn_decoder *d, const unsigned char *p, size_t n, pn_buf *out)
{
    BrotliDecoderState *bd = ((br_decoder *)d)->bd;
    /* One brotli stream per body (RFC 7932 has no members): bytes after
     * its end are garbage. */
    if (n > 0 && d->ended)
        return d->status = PN_DECODE_BAD;
    size_t avail_in = n;
    const uint8_t *next_in = p;
    for (;;) {
        size_t room = pn_decode_room(d);
        if (pn_buf_reserve(out, room) != 0)
            return -ENOMEM;
        size_t avail_out = room;
        uint8_t *next_out = (uint8_t *)pn_buf_tail(out);
        BrotliDecoderResult r =
            BrotliDecoderDecompressStream(bd, &avail_in, &next_in, &avail_out, &next_out, NULL);
        if (pn_decode_count(d, out, room - avail_out))
            return d->status;
        switch (r) {
        case BROTLI_DECODER_RESULT_SUCCESS:
            if (avail_in > 0)
                return d->status = PN_DECODE_BAD;
            d->ended = 1;
            return 0;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
            /* Beware: libbrotlidec 1.0.9 can ask for input while decoded
             * bytes still wait in its ring buffer (seen after an output
             * buffer filled exactly); drain them before returning. */
            if (BrotliDecoderHasMoreOutput(bd))
                break;
            return 0;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
            break;
        default:
            return d->status = PN_DECODE_BAD;
        }
    }
}

static void br_dec_free(pn_decoder *d)
{
    BrotliDecoderDestroyInstance(((br_decoder *)d)->bd);
}

const pn_codec_ops pn_codec_br = {
    .codec = PN_CODEC_BR,
    .name = "br",
    .available = 1,
    .enc_size = sizeof(br_encoder),
    .enc_init = br_enc_init,
    .enc_begin = br_enc_begin,
    .enc_write = br_enc_write,
    .enc_idle = br_enc_idle,
    .enc_free = br_enc_free,
    .dec_size = sizeof(br_decoder),
    .dec_init = br_dec_init,
    .dec_write = br_dec_write,
    .dec_free = br_dec_free,
};

#else

const pn_codec_ops pn_codec_br = {.codec = PN_CODEC_BR, .name = "br"};

#endif
