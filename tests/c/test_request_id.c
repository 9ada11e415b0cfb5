/*
 * Unit tests for pn_request_id: which bytes an incoming ID may hold, the
 * choice between an incoming ID and a new one, the generated IDs' form
 * (a UUID version 4 as 32 lowercase hex digits) and their uniqueness, the
 * generator's seeding, and the header names --request-id-header accepts.
 * Values are guard-page copies, so a read past one crashes.
 */
#include "pn_request_id.h"

#include "pn_buf.h" /* PN_STRLIT */
#include "pn_http1_write.h"

#include "pn_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int valid(const char *s)
{
    size_t n = strlen(s);
    return pn_request_id_valid(pn_guard_copy(s, n), n);
}

PN_TEST(valid_ids)
{
    PN_CHECK(valid("a"));
    PN_CHECK(valid("0f8fad5b-d9cb-469f-a165-70867728950e"));
    PN_CHECK(valid("0f8fad5bd9cb469fa16570867728950e"));
    PN_CHECK(valid("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=x") == 0); /* ';' */
    PN_CHECK(valid("Root=1-5759e988-bd862e3fe1be46a994272793"));
    PN_CHECK(valid("aGVsbG8gd29ybGQ/+=="));
    PN_CHECK(valid("req_01.2~3:4"));
    char max[PN_REQUEST_ID_MAX + 2];
    memset(max, 'x', sizeof max);
    max[PN_REQUEST_ID_MAX] = '\0';
    PN_CHECK(valid(max));
    max[PN_REQUEST_ID_MAX] = 'x';
    max[PN_REQUEST_ID_MAX + 1] = '\0';
    PN_CHECK(!valid(max)); /* 129 bytes */
}

PN_TEST(invalid_ids)
{
    static const char *const bad[] = {
        "",
        "a b",
        "a\tb",
        "a\r\nX-Evil: 1",
        "a\nb",
        "a\rb",
        "\"quoted\"",
        "it's",
        "a,b",
        "a;b",
        "a\\b",
        "<script>",
        "{\"a\"",
        "a%20b",
        "a@b",
        "a#b",
        "caf\xc3\xa9",
        "\x7f",
        "a?b",
        "a&b",
        "(a)",
        "[a]",
        "a|b",
        "a*b",
        "a!b",
        "$x",
        "^",
        "`",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (valid(bad[i]))
            fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
        PN_CHECK(!valid(bad[i]));
    }
    /* A NUL inside. */
    PN_CHECK(!pn_request_id_valid("a\0b", 3));
}

/* Every byte on its own: exactly the 66 + 8 documented ones pass. */
PN_TEST(every_byte)
{
    const char *set = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~:+/=-";
    int passed = 0;
    for (int c = 0; c < 256; c++) {
        char b = (char)c;
        int want = c != 0 && strchr(set, c) != NULL;
        int got = pn_request_id_valid(pn_guard_copy(&b, 1), 1);
        if (got != want)
            fprintf(stderr, "  byte 0x%02x: %d, want %d\n", c, got, want);
        PN_CHECK_EQ_INT(got, want);
        passed += got;
    }
    PN_CHECK_EQ_INT(passed, (int)strlen(set));
}

static int is_uuid4_hex(const char *p, size_t n)
{
    if (n != 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return 0;
    return p[12] == '4' && strchr("89ab", p[16]) != NULL;
}

/* The hex digits are the generator's bits: the same sequence formatted
 * by printf.  Two generators with the same seed: one formats, one gives the
 * raw numbers (xoshiro256** by its definition). */
static uint64_t ref_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t ref_next(uint64_t *s)
{
    uint64_t out = ref_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ref_rotl(s[3], 45);
    return out;
}

PN_TEST(generated_digits)
{
    pn_request_id_gen g;
    pn_request_id_seed_bytes(&g, "digits", 6);
    uint64_t s[4];
    memcpy(s, g.s, sizeof s);
    for (int i = 0; i < 10000; i++) {
        char out[PN_REQUEST_ID_GEN_LEN], want[PN_REQUEST_ID_GEN_LEN + 1];
        pn_request_id_generate(&g, out);
        uint64_t hi = ref_next(s), lo = ref_next(s);
        hi = (hi & ~0xf000ULL) | 0x4000ULL;
        lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
        snprintf(want, sizeof want, "%016llx%016llx", (unsigned long long)hi,
                 (unsigned long long)lo);
        if (memcmp(out, want, PN_REQUEST_ID_GEN_LEN) != 0) {
            fprintf(stderr, "  %.32s, want %s\n", out, want);
            PN_CHECK(0);
            break;
        }
    }
}

PN_TEST(response_field)
{
    char out[PN_REQUEST_ID_FIELD_MAX];
    size_t n = pn_request_id_field(out, PN_STRLIT("X-Request-ID"), PN_STRLIT("abc"));
    PN_CHECK_SLICE(out, n, "X-Request-ID: abc\r\n");
    char name[PN_REQUEST_ID_NAME_MAX], id[PN_REQUEST_ID_MAX];
    memset(name, 'n', sizeof name);
    memset(id, 'i', sizeof id);
    n = pn_request_id_field(out, name, sizeof name, id, sizeof id);
    PN_CHECK_EQ_INT(n, PN_REQUEST_ID_FIELD_MAX);
    PN_CHECK(memcmp(out + n - 2, "\r\n", 2) == 0);
}

/* The server's own answers carry the field after Date and Server
 * (pn_http1_write_simple_field); without a name they are byte for byte
 * pn_http1_write_simple's. */
PN_TEST(simple_answer_field)
{
    pn_http1_head_opts opts = {"Sun, 06 Nov 1994 08:49:37 GMT", "pounce"};
    pn_buf a = PN_BUF_INIT, b = PN_BUF_INIT;
    PN_CHECK_EQ_INT(pn_http1_write_simple_field(&a, 431, &opts, 1, NULL, PN_STRLIT("X-Request-ID"),
                                                PN_STRLIT("abc")),
                    PN_WRITE_OK);
    PN_CHECK_SLICE(a.data, a.len,
                   "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                   "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                   "Server: pounce\r\n"
                   "X-Request-ID: abc\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: 32\r\n"
                   "Connection: close\r\n"
                   "\r\n"
                   "Request Header Fields Too Large\n");
    pn_buf_clear(&a);
    PN_CHECK_EQ_INT(pn_http1_write_simple_field(&a, 400, &opts, 0, "x", NULL, 0, NULL, 0),
                    PN_WRITE_OK);
    PN_CHECK_EQ_INT(pn_http1_write_simple(&b, 400, &opts, 0, "x"), PN_WRITE_OK);
    PN_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    pn_buf_free(&a);
    pn_buf_free(&b);
}

PN_TEST(generated_form)
{
    pn_request_id_gen g;
    pn_request_id_seed(&g);
    char out[PN_REQUEST_ID_MAX];
    for (int i = 0; i < 1000; i++) {
        size_t n = pn_request_id_generate(&g, out);
        PN_CHECK_EQ_INT(n, PN_REQUEST_ID_GEN_LEN);
        PN_CHECK(is_uuid4_hex(out, n));
        PN_CHECK(pn_request_id_valid(out, n));
    }
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, PN_REQUEST_ID_GEN_LEN);
}

/* 100,000 IDs from one generator and 100,000 more from a second one: no
 * two alike (sorted, neighbours compared), and the bits are balanced:
 * each of the 122 random bits is set in about half of the IDs. */
PN_TEST(unique_and_balanced)
{
    enum { N = 100000 };
    char(*ids)[PN_REQUEST_ID_GEN_LEN] = malloc((size_t)2 * N * PN_REQUEST_ID_GEN_LEN);
    PN_CHECK(ids != NULL);
    if (ids == NULL)
        return;
    pn_request_id_gen a, b;
    pn_request_id_seed(&a);
    pn_request_id_seed(&b);
    PN_CHECK(memcmp(&a, &b, sizeof a) != 0);
    long ones[32][4];
    memset(ones, 0, sizeof ones);
    for (int i = 0; i < 2 * N; i++) {
        pn_request_id_generate(i < N ? &a : &b, ids[i]);
        for (int d = 0; d < 32; d++) {
            int v = ids[i][d] <= '9' ? ids[i][d] - '0' : ids[i][d] - 'a' + 10;
            for (int bit = 0; bit < 4; bit++)
                ones[d][bit] += (v >> bit) & 1;
        }
    }
    qsort(ids, 2 * N, PN_REQUEST_ID_GEN_LEN, cmp_id);
    int dups = 0;
    for (int i = 1; i < 2 * N; i++)
        dups += memcmp(ids[i - 1], ids[i], PN_REQUEST_ID_GEN_LEN) == 0;
    PN_CHECK_EQ_INT(dups, 0);
    for (int d = 0; d < 32; d++) {
        for (int bit = 0; bit < 4; bit++) {
            if (d == 12 || (d == 16 && bit >= 2))
                continue; /* version and variant: fixed */
            /* 2N fair coins: the mean is N, the deviation about 224; 6
             * deviations either way. */
            long dev = ones[d][bit] - N;
            if (dev < -1350 || dev > 1350)
                fprintf(stderr, "  hex digit %d bit %d: %ld ones of %d\n", d, bit, ones[d][bit],
                        2 * N);
            PN_CHECK(dev >= -1350 && dev <= 1350);
        }
    }
    free(ids);
}

PN_TEST(seed_bytes_reproducible)
{
    pn_request_id_gen a, b, c;
    pn_request_id_seed_bytes(&a, "seed", 4);
    pn_request_id_seed_bytes(&b, "seed", 4);
    pn_request_id_seed_bytes(&c, "seee", 4);
    char x[32], y[32], z[32];
    pn_request_id_generate(&a, x);
    pn_request_id_generate(&b, y);
    pn_request_id_generate(&c, z);
    PN_CHECK(memcmp(x, y, 32) == 0);
    PN_CHECK(memcmp(x, z, 32) != 0);
    /* An empty or all-zero seed still generates (xoshiro's zero state is
     * a fixed point: it would print the same ID forever). */
    unsigned char zero[32] = {0};
    pn_request_id_seed_bytes(&a, zero, sizeof zero);
    pn_request_id_generate(&a, x);
    pn_request_id_generate(&a, y);
    PN_CHECK(memcmp(x, y, 32) != 0);
    pn_request_id_seed_bytes(&a, NULL, 0);
    pn_request_id_generate(&a, x);
    pn_request_id_generate(&a, y);
    PN_CHECK(memcmp(x, y, 32) != 0);
}

/* Headers from "Name: value" lines ('\n'-separated); values are slices of
 * one guard-page copy. */
#define MAXH 16
static size_t headers(const char *lines, pn_http1_header *h)
{
    size_t n = strlen(lines), nh = 0, i = 0;
    const char *text = pn_guard_copy(lines, n);
    while (i < n && nh < MAXH) {
        size_t ls = i;
        while (i < n && text[i] != '\n')
            i++;
        const char *colon = memchr(text + ls, ':', i - ls);
        if (colon) {
            h[nh].name = text + ls;
            h[nh].name_len = (size_t)(colon - text - ls);
            const char *v = colon + 1;
            while (v < text + i && *v == ' ')
                v++;
            h[nh].value = v;
            h[nh].value_len = (size_t)(text + i - v);
            nh++;
        }
        i++;
    }
    return nh;
}

/* The ID taken for these headers: "" when a new one was generated. */
static void take(const char *lines, const char *want)
{
    pn_http1_header h[MAXH];
    size_t nh = headers(lines, h);
    pn_request_id_gen g;
    pn_request_id_seed_bytes(&g, "t", 1);
    char out[PN_REQUEST_ID_MAX];
    size_t n = pn_request_id_take(&g, h, nh, PN_STRLIT("X-Request-ID"), out);
    if (*want) {
        PN_CHECK_SLICE(out, n, want);
    } else {
        PN_CHECK(is_uuid4_hex(out, n));
        if (!is_uuid4_hex(out, n))
            fprintf(stderr, "  for \"%s\": \"%.*s\"\n", lines, (int)n, out);
    }
}

PN_TEST(take_incoming_or_new)
{
    take("Host: a\nX-Request-ID: abc-123", "abc-123");
    take("x-request-id: abc-123\nHost: a", "abc-123");
    take("X-REQUEST-ID: Root=1-abc", "Root=1-abc");
    take("Host: a", "");                              /* none */
    take("X-Request-ID: ", "");                       /* empty */
    take("X-Request-ID: a b", "");                    /* space */
    take("X-Request-ID: \"a\"", "");                  /* quotes */
    take("X-Request-ID: caf\xc3\xa9", "");            /* non-ASCII */
    take("X-Request-ID: a\rb", "");                   /* bare CR */
    take("X-Request-ID: one\nX-Request-ID: two", ""); /* two fields */
    take("X-Request-ID: one\nX-Request-Id: one", ""); /* even equal ones */
    take("X-Request-IDs: one\nX-Request-I: two", ""); /* other names */
    take("X-Correlation-ID: one", "");
    char longer[200];
    snprintf(longer, sizeof longer, "X-Request-ID: %0129d", 7); /* 129 digits */
    take(longer, "");
    snprintf(longer, sizeof longer, "X-Request-ID: %0128d", 7); /* 128 */
    take(longer, longer + strlen("X-Request-ID: "));
}

PN_TEST(header_names)
{
    PN_CHECK(pn_request_id_name_ok(PN_STRLIT("X-Request-ID")));
    PN_CHECK(pn_request_id_name_ok(PN_STRLIT("X-Correlation-ID")));
    PN_CHECK(pn_request_id_name_ok(PN_STRLIT("request-id")));
    PN_CHECK(!pn_request_id_name_ok(PN_STRLIT("")));
    PN_CHECK(!pn_request_id_name_ok(PN_STRLIT("X Request")));
    PN_CHECK(!pn_request_id_name_ok(PN_STRLIT("X-Request-ID:")));
    PN_CHECK(!pn_request_id_name_ok(PN_STRLIT("Content-Length")));
    PN_CHECK(!pn_request_id_name_ok(PN_STRLIT("transfer-encoding")));
    PN_CHECK(!pn_request_id_name_ok(PN_STRLIT("CONNECTION")));
    PN_CHECK(!pn_request_id_name_ok(PN_STRLIT("Date")));
    PN_CHECK(!pn_request_id_name_ok(PN_STRLIT("Server")));
    PN_CHECK(!pn_request_id_name_ok(PN_STRLIT("Host")));
    char name[PN_REQUEST_ID_NAME_MAX + 1];
    memset(name, 'x', sizeof name);
    PN_CHECK(pn_request_id_name_ok(name, PN_REQUEST_ID_NAME_MAX));
    PN_CHECK(!pn_request_id_name_ok(name, PN_REQUEST_ID_NAME_MAX + 1));
}

int main(void)
{
    PN_RUN(valid_ids);
    PN_RUN(invalid_ids);
    PN_RUN(every_byte);
    PN_RUN(generated_digits);
    PN_RUN(response_field);
    PN_RUN(simple_answer_field);
    PN_RUN(generated_form);
    PN_RUN(unique_and_balanced);
    PN_RUN(seed_bytes_reproducible);
    PN_RUN(take_incoming_or_new);
    PN_RUN(header_names);
    return pn_test_summary();
}
