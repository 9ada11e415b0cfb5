/*
 * pn_utf8 — incremental UTF-8 validator (RFC 3629 §4).
 *
 * Protocol core: plain C, no Python.h.
 *
 * Ownership and threads: a pn_utf8 is a few bytes of state embedded in its
 * owner (a WebSocket parser, a connection); only the thread that owns the
 * owner touches it.  No global state; every function is re-entrant.
 *
 * Use: pn_utf8_init() once per text (a WebSocket text message), then
 * pn_utf8_feed() for each piece in order — pieces may split a code point
 * anywhere, which is how a text message split over frames (or over reads) is
 * validated without copying — and pn_utf8_done() at the end of the text, which
 * fails when the text stopped inside a code point.  A failure is sticky.
 *
 * What is rejected (RFC 3629 §3/§4): bytes C0, C1, F5..FF, a missing or
 * unexpected continuation byte, overlong forms (E0 80..9F, F0 80..8F),
 * UTF-16 surrogates (ED A0..BF) and code points above U+10FFFF (F4 90..).
 * A WebSocket endpoint fails the connection with close code 1007 on any of
 * them (RFC 6455 §8.1), as soon as the bad byte is seen.
 *
 * Speed: while between code points, eight bytes are checked at once (one
 * unaligned 64-bit load, one AND) so ASCII costs well under a cycle a byte.
 */
#ifndef PN_UTF8_H
#define PN_UTF8_H

#include <stddef.h>
#include <stdint.h>

typedef struct pn_utf8 {
    uint8_t need;   /* continuation bytes still expected; 0xff after an error */
    uint8_t lo, hi; /* allowed range of the next continuation byte */
} pn_utf8;

static inline void pn_utf8_init(pn_utf8 *v)
{
    v->need = 0;
    v->lo = 0x80;
    v->hi = 0xbf;
}

/* Validate the next n bytes.  0 = valid so far, -1 = invalid (sticky). */
int pn_utf8_feed(pn_utf8 *v, const void *p, size_t n);

/* End of the text: 0 when it ended on a code point boundary, else -1. */
static inline int pn_utf8_done(const pn_utf8 *v)
{
    return v->need == 0 ? 0 : -1;
}

/* One-shot: 0 when p[0..n) is complete, valid UTF-8, else -1. */
int pn_utf8_valid(const void *p, size_t n);

#endif
