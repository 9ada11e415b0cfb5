/*
 * pn_accept.c — a worker's listening sockets: registering them in its epoll
 * set, accepting connections in batches, and the balanced accept among
 * workers that share the sockets (pn_balance.h).
 *
 * Private to the worker (pn_worker_int.h): runs on the worker's own thread,
 * called from pn_worker_poll() and the worker's setup and drain.
 */
#include "pn_worker_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* ---- listeners ------------------------------------------------------ */

void pn_worker_listeners_register(pn_worker *w, int on)
{
    if (w->listening == on)
        return;
    for (int i = 0; i < w->nlisten; i++) {
        pn_listener *l = &w->listeners[i];
        if (on && !l->registered && !l->closed) {
            struct epoll_event ev;
            memset(&ev, 0, sizeof(ev));
            /* EPOLLEXCLUSIVE limits the thundering herd only for
             * epoll instances someone sleeps on directly; ours is polled
             * by the event loop, so idle workers may all wake and race
             * (pn_worker_set_shared keeps the race fair). */
            ev.events = EPOLLIN | EPOLLEXCLUSIVE;
            ev.data.u64 = ((uint64_t)i << 3) | TAG_LISTENER;
            if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) == 0)
                l->registered = 1;
        } else if (!on && l->registered) {
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
            l->registered = 0;
        }
    }
    w->listening = on;
}

/* accept(2) failed with something other than EAGAIN, a connection's own
 * error, or a shortage: the socket is no longer listening (EINVAL after
 * shutdown(SHUT_RD), which a draining server does to refuse new
 * connections) or is gone.  It would stay readable, so leave it out of the
 * epoll set for good; quietly, since other workers see the same. */
static void listener_closed(pn_worker *w, pn_listener *l)
{
    if (l->registered)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
    l->registered = 0;
    l->closed = 1;
    for (int i = 0; i < w->nlisten; i++)
        if (!w->listeners[i].closed)
            return;
    pn_balance_seat_leave(&w->seat); /* accepts nothing any more */
}

void pn_worker_accept_batch(pn_worker *w, int li)
{
    pn_listener *l = &w->listeners[li];
    int batch = w->accept_batch;
    switch (pn_balance_seat_decide(&w->seat, w->nconns)) {
    case PN_BALANCE_ASIDE:
        if (pn_balance_seat_stand_aside(&w->seat) == 0) {
            /* Over our share: out of the epoll set, so the kernel wakes the
             * others, until the seat's timer says to listen again. */
            pn_worker_listeners_register(w, 0);
            return;
        }
        break;
    case PN_BALANCE_TAKE_ALL:
        batch = ACCEPT_BATCH;
        break;
    }
    for (int n = 0; n < batch; n++) {
        if (w->nconns >= (size_t)w->cfg->max_connections) {
            /* Over our share: leave further connections in the backlog
             * (or to other workers) until one of ours closes. */
            pn_worker_listeners_register(w, 0);
            return;
        }
        struct sockaddr_storage ss;
        socklen_t slen = sizeof(ss);
        int fd;
        {
            BLOCKING_BEGIN(w);
            fd = accept4(l->fd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
            BLOCKING_END(w);
        }
        if (fd < 0) {
            switch (errno) {
            case EAGAIN:
#if EWOULDBLOCK != EAGAIN
            case EWOULDBLOCK:
#endif
                return; /* drained */
            case EINTR:
            /* The connection's own error, reported by accept (accept(2):
             * treat these like EAGAIN and retry). */
            case ECONNABORTED:
            case EPROTO:
            case EPERM:
            case ENETDOWN:
            case ENOPROTOOPT:
            case EHOSTDOWN:
            case ENONET:
            case EHOSTUNREACH:
            case EOPNOTSUPP:
            case ENETUNREACH:
                continue;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                /* Out of descriptors or memory: stop listening for a moment
                 * rather than spinning on a level-triggered listen socket. */
                pn_worker_listeners_register(w, 0);
                pn_timer_arm(&w->wheel, &w->accept_timer, pn_monotonic_ms() + ACCEPT_PAUSE_MS);
                return;
            default:
                listener_closed(w, l);
                return;
            }
        }
        pn_conn *c = pn_slab_alloc(&w->conns);
        if (c == NULL) {
            close(fd);
            return;
        }
        if (!l->is_unix) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        c->fd = fd;
        c->worker = w;
        c->file_fd = -1;
        c->listener = li;
        pn_http1_stream_init(c);
        c->can_write = 1; /* a fresh socket has an empty send buffer */
        memcpy(&c->peer, &ss, slen);
        c->peer_len = slen;
        pn_conn_judge_peer(c);
        pn_http1_parser_init(&c->parser, &w->limits, w->header_space);
        struct epoll_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = c;
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            pn_slab_free(&w->conns, c);
            continue;
        }
        c->next_all = w->all;
        if (w->all)
            w->all->prev_all = c;
        w->all = c;
        w->nconns++;
        pn_balance_seat_accepted(&w->seat, w->nconns);
        pn_metrics_conns(w->metrics, w->nconns, 1);
        /* A connection that never sends a full head is closed at the
         * header deadline (slowloris): absolute from accept for the first
         * request (see PN_CONN_HEAD). */
        arm_in(c, w->header_ms);
        /* TLS begins at once, or after the PROXY header (pn_proxy_phase.c),
         * whose reads are plain. */
        if (w->tls && !w->cfg->proxy_protocol && pn_tls_conn_begin(c) < 0) {
            pn_conn_close_now(c); /* out of memory */
            continue;
        }
        if (w->cfg->proxy_protocol)
            pn_conn_proxy_begin(c); /* may close c */
    }
}
