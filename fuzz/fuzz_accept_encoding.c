/*
 * fuzz_accept_encoding.c — libFuzzer target for the Accept-Encoding
 * negotiator (pn_accept_encoding.c) and the header-value helpers of
 * pn_compress_policy.c that read client- or app-supplied bytes.
 *
 * Input: one control byte, then a field value.  The control byte picks the
 * server's codec order (a permutation and a length).  The value is read
 * from an exact-size heap copy, so ASan sees any over-read.  Checked:
 *   - the answer is identity or one of the offered codecs;
 *   - it does not change when the value is split at any comma into two
 *     field lines (RFC 9110 §5.3), nor when the value is fed twice
 *     (duplicates keep the lowest q, so repeating everything changes
 *     nothing);
 *   - taking the winner out of the offer never yields it again.
 * The same bytes also go through the Cache-Control, Vary, media-type and
 * ETag helpers, --compression-order and --compression-types parsing.
 */
#include "pn_accept_encoding.h"
#include "pn_compress.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static pn_codec choose(const char *v, size_t n, const pn_codec *order, size_t norder)
{
    pn_accept_encoding ae;
    pn_accept_encoding_init(&ae);
    pn_accept_encoding_feed(&ae, v, n);
    return pn_accept_encoding_choose(&ae, order, norder, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const pn_codec perms[6][3] = {
        {PN_CODEC_ZSTD, PN_CODEC_BR, PN_CODEC_GZIP}, {PN_CODEC_ZSTD, PN_CODEC_GZIP, PN_CODEC_BR},
        {PN_CODEC_BR, PN_CODEC_ZSTD, PN_CODEC_GZIP}, {PN_CODEC_BR, PN_CODEC_GZIP, PN_CODEC_ZSTD},
        {PN_CODEC_GZIP, PN_CODEC_ZSTD, PN_CODEC_BR}, {PN_CODEC_GZIP, PN_CODEC_BR, PN_CODEC_ZSTD},
    };
    const pn_codec *order = perms[data[0] % 6];
    size_t norder = (size_t)((data[0] >> 3) % 4);
    size_t n = size - 1;
    char *v = malloc(n ? n : 1);
    memcpy(v, data + 1, n);

    pn_codec got = choose(v, n, order, norder);
    int offered = got == PN_CODEC_IDENTITY;
    for (size_t i = 0; i < norder; i++)
        offered |= got == order[i];
    CHECK(offered);

    /* Split at every comma: same answer. */
    for (size_t i = 0; i < n; i++) {
        if (v[i] != ',')
            continue;
        pn_accept_encoding ae;
        pn_accept_encoding_init(&ae);
        char *a = malloc(i ? i : 1), *b = malloc(n - i - 1 ? n - i - 1 : 1);
        memcpy(a, v, i);
        memcpy(b, v + i + 1, n - i - 1);
        pn_accept_encoding_feed(&ae, a, i);
        pn_accept_encoding_feed(&ae, b, n - i - 1);
        CHECK(pn_accept_encoding_choose(&ae, order, norder, NULL) == got);
        free(a);
        free(b);
    }
    /* Repeated: same answer. */
    {
        pn_accept_encoding ae;
        pn_accept_encoding_init(&ae);
        pn_accept_encoding_feed(&ae, v, n);
        pn_accept_encoding_feed(&ae, v, n);
        CHECK(pn_accept_encoding_choose(&ae, order, norder, NULL) == got);
    }
    /* Dropping the winner from the offer never yields it again. */
    if (got != PN_CODEC_IDENTITY) {
        pn_codec rest[3];
        size_t k = 0;
        for (size_t i = 0; i < norder; i++)
            if (order[i] != got)
                rest[k++] = order[i];
        CHECK(choose(v, n, rest, k) != got);
    }

    /* Header-value helpers on the same bytes. */
    (void)pn_cache_control_no_transform(v, n);
    (void)pn_vary_has_accept_encoding(v, n);
    (void)pn_compress_type_ok(v, n, "image/png, application/*");
    int q = pn_qvalue_parse(v, n);
    CHECK(q >= -1 && q <= 1000);
    pn_buf out = PN_BUF_INIT;
    CHECK(pn_etag_weaken(v, n, &out) == 0);
    CHECK(pn_buf_live(&out) <= n + 2);
    pn_buf_free(&out);

    /* The config parsers take NUL-terminated strings. */
    char *s = malloc(n + 1);
    memcpy(s, v, n);
    s[n] = 0;
    pn_codec ord[PN_CODEC_COUNT];
    size_t nord = 0;
    const char *bad = NULL;
    size_t badlen = 0;
    if (pn_codec_parse_order(s, ord, &nord, &bad, &badlen) == 0)
        CHECK(nord <= 3);
    else
        CHECK(bad >= s && bad + badlen <= s + n);
    if (pn_compress_types_valid(s) == 0)
        (void)pn_compress_type_ok("text/plain", 10, s);
    free(s);
    free(v);
    return 0;
}
