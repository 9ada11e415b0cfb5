/*
 * fuzz_decompress.c — libFuzzer target for the request-body decoders
 * (pn_decoder_* in pn_compress.c and the pn_codec_*.c files, used by
 * --decompress-requests): the bytes are the client's, and the cap
 * (--max-decompressed-size) is what stands between a small compressed body
 * and a decompression bomb.
 *
 * Input: four control bytes, then the compressed body.
 *   byte 0: bits 0-1 the codec (0 gzip, 1 zstd, 2 br, 3 gzip), bits 2-5 the
 *           cap (an index into `caps`), bit 6: end the body with a separate
 *           empty write instead of flagging the last piece;
 *   bytes 1-3: the sizes of the pieces the body is fed in, used in turn
 *           (0 = an empty write, 255 = everything left; all zero = the
 *           whole body in one write).
 * Each piece is an exact-size heap copy, so ASan sees any over-read.
 * Checked, after every write:
 *   - the status is one of PN_DECODE_*; MORE never answers the last piece;
 *   - the decoder only appends to `out` (a prefix written before survives),
 *     and pn_decoder_total() is what it appended;
 *   - the cap: the total never exceeds it unless the status is TOO_BIG, and
 *     then by exactly one byte (the decoder asks for one byte more than the
 *     cap allows to see the overshoot, never more);
 *   - TOO_BIG and BAD are sticky: another write changes nothing.
 * And across splits: the same body fed in one write, with the same cap,
 * ends with the same status and the same bytes; for a corrupt body (BAD),
 * how much is decoded before the corruption is noticed may depend on the
 * split, so the other side may say BAD or TOO_BIG and the outputs need only
 * agree on their common prefix.
 * LeakSanitizer checks that pn_decoder_free() releases everything.
 */
#include "pn_compress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

/* Caps around the 64 KiB decode slice and small enough that a bomb costs
 * at most 1 MiB per run.  No 0 (no cap): the bridge always sets one, and a
 * 4 KiB zstd or brotli bomb would decode to hundreds of MiB. */
static const uint64_t caps[16] = {
    1, 2, 10, 100, 255, 256, 1000, 4095, 4096, 65535, 65536, 65537, 100000, 131073, 500000, 1 << 20,
};

static const char PREFIX[] = "pfx";
#define PREFIX_LEN (sizeof(PREFIX) - 1)

typedef struct {
    int rc;
    pn_buf out;
} result;

/* Decode body[0..n) with `cap`, in pieces of sizes[i % 3] (see above). */
static void decode(pn_codec codec, uint64_t cap, const uint8_t *body, size_t n,
                   const uint8_t sizes[3], int empty_last, result *res)
{
    pn_decoder *d = NULL;
    CHECK(pn_decoder_new(&d, codec, cap) == 0 && d != NULL);
    pn_buf *out = &res->out;
    CHECK(pn_buf_append(out, PREFIX, PREFIX_LEN) == 0);
    int whole = sizes[0] == 0 && sizes[1] == 0 && sizes[2] == 0;
    size_t off = 0, turn = 0;
    int rc = PN_DECODE_MORE;
    for (;;) {
        size_t k = n - off;
        if (!whole) {
            size_t s = sizes[turn++ % 3];
            if (s != 255 && s < k)
                k = s;
        }
        int last = !empty_last && off + k == n;
        uint8_t *piece = k ? malloc(k) : NULL;
        if (k)
            memcpy(piece, body + off, k);
        rc = pn_decoder_write(d, piece, k, last, out);
        free(piece);
        off += k;

        CHECK(rc == PN_DECODE_MORE || rc == PN_DECODE_DONE || rc == PN_DECODE_TOO_BIG ||
              rc == PN_DECODE_BAD);
        CHECK(!(last && rc == PN_DECODE_MORE));
        CHECK(out->off == 0 && out->len >= PREFIX_LEN && !memcmp(out->data, PREFIX, PREFIX_LEN));
        uint64_t total = pn_decoder_total(d);
        CHECK(total == out->len - PREFIX_LEN);
        if (rc == PN_DECODE_TOO_BIG)
            CHECK(total == cap + 1);
        else
            CHECK(total <= cap);
        if (rc != PN_DECODE_MORE)
            break;
        if (off == n) {
            if (!empty_last)
                break; /* unreachable: last && MORE trapped above */
            rc = pn_decoder_write(d, NULL, 0, 1, out);
            CHECK(rc == PN_DECODE_DONE || rc == PN_DECODE_TOO_BIG || rc == PN_DECODE_BAD);
            CHECK(pn_decoder_total(d) == total && out->len == PREFIX_LEN + total);
            break;
        }
    }
    if (rc == PN_DECODE_TOO_BIG || rc == PN_DECODE_BAD) {
        uint64_t total = pn_decoder_total(d);
        CHECK(pn_decoder_write(d, "\x1f", 1, 0, out) == rc);
        CHECK(pn_decoder_write(d, NULL, 0, 1, out) == rc);
        CHECK(pn_decoder_total(d) == total && out->len == PREFIX_LEN + total);
    }
    pn_decoder_free(d);
    res->rc = rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pn_decoder *none = NULL;
    CHECK(pn_decoder_new(&none, PN_CODEC_IDENTITY, 100) == -EINVAL && none == NULL);
    if (size < 4)
        return 0;
    static const pn_codec codecs[4] = {PN_CODEC_GZIP, PN_CODEC_ZSTD, PN_CODEC_BR, PN_CODEC_GZIP};
    pn_codec codec = codecs[data[0] & 3];
    uint64_t cap = caps[(data[0] >> 2) & 15];
    int empty_last = (data[0] >> 6) & 1;
    const uint8_t *sizes = data + 1;
    const uint8_t *body = data + 4;
    size_t n = size - 4;
    /* The fuzz build compiles every codec in (make fuzz: codecs-check). */
    CHECK(pn_codec_available(codec));

    result split = {0, PN_BUF_INIT}, one = {0, PN_BUF_INIT};
    decode(codec, cap, body, n, sizes, empty_last, &split);
    static const uint8_t whole[3] = {0, 0, 0};
    decode(codec, cap, body, n, whole, 0, &one);

    /* Same verdict and bytes, except that a corrupt body may yield more or
     * less output before libzstd notices (it checks a block whole when the
     * whole block is there, streams a raw block's bytes otherwise), so BAD
     * on one side may be TOO_BIG on the other: rejected either way. */
    size_t a = split.out.len, b = one.out.len;
    if (split.rc == PN_DECODE_BAD || one.rc == PN_DECODE_BAD) {
        CHECK((split.rc == PN_DECODE_BAD || split.rc == PN_DECODE_TOO_BIG) &&
              (one.rc == PN_DECODE_BAD || one.rc == PN_DECODE_TOO_BIG));
        CHECK(!memcmp(split.out.data, one.out.data, a < b ? a : b));
    } else {
        CHECK(split.rc == one.rc);
        CHECK(a == b && !memcmp(split.out.data, one.out.data, a));
    }
    pn_buf_free(&split.out);
    pn_buf_free(&one.out);
    return 0;
}
