/*
 * fuzz_static_eval.c — libFuzzer target for pn_static_eval (conditionals
 * and Range of a static file) and pn_http_date_parse/format.
 *
 * Input: one control byte (bit 0: GET or HEAD; bits 1-4: the file size,
 * from a list of edges or, for 15, the next 8 bytes; bits 5-7: mtime),
 * then field lines separated by '\n', each one selector byte (the field
 * name: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
 * Range, If-Range in two spellings, or another) and the value.  Every value
 * is an exact-size heap copy, so ASan sees any over-read.  Checked:
 *   - the status is one of 200, 206, 304, 412, 416; 200 sends 0..size; 206
 *     only for GET with a Range line, a non-empty range inside the file
 *     (off + len <= size, without overflow); the others send nothing;
 *   - every value that parses as a date formats back to a date that parses
 *     to the same instant, and a formatted date is always 29 bytes.
 */
#include "pn_static_http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define MAX_LINES 16

static const char *const names[8] = {
    "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
    "Range",    "If-Range",      "IF-RANGE",          "X-Other"};

static void check_date(const char *v, size_t n)
{
    int64_t t;
    if (pn_http_date_parse(v, n, &t) != 0)
        return;
    /* Parsed dates are years 0..9999, what the formatter writes, but for
     * a leap second on 9999-12-31, which the formatter clamps. */
    if (t > INT64_C(253402300799))
        return;
    char out[PN_HTTP_DATE_LEN + 1];
    pn_http_date_format(out, t);
    CHECK(strlen(out) == PN_HTTP_DATE_LEN);
    int64_t back;
    CHECK(pn_http_date_parse(out, PN_HTTP_DATE_LEN, &back) == 0);
    CHECK(back == t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint64_t sizes[15] = {0,
                                       1,
                                       2,
                                       10,
                                       1000,
                                       16384,
                                       UINT64_C(4294967295),
                                       UINT64_C(4294967296),
                                       UINT64_C(4294967297),
                                       UINT64_C(5368709120),
                                       (uint64_t)INT64_MAX,
                                       (uint64_t)INT64_MAX + 1,
                                       UINT64_MAX - 1,
                                       UINT64_MAX,
                                       999999};
    static const int64_t mtimes[8] = {784111777, 0,         -1, INT64_C(253402300799),
                                      INT64_MIN, INT64_MAX, 1,  INT64_C(-62167219200)};
    int is_get = data[0] & 1;
    unsigned sel = (data[0] >> 1) & 15;
    int64_t mtime = mtimes[data[0] >> 5];
    size_t p = 1;
    uint64_t fsize;
    if (sel == 15) {
        if (size < 9)
            return 0;
        fsize = 0;
        for (int i = 0; i < 8; i++)
            fsize = fsize << 8 | data[1 + i];
        p = 9;
    } else {
        fsize = sizes[sel];
    }

    pn_http1_header h[MAX_LINES];
    size_t nh = 0;
    int has_range = 0;
    while (p < size && nh < MAX_LINES) {
        const uint8_t *nl = memchr(data + p, '\n', size - p);
        size_t end = nl ? (size_t)(nl - data) : size;
        if (end == p) { /* an empty line: no selector byte */
            p++;
            continue;
        }
        const char *name = names[data[p] & 7];
        size_t vn = end - p - 1;
        char *v = malloc(vn ? vn : 1);
        memcpy(v, data + p + 1, vn);
        h[nh].name = name;
        h[nh].name_len = strlen(name);
        h[nh].value = v;
        h[nh].value_len = vn;
        has_range |= (data[p] & 7) == 4;
        nh++;
        check_date(v, vn);
        p = end + 1;
    }

    char etag[PN_ETAG_MAX];
    size_t etag_len = pn_static_etag(etag, (int64_t)((uint64_t)mtime * 1000000000u), fsize);
    CHECK(etag_len <= PN_ETAG_MAX);
    pn_static_meta m = {fsize, mtime, etag, etag_len};
    pn_static_result r;
    pn_static_eval(h, nh, is_get, &m, &r);

    switch (r.status) {
    case 200:
        CHECK(r.off == 0 && r.len == fsize);
        break;
    case 206:
        CHECK(is_get && has_range);
        CHECK(r.len > 0 && r.off < fsize && r.len <= fsize - r.off);
        break;
    case 416:
        CHECK(is_get && has_range);
        CHECK(r.off == 0 && r.len == 0);
        break;
    case 304:
    case 412:
        CHECK(r.off == 0 && r.len == 0);
        break;
    default:
        CHECK(0);
    }
    /* HEAD: the same answer as GET but with Range ignored. */
    if (!is_get) {
        pn_static_result g;
        pn_static_eval(h, nh, 1, &m, &g);
        if (g.status == 304 || g.status == 412)
            CHECK(r.status == g.status);
        else
            CHECK(r.status == 200);
    }
    for (size_t i = 0; i < nh; i++)
        free((void *)h[i].value);
    return 0;
}
