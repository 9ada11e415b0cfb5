/*
 * pn_ws_handshake — the server side of the WebSocket opening handshake
 * (RFC 6455 §4.2) and permessage-deflate negotiation (RFC 7692 §7.1).
 *
 * Protocol core: plain C, no Python.h.  Nothing here allocates; SHA-1 and
 * base64 are our own (no OpenSSL).
 *
 * Ownership and threads: works on a parsed request (pn_http1_request, whose
 * slices point into the connection's read buffer) and fills a caller-owned
 * pn_ws_handshake; only the worker thread owning the connection calls it.
 * No global state; every function is re-entrant.
 *
 * Per request:
 *
 *   pn_ws_handshake hs;
 *   switch (pn_ws_handshake_check(req, &policy, &hs)) {
 *   case PN_WS_HS_NOT_WEBSOCKET:   an ordinary HTTP request; go on as usual.
 *   case PN_WS_HS_ERROR:           answer hs.status (400, or 426 with the
 *                                  header "Sec-WebSocket-Version: 13" as
 *                                  RFC 6455 §4.2.2 asks) with the normal
 *                                  HTTP error path, and close.
 *   case PN_WS_HS_OK:              build the websocket scope; subprotocols
 *                                  come from pn_ws_protocols_next().  When
 *                                  the app accepts, send
 *                                  pn_ws_handshake_write_101() + the app's
 *                                  headers (pn_http1_check_header) + CRLF,
 *                                  then use hs.deflate for pn_ws_deflate_init()
 *                                  and PN_WS_DEFLATE in the frame parser.
 *   }
 *
 * A request is a WebSocket handshake when its Upgrade header lists
 * "websocket" (RFC 6455 §4.1 item 5; RFC 9110 §7.8): then every other rule
 * applies and a violation is an error, never a silent fallback to HTTP.
 */
#ifndef PN_WS_HANDSHAKE_H
#define PN_WS_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "pn_buf.h"
#include "pn_http1_parse.h"
#include "pn_ws_deflate.h"

enum {
    PN_WS_HS_OK = 0,
    PN_WS_HS_NOT_WEBSOCKET = 1,
    PN_WS_HS_ERROR = -1,
};

/* Longest Sec-WebSocket-Extensions value we produce, with room to spare. */
#define PN_WS_EXT_MAX 160

typedef struct pn_ws_handshake {
    char accept[29];                /* Sec-WebSocket-Accept value, NUL-terminated */
    pn_ws_deflate_params deflate;   /* enabled = 1 when permessage-deflate was agreed */
    char extensions[PN_WS_EXT_MAX]; /* response Sec-WebSocket-Extensions value */
    size_t extensions_len;          /* 0: send no such header */
    int status;                     /* on PN_WS_HS_ERROR: 400 or 426 */
    const char *reason;             /* on PN_WS_HS_ERROR: static text, for logs */
} pn_ws_handshake;

/* Check the upgrade request (RFC 6455 §4.2.1): GET, HTTP/1.1, Upgrade lists
 * websocket, Connection lists upgrade, exactly one Sec-WebSocket-Key that is
 * the base64 form of 16 bytes, Sec-WebSocket-Version 13 (otherwise 426),
 * Sec-WebSocket-Protocol a list of tokens, Sec-WebSocket-Extensions
 * well-formed (RFC 6455 §9.1).  On success computes the accept value and
 * negotiates permessage-deflate under `policy` (NULL = never). */
int pn_ws_handshake_check(const pn_http1_request *req, const pn_ws_deflate_policy *policy,
                          pn_ws_handshake *hs);

/* Iterate the subprotocols the client offered, in order, over all its
 * Sec-WebSocket-Protocol headers (valid only after PN_WS_HS_OK).  Each
 * token points into the request's buffer. */
typedef struct pn_ws_list_iter {
    const pn_http1_request *req;
    size_t header; /* index of the header being read */
    size_t pos;    /* pn_http_list_next's position in that header's value */
} pn_ws_list_iter;

void pn_ws_protocols_begin(pn_ws_list_iter *it, const pn_http1_request *req);
/* 1 with the token in (*tok, *len), or 0 at the end. */
int pn_ws_protocols_next(pn_ws_list_iter *it, const char **tok, size_t *len);

/* Append the status line and the WebSocket fields of the 101 response:
 * Upgrade, Connection, Sec-WebSocket-Accept, Sec-WebSocket-Protocol (when
 * subprotocol_len > 0) and Sec-WebSocket-Extensions (when agreed).  No final
 * CRLF: the caller adds the app's headers, then "\r\n".  Returns 0,
 * PN_WS_HS_ERROR when the subprotocol is not a token (RFC 6455 §4.1), or
 * -ENOMEM; nothing is appended on error. */
int pn_ws_handshake_write_101(pn_buf *out, const pn_ws_handshake *hs, const char *subprotocol,
                              size_t subprotocol_len);

/* Building blocks, exposed for tests. */
/* SHA-1 (FIPS 180-4) of p[0..n). */
void pn_sha1(const void *p, size_t n, uint8_t digest[20]);
/* Standard base64 with padding (RFC 4648 §4); writes 4*ceil(n/3) chars and a
 * NUL; returns the length without the NUL. */
size_t pn_base64_encode(const void *p, size_t n, char *out);
/* Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2 item 5.4): base64 of the
 * SHA-1 of key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11". */
void pn_ws_accept_key(const char *key, size_t key_len, char out[29]);

#endif
