/*
 * fuzz_request_id.c — libFuzzer target for pn_request_id.c: the choice of
 * a request's ID among its header fields, and ID validation.
 *
 * Input: header lines separated by '\n', each "name:value"; the whole input
 * also seeds the generator.  Each name and value is an exact-size heap copy,
 * so ASan sees any read past a slice.  Checked:
 *   - the ID taken is never empty nor longer than PN_REQUEST_ID_MAX, and
 *     always valid: no byte that could break a header, a log line or JSON;
 *   - it is the one X-Request-ID value when there is exactly one and that
 *     value is valid, else a generated one (32 lowercase hex, UUID v4);
 *   - validation agrees with a byte-by-byte reference of the documented set.
 */
#include "pn_request_id.h"

#include "pn_buf.h" /* PN_STRLIT */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define MAXH 32

static int ref_valid(const char *v, size_t n)
{
    static const char set[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~:+/=-";
    if (n == 0 || n > PN_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] == '\0' || memchr(set, v[i], sizeof set - 1) == NULL)
            return 0;
    return 1;
}

static int is_generated(const char *p, size_t n)
{
    if (n != PN_REQUEST_ID_GEN_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return 0;
    return p[12] == '4' && (p[16] == '8' || p[16] == '9' || p[16] == 'a' || p[16] == 'b');
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    pn_http1_header h[MAXH];
    char *copies[2 * MAXH];
    size_t nh = 0, nc = 0, i = 0;
    const char *text = (const char *)data;
    while (i < size && nh < MAXH) {
        size_t ls = i;
        while (i < size && text[i] != '\n')
            i++;
        const char *colon = memchr(text + ls, ':', i - ls);
        if (colon) {
            size_t nl = (size_t)(colon - text - ls), vl = (size_t)(text + i - colon - 1);
            char *name = malloc(nl ? nl : 1), *value = malloc(vl ? vl : 1);
            memcpy(name, text + ls, nl);
            memcpy(value, colon + 1, vl);
            copies[nc++] = name;
            copies[nc++] = value;
            h[nh].name = name;
            h[nh].name_len = nl;
            h[nh].value = value;
            h[nh].value_len = vl;
            nh++;
            /* Validation against the reference, on every value seen. */
            CHECK(pn_request_id_valid(value, vl) == ref_valid(value, vl));
        }
        i++;
    }
    pn_request_id_gen g;
    pn_request_id_seed_bytes(&g, data, size);
    char out[PN_REQUEST_ID_MAX];
    size_t n = pn_request_id_take(&g, h, nh, PN_STRLIT("X-Request-ID"), out);
    CHECK(n >= 1 && n <= PN_REQUEST_ID_MAX);
    CHECK(ref_valid(out, n));
    const pn_http1_header *only = NULL;
    int count = 0;
    for (size_t k = 0; k < nh; k++)
        if (h[k].name_len == 12 && strncasecmp(h[k].name, "x-request-id", 12) == 0) {
            only = &h[k];
            count++;
        }
    if (count == 1 && ref_valid(only->value, only->value_len))
        CHECK(n == only->value_len && memcmp(out, only->value, n) == 0);
    else
        CHECK(is_generated(out, n));
    for (size_t k = 0; k < nc; k++)
        free(copies[k]);
    return 0;
}
