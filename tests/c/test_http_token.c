/*
 * Unit tests for pn_http_token, the lexical toolkit every core parser uses:
 * each byte class against its RFC definition written out independently
 * here, OWS trimming, the case-insensitive compares (including the bytes
 * that differ only in bit 0x20 but are not letters), hex digits, decimal
 * reading and writing, and comma-list iteration.  Inputs are read from
 * guard-page copies, so an over-read crashes.
 */
#include "pn_http_token.h"

#include "pn_test.h"

#include <string.h>

/* ---- the RFC definitions, byte by byte, without the table ------------- */

static int rfc_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int rfc_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int rfc_hexdig(int c)
{
    return rfc_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

/* RFC 9110 §5.6.2 */
static int rfc_tchar(int c)
{
    return rfc_alpha(c) || rfc_digit(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* RFC 9110 §5.5: field-vchar / SP / HTAB, obs-text included */
static int rfc_value(int c)
{
    return c == '\t' || (c >= 0x20 && c <= 0x7e) || c >= 0x80;
}

/* RFC 9112 §3.2: a request-target byte is a VCHAR; '#' starts a fragment,
 * which is never sent. */
static int rfc_target(int c)
{
    return c > 0x20 && c < 0x7f && c != '#';
}

/* RFC 3986 §2.3 unreserved and §2.2 sub-delims: reg-name without pct-encoded */
static int rfc_regname(int c)
{
    return rfc_alpha(c) || rfc_digit(c) || (c != 0 && strchr("-._~!$&'()*+,;=", c) != NULL);
}

/* RFC 9110 §5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
static int rfc_qdtext(int c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

/* The IP-literal characters the parser accepts (hex, ':' and '.'). */
static int rfc_ip6(int c)
{
    return rfc_hexdig(c) || c == ':' || c == '.';
}

PN_TEST(classes_match_rfc)
{
    static const struct {
        unsigned bit;
        int (*rfc)(int);
        const char *name;
    } cls[] = {
        {PN_HTTP_TCHAR, rfc_tchar, "tchar"},
        {PN_HTTP_VALUE, rfc_value, "value"},
        {PN_HTTP_TARGET, rfc_target, "target"},
        {PN_HTTP_HEX, rfc_hexdig, "hex"},
        {PN_HTTP_REGNAME, rfc_regname, "regname"},
        {PN_HTTP_QDTEXT, rfc_qdtext, "qdtext"},
        {PN_HTTP_IP6, rfc_ip6, "ip6"},
    };
    for (size_t k = 0; k < sizeof(cls) / sizeof(cls[0]); k++) {
        for (int c = 0; c < 256; c++) {
            int want = cls[k].rfc(c) != 0;
            int got = pn_http_is((char)c, cls[k].bit) != 0;
            if (got != want)
                fprintf(stderr, "  class %s, byte 0x%02x: %d, want %d\n", cls[k].name, c, got,
                        want);
            PN_CHECK_EQ_INT(got, want);
        }
    }
    /* No bit outside the seven classes is set. */
    for (int c = 0; c < 256; c++)
        PN_CHECK_EQ_INT(pn_http_cclass[c] & 0x80, 0);
    for (int c = 0; c < 256; c++)
        PN_CHECK_EQ_INT(pn_http_is_tchar((char)c), rfc_tchar(c) != 0);
}

PN_TEST(is_token)
{
    static const char *good[] = {"chunked", "x-gzip", "!#$%&'*+-.^_`|~", "A1", "a"};
    static const char *bad[] = {"", "a b", "a,b", "a;b", "a\"", "caf\xc3\xa9", "a\tb", "(x)"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        size_t n = strlen(good[i]);
        PN_CHECK(pn_http_is_token(pn_guard_copy(good[i], n), n));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = strlen(bad[i]);
        PN_CHECK(!pn_http_is_token(pn_guard_copy(bad[i], n), n));
    }
}

PN_TEST(ows_and_trim)
{
    for (int c = 0; c < 256; c++)
        PN_CHECK_EQ_INT(pn_http_is_ows((char)c), c == ' ' || c == '\t');
    static const struct {
        const char *in, *out;
    } t[] = {
        {"", ""},
        {" ", ""},
        {" \t ", ""},
        {"a", "a"},
        {"  a", "a"},
        {"a \t", "a"},
        {"\t a b \t", "a b"},
        {"\ra\r", "\ra\r"},
        {" \x0b a", "\x0b a"},
        {"a\n", "a\n"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = strlen(t[i].in);
        const char *s = pn_guard_copy(t[i].in, n);
        pn_http_trim(&s, &n);
        PN_CHECK_SLICE(s, n, t[i].out);
    }
}

PN_TEST(ieq)
{
    const char *host = pn_guard_copy("HoSt", 4);
    PN_CHECK(pn_http_ieq(host, 4, PN_STRLIT("host")));
    PN_CHECK(pn_http_ieq(host, 4, PN_STRLIT("HOST")));
    PN_CHECK(!pn_http_ieq(host, 4, PN_STRLIT("hos")));
    PN_CHECK(!pn_http_ieq(host, 3, PN_STRLIT("host")));
    PN_CHECK(pn_http_ieq(host, 0, PN_STRLIT("")));
    /* Bytes one bit 0x20 apart that are not letters are different:
     * '@' / '`', '[' / '{', CR / '-', NUL / SP, and obs-text is compared
     * exactly. */
    static const char pairs[][2] = {{'@', '`'}, {'[', '{'},       {'\r', '-'},     {'\0', ' '},
                                    {'^', '~'}, {'\xc0', '\xe0'}, {'\xc9', '\xe9'}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        PN_CHECK(!pn_http_ieq(pn_guard_copy(&pairs[i][0], 1), 1, &pairs[i][1], 1));
        PN_CHECK(pn_http_ieq(pn_guard_copy(&pairs[i][0], 1), 1, &pairs[i][0], 1));
    }
    for (int c = 0; c < 256; c++) {
        char a = (char)c, b = (char)pn_http_lower((unsigned char)c);
        PN_CHECK(pn_http_ieq(&a, 1, &b, 1));
        int letter = rfc_alpha(c);
        PN_CHECK_EQ_INT(pn_http_lower((unsigned char)c), (c >= 'A' && c <= 'Z') ? c + 32 : c);
        char flipped = (char)(c ^ 0x20);
        PN_CHECK_EQ_INT(pn_http_ieq(&a, 1, &flipped, 1), letter);
    }
    const char *t = pn_guard_copy("HTTPS://x", 9);
    PN_CHECK_EQ_INT(pn_http_iprefix(t, 9, PN_STRLIT("https://")), 8);
    PN_CHECK_EQ_INT(pn_http_iprefix(t, 9, PN_STRLIT("http://")), 0);
    PN_CHECK_EQ_INT(pn_http_iprefix(t, 5, PN_STRLIT("https://")), 0);
    PN_CHECK_EQ_INT(pn_http_iprefix(t, 9, PN_STRLIT("")), 0);
    const char *m = pn_guard_copy("GET", 3);
    PN_CHECK(pn_http_eq(m, 3, PN_STRLIT("GET")));
    PN_CHECK(!pn_http_eq(m, 3, PN_STRLIT("get")));
    PN_CHECK(!pn_http_eq(m, 2, PN_STRLIT("GET")));
}

PN_TEST(hexval)
{
    for (int c = 0; c < 256; c++) {
        int want = c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : -1;
        PN_CHECK_EQ_INT(pn_http_hexval((unsigned char)c), want);
        PN_CHECK_EQ_INT(pn_http_hexval((unsigned char)c) >= 0,
                        pn_http_is((char)c, PN_HTTP_HEX) != 0);
    }
}

PN_TEST(parse_u64)
{
    static const struct {
        const char *s;
        int rc;
        uint64_t v;
    } t[] = {
        {"0", 0, 0},
        {"7", 0, 7},
        {"0042", 0, 42},
        {"18446744073709551615", 0, UINT64_MAX},
        {"18446744073709551616", -1, 0},
        {"99999999999999999999", -1, 0},
        {"000000000000000000000000001", 0, 1},
        {"", -1, 0},
        {" 1", -1, 0},
        {"1 ", -1, 0},
        {"+1", -1, 0},
        {"-1", -1, 0},
        {"1,1", -1, 0},
        {"0x1", -1, 0},
        {"1/", -1, 0},
        {"1:", -1, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = strlen(t[i].s);
        uint64_t v = 12345;
        int rc = pn_http_parse_u64(pn_guard_copy(t[i].s, n), n, &v);
        if (rc != t[i].rc)
            fprintf(stderr, "  \"%s\": rc %d, want %d\n", t[i].s, rc, t[i].rc);
        PN_CHECK_EQ_INT(rc, t[i].rc);
        if (rc == 0)
            PN_CHECK(v == t[i].v);
        else
            PN_CHECK(v == 12345); /* untouched on error */
    }
}

PN_TEST(put_u64)
{
    static const struct {
        uint64_t v;
        const char *s;
    } t[] = {
        {0, "0"},
        {9, "9"},
        {10, "10"},
        {65535, "65535"},
        {1000000, "1000000"},
        {UINT64_MAX, "18446744073709551615"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char buf[PN_HTTP_U64_DIGITS + 2];
        memset(buf, '#', sizeof(buf));
        size_t n = pn_http_put_u64(buf, t[i].v);
        PN_CHECK_SLICE(buf, n, t[i].s);
        PN_CHECK(buf[n] == '#'); /* nothing past the digits, no NUL */
    }
    /* Exactly PN_HTTP_U64_DIGITS bytes of room suffice: a guard page
     * right after them catches a write past the end. */
    char *room = pn_guard_copy("xxxxxxxxxxxxxxxxxxxx", PN_HTTP_U64_DIGITS);
    PN_CHECK_EQ_INT(pn_http_put_u64(room, UINT64_MAX), PN_HTTP_U64_DIGITS);
    char *p = pn_guard_copy("....", 4);
    char *end = pn_http_put(p, PN_STRLIT("ab"));
    PN_CHECK(end == p + 2);
    PN_CHECK_SLICE(p, 4, "ab..");
    /* Round trip through the reader. */
    for (uint64_t v = 1; v < UINT64_MAX / 3; v = v * 3 + 1) {
        char buf[PN_HTTP_U64_DIGITS];
        size_t n = pn_http_put_u64(buf, v);
        uint64_t back = 0;
        PN_CHECK_EQ_INT(pn_http_parse_u64(buf, n, &back), 0);
        PN_CHECK(back == v);
    }
}

/* The elements of a list joined with '|', empty ones included. */
static void elements(const char *v, char *out, size_t cap)
{
    size_t n = strlen(v), pos = 0, o = 0, len;
    const char *in = pn_guard_copy(v, n), *el;
    int first = 1;
    while (pn_http_list_next(in, n, &pos, &el, &len)) {
        if (!first && o + 1 < cap)
            out[o++] = '|';
        first = 0;
        for (size_t i = 0; i < len && o + 1 < cap; i++)
            out[o++] = el[i];
        PN_CHECK(el >= in && el + len <= in + n);
    }
    out[o] = '\0';
}

PN_TEST(list_next)
{
    static const struct {
        const char *in, *out;
    } t[] = {
        {"", ""},
        {"a", "a"},
        {"a,b", "a|b"},
        {" a , b ", "a|b"},
        {"a,,b", "a||b"},
        {"a,", "a|"},
        {",a", "|a"},
        {",", "|"},
        {" ", ""},
        {"\tgzip;q=0.5 ,\tbr", "gzip;q=0.5|br"},
        {"a b , c\td", "a b|c\td"},
        {"\"x,y\"", "\"x|y\""}, /* no quoted-string awareness: callers' lists have none */
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char got[64];
        elements(t[i].in, got, sizeof(got));
        if (strcmp(got, t[i].out) != 0)
            fprintf(stderr, "  \"%s\" -> \"%s\", want \"%s\"\n", t[i].in, got, t[i].out);
        PN_CHECK(strcmp(got, t[i].out) == 0);
    }
    /* An empty value is one empty element (the parser refuses it in
     * Transfer-Encoding); then the list is done, and stays done. */
    size_t pos = 0, len = 99;
    const char *el = NULL, *v = pn_guard_copy("", 0);
    PN_CHECK_EQ_INT(pn_http_list_next(v, 0, &pos, &el, &len), 1);
    PN_CHECK_EQ_INT(len, 0);
    PN_CHECK_EQ_INT(pn_http_list_next(v, 0, &pos, &el, &len), 0);
    PN_CHECK_EQ_INT(pn_http_list_next(v, 0, &pos, &el, &len), 0);
}

PN_TEST(list_has)
{
    static const struct {
        const char *v, *tok;
        int want;
    } t[] = {
        {"close", "close", 1},
        {"Keep-Alive, CLOSE", "close", 1},
        {" ,, close\t,", "close", 1},
        {"closed", "close", 0},
        {"x close", "close", 0},
        {"close x", "close", 0},
        {"close=1", "close", 0},
        {"", "close", 0},
        {",", "close", 0},
        {"Upgrade", "upgrade", 1},
        {"keep-alive, upgrade", "upgrade", 1},
        {"websocket", "websocket", 1},
        {"h2c, WebSocket", "websocket", 1},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = strlen(t[i].v);
        int got = pn_http_list_has(pn_guard_copy(t[i].v, n), n, t[i].tok, strlen(t[i].tok));
        if (got != t[i].want)
            fprintf(stderr, "  \"%s\" has \"%s\": %d, want %d\n", t[i].v, t[i].tok, got, t[i].want);
        PN_CHECK_EQ_INT(got, t[i].want);
    }
}

int main(void)
{
    PN_RUN(classes_match_rfc);
    PN_RUN(is_token);
    PN_RUN(ows_and_trim);
    PN_RUN(ieq);
    PN_RUN(hexval);
    PN_RUN(parse_u64);
    PN_RUN(put_u64);
    PN_RUN(list_next);
    PN_RUN(list_has);
    return pn_test_summary();
}
