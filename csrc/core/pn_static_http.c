/* pn_static_http — see pn_static_http.h. */
#include "pn_static_http.h"

#include "pn_http_token.h"

#include <string.h>

void pn_http_date_format(char out[PN_HTTP_DATE_LEN + 1], int64_t unix_seconds)
{
    (void)unix_seconds;
    memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", PN_HTTP_DATE_LEN + 1);
}

int pn_http_date_parse(const char *s, size_t n, int64_t *unix_seconds)
{
    (void)s;
    (void)n;
    (void)unix_seconds;
    return -1;
}

static size_t put_hex(char *p, uint64_t v)
{
    char tmp[16];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    memcpy(p, tmp + sizeof(tmp) - n, n);
    return n;
}

size_t pn_static_etag(char out[PN_ETAG_MAX], int64_t mtime_ns, uint64_t size)
{
    char *p = out;
    *p++ = '"';
    p += put_hex(p, (uint64_t)mtime_ns);
    *p++ = '-';
    p += put_hex(p, size);
    *p++ = '"';
    return (size_t)(p - out);
}

void pn_static_eval(const pn_http1_header *h, size_t nh, int is_get, const pn_static_meta *m,
                    pn_static_result *r)
{
    (void)h;
    (void)nh;
    (void)is_get;
    r->status = 200;
    r->off = 0;
    r->len = m->size;
}
