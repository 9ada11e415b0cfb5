/*
 * pn_worker.c — epoll, connection state machine, timers.  Accepting
 * connections is in pn_accept.c, the PROXY protocol phase in
 * pn_proxy_phase.c, reads and writes in pn_conn_io.c; what they share is
 * in pn_worker_int.h.
 *
 * See pn_worker.h for the threading and re-entrancy contract.  In short:
 * everything here runs on the worker's own thread; hooks into the bridge
 * are called only from pn_worker_poll(); work created by the bridge's calls
 * is queued on the pending list and done by the next poll.
 */
#include "pn_h2.h"
#include "pn_worker_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pn_access_log.h"
#include "pn_balance.h"
#include "pn_http_token.h"
#include "pn_log.h"
#include "pn_request_id.h"
#include "pn_static.h"

/* conn_process stays out of line on purpose: its phases make it large once
 * inlined into it, and inlined in turn into process_pending it kept that
 * from being inlined at pn_worker_poll's three call sites, the shape the
 * code had before the phases were split out.  Callgrind, plaintext
 * workload: 57 instructions more per request without this, 5 with it. */
/* (NOINLINE and ALWAYS_INLINE: pn_worker_int.h.) */

static NOINLINE void conn_process(pn_conn *c);

/* ---- small helpers -------------------------------------------------- */

static uint64_t secs_to_ms(double s)
{
    if (s <= 0)
        return 0;
    return (uint64_t)(s * 1000.0 + 0.5);
}

static void timers_sync(pn_worker *w)
{
    /* Run the 100 ms tick while some timer is armed or connections exist
     * (their deadlines come and go with every request: toggling the
     * timerfd each time would cost a syscall per batch). */
    int want = w->wheel.armed > 0 || w->nconns > 0;
    if (want == w->timer_running)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (want) {
        its.it_value.tv_nsec = PN_TIMER_TICK_MS * 1000000L;
        its.it_interval.tv_nsec = PN_TIMER_TICK_MS * 1000000L;
    }
    if (timerfd_settime(w->tfd, 0, &its, NULL) == 0)
        w->timer_running = want;
}

/* ---- connection life ------------------------------------------------ */

int pn_conn_write_simple(pn_conn *c, pn_buf *out, int status, int close)
{
    pn_worker *w = c->worker;
    pn_http1_head_opts opts = pn_worker_head_opts(w);
    const char *name = c->stream.request_id_len ? w->cfg->request_id_header : NULL;
    return pn_http1_write_simple_field(out, status, &opts, close, NULL, name, w->rid_name_len,
                                       c->stream.request_id, c->stream.request_id_len);
}

/* --request-id: a new ID for an answer to a head that did not parse (its
 * fields cannot be trusted, the client's ID among them). */
static void request_id_new(pn_conn *c)
{
    pn_worker *w = c->worker;
    if (w->rid_name_len)
        c->stream.request_id_len =
            (unsigned char)pn_request_id_generate(&w->rid, c->stream.request_id);
}

/* The access line of an answer the worker gave itself (no app): its
 * request's head was parsed, so its headers are at hand. */
static void log_early_answer(pn_conn *c, const pn_http1_request *req, int status, uint64_t bytes)
{
    pn_access_rec rec = pn_access_rec_of(req, status, bytes);
    pn_conn_access_log(c, &rec);
}

/* Answer `status` and close.  line: the request line, when it was read
 * (its method, target and version are logged), or NULL ("- -"). */
static void conn_error_answer(pn_conn *c, int status, const pn_http1_request *line)
{
    pn_worker *w = c->worker;
    pn_conn_write_simple(c, &c->wbuf, status, 1);
    pn_metrics_early(w->metrics, status);
    c->phase = PN_CONN_CLOSING;
    c->keep_alive = 0;
    if (w->cfg->access_log && w->cfg->log_level <= PN_LOG_INFO) {
        pn_access_rec rec = {
            .method = line ? line->method : "-",
            .method_len = line ? line->method_len : 1,
            .target = line ? line->target : "-",
            .target_len = line ? line->target_len : 1,
            .version_minor = line ? line->version_minor : 1,
            .status = status,
        };
        pn_conn_access_log(c, &rec);
    }
}

static void conn_error_response(pn_conn *c, int status)
{
    conn_error_answer(c, status, NULL);
}

static void begin_closing(pn_conn *c)
{
    c->phase = PN_CONN_CLOSING;
    arm_in(c, c->worker->request_ms);
}

/* No further request will be read (the client sent FIN, or we stop):
 * close once the output already owed has gone out (PN_CONN_CLOSING),
 * never cutting it.  With nothing owed, or a dead socket, close now. */
static void conn_end(pn_conn *c)
{
    if (c->dead || !output_pending(c)) {
        pn_conn_close_now(c);
        return;
    }
    c->keep_alive = 0;
    begin_closing(c);
    queue_conn(c);
}

/* Start the next request cycle on a persistent connection.  Inlined: with
 * a second caller (pn_worker_answered) the compiler moved it out of line, 29
 * instructions more per request (callgrind, plaintext). */
static ALWAYS_INLINE void next_cycle(pn_conn *c)
{
    pn_worker *w = c->worker;
    c->phase = PN_CONN_HEAD;
    c->head_started = 0;
    c->sent_continue = 0;
    c->expect_continue = 0;
    c->body_error = 0;
    pn_http1_parser_reset(&c->parser);
    if (pn_buf_live(&c->rbuf) == 0) {
        bufs_give(c); /* idle: no buffer held until the next bytes */
        arm_in(c, w->keepalive_ms);
    } else {
        c->head_started = 1;
        arm_in(c, w->header_ms);
    }
}

void pn_conn_response_done(pn_conn *c, int keep_alive)
{
    pn_worker *w = c->worker;
    if (!c->in_request)
        return;
    c->in_request = 0;
    c->body_wanted = 0;
    c->drain_wanted = 0;
    c->stream.udata = NULL;
    if (c->dead) {
        queue_conn(c);
        return;
    }
    if (!keep_alive || !c->keep_alive || c->closing_soon || w->draining || c->body_error) {
        c->keep_alive = 0;
        begin_closing(c);
        queue_conn(c);
        return;
    }
    pn_conn_drop_decoded_body(c);
    if (!c->body.done) {
        /* The app did not read the whole body.  Discard a bounded amount
         * so the connection can persist; never parse it as a request. */
        if (c->expect_continue && !c->sent_continue) {
            /* The client may be waiting for 100 Continue before sending
             * the body (RFC 9110 §10.1.1): we cannot know, so close. */
            begin_closing(c);
            queue_conn(c);
            return;
        }
        if (c->body.kind == PN_BODY_LENGTH && c->body.remaining > DRAIN_MAX) {
            begin_closing(c);
            queue_conn(c);
            return;
        }
        c->phase = PN_CONN_DRAINING;
        c->drained = 0;
        arm_in(c, w->request_ms);
        queue_conn(c);
        return;
    }
    next_cycle(c);
    /* The common end of a response: it was written inside one app step
     * (step_cork, no pipelining cork) on a writable socket.  The step's
     * pn_conn_uncork sends it and pn_conn_flush_output gives the buffers
     * back once it is out (or EPOLLOUT brings the connection back), so it
     * needs no pass of its own.  Queueing it anyway cost a second loop
     * callback and an empty epoll_wait for every request answered outside
     * the worker's poll (CPython 3.11, and any app that awaits). */
    int owed = output_pending(c) && !(c->step_cork && !c->corked && c->can_write);
    if (pn_buf_live(&c->rbuf) > 0 || c->can_read || c->peer_closed || owed) {
        queue_conn(c);
        return;
    }
    if (c->ssl && !output_pending(c))
        pn_tls_conn_idle(c); /* it waits for the next request */
    if (!w->in_poll)
        timers_sync(w);
}

void pn_conn_close(pn_conn *c)
{
    c->dead = 1;
    queue_conn(c);
}

void pn_conn_set_stall_timer(pn_conn *c, int on)
{
    if (c->phase != PN_CONN_REQUEST)
        return;
    if (on)
        arm_in(c, c->worker->request_ms);
    else
        pn_timer_cancel(&c->worker->wheel, &c->timer);
    if (!c->worker->in_poll)
        timers_sync(c->worker);
}

static void conn_unlink(pn_conn *c)
{
    pn_worker *w = c->worker;
    if (c->prev_all)
        c->prev_all->next_all = c->next_all;
    else
        w->all = c->next_all;
    if (c->next_all)
        c->next_all->prev_all = c->prev_all;
    if (c->queued) {
        pn_conn **pp = &w->pending, *prev = NULL;
        while (*pp && *pp != c) {
            prev = *pp;
            pp = &(*pp)->next_pending;
        }
        if (*pp) {
            *pp = c->next_pending;
            if (w->pending_tail == c)
                w->pending_tail = prev;
        }
        c->queued = 0;
    }
}

void pn_conn_close_now(pn_conn *c)
{
    pn_worker *w = c->worker;
    pn_timer_cancel(&w->wheel, &c->timer);
    conn_unlink(c);
    if (c->ssl) {
        if (!c->dead && !c->lingering)
            pn_tls_close_notify(c);
        pn_tls_conn_free(c);
    }
    if (c->fd >= 0) {
        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
    }
    if (c->file_fd >= 0) {
        close(c->file_fd);
        c->file_fd = -1;
    }
    c->dead = 1;
    if (c->h2)
        pn_h2_conn_free(c); /* its streams' on_close first */
    if (c->stream.udata || c->in_request)
        w->hooks.on_close(w->ctx, &c->stream);
    pn_buf_free(&c->rbuf);
    pn_buf_free(&c->wbuf);
    pn_slab_free(&w->conns, c);
    w->nconns--;
    pn_balance_seat_publish(&w->seat, w->nconns);
    pn_metrics_conns(w->metrics, w->nconns, 0);
    if (!w->draining && !w->listening && !pn_timer_armed(&w->accept_timer) && !w->seat.aside &&
        w->nconns < (size_t)w->cfg->max_connections)
        pn_worker_listeners_register(w, 1);
}

/* Lingering close (RFC 9112 §9.6): after an error response the client may
 * still be sending; closing with unread input makes the kernel send RST,
 * which can destroy the response before the client reads it.  Shut our
 * write side, discard input for a short while, then close. */
static void conn_linger(pn_conn *c)
{
    if (!c->lingering) {
        c->lingering = 1;
        pn_tls_close_notify(c); /* TLS: our last record, before the FIN */
        shutdown(c->fd, SHUT_WR);
        pn_timer_arm(&c->worker->wheel, &c->timer, pn_monotonic_ms() + LINGER_MS);
        pn_buf_clear(&c->rbuf);
    }
    while (c->can_read && !c->peer_closed && !c->dead) {
        pn_buf_clear(&c->rbuf);
        pn_conn_read_input(c, READ_CHUNK);
        c->drained += pn_buf_live(&c->rbuf);
        if (c->drained > LINGER_MAX)
            break;
    }
    pn_buf_clear(&c->rbuf);
    if (c->peer_closed || c->dead || c->drained > LINGER_MAX)
        pn_conn_close_now(c);
}

/* CONNECT asks for a tunnel (RFC 9110 §9.3.6): a 2xx answer turns the
 * connection into one, which may carry no Content-Length nor be parsed as
 * HTTP any more.  Pounce does not tunnel, so the app never sees a CONNECT:
 * 501 (the method is not supported for any resource, §15.6.2) and close. */
static int refuse_connect(pn_conn *c, const pn_http1_request *req)
{
    if (!pn_http_eq(req->method, req->method_len, PN_STRLIT("CONNECT")))
        return 0;
    pn_worker *w = c->worker;
    pn_buf_consume(&c->rbuf, req->head_len);
    pn_conn_write_simple(c, &c->wbuf, 501, 1);
    pn_metrics_early(w->metrics, 501);
    c->phase = PN_CONN_CLOSING;
    c->keep_alive = 0;
    if (w->cfg->access_log && w->cfg->log_level <= PN_LOG_INFO)
        log_early_answer(c, req, 501, 0);
    arm_in(c, w->request_ms);
    queue_conn(c);
    return 1;
}

void pn_worker_answered(pn_conn *c, const pn_http1_request *req, int status, uint64_t bytes,
                        int keep)
{
    pn_worker *w = c->worker;
    c->requests++;
    pn_metrics_early(w->metrics, status);
    if (req != NULL && w->cfg->access_log && w->cfg->log_level <= PN_LOG_INFO)
        log_early_answer(c, req, status, bytes);
    if (keep && !c->dead) {
        next_cycle(c);
    } else {
        c->keep_alive = 0;
        begin_closing(c);
    }
    queue_conn(c);
}

static void conn_dispatch(pn_conn *c, pn_http1_request *req)
{
    pn_worker *w = c->worker;
    /* --request-id: chosen first, so that every answer carries it. */
    if (__builtin_expect(w->rid_name_len != 0, 0))
        c->stream.request_id_len = (unsigned char)pn_request_id_take(
            &w->rid, req->headers, req->num_headers, w->cfg->request_id_header, w->rid_name_len,
            c->stream.request_id);
    if (refuse_connect(c, req))
        return;
    if (__builtin_expect(w->answers, 0) && pn_worker_answer_conn(c, req))
        return;
    c->phase = PN_CONN_REQUEST;
    c->in_request = 1;
    c->requests++;
    c->keep_alive = (req->flags & PN_REQ_KEEP_ALIVE) != 0;
    c->expect_continue = (req->flags & PN_REQ_EXPECT_CONTINUE) != 0;
    c->http11 = req->version_minor >= 1;
    /* TE: trailers (pn_stream.h); the parser flagged whether there is a TE
     * field to scan for it. */
    c->stream.trailers = (req->flags & PN_REQ_TE) && pn_http1_accepts_trailers(req);
    c->resp_started = c->close_watch = c->probed = 0;
    pn_timer_cancel(&w->wheel, &c->timer);
    pn_http1_body_init(&c->body, req, (uint64_t)w->cfg->max_request_size,
                       (size_t)w->cfg->max_header_size);
    c->body_ready = c->body_gap = 0;
    c->body_error = 0;
    /* The head bytes stay where they are (consume only moves the cursor),
     * so req's slices remain valid throughout on_request's scope building. */
    pn_buf_consume(&c->rbuf, req->head_len);
    pn_conn_decode_body(c);
    pn_http1_parser_reset(&c->parser);
    /* More requests already buffered behind this one (pipelining): what
     * the app answers while on_request runs (an eager task) is held and
     * sent together with the next answers. */
    c->corked = c->body.done && pn_buf_live(&c->rbuf) > c->body_ready + c->body_gap;
    int rc = w->hooks.on_request(w->ctx, &c->stream, req);
    c->corked = 0;
    if (output_pending(c))
        queue_conn(c); /* flushed by conn_process, after the next requests */
    if (rc < 0 && c->in_request) {
        c->in_request = 0;
        c->stream.udata = NULL;
        if (!c->dead)
            conn_error_response(c, 500);
        queue_conn(c);
    }
}

/* conn_process runs a queued connection: first what every phase shares
 * (a dead socket, output to flush, a drain owed to the bridge), then the
 * step of its phase.  Each step ends by closing the connection, queueing
 * it again, or waiting for the next epoll event. */

/* The shared part.  Returns 0 to go on with the phase, -1 when the
 * connection was closed (c is freed). */
static int conn_output_step(pn_conn *c)
{
    pn_worker *w = c->worker;
    /* EPOLLHUP/EPOLLERR outside a close of ours: reset, or both directions
     * gone.  Unlike a FIN, nothing we send can arrive any more. */
    if (c->hup && c->phase != PN_CONN_CLOSING)
        c->dead = 1;
    if (c->dead) {
        pn_conn_close_now(c);
        return -1;
    }
    /* With more pipelined input to answer, keep coalescing (bounded). */
    int more_input =
        c->phase == PN_CONN_HEAD && pn_buf_live(&c->rbuf) > 0 && pn_buf_live(&c->wbuf) < CORK_MAX;
    if (output_pending(c) && c->can_write && !more_input) {
        if (pn_conn_flush_output(c) < 0) {
            pn_conn_close_now(c);
            return -1;
        }
    }
    if (c->drain_wanted && pn_buf_live(&c->wbuf) <= (size_t)w->cfg->write_buffer_size / 2 &&
        c->file_fd < 0) {
        c->drain_wanted = 0;
        if (c->in_request)
            w->hooks.on_drain(w->ctx, &c->stream);
        if (c->dead) {
            pn_conn_close_now(c);
            return -1;
        }
    }
    return 0;
}

/* A connection's first bytes, unless --http 1: the HTTP/2 preface (prior
 * knowledge, RFC 9113 §3.3) makes it an HTTP/2 connection; with --http 2
 * anything else is answered 505.  0: go on with HTTP/1.1; 1: handled (c
 * may be freed, or waits for more of the preface). */
static NOINLINE int h2_or_not(pn_conn *c)
{
    int m = pn_h2_preface_match(pn_buf_head(&c->rbuf), pn_buf_live(&c->rbuf));
    if (m > 0) {
        if (pn_h2_conn_begin(c) < 0)
            pn_conn_close_now(c);
        return 1;
    }
    if (m == 0 && !c->peer_closed)
        return 1; /* a prefix of the preface: wait for the rest */
    if (c->worker->cfg->http == PN_HTTP_2) {
        request_id_new(c);
        conn_error_answer(c, 505, NULL);
        arm_in(c, c->worker->request_ms);
        queue_conn(c);
        return 1;
    }
    return 0;
}

/* PN_CONN_HEAD: read and parse a request head, then hand it to the bridge. */
void pn_conn_phase_head(pn_conn *c)
{
    pn_worker *w = c->worker;
    pn_conn_read_input(c, w->limits.max_head + 1);
    if (c->dead) {
        pn_conn_close_now(c);
        return;
    }
    if (pn_buf_live(&c->rbuf) == 0) {
        if (c->peer_closed || (w->draining && w->close_idle))
            conn_end(c);
        return;
    }
    if (__builtin_expect(c->file_fd >= 0, 0)) {
        /* A pipelined request behind a file still being sent: answer it
         * once the file is out (an answer written now would go out ahead
         * of the file's rest). */
        if (c->can_write && pn_conn_flush_output(c) < 0) {
            pn_conn_close_now(c);
            return;
        }
        if (c->file_fd >= 0)
            return; /* EPOLLOUT brings us back */
    }
    if (__builtin_expect(c->requests == 0 && !c->head_started, 0) && w->cfg->http != PN_HTTP_1 &&
        h2_or_not(c) != 0)
        return;
    if (!c->head_started) {
        /* The header deadline is absolute.  For a connection's first
         * request it runs from accept (armed there, not moved here: a
         * client that waits, then trickles, still gets one deadline);
         * before a later request the keep-alive timeout bounds the
         * wait, and the head has header_timeout from its first byte. */
        c->head_started = 1;
        if (c->requests > 0)
            arm_in(c, w->header_ms);
    }
    pn_http1_request req;
    int rc = pn_http1_parse_head(&c->parser, pn_buf_head(&c->rbuf), pn_buf_live(&c->rbuf), &req);
    if (rc == PN_HTTP1_INCOMPLETE) {
        if (c->peer_closed) {
            /* A partial head, then FIN: nothing to answer.  Responses
             * to earlier pipelined requests still go out first. */
            conn_end(c);
            return;
        }
        if (output_pending(c) && c->can_write && pn_conn_flush_output(c) < 0)
            pn_conn_close_now(c);
        return;
    }
    if (rc == PN_HTTP1_ERROR) {
        int status = c->parser.error_status ? c->parser.error_status : 400;
        /* The access line names the request when its line was read
         * (413, 431, a bad header); not a 414's endless target. */
        pn_http1_request line;
        int named = status != 414 &&
                    pn_http1_parse_request_line(pn_buf_head(&c->rbuf), pn_buf_live(&c->rbuf),
                                                &line) == PN_HTTP1_OK;
        request_id_new(c);
        conn_error_answer(c, status, named ? &line : NULL);
        arm_in(c, w->request_ms);
        queue_conn(c);
        return;
    }
    conn_dispatch(c, &req);
    /* The client's FIN may have come with the head (read above, no
     * further event will announce it): let the REQUEST phase see it. */
    if (c->peer_closed && c->in_request)
        queue_conn(c);
}

/* PN_CONN_REQUEST: the app has the request; read and decode its body. */
static void phase_request(pn_conn *c)
{
    pn_worker *w = c->worker;
    if (c->body_error) {
        /* A framing error in the body: read nothing more.  The bridge
         * answers 400/413 when the app asks for the body (or closes
         * after the app's own response); never parse past it. */
    } else if (!c->body.done) {
        if (c->body_wanted || pn_buf_live(&c->rbuf) < BODY_BUFFER_MAX)
            pn_conn_read_input(c, BODY_BUFFER_MAX);
        if (pn_conn_decode_body(c) < 0) {
            /* body_error is set; reported through on_body/pn_conn_body */
        } else if (c->peer_closed && !c->body.done) {
            c->dead = 1; /* client went away mid-body */
        }
    } else {
        /* Keep reading a little past the body: it buffers pipelined
         * requests for later, and an error (RST) shows a client that
         * went away.  A FIN does not: it ends the client's sending,
         * not its reading (RFC 9112 §9.6; `nc -N`, HTTP/1.0-style
         * clients and health checkers half-close and wait for the
         * answer).  The response is delivered, then the connection
         * closes (PN_CONN_HEAD finds no more input). */
        pn_conn_read_input(c, c->body_ready + c->body_gap + LOOKAHEAD_MAX);
        pn_conn_probe_if_due(c);
    }
    if (c->body_wanted && (c->body_ready > 0 || c->body.done || c->dead || c->body_error)) {
        c->body_wanted = 0;
        w->hooks.on_body(w->ctx, &c->stream);
    }
    if (c->dead)
        pn_conn_close_now(c);
}

/* PN_CONN_DRAINING: the response is done; discard the unread body
 * (bounded), then start the next request cycle. */
static void phase_draining(pn_conn *c)
{
    for (;;) {
        pn_conn_drop_decoded_body(c);
        if (pn_conn_decode_body(c) < 0) {
            conn_end(c);
            return;
        }
        c->drained += c->body_ready;
        pn_conn_drop_decoded_body(c);
        if (c->body.done)
            break;
        if (c->drained > DRAIN_MAX || c->peer_closed || c->dead) {
            conn_end(c); /* the response may still be in wbuf */
            return;
        }
        if (!c->can_read)
            return;
        pn_conn_read_input(c, READ_CHUNK * 2);
    }
    next_cycle(c);
    if (pn_buf_live(&c->rbuf) > 0 || c->can_read)
        queue_conn(c);
}

/* PN_CONN_CLOSING: flush what is owed, then close (lingering). */
static void phase_closing(pn_conn *c)
{
    if (output_pending(c))
        return; /* wait for EPOLLOUT */
    conn_linger(c);
}

/* PN_CONN_WS: bytes go to the bridge's WebSocket parser. */
static void phase_ws(pn_conn *c)
{
    pn_worker *w = c->worker;
    if (c->closing_soon && !c->ws_going_away) {
        c->ws_going_away = 1;
        w->hooks.on_ws(w->ctx, c, PN_WS_EV_GOING_AWAY);
        if (c->phase != PN_CONN_WS) /* the bridge finished it */
            return;
    }
    /* Read, let the bridge parse, and go on while it makes room (a
     * message larger than ws_limit streams through the buffer). */
    for (int round = 0; round < WS_ROUNDS_MAX && c->phase == PN_CONN_WS; round++) {
        pn_conn_read_input(c, c->ws_limit);
        if (c->dead) {
            pn_conn_close_now(c);
            return;
        }
        size_t before = pn_buf_live(&c->rbuf);
        if (before > 0)
            w->hooks.on_ws(w->ctx, c, PN_WS_EV_READABLE);
        if (c->phase != PN_CONN_WS)
            return; /* the bridge finished the connection */
        if (!c->can_read || c->peer_closed || pn_buf_live(&c->rbuf) == before)
            break; /* nothing more to read, or the bridge paused */
    }
    if (c->phase == PN_CONN_WS && c->can_read && !c->peer_closed &&
        pn_buf_live(&c->rbuf) < c->ws_limit)
        queue_conn(c); /* out of rounds: continue at the next poll */
    if (c->phase == PN_CONN_WS && (c->peer_closed || c->dead)) {
        pn_conn_close_now(c); /* on_close tells the bridge: 1006 unless it saw a close */
        return;
    }
    if (c->phase == PN_CONN_WS)
        bufs_give(c); /* between messages: no buffer held (issue 17) */
}

static void conn_process(pn_conn *c)
{
    if (conn_output_step(c) < 0)
        return;
    switch (c->phase) {
    case PN_CONN_HEAD:
        pn_conn_phase_head(c);
        return;
    case PN_CONN_REQUEST:
        phase_request(c);
        return;
    case PN_CONN_DRAINING:
        phase_draining(c);
        return;
    case PN_CONN_CLOSING:
        phase_closing(c);
        return;
    case PN_CONN_WS:
        phase_ws(c);
        return;
    case PN_CONN_PROXY:
        pn_conn_phase_proxy(c);
        return;
    case PN_CONN_TLS:
        pn_conn_phase_tls(c);
        return;
    case PN_CONN_H2:
        pn_conn_phase_h2(c);
        return;
    }
}

void pn_conn_upgrade(pn_conn *c, size_t read_limit)
{
    c->phase = PN_CONN_WS;
    c->ws_limit = read_limit;
    c->keep_alive = 0;
    pn_timer_cancel(&c->worker->wheel, &c->timer);
    queue_conn(c);
}

void pn_conn_set_timer(pn_conn *c, uint64_t ms)
{
    arm_in(c, ms);
    if (!c->worker->in_poll)
        timers_sync(c->worker);
}

void pn_conn_ws_resume(pn_conn *c)
{
    queue_conn(c);
}

void pn_conn_finish(pn_conn *c)
{
    c->in_request = 0;
    c->stream.udata = NULL;
    c->keep_alive = 0;
    if (c->dead) {
        queue_conn(c);
        return;
    }
    c->phase = PN_CONN_CLOSING;
    arm_in(c, c->worker->request_ms);
    queue_conn(c);
}

static void process_pending(pn_worker *w)
{
    while (w->pending) {
        pn_conn *c = w->pending;
        w->pending = c->next_pending;
        if (w->pending == NULL)
            w->pending_tail = NULL;
        c->queued = 0;
        conn_process(c);
    }
}

static void on_timer(pn_timer *t, void *ctx)
{
    pn_worker *w = ctx;
    if (t == &w->accept_timer) {
        if (!w->draining && w->nconns < (size_t)w->cfg->max_connections)
            pn_worker_listeners_register(w, 1);
        return;
    }
    pn_conn *c = (pn_conn *)((char *)t - offsetof(pn_conn, timer));
    if (c->phase == PN_CONN_WS && !c->dead) {
        w->hooks.on_ws(w->ctx, c, PN_WS_EV_TIMER);
        return;
    }
    if (c->phase == PN_CONN_H2 && !c->dead) {
        pn_h2_on_timer(c);
        return;
    }
    if (c->phase == PN_CONN_HEAD && c->head_started && !c->dead) {
        /* The head did not arrive in time: say so, then close. */
        conn_error_response(c, 408);
        arm_in(c, LINGER_MS);
        queue_conn(c);
        return;
    }
    if (c->phase == PN_CONN_HEAD && output_pending(c) && !c->dead) {
        /* Idle past the keep-alive deadline, but the last response is
         * still going out to a slow reader: finish it (under the write
         * stall deadline of PN_CONN_CLOSING), then close.  Cutting it
         * would truncate a response the app completed. */
        conn_end(c);
        return;
    }
    pn_conn_close_now(c);
}

/* ---- worker --------------------------------------------------------- */

pn_worker *pn_worker_new(const pn_config *cfg, const int *listen_fds, const int *is_unix,
                         int nlisten, const pn_worker_hooks *hooks, void *ctx)
{
    pn_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->cfg = cfg;
    pn_slab_init(&w->conns, sizeof(pn_conn));
    pn_alog_init(&w->alog, cfg->access_log_format);
    w->accept_batch = ACCEPT_BATCH;
    w->hooks = *hooks;
    w->ctx = ctx;
    w->epfd = w->evfd = w->tfd = -1;
    pn_balance_seat_init(&w->seat);
    w->limits.max_request_line = (size_t)cfg->max_request_line;
    w->limits.max_head = (size_t)cfg->max_header_size;
    w->limits.max_headers = (size_t)cfg->max_headers;
    w->limits.max_body = (uint64_t)cfg->max_request_size;
    w->header_ms = secs_to_ms(cfg->header_timeout);
    w->health_len = cfg->health_path ? strlen(cfg->health_path) : 0; /* (C tests leave it NULL) */
    w->statics = cfg->static_mount ? pn_static_new(cfg) : NULL;      /* (C tests leave it NULL) */
    if (w->statics == NULL && errno != 0 && cfg->static_mount && cfg->static_mount[0])
        goto fail;
    w->answers = w->health_len > 0 || (cfg->limit_concurrency > 0 && hooks->in_flight != NULL) ||
                 w->statics != NULL;
    w->keepalive_ms = secs_to_ms(cfg->keep_alive_timeout);
    if (cfg->request_id && cfg->request_id_header != NULL) { /* (C tests leave it NULL) */
        w->rid_name_len = strlen(cfg->request_id_header);
        pn_request_id_seed(&w->rid);
    }
    w->request_ms = secs_to_ms(cfg->request_timeout);
    w->header_space = calloc((size_t)cfg->max_headers, sizeof(pn_http1_header));
    char trust_err[160];
    const char *allow = cfg->forwarded_allow_ips ? cfg->forwarded_allow_ips : "";
    w->trust = pn_trust_new(allow, strlen(allow), trust_err, sizeof trust_err);
    if (w->trust == NULL) {
        errno = EINVAL; /* Config validated the list: out of memory, or a caller's bad config */
        goto fail;
    }
    w->listeners = calloc((size_t)(nlisten > 0 ? nlisten : 1), sizeof(pn_listener));
    if (w->header_space == NULL || w->listeners == NULL)
        goto fail;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->epfd < 0 || w->evfd < 0 || w->tfd < 0)
        goto fail;
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = TAG_EVENTFD;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0)
        goto fail;
    ev.data.u64 = TAG_TIMERFD;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tfd, &ev) < 0)
        goto fail;
    pn_wheel_init(&w->wheel, pn_monotonic_ms());
    w->nlisten = nlisten;
    for (int i = 0; i < nlisten; i++) {
        w->listeners[i].fd = listen_fds[i];
        w->listeners[i].is_unix = is_unix ? is_unix[i] : 0;
    }
    pn_worker_listeners_register(w, 1);
    return w;
fail : {
    int e = errno;
    pn_worker_free(w);
    errno = e ? e : ENOMEM;
    return NULL;
}
}

void pn_worker_close_all(pn_worker *w)
{
    while (w->all)
        pn_conn_close_now(w->all);
}

void pn_worker_free(pn_worker *w)
{
    if (w == NULL)
        return;
    pn_worker_close_all(w);
    pn_worker_flush_log(w);
    pn_balance_seat_close(&w->seat);
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->evfd >= 0)
        close(w->evfd);
    if (w->tfd >= 0)
        close(w->tfd);
    pn_alog_free(&w->alog);
    pn_slab_destroy(&w->conns);
    while (w->rbuf_pooled > 0)
        free(w->rbuf_pool[--w->rbuf_pooled]);
    pn_static_free(w->statics);
    free(w->header_space);
    free(w->listeners);
    pn_trust_free(w->trust);
    free(w);
}

void pn_worker_set_shared(pn_worker *w, int shared)
{
    w->accept_batch = shared ? 1 : ACCEPT_BATCH;
}

const pn_trust *pn_worker_trust(const pn_worker *w)
{
    return w->trust;
}

int pn_worker_set_balance(pn_worker *w, pn_balance *table, int slot)
{
    if (w->accept_batch == ACCEPT_BATCH || w->draining)
        return 0; /* nobody to balance with, or accepting no more */
    if (pn_balance_seat_join(&w->seat, table, slot, w->nconns) < 0)
        return -1;
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = TAG_BALANCE;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, pn_balance_seat_fd(&w->seat), &ev) < 0) {
        int e = errno;
        pn_balance_seat_close(&w->seat);
        errno = e;
        return -1;
    }
    return 0;
}

void pn_worker_set_metrics(pn_worker *w, pn_metrics_slot *slot)
{
    w->metrics = slot;
}

void pn_worker_set_tls(pn_worker *w, const pn_tls_ctx *t)
{
    w->tls = t;
}

int pn_worker_fd(const pn_worker *w)
{
    return w->epfd;
}
size_t pn_worker_connections(const pn_worker *w)
{
    return w->nconns;
}

void pn_worker_wake(pn_worker *w)
{
    uint64_t one = 1;
    ssize_t r = write(w->evfd, &one, sizeof(one));
    (void)r;
}

pn_http1_head_opts pn_worker_head_opts(pn_worker *w)
{
    pn_http1_head_opts opts = {NULL, w->cfg->server_header ? "pounce" : NULL};
    if (w->cfg->date_header)
        opts.date = pn_date_get(&w->date, time(NULL));
    return opts;
}

int pn_worker_poll(pn_worker *w)
{
    struct epoll_event evs[EVENT_BATCH];
    w->in_poll = 1;
    w->wakeup_asked = 0;
    process_pending(w);
    int tick = 0;
    for (int round = 0; round < POLL_ROUNDS_MAX; round++) {
        int n = epoll_wait(w->epfd, evs, EVENT_BATCH, 0);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64 & TAG_MASK;
            if (tag == TAG_LISTENER) {
                if (!w->draining)
                    pn_worker_accept_batch(w, (int)(evs[i].data.u64 >> 3));
                continue;
            }
            if (tag == TAG_EVENTFD) {
                uint64_t v;
                ssize_t r = read(w->evfd, &v, sizeof(v));
                (void)r;
                continue;
            }
            if (tag == TAG_BALANCE) {
                /* The stand-aside is over: listen again and decide anew
                 * (at once, if a connection is waiting). */
                pn_balance_seat_expired(&w->seat);
                if (!w->draining && !pn_timer_armed(&w->accept_timer) &&
                    w->nconns < (size_t)w->cfg->max_connections)
                    pn_worker_listeners_register(w, 1);
                continue;
            }
            if (tag == TAG_TIMERFD) {
                uint64_t v;
                ssize_t r = read(w->tfd, &v, sizeof(v));
                (void)r;
                /* Deadlines are handled after this batch: closing a
                 * connection frees it, and a later entry of evs[] may
                 * still name it. */
                tick = 1;
                continue;
            }
            pn_conn *c = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->can_read = 1;
            if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->rdhup = 1;
            if (e & (EPOLLHUP | EPOLLERR))
                c->hup = 1;
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                c->can_write = 1;
            /* Process through the pending list: a connection closed by an
             * earlier event of this batch is unlinked from it, so a stale
             * pointer in evs[] is never touched after free. */
            enqueue(w, c);
        }
        /* Closing a connection frees it; later events in evs[] may name it.
         * Queue-then-process avoids that: closed conns leave the queue. */
        process_pending(w);
        if (n < EVENT_BATCH)
            break;
    }
    if (tick) {
        pn_wheel_advance(&w->wheel, pn_monotonic_ms(), on_timer, w);
    }
    process_pending(w);
    timers_sync(w);
    pn_worker_flush_log(w);
    w->in_poll = 0;
    return 0;
}

int pn_worker_drain(pn_worker *w, unsigned how)
{
    int close_idle = (how & PN_DRAIN_CLOSE_IDLE) != 0;
    w->draining = 1;
    w->close_idle |= close_idle;
    w->stopping |= (how & PN_DRAIN_SHUTDOWN) != 0;
    pn_worker_listeners_register(w, 0);
    pn_timer_cancel(&w->wheel, &w->accept_timer);
    pn_balance_seat_leave(&w->seat);
    pn_conn *c = w->all;
    while (c) {
        pn_conn *next = c->next_all;
        c->closing_soon = 1;
        if (c->phase == PN_CONN_WS || c->phase == PN_CONN_H2)
            queue_conn(c); /* GOING_AWAY / GOAWAY at the next poll */
        if (close_idle && ((c->phase == PN_CONN_HEAD && !c->in_request &&
                            pn_buf_live(&c->rbuf) == 0 && !output_pending(c)) ||
                           c->phase == PN_CONN_PROXY || c->phase == PN_CONN_TLS))
            pn_conn_close_now(c);
        c = next;
    }
    return (int)w->nconns;
}

pn_alog *pn_worker_alog(pn_worker *w)
{
    return &w->alog;
}

int pn_worker_in_poll(const pn_worker *w)
{
    return w->in_poll;
}
