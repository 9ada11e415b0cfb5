/*
 * Unit tests for pn_ws_deflate: the RFC 7692 §7.2.3 examples, round trips
 * through our compressor and decompressor for every window size with and
 * without context takeover, pieces split anywhere, and the cap on the
 * decompressed size (a deflate bomb stops early, with bounded memory).
 * Compressed input is read from guard-page copies.
 */
#include "pn_ws_deflate.h"

#include "pn_test.h"

#ifdef PN_HAVE_ZLIB

static const pn_ws_deflate_params P15 = {1, 0, 0, 15, 15};

/* Inflate one message given as one piece; returns the rc. */
static int inflate_msg(pn_ws_deflate *d, const void *in, size_t n, pn_buf *out, uint64_t max)
{
    return pn_ws_inflate(d, pn_guard_copy(in, n), n, 1, out, max);
}

#define CHECK_OUT(b, want)                                                                         \
    do {                                                                                           \
        PN_CHECK_SLICE(pn_buf_head(&(b)), pn_buf_live(&(b)), want);                                \
        pn_buf_clear(&(b));                                                                        \
    } while (0)

PN_TEST(rfc7692_examples)
{
    pn_ws_deflate d;
    pn_buf out = PN_BUF_INIT;
    pn_ws_deflate_init(&d, &P15, PN_WS_DEFLATE_LEVEL, 8);
    /* §7.2.3.1: "Hello" in one compressed block. */
    static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    PN_CHECK_EQ_INT(inflate_msg(&d, hello, sizeof hello, &out, 0), 0);
    CHECK_OUT(out, "Hello");
    /* §7.2.3.2: the second "Hello" refers back into the first message's
     * window: only decodable with context takeover. */
    static const uint8_t again[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
    PN_CHECK_EQ_INT(inflate_msg(&d, again, sizeof again, &out, 0), 0);
    CHECK_OUT(out, "Hello");
    /* §7.2.3.3: an uncompressed (stored) block. */
    static const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                     0x65, 0x6c, 0x6c, 0x6f, 0x00};
    PN_CHECK_EQ_INT(inflate_msg(&d, stored, sizeof stored, &out, 0), 0);
    CHECK_OUT(out, "Hello");
    /* §7.2.3.5: two deflate blocks in one message. */
    static const uint8_t two[] = {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                  0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
    PN_CHECK_EQ_INT(inflate_msg(&d, two, sizeof two, &out, 0), 0);
    CHECK_OUT(out, "Hello");
    /* §7.2.3.4: a block with BFINAL set ends the stream; the next message
     * starts a new one. */
    static const uint8_t final[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
    PN_CHECK_EQ_INT(inflate_msg(&d, final, sizeof final, &out, 0), 0);
    CHECK_OUT(out, "Hello");
    PN_CHECK_EQ_INT(inflate_msg(&d, hello, sizeof hello, &out, 0), 0);
    CHECK_OUT(out, "Hello");
    /* §7.2.3.6: an empty message is a single 0x00 byte (or nothing). */
    static const uint8_t empty[] = {0x00};
    PN_CHECK_EQ_INT(inflate_msg(&d, empty, 1, &out, 0), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&out), 0);
    PN_CHECK_EQ_INT(pn_ws_inflate(&d, "", 0, 1, &out, 0), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&out), 0);
    /* ... and the stream is still in step afterwards. */
    PN_CHECK_EQ_INT(inflate_msg(&d, hello, sizeof hello, &out, 0), 0);
    CHECK_OUT(out, "Hello");
    pn_ws_deflate_free(&d);

    /* Without context takeover §7.2.3.2's second message cannot decode. */
    pn_ws_deflate_params nct = P15;
    nct.client_no_context_takeover = 1;
    pn_ws_deflate_init(&d, &nct, PN_WS_DEFLATE_LEVEL, 8);
    PN_CHECK_EQ_INT(inflate_msg(&d, hello, sizeof hello, &out, 0), 0);
    CHECK_OUT(out, "Hello");
    PN_CHECK_EQ_INT(inflate_msg(&d, again, sizeof again, &out, 0), PN_WS_DEFLATE_BAD_DATA);
    pn_ws_deflate_free(&d);
    pn_buf_clear(&out);

    /* Our compressor writes §7.2.3.1 and §7.2.3.2 exactly. */
    pn_ws_deflate_init(&d, &P15, PN_WS_DEFLATE_LEVEL, 8);
    PN_CHECK_EQ_INT(pn_ws_deflate_message(&d, "Hello", 5, &out), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&out), sizeof hello);
    PN_CHECK(memcmp(pn_buf_head(&out), hello, sizeof hello) == 0);
    pn_buf_clear(&out);
    PN_CHECK_EQ_INT(pn_ws_deflate_message(&d, "Hello", 5, &out), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&out), sizeof again);
    PN_CHECK(memcmp(pn_buf_head(&out), again, sizeof again) == 0);
    pn_buf_clear(&out);
    /* Empty messages, twice in a row (the second finds nothing to flush):
     * always the single byte 0x00, and they decode as empty. */
    for (int i = 0; i < 2; i++) {
        PN_CHECK_EQ_INT(pn_ws_deflate_message(&d, "", 0, &out), 0);
        PN_CHECK_EQ_INT(pn_buf_live(&out), 1);
        PN_CHECK_EQ_INT(pn_buf_head(&out)[0], 0);
        pn_buf_clear(&out);
    }
    pn_ws_deflate_free(&d);
    pn_buf_free(&out);
}

/* Compress messages with one side, decompress with the other (the peers'
 * params mirrored), feeding the compressed payload in pieces of `piece`. */
static void round_trip(const pn_ws_deflate_params *pr, const uint8_t *msg, size_t n, int count,
                       size_t piece, size_t *first_len, size_t *last_len)
{
    pn_ws_deflate tx, rx;
    pn_ws_deflate_init(&tx, pr, PN_WS_DEFLATE_LEVEL, PN_WS_DEFLATE_MEM_LEVEL);
    /* The receiver's "client" is our sender: mirror the parameters. */
    pn_ws_deflate_params mirror = *pr;
    mirror.client_no_context_takeover = pr->server_no_context_takeover;
    mirror.client_max_window_bits = pr->server_max_window_bits;
    pn_ws_deflate_init(&rx, &mirror, PN_WS_DEFLATE_LEVEL, PN_WS_DEFLATE_MEM_LEVEL);
    pn_buf z = PN_BUF_INIT, out = PN_BUF_INIT;
    for (int m = 0; m < count; m++) {
        PN_CHECK_EQ_INT(pn_ws_deflate_message(&tx, msg, n, &z), 0);
        size_t zn = pn_buf_live(&z);
        if (m == 0)
            *first_len = zn;
        *last_len = zn;
        const char *zp = pn_buf_head(&z);
        size_t off = 0;
        do {
            size_t k = zn - off < piece ? zn - off : piece;
            int fin = off + k == zn;
            int rc = pn_ws_inflate(&rx, pn_guard_copy(zp + off, k), k, fin, &out, n);
            PN_CHECK_EQ_INT(rc, 0);
            if (rc)
                break;
            off += k;
        } while (off < zn);
        PN_CHECK_EQ_INT(pn_buf_live(&out), n);
        PN_CHECK(pn_buf_live(&out) == n && memcmp(pn_buf_head(&out), msg, n) == 0);
        pn_buf_clear(&z);
        pn_buf_clear(&out);
    }
    pn_buf_free(&z);
    pn_buf_free(&out);
    pn_ws_deflate_free(&tx);
    pn_ws_deflate_free(&rx);
}

PN_TEST(round_trips)
{
    static uint8_t msg[200000];
    uint32_t s = 1;
    for (size_t i = 0; i < sizeof msg; i++) {
        s = s * 1103515245u + 12345u;
        /* text-like: compressible but not trivial */
        msg[i] = (uint8_t)("abcdefgh ijklmn\n"[(s >> 16) & 15]);
    }
    static const size_t sizes[] = {0, 1, 5, 1000, 70000, 200000};
    size_t first, last;
    for (int bits = 9; bits <= 15; bits++) {
        for (int nct = 0; nct <= 1; nct++) {
            pn_ws_deflate_params pr = {1, nct, nct, bits, bits};
            for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
                round_trip(&pr, msg, sizes[k], 3, sizes[k] > 1000 ? 4093 : 3, &first, &last);
        }
    }
    /* Context takeover: a repeated message compresses to almost nothing;
     * without it, to the same size each time (§7.1.1). */
    pn_ws_deflate_params keep = {1, 0, 0, 15, 15}, reset = {1, 1, 1, 15, 15};
    round_trip(&keep, msg, 1000, 2, 1 << 20, &first, &last);
    PN_CHECK(last < first / 10);
    round_trip(&reset, msg, 1000, 2, 1 << 20, &first, &last);
    PN_CHECK_EQ_INT(last, first);
    /* Incompressible data round-trips too. */
    for (size_t i = 0; i < sizeof msg; i++) {
        s = s * 1103515245u + 12345u;
        msg[i] = (uint8_t)(s >> 16);
    }
    round_trip(&keep, msg, sizeof msg, 2, 777, &first, &last);
    /* Byte-sized pieces. */
    round_trip(&keep, msg, 300, 2, 1, &first, &last);
}

PN_TEST(decompression_cap)
{
    /* 10 MB of zeros compress to about 10 KB. */
    size_t big = 10u << 20;
    uint8_t *zeros = calloc(1, big);
    pn_ws_deflate tx, rx;
    pn_ws_deflate_init(&tx, &P15, PN_WS_DEFLATE_LEVEL, 8);
    pn_ws_deflate_init(&rx, &P15, PN_WS_DEFLATE_LEVEL, 8);
    pn_buf z = PN_BUF_INIT, out = PN_BUF_INIT;
    PN_CHECK_EQ_INT(pn_ws_deflate_message(&tx, zeros, big, &z), 0);
    PN_CHECK(pn_buf_live(&z) < 20000);
    size_t zn = pn_buf_live(&z);
    char *zc = malloc(zn);
    memcpy(zc, pn_buf_head(&z), zn);
    /* Cap 1 MiB: stops with TOO_BIG, having produced at most one step over. */
    PN_CHECK_EQ_INT(pn_ws_inflate(&rx, pn_guard_copy(zc, zn), zn, 1, &out, 1u << 20),
                    PN_WS_DEFLATE_TOO_BIG);
    PN_CHECK(pn_buf_live(&out) > (1u << 20) && pn_buf_live(&out) <= (1u << 20) + 1);
    PN_CHECK(out.cap <= (2u << 20));
    pn_ws_deflate_free(&rx);
    /* Exactly at the cap is fine; one byte less is not. */
    pn_buf_clear(&out);
    pn_ws_deflate_init(&rx, &P15, PN_WS_DEFLATE_LEVEL, 8);
    PN_CHECK_EQ_INT(pn_ws_inflate(&rx, pn_guard_copy(zc, zn), zn, 1, &out, big), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&out), big);
    pn_ws_deflate_free(&rx);
    pn_buf_clear(&out);
    pn_ws_deflate_init(&rx, &P15, PN_WS_DEFLATE_LEVEL, 8);
    PN_CHECK_EQ_INT(pn_ws_inflate(&rx, pn_guard_copy(zc, zn), zn, 1, &out, big - 1),
                    PN_WS_DEFLATE_TOO_BIG);
    pn_ws_deflate_free(&rx);
    /* The cap counts the whole message across pieces. */
    pn_buf_clear(&out);
    pn_ws_deflate_init(&rx, &P15, PN_WS_DEFLATE_LEVEL, 8);
    size_t half = zn / 2;
    int rc1 = pn_ws_inflate(&rx, pn_guard_copy(zc, half), half, 0, &out, 6u << 20);
    int rc2 =
        rc1 ? rc1
            : pn_ws_inflate(&rx, pn_guard_copy(zc + half, zn - half), zn - half, 1, &out, 6u << 20);
    PN_CHECK_EQ_INT(rc2, PN_WS_DEFLATE_TOO_BIG);
    PN_CHECK(pn_buf_live(&out) <= (6u << 20) + 1);
    pn_ws_deflate_free(&rx);
    pn_ws_deflate_free(&tx);
    pn_buf_free(&z);
    pn_buf_free(&out);
    free(zc);
    free(zeros);
}

PN_TEST(bad_data)
{
    pn_ws_deflate rx;
    pn_buf out = PN_BUF_INIT;
    pn_ws_deflate_init(&rx, &P15, PN_WS_DEFLATE_LEVEL, 8);
    /* BTYPE 11 is reserved (RFC 1951 §3.2.3). */
    static const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff};
    PN_CHECK_EQ_INT(inflate_msg(&rx, bad, sizeof bad, &out, 0), PN_WS_DEFLATE_BAD_DATA);
    pn_ws_deflate_free(&rx);
    /* A stored block whose LEN/NLEN disagree. */
    pn_ws_deflate_init(&rx, &P15, PN_WS_DEFLATE_LEVEL, 8);
    static const uint8_t badlen[] = {0x00, 0x05, 0x00, 0x00, 0x00, 'x'};
    PN_CHECK_EQ_INT(inflate_msg(&rx, badlen, sizeof badlen, &out, 0), PN_WS_DEFLATE_BAD_DATA);
    pn_ws_deflate_free(&rx);
    /* A distance reaching before the start of an empty window. */
    pn_ws_deflate_init(&rx, &P15, PN_WS_DEFLATE_LEVEL, 8);
    static const uint8_t again[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
    PN_CHECK_EQ_INT(inflate_msg(&rx, again, sizeof again, &out, 0), PN_WS_DEFLATE_BAD_DATA);
    pn_ws_deflate_free(&rx);
    pn_buf_free(&out);
}

PN_TEST(lazy_allocation)
{
    pn_ws_deflate d;
    pn_ws_deflate_init(&d, &P15, PN_WS_DEFLATE_LEVEL, 8);
    PN_CHECK(d.tx == NULL && d.rx == NULL);
    pn_buf out = PN_BUF_INIT;
    PN_CHECK_EQ_INT(pn_ws_deflate_message(&d, "x", 1, &out), 0);
    PN_CHECK(d.tx != NULL && d.rx == NULL);
    void *tx = d.tx;
    PN_CHECK_EQ_INT(pn_ws_deflate_message(&d, "y", 1, &out), 0);
    PN_CHECK(d.tx == tx); /* reused, not reallocated */
    pn_ws_deflate_free(&d);
    pn_ws_deflate_free(&d); /* idempotent */
    pn_buf_free(&out);
}

int main(void)
{
    PN_CHECK_EQ_INT(pn_ws_deflate_available(), 1);
    PN_RUN(rfc7692_examples);
    PN_RUN(round_trips);
    PN_RUN(decompression_cap);
    PN_RUN(bad_data);
    PN_RUN(lazy_allocation);
    return pn_test_summary();
}

#else

int main(void)
{
    /* Skipped, with the reason: the build found no zlib (PN_HAVE_ZLIB unset),
     * so permessage-deflate is compiled out and never negotiated. */
    PN_CHECK_EQ_INT(pn_ws_deflate_available(), 0);
    printf("test_ws_deflate: SKIPPED, built without zlib (PN_HAVE_ZLIB not defined)\n");
    return pn_test_summary();
}

#endif
