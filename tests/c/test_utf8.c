/*
 * Unit tests for pn_utf8: RFC 3629 valid and invalid forms, every split
 * point of every sample, the eight-byte ASCII fast path at every alignment,
 * and an exhaustive comparison with a reference decoder over all one-, two-
 * and three-byte sequences and the four-byte lead/second-byte pairs.
 * Every input is read from a guard-page copy.
 */
#include "pn_utf8.h"

#include "pn_test.h"

/* Reference: decode the whole string; 0 valid, -1 invalid.  Written from the
 * code point rules (shortest form, no surrogates, <= U+10FFFF), not from the
 * byte ranges the validator uses, so the two cannot share a mistake. */
static int ref_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i], cp;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07;
        } else {
            return -1;
        }
        if (n - i < len)
            return -1;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return -1;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        i += len;
    }
    return 0;
}

static int guarded_valid(const void *p, size_t n)
{
    return pn_utf8_valid(pn_guard_copy(p, n), n);
}

/* Validate split into two pieces at `cut`, each piece from its own guard copy. */
static int split_valid(const uint8_t *s, size_t n, size_t cut)
{
    pn_utf8 v;
    pn_utf8_init(&v);
    int a = pn_utf8_feed(&v, pn_guard_copy(s, cut), cut);
    int b = pn_utf8_feed(&v, pn_guard_copy(s + cut, n - cut), n - cut);
    if (a || b)
        return -1;
    return pn_utf8_done(&v);
}

static int bytewise_valid(const uint8_t *s, size_t n)
{
    pn_utf8 v;
    pn_utf8_init(&v);
    for (size_t i = 0; i < n; i++)
        if (pn_utf8_feed(&v, pn_guard_copy(s + i, 1), 1) != 0)
            return -1;
    return pn_utf8_done(&v);
}

typedef struct {
    const char *s;
    int valid;
} sample;

static const sample SAMPLES[] = {
    {"", 1},
    {"hello, world", 1},
    {"\x7f", 1},
    {"\xc2\x80", 1},                                     /* U+0080 */
    {"\xdf\xbf", 1},                                     /* U+07FF */
    {"\xe0\xa0\x80", 1},                                 /* U+0800 */
    {"\xed\x9f\xbf", 1},                                 /* U+D7FF */
    {"\xee\x80\x80", 1},                                 /* U+E000 */
    {"\xef\xbf\xbf", 1},                                 /* U+FFFF */
    {"\xf0\x90\x80\x80", 1},                             /* U+10000 */
    {"\xf4\x8f\xbf\xbf", 1},                             /* U+10FFFF */
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1}, /* "kosme" in Greek (Autobahn 6.2) */
    {"\xe2\x82\xac and \xf0\x9f\x98\x80 mixed with ASCII text", 1},
    {"\x80", 0}, /* lone continuation */
    {"\xbf", 0},
    {"\xc0\x80", 0},     /* overlong NUL */
    {"\xc1\xbf", 0},     /* overlong */
    {"\xe0\x80\x80", 0}, /* overlong 3-byte */
    {"\xe0\x9f\xbf", 0},
    {"\xed\xa0\x80", 0},     /* U+D800 surrogate */
    {"\xed\xbf\xbf", 0},     /* U+DFFF */
    {"\xf0\x80\x80\x80", 0}, /* overlong 4-byte */
    {"\xf0\x8f\xbf\xbf", 0},
    {"\xf4\x90\x80\x80", 0}, /* U+110000 */
    {"\xf5\x80\x80\x80", 0},
    {"\xf8\x88\x80\x80\x80", 0}, /* 5-byte form */
    {"\xfe", 0},
    {"\xff", 0},
    {"\xe2\x82", 0}, /* truncated at the end */
    {"\xf0\x9f\x98", 0},
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
     "edited",
     0}, /* Autobahn 6.3 */
    {"abc\xc2", 0},
    {"\xc2"
     "a",
     0}, /* continuation missing */
    {"\xe2\x28\xa1", 0},
};

PN_TEST(samples_every_split)
{
    for (size_t k = 0; k < sizeof SAMPLES / sizeof SAMPLES[0]; k++) {
        const uint8_t *s = (const uint8_t *)SAMPLES[k].s;
        size_t n = strlen(SAMPLES[k].s);
        int want = SAMPLES[k].valid ? 0 : -1;
        PN_CHECK_EQ_INT(ref_valid(s, n), want);
        PN_CHECK_EQ_INT(guarded_valid(s, n), want);
        PN_CHECK_EQ_INT(bytewise_valid(s, n), want);
        for (size_t cut = 0; cut <= n; cut++)
            if (split_valid(s, n, cut) != want) {
                fprintf(stderr, "sample %zu split at %zu\n", k, cut);
                PN_CHECK(0);
            }
    }
}

PN_TEST(error_is_sticky_and_done_needs_boundary)
{
    pn_utf8 v;
    pn_utf8_init(&v);
    PN_CHECK_EQ_INT(pn_utf8_feed(&v, pn_guard_copy("\xe2\x82", 2), 2), 0);
    PN_CHECK_EQ_INT(pn_utf8_done(&v), -1); /* inside a code point */
    PN_CHECK_EQ_INT(pn_utf8_feed(&v, pn_guard_copy("\xac", 1), 1), 0);
    PN_CHECK_EQ_INT(pn_utf8_done(&v), 0);
    PN_CHECK_EQ_INT(pn_utf8_feed(&v, pn_guard_copy("\xff", 1), 1), -1);
    PN_CHECK_EQ_INT(pn_utf8_feed(&v, pn_guard_copy("a", 1), 1), -1);
    PN_CHECK_EQ_INT(pn_utf8_done(&v), -1);
}

/* The fast path reads eight and sixteen bytes at a time: put one bad (or one
 * multi-byte) sequence at every offset of an ASCII run of every length. */
PN_TEST(fast_path_every_offset)
{
    uint8_t buf[80];
    for (size_t n = 1; n <= 70; n++) {
        for (size_t at = 0; at < n; at++) {
            memset(buf, 'a', n);
            buf[at] = 0x80;
            PN_CHECK_EQ_INT(guarded_valid(buf, n), -1);
            buf[at] = 0x7f;
            PN_CHECK_EQ_INT(guarded_valid(buf, n), 0);
            if (at + 2 <= n) {
                buf[at] = 0xc3;
                buf[at + 1] = 0xa9;
                PN_CHECK_EQ_INT(guarded_valid(buf, n), 0);
                buf[at + 1] = 'x';
                PN_CHECK_EQ_INT(guarded_valid(buf, n), -1);
            }
        }
    }
}

/* All sequences of up to three bytes, and four-byte sequences for every
 * lead and second byte, against the reference decoder. */
PN_TEST(exhaustive_against_reference)
{
    uint8_t s[4];
    long mismatches = 0;
    for (int a = 0; a < 256; a++) {
        s[0] = (uint8_t)a;
        mismatches += pn_utf8_valid(s, 1) != ref_valid(s, 1);
        for (int b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            mismatches += pn_utf8_valid(s, 2) != ref_valid(s, 2);
            for (int c = 0; c < 256; c++) {
                s[2] = (uint8_t)c;
                mismatches += pn_utf8_valid(s, 3) != ref_valid(s, 3);
            }
            s[2] = 0x80;
            s[3] = 0x80;
            mismatches += pn_utf8_valid(s, 4) != ref_valid(s, 4);
            s[3] = 0xbf;
            mismatches += pn_utf8_valid(s, 4) != ref_valid(s, 4);
            s[3] = 0x7f;
            mismatches += pn_utf8_valid(s, 4) != ref_valid(s, 4);
        }
    }
    PN_CHECK_EQ_INT(mismatches, 0);
}

int main(void)
{
    PN_RUN(samples_every_split);
    PN_RUN(error_is_sticky_and_done_needs_boundary);
    PN_RUN(fast_path_every_offset);
    PN_RUN(exhaustive_against_reference);
    return pn_test_summary();
}
