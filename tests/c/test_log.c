/*
 * Unit tests for pn_log: escaping of client-supplied bytes and the exact
 * access-log line.  Method and target are read from a guard-page copy
 * (target) and an exact-size heap copy (method, checked by ASan).
 */
#include "pn_log.h"
#include <arpa/inet.h>

#include "pn_test.h"

#include <string.h>
#include <time.h>

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

/* ---- the record formats (--access-log-format) ----------------------- */

/* 2000-10-10 13:55:36.123456789 UTC */
#define T_2000 (971186136ull * 1000000000ull + 123456789ull)

static pn_access_rec sample(void)
{
    pn_access_rec r = {
        .client = "127.0.0.1:54321",
        .client_len = 15,
        .method = "GET",
        .method_len = 3,
        .target = "/a?b=1",
        .target_len = 6,
        .version_minor = 1,
        .status = 200,
        .bytes = 13,
        .duration_ns = 412345,
        .time_ns = T_2000,
        .pid = 4242,
    };
    return r;
}

PN_TEST(format_default_same_as_before)
{
    pn_buf a = PN_BUF_INIT, b = PN_BUF_INIT;
    pn_access_rec r = sample();
    r.referer = "http://x/"; /* not shown by the default format */
    r.referer_len = 9;
    PN_CHECK_EQ_INT(pn_log_format(&a, PN_LOG_FMT_DEFAULT, &r, NULL), 0);
    PN_CHECK_EQ_INT(pn_log_access(&b, r.client, r.client_len, r.method, r.method_len, r.target,
                                  r.target_len, 1, 200, 13, 412345),
                    0);
    PN_CHECK_SLICE(a.data, a.len, "127.0.0.1:54321 - \"GET /a?b=1 HTTP/1.1\" 200 13 0.412ms\n");
    PN_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    pn_buf_clear(&a);
    r.request_id = "abc\"1";
    r.request_id_len = 5;
    PN_CHECK_EQ_INT(pn_log_format(&a, PN_LOG_FMT_DEFAULT, &r, NULL), 0);
    CHECK_BUF(a, "127.0.0.1:54321 - \"GET /a?b=1 HTTP/1.1\" 200 13 0.412ms \"abc\\x221\"\n");
    pn_buf_free(&a);
    pn_buf_free(&b);
}

PN_TEST(format_common_combined)
{
    pn_buf b = PN_BUF_INIT;
    pn_log_clock clk = PN_LOG_CLOCK_INIT;
    pn_access_rec r = sample();
    PN_CHECK_EQ_INT(pn_log_format(&b, PN_LOG_FMT_COMMON, &r, &clk), 0);
    CHECK_BUF(b, "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=1 HTTP/1.1\" 200 13\n");
    PN_CHECK_EQ_INT(pn_log_format(&b, PN_LOG_FMT_COMBINED, &r, &clk), 0);
    CHECK_BUF(b, "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=1 HTTP/1.1\" 200 13 "
                 "\"-\" \"-\"\n");
    /* IPv6 without brackets or port, no bytes as "-", no status as "-",
     * hostile referer and user agent escaped, request id last. */
    r.client = "[::1]:8000";
    r.client_len = 10;
    r.bytes = 0;
    r.status = -1;
    r.version_minor = 0;
    r.referer = pn_guard_copy("http://e/\"\n", 11);
    r.referer_len = 11;
    r.user_agent = "ua\\\x1b[2J\xff";
    r.user_agent_len = 8;
    r.request_id = "id-1";
    r.request_id_len = 4;
    PN_CHECK_EQ_INT(pn_log_format(&b, PN_LOG_FMT_COMBINED, &r, &clk), 0);
    CHECK_BUF(b, "::1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=1 HTTP/1.0\" - - "
                 "\"http://e/\\x22\\x0A\" \"ua\\x5C\\x1B[2J\\xFF\" \"id-1\"\n");
    r.client = "unix";
    r.client_len = 4;
    r.referer = NULL;
    r.user_agent = NULL;
    r.request_id = NULL;
    PN_CHECK_EQ_INT(pn_log_format(&b, PN_LOG_FMT_COMMON, &r, &clk), 0);
    CHECK_BUF(b, "unix - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=1 HTTP/1.0\" - -\n");
    pn_buf_free(&b);
}

PN_TEST(format_json)
{
    pn_buf b = PN_BUF_INIT;
    pn_log_clock clk = PN_LOG_CLOCK_INIT;
    pn_access_rec r = sample();
    PN_CHECK_EQ_INT(pn_log_format(&b, PN_LOG_FMT_JSON, &r, &clk), 0);
    CHECK_BUF(b, "{\"time\":\"2000-10-10T13:55:36.123Z\",\"client\":\"127.0.0.1:54321\","
                 "\"method\":\"GET\",\"target\":\"/a?b=1\",\"http_version\":\"1.1\","
                 "\"status\":200,\"bytes\":13,\"duration_ms\":0.412,\"referer\":null,"
                 "\"user_agent\":null,\"request_id\":null,\"pid\":4242}\n");
    r.status = -1;
    r.method = "G\"T";
    r.target = pn_guard_copy("/\\\x01\x7f\xc3\xa9\xff", 7);
    r.target_len = 7;
    r.user_agent = "";
    r.user_agent_len = 0;
    r.request_id = "r";
    r.request_id_len = 1;
    PN_CHECK_EQ_INT(pn_log_format(&b, PN_LOG_FMT_JSON, &r, &clk), 0);
    CHECK_BUF(b, "{\"time\":\"2000-10-10T13:55:36.123Z\",\"client\":\"127.0.0.1:54321\","
                 "\"method\":\"G\\\"T\",\"target\":\"/\\\\\\u0001\\u007F\xc3\xa9\\\\xFF\","
                 "\"http_version\":\"1.1\",\"status\":null,\"bytes\":13,\"duration_ms\":0.412,"
                 "\"referer\":null,\"user_agent\":\"\",\"request_id\":\"r\",\"pid\":4242}\n");
    pn_buf_free(&b);
}

/* Every UTF-8 rule (RFC 3629): what is valid is copied, each byte of what
 * is not becomes the text \xHH. */
PN_TEST(json_escape_utf8)
{
    pn_buf b = PN_BUF_INIT;
    static const struct {
        const char *in;
        size_t n;
        const char *want;
    } cases[] = {
        {"\xc2\x80", 2, "\xc2\x80"},                             /* U+0080 */
        {"\xc1\xbf", 2, "\\\\xC1\\\\xBF"},                       /* overlong */
        {"\xe0\x9f\xbf", 3, "\\\\xE0\\\\x9F\\\\xBF"},            /* overlong 3 bytes */
        {"\xe0\xa0\x80", 3, "\xe0\xa0\x80"},                     /* U+0800 */
        {"\xed\xa0\x80", 3, "\\\\xED\\\\xA0\\\\x80"},            /* surrogate */
        {"\xed\x9f\xbf", 3, "\xed\x9f\xbf"},                     /* U+D7FF */
        {"\xf0\x8f\xbf\xbf", 4, "\\\\xF0\\\\x8F\\\\xBF\\\\xBF"}, /* overlong 4 */
        {"\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf"},             /* U+10FFFF */
        {"\xf4\x90\x80\x80", 4, "\\\\xF4\\\\x90\\\\x80\\\\x80"}, /* past U+10FFFF */
        {"\xe2\x82", 2, "\\\\xE2\\\\x82"},                       /* truncated */
        {"\x80", 1, "\\\\x80"},                                  /* stray continuation */
        {"\xf5\x80", 2, "\\\\xF5\\\\x80"},
        {"\xe2\x82"
         "a",
         3, "\\\\xE2\\\\x82a"},
        {"\x1f\x20\x7e\x7f", 4, "\\u001F ~\\u007F"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        PN_CHECK_EQ_INT(pn_log_json_escape(&b, pn_guard_copy(cases[i].in, cases[i].n), cases[i].n),
                        0);
        CHECK_BUF(b, cases[i].want);
    }
    pn_buf_free(&b);
}

/* A JSON string body (RFC 8259 §7) is valid: no raw '"', '\\' starting
 * only a known escape, no control character, UTF-8 throughout. */
static int json_body_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c < 0x20 || c == '"')
            return 0;
        if (c == '\\') {
            if (i + 1 >= n)
                return 0;
            unsigned char e = s[i + 1];
            if (e == 'u') {
                if (i + 6 > n)
                    return 0;
                i += 6;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                i += 2;
            } else {
                return 0;
            }
        } else if (c < 0x80) {
            i++;
        } else {
            /* UTF-8 of the code point, checked the plain way. */
            size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
            if (len == 0 || i + len > n || c > 0xF4)
                return 0;
            unsigned cp = c & (0x3F >> (len - 1));
            for (size_t k = 1; k < len; k++) {
                if ((s[i + k] & 0xC0) != 0x80)
                    return 0;
                cp = cp << 6 | (s[i + k] & 0x3F);
            }
            static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
            if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
            i += len;
        }
    }
    return 1;
}

/* Random hostile bytes (a fixed LCG: the same run every time): every line
 * stays one valid line. */
PN_TEST(json_hostile_random)
{
    pn_buf b = PN_BUF_INIT;
    pn_log_clock clk = PN_LOG_CLOCK_INIT;
    uint32_t seed = 12345;
    unsigned char in[64];
    for (int round = 0; round < 20000; round++) {
        size_t n = (seed = seed * 1103515245u + 12345u) >> 26;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            /* bias towards the interesting bytes */
            unsigned v = seed >> 16;
            in[i] = (v & 0x300) == 0 ? (unsigned char)"\"\\\n\x7f\xc3\xe2\xf0\xed"[v & 7]
                                     : (unsigned char)v;
        }
        PN_CHECK_EQ_INT(pn_log_json_escape(&b, pn_guard_copy(in, n), n), 0);
        if (!json_body_valid((const unsigned char *)b.data, b.len)) {
            PN_CHECK(!"escaped bytes are not a valid JSON string body");
            break;
        }
        pn_buf_clear(&b);
        pn_access_rec r = sample();
        r.target = (const char *)in;
        r.target_len = n;
        r.user_agent = (const char *)in;
        r.user_agent_len = n;
        PN_CHECK_EQ_INT(pn_log_format(&b, PN_LOG_FMT_COMBINED, &r, &clk), 0);
        PN_CHECK(memchr(b.data, '\n', b.len) == b.data + b.len - 1);
        pn_buf_clear(&b);
    }
    pn_buf_free(&b);
}

/* The hand-made dates agree with gmtime_r/strftime over a wide range of
 * seconds, and the clock converts again only when the second changes. */
PN_TEST(clock_matches_strftime)
{
    pn_buf b = PN_BUF_INIT;
    pn_log_clock clk = PN_LOG_CLOCK_INIT;
    pn_access_rec r = sample();
    uint32_t seed = 7;
    for (int i = 0; i < 5000; i++) {
        seed = seed * 1103515245u + 12345u;
        time_t t = i < 4 ? (time_t[]){0, 951782400, 4107542399, 1709164800}[i]
                         : (time_t)(seed % 4102444800u); /* 1970..2100 */
        r.time_ns = (uint64_t)t * 1000000000u + 999999999u;
        PN_CHECK_EQ_INT(pn_log_format(&b, PN_LOG_FMT_COMMON, &r, &clk), 0);
        struct tm tm;
        gmtime_r(&t, &tm);
        char want[64];
        strftime(want, sizeof(want), "127.0.0.1 - - [%d/%b/%Y:%H:%M:%S +0000]", &tm);
        PN_CHECK(b.len > strlen(want) && memcmp(b.data, want, strlen(want)) == 0);
        pn_buf_clear(&b);
        PN_CHECK_EQ_INT(pn_log_format(&b, PN_LOG_FMT_JSON, &r, &clk), 0);
        strftime(want, sizeof(want), "{\"time\":\"%Y-%m-%dT%H:%M:%S.999Z\"", &tm);
        PN_CHECK(b.len > strlen(want) && memcmp(b.data, want, strlen(want)) == 0);
        pn_buf_clear(&b);
        if (pn_test_failed_checks)
            break;
    }
    /* Same second: the cached text is used as is. */
    r.time_ns = T_2000;
    pn_log_format(&b, PN_LOG_FMT_COMMON, &r, &clk);
    memcpy(clk.clf, "XX", 2);
    pn_buf_clear(&b);
    r.time_ns = T_2000 + 800000000u;
    pn_log_format(&b, PN_LOG_FMT_COMMON, &r, &clk);
    PN_CHECK(memmem(b.data, b.len, "[XX/Oct/2000", 12) != NULL);
    pn_buf_free(&b);
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
    PN_RUN(format_default_same_as_before);
    PN_RUN(format_common_combined);
    PN_RUN(format_json);
    PN_RUN(json_escape_utf8);
    PN_RUN(json_hostile_random);
    PN_RUN(clock_matches_strftime);
    return pn_test_summary();
}
