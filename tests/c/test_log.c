/*
 * Unit tests for pn_log: escaping of client-supplied bytes and the exact
 * access-log line.  Method and target are read from a guard-page copy
 * (target) and an exact-size heap copy (method, checked by ASan).
 */
#include "pn_log.h"
#include <arpa/inet.h>

#include "pn_test.h"

#include <string.h>

#define CHECK_BUF(b, want)                                                                         \
    do {                                                                                           \
        PN_CHECK_SLICE(pn_buf_head(&(b)), pn_buf_live(&(b)), want);                                \
        pn_buf_clear(&(b));                                                                        \
    } while (0)

static int escape_guarded(pn_buf *out, const char *s, size_t n)
{
    return pn_log_escape(out, pn_guard_copy(s, n), n);
}

static int access_line(pn_buf *out, const char *client, const char *method, size_t method_len,
                       const char *target, size_t target_len, int minor, int status, uint64_t bytes,
                       uint64_t ns)
{
    char *m = malloc(method_len ? method_len : 1);
    memcpy(m, method, method_len);
    int rc = pn_log_access(out, client, strlen(client), m, method_len,
                           pn_guard_copy(target, target_len), target_len, minor, status, bytes, ns);
    free(m);
    return rc;
}

#define LINE(out, client, method, target, minor, status, bytes, ns)                                \
    access_line((out), client, method, strlen(method), target, strlen(target), minor, status,      \
                bytes, ns)

PN_TEST(escape_plain)
{
    pn_buf b = PN_BUF_INIT;
    PN_CHECK_EQ_INT(escape_guarded(&b, "/path?q=1&x=~y", 14), 0);
    CHECK_BUF(b, "/path?q=1&x=~y");
    PN_CHECK_EQ_INT(escape_guarded(&b, "", 0), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    pn_buf_free(&b);
}

PN_TEST(escape_special)
{
    pn_buf b = PN_BUF_INIT;
    PN_CHECK_EQ_INT(escape_guarded(&b, "a\"b\\c", 5), 0);
    CHECK_BUF(b, "a\\x22b\\x5Cc");
    PN_CHECK_EQ_INT(escape_guarded(&b, "\x1b[31m\r\n\t\x7f\x80\xff", 11), 0);
    CHECK_BUF(b, "\\x1B[31m\\x0D\\x0A\\x09\\x7F\\x80\\xFF");
    PN_CHECK_EQ_INT(escape_guarded(&b, "\0", 1), 0);
    CHECK_BUF(b, "\\x00");
    /* a forged log line stays on one line */
    PN_CHECK_EQ_INT(escape_guarded(&b, "/x HTTP/1.1\" 200 0 0.000ms\nfake", 31), 0);
    CHECK_BUF(b, "/x HTTP/1.1\\x22 200 0 0.000ms\\x0Afake");
    pn_buf_free(&b);
}

PN_TEST(escape_exhaustive)
{
    pn_buf b = PN_BUF_INIT;
    for (int c = 0; c < 256; c++) {
        char in = (char)c;
        PN_CHECK_EQ_INT(escape_guarded(&b, &in, 1), 0);
        char want[8];
        if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\')
            snprintf(want, sizeof(want), "%c", c);
        else
            snprintf(want, sizeof(want), "\\x%02X", c);
        CHECK_BUF(b, want);
    }
    pn_buf_free(&b);
}

PN_TEST(access_format)
{
    pn_buf b = PN_BUF_INIT;
    PN_CHECK_EQ_INT(LINE(&b, "127.0.0.1:54321", "GET", "/path?q=1", 1, 200, 13, 412345), 0);
    CHECK_BUF(b, "127.0.0.1:54321 - \"GET /path?q=1 HTTP/1.1\" 200 13 0.412ms\n");
    PN_CHECK_EQ_INT(LINE(&b, "unix", "POST", "/", 0, 404, 0, 0), 0);
    CHECK_BUF(b, "unix - \"POST / HTTP/1.0\" 404 0 0.000ms\n");
    PN_CHECK_EQ_INT(LINE(&b, "[::1]:8000", "HEAD", "*", 1, 503, UINT64_MAX, 1999999), 0);
    CHECK_BUF(b, "[::1]:8000 - \"HEAD * HTTP/1.1\" 503 18446744073709551615 1.999ms\n");
    pn_buf_free(&b);
}

PN_TEST(access_duration)
{
    static const struct {
        uint64_t ns;
        const char *ms;
    } cases[] = {
        {0, "0.000"},
        {999, "0.000"},
        {1000, "0.001"},
        {10000, "0.010"},
        {100000, "0.100"},
        {412345, "0.412"},
        {1000000, "1.000"},
        {12345678, "12.345"},
        {60000000000ULL, "60000.000"},
        {UINT64_MAX, "18446744073709.551"},
    };
    pn_buf b = PN_BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        PN_CHECK_EQ_INT(LINE(&b, "c", "GET", "/", 1, 200, 1, cases[i].ns), 0);
        char want[128];
        snprintf(want, sizeof(want), "c - \"GET / HTTP/1.1\" 200 1 %sms\n", cases[i].ms);
        CHECK_BUF(b, want);
    }
    pn_buf_free(&b);
}

PN_TEST(access_escapes_request)
{
    pn_buf b = PN_BUF_INIT;
    PN_CHECK_EQ_INT(LINE(&b, "1.2.3.4:5", "G\"T", "/a b\x1b\\\n", 1, 400, 11, 1000), 0);
    CHECK_BUF(b, "1.2.3.4:5 - \"G\\x22T /a b\\x1B\\x5C\\x0A HTTP/1.1\" 400 11 0.001ms\n");
    /* empty method and target (e.g. a request that failed to parse) */
    PN_CHECK_EQ_INT(LINE(&b, "x", "", "", 1, 400, 0, 0), 0);
    CHECK_BUF(b, "x - \"  HTTP/1.1\" 400 0 0.000ms\n");
    pn_buf_free(&b);
}

PN_TEST(access_appends)
{
    /* lines accumulate in the worker's buffer until it is flushed */
    pn_buf b = PN_BUF_INIT;
    for (int i = 0; i < 100; i++)
        PN_CHECK_EQ_INT(LINE(&b, "c", "GET", "/", 1, 200, (uint64_t)i, 0), 0);
    size_t lines = 0;
    for (size_t i = 0; i < pn_buf_live(&b); i++)
        lines += pn_buf_head(&b)[i] == '\n';
    PN_CHECK_EQ_INT(lines, 100);
    PN_CHECK(memcmp(pn_buf_head(&b), "c - \"GET / HTTP/1.1\" 200 0 0.000ms\nc - ", 39) == 0);

    /* a long target with every byte escaped */
    pn_buf_clear(&b);
    char big[5000];
    memset(big, '\n', sizeof(big));
    PN_CHECK_EQ_INT(access_line(&b, "c", "GET", 3, big, sizeof(big), 1, 200, 0, 0), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 4 + 1 + 4 + 20000 + 11 + 3 + 1 + 1 + 1 + 8);
    pn_buf_free(&b);
}

/* Every octet value in every position, against inet_ntop. */
PN_TEST(format_ipv4)
{
    for (unsigned v = 0; v < 256; v++) {
        for (int pos = 0; pos < 4; pos++) {
            unsigned char a[4] = {10, 0, 200, 7};
            a[pos] = (unsigned char)v;
            char ours[16], ref[INET_ADDRSTRLEN];
            size_t n = pn_log_format_ipv4(ours, a);
            inet_ntop(AF_INET, a, ref, sizeof(ref));
            PN_CHECK_EQ_INT(n, strlen(ref));
            PN_CHECK(strcmp(ours, ref) == 0);
        }
    }
}

int main(void)
{
    PN_RUN(escape_plain);
    PN_RUN(escape_special);
    PN_RUN(escape_exhaustive);
    PN_RUN(access_format);
    PN_RUN(access_duration);
    PN_RUN(access_escapes_request);
    PN_RUN(access_appends);
    PN_RUN(format_ipv4);
    return pn_test_summary();
}
