/*
 * pn_log — access-log line formatting.  Contract in pn_log.h.
 *
 * Re-entrant, no static mutable state; the caller's pn_buf belongs to one
 * worker thread.  Numbers are written by hand (no printf on this path).
 */
#include "pn_log.h"

#include <errno.h>
#include <string.h>

#include "pn_http_token.h"

static const char hex_upper[] = "0123456789ABCDEF";

/* 1 for bytes copied verbatim into the log: printable ASCII except the
 * quote (it delimits the request line) and the backslash (it starts our
 * escapes, so a literal one would make "\x41" in a target ambiguous). */
static int log_plain(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}

/* Escape s[0..n) into p, which has room for 4 * n bytes; returns the end. */
/* The request line's version: r->version_minor 0 and 1 are HTTP/1.0 and
 * HTTP/1.1, 2 is HTTP/2 ("HTTP/2.0", as nginx and Apache write it). */
static char *put_version(char *p, int version_minor)
{
    if (version_minor == 0)
        return pn_http_put(p, PN_STRLIT(" HTTP/1.0\" "));
    if (version_minor == 2)
        return pn_http_put(p, PN_STRLIT(" HTTP/2.0\" "));
    return pn_http_put(p, PN_STRLIT(" HTTP/1.1\" "));
}

static char *put_escaped(char *p, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* Copy the longest plain run at once: most targets have no escapes. */
        size_t run = i;
        while (run < n && log_plain((unsigned char)s[run]))
            run++;
        if (run > i) {
            memcpy(p, s + i, run - i);
            p += run - i;
            i = run;
            if (i == n)
                break;
        }
        unsigned char c = (unsigned char)s[i++];
        p[0] = '\\';
        p[1] = 'x';
        p[2] = hex_upper[c >> 4];
        p[3] = hex_upper[c & 0xf];
        p += 4;
    }
    return p;
}

int pn_log_escape(pn_buf *out, const char *s, size_t n)
{
    if (n > (SIZE_MAX - 16) / 4)
        return -ENOMEM;
    if (pn_buf_reserve(out, 4 * n))
        return -ENOMEM;
    char *end = put_escaped(pn_buf_tail(out), s, n);
    out->len = (size_t)(end - out->data);
    return 0;
}

/* Milliseconds with three decimals, truncated (412345 ns -> "0.412"; a
 * JSON number too); at most 20 + 4 bytes. */
static char *put_ms(char *p, uint64_t ns)
{
    uint64_t us = ns / 1000;
    p += pn_http_put_u64(p, us / 1000);
    unsigned frac = (unsigned)(us % 1000);
    *p++ = '.';
    *p++ = (char)('0' + frac / 100);
    *p++ = (char)('0' + frac / 10 % 10);
    *p++ = (char)('0' + frac % 10);
    return p;
}

/* The default line: client " - \"" method ' ' target " HTTP/1.x\" " status
 * ' ' bytes ' ' ms "ms" [' "' id '"'] '\n'. */
static int put_default(pn_buf *out, const pn_access_rec *r)
{
    if (r->method_len > SIZE_MAX / 8 || r->target_len > SIZE_MAX / 8 ||
        r->client_len > SIZE_MAX / 4 || r->request_id_len > SIZE_MAX / 8)
        return -ENOMEM;
    size_t need = r->client_len + 4 * (r->method_len + r->target_len + r->request_id_len) + 100;
    if (pn_buf_reserve(out, need))
        return -ENOMEM;
    char *p = pn_buf_tail(out);

    p = pn_http_put(p, r->client, r->client_len);
    p = pn_http_put(p, PN_STRLIT(" - \""));
    p = put_escaped(p, r->method, r->method_len);
    *p++ = ' ';
    p = put_escaped(p, r->target, r->target_len);
    p = put_version(p, r->version_minor);

    if (r->status >= 0) {
        p += pn_http_put_u64(p, (uint64_t)r->status);
    } else {
        *p++ = '-';
    }
    *p++ = ' ';
    p += pn_http_put_u64(p, r->bytes);
    *p++ = ' ';

    p = put_ms(p, r->duration_ns);
    p = pn_http_put(p, PN_STRLIT("ms"));
    if (r->request_id) {
        p = pn_http_put(p, PN_STRLIT(" \""));
        p = put_escaped(p, r->request_id, r->request_id_len);
        *p++ = '"';
    }
    *p++ = '\n';

    out->len = (size_t)(p - out->data);
    return 0;
}

int pn_log_access(pn_buf *out, const char *client, size_t client_len, const char *method,
                  size_t method_len, const char *target, size_t target_len, int version_minor,
                  int status, uint64_t bytes, uint64_t duration_ns)
{
    pn_access_rec r = {
        .client = client,
        .client_len = client_len,
        .method = method,
        .method_len = method_len,
        .target = target,
        .target_len = target_len,
        .version_minor = version_minor,
        .status = status,
        .bytes = bytes,
        .duration_ns = duration_ns,
    };
    return put_default(out, &r);
}

/* ---- the clock: one conversion per second ---------------------------- */

static char *put2(char *p, unsigned v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

/* Civil date of a day count since 1970-01-01 (proleptic Gregorian), the
 * well-known era arithmetic: exact for every int64 second we can see. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void clock_set(pn_log_clock *clk, int64_t sec)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned hh = (unsigned)(rem / 3600), mm = (unsigned)(rem / 60 % 60), ss = (unsigned)(rem % 60);
    unsigned yy = y < 0 ? 0 : y > 9999 ? 9999 : (unsigned)y;

    char *p = clk->clf; /* 10/Oct/2000:13:55:36 +0000 */
    p = put2(p, d);
    *p++ = '/';
    p = pn_http_put(p, months + 3 * (m - 1), 3);
    *p++ = '/';
    p = put2(p, yy / 100);
    p = put2(p, yy);
    *p++ = ':';
    p = put2(p, hh);
    *p++ = ':';
    p = put2(p, mm);
    *p++ = ':';
    p = put2(p, ss);
    p = pn_http_put(p, PN_STRLIT(" +0000"));
    *p = '\0';

    p = clk->iso; /* 2000-10-10T13:55:36 */
    p = put2(p, yy / 100);
    p = put2(p, yy);
    *p++ = '-';
    p = put2(p, m);
    *p++ = '-';
    p = put2(p, d);
    *p++ = 'T';
    p = put2(p, hh);
    *p++ = ':';
    p = put2(p, mm);
    *p++ = ':';
    p = put2(p, ss);
    *p = '\0';
    clk->sec = sec;
}

static void clock_at(pn_log_clock *clk, uint64_t time_ns)
{
    int64_t sec = (int64_t)(time_ns / 1000000000u);
    if (clk->sec != sec)
        clock_set(clk, sec);
}

/* ---- common and combined (NCSA) --------------------------------------- */

/* The host part of the server-made client text: "1.2.3.4:80" -> "1.2.3.4",
 * "[::1]:80" -> "::1", "unix" -> "unix" (%h of Apache's formats). */
static size_t client_host(const char *c, size_t n, const char **host)
{
    *host = c;
    if (n && c[0] == '[') {
        const char *close = memchr(c, ']', n);
        if (close) {
            *host = c + 1;
            return (size_t)(close - c - 1);
        }
        return n;
    }
    for (size_t i = n; i > 0; i--) {
        if (c[i - 1] == ':')
            return i - 1;
    }
    return n;
}

/* '"' s '"' escaped, or "-" (with quotes, as Apache writes an absent
 * header) when s is NULL. */
static char *put_quoted(char *p, const char *s, size_t n)
{
    *p++ = '"';
    if (s)
        p = put_escaped(p, s, n);
    else
        *p++ = '-';
    *p++ = '"';
    return p;
}

static int put_ncsa(pn_buf *out, const pn_access_rec *r, pn_log_clock *clk, int combined)
{
    size_t lens[] = {r->method_len, r->target_len, r->request_id_len, combined ? r->referer_len : 0,
                     combined ? r->user_agent_len : 0};
    size_t sum = 0;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        if (lens[i] > SIZE_MAX / 32)
            return -ENOMEM;
        sum += lens[i];
    }
    if (r->client_len > SIZE_MAX / 4 || sum > SIZE_MAX / 8)
        return -ENOMEM;
    if (pn_buf_reserve(out, r->client_len + 4 * sum + 128))
        return -ENOMEM;
    clock_at(clk, r->time_ns);
    char *p = pn_buf_tail(out);

    const char *host;
    size_t host_len = client_host(r->client, r->client_len, &host);
    p = pn_http_put(p, host, host_len);
    p = pn_http_put(p, PN_STRLIT(" - - ["));
    p = pn_http_put(p, clk->clf, 26);
    p = pn_http_put(p, PN_STRLIT("] \""));
    p = put_escaped(p, r->method, r->method_len);
    *p++ = ' ';
    p = put_escaped(p, r->target, r->target_len);
    p = put_version(p, r->version_minor);
    if (r->status >= 0)
        p += pn_http_put_u64(p, (uint64_t)r->status);
    else
        *p++ = '-';
    *p++ = ' ';
    /* %b: "-" for no body bytes. */
    if (r->bytes)
        p += pn_http_put_u64(p, r->bytes);
    else
        *p++ = '-';
    if (combined) {
        *p++ = ' ';
        p = put_quoted(p, r->referer, r->referer_len);
        *p++ = ' ';
        p = put_quoted(p, r->user_agent, r->user_agent_len);
    }
    if (r->request_id) {
        *p++ = ' ';
        p = put_quoted(p, r->request_id, r->request_id_len);
    }
    *p++ = '\n';
    out->len = (size_t)(p - out->data);
    return 0;
}

/* ---- json ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n) starting with a non-ASCII
 * byte, or 0 when it is not one (RFC 3629 §4: no overlongs, no
 * surrogates, nothing past U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    }
    return len;
}

/* Escape into p, which has room for 6 * n bytes; returns the end. */
static char *put_json(char *p, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            *p++ = (char)c;
            i++;
        } else if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
            i++;
        } else if (c < 0x80) { /* controls and DEL */
            p = pn_http_put(p, PN_STRLIT("\\u00"));
            *p++ = hex_upper[c >> 4];
            *p++ = hex_upper[c & 0xf];
            i++;
        } else {
            size_t len = utf8_seq(s + i, n - i);
            if (len) {
                p = pn_http_put(p, (const char *)s + i, len);
                i += len;
            } else {
                /* Not UTF-8: the text "\xHH", its backslash escaped. */
                p = pn_http_put(p, PN_STRLIT("\\\\x"));
                *p++ = hex_upper[c >> 4];
                *p++ = hex_upper[c & 0xf];
                i++;
            }
        }
    }
    return p;
}

int pn_log_json_escape(pn_buf *out, const char *s, size_t n)
{
    if (n > (SIZE_MAX - 16) / 6)
        return -ENOMEM;
    if (pn_buf_reserve(out, 6 * n))
        return -ENOMEM;
    char *end = put_json(pn_buf_tail(out), s, n);
    out->len = (size_t)(end - out->data);
    return 0;
}

/* "key":"escaped" or "key":null */
static char *put_json_field(char *p, const char *key, size_t key_len, const char *s, size_t n)
{
    p = pn_http_put(p, key, key_len);
    if (s == NULL)
        return pn_http_put(p, PN_STRLIT("null"));
    *p++ = '"';
    p = put_json(p, s, n);
    *p++ = '"';
    return p;
}

static int put_json_line(pn_buf *out, const pn_access_rec *r, pn_log_clock *clk)
{
    size_t lens[] = {r->client_len,  r->method_len,     r->target_len,
                     r->referer_len, r->user_agent_len, r->request_id_len};
    size_t sum = 0;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        if (lens[i] > SIZE_MAX / 64)
            return -ENOMEM;
        sum += lens[i];
    }
    if (sum > SIZE_MAX / 8)
        return -ENOMEM;
    if (pn_buf_reserve(out, 6 * sum + 320))
        return -ENOMEM;
    clock_at(clk, r->time_ns);
    char *p = pn_buf_tail(out);

    p = pn_http_put(p, PN_STRLIT("{\"time\":\""));
    p = pn_http_put(p, clk->iso, 19);
    unsigned ms = (unsigned)(r->time_ns / 1000000u % 1000u);
    *p++ = '.';
    *p++ = (char)('0' + ms / 100);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    p = pn_http_put(p, PN_STRLIT("Z\""));
    p = put_json_field(p, PN_STRLIT(",\"client\":"), r->client, r->client_len);
    p = put_json_field(p, PN_STRLIT(",\"method\":"), r->method, r->method_len);
    p = put_json_field(p, PN_STRLIT(",\"target\":"), r->target, r->target_len);
    p = r->version_minor == 0   ? pn_http_put(p, PN_STRLIT(",\"http_version\":\"1.0\""))
        : r->version_minor == 2 ? pn_http_put(p, PN_STRLIT(",\"http_version\":\"2\""))
                                : pn_http_put(p, PN_STRLIT(",\"http_version\":\"1.1\""));
    p = pn_http_put(p, PN_STRLIT(",\"status\":"));
    if (r->status >= 0)
        p += pn_http_put_u64(p, (uint64_t)r->status);
    else
        p = pn_http_put(p, PN_STRLIT("null"));
    p = pn_http_put(p, PN_STRLIT(",\"bytes\":"));
    p += pn_http_put_u64(p, r->bytes);
    p = pn_http_put(p, PN_STRLIT(",\"duration_ms\":"));
    p = put_ms(p, r->duration_ns);
    p = put_json_field(p, PN_STRLIT(",\"referer\":"), r->referer, r->referer_len);
    p = put_json_field(p, PN_STRLIT(",\"user_agent\":"), r->user_agent, r->user_agent_len);
    p = put_json_field(p, PN_STRLIT(",\"request_id\":"), r->request_id, r->request_id_len);
    p = pn_http_put(p, PN_STRLIT(",\"pid\":"));
    p += pn_http_put_u64(p, r->pid > 0 ? (uint64_t)r->pid : 0);
    p = pn_http_put(p, PN_STRLIT("}\n"));
    out->len = (size_t)(p - out->data);
    return 0;
}

int pn_log_format(pn_buf *out, int format, const pn_access_rec *r, pn_log_clock *clk)
{
    switch (format) {
    case PN_LOG_FMT_COMMON:
        return put_ncsa(out, r, clk, 0);
    case PN_LOG_FMT_COMBINED:
        return put_ncsa(out, r, clk, 1);
    case PN_LOG_FMT_JSON:
        return put_json_line(out, r, clk);
    default:
        return put_default(out, r);
    }
}

size_t pn_log_format_ipv4(char *out, const unsigned char addr[4])
{
    /* inet_ntop formats IPv4 through sprintf; this is on the per-request
     * path (scope["client"], access log), so do it by hand. */
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = addr[i];
        if (v >= 100) {
            *p++ = (char)('0' + v / 100);
            v %= 100;
            *p++ = (char)('0' + v / 10);
            *p++ = (char)('0' + v % 10);
        } else if (v >= 10) {
            *p++ = (char)('0' + v / 10);
            *p++ = (char)('0' + v % 10);
        } else {
            *p++ = (char)('0' + v);
        }
        if (i < 3)
            *p++ = '.';
    }
    *p = '\0';
    return (size_t)(p - out);
}
