/*
 * test_http1_parse.c — unit tests for the strict HTTP/1.1 request parser and
 * body decoder (csrc/core/pn_http1_parse.c).
 *
 * Every input is placed with pn_guard_copy(), so a read past its last byte
 * faults.  Every head in the tables is parsed twice: whole, and fed one byte
 * more per call to one parser (each prefix at a fresh guard-page address,
 * as a growing read buffer would be); both must give the same answer.
 * Chunked bodies are decoded whole, split at every byte boundary, and byte
 * by byte; the decoded bytes and the outcome must not change.
 */
#include "pn_http1_parse.h"
#include "pn_test.h"

#define S(lit) lit, sizeof(lit) - 1
#define H11(hdrs) "GET / HTTP/1.1\r\nHost: example.com\r\n" hdrs "\r\n"

enum { MAXH = 64 };

static pn_http1_limits default_limits(void)
{
    pn_http1_limits l = {8190, 65536, MAXH, 0};
    return l;
}

/* A parse outcome, with slices stored as offsets so it survives the guard
 * buffer being replaced. */
typedef struct {
    int rc, status;
    size_t head_len, num_headers;
    size_t method_off, method_len, target_off, target_len, path_off, path_len, query_off, query_len;
    int version_minor, body_kind;
    unsigned flags;
    uint64_t content_length;
} outcome;

static size_t off_of(const char *base, size_t n, const char *p)
{
    /* (size_t)-1 marks a slice outside the input (only the static "/"). */
    return (p >= base && p <= base + n) ? (size_t)(p - base) : (size_t)-1;
}

static outcome record(int rc, const pn_http1_parser *p, const pn_http1_request *r, const char *base,
                      size_t n)
{
    outcome o;
    memset(&o, 0, sizeof o);
    o.rc = rc;
    o.status = rc == PN_HTTP1_ERROR ? p->error_status : 0;
    if (rc != PN_HTTP1_OK)
        return o;
    o.head_len = r->head_len;
    o.num_headers = r->num_headers;
    o.method_off = off_of(base, n, r->method);
    o.method_len = r->method_len;
    o.target_off = off_of(base, n, r->target);
    o.target_len = r->target_len;
    o.path_off = off_of(base, n, r->path);
    o.path_len = r->path_len;
    o.query_off = off_of(base, n, r->query);
    o.query_len = r->query_len;
    o.version_minor = r->version_minor;
    o.body_kind = r->body_kind;
    o.flags = r->flags;
    o.content_length = r->content_length;
    return o;
}

static pn_http1_header hspace[MAXH];

static outcome parse_whole(const char *raw, size_t n, const pn_http1_limits *lim)
{
    pn_http1_parser p;
    pn_http1_request r;
    pn_http1_parser_init(&p, lim, hspace);
    char *buf = pn_guard_copy(raw, n);
    int rc = pn_http1_parse_head(&p, buf, n, &r);
    if (rc == PN_HTTP1_ERROR)
        PN_CHECK(p.error_reason != NULL);
    return record(rc, &p, &r, buf, n);
}

static outcome parse_trickle(const char *raw, size_t n, const pn_http1_limits *lim)
{
    pn_http1_parser p;
    pn_http1_request r;
    pn_http1_parser_init(&p, lim, hspace);
    int rc = PN_HTTP1_INCOMPLETE;
    char *buf = NULL;
    size_t k = 0;
    for (k = 0; k <= n; k++) {
        buf = pn_guard_copy(raw, k);
        rc = pn_http1_parse_head(&p, buf, k, &r);
        if (rc != PN_HTTP1_INCOMPLETE)
            break;
    }
    return record(rc, &p, &r, buf, k > n ? n : k);
}

static int same_outcome(const outcome *a, const outcome *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

/* ---- table of heads with their expected status ------------------------ */

typedef struct {
    const char *raw;
    size_t len;
    int rc;     /* PN_HTTP1_* */
    int status; /* expected error_status when rc is PN_HTTP1_ERROR */
} head_case;

static const head_case head_cases[] = {
    /* valid */
    {S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_OK, 0},
    {S("GET / HTTP/1.0\r\n\r\n"), PN_HTTP1_OK, 0},
    {S("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_OK, 0},
    {S("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_OK, 0},
    {S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_OK, 0},
    {S("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), PN_HTTP1_OK, 0},
    {S("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"), PN_HTTP1_OK, 0},
    {S("GET HTTPS://example.com:8443/x?y HTTP/1.1\r\nHost: e\r\n\r\n"), PN_HTTP1_OK, 0},
    {S("GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n"), PN_HTTP1_OK, 0},
    {S("GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n"), PN_HTTP1_OK, 0},
    {S("GET / HTTP/1.1\r\nHost: xn--d1acj3b.example%41\r\n\r\n"), PN_HTTP1_OK, 0},
    {S(H11("X-Empty:\r\n")), PN_HTTP1_OK, 0},
    {S(H11("X-Obs: caf\xc3\xa9\r\n")), PN_HTTP1_OK, 0},
    {S(H11("X-Tab:\tv\tw\t\r\n")), PN_HTTP1_OK, 0},
    {S(H11("Content-Length: 0\r\n")), PN_HTTP1_OK, 0},
    {S(H11("Content-Length: 0012\r\n")), PN_HTTP1_OK, 0},
    {S(H11("Content-Length: 18446744073709551615\r\n")), PN_HTTP1_OK, 0},
    {S(H11("Transfer-Encoding: chunked\r\n")), PN_HTTP1_OK, 0},
    {S(H11("Transfer-Encoding:  CHUNKED \r\n")), PN_HTTP1_OK, 0},
    {S("M-SEARCH! /a HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_OK, 0},
    {S("GET /a%20b?c=d&e=%2F HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_OK, 0},

    /* request line (RFC 9112 §3) */
    {S("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("CONNECT u@example.com:1 HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET ftp://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 505},
    {S("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 505},
    {S("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 505},
    {S("GET / http/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/a.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET /\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / \r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / H\r\n\r\nG / HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},

    /* line endings */
    {S("GET / HTTP/1.1\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\n\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\rHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n"), PN_HTTP1_ERROR, 400},

    /* header fields (RFC 9112 §5, RFC 9110 §5.5) */
    {S(H11("X-A : b\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("X-A\t: b\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("X-A: b\r\n c\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("X-A: b\r\n\tc\r\n")), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S(H11(": b\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("X(A): b\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("X-A b\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("X-\xc3\xa9: b\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("X-A: b\0c\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("X-A: b\x01\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("X-A: b\x1f\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("X-A: b\x7f\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("X-A: 0123456789abcdef\v0123456789\r\n")), PN_HTTP1_ERROR, 400},

    /* Host (RFC 9112 §3.2) */
    {S("GET / HTTP/1.1\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost:\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a:\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n"), PN_HTTP1_ERROR, 400},
    {S("GET / HTTP/1.0\r\nHost: a b\r\n\r\n"), PN_HTTP1_ERROR, 400},

    /* Content-Length (RFC 9112 §6.2, §6.3) */
    {S(H11("Content-Length: 5, 5\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Content-Length: 5\r\nContent-Length: 5\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Content-Length: -1\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Content-Length: +1\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Content-Length: 0x10\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Content-Length: 1 2\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Content-Length:\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Content-Length: 18446744073709551616\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Content-Length: 99999999999999999999999\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n")), PN_HTTP1_ERROR, 400},

    /* Transfer-Encoding (RFC 9112 §6.1) */
    {S(H11("Transfer-Encoding: gzip\r\n")), PN_HTTP1_ERROR, 501},
    {S(H11("Transfer-Encoding: identity\r\n")), PN_HTTP1_ERROR, 501},
    {S(H11("Transfer-Encoding: gzip, chunked\r\n")), PN_HTTP1_ERROR, 501},
    {S(H11("Transfer-Encoding: chunked, chunked\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Transfer-Encoding: chunked, gzip\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Transfer-Encoding:\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Transfer-Encoding: chunked,\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Transfer-Encoding: ,chunked\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Transfer-Encoding: chun ked\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Transfer-Encoding: \"chunked\"\r\n")), PN_HTTP1_ERROR, 400},
    {S(H11("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")), PN_HTTP1_ERROR, 400},
    {S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), PN_HTTP1_ERROR, 400},
};

PN_TEST(head_table_whole_and_trickled)
{
    pn_http1_limits lim = default_limits();
    for (size_t i = 0; i < sizeof head_cases / sizeof head_cases[0]; i++) {
        const head_case *c = &head_cases[i];
        outcome w = parse_whole(c->raw, c->len, &lim);
        if (w.rc != c->rc || w.status != c->status) {
            fprintf(stderr, "case %zu: rc %d status %d, want %d %d: %.*s\n", i, w.rc, w.status,
                    c->rc, c->status, (int)c->len, c->raw);
            pn_test_failed_checks++;
        }
        if (w.rc == PN_HTTP1_OK)
            PN_CHECK_EQ_INT(w.head_len, c->len);
        outcome t = parse_trickle(c->raw, c->len, &lim);
        if (!same_outcome(&w, &t)) {
            fprintf(stderr, "case %zu: trickled rc %d status %d differs from whole %d %d\n", i,
                    t.rc, t.status, w.rc, w.status);
            pn_test_failed_checks++;
        }
    }
    printf("head table: %zu cases\n", sizeof head_cases / sizeof head_cases[0]);
}

/* ---- flags and framing ------------------------------------------------ */

typedef struct {
    const char *raw;
    size_t len;
    unsigned flags;
    int body_kind;
    uint64_t content_length;
} flag_case;

#define KA PN_REQ_KEEP_ALIVE
static const flag_case flag_cases[] = {
    {S(H11("")), KA, PN_BODY_NONE, 0},
    {S(H11("Connection: close\r\n")), 0, PN_BODY_NONE, 0},
    {S(H11("Connection: Keep-Alive, CLOSE\r\n")), 0, PN_BODY_NONE, 0},
    {S(H11("Connection: foo\r\nConnection: close\r\n")), 0, PN_BODY_NONE, 0},
    {S(H11("Connection: closed\r\n")), KA, PN_BODY_NONE, 0},
    {S("GET / HTTP/1.0\r\n\r\n"), 0, PN_BODY_NONE, 0},
    {S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), KA, PN_BODY_NONE, 0},
    {S("GET / HTTP/1.0\r\nConnection: keep-alive,close\r\n\r\n"), 0, PN_BODY_NONE, 0},
    {S(H11("Connection: Upgrade\r\nUpgrade: websocket\r\n")), KA | PN_REQ_UPGRADE, PN_BODY_NONE, 0},
    {S(H11("Upgrade: h2c\r\nConnection: keep-alive, upgrade\r\n")), KA | PN_REQ_UPGRADE,
     PN_BODY_NONE, 0},
    {S(H11("Connection: upgrade\r\n")), KA, PN_BODY_NONE, 0},
    {S(H11("Upgrade: websocket\r\n")), KA, PN_BODY_NONE, 0},
    {S(H11("Expect: 100-continue\r\n")), KA | PN_REQ_EXPECT_CONTINUE, PN_BODY_NONE, 0},
    {S(H11("Expect: 100-Continue\r\n")), KA | PN_REQ_EXPECT_CONTINUE, PN_BODY_NONE, 0},
    {S(H11("Expect: 200-ok\r\n")), KA, PN_BODY_NONE, 0},
    {S("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), 0, PN_BODY_NONE, 0},
    {S("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), KA | PN_REQ_HEAD, PN_BODY_NONE, 0},
    /* a TE field of any value is flagged (pn_http1_accepts_trailers decides) */
    {S(H11("TE: trailers\r\n")), KA | PN_REQ_TE, PN_BODY_NONE, 0},
    {S(H11("te: gzip\r\n")), KA | PN_REQ_TE, PN_BODY_NONE, 0},
    {S(H11("Tx: trailers\r\nTEs: trailers\r\n")), KA, PN_BODY_NONE, 0},
    {S("head / HTTP/1.1\r\nHost: a\r\n\r\n"), KA, PN_BODY_NONE, 0},
    {S("HEADX / HTTP/1.1\r\nHost: a\r\n\r\n"), KA, PN_BODY_NONE, 0},
    {S(H11("Content-Length: 5\r\n")), KA, PN_BODY_LENGTH, 5},
    {S(H11("content-length:  000\r\n")), KA, PN_BODY_NONE, 0},
    {S(H11("Transfer-Encoding: chunked\r\n")), KA, PN_BODY_CHUNKED, 0},
    {S("POST / HTTP/1.0\r\nContent-Length: 7\r\n\r\n"), 0, PN_BODY_LENGTH, 7},
};

PN_TEST(flags_and_framing)
{
    pn_http1_limits lim = default_limits();
    for (size_t i = 0; i < sizeof flag_cases / sizeof flag_cases[0]; i++) {
        const flag_case *c = &flag_cases[i];
        outcome w = parse_whole(c->raw, c->len, &lim);
        outcome t = parse_trickle(c->raw, c->len, &lim);
        if (w.rc != PN_HTTP1_OK || w.flags != c->flags || w.body_kind != c->body_kind ||
            w.content_length != c->content_length || !same_outcome(&w, &t)) {
            fprintf(stderr, "flag case %zu: rc %d flags %u kind %d cl %llu\n", i, w.rc, w.flags,
                    w.body_kind, (unsigned long long)w.content_length);
            pn_test_failed_checks++;
        }
    }
    printf("flag table: %zu cases\n", sizeof flag_cases / sizeof flag_cases[0]);
}

/* ---- fully checked requests ------------------------------------------- */

PN_TEST(browser_request_all_fields)
{
    static const char raw[] = "GET /search/x%20y?q=pounce&lang=en HTTP/1.1\r\n"
                              "Host: www.example.com:8080\r\n"
                              "User-Agent: Mozilla/5.0 (X11; Linux x86_64)  \r\n"
                              "Accept:\ttext/html,application/xhtml+xml;q=0.9\t\r\n"
                              "X-Empty:   \r\n"
                              "Cookie: a=b; c=d\r\n"
                              "\r\n";
    size_t n = sizeof raw - 1;
    pn_http1_limits lim = default_limits();
    pn_http1_parser p;
    pn_http1_request r;
    pn_http1_parser_init(&p, &lim, hspace);
    char *buf = pn_guard_copy(raw, n);
    PN_CHECK_EQ_INT(pn_http1_parse_head(&p, buf, n, &r), PN_HTTP1_OK);
    PN_CHECK_SLICE(r.method, r.method_len, "GET");
    PN_CHECK_SLICE(r.target, r.target_len, "/search/x%20y?q=pounce&lang=en");
    PN_CHECK_SLICE(r.path, r.path_len, "/search/x%20y");
    PN_CHECK_SLICE(r.query, r.query_len, "q=pounce&lang=en");
    PN_CHECK_EQ_INT(r.version_minor, 1);
    PN_CHECK_EQ_INT(r.flags, PN_REQ_KEEP_ALIVE);
    PN_CHECK_EQ_INT(r.body_kind, PN_BODY_NONE);
    PN_CHECK_EQ_INT(r.head_len, n);
    PN_CHECK(r.headers == hspace);
    PN_CHECK_EQ_INT(r.num_headers, 5);
    PN_CHECK_SLICE(r.headers[0].name, r.headers[0].name_len, "Host");
    PN_CHECK_SLICE(r.headers[0].value, r.headers[0].value_len, "www.example.com:8080");
    PN_CHECK_SLICE(r.headers[1].name, r.headers[1].name_len, "User-Agent");
    PN_CHECK_SLICE(r.headers[1].value, r.headers[1].value_len, "Mozilla/5.0 (X11; Linux x86_64)");
    PN_CHECK_SLICE(r.headers[2].value, r.headers[2].value_len,
                   "text/html,application/xhtml+xml;q=0.9");
    PN_CHECK_SLICE(r.headers[3].name, r.headers[3].name_len, "X-Empty");
    PN_CHECK_EQ_INT(r.headers[3].value_len, 0);
    PN_CHECK_SLICE(r.headers[4].value, r.headers[4].value_len, "a=b; c=d");
    /* slices point into the caller's buffer, no copies */
    PN_CHECK(r.method == buf && r.headers[4].value > buf && r.headers[4].value < buf + n);
    const pn_http1_header *h = pn_http1_find_header(&r, "cookie", 6);
    PN_CHECK(h == &r.headers[4]);
    PN_CHECK(pn_http1_find_header(&r, "user-agent", 10) == &r.headers[1]);
    PN_CHECK(pn_http1_find_header(&r, "accept-encoding", 15) == NULL);
    PN_CHECK_EQ_INT(p.error_status, 0);
}

typedef struct {
    const char *raw;
    size_t len;
    const char *path, *query;
} target_case;

static const target_case target_cases[] = {
    {S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), "/", ""},
    {S("GET /a?b HTTP/1.1\r\nHost: a\r\n\r\n"), "/a", "b"},
    {S("GET /a? HTTP/1.1\r\nHost: a\r\n\r\n"), "/a", ""},
    {S("GET /a?b?c HTTP/1.1\r\nHost: a\r\n\r\n"), "/a", "b?c"},
    {S("GET //x HTTP/1.1\r\nHost: a\r\n\r\n"), "//x", ""},
    {S("GET http://example.com HTTP/1.1\r\nHost: a\r\n\r\n"), "/", ""},
    {S("GET http://example.com?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"), "/", "x=1"},
    {S("GET http://e:80/p/q?r HTTP/1.1\r\nHost: a\r\n\r\n"), "/p/q", "r"},
    {S("GET hTtPs://[::1]/ HTTP/1.1\r\nHost: a\r\n\r\n"), "/", ""},
    {S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), "*", ""},
    {S("CONNECT e.com:443 HTTP/1.1\r\nHost: e.com:443\r\n\r\n"), "e.com:443", ""},
};

PN_TEST(target_forms)
{
    pn_http1_limits lim = default_limits();
    for (size_t i = 0; i < sizeof target_cases / sizeof target_cases[0]; i++) {
        const target_case *c = &target_cases[i];
        pn_http1_parser p;
        pn_http1_request r;
        pn_http1_parser_init(&p, &lim, hspace);
        char *buf = pn_guard_copy(c->raw, c->len);
        int rc = pn_http1_parse_head(&p, buf, c->len, &r);
        PN_CHECK_EQ_INT(rc, PN_HTTP1_OK);
        if (rc != PN_HTTP1_OK)
            continue;
        PN_CHECK_SLICE(r.path, r.path_len, c->path);
        PN_CHECK_SLICE(r.query, r.query_len, c->query);
        PN_CHECK(r.query >= buf && r.query + r.query_len <= buf + c->len);
    }
}

/* ---- limits ------------------------------------------------------------ */

/* Build "GET /aaa...a HTTP/1.1" with a request line of exactly n bytes. */
static size_t make_request_line(char *out, size_t n)
{
    static const char pre[] = "GET /", post[] = " HTTP/1.1";
    size_t fill = n - (sizeof pre - 1) - (sizeof post - 1);
    memcpy(out, pre, sizeof pre - 1);
    memset(out + sizeof pre - 1, 'a', fill);
    memcpy(out + sizeof pre - 1 + fill, post, sizeof post);
    return n;
}

static int status_of(outcome o)
{
    return o.rc == PN_HTTP1_ERROR ? o.status : o.rc == PN_HTTP1_OK ? 200 : 0;
}

PN_TEST(request_line_limit_exact)
{
    char raw[512];
    pn_http1_limits lim = default_limits();
    lim.max_request_line = 100;
    size_t n = make_request_line(raw, 100);
    strcpy(raw + n, "\r\nHost: a\r\n\r\n");
    outcome w = parse_whole(raw, strlen(raw), &lim);
    PN_CHECK_EQ_INT(status_of(w), 200);
    outcome t = parse_trickle(raw, strlen(raw), &lim);
    PN_CHECK(same_outcome(&w, &t));

    n = make_request_line(raw, 101);
    strcpy(raw + n, "\r\nHost: a\r\n\r\n");
    PN_CHECK_EQ_INT(status_of(parse_whole(raw, strlen(raw), &lim)), 414);
    PN_CHECK_EQ_INT(status_of(parse_trickle(raw, strlen(raw), &lim)), 414);
}

PN_TEST(request_line_414_before_lf)
{
    char raw[512];
    pn_http1_limits lim = default_limits();
    lim.max_request_line = 100;
    make_request_line(raw, 200);
    /* only 101 bytes of the line have arrived, no LF yet */
    PN_CHECK_EQ_INT(status_of(parse_whole(raw, 101, &lim)), 414);
    /* 100 bytes plus the CR of its CRLF: still acceptable */
    make_request_line(raw, 100);
    raw[100] = '\r';
    PN_CHECK_EQ_INT(parse_whole(raw, 101, &lim).rc, PN_HTTP1_INCOMPLETE);
    /* the same, trickled */
    make_request_line(raw, 200);
    pn_http1_parser p;
    pn_http1_request r;
    pn_http1_parser_init(&p, &lim, hspace);
    int rc = PN_HTTP1_INCOMPLETE;
    size_t k;
    for (k = 1; k <= 200 && rc == PN_HTTP1_INCOMPLETE; k++)
        rc = pn_http1_parse_head(&p, pn_guard_copy(raw, k), k, &r);
    PN_CHECK_EQ_INT(rc, PN_HTTP1_ERROR);
    PN_CHECK_EQ_INT(p.error_status, 414);
    PN_CHECK_EQ_INT(k - 1, 101); /* refused on the first byte over the limit */
}

PN_TEST(head_limit_exact)
{
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789\r\n\r\n";
    size_t n = sizeof raw - 1;
    pn_http1_limits lim = default_limits();
    lim.max_head = n;
    outcome w = parse_whole(raw, n, &lim);
    PN_CHECK_EQ_INT(status_of(w), 200);
    PN_CHECK_EQ_INT(w.head_len, n);
    PN_CHECK_EQ_INT(status_of(parse_trickle(raw, n, &lim)), 200);
    lim.max_head = n - 1;
    PN_CHECK_EQ_INT(status_of(parse_whole(raw, n, &lim)), 431);
    PN_CHECK_EQ_INT(status_of(parse_trickle(raw, n, &lim)), 431);
    /* refused as soon as max_head bytes are in without an end of head */
    PN_CHECK_EQ_INT(status_of(parse_whole(raw, n - 1, &lim)), 431);
    PN_CHECK_EQ_INT(parse_whole(raw, n - 2, &lim).rc, PN_HTTP1_INCOMPLETE);
    /* the next request's bytes after a complete head do not count */
    static const char two[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n";
    lim.max_head = 27;
    PN_CHECK_EQ_INT(status_of(parse_whole(two, sizeof two - 1, &lim)), 200);
}

PN_TEST(header_count_limit_exact)
{
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    size_t n = sizeof raw - 1;
    pn_http1_limits lim = default_limits();
    lim.max_headers = 3;
    outcome w = parse_whole(raw, n, &lim);
    PN_CHECK_EQ_INT(status_of(w), 200);
    PN_CHECK_EQ_INT(w.num_headers, 3);
    lim.max_headers = 2;
    PN_CHECK_EQ_INT(status_of(parse_whole(raw, n, &lim)), 431);
    PN_CHECK_EQ_INT(status_of(parse_trickle(raw, n, &lim)), 431);
    /* 431 as soon as the extra field's line is complete, before the end */
    PN_CHECK_EQ_INT(status_of(parse_whole(raw, n - 2, &lim)), 431);
    lim.max_headers = 0;
    PN_CHECK_EQ_INT(status_of(parse_whole("GET / HTTP/1.0\r\n\r\n", 18, &lim)), 200);
}

PN_TEST(max_body_from_head)
{
    pn_http1_limits lim = default_limits();
    lim.max_body = 10;
    PN_CHECK_EQ_INT(status_of(parse_whole(S(H11("Content-Length: 10\r\n")), &lim)), 200);
    PN_CHECK_EQ_INT(status_of(parse_whole(S(H11("Content-Length: 11\r\n")), &lim)), 413);
    PN_CHECK_EQ_INT(status_of(parse_trickle(S(H11("Content-Length: 11\r\n")), &lim)), 413);
    /* malformed beats too large */
    PN_CHECK_EQ_INT(status_of(parse_whole(S(H11("Content-Length: 11x\r\n")), &lim)), 400);
    /* chunked is limited while decoding, not from the head */
    PN_CHECK_EQ_INT(status_of(parse_whole(S(H11("Transfer-Encoding: chunked\r\n")), &lim)), 200);
}

PN_TEST(incomplete_prefixes)
{
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    pn_http1_limits lim = default_limits();
    for (size_t k = 0; k < sizeof raw - 1; k++)
        PN_CHECK_EQ_INT(parse_whole(raw, k, &lim).rc, PN_HTTP1_INCOMPLETE);
}

PN_TEST(pipelined_heads)
{
    static const char raw[] = "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                              "GET /two?x HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
                              "GET /thr";
    size_t n = sizeof raw - 1;
    pn_http1_limits lim = default_limits();
    pn_http1_parser p;
    pn_http1_request r;
    pn_http1_parser_init(&p, &lim, hspace);
    char *buf = pn_guard_copy(raw, n);
    PN_CHECK_EQ_INT(pn_http1_parse_head(&p, buf, n, &r), PN_HTTP1_OK);
    PN_CHECK_SLICE(r.path, r.path_len, "/one");
    PN_CHECK_EQ_INT(r.body_kind, PN_BODY_LENGTH);
    size_t off = r.head_len;

    pn_http1_body b;
    const char *d;
    size_t dl, used;
    pn_http1_body_init(&b, &r, 0, 0);
    PN_CHECK_EQ_INT(pn_http1_body_next(&b, buf + off, n - off, &used, &d, &dl), PN_HTTP1_OK);
    PN_CHECK_SLICE(d, dl, "abc");
    PN_CHECK_EQ_INT(used, 3);
    PN_CHECK(pn_http1_body_done(&b));
    PN_CHECK_EQ_INT(pn_http1_body_next(&b, buf + off + 3, n - off - 3, &used, &d, &dl),
                    PN_BODY_DONE);
    PN_CHECK_EQ_INT(used, 0);
    off += 3;

    pn_http1_parser_reset(&p);
    PN_CHECK_EQ_INT(pn_http1_parse_head(&p, buf + off, n - off, &r), PN_HTTP1_OK);
    PN_CHECK_SLICE(r.path, r.path_len, "/two");
    PN_CHECK_SLICE(r.query, r.query_len, "x");
    PN_CHECK_SLICE(r.headers[0].value, r.headers[0].value_len, "b");
    PN_CHECK_EQ_INT(r.flags, 0);
    off += r.head_len;

    pn_http1_parser_reset(&p);
    PN_CHECK_EQ_INT(pn_http1_parse_head(&p, buf + off, n - off, &r), PN_HTTP1_INCOMPLETE);
    PN_CHECK_EQ_INT(off + 8, n);
}

PN_TEST(reset_clears_error)
{
    pn_http1_limits lim = default_limits();
    pn_http1_parser p;
    pn_http1_request r;
    pn_http1_parser_init(&p, &lim, hspace);
    char *buf = pn_guard_copy(S("GET / HTTP/9.9\r\nHost: a\r\n\r\n"));
    PN_CHECK_EQ_INT(pn_http1_parse_head(&p, buf, 28, &r), PN_HTTP1_ERROR);
    PN_CHECK_EQ_INT(p.error_status, 505);
    PN_CHECK(p.error_reason != NULL);
    pn_http1_parser_reset(&p);
    PN_CHECK_EQ_INT(p.error_status, 0);
    buf = pn_guard_copy(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    PN_CHECK_EQ_INT(pn_http1_parse_head(&p, buf, 28, &r), PN_HTTP1_OK);
}

/* Every single byte value in a header value: only HTAB, SP..~ and obs-text
 * are accepted (RFC 9110 §5.5). */
PN_TEST(every_byte_in_value)
{
    pn_http1_limits lim = default_limits();
    for (int c = 0; c < 256; c++) {
        char raw[64];
        int n = snprintf(raw, sizeof raw, "GET / HTTP/1.1\r\nHost: a\r\nX: a%cb\r\n\r\n", 1);
        raw[29] = (char)c; /* replace the placeholder byte */
        int ok = c == '\t' || (c >= 0x20 && c != 0x7f);
        outcome w = parse_whole(raw, (size_t)n, &lim);
        if (c == '\n') /* a bare LF: also refused, by the line scan */
            ok = 0;
        if ((w.rc == PN_HTTP1_OK) != ok || (!ok && w.status != 400)) {
            fprintf(stderr, "byte 0x%02x: rc %d status %d\n", c, w.rc, w.status);
            pn_test_failed_checks++;
        }
    }
}

/* Every byte value in a header name and in the method: tchar only. */
PN_TEST(every_byte_in_name_and_method)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    pn_http1_limits lim = default_limits();
    for (int c = 0; c < 256; c++) {
        int is_t = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c && strchr(tchar, c));
        static const char name_tpl[] = "GET / HTTP/1.1\r\nHost: a\r\nX?Y: 1\r\n\r\n";
        static const char method_tpl[] = "G?T / HTTP/1.1\r\nHost: a\r\n\r\n";
        char raw[64];
        memcpy(raw, name_tpl, sizeof name_tpl);
        raw[26] = (char)c;
        outcome w = parse_whole(raw, sizeof name_tpl - 1, &lim);
        /* "X:Y: 1" is the field X with value "Y: 1" */
        if ((w.rc == PN_HTTP1_OK) != (is_t || c == ':')) {
            fprintf(stderr, "name byte 0x%02x: rc %d\n", c, w.rc);
            pn_test_failed_checks++;
        }
        memcpy(raw, method_tpl, sizeof method_tpl);
        raw[1] = (char)c;
        w = parse_whole(raw, sizeof method_tpl - 1, &lim);
        if ((w.rc == PN_HTTP1_OK) != is_t) {
            fprintf(stderr, "method byte 0x%02x: rc %d\n", c, w.rc);
            pn_test_failed_checks++;
        }
    }
}

/* ---- body decoding ------------------------------------------------------ */

typedef struct {
    int rc, status;
    size_t consumed; /* total input bytes consumed */
    size_t out_len;
    char out[256];
} body_result;

static pn_http1_request fake_request(int kind, uint64_t cl)
{
    pn_http1_request r;
    memset(&r, 0, sizeof r);
    r.body_kind = kind;
    r.content_length = cl;
    return r;
}

/* Decode raw[0..n), delivering the input first up to `cut` bytes, then in
 * steps of `step` bytes (0 = all the rest at once), as a connection whose
 * reads return those sizes would.  Unconsumed bytes are offered again. */
static body_result decode(int kind, uint64_t cl, const char *raw, size_t n, size_t cut, size_t step,
                          uint64_t max_body, size_t max_trailers)
{
    body_result res;
    memset(&res, 0, sizeof res);
    pn_http1_request req = fake_request(kind, cl);
    pn_http1_body b;
    pn_http1_body_init(&b, &req, max_body, max_trailers);
    size_t pos = 0, avail = cut < n ? cut : n;
    for (int guard = 0; guard < 100000; guard++) {
        const char *in = pn_guard_copy(raw + pos, avail - pos);
        size_t used = 99999, dl = 99999;
        const char *d = NULL;
        int rc = pn_http1_body_next(&b, in, avail - pos, &used, &d, &dl);
        PN_CHECK(used <= avail - pos);
        if (used > avail - pos)
            used = avail - pos;
        if (rc == PN_HTTP1_OK) {
            PN_CHECK(dl > 0 && d >= in && d + dl <= in + used);
            if (res.out_len + dl <= sizeof res.out)
                memcpy(res.out + res.out_len, d, dl);
            res.out_len += dl;
        } else {
            PN_CHECK_EQ_INT(dl, 0);
        }
        pos += used;
        if (rc == PN_HTTP1_INCOMPLETE) {
            PN_CHECK_EQ_INT(pos, avail);
            if (avail == n) {
                res.rc = rc;
                break;
            }
            avail = step ? (avail + step < n ? avail + step : n) : n;
            continue;
        }
        if (rc == PN_HTTP1_OK)
            continue;
        res.rc = rc;
        res.status = rc == PN_HTTP1_ERROR ? b.error_status : 0;
        if (rc == PN_HTTP1_ERROR)
            PN_CHECK(b.error_reason != NULL);
        if (rc == PN_BODY_DONE)
            PN_CHECK(pn_http1_body_done(&b));
        break;
    }
    res.consumed = pos;
    return res;
}

typedef struct {
    const char *raw;
    size_t len;
    int rc, status;
    const char *out; /* decoded payload, for PN_BODY_DONE and incomplete cases */
    size_t consumed; /* for PN_BODY_DONE: bytes of body framing in raw */
    uint64_t max_body;
    size_t max_trailers;
} chunk_case;

#define DONE PN_BODY_DONE
#define ERR PN_HTTP1_ERROR
static const chunk_case chunk_cases[] = {
    {S("0\r\n\r\n"), DONE, 0, "", 5, 0, 0},
    {S("5\r\nhello\r\n0\r\n\r\n"), DONE, 0, "hello", 15, 0, 0},
    {S("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET /"), DONE, 0, "hello world", 26, 0, 0},
    {S("A\r\n0123456789\r\n0\r\n\r\n"), DONE, 0, "0123456789", 20, 0, 0},
    {S("a\r\n0123456789\r\n00000\r\n\r\n"), DONE, 0, "0123456789", 24, 0, 0},
    {S("0000000000000000000003\r\nabc\r\n0\r\n\r\n"), DONE, 0, "abc", 34, 0, 0},
    {S("3;ext\r\nabc\r\n0\r\n\r\n"), DONE, 0, "abc", 17, 0, 0},
    {S("3 ; a = b ; c=\"x\\\"y\" ;d\r\nabc\r\n0;last\r\n\r\n"), DONE, 0, "abc", 40, 0, 0},
    {S("3;a=\"\"\r\nabc\r\n0\r\n\r\n"), DONE, 0, "abc", 18, 0, 0},
    {S("3\r\nabc\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\n"), DONE, 0, "abc", 27, 0, 64},
    {S("3\r\nabc\r\n0\r\nX: 12345\r\n\r\n"), DONE, 0, "abc", 23, 0, 10},
    {S("3\r\nabc\r\n0\r\nX: 123456\r\n\r\n"), ERR, 400, "abc", 0, 0, 10},
    {S("3\r\nabc\r\n0\r\nX: 1\r\n\r\n"), ERR, 400, "abc", 0, 0, 0},
    {S("3\r\nabc\r\n0\r\n X: 1\r\n\r\n"), ERR, 400, "abc", 0, 0, 64},
    {S("3\r\nabc\r\n0\r\nX : 1\r\n\r\n"), ERR, 400, "abc", 0, 0, 64},
    {S("3\r\nabc\r\n0\r\nX: a\x01\r\n\r\n"), ERR, 400, "abc", 0, 0, 64},
    {S("3\r\nabc\r\n0\r\nX: 1\n\r\n"), ERR, 400, "abc", 0, 0, 64},
    {S("3\r\nabc\r\n0\r\n\n"), ERR, 400, "abc", 0, 0, 64},
    {S("3\r\nabc\r\n0\r\n\r\r"), ERR, 400, "abc", 0, 0, 64},
    {S("\r\n"), ERR, 400, "", 0, 0, 0},
    {S("0x3\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("+3\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("-3\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S(" 3\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3 \r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("g\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3\rabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3\r\nabcd\r\n0\r\n\r\n"), ERR, 400, "abc", 0, 0, 0},
    {S("3\r\nabc\n0\r\n\r\n"), ERR, 400, "abc", 0, 0, 0},
    {S("3\r\nabc\r0\r\n\r\n"), ERR, 400, "abc", 0, 0, 0},
    {S("3;\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3;a b\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3;a \r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3;a=\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3;a=\"x\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3;a=\"x\"y\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3;a=b=c\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3;a=\"\x01\"\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    {S("3;(\r\nabc\r\n0\r\n\r\n"), ERR, 400, "", 0, 0, 0},
    /* 15 significant hex digits fit; a 16th is refused (no overflow) */
    {S("fffffffffffffff\r\nab"), PN_HTTP1_INCOMPLETE, 0, "ab", 0, 0, 0},
    {S("0fffffffffffffff\r\nab"), PN_HTTP1_INCOMPLETE, 0, "ab", 0, 0, 0},
    {S("1000000000000000\r\nab"), ERR, 400, "", 0, 0, 0},
    {S("ffffffffffffffffffff\r\n"), ERR, 400, "", 0, 0, 0},
    /* max_body counts decoded bytes across chunks */
    {S("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"), DONE, 0, "helloworld", 25, 10, 0},
    {S("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n"), ERR, 413, "hello", 0, 10, 0},
    {S("b\r\nhello world\r\n0\r\n\r\n"), ERR, 413, "", 0, 10, 0},
    /* incomplete */
    {S("5\r\nhel"), PN_HTTP1_INCOMPLETE, 0, "hel", 0, 0, 0},
    {S("5\r\nhello\r\n0\r\n"), PN_HTTP1_INCOMPLETE, 0, "hello", 0, 0, 0},
};

PN_TEST(chunked_table_every_split)
{
    size_t ncases = sizeof chunk_cases / sizeof chunk_cases[0];
    for (size_t i = 0; i < ncases; i++) {
        const chunk_case *c = &chunk_cases[i];
        body_result whole =
            decode(PN_BODY_CHUNKED, 0, c->raw, c->len, c->len, 0, c->max_body, c->max_trailers);
        if (whole.rc != c->rc || whole.status != c->status || whole.out_len != strlen(c->out) ||
            memcmp(whole.out, c->out, whole.out_len) != 0 ||
            (c->rc == DONE && whole.consumed != c->consumed)) {
            fprintf(stderr, "chunk case %zu: rc %d status %d out \"%.*s\" consumed %zu\n", i,
                    whole.rc, whole.status, (int)whole.out_len, whole.out, whole.consumed);
            pn_test_failed_checks++;
            continue;
        }
        for (size_t cut = 0; cut <= c->len; cut++) {
            body_result r =
                decode(PN_BODY_CHUNKED, 0, c->raw, c->len, cut, 0, c->max_body, c->max_trailers);
            if (r.rc != whole.rc || r.status != whole.status || r.out_len != whole.out_len ||
                memcmp(r.out, whole.out, r.out_len) != 0 ||
                (r.rc != ERR && r.consumed != whole.consumed)) {
                fprintf(stderr, "chunk case %zu split at %zu differs\n", i, cut);
                pn_test_failed_checks++;
            }
        }
        body_result bb =
            decode(PN_BODY_CHUNKED, 0, c->raw, c->len, 1, 1, c->max_body, c->max_trailers);
        PN_CHECK(bb.rc == whole.rc && bb.status == whole.status && bb.out_len == whole.out_len &&
                 memcmp(bb.out, whole.out, bb.out_len) == 0);
    }
    printf("chunked table: %zu cases\n", ncases);
}

PN_TEST(chunk_size_line_limit)
{
    char raw[4200];
    /* "1;" then a name making the line exactly 4096 bytes: accepted */
    memset(raw, 'x', sizeof raw);
    memcpy(raw, "1;", 2);
    memcpy(raw + 4096, "\r\nA\r\n0\r\n\r\n", 10);
    body_result r = decode(PN_BODY_CHUNKED, 0, raw, 4106, 4106, 0, 0, 0);
    PN_CHECK_EQ_INT(r.rc, DONE);
    PN_CHECK_EQ_INT(r.out_len, 1);
    /* one byte more: refused, and before the CRLF arrives */
    memset(raw, 'x', sizeof raw);
    memcpy(raw, "1;", 2);
    r = decode(PN_BODY_CHUNKED, 0, raw, 4097, 4097, 0, 0, 0);
    PN_CHECK_EQ_INT(r.rc, ERR);
    PN_CHECK_EQ_INT(r.status, 400);
}

PN_TEST(length_body)
{
    static const char raw[] = "0123456789GET / HTTP/1.1\r\n";
    for (size_t cut = 0; cut <= 12; cut++) {
        for (size_t step = 0; step <= 3; step++) {
            body_result r = decode(PN_BODY_LENGTH, 10, raw, sizeof raw - 1, cut, step, 0, 0);
            PN_CHECK_EQ_INT(r.rc, DONE);
            PN_CHECK_EQ_INT(r.consumed, 10);
            PN_CHECK(r.out_len == 10 && memcmp(r.out, raw, 10) == 0);
        }
    }
    /* short input: incomplete after handing out what there is */
    body_result r = decode(PN_BODY_LENGTH, 10, raw, 4, 4, 0, 0, 0);
    PN_CHECK_EQ_INT(r.rc, PN_HTTP1_INCOMPLETE);
    PN_CHECK_EQ_INT(r.out_len, 4);
    /* a body limit passed to the decoder is enforced too */
    r = decode(PN_BODY_LENGTH, 10, raw, sizeof raw - 1, 100, 0, 9, 0);
    PN_CHECK_EQ_INT(r.rc, ERR);
    PN_CHECK_EQ_INT(r.status, 413);
    PN_CHECK_EQ_INT(r.out_len, 0);
}

PN_TEST(no_body)
{
    pn_http1_request req = fake_request(PN_BODY_NONE, 0);
    pn_http1_body b;
    pn_http1_body_init(&b, &req, 0, 0);
    PN_CHECK(pn_http1_body_done(&b));
    size_t used = 7, dl = 7;
    const char *d = NULL;
    char *in = pn_guard_copy("GET", 3);
    PN_CHECK_EQ_INT(pn_http1_body_next(&b, in, 3, &used, &d, &dl), PN_BODY_DONE);
    PN_CHECK_EQ_INT(used, 0);
    PN_CHECK_EQ_INT(dl, 0);
}

PN_TEST(body_from_parsed_head)
{
    static const char raw[] = "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nExpires: never\r\n\r\n";
    size_t n = sizeof raw - 1;
    pn_http1_limits lim = default_limits();
    pn_http1_parser p;
    pn_http1_request r;
    pn_http1_parser_init(&p, &lim, hspace);
    char *buf = pn_guard_copy(raw, n);
    PN_CHECK_EQ_INT(pn_http1_parse_head(&p, buf, n, &r), PN_HTTP1_OK);
    PN_CHECK_EQ_INT(r.body_kind, PN_BODY_CHUNKED);
    pn_http1_body b;
    pn_http1_body_init(&b, &r, 1000, 100);
    char out[32];
    size_t out_len = 0, off = r.head_len;
    int rc;
    for (;;) {
        size_t used, dl;
        const char *d;
        rc = pn_http1_body_next(&b, buf + off, n - off, &used, &d, &dl);
        off += used;
        if (rc != PN_HTTP1_OK)
            break;
        memcpy(out + out_len, d, dl);
        out_len += dl;
    }
    PN_CHECK_EQ_INT(rc, PN_BODY_DONE);
    PN_CHECK_EQ_INT(off, n);
    PN_CHECK_SLICE(out, out_len, "Wikipedia");
    PN_CHECK_EQ_INT(b.total, 9);
}

/* The request line of a head that failed (for the access line of the
 * error): found when it arrived whole and valid, after leading CRLFs,
 * whatever is wrong further on; nothing for a broken or unfinished line. */
PN_TEST(request_line_after_error)
{
    static const struct {
        const char *in;
        int rc;
        const char *method, *target;
        int minor;
    } cases[] = {
        {"POST /big?x=1 HTTP/1.1\r\nContent-Length: 99\r\n\r\n", PN_HTTP1_OK, "POST", "/big?x=1",
         1},
        {"\r\n\r\nGET /a HTTP/1.0\r\nX: \x01\r\n", PN_HTTP1_OK, "GET", "/a", 0},
        {"GET /a HTTP/1.1\r\n folded", PN_HTTP1_OK, "GET", "/a", 1},
        {"GET /a HTTP/1.1", PN_HTTP1_ERROR, NULL, NULL, 0}, /* no CRLF: unfinished */
        {"GET /a\x1b HTTP/1.1\r\n\r\n", PN_HTTP1_ERROR, NULL, NULL, 0},
        {"GET /a HTTP/2.0\r\n\r\n", PN_HTTP1_ERROR, NULL, NULL, 0},
        {"G\"T /a HTTP/1.1\r\n\r\n", PN_HTTP1_ERROR, NULL, NULL, 0},
        {"\x01\x02 nonsense\r\n\r\n", PN_HTTP1_ERROR, NULL, NULL, 0},
        {"", PN_HTTP1_INCOMPLETE, NULL, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].in);
        pn_http1_request req;
        memset(&req, 0, sizeof(req));
        int rc = pn_http1_parse_request_line(pn_guard_copy(cases[i].in, n), n, &req);
        PN_CHECK_EQ_INT(rc, cases[i].rc);
        if (rc == PN_HTTP1_OK) {
            PN_CHECK_SLICE(req.method, req.method_len, cases[i].method);
            PN_CHECK_SLICE(req.target, req.target_len, cases[i].target);
            PN_CHECK_EQ_INT(req.version_minor, cases[i].minor);
        }
    }
}

int main(void)
{
    PN_RUN(head_table_whole_and_trickled);
    PN_RUN(request_line_after_error);
    PN_RUN(flags_and_framing);
    PN_RUN(browser_request_all_fields);
    PN_RUN(target_forms);
    PN_RUN(request_line_limit_exact);
    PN_RUN(request_line_414_before_lf);
    PN_RUN(head_limit_exact);
    PN_RUN(header_count_limit_exact);
    PN_RUN(max_body_from_head);
    PN_RUN(incomplete_prefixes);
    PN_RUN(pipelined_heads);
    PN_RUN(reset_clears_error);
    PN_RUN(every_byte_in_value);
    PN_RUN(every_byte_in_name_and_method);
    PN_RUN(chunked_table_every_split);
    PN_RUN(chunk_size_line_limit);
    PN_RUN(length_body);
    PN_RUN(no_body);
    PN_RUN(body_from_parsed_head);
    return pn_test_summary();
}
