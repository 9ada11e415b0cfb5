/*
 * pn_utf8 — incremental UTF-8 validator.  See pn_utf8.h.
 */
#include "pn_utf8.h"

#include <string.h>

enum { FAILED = 0xff };

#define HIGH_BITS 0x8080808080808080ull

/* Index of the first byte >= 0x80 at or after i, or n.  Eight bytes per step
 * through an unaligned load (memcpy compiles to one mov). */
static size_t skip_ascii(const uint8_t *s, size_t i, size_t n)
{
    while (n - i >= 16) {
        uint64_t a, b;
        memcpy(&a, s + i, 8);
        memcpy(&b, s + i + 8, 8);
        if ((a | b) & HIGH_BITS)
            break;
        i += 16;
    }
    while (n - i >= 8) {
        uint64_t a;
        memcpy(&a, s + i, 8);
        if (a & HIGH_BITS)
            break;
        i += 8;
    }
    while (i < n && s[i] < 0x80)
        i++;
    return i;
}

int pn_utf8_feed(pn_utf8 *v, const void *p, size_t n)
{
    const uint8_t *s = p;
    unsigned need = v->need, lo = v->lo, hi = v->hi;
    size_t i = 0;
    if (need == FAILED)
        return -1;
    while (i < n) {
        if (need == 0) {
            i = skip_ascii(s, i, n);
            if (i == n)
                break;
            unsigned c = s[i++];
            /* Lead byte: how many continuation bytes follow, and the range of
             * the first one, which is where overlongs, surrogates and
             * > U+10FFFF are excluded (RFC 3629 §4, UTF8-2..UTF8-4). */
            if (c < 0xc2) {
                goto fail; /* stray continuation byte, or overlong C0/C1 */
            } else if (c < 0xe0) {
                need = 1;
            } else if (c < 0xf0) {
                need = 2;
                lo = c == 0xe0 ? 0xa0 : 0x80;
                hi = c == 0xed ? 0x9f : 0xbf;
            } else if (c < 0xf5) {
                need = 3;
                lo = c == 0xf0 ? 0x90 : 0x80;
                hi = c == 0xf4 ? 0x8f : 0xbf;
            } else {
                goto fail;
            }
        } else {
            unsigned c = s[i++];
            if (c < lo || c > hi)
                goto fail;
            lo = 0x80;
            hi = 0xbf;
            need--;
        }
    }
    v->need = (uint8_t)need;
    v->lo = (uint8_t)lo;
    v->hi = (uint8_t)hi;
    return 0;
fail:
    v->need = FAILED;
    return -1;
}

int pn_utf8_valid(const void *p, size_t n)
{
    pn_utf8 v;
    pn_utf8_init(&v);
    if (pn_utf8_feed(&v, p, n) != 0)
        return -1;
    return pn_utf8_done(&v);
}
