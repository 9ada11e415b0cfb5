/*
 * pn_http1_write — HTTP/1.1 response serialisation (RFC 9112 §4, §6, §7).
 *
 * Protocol core: plain C, no Python.h.
 *
 * Ownership and threads: a pn_http1_response lives in one connection and is
 * touched only by the worker thread that owns it.  Output goes into a pn_buf
 * owned by the caller.  No global mutable state: the Date cache is a struct
 * the caller owns (one per worker).
 *
 * Use, per response:
 *   pn_http1_resp_init()         once, when the response starts
 *   pn_http1_resp_header()       for each application header (validated)
 *   pn_http1_resp_finish_head()  adds Date/Server/framing/Connection + CRLF
 *   pn_http1_resp_body_frame()   per body piece: returns the framing bytes to
 *                                send around the payload (chunk size line,
 *                                CRLF, last-chunk) so that the caller can
 *                                writev(prefix, payload, suffix) without
 *                                copying the payload.
 *
 * Framing decision (finish_head): an application Content-Length wins (it is
 * validated: digits only; a second, different one is an error); otherwise
 * when the whole body is already known (known_body_len >= 0) we send
 * Content-Length; otherwise chunked for HTTP/1.1 and close-delimited for
 * HTTP/1.0.  1xx/204/304 responses and responses to HEAD carry no body
 * (RFC 9110 §6.4.1): payload passed for them is swallowed, not sent.  An
 * application Transfer-Encoding header is dropped; the server owns framing.
 *
 * Trailers (RFC 9112 §7.1.2): a chunked body may end with a trailer section
 * instead of the bare last-chunk: send the body's pieces as not final, then
 * pn_http1_resp_trailers() in place of the final piece.  Only when the
 * request said it can take them (pn_http1_accepts_trailers()).
 */
#ifndef PN_HTTP1_WRITE_H
#define PN_HTTP1_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pn_buf.h"
#include "pn_http1_parse.h"

enum {
    PN_WRITE_OK = 0,
    PN_WRITE_NOMEM = -1,
    PN_WRITE_BAD_HEADER = -2, /* name not a token, or CR/LF/NUL/CTL in value */
    PN_WRITE_BAD_STATUS = -3, /* status outside 200..599 */
    PN_WRITE_BAD_LENGTH = -4, /* malformed or conflicting Content-Length */
    PN_WRITE_TOO_MUCH = -5,   /* body longer than the declared Content-Length */
    PN_WRITE_TOO_LITTLE = -6, /* final body shorter than declared: must close */
};

/* Response flags. */
enum {
    PN_RESP_HEAD_REQUEST = 1u << 0,   /* request method was HEAD */
    PN_RESP_KEEP_ALIVE = 1u << 1,     /* request allows a persistent connection */
    PN_RESP_CLOSE = 1u << 2,          /* connection closes after this response
                                         (app said Connection: close, HTTP/1.0
                                         close-delimited body, or caller asked) */
    PN_RESP_CHUNKED = 1u << 3,        /* body is sent chunked */
    PN_RESP_NO_BODY = 1u << 4,        /* HEAD, 1xx, 204, 304: never send payload */
    PN_RESP_HAS_CL = 1u << 5,         /* Content-Length header is (being) sent */
    PN_RESP_APP_DATE = 1u << 6,       /* app supplied Date */
    PN_RESP_APP_SERVER = 1u << 7,     /* app supplied Server */
    PN_RESP_APP_CONNECTION = 1u << 8, /* app supplied a Connection header */
    PN_RESP_HEAD_DONE = 1u << 9,      /* finish_head was called */
    PN_RESP_FINISHED = 1u << 10,      /* final body frame produced */
    PN_RESP_APP_CLOSE = 1u << 11,     /* the app's Connection header carried
                                         "close": finish_head adds no second one */
};

typedef struct pn_http1_response {
    int status;
    int version_minor;       /* of the request: 0 or 1 */
    unsigned flags;          /* PN_RESP_* */
    uint64_t content_length; /* when PN_RESP_HAS_CL */
    uint64_t body_sent;      /* payload bytes accounted so far (not counting framing) */
} pn_http1_response;

typedef struct pn_http1_head_opts {
    const char *date;   /* 29-byte IMF-fixdate from pn_date_get(), or NULL = no Date */
    const char *server; /* Server header value, or NULL = no Server header */
} pn_http1_head_opts;

/* flags: PN_RESP_HEAD_REQUEST and/or PN_RESP_KEEP_ALIVE and/or PN_RESP_CLOSE.
 * Returns PN_WRITE_BAD_STATUS for a status outside 200..599 (r untouched). */
int pn_http1_resp_init(pn_http1_response *r, int status, int version_minor, unsigned flags);

/* Append "HTTP/1.1 <status> <reason>\r\n" then nothing else; call first. */
int pn_http1_resp_start(pn_buf *out, pn_http1_response *r);

/* Validate and append one application header.  Names are sent as given
 * (lowercase is fine on the wire).  Content-Length is parsed and recorded,
 * Transfer-Encoding is dropped, Connection: close sets PN_RESP_CLOSE.
 * On error nothing is appended. */
int pn_http1_resp_header(pn_buf *out, pn_http1_response *r, const char *name, size_t name_len,
                         const char *value, size_t value_len);

/* The app's Content-Length no longer describes the payload (the server
 * content-codes the body): forget it, so that finish_head frames the body
 * itself.  Only for a head whose Content-Length line the caller kept out of
 * `out` (call before finish_head). */
void pn_http1_resp_forget_length(pn_http1_response *r);

/* Validation alone (0 = ok, PN_WRITE_BAD_HEADER otherwise). */
int pn_http1_check_header(const char *name, size_t name_len, const char *value, size_t value_len);

/* Finish the head: Date and Server (unless the app sent them or opts says
 * NULL), the framing header (Content-Length: known_body_len when no app
 * Content-Length and known_body_len >= 0; else Transfer-Encoding: chunked on
 * HTTP/1.1; else close-delimited), "Connection: close" when closing (or
 * "Connection: keep-alive" for a persistent HTTP/1.0 response), then CRLF. */
int pn_http1_resp_finish_head(pn_buf *out, pn_http1_response *r, const pn_http1_head_opts *opts,
                              int64_t known_body_len);

typedef struct pn_http1_frame {
    char prefix[24]; /* e.g. "1a2b\r\n" for a chunk; empty otherwise */
    size_t prefix_len;
    char suffix[8]; /* "\r\n" after a chunk, + "0\r\n\r\n" when final */
    size_t suffix_len;
    size_t send_len; /* payload bytes to send (0 for NO_BODY responses) */
} pn_http1_frame;

/* Account for `len` payload bytes (final=1 on the last piece, len may be 0)
 * and produce the framing.  Errors: PN_WRITE_TOO_MUCH (nothing should be
 * sent, close the connection), PN_WRITE_TOO_LITTLE (final piece leaves the
 * declared length unmet: send what there is, then close). */
int pn_http1_resp_body_frame(pn_http1_response *r, size_t len, int final, pn_http1_frame *f);

/* ---- trailers (RFC 9112 §7.1.2, RFC 9110 §6.5) --------------------- */

/* The request lets its response carry a trailer section: HTTP/1.1, and a
 * TE field lists "trailers" (RFC 9110 §10.1.4: TE is a comma list of
 * t-codings, each with optional parameters such as ";q=0.5"; "trailers"
 * is matched case-insensitively, parameters ignored). */
int pn_http1_accepts_trailers(const pn_http1_request *req);

/* The field must not be sent as a trailer (RFC 9110 §6.5.1: fields needed
 * before the content is processed: framing, routing, authentication,
 * response controls, content format).  The list, case-insensitive:
 *   framing        content-length, transfer-encoding, trailer, te,
 *                  connection, keep-alive, upgrade
 *   routing        host, location, retry-after
 *   authentication authorization, www-authenticate, set-cookie, proxy-*
 *   controls       cache-control, expires, date, vary, warning
 *   content format content-encoding, content-type, content-range */
int pn_http1_trailer_forbidden(const char *name, size_t name_len);

/* End the response in place of its final (empty) body piece, with the
 * trailer fields `fields` ("name: value\r\n" lines the caller validated
 * with pn_http1_check_header; lines of another shape are skipped):
 *   chunked        "0\r\n", the fields not forbidden (above), "\r\n"
 *   otherwise      nothing: a body with a Content-Length, a close-delimited
 *                  one (HTTP/1.0) and no body at all (HEAD, 204, 304) have
 *                  no trailer section, so the fields are dropped.
 * Accounts like pn_http1_resp_body_frame(r, 0, 1): PN_WRITE_TOO_LITTLE
 * when a declared length is unmet (nothing written; close), nothing after
 * the final piece (PN_WRITE_OK, nothing written).  On PN_WRITE_NOMEM
 * nothing is appended. */
int pn_http1_resp_trailers(pn_buf *out, pn_http1_response *r, const char *fields, size_t len);

/* Reason phrase for a status code ("" when unknown). */
const char *pn_http1_reason(int status);

/* A complete small response generated by the server itself (errors, 100
 * Continue is separate): status line, Date/Server per opts, Content-Type
 * text/plain, Content-Length, Connection: close when `close`, then the
 * body (the reason phrase plus "\n" when body == NULL). */
int pn_http1_write_simple(pn_buf *out, int status, const pn_http1_head_opts *opts, int close,
                          const char *body);

/* The same with one more field after Date and Server (the request's ID,
 * --request-id): name a token, value valid by construction (not checked);
 * name NULL = none. */
int pn_http1_write_simple_field(pn_buf *out, int status, const pn_http1_head_opts *opts, int close,
                                const char *body, const char *name, size_t name_len,
                                const char *value, size_t value_len);

/* "HTTP/1.1 100 Continue\r\n\r\n" */
int pn_http1_write_continue(pn_buf *out);

/* ---- Date header cache (RFC 9110 §5.6.7 IMF-fixdate) ---------------- */
typedef struct pn_date_cache {
    time_t sec;
    char text[32]; /* "Sun, 06 Nov 1994 08:49:37 GMT" + NUL */
} pn_date_cache;

/* Returns the cached string for `now`, reformatting only when the second
 * changed.  The cache belongs to one worker thread. */
const char *pn_date_get(pn_date_cache *c, time_t now);

#endif
