/*
 * Unit tests for pn_compress: every encoder round-trips through the codec
 * library's own decoder (zlib inflate, ZSTD_decompressStream,
 * BrotliDecoderDecompressStream), one-shot and streamed; what was flushed
 * decodes before the stream ends; encoders are reused, not re-created; the
 * request decoders stop at the size cap; and the policy helpers.  Codecs the
 * build lacks are reported and their tests checked to be refused.
 */
#include "pn_compress.h"

#include "pn_test.h"

#include <errno.h>
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

static const pn_codec all_codecs[] = {PN_CODEC_GZIP, PN_CODEC_ZSTD, PN_CODEC_BR};

/* A deterministic JSON-ish body of n bytes (like an API response). */
static char *make_json(size_t n)
{
    char *p = malloc(n + 64);
    size_t len = 0;
    uint32_t x = 12345;
    p[len++] = '[';
    while (len < n) {
        x = x * 1103515245u + 12345u;
        len += (size_t)snprintf(p + len, 64, "{\"id\":%u,\"name\":\"user%u\",\"ok\":%s},",
                                (x >> 8) % 100000, (x >> 4) % 977, (x & 1) ? "true" : "false");
    }
    p[n - 1] = ']';
    return p;
}

/* Independent decode of a whole or partial stream with the codec library.
 * Returns 0 on success; *complete says whether the stream's end was seen. */
static int indep_decode(pn_codec c, const void *in, size_t n, pn_buf *out, int *complete)
{
    *complete = 0;
    (void)in, (void)n, (void)out;
    switch (c) {
#ifdef PN_HAVE_ZLIB
    case PN_CODEC_GZIP: {
        z_stream z;
        memset(&z, 0, sizeof(z));
        if (inflateInit2(&z, 31) != Z_OK)
            return -1;
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)n;
        int rc;
        do {
            pn_buf_reserve(out, 65536);
            z.next_out = (Bytef *)pn_buf_tail(out);
            z.avail_out = (uInt)pn_buf_space(out);
            size_t before = z.avail_out;
            rc = inflate(&z, Z_SYNC_FLUSH);
            out->len += before - z.avail_out;
        } while (rc == Z_OK && (z.avail_in > 0 || z.avail_out == 0));
        inflateEnd(&z);
        *complete = rc == Z_STREAM_END;
        return (rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR) ? 0 : -1;
    }
#endif
#ifdef PN_HAVE_ZSTD
    case PN_CODEC_ZSTD: {
        ZSTD_DStream *d = ZSTD_createDStream();
        ZSTD_inBuffer ib = {in, n, 0};
        size_t r = 1;
        for (;;) {
            pn_buf_reserve(out, 65536);
            ZSTD_outBuffer ob = {pn_buf_tail(out), pn_buf_space(out), 0};
            r = ZSTD_decompressStream(d, &ob, &ib);
            out->len += ob.pos;
            if (ZSTD_isError(r))
                break;
            if (ib.pos == ib.size && (ob.pos < ob.size || r == 0))
                break;
        }
        ZSTD_freeDStream(d);
        *complete = r == 0;
        return ZSTD_isError(r) ? -1 : 0;
    }
#endif
#ifdef PN_HAVE_BROTLI
    case PN_CODEC_BR: {
        BrotliDecoderState *d = BrotliDecoderCreateInstance(NULL, NULL, NULL);
        size_t avail_in = n;
        const uint8_t *next_in = in;
        BrotliDecoderResult r;
        do {
            pn_buf_reserve(out, 65536);
            size_t avail_out = pn_buf_space(out), before = avail_out;
            uint8_t *next_out = (uint8_t *)pn_buf_tail(out);
            r = BrotliDecoderDecompressStream(d, &avail_in, &next_in, &avail_out, &next_out, NULL);
            out->len += before - avail_out;
            /* libbrotlidec may want input while output is still pending. */
        } while (r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT ||
                 (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT && BrotliDecoderHasMoreOutput(d)));
        BrotliDecoderDestroyInstance(d);
        *complete = r == BROTLI_DECODER_RESULT_SUCCESS;
        return r == BROTLI_DECODER_RESULT_ERROR ? -1 : 0;
    }
#endif
    default:
        return -1;
    }
}

static int decodes_to(pn_codec c, const pn_buf *enc, const void *want, size_t wn, int must_end)
{
    pn_buf out = PN_BUF_INIT;
    int complete;
    int rc = indep_decode(c, pn_guard_copy(pn_buf_head(enc), pn_buf_live(enc)), pn_buf_live(enc),
                          &out, &complete);
    int ok = rc == 0 && pn_buf_live(&out) == wn && memcmp(pn_buf_head(&out), want, wn) == 0 &&
             (!must_end || complete);
    if (!ok)
        fprintf(stderr, "  %s: rc %d, got %zu bytes, want %zu, complete %d\n", pn_codec_name(c), rc,
                pn_buf_live(&out), wn, complete);
    pn_buf_free(&out);
    return ok;
}

PN_TEST(names_and_availability)
{
    PN_CHECK(strcmp(pn_codec_name(PN_CODEC_GZIP), "gzip") == 0);
    PN_CHECK(strcmp(pn_codec_name(PN_CODEC_ZSTD), "zstd") == 0);
    PN_CHECK(strcmp(pn_codec_name(PN_CODEC_BR), "br") == 0);
    PN_CHECK(strcmp(pn_codec_name(PN_CODEC_IDENTITY), "identity") == 0);
    PN_CHECK(pn_codec_available(PN_CODEC_IDENTITY));
    char want[32] = "";
    if (pn_codec_available(PN_CODEC_ZSTD))
        strcat(want, ",zstd");
    if (pn_codec_available(PN_CODEC_BR))
        strcat(want, ",br");
    if (pn_codec_available(PN_CODEC_GZIP))
        strcat(want, ",gzip");
    PN_CHECK(strcmp(pn_compress_codecs(), want[0] ? want + 1 : want) == 0);
    printf("codecs in this build: \"%s\"\n", pn_compress_codecs());
#if defined(PN_HAVE_ZLIB) && defined(PN_HAVE_ZSTD) && defined(PN_HAVE_BROTLI)
    PN_CHECK(strcmp(pn_compress_codecs(), "zstd,br,gzip") == 0);
#endif
    PN_CHECK_EQ_INT(pn_codec_from_token("GZip", 4), PN_CODEC_GZIP);
    PN_CHECK_EQ_INT(pn_codec_from_token("x-gzip", 6), PN_CODEC_GZIP);
    PN_CHECK_EQ_INT(pn_codec_from_token("ZSTD", 4), PN_CODEC_ZSTD);
    PN_CHECK_EQ_INT(pn_codec_from_token("Br", 2), PN_CODEC_BR);
    PN_CHECK_EQ_INT(pn_codec_from_token("deflate", 7), -1);
    PN_CHECK_EQ_INT(pn_codec_from_token("identity", 8), -1);
    PN_CHECK_EQ_INT(pn_codec_from_token("gzi", 3), -1);
}

PN_TEST(parse_order)
{
    pn_codec o[PN_CODEC_COUNT];
    size_t n = 99;
    const char *bad = NULL;
    size_t badlen = 0;
    PN_CHECK_EQ_INT(pn_codec_parse_order(" gzip , zstd,br ", o, &n, &bad, &badlen), 0);
    size_t k = 0;
    for (size_t i = 0; i < 3; i++) {
        pn_codec want = i == 0 ? PN_CODEC_GZIP : i == 1 ? PN_CODEC_ZSTD : PN_CODEC_BR;
        if (pn_codec_available(want)) {
            PN_CHECK(k < n && o[k] == want);
            k++;
        }
    }
    PN_CHECK_EQ_INT(n, k);
    PN_CHECK_EQ_INT(pn_codec_parse_order("", o, &n, NULL, NULL), 0);
    PN_CHECK_EQ_INT(n, 0);
    PN_CHECK_EQ_INT(pn_codec_parse_order("gzip,deflate", o, &n, &bad, &badlen), -EINVAL);
    PN_CHECK_SLICE(bad, badlen, "deflate");
    PN_CHECK_EQ_INT(pn_codec_parse_order("gzip, GZIP", o, &n, &bad, &badlen), -EINVAL);
    PN_CHECK_SLICE(bad, badlen, "GZIP");
    PN_CHECK_EQ_INT(pn_codec_parse_order("identity", o, &n, NULL, NULL), -EINVAL);
}

/* One response body in one write with FINISH, size known. */
PN_TEST(one_shot_round_trip)
{
    size_t n = 64 * 1024;
    char *json = make_json(n);
    pn_compress_pool *pool;
    PN_CHECK_EQ_INT(pn_compress_pool_new(&pool, NULL), 0);
    for (size_t i = 0; i < 3; i++) {
        pn_codec c = all_codecs[i];
        pn_encoder *e = pn_encoder_get(pool, c, (int64_t)n);
        if (!pn_codec_available(c)) {
            PN_CHECK(e == NULL);
            printf("  %s not built: skipped round trip\n", pn_codec_name(c));
            continue;
        }
        PN_CHECK(e != NULL);
        PN_CHECK_EQ_INT(pn_encoder_codec(e), c);
        pn_buf out = PN_BUF_INIT;
        PN_CHECK_EQ_INT(pn_encoder_write(e, pn_guard_copy(json, n), n, PN_FLUSH_FINISH, &out), 0);
        PN_CHECK(decodes_to(c, &out, json, n, 1));
        /* JSON like this compresses far better than 2:1 at any level. */
        PN_CHECK(pn_buf_live(&out) < n / 2);
        printf("  %s: 64 KiB JSON -> %zu bytes\n", pn_codec_name(c), pn_buf_live(&out));
        /* Finished: no more writes. */
        PN_CHECK_EQ_INT(pn_encoder_write(e, "x", 1, PN_FLUSH_FINISH, &out), -EINVAL);
        pn_encoder_put(e);
        pn_buf_free(&out);
    }
    pn_compress_pool_free(pool);
    free(json);
}

/* Streamed with a flush per piece: after each flush, everything written so
 * far decodes (that is what server-sent events need), and the stream is not
 * yet complete; after FINISH it is. */
PN_TEST(streamed_flush_visible)
{
    size_t n = 200 * 1024;
    char *json = make_json(n);
    pn_compress_pool *pool;
    PN_CHECK_EQ_INT(pn_compress_pool_new(&pool, NULL), 0);
    for (size_t i = 0; i < 3; i++) {
        pn_codec c = all_codecs[i];
        if (!pn_codec_available(c))
            continue;
        pn_encoder *e = pn_encoder_get(pool, c, PN_SIZE_UNKNOWN);
        PN_CHECK(e != NULL);
        pn_buf out = PN_BUF_INIT;
        size_t off = 0, piece = 1;
        int pieces = 0;
        while (off < n) {
            size_t take = piece < n - off ? piece : n - off;
            PN_CHECK_EQ_INT(
                pn_encoder_write(e, pn_guard_copy(json + off, take), take, PN_FLUSH_SYNC, &out), 0);
            off += take;
            pieces++;
            /* Check visibility on a few pieces (decoding all is slow). */
            if (pieces < 12 || off == n) {
                pn_buf dec = PN_BUF_INIT;
                int complete;
                PN_CHECK_EQ_INT(
                    indep_decode(c, pn_buf_head(&out), pn_buf_live(&out), &dec, &complete), 0);
                if (pn_buf_live(&dec) != off)
                    fprintf(stderr, "  %s after %d pieces\n", pn_codec_name(c), pieces);
                PN_CHECK_EQ_INT(pn_buf_live(&dec), off);
                PN_CHECK(pn_buf_live(&dec) == off && memcmp(pn_buf_head(&dec), json, off) == 0);
                PN_CHECK(!complete);
                pn_buf_free(&dec);
            }
            piece = piece * 3 + 1;
        }
        /* An empty flush is allowed (a body message with no bytes). */
        PN_CHECK_EQ_INT(pn_encoder_write(e, NULL, 0, PN_FLUSH_SYNC, &out), 0);
        PN_CHECK_EQ_INT(pn_encoder_write(e, NULL, 0, PN_FLUSH_FINISH, &out), 0);
        PN_CHECK(decodes_to(c, &out, json, n, 1));
        pn_encoder_put(e);
        pn_buf_free(&out);
    }
    pn_compress_pool_free(pool);
    free(json);
}

/* PN_FLUSH_NONE lets the encoder buffer; the result still round-trips and
 * an empty body is a valid, complete stream. */
PN_TEST(no_flush_and_empty)
{
    size_t n = 100000;
    char *json = make_json(n);
    pn_compress_pool *pool;
    PN_CHECK_EQ_INT(pn_compress_pool_new(&pool, NULL), 0);
    for (size_t i = 0; i < 3; i++) {
        pn_codec c = all_codecs[i];
        if (!pn_codec_available(c))
            continue;
        pn_encoder *e = pn_encoder_get(pool, c, PN_SIZE_UNKNOWN);
        pn_buf out = PN_BUF_INIT;
        for (size_t off = 0; off < n; off += 1000)
            PN_CHECK_EQ_INT(pn_encoder_write(e, json + off, 1000, PN_FLUSH_NONE, &out), 0);
        PN_CHECK_EQ_INT(pn_encoder_write(e, NULL, 0, PN_FLUSH_FINISH, &out), 0);
        PN_CHECK(decodes_to(c, &out, json, n, 1));
        pn_encoder_put(e);
        pn_buf_clear(&out);

        e = pn_encoder_get(pool, c, 0);
        PN_CHECK_EQ_INT(pn_encoder_write(e, NULL, 0, PN_FLUSH_FINISH, &out), 0);
        PN_CHECK(pn_buf_live(&out) > 0);
        PN_CHECK(decodes_to(c, &out, "", 0, 1));
        pn_encoder_put(e);
        pn_buf_free(&out);
    }
    pn_compress_pool_free(pool);
    free(json);
}

/* Encoders are reset, not re-created: many sequential responses of varying
 * sizes create one encoder per codec, and after the first response zlib and
 * brotli allocate nothing more. */
PN_TEST(reuse_without_allocation)
{
    size_t n = 64 * 1024;
    char *json = make_json(n);
    pn_compress_pool *pool;
    PN_CHECK_EQ_INT(pn_compress_pool_new(&pool, NULL), 0);
    pn_buf out = PN_BUF_INIT;
    for (size_t i = 0; i < 3; i++) {
        pn_codec c = all_codecs[i];
        if (!pn_codec_available(c))
            continue;
        pn_compress_stats before, after;
        uint64_t warm = 0;
        pn_compress_pool_stats(pool, &before);
        for (int r = 0; r < 40; r++) {
            size_t len = r % 2 ? n : n / 3 + (size_t)r;
            pn_encoder *e = pn_encoder_get(pool, c, (int64_t)len);
            pn_buf_clear(&out);
            PN_CHECK_EQ_INT(pn_encoder_write(e, json, len, PN_FLUSH_FINISH, &out), 0);
            if (r == 0 || r == 39)
                PN_CHECK(decodes_to(c, &out, json, len, 1));
            pn_encoder_put(e);
            if (r == 1) {
                pn_compress_stats s;
                pn_compress_pool_stats(pool, &s);
                warm = s.lib_allocs;
            }
        }
        pn_compress_pool_stats(pool, &after);
        PN_CHECK_EQ_INT(after.created - before.created, 1);
        PN_CHECK_EQ_INT(after.taken - before.taken, 40);
        if (c != PN_CODEC_ZSTD && after.lib_allocs != warm) /* zstd's are not visible here */
            fprintf(stderr, "codec %s: %llu allocations after warm-up (warm %llu)\n",
                    pn_codec_name(c), (unsigned long long)after.lib_allocs,
                    (unsigned long long)warm);
        if (c != PN_CODEC_ZSTD)
            PN_CHECK_EQ_INT(after.lib_allocs, warm);
    }
    pn_buf_free(&out);
    pn_compress_pool_free(pool);
    free(json);
}

/* Concurrent responses each get their own encoder; only max_idle are kept. */
PN_TEST(pool_bounds)
{
    pn_compress_opts o = PN_COMPRESS_OPTS_DEFAULT;
    o.max_idle = 2;
    pn_compress_pool *pool;
    PN_CHECK_EQ_INT(pn_compress_pool_new(&pool, &o), 0);
    PN_CHECK(pn_encoder_get(pool, PN_CODEC_IDENTITY, 10) == NULL);
    for (size_t i = 0; i < 3; i++) {
        pn_codec c = all_codecs[i];
        if (!pn_codec_available(c))
            continue;
        pn_compress_stats s0, s1;
        pn_compress_pool_stats(pool, &s0);
        pn_encoder *e[5];
        pn_buf out[5];
        for (int k = 0; k < 5; k++) {
            e[k] = pn_encoder_get(pool, c, PN_SIZE_UNKNOWN);
            out[k] = (pn_buf)PN_BUF_INIT;
            PN_CHECK(e[k] != NULL);
            for (int j = 0; j < k; j++)
                PN_CHECK(e[j] != e[k]);
        }
        /* Interleaved streams stay independent. */
        for (int round = 0; round < 3; round++)
            for (int k = 0; k < 5; k++) {
                char msg[32];
                int len = snprintf(msg, sizeof(msg), "stream %d round %d\n", k, round);
                PN_CHECK_EQ_INT(pn_encoder_write(e[k], msg, (size_t)len, PN_FLUSH_SYNC, &out[k]),
                                0);
            }
        for (int k = 0; k < 5; k++) {
            char want[128];
            int len = snprintf(want, sizeof(want),
                               "stream %d round 0\nstream %d round 1\n"
                               "stream %d round 2\n",
                               k, k, k);
            PN_CHECK_EQ_INT(pn_encoder_write(e[k], NULL, 0, PN_FLUSH_FINISH, &out[k]), 0);
            PN_CHECK(decodes_to(c, &out[k], want, (size_t)len, 1));
            pn_buf_free(&out[k]);
        }
        for (int k = 0; k < 5; k++)
            pn_encoder_put(e[k]);
        pn_compress_pool_stats(pool, &s1);
        PN_CHECK_EQ_INT(s1.created - s0.created, 5);
        PN_CHECK_EQ_INT(s1.destroyed - s0.destroyed, 3);
    }
    pn_compress_pool_free(pool);
}

/* An aborted response (never finished) leaves a clean encoder behind. */
PN_TEST(abort_then_reuse)
{
    pn_compress_pool *pool;
    PN_CHECK_EQ_INT(pn_compress_pool_new(&pool, NULL), 0);
    for (size_t i = 0; i < 3; i++) {
        pn_codec c = all_codecs[i];
        if (!pn_codec_available(c))
            continue;
        pn_buf out = PN_BUF_INIT;
        pn_encoder *e = pn_encoder_get(pool, c, PN_SIZE_UNKNOWN);
        PN_CHECK_EQ_INT(pn_encoder_write(e, "half of a response", 18, PN_FLUSH_NONE, &out), 0);
        pn_encoder_put(e);
        pn_buf_clear(&out);
        pn_encoder *e2 = pn_encoder_get(pool, c, 5);
        PN_CHECK(e2 == e);
        PN_CHECK_EQ_INT(pn_encoder_write(e2, "hello", 5, PN_FLUSH_FINISH, &out), 0);
        PN_CHECK(decodes_to(c, &out, "hello", 5, 1));
        pn_encoder_put(e2);
        pn_buf_free(&out);
    }
    pn_compress_pool_free(pool);
}

#ifdef PN_HAVE_ZSTD
/* zstd writes the pledged size into the frame: a body of another size over
 * several writes is an error, not a corrupt stream; the encoder is dead
 * after it, and clean again when reused. */
PN_TEST(zstd_size_mismatch)
{
    pn_compress_pool *pool;
    PN_CHECK_EQ_INT(pn_compress_pool_new(&pool, NULL), 0);
    pn_buf out = PN_BUF_INIT;
    pn_encoder *e = pn_encoder_get(pool, PN_CODEC_ZSTD, 10);
    PN_CHECK_EQ_INT(pn_encoder_write(e, "short", 5, PN_FLUSH_SYNC, &out), 0);
    PN_CHECK_EQ_INT(pn_encoder_write(e, "er", 2, PN_FLUSH_FINISH, &out), -EINVAL);
    PN_CHECK_EQ_INT(pn_encoder_write(e, "x", 1, PN_FLUSH_FINISH, &out), -EINVAL);
    pn_encoder_put(e);
    /* A single FINISH write sets the size itself. */
    pn_buf_clear(&out);
    e = pn_encoder_get(pool, PN_CODEC_ZSTD, 10);
    PN_CHECK_EQ_INT(pn_encoder_write(e, "short", 5, PN_FLUSH_FINISH, &out), 0);
    PN_CHECK(decodes_to(PN_CODEC_ZSTD, &out, "short", 5, 1));
    pn_encoder_put(e);
    pn_buf_clear(&out);
    e = pn_encoder_get(pool, PN_CODEC_ZSTD, 5);
    PN_CHECK_EQ_INT(pn_encoder_write(e, "right", 5, PN_FLUSH_FINISH, &out), 0);
    PN_CHECK(decodes_to(PN_CODEC_ZSTD, &out, "right", 5, 1));
    PN_CHECK_EQ_INT(ZSTD_getFrameContentSize(pn_buf_head(&out), pn_buf_live(&out)), 5);
    pn_encoder_put(e);
    pn_buf_free(&out);
    pn_compress_pool_free(pool);
}
#endif

/* ---- request decoders --------------------------------------------------- */

/* Compress with the library itself (not our encoder). */
static int lib_compress(pn_codec c, const void *p, size_t n, pn_buf *out)
{
    (void)p, (void)n, (void)out;
    switch (c) {
#ifdef PN_HAVE_ZLIB
    case PN_CODEC_GZIP: {
        z_stream z;
        memset(&z, 0, sizeof(z));
        if (deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return -1;
        pn_buf_reserve(out, deflateBound(&z, (uLong)n));
        z.next_in = (Bytef *)p;
        z.avail_in = (uInt)n;
        z.next_out = (Bytef *)pn_buf_tail(out);
        z.avail_out = (uInt)pn_buf_space(out);
        int rc = deflate(&z, Z_FINISH);
        out->len += pn_buf_space(out) - z.avail_out;
        deflateEnd(&z);
        return rc == Z_STREAM_END ? 0 : -1;
    }
#endif
#ifdef PN_HAVE_ZSTD
    case PN_CODEC_ZSTD: {
        pn_buf_reserve(out, ZSTD_compressBound(n));
        size_t r = ZSTD_compress(pn_buf_tail(out), pn_buf_space(out), p, n, 3);
        if (ZSTD_isError(r))
            return -1;
        out->len += r;
        return 0;
    }
#endif
#ifdef PN_HAVE_BROTLI
    case PN_CODEC_BR: {
        size_t cap = BrotliEncoderMaxCompressedSize(n);
        pn_buf_reserve(out, cap);
        if (!BrotliEncoderCompress(5, 22, BROTLI_MODE_GENERIC, n, p, &cap,
                                   (uint8_t *)pn_buf_tail(out)))
            return -1;
        out->len += cap;
        return 0;
    }
#endif
    default:
        return -1;
    }
}

/* Decode `enc` fed in pieces of `piece` bytes (each in a guard-page copy).
 * Returns the final status. */
static int decode_pieces(pn_codec c, const pn_buf *enc, size_t piece, uint64_t cap, pn_buf *out)
{
    pn_decoder *d;
    if (pn_decoder_new(&d, c, cap) != 0)
        return -100;
    size_t n = pn_buf_live(enc), off = 0;
    int rc = PN_DECODE_MORE;
    do {
        size_t take = piece < n - off ? piece : n - off;
        rc = pn_decoder_write(d, pn_guard_copy(pn_buf_head(enc) + off, take), take, off + take == n,
                              out);
        off += take;
    } while (rc == PN_DECODE_MORE && off < n);
    if (rc == PN_DECODE_MORE && n == 0)
        rc = pn_decoder_write(d, NULL, 0, 1, out);
    pn_decoder_free(d);
    return rc;
}

PN_TEST(decode_round_trip)
{
    size_t n = 300 * 1000;
    char *json = make_json(n);
    for (size_t i = 0; i < 3; i++) {
        pn_codec c = all_codecs[i];
        pn_decoder *d = NULL;
        if (!pn_codec_available(c)) {
            PN_CHECK_EQ_INT(pn_decoder_new(&d, c, 0), -EINVAL);
            continue;
        }
        pn_buf enc = PN_BUF_INIT, out = PN_BUF_INIT;
        PN_CHECK_EQ_INT(lib_compress(c, json, n, &enc), 0);
        size_t pieces[] = {1, 7, 4096, 1 << 20};
        for (size_t k = 0; k < 4; k++) {
            if (pieces[k] == 1 && c == PN_CODEC_BR)
                continue; /* byte-at-a-time brotli is slow under ASan; 7 covers it */
            pn_buf_clear(&out);
            PN_CHECK_EQ_INT(decode_pieces(c, &enc, pieces[k], 16 << 20, &out), PN_DECODE_DONE);
            PN_CHECK(pn_buf_live(&out) == n && memcmp(pn_buf_head(&out), json, n) == 0);
        }
        /* Our own encoder's streams (with flushes) decode too. */
        pn_compress_pool *pool;
        pn_compress_pool_new(&pool, NULL);
        pn_encoder *e = pn_encoder_get(pool, c, PN_SIZE_UNKNOWN);
        pn_buf_clear(&enc);
        for (size_t off = 0, piece = 1; off < n; off += piece, piece = piece * 3 + 1)
            pn_encoder_write(e, json + off, piece < n - off ? piece : n - off, PN_FLUSH_SYNC, &enc);
        pn_encoder_write(e, NULL, 0, PN_FLUSH_FINISH, &enc);
        pn_encoder_put(e);
        pn_compress_pool_free(pool);
        for (size_t piece = 999; piece < (2u << 20); piece <<= 11) {
            pn_buf_clear(&out);
            PN_CHECK_EQ_INT(decode_pieces(c, &enc, piece, 0, &out), PN_DECODE_DONE);
            PN_CHECK(pn_buf_live(&out) == n && memcmp(pn_buf_head(&out), json, n) == 0);
        }
        /* Output of exactly one decode slice (64 KiB): the frame's end comes
         * with a full output buffer. */
        pn_buf_clear(&enc);
        PN_CHECK_EQ_INT(lib_compress(c, json, 65536, &enc), 0);
        pn_buf_clear(&out);
        PN_CHECK_EQ_INT(decode_pieces(c, &enc, 1 << 20, 0, &out), PN_DECODE_DONE);
        PN_CHECK_EQ_INT(pn_buf_live(&out), 65536);
        pn_buf_clear(&out);
        PN_CHECK_EQ_INT(decode_pieces(c, &enc, 1 << 20, 65536, &out), PN_DECODE_DONE);
        /* An empty body is an empty stream. */
        pn_buf empty = PN_BUF_INIT;
        pn_buf_clear(&out);
        PN_CHECK_EQ_INT(decode_pieces(c, &empty, 1, 10, &out), PN_DECODE_DONE);
        PN_CHECK_EQ_INT(pn_buf_live(&out), 0);
        pn_buf_free(&enc);
        pn_buf_free(&out);
    }
    free(json);
}

/* Request bodies arrive in pieces: whatever a client flushed decodes as
 * soon as it arrives, for every codec. */
PN_TEST(decode_incremental_visibility)
{
    size_t n = 300 * 1000;
    char *json = make_json(n);
    pn_compress_pool *pool;
    pn_compress_pool_new(&pool, NULL);
    for (size_t i = 0; i < 3; i++) {
        pn_codec c = all_codecs[i];
        if (!pn_codec_available(c))
            continue;
        pn_encoder *e = pn_encoder_get(pool, c, PN_SIZE_UNKNOWN);
        pn_decoder *d;
        PN_CHECK_EQ_INT(pn_decoder_new(&d, c, n), 0);
        pn_buf enc = PN_BUF_INIT, out = PN_BUF_INIT;
        size_t off = 0;
        for (size_t piece = 1; off < n; piece = piece * 3 + 1) {
            size_t take = piece < n - off ? piece : n - off;
            pn_buf_clear(&enc);
            PN_CHECK_EQ_INT(pn_encoder_write(e, json + off, take, PN_FLUSH_SYNC, &enc), 0);
            off += take;
            PN_CHECK_EQ_INT(pn_decoder_write(d, pn_guard_copy(pn_buf_head(&enc), pn_buf_live(&enc)),
                                             pn_buf_live(&enc), 0, &out),
                            PN_DECODE_MORE);
            PN_CHECK_EQ_INT(pn_buf_live(&out), off);
        }
        pn_buf_clear(&enc);
        PN_CHECK_EQ_INT(pn_encoder_write(e, NULL, 0, PN_FLUSH_FINISH, &enc), 0);
        PN_CHECK_EQ_INT(pn_decoder_write(d, pn_buf_head(&enc), pn_buf_live(&enc), 1, &out),
                        PN_DECODE_DONE);
        PN_CHECK(pn_buf_live(&out) == n && memcmp(pn_buf_head(&out), json, n) == 0);
        pn_decoder_free(d);
        pn_encoder_put(e);
        pn_buf_free(&enc);
        pn_buf_free(&out);
    }
    pn_compress_pool_free(pool);
    free(json);
}

/* A decompression bomb: 64 MiB of zeros compress to a few KiB; the decoder
 * stops at the cap without producing (much) more than the cap. */
PN_TEST(decode_bomb_cap)
{
    size_t n = 64u << 20;
    char *zeros = calloc(1, n);
    for (size_t i = 0; i < 3; i++) {
        pn_codec c = all_codecs[i];
        if (!pn_codec_available(c))
            continue;
        pn_buf enc = PN_BUF_INIT, out = PN_BUF_INIT;
        PN_CHECK_EQ_INT(lib_compress(c, zeros, n, &enc), 0);
        PN_CHECK(pn_buf_live(&enc) < 1 << 20);
        uint64_t cap = 1 << 20;
        PN_CHECK_EQ_INT(decode_pieces(c, &enc, 1 << 20, cap, &out), PN_DECODE_TOO_BIG);
        PN_CHECK(pn_buf_live(&out) <= cap + 1);
        PN_CHECK(out.cap <= 4 * cap);
        /* The cap is inclusive: exactly the decoded size passes. */
        pn_buf small = PN_BUF_INIT;
        PN_CHECK_EQ_INT(lib_compress(c, zeros, 100000, &small), 0);
        pn_buf_clear(&out);
        PN_CHECK_EQ_INT(decode_pieces(c, &small, 100, 100000, &out), PN_DECODE_DONE);
        pn_buf_clear(&out);
        PN_CHECK_EQ_INT(decode_pieces(c, &small, 100, 99999, &out), PN_DECODE_TOO_BIG);
        /* Sticky: further writes keep failing. */
        pn_decoder *d;
        pn_decoder_new(&d, c, 10);
        pn_buf_clear(&out);
        PN_CHECK_EQ_INT(pn_decoder_write(d, pn_buf_head(&small), pn_buf_live(&small), 0, &out),
                        PN_DECODE_TOO_BIG);
        PN_CHECK_EQ_INT(pn_decoder_write(d, "x", 1, 1, &out), PN_DECODE_TOO_BIG);
        PN_CHECK(pn_decoder_total(d) <= 11);
        pn_decoder_free(d);
        pn_buf_free(&small);
        pn_buf_free(&enc);
        pn_buf_free(&out);
    }
    free(zeros);
}

PN_TEST(decode_bad_input)
{
    const char *text = "hello hello hello hello hello hello";
    size_t tn = strlen(text);
    for (size_t i = 0; i < 3; i++) {
        pn_codec c = all_codecs[i];
        if (!pn_codec_available(c))
            continue;
        pn_buf enc = PN_BUF_INIT, out = PN_BUF_INIT, bad = PN_BUF_INIT;
        PN_CHECK_EQ_INT(lib_compress(c, text, tn, &enc), 0);
        /* Truncated: MORE while data arrives, BAD at the end. */
        pn_buf_append(&bad, pn_buf_head(&enc), pn_buf_live(&enc) - 1);
        PN_CHECK_EQ_INT(decode_pieces(c, &bad, 1000, 0, &out), PN_DECODE_BAD);
        /* Garbage. */
        pn_buf_clear(&bad);
        pn_buf_append_str(&bad, "this is not compressed at all");
        PN_CHECK_EQ_INT(decode_pieces(c, &bad, 1000, 0, &out), PN_DECODE_BAD);
        /* Trailing garbage after a complete stream. */
        pn_buf_clear(&bad);
        pn_buf_append(&bad, pn_buf_head(&enc), pn_buf_live(&enc));
        pn_buf_append_str(&bad, "junk");
        PN_CHECK_EQ_INT(decode_pieces(c, &bad, 3, 0, &out), PN_DECODE_BAD);
        /* Two gzip members / two zstd frames are one body (RFC 1952 §2.2);
         * two brotli streams are not. */
        pn_buf_clear(&bad);
        pn_buf_append(&bad, pn_buf_head(&enc), pn_buf_live(&enc));
        pn_buf_append(&bad, pn_buf_head(&enc), pn_buf_live(&enc));
        pn_buf_clear(&out);
        int rc = decode_pieces(c, &bad, 5, 0, &out);
        if (c == PN_CODEC_BR) {
            PN_CHECK_EQ_INT(rc, PN_DECODE_BAD);
        } else {
            PN_CHECK_EQ_INT(rc, PN_DECODE_DONE);
            PN_CHECK_EQ_INT(pn_buf_live(&out), 2 * tn);
        }
        pn_buf_free(&enc);
        pn_buf_free(&out);
        pn_buf_free(&bad);
    }
}

#ifdef PN_HAVE_ZSTD
/* RFC 9659 §3: a frame asking for a window over 8 MiB is refused before the
 * decoder allocates it. */
PN_TEST(zstd_window_limit)
{
    ZSTD_CCtx *z = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, 25);
    pn_buf enc = PN_BUF_INIT, out = PN_BUF_INIT;
    pn_buf_reserve(&enc, 4096);
    /* Two calls, so zstd cannot see the size and keeps the big window. */
    ZSTD_inBuffer in = {"abcabcabc", 9, 0};
    ZSTD_outBuffer o = {pn_buf_tail(&enc), pn_buf_space(&enc), 0};
    ZSTD_compressStream2(z, &o, &in, ZSTD_e_continue);
    in = (ZSTD_inBuffer){"abc", 3, 0};
    PN_CHECK_EQ_INT(ZSTD_compressStream2(z, &o, &in, ZSTD_e_end), 0);
    enc.len += o.pos;
    ZSTD_freeCCtx(z);
    /* libzstd's own limit (128 MiB) accepts it: the stream is valid. */
    PN_CHECK(decodes_to(PN_CODEC_ZSTD, &enc, "abcabcabcabc", 12, 1));
    PN_CHECK_EQ_INT(decode_pieces(PN_CODEC_ZSTD, &enc, 100, 0, &out), PN_DECODE_BAD);
    pn_buf_free(&enc);
    pn_buf_free(&out);
}

/* Found by fuzz/fuzz_decompress.c (seeds zstd_legacy_v07, zstd_split_header):
 * only RFC 8878 frames are the "zstd" coding, and the verdict never depends
 * on how the body is split into reads. */
PN_TEST(zstd_frames_only_however_split)
{
    /* A pre-1.0 (v0.7) frame asking for a 128 MiB window: libzstd's legacy
     * decoder ignores ZSTD_d_windowLogMax. */
    static const unsigned char legacy[] = {0x27, 0xb5, 0x2f, 0xfd, 0x00, 0x88, 0x40,
                                           0x00, 0x01, 'A',  0xc0, 0x00, 0x00};
    /* A header whose tail, fed apart from its descriptor, looks like a whole
     * frame holding "EVIL": decoded in place of the real one when split. */
    static const unsigned char split[] = {0x28, 0xb5, 0x2f, 0xfd, 0x40, 0x28, 0xb5, 0x2f, 0xfd,
                                          0x20, 0x04, 0x21, 0x00, 0x00, 'E',  'V',  'I',  'L'};
    const struct {
        const unsigned char *p;
        size_t n;
    } cases[] = {{legacy, sizeof(legacy)}, {split, sizeof(split)}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pn_buf enc = PN_BUF_INIT;
        pn_buf_append(&enc, (const char *)cases[i].p, cases[i].n);
        for (size_t piece = 1; piece <= cases[i].n; piece++) {
            pn_buf out = PN_BUF_INIT;
            PN_CHECK_EQ_INT(decode_pieces(PN_CODEC_ZSTD, &enc, piece, 1u << 20, &out),
                            PN_DECODE_BAD);
            pn_buf_free(&out);
        }
        pn_buf_free(&enc);
    }
}
#endif

/* ---- policy ------------------------------------------------------------- */

static int eligible(int status, int head, const char *const *hdrs, int64_t size, const char *extra)
{
    pn_compress_policy pol = {512, extra};
    pn_compress_resp r;
    pn_compress_resp_init(&r, status, head);
    for (; hdrs && hdrs[0]; hdrs += 2)
        pn_compress_resp_header(&r, hdrs[0], strlen(hdrs[0]), hdrs[1], strlen(hdrs[1]));
    if (size != -2)
        r.body_size = size;
    return pn_compress_eligible(&pol, &r);
}

PN_TEST(skip_rules)
{
    const char *json[] = {"content-type", "application/json", NULL};
    PN_CHECK(eligible(200, 0, json, 1000, NULL));
    PN_CHECK(eligible(200, 0, json, PN_SIZE_UNKNOWN, NULL));
    PN_CHECK(eligible(404, 0, json, 1000, NULL));
    PN_CHECK(!eligible(101, 0, json, 1000, NULL));
    PN_CHECK(!eligible(204, 0, json, 1000, NULL));
    PN_CHECK(!eligible(304, 0, json, 1000, NULL));
    PN_CHECK(!eligible(206, 0, json, 1000, NULL));
    PN_CHECK(!eligible(200, 1, json, 1000, NULL));
    /* under --compression-min-size, or empty */
    PN_CHECK(!eligible(200, 0, json, 511, NULL));
    PN_CHECK(eligible(200, 0, json, 512, NULL));
    PN_CHECK(!eligible(200, 0, json, 0, NULL));
    const char *enc[] = {"Content-Type", "text/html", "Content-Encoding", "gzip", NULL};
    PN_CHECK(!eligible(200, 0, enc, 1000, NULL));
    const char *nt[] = {"content-type", "text/html", "CACHE-CONTROL", "max-age=60, No-Transform",
                        NULL};
    PN_CHECK(!eligible(200, 0, nt, 1000, NULL));
    const char *cc[] = {"content-type", "text/html", "cache-control", "no-cache, no-store", NULL};
    PN_CHECK(eligible(200, 0, cc, 1000, NULL));
    const char *cr[] = {"content-type", "text/html", "content-range", "bytes 0-9/100", NULL};
    PN_CHECK(!eligible(200, 0, cr, 1000, NULL));
    const char *none[] = {"x-foo", "bar", NULL};
    PN_CHECK(!eligible(200, 0, none, 1000, NULL));
    /* Content-Length gives the size when the caller does not know it. */
    const char *small[] = {"content-type", "text/plain", "content-length", " 100 ", NULL};
    PN_CHECK(!eligible(200, 0, small, -2, NULL));
    const char *big[] = {"content-type", "text/plain", "content-length", "100000", NULL};
    PN_CHECK(eligible(200, 0, big, -2, NULL));
    const char *png[] = {"content-type", "image/png", NULL};
    PN_CHECK(!eligible(200, 0, png, 1000, NULL));
    PN_CHECK(eligible(200, 0, png, 1000, "application/wasm, image/png"));
    PN_CHECK(eligible(200, 0, png, 1000, "image/*"));
    PN_CHECK(!eligible(200, 0, png, 1000, "image/jpeg,application/*"));
}

static int type_ok(const char *t, const char *extra)
{
    return pn_compress_type_ok(pn_guard_copy(t, strlen(t)), strlen(t), extra);
}

PN_TEST(content_types)
{
    PN_CHECK(type_ok("text/html", NULL));
    PN_CHECK(type_ok("text/html; charset=utf-8", NULL));
    PN_CHECK(type_ok("TEXT/Plain", NULL));
    PN_CHECK(type_ok("text/event-stream", NULL));
    PN_CHECK(type_ok("text/css", NULL));
    PN_CHECK(type_ok("application/json", NULL));
    PN_CHECK(type_ok("application/problem+json", NULL));
    PN_CHECK(type_ok("application/ld+json;profile=x", NULL));
    PN_CHECK(type_ok("application/javascript", NULL));
    PN_CHECK(type_ok("application/x-javascript", NULL));
    PN_CHECK(type_ok("application/xml", NULL));
    PN_CHECK(type_ok("application/atom+xml", NULL));
    PN_CHECK(type_ok("image/svg+xml", NULL));
    PN_CHECK(type_ok("  application/json  ", NULL));
    PN_CHECK(!type_ok("application/octet-stream", NULL));
    PN_CHECK(!type_ok("application/jsonx", NULL));
    PN_CHECK(!type_ok("application/+json", NULL));
    PN_CHECK(!type_ok("image/png", NULL));
    PN_CHECK(!type_ok("video/mp4", NULL));
    PN_CHECK(!type_ok("json", NULL));
    PN_CHECK(!type_ok("", NULL));
    PN_CHECK(!type_ok("text/", NULL));
    PN_CHECK(!type_ok("/json", NULL));
    PN_CHECK(type_ok("application/x-ndjson", "application/x-ndjson"));
    PN_CHECK(type_ok("Application/X-NDJSON; charset=utf-8", " application/x-ndjson "));
    PN_CHECK(!type_ok("application/x-ndjsonx", "application/x-ndjson"));
    PN_CHECK_EQ_INT(pn_compress_types_valid(""), 0);
    PN_CHECK_EQ_INT(pn_compress_types_valid("image/png, application/*"), 0);
    PN_CHECK_EQ_INT(pn_compress_types_valid("image"), -EINVAL);
    PN_CHECK_EQ_INT(pn_compress_types_valid("image/png;q=1"), -EINVAL);
    PN_CHECK_EQ_INT(pn_compress_types_valid("image/ png"), -EINVAL);
}

PN_TEST(vary_and_cache_control)
{
    PN_CHECK(!pn_vary_has_accept_encoding("Origin", 6));
    PN_CHECK(pn_vary_has_accept_encoding("origin, Accept-Encoding", 23));
    PN_CHECK(pn_vary_has_accept_encoding("*", 1));
    PN_CHECK(!pn_vary_has_accept_encoding("Accept-Encodings", 16));
    PN_CHECK(!pn_vary_has_accept_encoding("", 0));
    const char *cc = "public, no-transform";
    PN_CHECK(pn_cache_control_no_transform(pn_guard_copy(cc, strlen(cc)), strlen(cc)));
    cc = "no-transformer";
    PN_CHECK(!pn_cache_control_no_transform(pn_guard_copy(cc, strlen(cc)), strlen(cc)));
    cc = "no-transform";
    PN_CHECK(pn_cache_control_no_transform(pn_guard_copy(cc, strlen(cc)), strlen(cc)));
}

static void check_etag(const char *in, const char *want)
{
    pn_buf out = PN_BUF_INIT;
    PN_CHECK_EQ_INT(pn_etag_weaken(pn_guard_copy(in, strlen(in)), strlen(in), &out), 0);
    PN_CHECK_SLICE(pn_buf_head(&out), pn_buf_live(&out), want);
    pn_buf_free(&out);
}

PN_TEST(etag_weakening)
{
    check_etag("\"abc\"", "W/\"abc\"");
    check_etag(" \"abc\" ", "W/\"abc\"");
    check_etag("W/\"abc\"", "W/\"abc\"");
    check_etag("\"\"", "W/\"\"");
    check_etag("abc", "abc");
    check_etag("\"", "\"");
}

int main(void)
{
    PN_RUN(names_and_availability);
    PN_RUN(parse_order);
    PN_RUN(one_shot_round_trip);
    PN_RUN(streamed_flush_visible);
    PN_RUN(no_flush_and_empty);
    PN_RUN(reuse_without_allocation);
    PN_RUN(pool_bounds);
    PN_RUN(abort_then_reuse);
#ifdef PN_HAVE_ZSTD
    PN_RUN(zstd_size_mismatch);
    PN_RUN(zstd_window_limit);
    PN_RUN(zstd_frames_only_however_split);
#endif
    PN_RUN(decode_round_trip);
    PN_RUN(decode_incremental_visibility);
    PN_RUN(decode_bomb_cap);
    PN_RUN(decode_bad_input);
    PN_RUN(skip_rules);
    PN_RUN(content_types);
    PN_RUN(vary_and_cache_control);
    PN_RUN(etag_weakening);
    return pn_test_summary();
}
