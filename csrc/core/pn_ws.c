/*
 * pn_ws — WebSocket frame parser and writer.  See pn_ws.h for the contract.
 *
 * Frame layout (RFC 6455 §5.2):
 *   byte 0: FIN, RSV1, RSV2, RSV3, opcode (4 bits)
 *   byte 1: MASK, payload length (7 bits: 0-125, 126 → 16-bit, 127 → 64-bit)
 *   then the extended length (network order), then the 4-byte masking key.
 */
#include "pn_ws.h"

#include <string.h>

static int is_control(int opcode)
{
    return (opcode & 0x8) != 0;
}

static int fail(pn_ws_parser *p, int code, const char *why)
{
    p->close_code = code;
    p->error_reason = why;
    return PN_WS_ERROR;
}

void pn_ws_parser_init(pn_ws_parser *p, unsigned flags, uint64_t max_message)
{
    memset(p, 0, sizeof *p);
    p->flags = flags;
    p->max_message = max_message;
    pn_utf8_init(&p->utf8);
}

int pn_ws_close_code_valid(int code)
{
    if (code >= 1000 && code <= 1003)
        return 1;
    if (code >= 1007 && code <= 1014)
        return 1;
    return code >= 3000 && code <= 4999;
}

void pn_ws_mask(void *data, size_t len, const uint8_t key[4], uint64_t offset)
{
    uint8_t *d = data;
    /* The key repeated, rotated so that its first byte applies to d[0]. */
    uint8_t k8[8];
    for (int i = 0; i < 8; i++)
        k8[i] = key[(offset + (uint64_t)i) & 3];
    uint64_t k;
    memcpy(&k, k8, 8);
    size_t i = 0;
    for (; len - i >= 32; i += 32) {
        uint64_t a, b, c, e;
        memcpy(&a, d + i, 8);
        memcpy(&b, d + i + 8, 8);
        memcpy(&c, d + i + 16, 8);
        memcpy(&e, d + i + 24, 8);
        a ^= k;
        b ^= k;
        c ^= k;
        e ^= k;
        memcpy(d + i, &a, 8);
        memcpy(d + i + 8, &b, 8);
        memcpy(d + i + 16, &c, 8);
        memcpy(d + i + 24, &e, 8);
    }
    for (; len - i >= 8; i += 8) {
        uint64_t a;
        memcpy(&a, d + i, 8);
        a ^= k;
        memcpy(d + i, &a, 8);
    }
    for (; i < len; i++)
        d[i] ^= k8[i & 7];
}

/* Validate a received close frame's payload (§5.5.1, §7.4) and fill the
 * event.  Returns PN_WS_CONTROL or PN_WS_ERROR. */
static int close_payload(pn_ws_parser *p, pn_ws_event *ev)
{
    if (ev->len == 0) {
        ev->close_code = PN_WS_CLOSE_NO_STATUS; /* §7.1.5 */
        return PN_WS_CONTROL;
    }
    if (ev->len == 1)
        return fail(p, PN_WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload");
    const uint8_t *d = (const uint8_t *)ev->data;
    int code = (d[0] << 8) | d[1];
    if (!pn_ws_close_code_valid(code))
        return fail(p, PN_WS_CLOSE_PROTOCOL, "invalid close code");
    /* §5.5.1: the reason is UTF-8; §8.1: invalid UTF-8 fails the connection. */
    if (pn_utf8_valid(d + 2, ev->len - 2) != 0)
        return fail(p, PN_WS_CLOSE_INVALID_DATA, "close reason is not UTF-8");
    ev->close_code = code;
    ev->reason = ev->data + 2;
    ev->reason_len = ev->len - 2;
    return PN_WS_CONTROL;
}

/* Take one frame header at b[0..n).  Returns PN_WS_INCOMPLETE (need more; no
 * state changed), PN_WS_ERROR, or PN_WS_DATA with *hlen and *plen set. */
static int frame_header(pn_ws_parser *p, const uint8_t *b, size_t n, size_t *hlen, uint64_t *plen)
{
    if (n < 2)
        return PN_WS_INCOMPLETE;
    int fin = b[0] >> 7, rsv1 = (b[0] >> 6) & 1, opcode = b[0] & 0xf;
    int masked = b[1] >> 7;
    uint64_t len7 = b[1] & 0x7f;
    /* Everything that the first two bytes decide is checked before waiting
     * for the rest, so a bad frame fails as early as possible. */
    if (b[0] & 0x30) /* §5.2: RSV2/RSV3 without an extension that defines them */
        return fail(p, PN_WS_CLOSE_PROTOCOL, "reserved bit set");
    if (opcode > PN_WS_BINARY && opcode != PN_WS_CLOSE && opcode != PN_WS_PING &&
        opcode != PN_WS_PONG) /* §5.2: reserved opcodes */
        return fail(p, PN_WS_CLOSE_PROTOCOL, "reserved opcode");
    if (masked != ((p->flags & PN_WS_SERVER) ? 1 : 0)) /* §5.1 */
        return fail(p, PN_WS_CLOSE_PROTOCOL,
                    masked ? "masked frame from server" : "unmasked frame from client");
    if (is_control(opcode)) {
        if (!fin) /* §5.5: control frames are not fragmented */
            return fail(p, PN_WS_CLOSE_PROTOCOL, "fragmented control frame");
        if (len7 > 125) /* §5.5 */
            return fail(p, PN_WS_CLOSE_PROTOCOL, "control frame payload over 125 bytes");
        if (rsv1) /* RFC 7692 §6.1: never on control frames */
            return fail(p, PN_WS_CLOSE_PROTOCOL, "reserved bit set on a control frame");
    } else if (opcode == PN_WS_CONT) {
        if (!p->msg_opcode) /* §5.4 */
            return fail(p, PN_WS_CLOSE_PROTOCOL, "continuation frame without a message");
        if (rsv1) /* RFC 7692 §6.1: RSV1 only on the first frame */
            return fail(p, PN_WS_CLOSE_PROTOCOL, "reserved bit set on a continuation frame");
    } else {
        if (p->msg_opcode) /* §5.4: fragments of one message are not interleaved */
            return fail(p, PN_WS_CLOSE_PROTOCOL, "new message inside a fragmented message");
        if (rsv1 && !(p->flags & PN_WS_DEFLATE)) /* §5.2 */
            return fail(p, PN_WS_CLOSE_PROTOCOL, "reserved bit set");
    }
    size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0);
    if (n < need)
        return PN_WS_INCOMPLETE;
    uint64_t len = len7;
    if (len7 == 126) {
        len = ((uint64_t)b[2] << 8) | b[3];
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | b[2 + i];
        if (len >> 63) /* §5.2: the most significant bit MUST be 0 */
            return fail(p, PN_WS_CLOSE_PROTOCOL, "64-bit payload length with the top bit set");
    }
    /* The encoding need not be minimal: §5.2 says "the minimal number of
     * bytes MUST be used" for senders but gives receivers no rule to fail
     * on, and Autobahn accepts non-minimal lengths. */
    if (!is_control(opcode) && p->max_message &&
        len > p->max_message - (opcode == PN_WS_CONT ? p->msg_len : 0))
        return fail(p, PN_WS_CLOSE_TOO_BIG, "message too big");
    if (masked)
        memcpy(p->mask, b + need - 4, 4);
    else
        memset(p->mask, 0, 4);
    *hlen = need;
    *plen = len;
    return PN_WS_DATA;
}

int pn_ws_parse(pn_ws_parser *p, char *buf, size_t len, size_t *used, pn_ws_event *ev)
{
    size_t pos = 0;
    memset(ev, 0, sizeof *ev);
    *used = 0;
    if (p->close_code)
        return PN_WS_ERROR;
    if (p->closed) { /* §1.4: nothing after a close frame is processed */
        *used = len;
        return PN_WS_INCOMPLETE;
    }
    for (;;) {
        if (!p->in_frame) {
            const uint8_t *b = (const uint8_t *)buf + pos;
            size_t hlen;
            uint64_t plen;
            int rc = frame_header(p, b, len - pos, &hlen, &plen);
            if (rc != PN_WS_DATA) {
                *used = pos;
                return rc;
            }
            int opcode = b[0] & 0xf;
            if (is_control(opcode)) {
                /* Taken whole: at most 131 bytes, never fragmented. */
                if (len - pos - hlen < plen) {
                    *used = pos;
                    return PN_WS_INCOMPLETE;
                }
                ev->opcode = opcode;
                ev->data = buf + pos + hlen;
                ev->len = (size_t)plen;
                pn_ws_mask(ev->data, ev->len, p->mask, 0);
                *used = pos + hlen + (size_t)plen;
                if (opcode != PN_WS_CLOSE)
                    return PN_WS_CONTROL;
                rc = close_payload(p, ev);
                if (rc == PN_WS_CONTROL)
                    p->closed = 1;
                return rc;
            }
            if (opcode != PN_WS_CONT) {
                p->msg_opcode = opcode;
                p->msg_compressed = (b[0] >> 6) & 1;
                p->msg_started = 0;
                p->msg_len = 0;
                pn_utf8_init(&p->utf8);
            }
            p->frame_fin = b[0] >> 7;
            p->frame_left = plen;
            p->frame_off = 0;
            p->in_frame = 1;
            pos += hlen;
        }
        /* Payload of a data frame: hand over whatever of it is here. */
        size_t avail = len - pos;
        if (avail > p->frame_left)
            avail = (size_t)p->frame_left;
        int frame_done = avail == p->frame_left;
        int msg_done = frame_done && p->frame_fin;
        if (avail == 0 && !msg_done) {
            if (frame_done) { /* an empty non-final frame: nothing to report */
                p->in_frame = 0;
                continue;
            }
            *used = pos;
            return PN_WS_INCOMPLETE;
        }
        char *d = buf + pos;
        pn_ws_mask(d, avail, p->mask, p->frame_off);
        if (p->msg_opcode == PN_WS_TEXT && !p->msg_compressed) {
            /* §8.1: fail as soon as invalid UTF-8 is seen, and at the end of
             * the message when it stops inside a code point. */
            if (pn_utf8_feed(&p->utf8, d, avail) != 0 || (msg_done && pn_utf8_done(&p->utf8)))
                return fail(p, PN_WS_CLOSE_INVALID_DATA, "text message is not UTF-8");
        }
        p->frame_off += avail;
        p->frame_left -= avail;
        p->msg_len += avail;
        ev->opcode = p->msg_opcode;
        ev->first = !p->msg_started;
        ev->fin = msg_done;
        ev->compressed = p->msg_compressed;
        ev->data = d;
        ev->len = avail;
        ev->frame_left = p->frame_left;
        p->msg_started = 1;
        if (frame_done)
            p->in_frame = 0;
        if (msg_done)
            p->msg_opcode = 0;
        *used = pos + avail;
        return PN_WS_DATA;
    }
}

size_t pn_ws_frame_header(uint8_t *out, int opcode, int fin, int rsv1, uint64_t payload_len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0xf));
    if (payload_len <= 125) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    return 10;
}

size_t pn_ws_control_frame(uint8_t *out, int opcode, const void *payload, size_t len)
{
    if (len > 125)
        return 0;
    size_t h = pn_ws_frame_header(out, opcode, 1, 0, len);
    if (len)
        memcpy(out + h, payload, len);
    return h + len;
}

size_t pn_ws_close_frame(uint8_t *out, int code, const char *reason, size_t reason_len)
{
    if (!pn_ws_close_code_valid(code) || reason_len > 123 || pn_utf8_valid(reason, reason_len) != 0)
        return 0;
    uint8_t payload[125];
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    if (reason_len)
        memcpy(payload + 2, reason, reason_len);
    return pn_ws_control_frame(out, PN_WS_CLOSE, payload, 2 + reason_len);
}
