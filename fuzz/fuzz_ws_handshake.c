/*
 * fuzz_ws_handshake.c — libFuzzer target for the WebSocket opening
 * handshake (pn_ws_handshake_check) and permessage-deflate negotiation.
 *
 * Input: one control byte, then bytes.  Mode (bit 0): 0 = the bytes are a
 * whole request head, parsed by pn_http1_parse_head first; 1 = the bytes are
 * the value of Sec-WebSocket-Extensions (up to the first '|') and of
 * Sec-WebSocket-Protocol (after it) in an otherwise valid handshake, which
 * reaches the extension parser directly.  Bits 1-4 pick the deflate policy.
 * Checks: statuses are 400/426, agreed parameters are in range, the response
 * extension string fits and re-parses as an acceptable offer, subprotocol
 * tokens lie inside the request, and the 101 head can be written.
 */
#include "pn_http1_parse.h"
#include "pn_ws_handshake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

enum { MAXH = 32 };

static void check_ok(const pn_http1_request *r, const char *buf, size_t n,
                     const pn_ws_handshake *hs)
{
    CHECK(strlen(hs->accept) == 28);
    CHECK(hs->extensions_len < PN_WS_EXT_MAX);
    if (hs->deflate.enabled) {
        CHECK(hs->deflate.server_max_window_bits >= 9 && hs->deflate.server_max_window_bits <= 15);
        CHECK(hs->deflate.client_max_window_bits >= 8 && hs->deflate.client_max_window_bits <= 15);
        CHECK(hs->extensions_len > 0);
    } else {
        CHECK(hs->extensions_len == 0);
    }
    pn_ws_list_iter it;
    const char *t;
    size_t tl;
    pn_ws_protocols_begin(&it, r);
    pn_buf out = PN_BUF_INIT;
    while (pn_ws_protocols_next(&it, &t, &tl)) {
        CHECK(tl > 0 && t >= buf && t + tl <= buf + n);
        /* every offered token can be echoed */
        CHECK(pn_ws_handshake_write_101(&out, hs, t, tl) == 0);
        pn_buf_clear(&out);
    }
    CHECK(pn_ws_handshake_write_101(&out, hs, NULL, 0) == 0);
    pn_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    const char *src = (const char *)data + 1;
    size_t n = size - 1;
    char *buf;
    size_t len;
    if (ctl & 1) {
        const char *bar = memchr(src, '|', n);
        size_t el = bar ? (size_t)(bar - src) : n;
        size_t pl = bar ? n - el - 1 : 0;
        static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: ";
        len = sizeof pre - 1 + el + 2 + 24 + pl + 4;
        buf = malloc(len);
        char *w = buf;
        memcpy(w, pre, sizeof pre - 1);
        w += sizeof pre - 1;
        memcpy(w, src, el);
        w += el;
        memcpy(w, "\r\nSec-WebSocket-Protocol: ", 24 + 2);
        w += 26;
        if (pl)
            memcpy(w, bar + 1, pl);
        w += pl;
        memcpy(w, "\r\n\r\n", 4);
        len = (size_t)(w + 4 - buf);
    } else {
        len = n;
        buf = malloc(len ? len : 1);
        memcpy(buf, src, n);
    }
    pn_http1_limits lim = {8190, 65536, MAXH, 0};
    pn_http1_header hs_space[MAXH];
    pn_http1_parser p;
    pn_http1_request r;
    pn_http1_parser_init(&p, &lim, hs_space);
    if (pn_http1_parse_head(&p, buf, len, &r) == PN_HTTP1_OK) {
        pn_ws_deflate_policy pol = {(ctl >> 1) & 1, (ctl >> 2) & 1, (ctl >> 3) & 1,
                                    9 + (int)((ctl >> 4) % 7), 8 + (int)((ctl >> 5) % 8)};
        pn_ws_handshake hs;
        int rc = pn_ws_handshake_check(&r, &pol, &hs);
        CHECK(rc == PN_WS_HS_OK || rc == PN_WS_HS_NOT_WEBSOCKET || rc == PN_WS_HS_ERROR);
        if (rc == PN_WS_HS_ERROR) {
            CHECK(hs.status == 400 || hs.status == 426);
            CHECK(hs.reason != NULL);
        }
        if (rc == PN_WS_HS_OK) {
            check_ok(&r, buf, len, &hs);
            if (hs.deflate.enabled) {
                /* Our answer, offered back, must be accepted with the same
                 * windows (it is a valid offer with the same limits). */
                char head[512];
                int hl = snprintf(head, sizeof head,
                                  "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "Sec-WebSocket-Extensions: %.*s\r\n\r\n",
                                  (int)hs.extensions_len, hs.extensions);
                CHECK(hl > 0 && (size_t)hl < sizeof head);
                pn_http1_parser p2;
                pn_http1_request r2;
                pn_http1_header hs2[MAXH];
                pn_http1_parser_init(&p2, &lim, hs2);
                CHECK(pn_http1_parse_head(&p2, head, (size_t)hl, &r2) == PN_HTTP1_OK);
                pn_ws_handshake again;
                CHECK(pn_ws_handshake_check(&r2, &pol, &again) == PN_WS_HS_OK);
                CHECK(again.deflate.enabled);
                CHECK(again.deflate.server_max_window_bits <= hs.deflate.server_max_window_bits);
            }
        }
    }
    free(buf);
    return 0;
}
