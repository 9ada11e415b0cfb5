/*
 * pn_static_path — see pn_static_path.h.
 *
 * One pass over the raw path, one segment (between raw '/') at a time: the
 * segment is decoded into out, then judged as a whole, so "%2e%2e" and
 * ".%2E" are the ".." they decode to.  An encoded '/' or '\' is refused
 * rather than decoded: the file system would see a separator the URL's
 * segments did not have (and "..%2f" would slip past the segment check).
 * ".." is refused, never resolved: a URL that climbs is not one a page of
 * the mount links to.
 */
#include "pn_static_path.h"

#include "pn_http_token.h"

#include <string.h>

/* The outcomes in order of precedence: when a path has several problems the
 * most severe one answers, whatever their order in the path. */
static int worse(int a, int b)
{
    /* BAD (-1) > NOT_FOUND (-3) > HIDDEN (-2) > ok */
    static const int rank[4] = {0, 3, 1, 2}; /* by -status: ok, BAD, HIDDEN, NOT_FOUND */
    int ra = a < 0 ? rank[-a] : 0, rb = b < 0 ? rank[-b] : 0;
    return ra >= rb ? a : b;
}

int pn_static_path(const char *raw, size_t len, unsigned flags, char *out, size_t cap,
                   size_t *out_len)
{
    int st = 0;       /* worst problem so far (0: none) */
    size_t pos = 0;   /* bytes of out written */
    int overflow = 0; /* out is full: keep scanning for a 400, write nothing */
    int last_dir = 1; /* the last segment was empty or ".": a directory is named */
    size_t i = 0;
    if (cap == 0) {
        *out_len = 0;
        return PN_SPATH_NOT_FOUND;
    }
    while (i <= len) {
        /* One segment: raw[i..j) up to the next raw '/' or the end. */
        size_t j = i;
        while (j < len && raw[j] != '/')
            j++;
        size_t seg = pos + (pos > 0); /* where the segment's bytes start in out */
        size_t k = seg;
        for (size_t p = i; p < j; p++) {
            unsigned char c = (unsigned char)raw[p];
            if (c == '%') {
                /* Both hex digits must lie inside this segment. */
                int hi = p + 2 < j ? pn_http_hexval((unsigned char)raw[p + 1]) : -1;
                int lo = hi >= 0 ? pn_http_hexval((unsigned char)raw[p + 2]) : -1;
                if (hi < 0 || lo < 0) {
                    st = worse(st, PN_SPATH_BAD);
                    continue;
                }
                c = (unsigned char)(hi << 4 | lo);
                p += 2;
                if (c == '/' || c == '\\')
                    st = worse(st, PN_SPATH_NOT_FOUND);
            } else if (c == '\\') {
                st = worse(st, PN_SPATH_NOT_FOUND);
            }
            if (c < 0x20 || c == 0x7f)
                st = worse(st, PN_SPATH_BAD);
            if (k + 1 >= cap) {
                overflow = 1;
                st = worse(st, PN_SPATH_NOT_FOUND);
            }
            if (!overflow)
                out[k] = (char)c;
            k++;
        }
        size_t n = k - seg;
        if (!overflow) {
            const char *s = out + seg;
            if (n == 0 || (n == 1 && s[0] == '.')) {
                last_dir = 1; /* dropped */
            } else {
                last_dir = 0;
                if (n == 2 && s[0] == '.' && s[1] == '.')
                    st = worse(st, PN_SPATH_NOT_FOUND);
                else if (s[0] == '.' && !(flags & PN_SPATH_DOTFILES) &&
                         !(seg == 0 && pn_http_eq(s, n, PN_STRLIT(".well-known"))))
                    st = worse(st, PN_SPATH_HIDDEN);
                if (pos > 0)
                    out[pos] = '/';
                pos = k;
            }
        }
        i = j + 1;
    }
    if (st != 0 || overflow) {
        out[0] = '\0';
        *out_len = 0;
        return st ? st : PN_SPATH_NOT_FOUND;
    }
    out[pos] = '\0';
    *out_len = pos;
    return last_dir ? PN_SPATH_DIR : PN_SPATH_FILE;
}
