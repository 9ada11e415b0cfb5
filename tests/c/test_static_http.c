/*
 * Unit tests for pn_static_http: HTTP dates (the three forms, invalid
 * fields, leap years, before 1970, the far future, a cross-check against
 * gmtime_r), the ETag, and pn_static_eval through every rule of RFC 9110
 * §13.2.2 and §14.2 as the spec of issue 16 chooses them.  Single field
 * values and dates are read from guard-page copies, so an over-read
 * crashes.
 */
#include "pn_static_http.h"

#include "pn_test.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

/* ---- dates ------------------------------------------------------------ */

static void fmt_is(int64_t t, const char *want)
{
    char out[PN_HTTP_DATE_LEN + 1];
    memset(out, 'X', sizeof(out));
    pn_http_date_format(out, t);
    if (strcmp(out, want) != 0)
        fprintf(stderr, "  %" PRId64 " -> \"%s\", want \"%s\"\n", t, out, want);
    PN_CHECK(strcmp(out, want) == 0);
    PN_CHECK_EQ_INT(strlen(out), PN_HTTP_DATE_LEN);
}

PN_TEST(date_format)
{
    fmt_is(0, "Thu, 01 Jan 1970 00:00:00 GMT");
    fmt_is(784111777, "Sun, 06 Nov 1994 08:49:37 GMT");
    fmt_is(-1, "Wed, 31 Dec 1969 23:59:59 GMT");
    fmt_is(-86400, "Wed, 31 Dec 1969 00:00:00 GMT");
    fmt_is(-2208988800, "Mon, 01 Jan 1900 00:00:00 GMT");
    fmt_is(951782400, "Tue, 29 Feb 2000 00:00:00 GMT");
    fmt_is(951782400 + 86400, "Wed, 01 Mar 2000 00:00:00 GMT");
    fmt_is(INT64_C(2147483648), "Tue, 19 Jan 2038 03:14:08 GMT");
    fmt_is(INT64_C(4294967296), "Sun, 07 Feb 2106 06:28:16 GMT");
    fmt_is(INT64_C(253402300799), "Fri, 31 Dec 9999 23:59:59 GMT");
    /* Outside years 0..9999: clamped, never overflowing. */
    fmt_is(INT64_C(253402300800), "Fri, 31 Dec 9999 23:59:59 GMT");
    fmt_is(INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT");
    fmt_is(INT64_C(-62167219200), "Sat, 01 Jan 0000 00:00:00 GMT");
    fmt_is(INT64_MIN, "Sat, 01 Jan 0000 00:00:00 GMT");
}

/* Against the C library's calendar over the whole range, both ways. */
PN_TEST(date_gmtime_cross_check)
{
    static const char *wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t lo = INT64_C(-62167219200), hi = INT64_C(253402300799);
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 30000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t t = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        if (i < 2000)
            t = (int64_t)(i - 1000) * 86399; /* dense around 1970 */
        time_t tt = (time_t)t;
        struct tm tm;
        if (!gmtime_r(&tt, &tm))
            continue;
        char want[64], out[PN_HTTP_DATE_LEN + 1];
        snprintf(want, sizeof(want), "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday],
                 tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        pn_http_date_format(out, t);
        if (strcmp(out, want) != 0) {
            fprintf(stderr, "  %" PRId64 ": \"%s\" != \"%s\"\n", t, out, want);
            PN_CHECK(0);
            return;
        }
        int64_t back = 0;
        PN_CHECK_EQ_INT(
            pn_http_date_parse(pn_guard_copy(out, PN_HTTP_DATE_LEN), PN_HTTP_DATE_LEN, &back), 0);
        PN_CHECK_EQ_INT(back, t);
    }
}

static void parse_is(const char *s, int want_rc, int64_t want)
{
    int64_t t = 12345;
    int rc = pn_http_date_parse(pn_guard_copy(s, strlen(s)), strlen(s), &t);
    if (rc != want_rc || (rc == 0 && t != want))
        fprintf(stderr, "  \"%s\" -> %d %" PRId64 ", want %d %" PRId64 "\n", s, rc, t, want_rc,
                want);
    PN_CHECK_EQ_INT(rc, want_rc);
    if (want_rc == 0)
        PN_CHECK_EQ_INT(t, want);
    else
        PN_CHECK_EQ_INT(t, 12345); /* untouched */
}

#define OK(s, t) parse_is(s, 0, t)
#define NO(s) parse_is(s, -1, 0)

PN_TEST(date_parse_forms)
{
    /* RFC 9110 §5.6.7's three forms of one instant. */
    OK("Sun, 06 Nov 1994 08:49:37 GMT", 784111777);
    OK("Sunday, 06-Nov-94 08:49:37 GMT", 784111777);
    OK("Sun Nov  6 08:49:37 1994", 784111777);
    OK("Sun Nov 06 08:49:37 1994", 784111777);
    /* Surrounding OWS is not part of the date. */
    OK(" \tSun, 06 Nov 1994 08:49:37 GMT ", 784111777);
    /* The weekday must be a weekday name but is not checked against the date. */
    OK("Mon, 06 Nov 1994 08:49:37 GMT", 784111777);
    OK("Wednesday, 06-Nov-94 08:49:37 GMT", 784111777);
    OK("Thu, 01 Jan 1970 00:00:00 GMT", 0);
    OK("Wed, 31 Dec 1969 23:59:59 GMT", -1);
    OK("Mon, 01 Jan 1900 00:00:00 GMT", -2208988800);
    OK("Sat, 01 Jan 0000 00:00:00 GMT", INT64_C(-62167219200));
    OK("Fri, 31 Dec 9999 23:59:59 GMT", INT64_C(253402300799));
    OK("Tue, 19 Jan 2038 03:14:08 GMT", INT64_C(2147483648));
    /* Two-digit years: 70-99 are 19xx, 00-69 20xx. */
    OK("Thursday, 01-Jan-70 00:00:00 GMT", 0);
    OK("Wednesday, 31-Dec-69 23:59:59 GMT", INT64_C(3155759999));
    OK("Saturday, 01-Jan-00 00:00:00 GMT", 946684800);
    /* A leap second is the next minute's first. */
    OK("Sat, 31 Dec 2016 23:59:60 GMT", 1483228800);
}

PN_TEST(date_parse_calendar)
{
    OK("Tue, 29 Feb 2000 00:00:00 GMT", 951782400);  /* divisible by 400 */
    OK("Sun, 29 Feb 2004 12:00:00 GMT", 1078056000); /* divisible by 4 */
    NO("Thu, 29 Feb 1900 00:00:00 GMT");             /* by 100, not 400 */
    NO("Mon, 29 Feb 2100 00:00:00 GMT");
    NO("Sun, 29 Feb 2015 00:00:00 GMT");
    NO("Sun, 30 Feb 2000 00:00:00 GMT");
    NO("Sun, 31 Apr 2000 00:00:00 GMT");
    NO("Sun, 31 Jun 2000 00:00:00 GMT");
    NO("Sun, 31 Sep 2000 00:00:00 GMT");
    NO("Sun, 31 Nov 2000 00:00:00 GMT");
    OK("Sun, 31 Dec 2000 00:00:00 GMT", 978220800);
    NO("Sun, 32 Jan 2000 00:00:00 GMT");
    NO("Sun, 00 Jan 2000 00:00:00 GMT");
    NO("Sunday, 29-Feb-01 00:00:00 GMT");
    NO("Sun Feb 29 00:00:00 2001");
    NO("Sun Feb  0 00:00:00 2001");
}

#define AT_NUL "Sun, 06 Nov 1994 08:49:37 GMT\0"

PN_TEST(date_parse_invalid)
{
    NO("");
    NO("0");
    NO("784111777");
    NO("Sun, 06 Nov 1994 08:49:37 UTC");
    NO("Sun, 06 Nov 1994 08:49:37 gmt");
    NO("Sun, 06 Nov 1994 08:49:37 GMT+1");
    NO("Sun, 06 Nov 1994 08:49:37");
    NO("Sun, 06 Nov 1994 08:49 GMT");
    NO("Sun, 6 Nov 1994 08:49:37 GMT");
    NO("Sun,  6 Nov 1994 08:49:37 GMT");
    NO("Sun, 06 Nov 94 08:49:37 GMT");
    NO("Sun, 06 nov 1994 08:49:37 GMT"); /* month names are case-sensitive */
    NO("sun, 06 Nov 1994 08:49:37 GMT");
    NO("Sux, 06 Nov 1994 08:49:37 GMT");
    NO("Sun, 06 Nox 1994 08:49:37 GMT");
    NO("Sun, 06 Nov 19a4 08:49:37 GMT");
    NO("Sun, 06 Nov -994 08:49:37 GMT");
    NO("Sun, 06 Nov 1994 24:00:00 GMT");
    NO("Sun, 06 Nov 1994 23:60:00 GMT");
    NO("Sun, 06 Nov 1994 23:59:61 GMT");
    NO("Sun, 06 Nov 1994 08-49-37 GMT");
    NO("Sun, 06 Nov 1994 8:49:37  GMT");
    NO("Sun, 06 Nov 1994 08:49:3a GMT");
    NO("Sun, 06-Nov-1994 08:49:37 GMT");
    NO("Sun,06 Nov 1994 08:49:37 GMT ");
    NO("Sun; 06 Nov 1994 08:49:37 GMT");
    NO("Sunday, 06 Nov 94 08:49:37 GMT");
    NO("Sunday, 06-Nov-94 08:49:37 UTC");
    NO("Sunday, 06-Nov-94 08:49:37");
    NO("Sunday, 06-Nov-1994 08:49:37 GMT");
    NO("Sundae, 06-Nov-94 08:49:37 GMT");
    NO("Sun, 06-Nov-94 08:49:37 GMT");
    NO("Sun Nov  6 08:49:37 94");
    NO("Sun Nov 6 08:49:37 1994");
    NO("Sun Nov  6 08:49:37 1994 GMT");
    NO("Sun Nov  6 08:49:37  1994");
    NO("Sun Nov x6 08:49:37 1994");
    /* A NUL is a byte like any other: not a date. */
    int64_t t;
    PN_CHECK_EQ_INT(pn_http_date_parse(pn_guard_copy(AT_NUL, 30), 30, &t), -1);
    PN_CHECK_EQ_INT(pn_http_date_parse(pn_guard_copy(AT_NUL, 29), 29, &t), 0);
}

/* ---- ETag ------------------------------------------------------------- */

PN_TEST(etag)
{
    char out[PN_ETAG_MAX];
    size_t n = pn_static_etag(out, INT64_C(1700000000123456789), 1234);
    PN_CHECK_SLICE(out, n, "\"17979cfe3d85cd15-4d2\"");
    n = pn_static_etag(out, 0, 0);
    PN_CHECK_SLICE(out, n, "\"0-0\"");
    n = pn_static_etag(out, -1, UINT64_MAX);
    PN_CHECK_SLICE(out, n, "\"ffffffffffffffff-ffffffffffffffff\"");
    PN_CHECK(n <= PN_ETAG_MAX);
    n = pn_static_etag(out, INT64_MIN, UINT64_C(5368709120));
    PN_CHECK_SLICE(out, n, "\"8000000000000000-140000000\"");
}

/* ---- pn_static_eval ----------------------------------------------------- */

#define MTIME 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */
#define BEFORE "Sun, 06 Nov 1994 08:49:36 GMT"
#define AT "Sun, 06 Nov 1994 08:49:37 GMT"
#define AFTER "Sun, 06 Nov 1994 08:49:38 GMT"
#define TAG "\"abc-3e8\""

/* Evaluate with up to 4 field lines "Name: value" (NULL ends the list).
 * A single line's value is read from a guard-page copy. */
static pn_static_result eval4(int is_get, uint64_t size, const char *l0, const char *l1,
                              const char *l2, const char *l3)
{
    const char *lines[4] = {l0, l1, l2, l3};
    pn_http1_header h[4];
    size_t nh = 0;
    for (size_t i = 0; i < 4 && lines[i]; i++, nh++) {
        const char *colon = strchr(lines[i], ':');
        h[nh].name = lines[i];
        h[nh].name_len = (size_t)(colon - lines[i]);
        h[nh].value = colon + 1;
        while (*h[nh].value == ' ')
            h[nh].value++;
        h[nh].value_len = strlen(h[nh].value);
    }
    if (nh == 1)
        h[0].value = pn_guard_copy(h[0].value, h[0].value_len);
    pn_static_meta m = {size, MTIME, TAG, strlen(TAG)};
    pn_static_result r;
    memset(&r, 0x5a, sizeof(r));
    pn_static_eval(h, nh, is_get, &m, &r);
    return r;
}

static void expect(int line, pn_static_result r, int status, uint64_t off, uint64_t len)
{
    if (r.status != status || r.off != off || r.len != len) {
        fprintf(stderr,
                "  line %d: got %d %" PRIu64 ",%" PRIu64 ", want %d %" PRIu64 ",%" PRIu64 "\n",
                line, r.status, r.off, r.len, status, off, len);
        pn_test_failed_checks++;
    }
}

#define SIZE 1000
#define E1(hdr, ...) expect(__LINE__, eval4(1, SIZE, hdr, NULL, NULL, NULL), __VA_ARGS__)
#define E2(a, b, ...) expect(__LINE__, eval4(1, SIZE, a, b, NULL, NULL), __VA_ARGS__)
#define E3(a, b, c, ...) expect(__LINE__, eval4(1, SIZE, a, b, c, NULL), __VA_ARGS__)
#define WHOLE 200, 0, SIZE
#define NOTMOD 304, 0, 0
#define FAILED 412, 0, 0

PN_TEST(eval_plain)
{
    E1(NULL, WHOLE);
    E1("Accept: */*", WHOLE);
    expect(__LINE__, eval4(0, SIZE, NULL, NULL, NULL, NULL), 200, 0, SIZE);
    expect(__LINE__, eval4(1, 0, NULL, NULL, NULL, NULL), 200, 0, 0);
}

PN_TEST(eval_if_match)
{
    E1("If-Match: *", WHOLE);
    E1("If-Match: " TAG, WHOLE);
    E1("if-match: " TAG, WHOLE);
    E1("If-Match: \"x\", " TAG, WHOLE);
    E1("If-Match: \"x\"," TAG ",\"y\"", WHOLE);
    E1("If-Match: W/" TAG, FAILED); /* strong comparison */
    E1("If-Match: \"x\"", FAILED);
    E1("If-Match: \"abc-3e8", FAILED);
    E1("If-Match: abc-3e8", FAILED);
    E1("If-Match: \"ABC-3E8\"", FAILED);
    E1("If-Match: ", FAILED);
    E1("If-Match: ,", FAILED);
    E2("If-Match: \"x\"", "If-Match: " TAG, WHOLE); /* one list over two lines */
    E2("If-Match: \"x\"", "If-Match: \"y\"", FAILED);
    /* If-Match decides: If-Unmodified-Since is not looked at. */
    E2("If-Match: " TAG, "If-Unmodified-Since: " BEFORE, WHOLE);
    /* 412 before If-None-Match's 304. */
    E2("If-Match: \"x\"", "If-None-Match: *", FAILED);
    /* The list's elements end where they should. */
    E1("If-Match: " TAG "x", FAILED);
    E1("If-Match: " TAG " \"y\"", FAILED);
    E1("If-Match: x" TAG, FAILED);
    E1("If-Match: **", FAILED);
}

PN_TEST(eval_if_unmodified_since)
{
    E1("If-Unmodified-Since: " BEFORE, FAILED);
    E1("If-Unmodified-Since: " AT, WHOLE);
    E1("If-Unmodified-Since: " AFTER, WHOLE);
    E1("If-Unmodified-Since: Sun Nov  6 08:49:36 1994", FAILED);
    E1("If-Unmodified-Since: yesterday", WHOLE); /* invalid: ignored */
    E2("If-Unmodified-Since: " BEFORE, "If-Unmodified-Since: " BEFORE, WHOLE); /* not one date */
    E2("If-Unmodified-Since: " BEFORE, "If-None-Match: *", FAILED);
}

PN_TEST(eval_if_none_match)
{
    E1("If-None-Match: *", NOTMOD);
    E1("If-None-Match: " TAG, NOTMOD);
    E1("If-None-Match: W/" TAG, NOTMOD); /* weak comparison */
    E1("If-None-Match: \"x\", W/" TAG, NOTMOD);
    E1("If-None-Match: \"x\"", WHOLE);
    E1("If-None-Match: w/" TAG, WHOLE);         /* "W/" is case-sensitive */
    E1("If-None-Match: \"a,b\", " TAG, NOTMOD); /* ',' inside an opaque-tag */
    E1("If-None-Match: \"a," TAG "\"", WHOLE);
    E1("If-None-Match: \"a,b\"", WHOLE);
    /* The tag is "x," then junk: splitting at commas first would see a match. */
    E1("If-None-Match: \"x,\"abc-3e8\"", WHOLE);
    E1("If-None-Match: \"x, \"abc-3e8\"", NOTMOD); /* SP is no etagc: resync at the ',' */
    E1("If-None-Match: junk, " TAG, NOTMOD);       /* a malformed element is skipped */
    E1("If-None-Match: " TAG "junk", WHOLE);
    E1("If-None-Match: \"abc-3e8", WHOLE);
    E1("If-None-Match: ", WHOLE);
    E1("If-None-Match: ,,, ," TAG ",", NOTMOD);
    E2("If-None-Match: \"x\"", "If-None-Match: " TAG, NOTMOD);
    /* If-None-Match present: If-Modified-Since is not looked at. */
    E2("If-None-Match: \"x\"", "If-Modified-Since: " AFTER, WHOLE);
    /* HEAD too. */
    expect(__LINE__, eval4(0, SIZE, "If-None-Match: " TAG, NULL, NULL, NULL), NOTMOD);
}

PN_TEST(eval_if_modified_since)
{
    E1("If-Modified-Since: " AT, NOTMOD);
    E1("If-Modified-Since: " AFTER, NOTMOD);
    E1("If-Modified-Since: " BEFORE, WHOLE);
    E1("If-Modified-Since: Sunday, 06-Nov-94 08:49:37 GMT", NOTMOD);
    E1("If-Modified-Since: garbage", WHOLE);
    E1("If-Modified-Since: " AT "x", WHOLE);
    E2("If-Modified-Since: " AT, "If-Modified-Since: " AT, WHOLE);
    expect(__LINE__, eval4(0, SIZE, "If-Modified-Since: " AT, NULL, NULL, NULL), NOTMOD);
    /* 304 before Range. */
    E2("If-Modified-Since: " AT, "Range: bytes=0-1", NOTMOD);
}

PN_TEST(eval_range)
{
    E1("Range: bytes=0-99", 206, 0, 100);
    E1("Range: bytes=100-", 206, 100, 900);
    E1("Range: bytes=-100", 206, 900, 100);
    E1("Range: bytes=-1000", 206, 0, 1000);
    E1("Range: bytes=-5000", 206, 0, 1000);
    E1("Range: bytes=0-5000", 206, 0, 1000);
    E1("Range: bytes=0-", 206, 0, 1000);
    E1("Range: bytes=999-999", 206, 999, 1);
    E1("Range: bytes=999-", 206, 999, 1);
    E1("Range: BYTES=0-0", 206, 0, 1);
    E1("Range: Bytes=5-9", 206, 5, 5);
    E1("range: bytes=5-9", 206, 5, 5);
    E1("Range: bytes=5-9,", 206, 5, 5); /* empty list elements */
    E1("Range: bytes=, 5-9 ,", 206, 5, 5);
    E1("Range: bytes=000-0009", 206, 0, 10);
    /* Unsatisfiable: 416. */
    E1("Range: bytes=1000-", 416, 0, 0);
    E1("Range: bytes=1000-2000", 416, 0, 0);
    E1("Range: bytes=-0", 416, 0, 0);
    E1("Range: bytes=18446744073709551615-", 416, 0, 0);
    /* Ignored: the whole file. */
    E1("Range: bytes=5-4", WHOLE);
    E1("Range: bytes=0-1,5-6", WHOLE);
    E1("Range: bytes=0-1, 0-1", WHOLE);
    E1("Range: bytes=2000-3000,0-1", WHOLE);
    E1("Range: items=0-1", WHOLE);
    E1("Range: bytes 0-1", WHOLE);
    E1("Range: bytes =0-1", WHOLE);
    E1("Range: bytes=", WHOLE);
    E1("Range: bytes=-", WHOLE);
    E1("Range: bytes=,", WHOLE);
    E1("Range: bytes=a-b", WHOLE);
    E1("Range: bytes=0x1-2", WHOLE);
    E1("Range: bytes=0--1", WHOLE);
    E1("Range: bytes=--1", WHOLE);
    E1("Range: bytes=+1-2", WHOLE);
    E1("Range: bytes=1 -2", WHOLE);
    E1("Range: bytes=1-2-3", WHOLE);
    E1("Range: bytes=18446744073709551616-", WHOLE);
    E1("Range: bytes=0-18446744073709551616", WHOLE);
    E1("Range: bytes=-18446744073709551616", WHOLE);
    E1("Range: ", WHOLE);
    E2("Range: bytes=0-1", "Range: bytes=0-1", WHOLE); /* several lines: several ranges */
    /* HEAD ignores Range. */
    expect(__LINE__, eval4(0, SIZE, "Range: bytes=0-1", NULL, NULL, NULL), WHOLE);
    expect(__LINE__, eval4(0, SIZE, "Range: bytes=5000-", NULL, NULL, NULL), WHOLE);
    /* With a failed If-None-Match (no 304), the Range applies. */
    E2("If-None-Match: \"x\"", "Range: bytes=0-1", 206, 0, 2);
    E2("If-Match: " TAG, "Range: bytes=0-1", 206, 0, 2);
}

PN_TEST(eval_range_empty_file)
{
    static const char *const ranges[] = {"Range: bytes=0-", "Range: bytes=-1", "Range: bytes=0-0",
                                         "Range: bytes=-0"};
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        expect(__LINE__, eval4(1, 0, ranges[i], NULL, NULL, NULL), 416, 0, 0);
    expect(__LINE__, eval4(1, 0, "Range: bytes=5-4", NULL, NULL, NULL), 200, 0, 0);
    expect(__LINE__, eval4(1, 0, "Range: bytes=0-1,2-3", NULL, NULL, NULL), 200, 0, 0);
}

PN_TEST(eval_if_range)
{
    E2("Range: bytes=0-1", "If-Range: " TAG, 206, 0, 2);
    E2("If-Range: " TAG, "Range: bytes=0-1", 206, 0, 2);
    E2("Range: bytes=0-1", "If-Range: \"x\"", WHOLE);
    E2("Range: bytes=0-1", "If-Range: W/" TAG, WHOLE); /* weak never matches */
    E2("Range: bytes=0-1", "If-Range: " TAG "x", WHOLE);
    E2("Range: bytes=0-1", "If-Range: " AT, 206, 0, 2);
    E2("Range: bytes=0-1", "If-Range: Sun Nov  6 08:49:37 1994", 206, 0, 2);
    E2("Range: bytes=0-1", "If-Range: " BEFORE, WHOLE);
    E2("Range: bytes=0-1", "If-Range: " AFTER, WHOLE); /* equal only */
    E2("Range: bytes=0-1", "If-Range: tomorrow", WHOLE);
    E2("Range: bytes=0-1", "If-Range: ", WHOLE);
    E3("Range: bytes=0-1", "If-Range: " TAG, "If-Range: " TAG, WHOLE);
    /* A not-matching If-Range turns a 416 into a 200 too. */
    E2("Range: bytes=5000-", "If-Range: \"x\"", WHOLE);
    E2("Range: bytes=5000-", "If-Range: " TAG, 416, 0, 0);
    /* No Range: If-Range changes nothing. */
    E1("If-Range: \"x\"", WHOLE);
    E1("If-Range: " TAG, WHOLE);
}

PN_TEST(eval_large_sizes)
{
    uint64_t big = UINT64_C(5368709120); /* 5 GiB */
    expect(__LINE__, eval4(1, big, NULL, NULL, NULL, NULL), 200, 0, big);
    expect(__LINE__, eval4(1, big, "Range: bytes=4294967296-", NULL, NULL, NULL), 206,
           UINT64_C(4294967296), UINT64_C(1073741824));
    expect(__LINE__, eval4(1, big, "Range: bytes=4294967295-4294967296", NULL, NULL, NULL), 206,
           UINT64_C(4294967295), 2);
    expect(__LINE__, eval4(1, big, "Range: bytes=-4294967297", NULL, NULL, NULL), 206,
           big - UINT64_C(4294967297), UINT64_C(4294967297));
    expect(__LINE__, eval4(1, big, "Range: bytes=5368709120-", NULL, NULL, NULL), 416, 0, 0);
    uint64_t max = UINT64_MAX;
    expect(__LINE__, eval4(1, max, NULL, NULL, NULL, NULL), 200, 0, max);
    expect(__LINE__, eval4(1, max, "Range: bytes=0-", NULL, NULL, NULL), 206, 0, max);
    expect(__LINE__, eval4(1, max, "Range: bytes=-1", NULL, NULL, NULL), 206, max - 1, 1);
    expect(__LINE__, eval4(1, max, "Range: bytes=-18446744073709551615", NULL, NULL, NULL), 206, 0,
           max);
    expect(
        __LINE__,
        eval4(1, max, "Range: bytes=18446744073709551614-18446744073709551615", NULL, NULL, NULL),
        206, max - 1, 1);
    expect(__LINE__, eval4(1, max, "Range: bytes=1-18446744073709551615", NULL, NULL, NULL), 206, 1,
           max - 1);
    expect(__LINE__, eval4(1, max, "Range: bytes=18446744073709551615-", NULL, NULL, NULL), 416, 0,
           0);
}

int main(void)
{
    PN_RUN(date_format);
    PN_RUN(date_gmtime_cross_check);
    PN_RUN(date_parse_forms);
    PN_RUN(date_parse_calendar);
    PN_RUN(date_parse_invalid);
    PN_RUN(etag);
    PN_RUN(eval_plain);
    PN_RUN(eval_if_match);
    PN_RUN(eval_if_unmodified_since);
    PN_RUN(eval_if_none_match);
    PN_RUN(eval_if_modified_since);
    PN_RUN(eval_range);
    PN_RUN(eval_range_empty_file);
    PN_RUN(eval_if_range);
    PN_RUN(eval_large_sizes);
    return pn_test_summary();
}
