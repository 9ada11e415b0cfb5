/*
 * pn_compress_policy — whether a response should be compressed at all: its
 * status, its headers and its media type (see pn_compress.h, "Should this
 * response be compressed?").  Independent of the codecs and of the client's
 * Accept-Encoding; plain string work on the application's header values.
 */
#include "pn_compress.h"

#include <errno.h>
#include <string.h>

#include "pn_http_token.h"

void pn_compress_resp_init(pn_compress_resp *r, int status, int is_head)
{
    memset(r, 0, sizeof(*r));
    r->status = status;
    r->is_head = is_head;
    r->body_size = PN_SIZE_UNKNOWN;
}

/* A Content-Length value as a size; PN_SIZE_UNKNOWN when malformed or
 * longer than 18 digits (so that it always fits an int64_t). */
static int64_t parse_length(const char *v, size_t n)
{
    uint64_t x;
    pn_http_trim(&v, &n);
    if (n > 18 || pn_http_parse_u64(v, n, &x) != 0)
        return PN_SIZE_UNKNOWN;
    return (int64_t)x;
}

void pn_compress_resp_header(pn_compress_resp *r, const char *name, size_t nlen, const char *value,
                             size_t vlen)
{
    if (pn_http_ieq(name, nlen, PN_STRLIT("content-type"))) {
        r->content_type = value;
        r->content_type_len = vlen;
    } else if (pn_http_ieq(name, nlen, PN_STRLIT("content-encoding"))) {
        r->has_content_encoding = 1;
    } else if (pn_http_ieq(name, nlen, PN_STRLIT("cache-control"))) {
        if (pn_cache_control_no_transform(value, vlen))
            r->no_transform = 1;
    } else if (pn_http_ieq(name, nlen, PN_STRLIT("content-range"))) {
        r->has_content_range = 1;
    } else if (pn_http_ieq(name, nlen, PN_STRLIT("content-length"))) {
        if (r->body_size < 0)
            r->body_size = parse_length(value, vlen);
    }
}

int pn_compress_eligible(const pn_compress_policy *pol, const pn_compress_resp *r)
{
    /* No content to encode: 1xx, 204, 304 (RFC 9110 §15.3.5, §15.4.5), and
     * HEAD, whose headers would describe a body nobody encodes. */
    if (r->status < 200 || r->status == 204 || r->status == 304 || r->is_head)
        return 0;
    /* A 206 or a Content-Range describes byte ranges of the unencoded
     * representation; encoding them would break the ranges (RFC 9110 §14). */
    if (r->status == 206 || r->has_content_range)
        return 0;
    /* The app encoded it already, or forbade transformation
     * (RFC 9111 §5.2.2.6 no-transform). */
    if (r->has_content_encoding || r->no_transform)
        return 0;
    if (r->body_size == 0 || (r->body_size > 0 && pol && r->body_size < pol->min_size))
        return 0;
    if (r->content_type == NULL)
        return 0;
    return pn_compress_type_ok(r->content_type, r->content_type_len, pol ? pol->types : NULL);
}

/* Split a media type into type and subtype (lowercase compare later);
 * parameters after ';' are ignored.  0 if malformed. */
static int split_type(const char *ct, size_t n, const char **t, size_t *tn, const char **s,
                      size_t *sn)
{
    const char *semi = memchr(ct, ';', n);
    if (semi)
        n = (size_t)(semi - ct);
    pn_http_trim(&ct, &n);
    const char *slash = memchr(ct, '/', n);
    if (slash == NULL)
        return 0;
    *t = ct;
    *tn = (size_t)(slash - ct);
    *s = slash + 1;
    *sn = n - *tn - 1;
    pn_http_trim(t, tn);
    pn_http_trim(s, sn);
    return *tn > 0 && *sn > 0;
}

/* Does s[0..n) end with the literal suffix (ignoring case), after at least
 * one byte? ("+json" as in "ld+json", never "+json" alone.) */
static int iends(const char *s, size_t n, const char *suffix, size_t k)
{
    return n > k && pn_http_ieq(s + n - k, k, suffix, k);
}

int pn_compress_type_ok(const char *ct, size_t n, const char *extra)
{
    const char *t, *s;
    size_t tn, sn;
    if (!split_type(ct, n, &t, &tn, &s, &sn))
        return 0;
    if (pn_http_ieq(t, tn, PN_STRLIT("text")))
        return 1;
    if (pn_http_ieq(s, sn, PN_STRLIT("json")) || iends(s, sn, PN_STRLIT("+json")) ||
        pn_http_ieq(s, sn, PN_STRLIT("xml")) || iends(s, sn, PN_STRLIT("+xml")))
        return 1;
    if (pn_http_ieq(s, sn, PN_STRLIT("javascript")) ||
        pn_http_ieq(s, sn, PN_STRLIT("x-javascript")) ||
        pn_http_ieq(s, sn, PN_STRLIT("ecmascript")))
        return 1;
    if (extra == NULL)
        return 0;
    size_t len = strlen(extra), pos = 0, en;
    const char *e;
    while (pn_http_list_next(extra, len, &pos, &e, &en)) {
        const char *et, *es;
        size_t etn, esn;
        if (!split_type(e, en, &et, &etn, &es, &esn))
            continue;
        if (pn_http_ieq(t, tn, et, etn) &&
            ((esn == 1 && es[0] == '*') || pn_http_ieq(s, sn, es, esn)))
            return 1;
    }
    return 0;
}

int pn_compress_types_valid(const char *extra)
{
    size_t len = strlen(extra), pos = 0, en;
    const char *e;
    while (pn_http_list_next(extra, len, &pos, &e, &en)) {
        const char *t, *s;
        size_t tn, sn;
        if (en == 0)
            continue;
        if (memchr(e, ';', en) || !split_type(e, en, &t, &tn, &s, &sn))
            return -EINVAL;
        for (size_t i = 0; i < en; i++)
            if ((unsigned char)e[i] <= ' ' || e[i] == '"' || e[i] == ',' || e[i] == 0x7f)
                return -EINVAL;
    }
    return 0;
}

/* 1 if the comma list v has an element whose token (before any '=')
 * equals want case-insensitively: a Cache-Control directive may carry an
 * argument (RFC 9111 §5.2). */
static int list_has(const char *v, size_t n, const char *want, size_t want_len)
{
    size_t pos = 0, en;
    const char *e;
    while (pn_http_list_next(v, n, &pos, &e, &en)) {
        const char *eq = memchr(e, '=', en);
        if (eq) {
            en = (size_t)(eq - e);
            pn_http_trim(&e, &en);
        }
        if (pn_http_ieq(e, en, want, want_len))
            return 1;
    }
    return 0;
}

int pn_cache_control_no_transform(const char *v, size_t n)
{
    return list_has(v, n, PN_STRLIT("no-transform"));
}

int pn_vary_has_accept_encoding(const char *v, size_t n)
{
    return list_has(v, n, PN_STRLIT("accept-encoding")) || list_has(v, n, PN_STRLIT("*"));
}

int pn_etag_weaken(const char *v, size_t n, pn_buf *out)
{
    pn_http_trim(&v, &n);
    /* RFC 9110 §8.8.3: entity-tag = [ "W/" ] opaque-tag; only a strong,
     * well-formed tag is rewritten, anything else is passed through. */
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        if (pn_buf_append(out, PN_STRLIT("W/")) != 0)
            return -ENOMEM;
    }
    return pn_buf_append(out, v, n);
}
