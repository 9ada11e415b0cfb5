/*
 * pn_worker_int.h — PRIVATE to csrc/runtime: what the files of the worker
 * share (pn_worker.c: epoll, the connection state machine, timers;
 * pn_conn_io.c: a connection's reads, writes, sendfile and body decoding;
 * pn_accept.c: listeners and accept; pn_proxy_phase.c: the PROXY protocol
 * phase; pn_worker_answer.c: the answers the worker makes itself).
 * Nothing outside csrc/runtime includes it; the bridge and the tests use
 * pn_worker.h only.
 *
 * Threads and ownership are pn_worker.h's: a pn_worker and its connections
 * belong to the one thread that created the worker, and every function
 * declared here runs on that thread only.  pn_worker.h's re-entrancy rule
 * holds here too: a function that may call a hook (pn_conn_close_now calls
 * on_close; the phases call on_request, on_body...) runs only inside
 * pn_worker_poll(), while those the pn_conn_* functions of pn_worker.h use
 * (reads, writes, queue_conn) call none but hooks.wakeup.  The struct
 * below is the worker's state; its owner is the worker, and only these
 * files (and the transports' pn_tls.c, pn_h2*.c, pn_static.c) touch its
 * fields.
 */
#ifndef PN_WORKER_INT_H
#define PN_WORKER_INT_H

#include <errno.h>

#include "pn_access_log.h"
#include "pn_request_id.h"
#include "pn_slab.h"
#include "pn_worker.h"

/* Inlining decisions the hot path was measured with (callgrind). */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define NOINLINE
#define ALWAYS_INLINE inline
#endif

/* epoll data tags: connections are stored as pointers (8-byte aligned, low
 * bits zero); the worker's own fds carry a tag in the low bits. */
#define TAG_MASK 7u
#define TAG_LISTENER 1u /* (index << 3) | 1 */
#define TAG_EVENTFD 2u
#define TAG_TIMERFD 3u
#define TAG_BALANCE 4u /* the balance seat's timerfd: a stand-aside ended */

/* The worker's limits.  Each bounds memory, a syscall's size, or how long
 * one connection may keep the loop; the comment says why that value. */

/* Buffers of a connection. */
/* First read buffer: most request heads fit in 4 KiB, and an idle
 * keep-alive connection should cost little. */
#define READ_INITIAL 4096
/* Grow the read buffer (double it) when less than this is free: a recv into
 * a smaller space would return a sliver and cost a syscall per sliver. */
#define READ_MIN_SPACE 512
/* Buffer limit while discarding input (lingering close, unread bodies):
 * the bytes are thrown away, so a small buffer that is reused will do. */
#define READ_CHUNK 16384
/* A connection waiting for its next request holds no buffer (an idle
 * keep-alive connection costs its pn_conn, ~0.7 KiB: issue 17): its read
 * buffer goes back to the worker's pool (below) and its write buffer is
 * freed once empty.  While a request is in progress, an emptied write
 * buffer keeps at most WBUF_KEEP (a streamed response reuses it). */
#define WBUF_KEEP 16384
/* Read buffers of READ_INITIAL bytes the worker keeps for its connections'
 * next reads: a keep-alive connection takes one when its next request
 * arrives and gives it back when the response is done, a pointer pop and
 * push instead of malloc/free.  64 covers the connections a worker
 * reads from at once under load; 256 KiB per worker at most. */
#define RBUF_POOL_MAX 64
/* Request body read ahead of the app: 256 KiB keeps a fast client
 * streaming while the app consumes, and bounds memory per connection. */
#define BODY_BUFFER_MAX 262144
/* Bytes read past a finished body: enough to hold pipelined requests and
 * to see a RST, bounded so a client cannot grow the buffer while the app
 * works; the rest waits until the current response is done. */
#define LOOKAHEAD_MAX 65536
/* Unread body the worker discards to keep a connection alive; with more
 * left it closes, as reading it all would cost more than a reconnect. */
#define DRAIN_MAX 65536

/* Output. */
/* Pipelined responses coalesced before one send: one send then carries
 * many small responses, and the first of them never waits behind more. */
#define CORK_MAX 65536
/* sendfile(2) moves at most 0x7ffff000 bytes per call on Linux; asking
 * for 1 GiB at a time stays under that everywhere. */
#define SENDFILE_SLICE (1u << 30)

/* Closing. */
/* Lingering close (RFC 9112 §9.6): discard the client's input for at most
 * 2 s and 256 KiB, enough for a request in flight to arrive so that the
 * error response is not destroyed by a RST, and no more. */
#define LINGER_MS 2000
#define LINGER_MAX (256 * 1024)

/* Fairness and batching of one poll. */
/* Connections one listener event may accept: a burst is taken in one go,
 * but 64 bounds the time before already accepted clients are served. */
#define ACCEPT_BATCH 64
/* After EMFILE and friends, accepting pauses this long instead of
 * spinning on a level-triggered listen socket. */
#define ACCEPT_PAUSE_MS 200
/* Events fetched per epoll_wait: 128 amortises the syscall over a busy
 * batch and keeps the array (1.5 KiB) on the stack. */
#define EVENT_BATCH 128
/* epoll_wait rounds per pn_worker_poll: under a constant load the poll
 * still returns to the event loop, so timers and other tasks run. */
#define POLL_ROUNDS_MAX 8
/* Read-and-parse rounds for one WebSocket connection per poll: a client
 * sending faster than the app reads cannot starve the others. */
#define WS_ROUNDS_MAX 64

struct pn_worker {
    const pn_config *cfg;
    int epfd, evfd, tfd;
    int timer_running;
    pn_worker_hooks hooks;
    void *ctx;
    pn_listener *listeners;
    int nlisten;
    int listening;  /* listeners registered in epoll */
    int draining;   /* no more accepts, no more keep-alive */
    int close_idle; /* draining: idle connections close at once */
    int stopping;   /* the drain is a shutdown: --health-path answers 503 */
    int answers; /* --health-path, --limit-concurrency or --static: conn_dispatch may answer itself
                  */
    struct pn_static *statics; /* --static: mounts and open-file cache (pn_static.c), or NULL */
    size_t health_len;
    int in_poll;
    int wakeup_asked;
    int accept_batch; /* connections one listener event may take (pn_worker_set_shared) */
    size_t nconns;
    pn_conn *all; /* every connection (for drain/close_all) */
    /* Queued for processing, first in first out: connections are served in
     * the order epoll reported them, and one that re-queues itself (the
     * next pipelined request) goes behind the others already waiting. */
    pn_conn *pending;
    pn_conn *pending_tail;
    pn_wheel wheel;
    pn_timer accept_timer; /* resumes accepting after EMFILE */
    pn_slab conns;         /* where the connections live (pn_slab.h) */
    pn_balance_seat seat;  /* balanced accept among workers sharing the sockets */
    /* --metrics-port: this worker's counters (pn_metrics.h), or NULL */
    pn_metrics_slot *metrics;
    pn_http1_limits limits;
    pn_http1_header *header_space;
    pn_date_cache date;
    pn_alog alog; /* this worker's access log (pn_access_log.c) */
    uint64_t header_ms, keepalive_ms, request_ms;
    pn_trust *trust;       /* --forwarded-allow-ips, parsed once; immutable */
    const pn_tls_ctx *tls; /* --ssl-certfile: the process's context (read-only), or NULL */
    uint64_t tls_sessions; /* handshakes done: the last pn_stream.tls_serial given */

    /* Free read buffers (READ_INITIAL bytes each), at most RBUF_POOL_MAX:
     * rbuf_take / rbuf_give below. */
    char *rbuf_pool[RBUF_POOL_MAX];
    int rbuf_pooled;

    size_t rid_name_len;   /* --request-id: length of --request-id-header; 0 = off */
    pn_request_id_gen rid; /* --request-id: this worker's generator */
};

/* Around a syscall that may take a while, let other threads run (see
 * pn_worker_hooks.release).  errno survives the reacquire. */
#define BLOCKING_BEGIN(w)                                                                          \
    void *blocking_token_ = (w)->hooks.release ? (w)->hooks.release((w)->ctx) : NULL
#define BLOCKING_END(w)                                                                            \
    do {                                                                                           \
        if ((w)->hooks.release) {                                                                  \
            int saved_errno_ = errno;                                                              \
            (w)->hooks.reacquire((w)->ctx, blocking_token_);                                       \
            errno = saved_errno_;                                                                  \
        }                                                                                          \
    } while (0)

static inline void enqueue(pn_worker *w, pn_conn *c)
{
    if (c->queued)
        return;
    c->queued = 1;
    c->next_pending = NULL;
    if (w->pending_tail)
        w->pending_tail->next_pending = c;
    else
        w->pending = c;
    w->pending_tail = c;
}

static inline void queue_conn(pn_conn *c)
{
    pn_worker *w = c->worker;
    enqueue(w, c);
    if (!w->in_poll && !w->wakeup_asked) {
        w->wakeup_asked = 1;
        w->hooks.wakeup(w->ctx);
    }
}

static inline int output_pending(const pn_conn *c)
{
    return pn_buf_live(&c->wbuf) > 0 || c->file_fd >= 0;
}

/* Give c a read buffer of READ_INITIAL bytes (from the pool when it has
 * one).  c->rbuf must be empty and unallocated.  0, or -1 out of memory. */
static inline int rbuf_take(pn_conn *c)
{
    pn_worker *w = c->worker;
    if (w->rbuf_pooled > 0) {
        c->rbuf.data = w->rbuf_pool[--w->rbuf_pooled];
        c->rbuf.cap = READ_INITIAL;
        return 0;
    }
    return pn_buf_reserve(&c->rbuf, READ_INITIAL);
}

/* c's read buffer is empty: it goes back to the pool (or is freed when it
 * grew, or the pool is full).  No-op for a buffer holding bytes. */
static inline void rbuf_give(pn_conn *c)
{
    pn_worker *w = c->worker;
    if (c->rbuf.cap > 0 && pn_buf_live(&c->rbuf) == 0) {
        if (c->rbuf.cap == READ_INITIAL && w->rbuf_pooled < RBUF_POOL_MAX) {
            w->rbuf_pool[w->rbuf_pooled++] = c->rbuf.data;
            c->rbuf = (pn_buf)PN_BUF_INIT;
        } else {
            pn_buf_free(&c->rbuf);
        }
    }
}

/* c waits with nothing buffered: no buffer held (rbuf_give, and an empty
 * write buffer is freed).  No-op for a buffer holding bytes. */
static inline void bufs_give(pn_conn *c)
{
    rbuf_give(c);
    if (c->wbuf.cap > 0 && pn_buf_live(&c->wbuf) == 0)
        pn_buf_free(&c->wbuf);
}

static inline void arm_in(pn_conn *c, uint64_t ms)
{
    pn_worker *w = c->worker;
    if (ms == 0) {
        pn_timer_cancel(&w->wheel, &c->timer);
        return;
    }
    pn_timer_arm(&w->wheel, &c->timer, pn_monotonic_ms() + ms);
}

/* ---- between the worker's files ----------------------------------------- */

/* pn_accept.c: put the listening sockets in the epoll set (on) or take
 * them out (off); a no-op when they already are. */
void pn_worker_listeners_register(pn_worker *w, int on);
/* pn_accept.c: listener li is readable: accept a batch of connections. */
void pn_worker_accept_batch(pn_worker *w, int li);

/* pn_proxy_phase.c: set c->stream.peer_trusted for c->peer. */
void pn_conn_judge_peer(pn_conn *c);
/* pn_proxy_phase.c: at accept, with --proxy-protocol (may free c). */
void pn_conn_proxy_begin(pn_conn *c);
/* pn_proxy_phase.c: the PN_CONN_PROXY phase of conn_process. */
void pn_conn_phase_proxy(pn_conn *c);

/* pn_tls.c: when the worker speaks TLS, at accept or after the PROXY
 * header: give c its session and put it in PN_CONN_TLS (0), or -1 out of
 * memory (the caller closes c).  Bytes already in c->rbuf (read with the
 * PROXY header) are the session's first. */
int pn_tls_conn_begin(pn_conn *c);
/* pn_tls.c: the PN_CONN_TLS phase of conn_process (may free c). */
void pn_conn_phase_tls(pn_conn *c);
/* pn_tls.c: read decrypted bytes: > 0 read (c->tls_short: the socket is
 * drained), 0 the client closed, -1 with errno (EAGAIN: wait for input). */
ssize_t pn_tls_read(pn_conn *c, char *buf, size_t len);
/* pn_tls.c: write bytes through the session: > 0 taken, -1 with errno
 * (EAGAIN: the socket is full; len must not shrink before the retry). */
ssize_t pn_tls_write(pn_conn *c, const char *buf, size_t len);
/* pn_tls.c: whether a pathsend file goes out with kTLS sendfile on c's
 * session (else it is read and written through the session); the first
 * call on a connection says which in the debug log. */
int pn_tls_ktls_send(pn_conn *c);
/* pn_tls.c: SSL_sendfile len bytes of c->file_fd from off (kTLS only):
 * > 0 sent, 0 at the file's end, -1 with errno (EAGAIN: socket full). */
ssize_t pn_tls_sendfile(pn_conn *c, uint64_t off, size_t len);
/* pn_tls.c: send close_notify if the session is alive (one try, never
 * waits); before our write side closes. */
void pn_tls_close_notify(pn_conn *c);
/* pn_tls.c: c waits for a request with nothing buffered either way: the
 * session gives back its record buffers (~27 KiB) until the next bytes. */
void pn_tls_conn_idle(pn_conn *c);
/* pn_tls.c: free c's session. */
void pn_tls_conn_free(pn_conn *c);

/* pn_worker_answer.c: called for each HTTP/1.1 request head when
 * w->answers, before the app (out of line: off, it costs conn_dispatch one
 * test).  1: the worker answered req on c (pn_worker_answered); 0: the
 * app's. */
int pn_worker_answer_conn(pn_conn *c, const pn_http1_request *req);

/* pn_worker.c: an answer the worker wrote itself into c->wbuf (or queued
 * with pn_conn_sendfile) for req, whose head is consumed: count it, log
 * it (req NULL: no access line, as for health checks), then start the next
 * request cycle (keep, unless c is dead) or close; queues c. */
void pn_worker_answered(pn_conn *c, const pn_http1_request *req, int status, uint64_t bytes,
                        int keep);

/* ---- the worker's own answers (pn_worker_answer.c, pn_static.c) -------- */

/* An answer the worker makes itself, before the app: --health-path,
 * --limit-concurrency's 503, --static.  It is decided once, whatever the
 * transport (answer_decide in pn_worker_answer.c, pn_static_answer), and the
 * decision writes its head in the one form a head crosses the seam in
 * (pn_stream.h): the status line and the fields, HTTP/1.1 syntax, into
 * `out`.  The transport's emitter then finishes it: HTTP/1.1's in the
 * connection's wbuf itself (out is the wbuf: no copy), a stream's (HTTP/2)
 * from a scratch buffer through its ops.  The emitter adds the --request-id
 * field, the framing, Date and Server.  Every slice the answer points to
 * lives until the emitter returns: in the request, the config, the
 * worker's static cache, or the answer's own text. */
typedef struct pn_answer {
    pn_buf *out;         /* the head goes here */
    pn_http1_response r; /* its record (pn_http1_write.h) */
    int ok;              /* every write into out succeeded (else: out of memory) */
    int status;
    int head; /* the request is a HEAD: the fields GET would get, no body */
    int log;  /* write an access line (health checks: none) */
    /* The body, len bytes (the Content-Length; 0 for a 304): in memory at
     * body, or (body NULL) the bytes [off, off + len) of fd, which stays the
     * caller's (the emitter sends a dup of it). */
    const char *body;
    int fd;
    uint64_t off, len;
    char text[64]; /* a short text/plain body */
} pn_answer;

/* Begin a's head in out: the status line of req's answer. */
static inline void pn_answer_start(pn_answer *a, pn_buf *out, const pn_http1_request *req,
                                   int status, int head, int log)
{
    a->out = out;
    a->status = status;
    a->head = head;
    a->log = log;
    a->ok = pn_http1_resp_init(&a->r, status, req->version_minor,
                               head ? PN_RESP_HEAD_REQUEST : 0u) == PN_WRITE_OK &&
            pn_http1_resp_start(out, &a->r) == PN_WRITE_OK;
}

/* One field of a's head (a no-op once a write failed). */
static inline void pn_answer_field(pn_answer *a, const char *name, size_t name_len,
                                   const char *value, size_t value_len)
{
    a->ok = a->ok &&
            pn_http1_resp_header(a->out, &a->r, name, name_len, value, value_len) == PN_WRITE_OK;
}

/* pn_worker_answer.c: HTTP/2 calls it for each complete request head, before the
 * app, when w->answers (inside pn_worker_poll; s->udata is NULL and
 * s->request_id chosen).  1: the worker answered req through s's ops and
 * handed s back with done() (or abort() when out of memory); 0: the app's.
 * req's slices are read during the call only. */
int pn_worker_answer_stream(pn_worker *w, pn_stream *s, const pn_http1_request *req);

/* pn_worker.c: close c now and free it. */
void pn_conn_close_now(pn_conn *c);

/* pn_conn_io.c: read what the socket has into c->rbuf, up to limit bytes
 * buffered; sets c->peer_closed or c->dead. */
void pn_conn_read_input(pn_conn *c, size_t limit);
/* pn_conn_io.c: send c->wbuf, then the pending file; 0, or -1 when the
 * connection failed (c->dead set). */
int pn_conn_flush_output(pn_conn *c);
/* pn_conn_io.c: decode the body bytes read so far in place; -1 on a
 * framing error (c->body_error set). */
int pn_conn_decode_body(pn_conn *c);
/* pn_conn_io.c: drop the decoded body and its framing from c->rbuf. */
void pn_conn_drop_decoded_body(pn_conn *c);
/* pn_conn_io.c: a FIN came while the app watches for a close: probe the
 * client with a "100 Continue" when that is due. */
void pn_conn_probe_if_due(pn_conn *c);
/* pn_worker.c: the PN_CONN_HEAD phase of conn_process. */
void pn_conn_phase_head(pn_conn *c);

#endif /* PN_WORKER_INT_H */
