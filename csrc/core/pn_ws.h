/*
 * pn_ws — WebSocket framing (RFC 6455 §5): an incremental frame parser for
 * the frames a peer sends, and a header writer for the frames we send.
 *
 * Protocol core: plain C, no Python.h.  Nothing here allocates.
 *
 * Ownership and threads: a pn_ws_parser belongs to one connection and so to
 * the one worker thread that owns the connection.  The parser keeps no
 * pointer into the caller's buffer between calls; it keeps only counters and
 * the current masking key, so the caller may compact or grow its read buffer
 * between calls.  No global state; every function is re-entrant.
 *
 * How a connection uses it (server side, after the 101 response):
 *
 *   pn_ws_parser_init(&c->ws, PN_WS_SERVER | (deflate ? PN_WS_DEFLATE : 0),
 *                     config->ws_max_size);
 *   on readable, with rb = the read buffer:
 *     for (;;) {
 *         size_t used;
 *         pn_ws_event ev;
 *         int rc = pn_ws_parse(&c->ws, pn_buf_head(rb), pn_buf_live(rb), &used, &ev);
 *         ... handle rc (below); ev.data points into rb and is valid until
 *             the caller consumes or moves those bytes ...
 *         pn_buf_consume(rb, used);
 *         if (rc == PN_WS_INCOMPLETE || rc == PN_WS_ERROR) break;
 *     }
 *
 *   PN_WS_DATA     payload bytes of the current data message, unmasked in
 *                  place: ev.data[0..ev.len).  ev.first marks the first piece
 *                  of a message, ev.fin the last (the message is complete;
 *                  ev.len may be 0 for an empty final frame).  ev.opcode is
 *                  the MESSAGE's opcode (PN_WS_TEXT or PN_WS_BINARY), also on
 *                  continuation frames.  When ev.first && ev.fin the whole
 *                  message is ev.data[0..ev.len) — the common case for small
 *                  messages: the bridge can build the bytes/str object straight
 *                  from the read buffer (zero copy).  Otherwise append the
 *                  pieces to a message buffer (ev.frame_left + ev.len tells
 *                  how much of this frame is still coming, for reserving).
 *                  Uncompressed text is already UTF-8 validated, across pieces
 *                  and frames; each piece ends wherever the bytes ended, not
 *                  necessarily on a code point boundary.
 *                  ev.compressed (permessage-deflate, RFC 7692 §6): the pieces
 *                  are deflate data.  Feed each to pn_ws_inflate() (fin =
 *                  ev.fin), then validate text output with pn_utf8_feed() /
 *                  pn_utf8_done() (1007 on failure).
 *   PN_WS_CONTROL  one whole control frame (they are never fragmented and
 *                  carry at most 125 bytes, §5.5); ev.opcode is PN_WS_PING,
 *                  PN_WS_PONG or PN_WS_CLOSE, ev.data/ev.len its unmasked
 *                  payload.  Control frames may arrive between the frames of
 *                  a fragmented message; the message goes on afterwards.
 *                    PING: answer with a PONG carrying the same payload
 *                          (§5.5.2; pn_ws_control_frame()).
 *                    PONG: keepalive bookkeeping only (§5.5.3).
 *                    CLOSE: ev.close_code (1005 when the frame had no code,
 *                          §7.1.5) and ev.reason/ev.reason_len (valid UTF-8).
 *                          Report the disconnect with that code, answer with a
 *                          close frame echoing the code (an empty payload
 *                          when 1005) unless we already sent one, then close
 *                          the TCP connection (§5.5.1, §7.1.1).  The parser
 *                          ignores every later byte (returns
 *                          PN_WS_INCOMPLETE and consumes them).
 *   PN_WS_INCOMPLETE  need more bytes; `used` may be > 0 (headers or pieces
 *                  already dealt with).  A frame header (at most 14 bytes) or
 *                  a control frame (at most 131 bytes) is only taken whole,
 *                  so the read buffer must keep at least 131 bytes of room.
 *   PN_WS_ERROR    the peer broke the protocol: _Fail the WebSocket
 *                  Connection_ (§7.1.7): send a close frame with
 *                  p->close_code (1002 protocol error, 1007 invalid UTF-8,
 *                  1009 message too big), stop reading, close.  Report
 *                  the disconnect to the app with code 1006 (the peer
 *                  never sent a close frame).  p->error_reason says why
 *                  (a static string, for logs).  Further calls keep
 *                  returning PN_WS_ERROR.
 *
 * Sending: pn_ws_frame_header() writes the 2..10 header bytes of a server
 * frame (never masked, §5.1), so that a message goes out as
 * writev({header, hlen}, {payload, len}) without copying the payload.
 */
#ifndef PN_WS_H
#define PN_WS_H

#include <stddef.h>
#include <stdint.h>

#include "pn_utf8.h"

/* Opcodes (RFC 6455 §5.2, §11.8). */
enum {
    PN_WS_CONT = 0x0,
    PN_WS_TEXT = 0x1,
    PN_WS_BINARY = 0x2,
    PN_WS_CLOSE = 0x8,
    PN_WS_PING = 0x9,
    PN_WS_PONG = 0xa,
};

/* Close codes we send or report (RFC 6455 §7.4.1). */
enum {
    PN_WS_CLOSE_NORMAL = 1000,
    PN_WS_CLOSE_GOING_AWAY = 1001, /* server shutting down */
    PN_WS_CLOSE_PROTOCOL = 1002,   /* protocol error */
    PN_WS_CLOSE_UNSUPPORTED = 1003,
    PN_WS_CLOSE_NO_STATUS = 1005,    /* reported only: close frame without code */
    PN_WS_CLOSE_ABNORMAL = 1006,     /* reported only: no close frame at all */
    PN_WS_CLOSE_INVALID_DATA = 1007, /* e.g. text that is not UTF-8 */
    PN_WS_CLOSE_POLICY = 1008,
    PN_WS_CLOSE_TOO_BIG = 1009,  /* message over the size limit */
    PN_WS_CLOSE_INTERNAL = 1011, /* server error (app raised) */
};

/* Return codes of pn_ws_parse(). */
enum {
    PN_WS_INCOMPLETE = 0,
    PN_WS_DATA = 1,
    PN_WS_CONTROL = 2,
    PN_WS_ERROR = -1,
};

/* Parser flags. */
enum {
    PN_WS_SERVER = 1u << 0,  /* we are the server: peer frames MUST be masked
                                (§5.1); without it they MUST NOT be */
    PN_WS_DEFLATE = 1u << 1, /* permessage-deflate negotiated: RSV1 allowed on
                                the first frame of a data message (RFC 7692 §6) */
};

/* Largest control frame on the wire: 2 header + 4 mask + 125 payload. */
#define PN_WS_MAX_CONTROL_FRAME 131
/* Largest frame header we write (server frames are not masked). */
#define PN_WS_MAX_HEADER 10

typedef struct pn_ws_event {
    int opcode;     /* DATA: the message's opcode; CONTROL: the frame's */
    int first, fin; /* DATA: first / last piece of the message */
    int compressed; /* DATA: message has RSV1 set (deflate data) */
    char *data;     /* unmasked payload bytes inside the caller's buffer */
    size_t len;
    uint64_t frame_left; /* DATA: payload bytes of this frame still to come */
    int close_code;      /* CONTROL CLOSE: received code, 1005 if none */
    const char *reason;  /* CONTROL CLOSE: reason text (inside data) */
    size_t reason_len;
} pn_ws_event;

typedef struct pn_ws_parser {
    /* configuration, set by pn_ws_parser_init */
    unsigned flags;       /* PN_WS_SERVER, PN_WS_DEFLATE */
    uint64_t max_message; /* payload bytes per message on the wire; 0 = no
                             limit.  Over it → 1009 (checked from the frame
                             header, before the payload arrives). */
    /* current frame (private) */
    int in_frame; /* a data frame header was taken; payload pending */
    int frame_fin;
    uint8_t mask[4];
    uint64_t frame_left; /* payload bytes still to come */
    uint64_t frame_off;  /* payload bytes already delivered (mask phase) */
    /* current message (private) */
    int msg_opcode; /* 0 when no message is in progress */
    int msg_compressed;
    int msg_started;  /* a DATA event went out for this message */
    uint64_t msg_len; /* wire payload bytes of the message so far */
    pn_utf8 utf8;     /* uncompressed text only */
    int closed;       /* a close frame was received */
    /* after PN_WS_ERROR */
    int close_code; /* 1002, 1007 or 1009 */
    const char *error_reason;
} pn_ws_parser;

void pn_ws_parser_init(pn_ws_parser *p, unsigned flags, uint64_t max_message);

/* Parse what buf[0..len) holds; see the top of this file.  buf is written:
 * payload is unmasked in place.  *used is always set (≤ len). */
int pn_ws_parse(pn_ws_parser *p, char *buf, size_t len, size_t *used, pn_ws_event *ev);

/* XOR data[0..len) with the 4-byte key, starting at key phase `offset`
 * (the payload offset of data[0] within its frame).  Masking and unmasking
 * are the same operation (§5.3).  Eight bytes per step. */
void pn_ws_mask(void *data, size_t len, const uint8_t key[4], uint64_t offset);

/* Write the header of an unmasked frame with the given opcode, FIN and RSV1
 * bits and payload length into out (≥ PN_WS_MAX_HEADER bytes); returns its
 * length (2, 4 or 10).  The shortest length encoding is used (§5.2). */
size_t pn_ws_frame_header(uint8_t *out, int opcode, int fin, int rsv1, uint64_t payload_len);

/* A whole control frame (header + payload ≤ 125 bytes) into out (≥
 * PN_WS_MAX_CONTROL_FRAME bytes).  Returns its length, or 0 when len > 125. */
size_t pn_ws_control_frame(uint8_t *out, int opcode, const void *payload, size_t len);

/* Close frame payload (§5.5.1): 2-byte code + reason.  Returns the frame
 * length, or 0 when the code may not be sent or the reason is over 123 bytes
 * or not UTF-8 (the bridge reports that to the app as an error). */
size_t pn_ws_close_frame(uint8_t *out, int code, const char *reason, size_t reason_len);

/* May this code appear in a close frame on the wire (§7.4)?  1000-1003,
 * 1007-1014 (1012-1014 are in the IANA registry, §11.7) and 3000-4999;
 * never 1004 (reserved), 1005/1006/1015 (local-only). */
int pn_ws_close_code_valid(int code);

#endif
