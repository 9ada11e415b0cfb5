/*
 * fuzz_http1_parse.c — libFuzzer target for pn_http1_parse_head().
 *
 * Input: one control byte, then the bytes of a head.  The control byte picks
 * the limits and where the input is split.  The head is parsed whole and in
 * two pieces (each in its own exact-size heap copy, so ASan sees any
 * over-read); the outcomes must agree, every slice must lie inside the input
 * (the only exception is the static "/" for an absolute-form target without
 * a path), and head_len must not exceed the input.  After a complete head
 * the rest is parsed as a pipelined request.
 */
#include "pn_http1_parse.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

enum { MAXH = 32 };

typedef struct {
    int rc, status;
    size_t head_len, num_headers, off[8], len[4];
    unsigned flags;
    int body_kind, version_minor;
    uint64_t content_length;
    size_t hoff[MAXH][4];
} outcome;

static int inside(const char *base, size_t n, const char *p, size_t len)
{
    return p >= base && p <= base + n && len <= (size_t)(base + n - p);
}

static size_t offset(const char *base, const char *p)
{
    return (size_t)(p - base);
}

static void check_slices(const pn_http1_request *r, const char *buf, size_t head_len)
{
    CHECK(inside(buf, head_len, r->method, r->method_len));
    CHECK(inside(buf, head_len, r->target, r->target_len));
    CHECK(inside(buf, head_len, r->query, r->query_len));
    CHECK(inside(buf, head_len, r->path, r->path_len) || (r->path_len == 1 && r->path[0] == '/'));
    CHECK(r->method_len > 0 && r->target_len > 0);
    for (size_t i = 0; i < r->num_headers; i++) {
        const pn_http1_header *h = &r->headers[i];
        CHECK(inside(buf, head_len, h->name, h->name_len));
        CHECK(inside(buf, head_len, h->value, h->value_len));
        CHECK(h->name_len > 0);
    }
}

static outcome run(pn_http1_parser *p, const char *buf, size_t n, pn_http1_request *r)
{
    outcome o;
    memset(&o, 0, sizeof o);
    o.rc = pn_http1_parse_head(p, buf, n, r);
    CHECK(o.rc == PN_HTTP1_OK || o.rc == PN_HTTP1_INCOMPLETE || o.rc == PN_HTTP1_ERROR);
    if (o.rc == PN_HTTP1_ERROR) {
        int s = p->error_status;
        CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
        CHECK(p->error_reason != NULL);
        o.status = s;
    }
    if (o.rc != PN_HTTP1_OK)
        return o;
    CHECK(r->head_len <= n && r->head_len >= 4);
    CHECK(r->head_len <= p->limits.max_head);
    CHECK(r->num_headers <= p->limits.max_headers);
    CHECK(r->version_minor == 0 || r->version_minor == 1);
    check_slices(r, buf, r->head_len);
    o.head_len = r->head_len;
    o.num_headers = r->num_headers;
    o.off[0] = offset(buf, r->method);
    o.off[1] = offset(buf, r->target);
    o.off[2] = offset(buf, r->query);
    o.len[0] = r->method_len;
    o.len[1] = r->target_len;
    o.len[2] = r->path_len;
    o.len[3] = r->query_len;
    o.flags = r->flags;
    o.body_kind = r->body_kind;
    o.version_minor = r->version_minor;
    o.content_length = r->content_length;
    for (size_t i = 0; i < r->num_headers; i++) {
        o.hoff[i][0] = offset(buf, r->headers[i].name);
        o.hoff[i][1] = r->headers[i].name_len;
        o.hoff[i][2] = offset(buf, r->headers[i].value);
        o.hoff[i][3] = r->headers[i].value_len;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    const char *src = (const char *)data + 1;
    size_t n = size - 1;

    pn_http1_limits lim = {8190, 65536, MAXH, 0};
    if (ctl & 1) {
        /* small limits, so the limit paths are reached */
        lim.max_request_line = 40 + (ctl >> 4);
        lim.max_head = 120 + (ctl >> 2);
        lim.max_headers = 3;
        lim.max_body = 100;
    }
    pn_http1_header hs[MAXH];
    pn_http1_parser p;
    pn_http1_request r;

    /* whole */
    char *whole = malloc(n ? n : 1);
    memcpy(whole, src, n);
    pn_http1_parser_init(&p, &lim, hs);
    outcome a = run(&p, whole, n, &r);

    /* two pieces: the first k bytes, then all n in a new buffer */
    size_t k = n * (ctl >> 1) / 127;
    char *part = malloc(k ? k : 1);
    memcpy(part, src, k);
    pn_http1_parser_init(&p, &lim, hs);
    outcome b = run(&p, part, k, &r);
    free(part);
    if (b.rc == PN_HTTP1_INCOMPLETE) {
        char *all = malloc(n ? n : 1);
        memcpy(all, src, n);
        b = run(&p, all, n, &r);
        free(all);
    }
    CHECK(memcmp(&a, &b, sizeof a) == 0);

    /* pipelined: what follows a complete head is the next request */
    if (a.rc == PN_HTTP1_OK && a.body_kind == PN_BODY_NONE && a.head_len < n) {
        pn_http1_parser_init(&p, &lim, hs);
        run(&p, whole + a.head_len, n - a.head_len, &r);
    }
    free(whole);
    return 0;
}
