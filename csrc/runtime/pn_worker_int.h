/*
 * pn_worker_int.h — PRIVATE to csrc/runtime: what the files of the worker
 * share (pn_worker.c: epoll, the connection state machine, timers;
 * pn_accept.c: listeners and accept; pn_proxy_phase.c: the PROXY protocol
 * phase).  Nothing outside csrc/runtime includes it; the bridge and the
 * tests use pn_worker.h only.
 *
 * Threads and ownership are pn_worker.h's: a pn_worker and its connections
 * belong to the one thread that created the worker, and every function
 * declared here runs on that thread, inside the worker's own calls (never
 * a hook's).  The struct below is the worker's state; its owner is the
 * worker, and only these three files touch its fields.
 */
#ifndef PN_WORKER_INT_H
#define PN_WORKER_INT_H

#include <errno.h>

#include "pn_access_log.h"
#include "pn_request_id.h"
#include "pn_worker.h"

/* epoll data tags: connections are stored as pointers (8-byte aligned, low
 * bits zero); the worker's own fds carry a tag in the low bits. */
#define TAG_MASK 7u
#define TAG_LISTENER 1u /* (index << 3) | 1 */
#define TAG_EVENTFD 2u
#define TAG_TIMERFD 3u
#define TAG_BALANCE 4u /* the balance seat's timerfd: a stand-aside ended */

/* Connections one listener event may accept: a burst is taken in one go,
 * but 64 bounds the time before already accepted clients are served. */
#define ACCEPT_BATCH 64
/* After EMFILE and friends, accepting pauses this long instead of
 * spinning on a level-triggered listen socket. */
#define ACCEPT_PAUSE_MS 200

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
    int answers;    /* --health-path or --limit-concurrency: conn_dispatch may answer itself */
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
    pn_balance_seat seat;  /* balanced accept among workers sharing the sockets */
    /* --metrics-port: this worker's counters (pn_metrics.h), or NULL */
    pn_metrics_slot *metrics;
    pn_http1_limits limits;
    pn_http1_header *header_space;
    pn_date_cache date;
    pn_alog alog; /* this worker's access log (pn_access_log.c) */
    uint64_t header_ms, keepalive_ms, request_ms;
    pn_trust *trust; /* --forwarded-allow-ips, parsed once; immutable */

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

/* pn_worker.c: close c now and free it. */
void pn_conn_close_now(pn_conn *c);
/* pn_worker.c: read what the socket has into c->rbuf, up to limit bytes
 * buffered; sets c->peer_closed or c->dead. */
void pn_conn_read_input(pn_conn *c, size_t limit);
/* pn_worker.c: the PN_CONN_HEAD phase of conn_process. */
void pn_conn_phase_head(pn_conn *c);

#endif /* PN_WORKER_INT_H */
