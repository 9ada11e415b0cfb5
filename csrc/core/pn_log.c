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

int pn_log_access(pn_buf *out, const char *client, size_t client_len, const char *method,
                  size_t method_len, const char *target, size_t target_len, int version_minor,
                  int status, uint64_t bytes, uint64_t duration_ns)
{
    /* client " - \"" method ' ' target " HTTP/1.x\" " status(<=11) ' '
     * bytes(<=20) ' ' ms(<=17 + '.' + 3) "ms\n". */
    if (method_len > SIZE_MAX / 8 || target_len > SIZE_MAX / 8 || client_len > SIZE_MAX / 4)
        return -ENOMEM;
    size_t need = client_len + 4 * (method_len + target_len) + 96;
    if (pn_buf_reserve(out, need))
        return -ENOMEM;
    char *p = pn_buf_tail(out);

    p = pn_http_put(p, client, client_len);
    p = pn_http_put(p, PN_STRLIT(" - \""));
    p = put_escaped(p, method, method_len);
    *p++ = ' ';
    p = put_escaped(p, target, target_len);
    p = version_minor == 0 ? pn_http_put(p, PN_STRLIT(" HTTP/1.0\" "))
                           : pn_http_put(p, PN_STRLIT(" HTTP/1.1\" "));

    if (status >= 0) {
        p += pn_http_put_u64(p, (uint64_t)status);
    } else {
        *p++ = '-';
    }
    *p++ = ' ';
    p += pn_http_put_u64(p, bytes);
    *p++ = ' ';

    /* Milliseconds with three decimals, truncated: 412345 ns -> "0.412". */
    uint64_t us = duration_ns / 1000;
    p += pn_http_put_u64(p, us / 1000);
    unsigned frac = (unsigned)(us % 1000);
    *p++ = '.';
    *p++ = (char)('0' + frac / 100);
    *p++ = (char)('0' + frac / 10 % 10);
    *p++ = (char)('0' + frac % 10);
    p = pn_http_put(p, PN_STRLIT("ms\n"));

    out->len = (size_t)(p - out->data);
    return 0;
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
