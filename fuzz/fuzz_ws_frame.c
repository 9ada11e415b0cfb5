/*
 * fuzz_ws_frame.c — libFuzzer target for the WebSocket frame parser
 * (pn_ws_parse), with UTF-8 validation and, when built with zlib,
 * permessage-deflate decompression of compressed messages.
 *
 * Input: one control byte, then the bytes a peer sends.  The control byte
 * picks server or client side, whether deflate was negotiated, a small or no
 * message limit, and the step in which bytes "arrive".  The stream is parsed
 * all at once and in steps, each call on an exact-size heap copy (ASan sees
 * any over-read); both runs must report the same messages, control frames
 * and outcome, every event must point inside the bytes consumed, and errors
 * must carry 1002, 1007 or 1009.
 */
#include "pn_utf8.h"
#include "pn_ws.h"
#include "pn_ws_deflate.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

typedef struct {
    int rc, close_code, nmsg, nctl;
    uint64_t hash; /* over messages (opcode, bytes, inflate result) and controls */
} outcome;

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

/* The live bytes of b; an empty buffer may have no allocation at all. */
static const char *head(const pn_buf *b)
{
    return b->data ? pn_buf_head(b) : "";
}

static outcome run(unsigned ctl, const uint8_t *src, size_t n, size_t step)
{
    outcome o;
    memset(&o, 0, sizeof o);
    o.hash = 0xcbf29ce484222325ull;
    unsigned flags = (ctl & 1 ? PN_WS_SERVER : 0) | (ctl & 2 ? PN_WS_DEFLATE : 0);
    uint64_t max = ctl & 4 ? 300 : 0;
    pn_ws_parser p;
    pn_ws_parser_init(&p, flags, max);
    pn_ws_deflate_params dp = {1, (ctl >> 3) & 1, (ctl >> 3) & 1, 15, 9 + ((ctl >> 4) & 3)};
    pn_ws_deflate d;
    pn_ws_deflate_init(&d, &dp, 1, 1);
    pn_buf msg = PN_BUF_INIT;
    int in_msg = 0, msg_opcode = 0, msg_compressed = 0, inflate_rc = 0;
    size_t have = 0, off = 0;
    for (;;) {
        size_t next = step ? (n - have < step ? n : have + step) : n;
        int arrived = next > have;
        have = next;
        for (;;) {
            size_t live = have - off, used;
            char *buf = malloc(live ? live : 1);
            memcpy(buf, src + off, live);
            pn_ws_event ev;
            int rc = pn_ws_parse(&p, buf, live, &used, &ev);
            CHECK(used <= live);
            off += used;
            if (rc == PN_WS_DATA || rc == PN_WS_CONTROL)
                CHECK(ev.data >= buf && ev.len <= used && ev.data + ev.len <= buf + used);
            if (rc == PN_WS_DATA) {
                if (ev.first) {
                    CHECK(!in_msg);
                    in_msg = 1;
                    msg_opcode = ev.opcode;
                    msg_compressed = ev.compressed;
                    inflate_rc = 0;
                    pn_buf_clear(&msg);
                }
                CHECK(in_msg && ev.opcode == msg_opcode && ev.compressed == msg_compressed);
                CHECK(ev.opcode == PN_WS_TEXT || ev.opcode == PN_WS_BINARY);
                CHECK(!ev.compressed || (flags & PN_WS_DEFLATE));
                if (ev.compressed) {
                    if (inflate_rc == 0)
                        inflate_rc = pn_ws_inflate(&d, ev.data, ev.len, ev.fin, &msg, 4096);
                    CHECK(pn_buf_live(&msg) <= 4096 + 1);
                } else {
                    pn_buf_append(&msg, ev.data, ev.len);
                }
                if (ev.fin) {
                    in_msg = 0;
                    o.nmsg++;
                    o.hash = mix(o.hash, &msg_opcode, sizeof msg_opcode);
                    o.hash = mix(o.hash, &inflate_rc, sizeof inflate_rc);
                    if (inflate_rc == 0) {
                        o.hash = mix(o.hash, head(&msg), pn_buf_live(&msg));
                        /* uncompressed text was validated by the parser */
                        if (msg_opcode == PN_WS_TEXT && !msg_compressed)
                            CHECK(pn_utf8_valid(head(&msg), pn_buf_live(&msg)) == 0);
                    } else if (msg_compressed) {
                        /* the state is unusable after an error: start over */
                        pn_ws_deflate_free(&d);
                        pn_ws_deflate_init(&d, &dp, 1, 1);
                    }
                }
            } else if (rc == PN_WS_CONTROL) {
                o.nctl++;
                CHECK(ev.len <= 125);
                CHECK(ev.opcode == PN_WS_PING || ev.opcode == PN_WS_PONG ||
                      ev.opcode == PN_WS_CLOSE);
                if (ev.opcode == PN_WS_CLOSE) {
                    CHECK(ev.close_code == 1005 || pn_ws_close_code_valid(ev.close_code));
                    CHECK(pn_utf8_valid(ev.reason, ev.reason_len) == 0);
                }
                o.hash = mix(o.hash, &ev.opcode, sizeof ev.opcode);
                o.hash = mix(o.hash, &ev.close_code, sizeof ev.close_code);
                o.hash = mix(o.hash, ev.data, ev.len);
            }
            free(buf);
            if (rc == PN_WS_ERROR) {
                CHECK(p.close_code == 1002 || p.close_code == 1007 || p.close_code == 1009);
                o.rc = rc;
                o.close_code = p.close_code;
                goto done;
            }
            if (rc == PN_WS_INCOMPLETE)
                break;
        }
        if (!arrived && have == n)
            break;
    }
done:
    pn_buf_free(&msg);
    pn_ws_deflate_free(&d);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    outcome a = run(ctl, data + 1, size - 1, 0);
    outcome b = run(ctl, data + 1, size - 1, 1 + (ctl >> 6) * 5);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    return 0;
}
