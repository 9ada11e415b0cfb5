/*
 * pn_worker — one worker: an epoll instance, its listening sockets, its
 * connections, their timers, and the HTTP/1.1 connection state machine.
 *
 * Runtime layer: plain C, no Python.h, no knowledge of ASGI.  The layer above
 * (the bridge) supplies pn_worker_hooks and drives the worker by calling
 * pn_worker_poll() whenever the epoll fd (pn_worker_fd) is readable — the
 * bridge registers that fd once with the asyncio loop's add_reader.
 *
 * Threads: a worker and everything it owns (connections, buffers, timers,
 * the access-log buffer, the Date cache) belong to the ONE thread that
 * created it; no function here may be called from another thread, except
 * pn_worker_wake() which is async-signal- and thread-safe (it writes the
 * worker's eventfd).  Workers share nothing mutable; the pn_config they read
 * is immutable.
 *
 * Requests reach the bridge as streams (pn_stream.h): an HTTP/1.1
 * connection is the stream of its current request (c->stream, implemented
 * by pn_http1_stream.c over the pn_conn_* functions below), and the stream
 * events of the hooks name it.  The WebSocket session, which takes a
 * connection over after its upgrade, uses the pn_conn_* functions directly.
 *
 * Re-entrancy rule: hooks are called only from inside pn_worker_poll().
 * Functions called on a connection or its stream (pn_conn_write,
 * pn_conn_body, pn_conn_response_done, pn_conn_close, the stream's ops...)
 * never call a hook synchronously; work they create is queued and done by
 * the next pn_worker_poll() (the worker asks the bridge for one through
 * hooks->wakeup when it is not already polling).
 *
 * Ownership: the worker owns each pn_conn and frees it after calling
 * hooks->on_close(&c->stream); the bridge may keep a pointer to a
 * connection or its stream only until then.  c->stream.udata is the
 * bridge's.
 */
#ifndef PN_WORKER_H
#define PN_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "pn_balance.h"
#include "pn_buf.h"
#include "pn_config.h"
#include "pn_http1_parse.h"
#include "pn_http1_write.h"
#include "pn_log.h"
#include "pn_metrics.h"
#include "pn_stream.h"
#include "pn_timer.h"
#include "pn_tls.h"
#include "pn_trust.h"

typedef struct pn_worker pn_worker;
typedef struct pn_conn pn_conn;

typedef struct pn_worker_hooks {
    /* The stream events (pn_stream.h).  A request head is complete on
     * stream s.  req's slices point into the connection's read buffer and
     * are valid only during the call.  Return 0, or -1 to answer 500 and
     * close (e.g. out of memory). */
    int (*on_request)(void *ctx, pn_stream *s, const pn_http1_request *req);
    /* Body bytes became available, the body ended, or the body failed,
     * while the bridge waits (the stream's body op returned PN_BODY_WAIT). */
    void (*on_body)(void *ctx, pn_stream *s);
    /* The output fell below the low watermark while the bridge waits (a
     * write returned PN_IO_WAIT). */
    void (*on_drain)(void *ctx, pn_stream *s);
    /* The stream is gone (peer closed, error, timeout, or aborted).  Called
     * once; its connection is freed right after. */
    void (*on_close)(void *ctx, pn_stream *s);
    /* Ask for pn_worker_poll() to be called soon (the bridge schedules it on
     * its event loop).  Called when work is queued outside of a poll. */
    void (*wakeup)(void *ctx);
    /* A WebSocket connection (see pn_conn_upgrade) has news: PN_WS_EV_*.
     * READABLE: new bytes in c->rbuf (the bridge parses and consumes them);
     * TIMER: the deadline set with pn_conn_set_timer passed; GOING_AWAY: the
     * worker drains, close with 1001. */
    void (*on_ws)(void *ctx, pn_conn *c, int event);
    /* Optional (NULL = off): let other threads run during a socket syscall.
     * The bridge sets these on GIL builds with several thread workers, so
     * their network work overlaps (release = PyEval_SaveThread).  The
     * runtime touches no Python object between release and reacquire. */
    void *(*release)(void *ctx);
    void (*reacquire)(void *ctx, void *token);
    /* Optional: the requests in flight in this worker (app calls running),
     * asked before each dispatch only when --limit-concurrency is set; at
     * the limit the runtime answers 503 itself.  NULL = no load shedding. */
    size_t (*in_flight)(void *ctx);
} pn_worker_hooks;

typedef struct pn_listener {
    int fd;
    int registered; /* in epoll */
    int is_unix;
    int closed; /* accept failed for good (e.g. shut down): never registered again */
} pn_listener;

/* Connection phases. */
enum {
    PN_CONN_HEAD = 0, /* reading a request head (or idle keep-alive) */
    PN_CONN_REQUEST,  /* a request is with the app */
    PN_CONN_DRAINING, /* response done; discarding the unread body */
    PN_CONN_CLOSING,  /* flush the output, then close */
    PN_CONN_WS,       /* upgraded to WebSocket: bytes go to hooks->on_ws */
    PN_CONN_PROXY,    /* --proxy-protocol: reading the PROXY header, before the
                         first request head (under its deadline) */
    PN_CONN_TLS,      /* --ssl-certfile: the TLS handshake, after the PROXY
                         header if any, before the first request head (under
                         its deadline) */
    PN_CONN_H2,       /* HTTP/2 (pn_h2.c): the session in c->h2 carries the
                         streams; c->stream is unused */
};

/* Events for hooks->on_ws. */
enum { PN_WS_EV_READABLE = 1, PN_WS_EV_TIMER = 2, PN_WS_EV_GOING_AWAY = 3 };

struct pn_conn {
    int fd;
    int phase;                 /* PN_CONN_* */
    unsigned can_read : 1;     /* edge-triggered: socket may have data */
    unsigned can_write : 1;    /* edge-triggered: socket may take data */
    unsigned peer_closed : 1;  /* read side saw EOF: the client sends no more (it may still read) */
    unsigned rdhup : 1;        /* epoll reported RDHUP/HUP/ERR: an EOF is coming */
    unsigned hup : 1;          /* epoll reported HUP/ERR: the peer is gone (RST), not just a FIN */
    unsigned dead : 1;         /* socket error; close pending */
    unsigned body_wanted : 1;  /* bridge waits for body (on_body owed) */
    unsigned drain_wanted : 1; /* bridge waits for drain (on_drain owed) */
    unsigned queued : 1;       /* on the worker's pending list */
    unsigned keep_alive : 1;   /* after the current response */
    unsigned head_started : 1; /* first byte of the current head arrived */
    unsigned closing_soon : 1; /* worker draining: close after this response */
    unsigned sent_continue : 1;
    unsigned in_request : 1;      /* bridge holds a request on this conn */
    unsigned expect_continue : 1; /* current request sent Expect: 100-continue */
    unsigned lingering : 1;       /* write side shut; discarding input before close */
    unsigned ws_going_away : 1;   /* GOING_AWAY was reported to the bridge */
    unsigned corked : 1;          /* coalescing pipelined responses (pn_conn_write) */
    unsigned step_cork : 1;       /* the bridge coalesces one app step's writes */
    unsigned http11 : 1;          /* the current request is HTTP/1.1 (1xx allowed) */
    unsigned resp_started : 1;    /* a byte of the current response was written */
    unsigned close_watch : 1;     /* the bridge waits for the client to go away */
    unsigned probed : 1;          /* the half-close probe went out (pn_conn_watch_close) */
    unsigned tls_short : 1;       /* TLS: the last socket read of this SSL_read was short */
    unsigned tls_peeked : 1;      /* TLS: the first byte was a handshake record */
    unsigned tls_file_said : 1;   /* TLS: the debug log said how files go out */
    int body_error;               /* HTTP status (400/413) when the body failed */
    pn_buf rbuf;                  /* [off, off+body_ready) decoded body, then raw bytes */
    size_t body_ready;            /* decoded body bytes at the front of rbuf */
    size_t body_gap;              /* chunk framing skipped after them; raw input follows */
    uint64_t drained;             /* body bytes discarded in PN_CONN_DRAINING / lingering */
    size_t ws_limit;              /* PN_CONN_WS: read while rbuf holds less than this */
    pn_http1_parser parser;
    pn_http1_body body;
    pn_buf wbuf; /* output not yet taken by the kernel (or by the TLS session) */
    /* TLS (pn_tls.c): the connection's session, owned by the connection
     * (freed with it), or NULL for plain TCP: every read and write tests
     * this one pointer. */
    struct ssl_st *ssl;
    char *tls_pre; /* TLS: bytes read with the PROXY header, the session's first */
    size_t tls_pre_len, tls_pre_off;
    int file_fd; /* pathsend: file being sent with sendfile, or -1 */
    uint64_t file_off, file_left;
    pn_timer timer;
    pn_conn *next_pending;
    pn_conn *prev_all, *next_all;
    pn_worker *worker;
    struct sockaddr_storage peer; /* the client: the socket's peer, or the source of
                                     the PROXY header (--proxy-protocol) */
    socklen_t peer_len;
    int listener;      /* index of the listener it came from */
    uint64_t requests; /* served on this connection */
    pn_stream stream;  /* the connection as the stream of its current request
                          (pn_http1_stream.c); stream.udata is the bridge's */
    struct pn_h2 *h2;  /* PN_CONN_H2: the HTTP/2 session (pn_h2.c), owned; else NULL */
};

/* The ops of an HTTP/1.1 connection's stream (pn_http1_stream.c). */
extern const pn_stream_ops pn_http1_stream_ops;
/* Make c->stream the connection's stream (at accept). */
void pn_http1_stream_init(pn_conn *c);
/* The connection a stream is, if it is an HTTP/1.1 connection's; NULL for a
 * stream of another transport.  For the WebSocket session, which takes an
 * HTTP/1.1 connection over. */
static inline pn_conn *pn_http1_stream_conn(pn_stream *s)
{
    if (s->ops != &pn_http1_stream_ops)
        return NULL;
    return (pn_conn *)((char *)s - offsetof(pn_conn, stream));
}

/* Create a worker over the given listening sockets (not owned: the caller
 * closes them after pn_worker_free).  hooks/ctx are the bridge's.
 * Returns NULL with errno set. */
pn_worker *pn_worker_new(const pn_config *cfg, const int *listen_fds, const int *is_unix,
                         int nlisten, const pn_worker_hooks *hooks, void *ctx);
/* Close every connection (calling on_close) and free everything. */
void pn_worker_free(pn_worker *w);
/* Other workers accept from the same listening sockets.  The worker's
 * epoll fd is itself polled by the event loop, so EPOLLEXCLUSIVE cannot
 * pick one waiter: every worker wakes for a new connection, and one that
 * accepted until EAGAIN would take a whole burst of connections (measured:
 * 62 of 64 wrk connections in one of two workers).  A shared worker accepts
 * one connection per listener event, so the others get theirs.  Call before
 * the first poll; owner thread only. */
void pn_worker_set_shared(pn_worker *w, int shared);
/* Balanced accept (pn_balance.h): a shared worker takes slot `slot` of the
 * table all workers on its sockets share, publishes its connection count
 * there, and stands aside while it holds more than its share.  After
 * pn_worker_set_shared(w, 1), before the first poll; owner thread only.
 * The table must outlive the worker.  An unshared or draining worker
 * ignores it.  0, or -1 with errno. */
int pn_worker_set_balance(pn_worker *w, pn_balance *table, int slot);
/* --metrics-port: count into `slot` (pn_metrics.h), which must outlive the
 * worker; NULL (the default) counts nothing.  Owner thread only. */
void pn_worker_set_metrics(pn_worker *w, pn_metrics_slot *slot);
/* --ssl-certfile: every connection accepted from now on speaks TLS, with a
 * session made from t (pn_tls.h), which must outlive the worker and is
 * only read.  NULL (the default): plain TCP.  Before the first poll; owner
 * thread only. */
void pn_worker_set_tls(pn_worker *w, const struct pn_tls_ctx *t);
int pn_worker_fd(const pn_worker *w);
/* The peers trusted to say who the client is (--forwarded-allow-ips); owned
 * by the worker, immutable, valid until pn_worker_free. */
const pn_trust *pn_worker_trust(const pn_worker *w);
/* Handle everything ready now (never blocks).  Returns 0. */
int pn_worker_poll(pn_worker *w);
/* How pn_worker_drain drains (flags). */
enum {
    PN_DRAIN_CLOSE_IDLE = 1, /* close idle keep-alive connections now */
    PN_DRAIN_SHUTDOWN = 2,   /* the server stops (SIGTERM/SIGINT): --health-path
                                answers 503 from now on; without it (reload,
                                recycling: another worker takes over) 200 */
};
/* Stop accepting.  Every connection closes after its current or next
 * response (which says Connection: close).  PN_DRAIN_CLOSE_IDLE: also close
 * idle keep-alive connections now; otherwise they get their next request
 * answered, or close at their keep-alive deadline (a client racing a
 * request against our close would see it fail).  Called again, it only
 * escalates (flags add up).  Returns the number of connections still open. */
int pn_worker_drain(pn_worker *w, unsigned how);
/* Close every connection now. */
void pn_worker_close_all(pn_worker *w);
size_t pn_worker_connections(const pn_worker *w);
/* Thread-safe: make the epoll fd readable so the owning thread polls. */
void pn_worker_wake(pn_worker *w);
/* Flush the access-log buffer (pn_access_log.c). */
void pn_worker_flush_log(pn_worker *w);
/* The worker's access log (pn_access_log.h): the bridge sets its fd or sink
 * before the first poll; pn_access_log.c appends to it.  Owner thread. */
struct pn_alog *pn_worker_alog(pn_worker *w);
/* Inside pn_worker_poll: lines then wait for the poll's end. */
int pn_worker_in_poll(const pn_worker *w);
/* The Date (cached; NULL when --date-header is off) and Server fields of
 * this worker's responses. */
pn_http1_head_opts pn_worker_head_opts(pn_worker *w);

/* The server's own answer to the connection's current request (status,
 * its reason as text/plain; pn_http1_write_simple) into out, with the
 * worker's Date and Server and the request's ID (--request-id). */
int pn_conn_write_simple(pn_conn *c, pn_buf *out, int status, int close);

/* ---- connection API (owning thread only) ----------------------------
 * For the HTTP/1.1 stream (pn_http1_stream.c) and for the WebSocket
 * session, which takes a connection over; an HTTP request reaches these
 * only through its stream's ops (pn_stream.h). */

/* Hold writes (up to 64 KiB) until pn_conn_uncork, which sends them in one
 * go: the bridge brackets each step of the app's coroutine with these, so
 * 100 chunks sent without an await in between cost one send, while a
 * stream that awaits between chunks still sends each at once. */
void pn_conn_cork(pn_conn *c);
void pn_conn_uncork(pn_conn *c);
/* Send bytes: writes at once when possible, buffers the rest.  PN_IO_OK,
 * PN_IO_WAIT (above the high watermark: on_drain follows) or PN_IO_GONE. */
int pn_conn_write(pn_conn *c, const struct iovec *iov, int iovcnt);
/* Queue a file range for sendfile after the buffered output.  Takes
 * ownership of fd.  Returns like pn_conn_write. */
int pn_conn_sendfile(pn_conn *c, int fd, uint64_t off, uint64_t len);
/* Decoded request body available now: returns 1 with *data and *len (possibly
 * len 0 when the body is complete), or 0 when nothing is buffered yet and
 * the body is not complete (the worker then reads, and calls on_body when
 * something arrives), or -1 when the body failed (c->body_error) or the
 * connection is dead.  The bridge copies the bytes then calls
 * pn_conn_body_consume(c, len). */
int pn_conn_body(pn_conn *c, const char **data, size_t *len);
void pn_conn_body_consume(pn_conn *c, size_t n);
/* Send "100 Continue" if the request asked for it and it was not sent. */
void pn_conn_send_continue(pn_conn *c);
/* The bridge waits for the client to go away (the app called receive()
 * after the whole body): the runtime tells it through on_close.  A FIN is
 * only a half-close, so once one came and no response byte was written,
 * an HTTP/1.1 client gets one "100 Continue" as a probe: a client that
 * closed its socket answers with a RST, one that still reads skips it.
 * Once per request; may write, never calls a hook. */
void pn_conn_watch_close(pn_conn *c);
/* The response is complete.  keep_alive: the response allows the
 * connection to persist.  The worker drains any unread body (bounded),
 * then parses the next request, or closes. */
void pn_conn_response_done(pn_conn *c, int keep_alive);
/* Close now (abort).  on_close follows from the next poll. */
void pn_conn_close(pn_conn *c);
/* Arm or clear the stall deadline (request_timeout) while the bridge waits
 * on the client (body or drain). */
void pn_conn_set_stall_timer(pn_conn *c, int on);
/* Switch an accepted WebSocket upgrade to PN_CONN_WS (after the 101 went
 * out).  From then on the runtime reads while c->rbuf holds less than
 * `read_limit` bytes and reports through hooks->on_ws; the bridge consumes
 * what it parsed from c->rbuf.  Bytes already buffered after the handshake
 * are reported at the next poll. */
void pn_conn_upgrade(pn_conn *c, size_t read_limit);
/* WebSocket phase: (re)arm the connection's deadline in `ms` (0 clears). */
void pn_conn_set_timer(pn_conn *c, uint64_t ms);
/* WebSocket phase: ask to be called (READABLE) at the next poll, e.g. after
 * consuming buffered bytes the bridge had paused on. */
void pn_conn_ws_resume(pn_conn *c);
/* Detach the bridge and close once the output is flushed (WebSocket close
 * handshake done, or failed).  No on_close follows. */
void pn_conn_finish(pn_conn *c);
/* Append rec's line, in the --access-log-format, to the worker's access
 * log.  rec->client: the client as the request's proxy headers named it
 * (pn_fwd_client_text), or client_len 0 for the connection's peer (filled
 * in here, as are the time and pid).  The slices are read during the call
 * only. */
void pn_conn_access_log(pn_conn *c, pn_access_rec *rec);

#endif
