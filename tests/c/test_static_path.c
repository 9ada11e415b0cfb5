/*
 * Unit tests for pn_static_path: a traversal corpus (dot-dot segments raw
 * and encoded, encoded separators, backslashes, NUL and control bytes,
 * malformed escapes, hidden names, .well-known), normalisation (empty and
 * "." segments), the length cap, and the precedence between problems.
 * Every input is read from a guard-page copy, so an over-read crashes.
 */
#include "pn_static_path.h"

#include "pn_test.h"

#include <string.h>

#define FILE_ PN_SPATH_FILE
#define DIR_ PN_SPATH_DIR
#define BAD PN_SPATH_BAD
#define HIDDEN PN_SPATH_HIDDEN
#define NOTF PN_SPATH_NOT_FOUND

typedef struct {
    const char *raw;
    int want;
    const char *out; /* expected out when want >= 0 */
} case_t;

static void run_n(const char *raw, size_t n, unsigned flags, size_t cap, int want,
                  const char *want_out)
{
    char out[PN_STATIC_PATH_MAX + 8];
    memset(out, 'X', sizeof(out));
    size_t out_len = 12345;
    int got = pn_static_path(pn_guard_copy(raw, n), n, flags, out, cap, &out_len);
    if (got != want)
        fprintf(stderr, "  \"%.*s\" flags %u -> %d, want %d\n", (int)n, raw, flags, got, want);
    PN_CHECK_EQ_INT(got, want);
    /* out is always NUL-terminated inside cap, and out_len says where. */
    PN_CHECK(out_len < cap);
    PN_CHECK_EQ_INT(strnlen(out, cap), out_len);
    if (want >= 0 && want_out)
        PN_CHECK_SLICE(out, out_len, want_out);
    if (want < 0)
        PN_CHECK_EQ_INT(out_len, 0);
    /* Nothing is written past cap. */
    PN_CHECK(out[cap] == 'X');
}

static void run(const char *raw, unsigned flags, int want, const char *want_out)
{
    run_n(raw, strlen(raw), flags, PN_STATIC_PATH_MAX, want, want_out);
}

static void run_table(const case_t *t, size_t n, unsigned flags)
{
    for (size_t i = 0; i < n; i++)
        run(t[i].raw, flags, t[i].want, t[i].out);
}

#define TABLE(t, flags) run_table(t, sizeof(t) / sizeof(t[0]), flags)

PN_TEST(normalisation)
{
    static const case_t t[] = {
        {"", DIR_, ""},
        {"/", DIR_, ""},
        {"//", DIR_, ""},
        {"/a", FILE_, "a"},
        {"/a/", DIR_, "a"},
        {"/a/b.txt", FILE_, "a/b.txt"},
        {"//a//b", FILE_, "a/b"},
        {"//a//b//", DIR_, "a/b"},
        {"/./a", FILE_, "a"},
        {"/a/./b", FILE_, "a/b"},
        {"/a/.", DIR_, "a"},
        {"/.", DIR_, ""},
        {"/%2e", DIR_, ""},
        {"/%2E/a", FILE_, "a"},
        {"a/b", FILE_, "a/b"}, /* no leading '/': the same segments */
        {"/a..", FILE_, "a.."},
        {"/a.b.c", FILE_, "a.b.c"},
        {"/%61%62%63", FILE_, "abc"},
        {"/a%20b", FILE_, "a b"},
        {"/a+b", FILE_, "a+b"}, /* '+' is not a space in a path */
        {"/%25", FILE_, "%"},
        {"/%2541", FILE_, "%41"}, /* decoded once only */
        /* UTF-8 and bytes that are not UTF-8 are names like any other. */
        {"/caf%C3%A9", FILE_, "caf\xc3\xa9"},
        {"/caf\xc3\xa9", FILE_, "caf\xc3\xa9"},
        {"/%ff%FE", FILE_, "\xff\xfe"},
        {"/\x80\xff", FILE_, "\x80\xff"},
    };
    TABLE(t, 0);
}

PN_TEST(traversal)
{
    static const case_t t[] = {
        {"/..", NOTF, NULL},
        {"..", NOTF, NULL},
        {"/../a", NOTF, NULL},
        {"/a/..", NOTF, NULL},
        {"/a/../b", NOTF, NULL}, /* refused, not resolved */
        {"/a/../", NOTF, NULL},
        {"/%2e%2e", NOTF, NULL},
        {"/%2E%2E", NOTF, NULL},
        {"/%2E.", NOTF, NULL},
        {"/.%2e", NOTF, NULL},
        {"/a/%2e%2e/b", NOTF, NULL},
        {"/..%2f", NOTF, NULL},
        {"/..%2Fetc%2Fpasswd", NOTF, NULL},
        {"/%2e%2e%2f%2e%2e%2fetc", NOTF, NULL},
        {"/a%2fb", NOTF, NULL},
        {"/a%2Fb", NOTF, NULL},
        {"/%2f", NOTF, NULL},
        {"/a%5cb", NOTF, NULL},
        {"/a%5Cb", NOTF, NULL},
        {"/..%5c..", NOTF, NULL},
        {"/a\\b", NOTF, NULL},
        {"/\\", NOTF, NULL},
        {"/..\\..\\windows", NOTF, NULL},
    };
    TABLE(t, 0);
    TABLE(t, PN_SPATH_DOTFILES); /* allowing dotfiles never allows ".." */
}

PN_TEST(bad_bytes_and_escapes)
{
    static const case_t t[] = {
        {"/a%00", BAD, NULL},   {"/a%00b", BAD, NULL}, {"/%0a", BAD, NULL},  {"/%0A", BAD, NULL},
        {"/%0d%0a", BAD, NULL}, {"/%01", BAD, NULL},   {"/%1f", BAD, NULL},  {"/%7f", BAD, NULL},
        {"/%7F", BAD, NULL},    {"/a\x01", BAD, NULL}, {"/a\tb", BAD, NULL}, {"/a\x7f", BAD, NULL},
        {"/%", BAD, NULL},      {"/a%", BAD, NULL},    {"/%4", BAD, NULL},   {"/a%4", BAD, NULL},
        {"/%zz", BAD, NULL},    {"/%g0", BAD, NULL},   {"/%0g", BAD, NULL},  {"/%4/1", BAD, NULL},
        {"/%/41", BAD, NULL},   {"/%%41", BAD, NULL},  {"/a%-1", BAD, NULL}, {"/% 1", BAD, NULL},
    };
    TABLE(t, 0);
    TABLE(t, PN_SPATH_DOTFILES);
    /* A raw NUL inside the slice. */
    run_n("/a\0b", 4, 0, PN_STATIC_PATH_MAX, BAD, NULL);
}

PN_TEST(hidden)
{
    static const case_t t[] = {
        {"/.git/config", HIDDEN, NULL},
        {"/.git", HIDDEN, NULL},
        {"/.git/", HIDDEN, NULL},
        {"/a/.env", HIDDEN, NULL},
        {"/a/.env/", HIDDEN, NULL},
        {"/...", HIDDEN, NULL},
        {"/..a", HIDDEN, NULL},
        {"/%2egit/config", HIDDEN, NULL},
        {"/.well-known/x", FILE_, ".well-known/x"},
        {"/.well-known/", DIR_, ".well-known"},
        {"/.well-known", FILE_, ".well-known"},
        {"//.well-known//x", FILE_, ".well-known/x"},
        {"/./.well-known/x", FILE_, ".well-known/x"},
        {"/%2ewell-known/x", FILE_, ".well-known/x"},
        {"/.well-known/.x", HIDDEN, NULL},  /* only the name itself is allowed */
        {"/a/.well-known/x", HIDDEN, NULL}, /* first segment only */
        {"/.WELL-KNOWN/x", HIDDEN, NULL},   /* names are case-sensitive */
        {"/.well-knownx/y", HIDDEN, NULL},
    };
    TABLE(t, 0);
    static const case_t allowed[] = {
        {"/.git/config", FILE_, ".git/config"},
        {"/a/.env", FILE_, "a/.env"},
        {"/...", FILE_, "..."},
        {"/..a", FILE_, "..a"},
        {"/.well-known/.x", FILE_, ".well-known/.x"},
        {"/a/.well-known/", DIR_, "a/.well-known"},
    };
    TABLE(allowed, PN_SPATH_DOTFILES);
}

PN_TEST(precedence)
{
    /* The most severe problem answers, wherever it is: 400 over 404 over 403. */
    static const case_t t[] = {
        {"/.git/%00", BAD, NULL},    {"/%00/.git", BAD, NULL}, {"/../%0a", BAD, NULL},
        {"/%zz/..", BAD, NULL},      {"/../.git", NOTF, NULL}, {"/.git/..", NOTF, NULL},
        {"/.git/a%2fb", NOTF, NULL}, {"/a\\b/%", BAD, NULL},
    };
    TABLE(t, 0);
}

PN_TEST(length_cap)
{
    /* PN_STATIC_PATH_MAX bytes hold PN_STATIC_PATH_MAX - 1 and the NUL. */
    static char raw[3 * PN_STATIC_PATH_MAX + 16], want[PN_STATIC_PATH_MAX + 1];
    size_t n = PN_STATIC_PATH_MAX - 1;
    raw[0] = '/';
    memset(raw + 1, 'a', n + 1);
    memset(want, 'a', n);
    want[n] = '\0';
    run_n(raw, 1 + n, 0, PN_STATIC_PATH_MAX, FILE_, want);
    run_n(raw, 1 + n + 1, 0, PN_STATIC_PATH_MAX, NOTF, NULL);
    /* A trailing '/' after the longest name is still a directory of it. */
    raw[1 + n] = '/';
    run_n(raw, 1 + n + 1, 0, PN_STATIC_PATH_MAX, DIR_, want);
    /* Encoded: the cap counts decoded bytes. */
    for (size_t i = 0; i < n + 1; i++)
        memcpy(raw + 1 + 3 * i, "%61", 3);
    run_n(raw, 1 + 3 * n, 0, PN_STATIC_PATH_MAX, FILE_, want);
    run_n(raw, 1 + 3 * (n + 1), 0, PN_STATIC_PATH_MAX, NOTF, NULL);
    /* Dropped segments do not count; separators do. */
    memset(raw, '/', 100);
    memset(raw + 100, 'a', n);
    run_n(raw, 100 + n, 0, PN_STATIC_PATH_MAX, FILE_, want);
    memcpy(raw, "/b/", 3);
    memset(raw + 3, 'a', n - 2);
    run_n(raw, 3 + n - 2, 0, PN_STATIC_PATH_MAX, FILE_, NULL);
    run_n(raw, 3 + n - 1, 0, PN_STATIC_PATH_MAX, NOTF, NULL);
    /* Past the cap, a bad byte still makes it a 400. */
    raw[0] = '/';
    memset(raw + 1, 'a', n + 10);
    memcpy(raw + 1 + n + 10, "%00", 3);
    run_n(raw, 1 + n + 13, 0, PN_STATIC_PATH_MAX, BAD, NULL);
    /* Small caps. */
    run_n("/", 1, 0, 1, DIR_, "");
    run_n("/a", 2, 0, 1, NOTF, NULL);
    run_n("/a", 2, 0, 2, FILE_, "a");
    run_n("/a/b", 4, 0, 3, NOTF, NULL);
    run_n("/a/b", 4, 0, 4, FILE_, "a/b");
    run_n("/a/./b/", 7, 0, 4, DIR_, "a/b");
    char out[4];
    size_t out_len = 7;
    PN_CHECK_EQ_INT(pn_static_path("/", 1, 0, out, 0, &out_len), NOTF);
    PN_CHECK_EQ_INT(out_len, 0);
}

int main(void)
{
    PN_RUN(normalisation);
    PN_RUN(traversal);
    PN_RUN(bad_bytes_and_escapes);
    PN_RUN(hidden);
    PN_RUN(precedence);
    PN_RUN(length_cap);
    return pn_test_summary();
}
