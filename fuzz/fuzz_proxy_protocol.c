/*
 * fuzz_proxy_protocol.c — libFuzzer target for the PROXY protocol header
 * parser (pn_proxy_protocol.c).
 *
 * Input: the bytes a connection starts with, read from an exact-size heap
 * copy, so ASan sees any over-read.  Checked:
 *   - a header's length is within the input and the caps (107 bytes for
 *     v1, PN_PROXY_MAX for v2), and the header alone parses the same;
 *   - one byte less than a header, and any prefix of an input that needs
 *     more, needs more (the runtime feeds whatever has arrived);
 *   - an error stays an error when more bytes follow (the runtime closes
 *     at once: no later byte could have saved it), and says why;
 *   - the result is coherent: `local` leaves no address, otherwise the
 *     source is an IPv4, IPv6 or Unix one; only v2 says TLS.
 */
#include "pn_proxy_protocol.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static int parse_copy(const uint8_t *data, size_t n, pn_proxy_header *h)
{
    char *p = malloc(n ? n : 1);
    memcpy(p, data, n);
    int rc = pn_proxy_parse(p, n, h);
    free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pn_proxy_header h, again;
    int rc = parse_copy(data, size, &h);
    if (rc > 0) {
        CHECK((size_t)rc <= size);
        CHECK(h.version == 1 || h.version == 2);
        CHECK((size_t)rc <= (h.version == 1 ? PN_PROXY_V1_MAX : PN_PROXY_MAX));
        CHECK(h.version == 2 || !h.ssl);
        if (h.local)
            CHECK(h.src.family == PN_IP_NONE && !h.ssl);
        else
            CHECK(h.src.family == PN_IP_V4 || h.src.family == PN_IP_V6 ||
                  h.src.family == PN_IP_UNIX);
        CHECK(parse_copy(data, (size_t)rc, &again) == rc);
        CHECK(again.local == h.local && again.ssl == h.ssl && again.src_port == h.src_port &&
              again.dst_port == h.dst_port && memcmp(&again.src, &h.src, sizeof h.src) == 0 &&
              memcmp(&again.dst, &h.dst, sizeof h.dst) == 0);
        CHECK(parse_copy(data, (size_t)rc - 1, &again) == PN_PROXY_INCOMPLETE);
    } else if (rc == PN_PROXY_INCOMPLETE) {
        CHECK(size < PN_PROXY_MAX);
        if (size > 0)
            CHECK(parse_copy(data, size - 1, &again) == PN_PROXY_INCOMPLETE);
    } else {
        CHECK(rc == PN_PROXY_ERROR && h.error != NULL);
        uint8_t *more = malloc(size + 1);
        memcpy(more, data, size);
        more[size] = '\n';
        CHECK(parse_copy(more, size + 1, &again) == PN_PROXY_ERROR);
        free(more);
    }
    return 0;
}
