/*
 * Unit tests for pn_ws: the frame parser against every RFC 6455 framing rule
 * (with the exact close code of each failure), the areas the Autobahn
 * testsuite covers (framing, ping/pong sizes, reserved bits, opcodes,
 * fragmentation, UTF-8 across fragments, close codes, limits), incremental
 * parsing at every split point, in-place unmasking and the frame writer.
 * The parser always reads from a guard-page copy of the bytes it is given.
 */
#include "pn_ws.h"

#include "pn_test.h"

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Append one frame to out; returns its length.  len_mode: 0 shortest, 16 or
 * 64 to force that length encoding. */
static size_t frame(uint8_t *out, int fin, int rsv, int opcode, int masked, const void *payload,
                    size_t len, int len_mode)
{
    size_t h = 0;
    out[h++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
    uint8_t m = masked ? 0x80 : 0;
    if (len_mode == 0 && len <= 125) {
        out[h++] = (uint8_t)(m | len);
    } else if (len_mode != 64 && len <= 0xffff) {
        out[h++] = m | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (masked) {
        memcpy(out + h, KEY, 4);
        h += 4;
    }
    if (len)
        memcpy(out + h, payload, len);
    if (masked)
        for (size_t i = 0; i < len; i++)
            out[h + i] ^= KEY[i & 3];
    return h + len;
}

/* What a connection would see: messages reassembled, control frames, and
 * how parsing ended. */
typedef struct {
    int rc;         /* last return: INCOMPLETE or ERROR */
    int close_code; /* parser's code after ERROR */
    int nmsg, nctl;
    int msg_opcode[8], msg_compressed[8];
    char msg[8][1 << 17];
    size_t msg_len[8];
    int ctl_opcode[8], ctl_code[8];
    char ctl[8][128];
    size_t ctl_len[8];
    size_t used; /* bytes consumed in total */
    int in_msg;
} trace;

static trace T, T2;

/* Feed s[0..n) to a fresh parser, `step` new bytes at a time (0 = all at
 * once); unconsumed bytes stay in front, as in a connection's read buffer. */
static void drive(trace *t, unsigned flags, uint64_t max, const uint8_t *s, size_t n, size_t step)
{
    static uint8_t work[1 << 18];
    memset(t, 0, sizeof *t);
    pn_ws_parser p;
    pn_ws_parser_init(&p, flags, max);
    size_t have = 0, off = 0; /* bytes arrived, bytes consumed */
    for (;;) {
        size_t next = step ? (n - have < step ? n : have + step) : n;
        int arrived = next > have;
        have = next;
        /* Parse until the parser wants more. */
        for (;;) {
            size_t live = have - off, used;
            memcpy(work, s + off, live);
            char *g = pn_guard_copy(work, live);
            pn_ws_event ev;
            int rc = pn_ws_parse(&p, g, live, &used, &ev);
            PN_CHECK(used <= live);
            off += used;
            t->used = off;
            if (rc == PN_WS_DATA) {
                PN_CHECK(ev.data >= g && ev.data + ev.len <= g + used);
                if (ev.first) {
                    PN_CHECK(!t->in_msg);
                    t->in_msg = 1;
                    if (t->nmsg < 8) {
                        t->msg_opcode[t->nmsg] = ev.opcode;
                        t->msg_compressed[t->nmsg] = ev.compressed;
                    }
                }
                PN_CHECK(t->in_msg);
                /* the first 8 messages are kept, later ones only counted */
                if (t->nmsg < 8) {
                    if (t->msg_len[t->nmsg] + ev.len <= sizeof t->msg[0])
                        memcpy(t->msg[t->nmsg] + t->msg_len[t->nmsg], ev.data, ev.len);
                    t->msg_len[t->nmsg] += ev.len;
                }
                if (ev.fin) {
                    t->in_msg = 0;
                    t->nmsg++;
                }
                continue;
            }
            if (rc == PN_WS_CONTROL) {
                int k = t->nctl++;
                if (k >= 8)
                    continue; /* counted, not kept */
                t->ctl_opcode[k] = ev.opcode;
                t->ctl_code[k] = ev.close_code;
                memcpy(t->ctl[k], ev.data, ev.len);
                t->ctl_len[k] = ev.len;
                if (ev.opcode == PN_WS_CLOSE && ev.close_code != 1005) {
                    PN_CHECK(ev.reason == ev.data + 2 && ev.reason_len == ev.len - 2);
                }
                continue;
            }
            t->rc = rc;
            if (rc == PN_WS_ERROR) {
                t->close_code = p.close_code;
                PN_CHECK(p.error_reason != NULL);
                return;
            }
            PN_CHECK_EQ_INT(rc, PN_WS_INCOMPLETE);
            break;
        }
        if (!arrived && have == n)
            return;
    }
}

/* A client stream (masked frames) to a server parser, parsed whole, byte by
 * byte and in 7-byte steps: all three must see the same thing. */
static void server_drive(unsigned flags, uint64_t max, const uint8_t *s, size_t n)
{
    drive(&T, PN_WS_SERVER | flags, max, s, n, 0);
    size_t steps[2] = {1, 7};
    for (int i = 0; i < 2; i++) {
        drive(&T2, PN_WS_SERVER | flags, max, s, n, steps[i]);
        PN_CHECK_EQ_INT(T2.rc, T.rc);
        PN_CHECK_EQ_INT(T2.close_code, T.close_code);
        PN_CHECK_EQ_INT(T2.nmsg, T.nmsg);
        PN_CHECK_EQ_INT(T2.nctl, T.nctl);
        for (int k = 0; k < T.nmsg && k < 8; k++) {
            PN_CHECK_EQ_INT(T2.msg_len[k], T.msg_len[k]);
            PN_CHECK(memcmp(T2.msg[k], T.msg[k],
                            T.msg_len[k] < sizeof T.msg[0] ? T.msg_len[k] : 0) == 0);
        }
    }
}

#define EXPECT_ERROR(code)                                                                         \
    do {                                                                                           \
        PN_CHECK_EQ_INT(T.rc, PN_WS_ERROR);                                                        \
        PN_CHECK_EQ_INT(T.close_code, code);                                                       \
    } while (0)

/* ---- RFC 6455 §5.7 examples ------------------------------------------- */

PN_TEST(rfc_examples)
{
    /* A single-frame masked text message "Hello". */
    static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                     0x7f, 0x9f, 0x4d, 0x51, 0x58};
    server_drive(0, 0, masked, sizeof masked);
    PN_CHECK_EQ_INT(T.rc, PN_WS_INCOMPLETE);
    PN_CHECK_EQ_INT(T.nmsg, 1);
    PN_CHECK_EQ_INT(T.msg_opcode[0], PN_WS_TEXT);
    PN_CHECK_SLICE(T.msg[0], T.msg_len[0], "Hello");
    PN_CHECK_EQ_INT(T.used, sizeof masked);

    /* Unmasked frames are what a client parser sees. */
    static const uint8_t unmasked[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    drive(&T, 0, 0, unmasked, sizeof unmasked, 0);
    PN_CHECK_EQ_INT(T.nmsg, 1);
    PN_CHECK_SLICE(T.msg[0], T.msg_len[0], "Hello");
    /* ... and a server must refuse them (§5.1). */
    drive(&T, PN_WS_SERVER, 0, unmasked, sizeof unmasked, 0);
    EXPECT_ERROR(1002);
    /* A client must refuse masked frames. */
    drive(&T, 0, 0, masked, sizeof masked, 0);
    EXPECT_ERROR(1002);

    /* Fragmented unmasked text "Hel" + "lo". */
    static const uint8_t frag[] = {0x01, 0x03, 'H', 'e', 'l', 0x80, 0x02, 'l', 'o'};
    drive(&T, 0, 0, frag, sizeof frag, 1);
    PN_CHECK_EQ_INT(T.nmsg, 1);
    PN_CHECK_SLICE(T.msg[0], T.msg_len[0], "Hello");

    /* Unmasked ping, masked pong, both "Hello". */
    static const uint8_t ping[] = {0x89, 0x05, 'H', 'e', 'l', 'l', 'o'};
    drive(&T, 0, 0, ping, sizeof ping, 0);
    PN_CHECK_EQ_INT(T.nctl, 1);
    PN_CHECK_EQ_INT(T.ctl_opcode[0], PN_WS_PING);
    PN_CHECK_SLICE(T.ctl[0], T.ctl_len[0], "Hello");
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    server_drive(0, 0, pong, sizeof pong);
    PN_CHECK_EQ_INT(T.ctl_opcode[0], PN_WS_PONG);
    PN_CHECK_SLICE(T.ctl[0], T.ctl_len[0], "Hello");

    /* 256 bytes and 64 KiB binary in one unmasked frame. */
    static uint8_t big[65536 + 16];
    static uint8_t payload[65536];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7);
    size_t n = frame(big, 1, 0, PN_WS_BINARY, 0, payload, 256, 0);
    PN_CHECK(big[1] == 0x7e && big[2] == 0x01 && big[3] == 0x00);
    drive(&T, 0, 0, big, n, 0);
    PN_CHECK_EQ_INT(T.msg_len[0], 256);
    PN_CHECK(memcmp(T.msg[0], payload, 256) == 0);
    n = frame(big, 1, 0, PN_WS_BINARY, 0, payload, 65536, 0);
    PN_CHECK(big[1] == 0x7f && big[7] == 0x01 && big[8] == 0 && big[9] == 0);
    drive(&T, 0, 0, big, n, 0);
    PN_CHECK_EQ_INT(T.msg_len[0], 65536);
    PN_CHECK(memcmp(T.msg[0], payload, 65536) == 0);
}

/* ---- framing: lengths (Autobahn 1.x) ---------------------------------- */

PN_TEST(payload_lengths_and_encodings)
{
    static uint8_t buf[70000 + 14], payload[70000];
    static const size_t lens[] = {0,   1,   7,   8,     9,     124,   125,
                                  126, 127, 128, 65535, 65536, 65537, 70000};
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 31 + 5);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        for (int mode = 0; mode <= 64; mode += 16) {
            if (mode == 16 && lens[k] > 0xffff)
                continue;
            /* §5.2 asks senders for the shortest length; receivers accept
             * any, so 16- and 64-bit encodings of small lengths parse too. */
            size_t n = frame(buf, 1, 0, PN_WS_BINARY, 1, payload, lens[k], mode);
            drive(&T, PN_WS_SERVER, 0, buf, n, 0);
            PN_CHECK_EQ_INT(T.rc, PN_WS_INCOMPLETE);
            PN_CHECK_EQ_INT(T.nmsg, 1);
            PN_CHECK_EQ_INT(T.msg_len[0], lens[k]);
            PN_CHECK(memcmp(T.msg[0], payload, lens[k]) == 0);
            PN_CHECK_EQ_INT(T.used, n);
        }
    }
    /* Byte by byte and in odd steps, for a few. */
    size_t n = frame(buf, 1, 0, PN_WS_BINARY, 1, payload, 300, 0);
    server_drive(0, 0, buf, n);
    PN_CHECK_EQ_INT(T2.msg_len[0], 300);
    PN_CHECK(memcmp(T2.msg[0], payload, 300) == 0);
}

PN_TEST(length_msb_must_be_zero)
{
    uint8_t b[14] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    server_drive(0, 0, b, sizeof b);
    EXPECT_ERROR(1002);
    b[2] = 0x7f; /* huge but legal length: waits for payload */
    drive(&T, PN_WS_SERVER, 0, b, sizeof b, 0);
    PN_CHECK_EQ_INT(T.rc, PN_WS_INCOMPLETE);
}

/* ---- reserved bits and opcodes (Autobahn 3.x, 4.x) -------------------- */

PN_TEST(reserved_bits)
{
    uint8_t b[64];
    for (int rsv = 1; rsv < 8; rsv++) {
        int ops[] = {PN_WS_TEXT, PN_WS_BINARY, PN_WS_PING, PN_WS_PONG, PN_WS_CLOSE};
        for (int k = 0; k < 5; k++) {
            size_t n = frame(b, 1, rsv, ops[k], 1, "", 0, 0);
            server_drive(0, 0, b, n);
            EXPECT_ERROR(1002);
            /* With permessage-deflate only RSV1 on a data message's first
             * frame is allowed (RFC 7692 §6.1). */
            server_drive(PN_WS_DEFLATE, 0, b, n);
            if (rsv == 4 && ops[k] <= PN_WS_BINARY) {
                PN_CHECK_EQ_INT(T.rc, PN_WS_INCOMPLETE);
                PN_CHECK_EQ_INT(T.nmsg, 1);
                PN_CHECK_EQ_INT(T.msg_compressed[0], 1);
            } else {
                EXPECT_ERROR(1002);
            }
        }
    }
    /* RSV1 on a continuation frame, even with deflate. */
    size_t n = frame(b, 0, 4, PN_WS_TEXT, 1, "a", 1, 0);
    n += frame(b + n, 1, 4, PN_WS_CONT, 1, "b", 1, 0);
    server_drive(PN_WS_DEFLATE, 0, b, n);
    EXPECT_ERROR(1002);
    /* Without RSV1 the message is not compressed, even with deflate. */
    n = frame(b, 1, 0, PN_WS_TEXT, 1, "ab", 2, 0);
    server_drive(PN_WS_DEFLATE, 0, b, n);
    PN_CHECK_EQ_INT(T.msg_compressed[0], 0);
    /* A good frame before a bad one is still delivered. */
    n = frame(b, 1, 0, PN_WS_TEXT, 1, "ok", 2, 0);
    n += frame(b + n, 1, 2, PN_WS_TEXT, 1, "x", 1, 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.nmsg, 1);
    EXPECT_ERROR(1002);
}

PN_TEST(reserved_opcodes)
{
    uint8_t b[64];
    for (int op = 0; op < 16; op++) {
        /* a close frame needs a valid code: 0x03e8 = 1000 */
        size_t n = op == PN_WS_CLOSE ? frame(b, 1, 0, op, 1, "\x03\xe8", 2, 0)
                                     : frame(b, 1, 0, op, 1, "hi", 2, 0);
        server_drive(0, 0, b, n);
        if (op == PN_WS_TEXT || op == PN_WS_BINARY || op == PN_WS_PING || op == PN_WS_PONG ||
            op == PN_WS_CLOSE) {
            PN_CHECK_EQ_INT(T.rc, PN_WS_INCOMPLETE);
        } else {
            EXPECT_ERROR(1002); /* 0: continuation with no message; 3-7, B-F: reserved */
        }
    }
}

/* ---- control frames (Autobahn 2.x) ------------------------------------ */

PN_TEST(control_frame_rules)
{
    static uint8_t b[300], payload[200];
    memset(payload, 0xfe, sizeof payload);
    /* Ping payload 0 and 125 are fine; 126 is not (§5.5). */
    size_t n = frame(b, 1, 0, PN_WS_PING, 1, payload, 0, 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.nctl, 1);
    PN_CHECK_EQ_INT(T.ctl_len[0], 0);
    n = frame(b, 1, 0, PN_WS_PING, 1, payload, 125, 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.nctl, 1);
    PN_CHECK_EQ_INT(T.ctl_len[0], 125);
    PN_CHECK(memcmp(T.ctl[0], payload, 125) == 0);
    n = frame(b, 1, 0, PN_WS_PING, 1, payload, 126, 0);
    server_drive(0, 0, b, n);
    EXPECT_ERROR(1002);
    /* A control frame never needs an extended length (§5.5, and §5.2 asks
     * for the shortest encoding), so 126/127 in its length field fails at
     * once, even for a 125-byte payload. */
    n = frame(b, 1, 0, PN_WS_PONG, 1, payload, 125, 16);
    server_drive(0, 0, b, n);
    EXPECT_ERROR(1002);
    /* Fragmented control frames are not allowed either. */
    n = frame(b, 0, 0, PN_WS_PING, 1, payload, 5, 0);
    server_drive(0, 0, b, n);
    EXPECT_ERROR(1002);
    /* The error comes from the first two bytes alone, without the payload. */
    n = frame(b, 1, 0, PN_WS_PING, 1, payload, 126, 0);
    drive(&T, PN_WS_SERVER, 0, b, 2, 0);
    EXPECT_ERROR(1002);
    /* 10 pings in a row, then a pong. */
    n = 0;
    for (int i = 0; i < 7; i++)
        n += frame(b + n, 1, 0, PN_WS_PING, 1, payload, (size_t)i * 3, 0);
    n += frame(b + n, 1, 0, PN_WS_PONG, 1, "x", 1, 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.nctl, 8);
    PN_CHECK_EQ_INT(T.ctl_len[6], 18);
    PN_CHECK_EQ_INT(T.ctl_opcode[7], PN_WS_PONG);
}

/* ---- fragmentation (Autobahn 5.x) ------------------------------------- */

PN_TEST(fragmentation)
{
    uint8_t b[256];
    /* Text in three fragments with a ping and a pong between them. */
    size_t n = frame(b, 0, 0, PN_WS_TEXT, 1, "frag", 4, 0);
    n += frame(b + n, 1, 0, PN_WS_PING, 1, "p", 1, 0);
    n += frame(b + n, 0, 0, PN_WS_CONT, 1, "ment", 4, 0);
    n += frame(b + n, 1, 0, PN_WS_PONG, 1, "", 0, 0);
    n += frame(b + n, 1, 0, PN_WS_CONT, 1, "ed", 2, 0);
    n += frame(b + n, 1, 0, PN_WS_BINARY, 1, "next", 4, 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.rc, PN_WS_INCOMPLETE);
    PN_CHECK_EQ_INT(T.nmsg, 2);
    PN_CHECK_EQ_INT(T.nctl, 2);
    PN_CHECK_EQ_INT(T.msg_opcode[0], PN_WS_TEXT);
    PN_CHECK_SLICE(T.msg[0], T.msg_len[0], "fragmented");
    PN_CHECK_EQ_INT(T.msg_opcode[1], PN_WS_BINARY);
    PN_CHECK_SLICE(T.msg[1], T.msg_len[1], "next");

    /* Empty fragments, including an empty final one. */
    n = frame(b, 0, 0, PN_WS_TEXT, 1, "", 0, 0);
    n += frame(b + n, 0, 0, PN_WS_CONT, 1, "", 0, 0);
    n += frame(b + n, 1, 0, PN_WS_CONT, 1, "", 0, 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.nmsg, 1);
    PN_CHECK_EQ_INT(T.msg_len[0], 0);

    /* Continuation with nothing to continue (§5.4). */
    n = frame(b, 1, 0, PN_WS_CONT, 1, "x", 1, 0);
    server_drive(0, 0, b, n);
    EXPECT_ERROR(1002);
    n = frame(b, 1, 0, PN_WS_TEXT, 1, "done", 4, 0);
    n += frame(b + n, 1, 0, PN_WS_CONT, 1, "x", 1, 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.nmsg, 1);
    EXPECT_ERROR(1002);
    /* A new data message while one is in progress. */
    n = frame(b, 0, 0, PN_WS_TEXT, 1, "a", 1, 0);
    n += frame(b + n, 1, 0, PN_WS_TEXT, 1, "b", 1, 0);
    server_drive(0, 0, b, n);
    EXPECT_ERROR(1002);
    n = frame(b, 0, 0, PN_WS_BINARY, 1, "a", 1, 0);
    n += frame(b + n, 0, 0, PN_WS_BINARY, 1, "b", 1, 0);
    server_drive(0, 0, b, n);
    EXPECT_ERROR(1002);
}

/* ---- UTF-8 (Autobahn 6.x) --------------------------------------------- */

PN_TEST(utf8_in_text_messages)
{
    static const char kosme[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    size_t kn = sizeof kosme - 1;
    uint8_t b[256];
    /* Valid text split into two fragments at every byte boundary. */
    for (size_t cut = 0; cut <= kn; cut++) {
        size_t n = frame(b, 0, 0, PN_WS_TEXT, 1, kosme, cut, 0);
        n += frame(b + n, 1, 0, PN_WS_CONT, 1, kosme + cut, kn - cut, 0);
        server_drive(0, 0, b, n);
        PN_CHECK_EQ_INT(T.rc, PN_WS_INCOMPLETE);
        PN_CHECK_EQ_INT(T.nmsg, 1);
        PN_CHECK_SLICE(T.msg[0], T.msg_len[0], kosme);
    }
    /* One fragment per byte. */
    size_t n = 0;
    for (size_t i = 0; i < kn; i++)
        n += frame(b + n, i + 1 == kn, 0, i ? PN_WS_CONT : PN_WS_TEXT, 1, kosme + i, 1, 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.nmsg, 1);
    PN_CHECK_SLICE(T.msg[0], T.msg_len[0], kosme);

    /* Invalid text split at every boundary → 1007. */
    static const char bad[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
                              "edited";
    size_t bn = sizeof bad - 1;
    for (size_t cut = 0; cut <= bn; cut++) {
        n = frame(b, 0, 0, PN_WS_TEXT, 1, bad, cut, 0);
        n += frame(b + n, 1, 0, PN_WS_CONT, 1, bad + cut, bn - cut, 0);
        server_drive(0, 0, b, n);
        EXPECT_ERROR(1007);
        PN_CHECK_EQ_INT(T.nmsg, 0);
    }
    /* A text message that ends inside a code point. */
    n = frame(b, 1, 0, PN_WS_TEXT, 1, "\xe2\x82", 2, 0);
    server_drive(0, 0, b, n);
    EXPECT_ERROR(1007);
    n = frame(b, 0, 0, PN_WS_TEXT, 1, "\xe2\x82", 2, 0);
    n += frame(b + n, 1, 0, PN_WS_CONT, 1, "", 0, 0);
    server_drive(0, 0, b, n);
    EXPECT_ERROR(1007);
    /* Binary messages are not checked. */
    n = frame(b, 1, 0, PN_WS_BINARY, 1, "\xff\xfe", 2, 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.nmsg, 1);
    /* Compressed text is checked after inflating, by the caller. */
    n = frame(b, 1, 4, PN_WS_TEXT, 1, "\xff\xfe", 2, 0);
    server_drive(PN_WS_DEFLATE, 0, b, n);
    PN_CHECK_EQ_INT(T.nmsg, 1);

    /* Fail fast (Autobahn 6.4): the error comes as soon as the bad byte
     * arrives, before the rest of the frame. */
    static const char lead[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80";
    n = frame(b, 1, 0, PN_WS_TEXT, 1, lead, sizeof lead - 1, 0);
    n += 0;
    drive(&T, PN_WS_SERVER, 0, b, 2 + 4 + 13, 0); /* up to and including F4 90 */
    EXPECT_ERROR(1007);
    drive(&T, PN_WS_SERVER, 0, b, 2 + 4 + 12, 0); /* up to F4: still fine */
    PN_CHECK_EQ_INT(T.rc, PN_WS_INCOMPLETE);
}

/* ---- close frames (Autobahn 7.x) -------------------------------------- */

static size_t close_frame_bytes(uint8_t *b, int code, const char *reason, size_t rlen)
{
    uint8_t p[125];
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, reason, rlen);
    return frame(b, 1, 0, PN_WS_CLOSE, 1, p, 2 + rlen, 0);
}

PN_TEST(close_frames)
{
    uint8_t b[256];
    /* Empty close: code 1005 reported (§7.1.5). */
    size_t n = frame(b, 1, 0, PN_WS_CLOSE, 1, "", 0, 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.nctl, 1);
    PN_CHECK_EQ_INT(T.ctl_code[0], 1005);
    /* A 1-byte payload cannot hold a code. */
    n = frame(b, 1, 0, PN_WS_CLOSE, 1, "\x03", 1, 0);
    server_drive(0, 0, b, n);
    EXPECT_ERROR(1002);
    /* Valid codes (§7.4.1, §7.4.2, IANA registry). */
    static const int valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    for (size_t k = 0; k < sizeof valid / sizeof valid[0]; k++) {
        n = close_frame_bytes(b, valid[k], "bye", 3);
        server_drive(0, 0, b, n);
        PN_CHECK_EQ_INT(T.rc, PN_WS_INCOMPLETE);
        PN_CHECK_EQ_INT(T.nctl, 1);
        PN_CHECK_EQ_INT(T.ctl_code[0], valid[k]);
        PN_CHECK_EQ_INT(pn_ws_close_code_valid(valid[k]), 1);
    }
    static const int invalid[] = {0,    999,  1004, 1005, 1006, 1015,
                                  1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t k = 0; k < sizeof invalid / sizeof invalid[0]; k++) {
        n = close_frame_bytes(b, invalid[k], "", 0);
        server_drive(0, 0, b, n);
        EXPECT_ERROR(1002);
        PN_CHECK_EQ_INT(pn_ws_close_code_valid(invalid[k]), 0);
    }
    /* Reason: 123 bytes of UTF-8 fine; invalid UTF-8 is 1007. */
    char reason[123];
    memset(reason, 'r', sizeof reason);
    n = close_frame_bytes(b, 1000, reason, 123);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.ctl_len[0], 125);
    n = close_frame_bytes(b, 1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.nctl, 1);
    n = close_frame_bytes(b, 1000, "ok\xed\xa0\x80", 5);
    server_drive(0, 0, b, n);
    EXPECT_ERROR(1007);
    /* Everything after a close frame is ignored (§1.4, §5.5.1). */
    n = close_frame_bytes(b, 1000, "", 0);
    n += frame(b + n, 1, 0, PN_WS_TEXT, 1, "late", 4, 0);
    n += frame(b + n, 1, 7, 15, 1, "bad", 3, 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.rc, PN_WS_INCOMPLETE);
    PN_CHECK_EQ_INT(T.nmsg, 0);
    PN_CHECK_EQ_INT(T.used, n);
    /* A close frame between fragments ends things too. */
    n = frame(b, 0, 0, PN_WS_TEXT, 1, "part", 4, 0);
    n += close_frame_bytes(b + n, 1001, "", 0);
    server_drive(0, 0, b, n);
    PN_CHECK_EQ_INT(T.nctl, 1);
    PN_CHECK_EQ_INT(T.ctl_code[0], 1001);
}

/* ---- limits (Autobahn 9.x) -------------------------------------------- */

PN_TEST(message_size_limit)
{
    static uint8_t b[1024], payload[200];
    memset(payload, 'x', sizeof payload);
    size_t n = frame(b, 1, 0, PN_WS_TEXT, 1, payload, 100, 0);
    server_drive(0, 100, b, n);
    PN_CHECK_EQ_INT(T.nmsg, 1);
    n = frame(b, 1, 0, PN_WS_TEXT, 1, payload, 101, 0);
    server_drive(0, 100, b, n);
    EXPECT_ERROR(1009);
    /* Decided from the header: only the header bytes are needed. */
    drive(&T, PN_WS_SERVER, 100, b, 8, 0);
    EXPECT_ERROR(1009);
    /* A fragmented message is limited as a whole. */
    n = frame(b, 0, 0, PN_WS_BINARY, 1, payload, 60, 0);
    n += frame(b + n, 1, 0, PN_WS_CONT, 1, payload, 40, 0);
    server_drive(0, 100, b, n);
    PN_CHECK_EQ_INT(T.nmsg, 1);
    n = frame(b, 0, 0, PN_WS_BINARY, 1, payload, 60, 0);
    n += frame(b + n, 1, 0, PN_WS_CONT, 1, payload, 41, 0);
    server_drive(0, 100, b, n);
    EXPECT_ERROR(1009);
    PN_CHECK_EQ_INT(T.nmsg, 0);
    /* The limit is per message, not per connection; control frames are
     * outside it. */
    n = 0;
    for (int i = 0; i < 3; i++)
        n += frame(b + n, 1, 0, PN_WS_BINARY, 1, payload, 100, 0);
    n += frame(b + n, 1, 0, PN_WS_PING, 1, payload, 125, 0);
    server_drive(0, 100, b, n);
    PN_CHECK_EQ_INT(T.nmsg, 3);
    PN_CHECK_EQ_INT(T.nctl, 1);
    /* A 2^63-1 byte frame with no limit just waits; with one it fails. */
    uint8_t h[14] = {0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
    drive(&T, PN_WS_SERVER, 0, h, sizeof h, 0);
    PN_CHECK_EQ_INT(T.rc, PN_WS_INCOMPLETE);
    drive(&T, PN_WS_SERVER, 16 << 20, h, sizeof h, 0);
    EXPECT_ERROR(1009);
}

/* ---- events as the runtime uses them ---------------------------------- */

PN_TEST(event_fields_and_zero_copy)
{
    uint8_t b[64];
    size_t n = frame(b, 1, 0, PN_WS_TEXT, 1, "whole", 5, 0);
    char *g = pn_guard_copy(b, n);
    pn_ws_parser p;
    pn_ws_parser_init(&p, PN_WS_SERVER, 0);
    pn_ws_event ev;
    size_t used;
    PN_CHECK_EQ_INT(pn_ws_parse(&p, g, n, &used, &ev), PN_WS_DATA);
    PN_CHECK(ev.first && ev.fin && ev.data == g + 6 && ev.frame_left == 0);
    PN_CHECK_SLICE(ev.data, ev.len, "whole");
    PN_CHECK_EQ_INT(used, n);
    PN_CHECK_EQ_INT(pn_ws_parse(&p, g + n, 0, &used, &ev), PN_WS_INCOMPLETE);

    /* Partial payload: piece now, frame_left says how much more. */
    n = frame(b, 1, 0, PN_WS_BINARY, 1, "0123456789", 10, 0);
    g = pn_guard_copy(b, 9);
    PN_CHECK_EQ_INT(pn_ws_parse(&p, g, 9, &used, &ev), PN_WS_DATA);
    PN_CHECK(ev.first && !ev.fin && ev.len == 3 && ev.frame_left == 7);
    PN_CHECK_SLICE(ev.data, ev.len, "012");
    PN_CHECK_EQ_INT(used, 9);
    g = pn_guard_copy(b + 9, n - 9);
    PN_CHECK_EQ_INT(pn_ws_parse(&p, g, n - 9, &used, &ev), PN_WS_DATA);
    PN_CHECK(!ev.first && ev.fin && ev.len == 7 && ev.frame_left == 0);
    PN_CHECK_EQ_INT(ev.opcode, PN_WS_BINARY);
    PN_CHECK_SLICE(ev.data, ev.len, "3456789");

    /* After an error the parser stays failed. */
    n = frame(b, 1, 0, 3, 1, "", 0, 0);
    g = pn_guard_copy(b, n);
    PN_CHECK_EQ_INT(pn_ws_parse(&p, g, n, &used, &ev), PN_WS_ERROR);
    PN_CHECK_EQ_INT(pn_ws_parse(&p, g, n, &used, &ev), PN_WS_ERROR);
    PN_CHECK_EQ_INT(p.close_code, 1002);
}

/* Many frames, parsed with every chunking from a PRNG: same messages. */
PN_TEST(random_chunking)
{
    static uint8_t stream[8192];
    size_t n = 0;
    uint32_t seed = 12345;
#define RND() (seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
    static const char text[] = "d\xc3\xa9j\xc3\xa0 vu \xe2\x82\xac \xf0\x9f\x98\x80 end";
    size_t tn = sizeof text - 1;
    for (int m = 0; m < 20; m++) {
        size_t cut = RND() % (tn + 1);
        n += frame(stream + n, 0, 0, PN_WS_TEXT, 1, text, cut, 0);
        if (RND() & 1)
            n += frame(stream + n, 1, 0, PN_WS_PING, 1, "ping", 4, 0);
        n += frame(stream + n, 1, 0, PN_WS_CONT, 1, text + cut, tn - cut, RND() % 2 ? 16 : 0);
    }
    drive(&T, PN_WS_SERVER, 0, stream, n, 0);
    PN_CHECK_EQ_INT(T.nmsg, 20);
    for (size_t step = 1; step < 40; step += 3) {
        drive(&T2, PN_WS_SERVER, 0, stream, n, step);
        PN_CHECK_EQ_INT(T2.rc, PN_WS_INCOMPLETE);
        PN_CHECK_EQ_INT(T2.used, n);
        for (int k = 0; k < 8; k++)
            PN_CHECK_SLICE(T2.msg[k], T2.msg_len[k], text);
    }
#undef RND
}

/* ---- masking ----------------------------------------------------------- */

PN_TEST(mask_matches_bytewise)
{
    static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t src[200], want[200];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 13 + 1);
    for (size_t len = 0; len <= 130; len++) {
        for (uint64_t off = 0; off < 8; off++) {
            for (size_t i = 0; i < len; i++)
                want[i] = src[i] ^ key[(off + i) & 3];
            /* guard copy: the data ends at the guard page, at any alignment */
            char *g = pn_guard_copy(src, len);
            pn_ws_mask(g, len, key, off);
            PN_CHECK(memcmp(g, want, len) == 0);
        }
    }
}

/* ---- writer ------------------------------------------------------------ */

PN_TEST(frame_header_writer)
{
    uint8_t h[PN_WS_MAX_HEADER];
    PN_CHECK_EQ_INT(pn_ws_frame_header(h, PN_WS_TEXT, 1, 0, 0), 2);
    PN_CHECK(h[0] == 0x81 && h[1] == 0);
    PN_CHECK_EQ_INT(pn_ws_frame_header(h, PN_WS_BINARY, 1, 1, 125), 2);
    PN_CHECK(h[0] == 0xc2 && h[1] == 125);
    PN_CHECK_EQ_INT(pn_ws_frame_header(h, PN_WS_BINARY, 0, 0, 126), 4);
    PN_CHECK(h[0] == 0x02 && h[1] == 126 && h[2] == 0 && h[3] == 126);
    PN_CHECK_EQ_INT(pn_ws_frame_header(h, PN_WS_CONT, 1, 0, 65535), 4);
    PN_CHECK(h[0] == 0x80 && h[2] == 0xff && h[3] == 0xff);
    PN_CHECK_EQ_INT(pn_ws_frame_header(h, PN_WS_TEXT, 1, 0, 65536), 10);
    static const uint8_t w64[] = {0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0};
    PN_CHECK(memcmp(h, w64, 10) == 0);
    PN_CHECK_EQ_INT(pn_ws_frame_header(h, PN_WS_TEXT, 1, 0, 0x123456789aull), 10);
    static const uint8_t w5[] = {0x81, 127, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x9a};
    PN_CHECK(memcmp(h, w5, 10) == 0);

    /* What we write, a client parser reads back. */
    static uint8_t out[70000 + 10], payload[70000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)i;
    static const size_t lens[] = {0, 5, 125, 126, 65535, 65536, 70000};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t hl = pn_ws_frame_header(out, PN_WS_BINARY, 1, 0, lens[k]);
        memcpy(out + hl, payload, lens[k]);
        drive(&T, 0, 0, out, hl + lens[k], 0);
        PN_CHECK_EQ_INT(T.nmsg, 1);
        PN_CHECK_EQ_INT(T.msg_len[0], lens[k]);
        PN_CHECK(memcmp(T.msg[0], payload, lens[k]) == 0);
    }
}

PN_TEST(control_and_close_writers)
{
    uint8_t f[PN_WS_MAX_CONTROL_FRAME];
    char big[126];
    memset(big, 'p', sizeof big);
    PN_CHECK_EQ_INT(pn_ws_control_frame(f, PN_WS_PONG, big, 125), 127);
    PN_CHECK(f[0] == 0x8a && f[1] == 125 && f[126] == 'p');
    PN_CHECK_EQ_INT(pn_ws_control_frame(f, PN_WS_PONG, big, 126), 0);
    PN_CHECK_EQ_INT(pn_ws_close_frame(f, 1000, "", 0), 4);
    static const uint8_t c1000[] = {0x88, 2, 0x03, 0xe8};
    PN_CHECK(memcmp(f, c1000, 4) == 0);
    PN_CHECK_EQ_INT(pn_ws_close_frame(f, 4001, "bye", 3), 7);
    PN_CHECK(f[2] == 0x0f && f[3] == 0xa1 && f[4] == 'b');
    PN_CHECK_EQ_INT(pn_ws_close_frame(f, 1000, big, 123), 127);
    PN_CHECK_EQ_INT(pn_ws_close_frame(f, 1000, big, 124), 0);
    PN_CHECK_EQ_INT(pn_ws_close_frame(f, 1005, "", 0), 0);
    PN_CHECK_EQ_INT(pn_ws_close_frame(f, 1006, "", 0), 0);
    PN_CHECK_EQ_INT(pn_ws_close_frame(f, 999, "", 0), 0);
    PN_CHECK_EQ_INT(pn_ws_close_frame(f, 1000, "\xff", 1), 0);
}

int main(void)
{
    PN_RUN(rfc_examples);
    PN_RUN(payload_lengths_and_encodings);
    PN_RUN(length_msb_must_be_zero);
    PN_RUN(reserved_bits);
    PN_RUN(reserved_opcodes);
    PN_RUN(control_frame_rules);
    PN_RUN(fragmentation);
    PN_RUN(utf8_in_text_messages);
    PN_RUN(close_frames);
    PN_RUN(message_size_limit);
    PN_RUN(event_fields_and_zero_copy);
    PN_RUN(random_chunking);
    PN_RUN(mask_matches_bytewise);
    PN_RUN(frame_header_writer);
    PN_RUN(control_and_close_writers);
    return pn_test_summary();
}
