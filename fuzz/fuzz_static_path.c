/*
 * fuzz_static_path.c — libFuzzer target for pn_static_path, the gate
 * between a URL and the file system of a static mount.
 *
 * Input: one control byte, then the raw path (still %-encoded), read from
 * an exact-size heap copy so ASan sees any over-read.  The control byte
 * picks PN_SPATH_DOTFILES and a small output cap.  Checked:
 *   - an accepted path (FILE or DIR) never has a "..", "." or empty
 *     segment (so no leading or trailing '/' and no "//"), a '\', a NUL or
 *     a control byte, and out_len is its length;
 *   - without PN_SPATH_DOTFILES, no segment starts with '.' but a first
 *     ".well-known";
 *   - allowing dotfiles changes only HIDDEN answers;
 *   - the accepted path, fully %-encoded and fed back, comes out the same;
 *   - a smaller cap accepts only what the full cap accepts, identically.
 */
#include "pn_static_path.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static void check_accepted(const char *out, size_t n, unsigned flags)
{
    CHECK(strlen(out) == n);
    size_t s = 0;
    while (s < n) {
        size_t e = s;
        while (e < n && out[e] != '/')
            e++;
        size_t len = e - s;
        CHECK(len > 0); /* no leading '/', no "//", no trailing '/' */
        CHECK(!(len == 1 && out[s] == '.'));
        CHECK(!(len == 2 && out[s] == '.' && out[s + 1] == '.'));
        if (!(flags & PN_SPATH_DOTFILES) && out[s] == '.')
            CHECK(s == 0 && len == 11 && memcmp(out, ".well-known", 11) == 0);
        for (size_t i = s; i < e; i++) {
            unsigned char c = (unsigned char)out[i];
            CHECK(c >= 0x20 && c != 0x7f && c != '\\');
        }
        s = e + 1;
        if (e < n)
            CHECK(s < n); /* a '/' is never last */
    }
}

static int run(const char *raw, size_t n, unsigned flags, size_t cap, char *out, size_t *out_len)
{
    int r = pn_static_path(raw, n, flags, out, cap, out_len);
    CHECK(r == PN_SPATH_FILE || r == PN_SPATH_DIR || r == PN_SPATH_BAD || r == PN_SPATH_HIDDEN ||
          r == PN_SPATH_NOT_FOUND);
    CHECK(*out_len < cap);
    if (r >= 0)
        check_accepted(out, *out_len, flags);
    else
        CHECK(*out_len == 0 && out[0] == '\0');
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0] & 1 ? PN_SPATH_DOTFILES : 0;
    size_t small_cap = 1 + (data[0] >> 1) % 64;
    size_t n = size - 1;
    char *raw = malloc(n ? n : 1);
    memcpy(raw, data + 1, n);
    static char out[PN_STATIC_PATH_MAX], other[PN_STATIC_PATH_MAX];
    static char again[3 * PN_STATIC_PATH_MAX + 2];
    size_t len, len2;

    int r = run(raw, n, flags, sizeof(out), out, &len);

    /* The other flag: only HIDDEN may change, and only to accepted. */
    int r2 = run(raw, n, flags ^ PN_SPATH_DOTFILES, sizeof(other), other, &len2);
    if (r != r2) {
        CHECK(r == PN_SPATH_HIDDEN || r2 == PN_SPATH_HIDDEN);
        CHECK(r >= 0 || r2 >= 0);
    }
    if (r >= 0 && r2 >= 0)
        CHECK(r == r2 && len == len2 && memcmp(out, other, len) == 0);

    if (r >= 0) {
        /* Round trip: "/" + every byte %-encoded (+ "/" for a directory). */
        size_t k = 0;
        again[k++] = '/';
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)out[i];
            if (c == '/') {
                again[k++] = '/';
            } else {
                again[k++] = '%';
                again[k++] = "0123456789ABCDEF"[c >> 4];
                again[k++] = "0123456789ABCDEF"[c & 15];
            }
        }
        if (r == PN_SPATH_DIR && len > 0)
            again[k++] = '/';
        char *copy = malloc(k);
        memcpy(copy, again, k);
        int r3 = run(copy, k, flags, sizeof(other), other, &len2);
        CHECK(r3 == r && len2 == len && memcmp(out, other, len) == 0);
        free(copy);
    }

    /* A small cap: the same answer, or NOT_FOUND (too long) / a 400 found anyway. */
    int r4 = run(raw, n, flags, small_cap, other, &len2);
    if (r4 >= 0)
        CHECK(r4 == r && len2 == len && memcmp(out, other, len) == 0);
    else if (r >= 0)
        CHECK(r4 == PN_SPATH_NOT_FOUND && len + 1 > small_cap);
    free(raw);
    return 0;
}
