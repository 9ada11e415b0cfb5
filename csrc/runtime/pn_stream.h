/*
 * pn_stream — the seam between a request and its transport.
 *
 * Runtime layer: plain C, no Python.h.  A stream carries one request and
 * its response.  The request (the bridge's HTTP request object, pn_http.c)
 * acts on it only through s->ops, and hears from it only through the
 * stream events of pn_worker_hooks (on_request, on_body, on_drain,
 * on_close), each of which names the stream.  It never learns which
 * transport it has.
 *
 * Transports:
 *   HTTP/1.1   an HTTP/1.1 connection is the stream of one request at a
 *              time: the pn_stream is embedded in the pn_conn and carries
 *              its requests in turn (pn_http1_stream.c, pn_worker.h).
 *   HTTP/2     one per HTTP/2 stream: a struct that begins with a pn_stream,
 *              its own ops, events from the connection's nghttp2 session
 *              naming the stream (pn_h2.c).
 *
 * The response head crosses the seam in one form, whatever the transport:
 * the status line and the application's fields in HTTP/1.1 syntax (RFC 9112
 * §4, RFC 9110 §5.5), built and checked by pn_http1_resp_init/_start/_header
 * into a pn_buf, with their pn_http1_response record (status, declared
 * length, flags).  The request builds it when the app sends
 * http.response.start; the stream finishes it (framing, Connection, Date,
 * Server: the transport's business) and sends it with the first body.  An
 * HTTP/2 stream reads the fields back (well-formed by construction) into
 * its HEADERS, leaving out the connection-specific ones (RFC 9113 §8.2.2).
 *
 * Threads: a stream belongs to the worker thread of its connection; its ops
 * are called on that thread only.
 *
 * Re-entrancy and lifetime: no op calls an event back synchronously (the
 * re-entrancy rule of pn_worker.h), and a transport frees a stream only
 * inside pn_worker_poll().  So a stream the request holds stays valid until
 * on_close names it, or until the request hands it back with done(); after
 * either, the request must not touch it (an HTTP/1.1 stream goes on to
 * carry the connection's next request).
 */
#ifndef PN_STREAM_H
#define PN_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "pn_buf.h"
#include "pn_http1_write.h"
#include "pn_log.h"
#include "pn_request_id.h"

typedef struct pn_stream pn_stream;
struct ssl_st; /* OpenSSL's SSL (pn_tls.h) */

/* Results of the output operations (and of the connection's pn_conn_write). */
enum {
    PN_IO_OK = 0,    /* taken: sent, or buffered below the high watermark */
    PN_IO_WAIT = 1,  /* buffered above the high watermark: on_drain follows */
    PN_IO_GONE = -1, /* the client is gone; nothing was sent */
    /* send_body and send_file only: */
    PN_IO_NOMEM = -2,      /* the head could not be finished; nothing was sent */
    PN_IO_TOO_MUCH = -3,   /* past the declared Content-Length: nothing was sent,
                              and the stream is aborted */
    PN_IO_TOO_LITTLE = -4, /* the final piece left the declared length unmet: it
                              was sent, and the response closes its stream */
};

/* Results of body(). */
enum {
    PN_BODY_WAIT = 0,  /* nothing yet: on_body follows */
    PN_BODY_MORE = 1,  /* (*data, *len) are body bytes; more will follow */
    PN_BODY_LAST = 2,  /* (*data, *len) end the body (len may be 0) */
    PN_BODY_GONE = -1, /* the client is gone (*status: the body's error, if
                          it had failed first, else 0) */
    PN_BODY_BAD = -2,  /* the body failed: *status is 400 (malformed) or 413
                          (too large); the stream can still answer */
};

typedef struct pn_stream_ops {
    /* ---- the response ---- */

    /* Send a piece of the response body (final: the last one), after the
     * head the first time: head is the pending head (see above), NULL once
     * it went out.  The stream finishes the head from resp, frames the
     * piece, writes both, and adds the payload bytes it accounted to *sent.
     * Returns a PN_IO_* result. */
    int (*send_body)(pn_stream *s, pn_http1_response *resp, pn_buf *head, const char *data,
                     size_t len, int final, uint64_t *sent);
    /* The head, then the whole body from fd (`size` bytes from offset
     * `off`).  Takes fd, closed on every error (and when the stream is
     * done with it).  Returns like send_body: PN_IO_TOO_MUCH/TOO_LITTLE
     * when size contradicts the declared length (nothing sent, stream
     * aborted). */
    int (*send_file)(pn_stream *s, pn_http1_response *resp, pn_buf *head, int fd, uint64_t off,
                     uint64_t size, uint64_t *sent);
    /* End the response with trailer fields (the http.response.trailers
     * extension; only when s->trailers said the transport can send them,
     * else the transport drops them): head as in send_body (the pending
     * head when no body went out), fields zero or more "name: value\r\n"
     * lines the request validated (pn_http1_check_header).  Like a final
     * send_body with no data, then the fields: returns a PN_IO_* result
     * (PN_IO_TOO_LITTLE when the declared length was not met). */
    int (*send_trailers)(pn_stream *s, pn_http1_response *resp, pn_buf *head, const char *fields,
                         size_t len, uint64_t *sent);
    /* A whole response made by the server (an error, a denial): the status,
     * its reason as text/plain, and the stream closes after it. */
    void (*reply)(pn_stream *s, int status);
    /* Hold the writes of one step of the app, and send them in one go at
     * uncork (100 chunks without an await cost one send). */
    void (*cork)(pn_stream *s);
    void (*uncork)(pn_stream *s);

    /* ---- the request body ---- */

    /* The decoded request body available now: a PN_BODY_* result.  The
     * request copies the bytes, then calls body_consume(len). */
    int (*body)(pn_stream *s, const char **data, size_t *len, int *status);
    void (*body_consume)(pn_stream *s, size_t n);
    /* The app is about to read the body: answer an Expect: 100-continue,
     * if the request had one and nothing has answered it yet. */
    void (*send_continue)(pn_stream *s);

    /* ---- flow ---- */

    /* The app waits for the client to go away (receive() after the whole
     * body): on_close will tell.  A transport may probe (HTTP/1.1 after a
     * FIN: docs/http1-policy.md, "half-closes"). */
    void (*watch_close)(pn_stream *s);
    /* Arm (on) or clear the stall deadline (--request-timeout) while the
     * app waits on the client, for body or drain. */
    void (*stall_timer)(pn_stream *s, int on);

    /* ---- the end ---- */

    /* The response is complete; keep_alive: it lets the transport carry
     * another request.  The stream is the transport's again. */
    void (*done)(pn_stream *s, int keep_alive);
    /* Abandon the stream (an invalid or truncated response): the client
     * must not take it for complete.  on_close follows. */
    void (*abort)(pn_stream *s);
    /* Append the request's line to the worker's access log (pn_log.h's
     * record; the transport fills in the HTTP version, and the client
     * when rec->client_len is 0: the client as proxy headers named it
     * ("192.0.2.1:0") wins over the transport's peer). */
    void (*access_log)(pn_stream *s, pn_access_rec *rec);
} pn_stream_ops;

struct pn_stream {
    const pn_stream_ops *ops;            /* the transport's, fixed for its life */
    void *udata;                         /* the request's (the bridge's), NULL when none */
    const struct sockaddr_storage *peer; /* the client's address (the connection's) */
    int listener;                        /* index of the listening socket it came from */
    /* The client reached us over TLS: the scope says "https"/"wss".  Set
     * when our own handshake is done (--ssl-certfile), or by a PROXY v2
     * header's PP2_TYPE_SSL (--proxy-protocol). */
    unsigned tls : 1;
    /* The peer is in --forwarded-allow-ips: the transport's verdict, made
     * once (at accept, and again after a PROXY header named the client), so
     * proxy headers cost no address check per request.  0 when neither
     * --proxy-headers nor --proxy-protocol is on. */
    unsigned peer_trusted : 1;
    /* The transport is HTTP/2 (RFC 9113): the scope's http_version is "2"
     * and the access log says HTTP/2.0.  Fixed for the stream's life. */
    unsigned http2 : 1;
    /* The transport can deliver response trailers for the current request
     * (HTTP/2 always; HTTP/1.1 when the request said TE: trailers, and then
     * only after a chunked body: send_trailers drops them after a declared
     * Content-Length): the scope offers http.response.trailers. */
    unsigned trailers : 1;
    /* --request-id: the current request's ID (pn_request_id.h), chosen by
     * the transport when its head arrived, before anything answers it (the
     * app, or the server itself); the scope, the response header and the
     * access log read it here.  request_id_len 0: off. */
    unsigned char request_id_len;
    char request_id[PN_REQUEST_ID_MAX];
    /* Borrowed: the transport's TLS session once its handshake is done
     * (the ASGI tls extension reads it through pn_tls.h), or NULL. */
    struct ssl_st *tls_session;
    /* Which session that is: unique per worker, never 0 (the bridge caches
     * what it read of a session under it; a pointer could be reused). */
    uint64_t tls_serial;
};

#endif
