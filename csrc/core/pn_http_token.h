/*
 * pn_http_token — the one lexical toolkit of the protocol core: character
 * classes (tchar and friends), OWS, case-insensitive compare, hex digits,
 * comma-separated lists and decimal numbers, as RFC 9110 §5.6 defines them.
 * Every parser of the core (request head and body, Accept-Encoding, the
 * compression policy, the WebSocket handshake) and the response writer use
 * these, so a byte class or a list rule is decided in one place.
 *
 * Protocol core: plain C, no Python.h, no allocation, no mutable state; any
 * thread may call anything here.  Inputs are slices (pointer + length, not
 * NUL-terminated) and are only read inside them.
 *
 * Why most of it is static inline: the request parser runs these per byte,
 * and the table and the small helpers must cost what its own copies cost
 * before (one indexed load, no call).  Keeping everything the parser needs
 * in this header also lets pn_http1_parse.c link on its own
 * (tests/test_differential.py builds it with pn_buf.c alone).
 * pn_http_token.c holds what only the slower paths use.
 */
#ifndef PN_HTTP_TOKEN_H
#define PN_HTTP_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pn_buf.h" /* PN_STRLIT */

/* ---- character classes ------------------------------------------------ */

/* One bit per class; a byte may be in several. */
enum {
    PN_HTTP_TCHAR = 0x01,   /* tchar, RFC 9110 §5.6.2 */
    PN_HTTP_VALUE = 0x02,   /* field-value byte: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5) */
    PN_HTTP_TARGET = 0x04,  /* request-target byte: VCHAR except '#' (RFC 9112 §3.2) */
    PN_HTTP_HEX = 0x08,     /* HEXDIG */
    PN_HTTP_REGNAME = 0x10, /* reg-name byte without '%': unreserved / sub-delims (RFC 3986) */
    PN_HTTP_QDTEXT = 0x20,  /* qdtext, RFC 9110 §5.6.4 */
    PN_HTTP_IP6 = 0x40,     /* inside an IP-literal: HEXDIG ':' '.' */
};

/* The class bits of every byte (tests/c/test_http_token.c checks each class
 * against its RFC definition).  Static, so each file that uses it indexes
 * its own copy with no indirection; files that do not use it drop it. */
static const unsigned char pn_http_cclass[256] = {
    /* 0x00 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 0x08 */ 0x00, 0x22, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 0x10 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 0x18 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 0x20 */ 0x22, 0x37, 0x06, 0x23, 0x37, 0x27, 0x37, 0x37,
    /* 0x28 */ 0x36, 0x36, 0x37, 0x37, 0x36, 0x37, 0x77, 0x26,
    /* 0x30 */ 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f,
    /* 0x38 */ 0x7f, 0x7f, 0x66, 0x36, 0x26, 0x36, 0x26, 0x26,
    /* 0x40 */ 0x26, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x37,
    /* 0x48 */ 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37,
    /* 0x50 */ 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37,
    /* 0x58 */ 0x37, 0x37, 0x37, 0x26, 0x06, 0x26, 0x27, 0x37,
    /* 0x60 */ 0x27, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x37,
    /* 0x68 */ 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37,
    /* 0x70 */ 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37,
    /* 0x78 */ 0x37, 0x37, 0x37, 0x26, 0x27, 0x26, 0x37, 0x00,
    /* 0x80 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0x88 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0x90 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0x98 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xa0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xa8 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xb0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xb8 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xc0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xc8 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xd0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xd8 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xe0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xe8 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xf0 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    /* 0xf8 */ 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
};

/* Nonzero if byte c is in one of the classes `cls` (PN_HTTP_* bits). */
static inline unsigned pn_http_is(char c, unsigned cls)
{
    return pn_http_cclass[(unsigned char)c] & cls;
}

static inline int pn_http_is_tchar(char c)
{
    return (pn_http_cclass[(unsigned char)c] & PN_HTTP_TCHAR) != 0;
}

/* token = 1*tchar (RFC 9110 §5.6.2): non-empty, tchar only. */
static inline int pn_http_is_token(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!pn_http_is_tchar(s[i]))
            return 0;
    return n > 0;
}

/* OWS = *( SP / HTAB ) (RFC 9110 §5.6.3); BWS is the same bytes. */
static inline int pn_http_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Trim OWS from both ends of the slice [*s, *s + *n). */
static inline void pn_http_trim(const char **s, size_t *n)
{
    while (*n && pn_http_is_ows(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && pn_http_is_ows((*s)[*n - 1]))
        (*n)--;
}

/* ---- case-insensitive compare ----------------------------------------- */

/* ASCII lowercase of every byte; other bytes (obs-text included) map to
 * themselves.  A table, not arithmetic: pn_http_ieq then costs two loads
 * and a compare per byte, and against a literal the compiler folds one
 * side to a constant. */
#define PN_LC1(c) (unsigned char)((c) >= 'A' && (c) <= 'Z' ? (c) + ('a' - 'A') : (c))
#define PN_LC4(c) PN_LC1(c), PN_LC1(c + 1), PN_LC1(c + 2), PN_LC1(c + 3)
#define PN_LC16(c) PN_LC4(c), PN_LC4(c + 4), PN_LC4(c + 8), PN_LC4(c + 12)
#define PN_LC64(c) PN_LC16(c), PN_LC16(c + 16), PN_LC16(c + 32), PN_LC16(c + 48)
static const unsigned char pn_http_lower_table[256] = {
    PN_LC64(0),
    PN_LC64(64),
    PN_LC64(128),
    PN_LC64(192),
};
#undef PN_LC1
#undef PN_LC4
#undef PN_LC16
#undef PN_LC64

static inline unsigned char pn_http_lower(unsigned char c)
{
    return pn_http_lower_table[c];
}

/* 1 if a[0..an) equals b[0..bn) ignoring ASCII case (field names, tokens
 * and codings are case-insensitive: RFC 9110 §5.1, §5.6.2, §8.4.1).  With a
 * literal: pn_http_ieq(name, len, PN_STRLIT("host")). */
static inline int pn_http_ieq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++)
        if (pn_http_lower((unsigned char)a[i]) != pn_http_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* The length of lit if s[0..n) starts with it ignoring ASCII case, else 0
 * (a scheme prefix such as "http://"). */
static inline size_t pn_http_iprefix(const char *s, size_t n, const char *lit, size_t lit_len)
{
    return n >= lit_len && pn_http_ieq(s, lit_len, lit, lit_len) ? lit_len : 0;
}

/* The exact (case-sensitive) compare, for methods (RFC 9110 §9.1) and other
 * case-sensitive tokens: pn_http_eq(method, len, PN_STRLIT("GET")). */
static inline int pn_http_eq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && memcmp(a, b, an) == 0;
}

/* ---- numbers ---------------------------------------------------------- */

/* Value of a HEXDIG (RFC 5234 B.1, either case), or -1. */
static inline int pn_http_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = pn_http_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* 1*DIGIT (a Content-Length, RFC 9110 §8.6) into *out: 0, or -1 when n is
 * 0, a byte is not a digit, or the value overflows 64 bits. */
static inline int pn_http_parse_u64(const char *v, size_t n, uint64_t *out)
{
    if (n == 0)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)((unsigned char)v[i] - '0');
        if (d > 9)
            return -1;
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* Writers fill a buffer reserved in advance through a char pointer; this
 * copies n bytes to p and returns the end (p = pn_http_put(p, PN_STRLIT("\r\n"))). */
static inline char *pn_http_put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* The most bytes pn_http_put_u64 writes (UINT64_MAX has 20 digits). */
#define PN_HTTP_U64_DIGITS 20

/* Write v in decimal at p (room for PN_HTTP_U64_DIGITS bytes); returns the
 * number of bytes written (1..20).  No NUL, no printf: this runs for every
 * Content-Length and access-log line. */
static inline size_t pn_http_put_u64(char *p, uint64_t v)
{
    char tmp[PN_HTTP_U64_DIGITS];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(p, tmp + sizeof(tmp) - n, n);
    return n;
}

/* ---- comma-separated lists -------------------------------------------- */

/* The next element of the list v[0..n) (RFC 9110 §5.6.1: elements
 * separated by commas, with OWS around them), OWS trimmed, in *el and
 * *el_len.  Start with *pos = 0; each call moves *pos past the element's
 * comma (beyond n after the last one).  Returns 0 when the list is done.
 *
 * Empty elements ("a,,b", a trailing comma, an empty value) are returned
 * too, with *el_len == 0: a recipient must accept and ignore them in most
 * lists, but the request parser refuses one in Transfer-Encoding, so the
 * caller decides.  Never reads outside v[0..n). */
static inline int pn_http_list_next(const char *v, size_t n, size_t *pos, const char **el,
                                    size_t *el_len)
{
    size_t i = *pos;
    if (i > n)
        return 0;
    size_t s = i;
    while (i < n && v[i] != ',')
        i++;
    const char *e = v + s;
    size_t len = i - s;
    pn_http_trim(&e, &len);
    *el = e;
    *el_len = len;
    *pos = i + 1;
    return 1;
}

/* 1 if the list v[0..n) has an element equal to tok[0..tok_len) ignoring
 * case (a Connection option, an Upgrade protocol, ...).  tok is non-empty. */
int pn_http_list_has(const char *v, size_t n, const char *tok, size_t tok_len);

#endif
