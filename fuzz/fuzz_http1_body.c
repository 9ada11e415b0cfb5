/*
 * fuzz_http1_body.c — libFuzzer target for pn_http1_body_next().
 *
 * Input: two control bytes (limits, split point), then body bytes.  The
 * bytes are decoded as a chunked body and as a Content-Length body, each
 * whole, split in two, and byte by byte.  Every call must consume at most
 * what it was given and point data inside its input; the decoded bytes, the
 * outcome and the bytes consumed must not depend on the split.
 */
#include "pn_http1_parse.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

typedef struct {
    int rc, status;
    size_t consumed, out_len;
    char *out; /* n bytes of space */
} result;

/* Deliver src[0..n): first `cut` bytes, then `step` more per read
 * (0 = the rest at once).  Unconsumed bytes are offered again, each time in
 * an exact-size heap copy. */
static void decode(const pn_http1_request *req, uint64_t max_body, size_t max_trailers,
                   const char *src, size_t n, size_t cut, size_t step, result *res)
{
    pn_http1_body b;
    pn_http1_body_init(&b, req, max_body, max_trailers);
    size_t pos = 0, avail = cut < n ? cut : n;
    res->out_len = 0;
    for (;;) {
        size_t m = avail - pos;
        char *in = malloc(m ? m : 1);
        memcpy(in, src + pos, m);
        size_t used = (size_t)-1, dl = (size_t)-1;
        const char *d = NULL;
        int rc = pn_http1_body_next(&b, in, m, &used, &d, &dl);
        CHECK(used <= m);
        if (rc == PN_HTTP1_OK) {
            CHECK(dl > 0 && d >= in && dl <= used && (size_t)(d - in) <= used - dl);
            CHECK(res->out_len + dl <= n);
            memcpy(res->out + res->out_len, d, dl);
            res->out_len += dl;
        } else {
            CHECK(dl == 0);
        }
        free(in);
        pos += used;
        if (rc == PN_HTTP1_OK)
            continue;
        if (rc == PN_HTTP1_INCOMPLETE) {
            CHECK(pos == avail);
            if (avail < n) {
                avail = step && n - avail > step ? avail + step : n;
                continue;
            }
        } else if (rc == PN_HTTP1_ERROR) {
            CHECK(b.error_status == 400 || b.error_status == 413);
            CHECK(b.error_reason != NULL);
        } else {
            CHECK(rc == PN_BODY_DONE && b.done);
        }
        res->rc = rc;
        res->status = rc == PN_HTTP1_ERROR ? b.error_status : 0;
        res->consumed = rc == PN_HTTP1_ERROR ? 0 : pos;
        CHECK(b.total == res->out_len);
        if (max_body)
            CHECK(b.total <= max_body);
        return;
    }
}

static void same(const result *a, const result *b)
{
    CHECK(a->rc == b->rc && a->status == b->status && a->consumed == b->consumed);
    CHECK(a->out_len == b->out_len && memcmp(a->out, b->out, a->out_len) == 0);
}

static void check_kind(const pn_http1_request *req, uint64_t max_body, size_t max_trailers,
                       const char *src, size_t n, size_t cut)
{
    char *o1 = malloc(n + 1), *o2 = malloc(n + 1), *o3 = malloc(n + 1);
    result whole = {0, 0, 0, 0, o1}, split = {0, 0, 0, 0, o2}, bytes = {0, 0, 0, 0, o3};
    decode(req, max_body, max_trailers, src, n, n, 0, &whole);
    decode(req, max_body, max_trailers, src, n, cut, 0, &split);
    decode(req, max_body, max_trailers, src, n, 1, 1, &bytes);
    same(&whole, &split);
    same(&whole, &bytes);
    free(o1);
    free(o2);
    free(o3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned ctl = data[0];
    const char *src = (const char *)data + 2;
    size_t n = size - 2;
    size_t cut = n * data[1] / 255;
    uint64_t max_body = (ctl & 1) ? (uint64_t)(ctl >> 1) * 4 : 0;
    size_t max_trailers = (ctl & 2) ? 1000 : (size_t)(ctl >> 3);

    pn_http1_request req;
    memset(&req, 0, sizeof req);
    req.body_kind = PN_BODY_CHUNKED;
    check_kind(&req, max_body, max_trailers, src, n, cut);

    req.body_kind = PN_BODY_LENGTH;
    req.content_length = 1 + (uint64_t)data[1] * 2;
    check_kind(&req, max_body, max_trailers, src, n, cut);
    return 0;
}
