/*
 * fuzz_log.c — libFuzzer target for the access-line formats (pn_log.c).
 *
 * Input: one control byte (bits 0-1: the format; bit 2: a request id; bit
 * 3: an HTTP/1.0 request), then up to five fields separated by '\0':
 * method, target, referer, user agent, request id.  Each field is an
 * exact-size heap copy, so ASan sees any read past a slice.  Checked:
 *   - every line ends in exactly one '\n', its only one, and holds no other
 *     control byte (a request cannot forge lines or terminal escapes);
 *   - a json line is one valid JSON object: a strict checker walks it
 *     (strings: escapes and UTF-8; numbers; null), and the string escaper
 *     alone gives a valid JSON string body for the raw bytes;
 *   - the same record gives the same line twice (the clock cache).
 */
#include "pn_log.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

/* A JSON string body at s (after its opening quote); returns the position
 * of its closing quote, or NULL when invalid (RFC 8259 §7, UTF-8 per RFC
 * 3629). */
static const unsigned char *json_string(const unsigned char *s, const unsigned char *e)
{
    while (s < e) {
        unsigned c = *s;
        if (c == '"')
            return s;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (e - s < 2)
                return NULL;
            if (s[1] == 'u') {
                if (e - s < 6)
                    return NULL;
                for (int i = 2; i < 6; i++)
                    if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i])
                        return NULL;
                s += 6;
            } else if (s[1] && strchr("\"\\/bfnrt", s[1])) {
                s += 2;
            } else {
                return NULL;
            }
            continue;
        }
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (len == 0 || c > 0xF4 || (size_t)(e - s) < len)
            return NULL;
        unsigned cp = c & (0x3Fu >> (len - 1));
        for (size_t k = 1; k < len; k++) {
            if ((s[k] & 0xC0) != 0x80)
                return NULL;
            cp = cp << 6 | (s[k] & 0x3Fu);
        }
        static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return NULL;
        s += len;
    }
    return NULL;
}

/* The json line: {"key":value,...} with string, number or null values. */
static int json_object(const unsigned char *s, const unsigned char *e)
{
    if (s >= e || *s++ != '{')
        return 0;
    for (;;) {
        if (s >= e || *s++ != '"')
            return 0;
        if ((s = json_string(s, e)) == NULL)
            return 0;
        s++;
        if (s >= e || *s++ != ':')
            return 0;
        if (s < e && *s == '"') {
            if ((s = json_string(s + 1, e)) == NULL)
                return 0;
            s++;
        } else if (e - s >= 4 && memcmp(s, "null", 4) == 0) {
            s += 4;
        } else {
            const unsigned char *n = s;
            while (s < e && ((*s >= '0' && *s <= '9') || *s == '.'))
                s++;
            if (s == n || *n == '.' || s[-1] == '.')
                return 0;
        }
        if (s >= e)
            return 0;
        if (*s == '}')
            return s + 1 == e;
        if (*s++ != ',')
            return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    char *f[5] = {0};
    size_t n[5] = {0};
    for (int i = 0; i < 5 && p <= end; i++) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        n[i] = (size_t)((z ? z : end) - p);
        f[i] = malloc(n[i] ? n[i] : 1);
        memcpy(f[i], p, n[i]);
        p += n[i] + 1;
    }
    pn_access_rec r = {
        .client = "[2001:db8::1]:65535",
        .client_len = 19,
        .method = f[0],
        .method_len = n[0],
        .target = f[1],
        .target_len = n[1],
        .version_minor = (ctl & 8) ? 0 : 1,
        .status = (int)(ctl >> 4) * 37 - 1,
        .bytes = (uint64_t)ctl << 40,
        .duration_ns = (uint64_t)ctl * 987654321u,
        .referer = f[2],
        .referer_len = n[2],
        .user_agent = f[3],
        .user_agent_len = n[3],
        .request_id = (ctl & 4) ? f[4] : NULL,
        .request_id_len = (ctl & 4) ? n[4] : 0,
        .time_ns = (uint64_t)ctl * 86400u * 1000000000u * 97u + 123456789u,
        .pid = 4242,
    };
    int format = (int)(ctl & 3);
    pn_log_clock clk = PN_LOG_CLOCK_INIT;
    pn_buf a = PN_BUF_INIT, b = PN_BUF_INIT;
    CHECK(pn_log_format(&a, format, &r, &clk) == 0);
    CHECK(pn_log_format(&b, format, &r, &clk) == 0);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    CHECK(a.len > 0 && a.data[a.len - 1] == '\n');
    for (size_t i = 0; i + 1 < a.len; i++) {
        unsigned char c = (unsigned char)a.data[i];
        CHECK(c >= 0x20 && c != 0x7f);
        /* Text formats are ASCII: every other byte was escaped. */
        CHECK(format == PN_LOG_FMT_JSON || c < 0x80);
    }
    if (format == PN_LOG_FMT_JSON)
        CHECK(
            json_object((const unsigned char *)a.data, (const unsigned char *)a.data + a.len - 1));

    pn_buf_clear(&b);
    CHECK(pn_log_json_escape(&b, f[1], n[1]) == 0);
    const unsigned char *q = (const unsigned char *)b.data;
    if (b.len)
        CHECK(json_string(q, q + b.len) == NULL); /* no closing quote inside ... */
    pn_buf_append(&b, "\"", 1);
    q = (const unsigned char *)b.data;
    CHECK(json_string(q, q + b.len) == q + b.len - 1); /* ... and valid up to it */

    pn_buf_free(&a);
    pn_buf_free(&b);
    for (int i = 0; i < 5; i++)
        free(f[i]);
    return 0;
}
