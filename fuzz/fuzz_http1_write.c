/*
 * fuzz_http1_write.c — libFuzzer target for the response writer
 * (pn_http1_check_header, pn_http1_resp_*): the part of the core that parses
 * what the application hands over (header names and values, Content-Length,
 * Connection) and must never let it split or mis-frame a response.
 *
 * Input: four control bytes (status, flags, known body length, body plan),
 * then header fields, each as <name_len> <value_len> <name> <value>.
 * Checks:
 *   - the head written is one well-formed response head: the status line,
 *     then lines "token:value" with no CR, LF or NUL inside, one empty line
 *     at the very end (no response splitting, RFC 9112 §4, RFC 9110 §5.5);
 *   - a field accepted by pn_http1_resp_header passed pn_http1_check_header;
 *   - at most one Content-Length and never with Transfer-Encoding (§6.3);
 *   - the body frames never carry more payload than a declared length, and
 *     none at all for HEAD/204/304 (RFC 9110 §6.4.1, RFC 9112 §6.3).
 */
#include "pn_http1_write.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int name_is(const char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lit[i])
            return 0;
    return 1;
}

/* Validate the head in h[0..n); returns the number of Content-Length fields
 * and sets *te when Transfer-Encoding is present. */
static int check_head(const char *h, size_t n, int *te)
{
    CHECK(n >= 4 && memcmp(h + n - 4, "\r\n\r\n", 4) == 0);
    CHECK(n > 13 && memcmp(h, "HTTP/1.1 ", 9) == 0);
    int cl = 0;
    *te = 0;
    size_t ls = 0, line = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        CHECK(c != 0);
        if (c == '\n')
            CHECK(i > 0 && h[i - 1] == '\r');
        if (c == '\r')
            CHECK(i + 1 < n && h[i + 1] == '\n');
        if (c != '\n')
            continue;
        size_t le = i - 1; /* the CR */
        if (le == ls) {
            CHECK(i == n - 1); /* the only empty line is the last one */
        } else if (line > 0) {
            size_t j = ls;
            while (j < le && is_tchar((unsigned char)h[j]))
                j++;
            CHECK(j > ls && j < le && h[j] == ':');
            if (name_is(h + ls, j - ls, "content-length"))
                cl++;
            if (name_is(h + ls, j - ls, "transfer-encoding"))
                *te = 1;
        }
        line++;
        ls = i + 1;
    }
    return cl;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    static const int statuses[16] = {200, 204, 304, 404, 500, 101, 100, 199,
                                     600, 201, 206, 301, 418, 503, 599, 0};
    int status = statuses[data[0] & 15];
    unsigned flags = 0;
    if (data[1] & 1)
        flags |= PN_RESP_HEAD_REQUEST;
    if (data[1] & 2)
        flags |= PN_RESP_KEEP_ALIVE;
    if (data[1] & 4)
        flags |= PN_RESP_CLOSE;
    int vminor = (data[1] >> 3) & 1;
    int64_t known = (data[2] & 0x80) ? -1 : (int64_t)(data[2] & 0x7f);
    unsigned plan = data[3];
    const uint8_t *p = data + 4, *end = data + size;

    pn_http1_response r;
    if (pn_http1_resp_init(&r, status, vminor, flags) != PN_WRITE_OK) {
        CHECK(status < 200 || status > 599);
        return 0;
    }
    pn_buf out = PN_BUF_INIT;
    CHECK(pn_http1_resp_start(&out, &r) == PN_WRITE_OK);

    while (end - p >= 2) {
        size_t nl = p[0], vl = p[1];
        p += 2;
        if ((size_t)(end - p) < nl + vl)
            break;
        /* exact-size heap copies so ASan sees any over-read */
        char *name = malloc(nl ? nl : 1), *value = malloc(vl ? vl : 1);
        memcpy(name, p, nl);
        memcpy(value, p + nl, vl);
        p += nl + vl;
        size_t before = out.len;
        int ok = pn_http1_check_header(name, nl, value, vl) == PN_WRITE_OK;
        int rc = pn_http1_resp_header(&out, &r, name, nl, value, vl);
        CHECK(rc == PN_WRITE_OK || rc == PN_WRITE_BAD_HEADER || rc == PN_WRITE_BAD_LENGTH);
        if (rc != PN_WRITE_OK)
            CHECK(out.len == before); /* on error nothing is appended */
        if (rc == PN_WRITE_OK)
            CHECK(ok);
        if (!ok)
            CHECK(rc == PN_WRITE_BAD_HEADER);
        free(name);
        free(value);
    }

    pn_http1_head_opts opts = {"Sun, 06 Nov 1994 08:49:37 GMT", (plan & 1) ? "pounce" : NULL};
    CHECK(pn_http1_resp_finish_head(&out, &r, &opts, known) == PN_WRITE_OK);
    int te = 0;
    int cl = check_head(pn_buf_head(&out), pn_buf_live(&out), &te);
    CHECK(cl <= 1);
    CHECK(!(cl && te));

    /* Body: up to 4 pieces of sizes from the plan byte; the last is final. */
    uint64_t sent = 0;
    int stopped = 0;
    for (int k = 0; k < 4 && !stopped; k++) {
        size_t len = (size_t)((plan >> (2 * k)) & 3) * 37;
        int final = k == 3;
        pn_http1_frame f;
        int rc = pn_http1_resp_body_frame(&r, len, final, &f);
        CHECK(f.prefix_len <= sizeof f.prefix && f.suffix_len <= sizeof f.suffix);
        if (rc == PN_WRITE_TOO_MUCH) {
            CHECK(f.send_len == 0);
            stopped = 1;
            continue;
        }
        CHECK(rc == PN_WRITE_OK || rc == PN_WRITE_TOO_LITTLE);
        CHECK(f.send_len == 0 || f.send_len == len);
        if (r.flags & PN_RESP_NO_BODY)
            CHECK(f.send_len == 0);
        sent += f.send_len;
        if (r.flags & PN_RESP_HAS_CL)
            CHECK(sent <= r.content_length);
        if (rc == PN_WRITE_TOO_LITTLE)
            CHECK(final && (r.flags & PN_RESP_CLOSE));
    }
    pn_buf_free(&out);
    return 0;
}
