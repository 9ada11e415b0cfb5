/*
 * Unit tests for pn_accept_encoding: the RFC 9110 §12.5.3 negotiation
 * matrix (q-values, q=0, malformed weights, "*", identity, case and
 * whitespace, ties by server order, several field lines) and qvalue
 * parsing.  Every field value is read from a guard-page copy, so an
 * over-read crashes.  The negotiator does not depend on which codecs are
 * built: the order passed in is what the server offers.
 */
#include "pn_accept_encoding.h"

#include "pn_test.h"

#include <string.h>

#define I PN_CODEC_IDENTITY
#define G PN_CODEC_GZIP
#define Z PN_CODEC_ZSTD
#define B PN_CODEC_BR

static const pn_codec dflt[] = {Z, B, G}; /* the default --compression-order */

static pn_codec nego_order(const char *v, const pn_codec *order, size_t norder, int *identity_ok)
{
    pn_accept_encoding ae;
    pn_accept_encoding_init(&ae);
    if (v)
        pn_accept_encoding_feed(&ae, pn_guard_copy(v, strlen(v)), strlen(v));
    return pn_accept_encoding_choose(&ae, order, norder, identity_ok);
}

static pn_codec nego(const char *v)
{
    return nego_order(v, dflt, 3, NULL);
}

#define EXPECT(v, want)                                                                            \
    do {                                                                                           \
        pn_codec got_ = nego(v);                                                                   \
        if (got_ != (want))                                                                        \
            fprintf(stderr, "  \"%s\" -> %s, want %s\n", (v) ? (const char *)(v) : "(none)",       \
                    pn_codec_name(got_), pn_codec_name(want));                                     \
        PN_CHECK_EQ_INT(got_, want);                                                               \
    } while (0)

PN_TEST(qvalue)
{
    struct {
        const char *s;
        int q;
    } t[] = {
        {"0", 0},     {"1", 1000},    {"0.", 0},     {"1.", 1000},    {"0.5", 500},  {"0.05", 50},
        {"0.001", 1}, {"0.999", 999}, {"1.0", 1000}, {"1.000", 1000}, {"1.001", -1}, {"1.5", -1},
        {"2", -1},    {"0.1234", -1}, {"01", -1},    {".5", -1},      {"0.5a", -1},  {"", -1},
        {"-0", -1},   {"0,5", -1},    {" 0.5", -1},  {"1.0000", -1},  {"0.-1", -1},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = strlen(t[i].s);
        int q = pn_qvalue_parse(pn_guard_copy(t[i].s, n), n);
        if (q != t[i].q)
            fprintf(stderr, "  qvalue \"%s\" -> %d, want %d\n", t[i].s, q, t[i].q);
        PN_CHECK_EQ_INT(q, t[i].q);
    }
}

PN_TEST(basics)
{
    EXPECT(NULL, I); /* no field: identity (see the header) */
    EXPECT("", I);   /* empty field: "no coding wanted" */
    EXPECT("gzip", G);
    EXPECT("br", B);
    EXPECT("zstd", Z);
    EXPECT("deflate", I);
    EXPECT("compress, deflate", I);
    EXPECT("identity", I);
    /* What browsers send: ties at q=1 go to the server order. */
    EXPECT("gzip, deflate, br", B);
    EXPECT("gzip, deflate, br, zstd", Z);
    EXPECT("gzip, deflate", G);
    EXPECT("x-gzip", G);
}

PN_TEST(qvalues)
{
    EXPECT("br;q=0.9, gzip", G);
    EXPECT("gzip;q=0.5, br;q=0.6", B);
    EXPECT("gzip;q=1.0, zstd;q=0.999", G);
    EXPECT("zstd;q=0.001", Z);
    EXPECT("gzip;q=0", I);
    EXPECT("gzip;q=0.000, br", B);
    EXPECT("zstd;q=0.5, br;q=0.5, gzip;q=0.5", Z);
    /* Same q, server order decides, whatever the client's order. */
    EXPECT("gzip;q=0.5, br;q=0.5", B);
}

PN_TEST(star_and_identity)
{
    int ok = -1;
    EXPECT("*", Z);
    EXPECT("*;q=0.1", Z);
    PN_CHECK_EQ_INT(nego_order("*;q=0", dflt, 3, &ok), I);
    PN_CHECK_EQ_INT(ok, 0);
    EXPECT("gzip;q=0, *", Z);
    EXPECT("zstd;q=0, *", B);
    EXPECT("zstd;q=0, br;q=0, *", G);
    EXPECT("zstd;q=0, br;q=0, gzip;q=0, *", I);
    EXPECT("gzip, *;q=0", G);
    EXPECT("br;q=0.5, *;q=0.8", Z); /* "*" covers zstd with 0.8 */
    /* identity refused: a codec still wins when one is acceptable. */
    PN_CHECK_EQ_INT(nego_order("identity;q=0", dflt, 3, &ok), I);
    PN_CHECK_EQ_INT(ok, 0);
    PN_CHECK_EQ_INT(nego_order("gzip, identity;q=0", dflt, 3, &ok), G);
    PN_CHECK_EQ_INT(ok, 0);
    PN_CHECK_EQ_INT(nego_order("gzip", dflt, 3, &ok), G);
    PN_CHECK_EQ_INT(ok, 1);
    PN_CHECK_EQ_INT(nego_order("*;q=0, identity", dflt, 3, &ok), I);
    PN_CHECK_EQ_INT(ok, 1);
    /* identity preferred over every codec offered: identity. */
    EXPECT("gzip;q=0.5, identity", I);
    EXPECT("gzip;q=0.5, identity;q=0.9", I);
    /* A tie with identity goes to the codec. */
    EXPECT("gzip;q=0.5, identity;q=0.5", G);
    EXPECT("gzip;q=1, identity;q=0", G);
    /* "*" also sets identity's q when identity is not named. */
    EXPECT("gzip;q=0.5, *;q=0.9", Z);
    EXPECT("gzip;q=0.5, *;q=0", G);
}

PN_TEST(malformed_elements_ignored)
{
    EXPECT("gzip;q=2", I);
    EXPECT("gzip;q=abc", I);
    EXPECT("gzip;q=", I);
    EXPECT("gzip;q", I);
    EXPECT("gzip;", I);
    EXPECT("gzip;q=0.1234", I);
    EXPECT("gzip;q=1.001", I);
    EXPECT("gzip;level=1", I);
    EXPECT("gzip;q=0.5;x=1", I);
    EXPECT("gzip;qq=0.5", I);
    /* A malformed element does not poison the others. */
    EXPECT("gzip;q=bogus, br;q=0.5", B);
    EXPECT("zstd;q=9, gzip", G);
    /* ... and a malformed q=0 does not refuse either. */
    EXPECT("*;q=0.x, gzip", G);
    EXPECT(";q=1", I);
    EXPECT(";;;,,,", I);
    EXPECT("\"gzip\"", I);
    EXPECT("gzip br", I);
}

PN_TEST(case_and_whitespace)
{
    EXPECT("GZIP", G);
    EXPECT("Br", B);
    EXPECT("ZStd", Z);
    EXPECT("X-GZIP", G);
    EXPECT("gzip;Q=0.5, br;q=0.4", G);
    EXPECT(" gzip ; q = 0.5 ,\tbr;q=0.4\t", G);
    EXPECT("\tgzip\t", G);
    EXPECT("gzip ;q=0", I);
    EXPECT("IDENTITY;Q=0, gzip", G);
    EXPECT(",,gzip,,", G);
    EXPECT(" , br , ", B);
}

PN_TEST(duplicates_keep_lowest)
{
    EXPECT("gzip, gzip;q=0", I);
    EXPECT("gzip;q=0, gzip", I);
    EXPECT("br;q=0.3, br;q=0.9, gzip;q=0.5", G);
    EXPECT("x-gzip;q=0, gzip", I);
}

PN_TEST(server_order)
{
    const pn_codec gb[] = {G, B};
    PN_CHECK_EQ_INT(nego_order("br, gzip, zstd", gb, 2, NULL), G);
    PN_CHECK_EQ_INT(nego_order("zstd", gb, 2, NULL), I); /* not offered */
    PN_CHECK_EQ_INT(nego_order("zstd, br;q=0.1", gb, 2, NULL), B);
    PN_CHECK_EQ_INT(nego_order("*", gb, 2, NULL), G);
    PN_CHECK_EQ_INT(nego_order("gzip", gb, 0, NULL), I); /* nothing offered */
    const pn_codec bz[] = {B, Z};
    PN_CHECK_EQ_INT(nego_order("gzip, deflate, br, zstd", bz, 2, NULL), B);
    /* The one-shot helper agrees. */
    const char *v = "gzip;q=0.2, zstd;q=0.3";
    PN_CHECK_EQ_INT(pn_accept_encoding_negotiate(pn_guard_copy(v, strlen(v)), strlen(v), dflt, 3),
                    Z);
    PN_CHECK_EQ_INT(pn_accept_encoding_negotiate(NULL, 0, dflt, 3), I);
}

/* RFC 9110 §5.3: several field lines are one comma-separated list. */
PN_TEST(several_field_lines)
{
    pn_accept_encoding ae;
    pn_accept_encoding_init(&ae);
    pn_accept_encoding_feed(&ae, pn_guard_copy("gzip;q=0.5", 10), 10);
    pn_accept_encoding_feed(&ae, pn_guard_copy("br", 2), 2);
    PN_CHECK_EQ_INT(pn_accept_encoding_choose(&ae, dflt, 3, NULL), B);
    pn_accept_encoding_init(&ae);
    pn_accept_encoding_feed(&ae, pn_guard_copy("gzip", 4), 4);
    pn_accept_encoding_feed(&ae, pn_guard_copy("", 0), 0);
    PN_CHECK_EQ_INT(pn_accept_encoding_choose(&ae, dflt, 3, NULL), G);
    pn_accept_encoding_init(&ae);
    pn_accept_encoding_feed(&ae, pn_guard_copy("", 0), 0);
    PN_CHECK_EQ_INT(pn_accept_encoding_choose(&ae, dflt, 3, NULL), I);
}

/* Splitting one field at any comma into two lines never changes the answer. */
PN_TEST(split_equivalence)
{
    const char *vals[] = {"gzip;q=0.5, br;q=0.6, zstd;q=0, *;q=0.1", "identity;q=0, *;q=0.2, gzip",
                          ", x-gzip ; q=1 ,br;q=0.999,", "br;q=0.5, *;q=0.8"};
    for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]); k++) {
        const char *v = vals[k];
        pn_codec whole = nego(v);
        for (const char *c = strchr(v, ','); c; c = strchr(c + 1, ',')) {
            pn_accept_encoding ae;
            pn_accept_encoding_init(&ae);
            size_t a = (size_t)(c - v);
            pn_accept_encoding_feed(&ae, pn_guard_copy(v, a), a);
            pn_accept_encoding_feed(&ae, pn_guard_copy(c + 1, strlen(c + 1)), strlen(c + 1));
            PN_CHECK_EQ_INT(pn_accept_encoding_choose(&ae, dflt, 3, NULL), whole);
        }
    }
}

int main(void)
{
    PN_RUN(qvalue);
    PN_RUN(basics);
    PN_RUN(qvalues);
    PN_RUN(star_and_identity);
    PN_RUN(malformed_elements_ignored);
    PN_RUN(case_and_whitespace);
    PN_RUN(duplicates_keep_lowest);
    PN_RUN(server_order);
    PN_RUN(several_field_lines);
    PN_RUN(split_equivalence);
    return pn_test_summary();
}
