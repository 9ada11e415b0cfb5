/*
 * pn_h2.c — HTTP/2 connections (pn_h2.h): the session and its streams'
 * life; the streams' ops, the seam's side, are pn_h2_stream.c.
 *
 * One nghttp2 server session per connection.  The phase feeds it what the
 * socket brings (nghttp2_session_mem_recv), hands the requests whose
 * header blocks completed to the bridge after each read (so a stream reset
 * in the same read never reaches the app: CVE-2023-44487), delivers the
 * body, drain and close events, then lets the session write its frames
 * into the connection's wbuf (nghttp2_session_mem_send) while the output
 * stays below --write-buffer-size: input is read only while it does, so a
 * client that never reads cannot make the server queue without bound.
 *
 * Flow control (RFC 9113 §5.2): automatic WINDOW_UPDATEs are off.  The
 * connection window is given back as DATA arrives (the bytes are then held
 * by their stream), a stream's window as the app reads its body, so a
 * stream's buffered body never exceeds its window and a stream whose app
 * does not read stalls itself only.  Responses go out through a data
 * provider reading the stream's own queue; send() waits (PN_IO_WAIT) while
 * that queue holds more than --write-buffer-size, and on_drain follows
 * when nghttp2 has taken it down to half.
 *
 * Threads and ownership: pn_h2.h.
 */
#include <errno.h>
#include <sys/types.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pn_h2_int.h"
#include "pn_http_token.h"

/* Rapid reset (CVE-2023-44487): RST_STREAMs a client may send, as a token
 * bucket: a burst of 1000, refilled at 33 per second (nghttp2's own
 * defaults since 1.57, set explicitly). */
#define H2_RESET_BURST 1000
#define H2_RESET_RATE 33
/* CONTINUATION flood (CVE-2024-27316): CONTINUATION frames per header
 * block; 8 leaves room for any real block of --max-header-size. */
#define H2_MAX_CONTINUATIONS 8
/* SETTINGS entries per frame, and SETTINGS/PING ACKs queued unsent before
 * the session fails with ENHANCE_YOUR_CALM (floods, RFC 9113 §10.5). */
#define H2_MAX_SETTINGS 32
#define H2_MAX_OUTBOUND_ACK 1000
/* The connection's receive window: the streams' windows added up, within
 * these bounds. */
#define H2_CONN_WINDOW_MAX (16u << 20)
/* Reads and session passes per phase step, so one busy connection cannot
 * keep the loop. */
#define H2_ROUNDS_MAX 16
/* A request body still arriving after the response is complete: taken and
 * dropped up to this much (then RST_STREAM NO_ERROR), as HTTP/1.1 drains
 * an unread body (DRAIN_MAX). */
#define H2_DRAIN_MAX DRAIN_MAX

/* ---- the preface and ALPN ---------------------------------------------- */

int pn_h2_preface_match(const char *p, size_t n)
{
    size_t m = n < PN_H2_PREFACE_LEN ? n : PN_H2_PREFACE_LEN;
    if (memcmp(p, PN_H2_PREFACE, m) != 0)
        return -1;
    return n >= PN_H2_PREFACE_LEN ? 1 : 0;
}

const unsigned char *pn_h2_alpn(const pn_config *cfg, unsigned *len)
{
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    static const unsigned char h1[] = "\x08http/1.1";
    static const unsigned char h2[] = "\x02h2";
    if (cfg->http == PN_HTTP_1) {
        *len = sizeof h1 - 1;
        return h1;
    }
    if (cfg->http == PN_HTTP_2) {
        *len = sizeof h2 - 1;
        return h2;
    }
    *len = sizeof both - 1;
    return both;
}

/* ---- streams ------------------------------------------------------------- */

static h2_stream *stream_new(pn_h2 *h, int32_t id)
{
    h2_stream *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    pn_conn *c = h->c;
    st->s.ops = &pn_h2_stream_ops;
    st->s.peer = &c->peer;
    st->s.listener = c->listener;
    st->s.tls = c->stream.tls;
    st->s.peer_trusted = c->stream.peer_trusted;
    st->s.http2 = 1;
    st->s.trailers = 1;
    st->s.tls_session = c->stream.tls_session;
    st->s.tls_serial = c->stream.tls_serial;
    st->h = h;
    st->id = id;
    st->file_fd = -1;
    st->content_length = UINT64_MAX;
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->open++;
    return st;
}

static void stream_free(h2_stream *st)
{
    pn_h2 *h = st->h;
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (!st->closed) {
        h->open--;
        nghttp2_session_set_stream_user_data(h->ng, st->id, NULL);
    }
    if (st->file_fd >= 0)
        close(st->file_fd);
    pn_buf_free(&st->hb);
    pn_buf_free(&st->in);
    pn_buf_free(&st->out);
    pn_buf_free(&st->trailers);
    free(st->fields);
    free(st);
}

static h2_stream *stream_get(pn_h2 *h, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h->ng, id);
}

/* ---- nghttp2's callbacks: they record, the phase acts ------------------- */

static int cb_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    pn_h2 *h = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2_stream *st = stream_new(h, frame->hd.stream_id);
    if (st == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM INTERNAL_ERROR */
    if (nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st) != 0) {
        st->closed = 1;
        h->open--;
        stream_free(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int field_store(h2_stream *st, h2_field *f, const uint8_t *name, size_t nlen,
                       const uint8_t *value, size_t vlen)
{
    if (pn_buf_reserve(&st->hb, nlen + vlen) < 0)
        return -1;
    f->name_off = (uint32_t)st->hb.len;
    f->name_len = (uint32_t)nlen;
    memcpy(pn_buf_tail(&st->hb), name, nlen);
    st->hb.len += nlen;
    f->value_off = (uint32_t)st->hb.len;
    f->value_len = (uint32_t)vlen;
    memcpy(pn_buf_tail(&st->hb), value, vlen);
    st->hb.len += vlen;
    return 0;
}

static int cb_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    pn_h2 *h = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: validated by nghttp2, not passed on */
    h2_stream *st = stream_get(h, frame->hd.stream_id);
    if (st == NULL || st->hdr_status)
        return 0;
    (void)ng;
    const pn_config *cfg = h->c->worker->cfg;
    /* RFC 7541 §4.1: the size of a field is its name and value plus 32;
     * the list is bounded by --max-header-size (our
     * SETTINGS_MAX_HEADER_LIST_SIZE), the fields by --max-headers. */
    st->list_size += nlen + vlen + 32;
    if (st->list_size > (size_t)cfg->max_header_size) {
        st->hdr_status = 431;
        return 0;
    }
    if (nlen > 0 && name[0] == ':') {
        h2_field *f = NULL;
        if (nlen == 7 && memcmp(name, ":method", 7) == 0)
            f = &st->method;
        else if (nlen == 5 && memcmp(name, ":path", 5) == 0)
            f = &st->path;
        else if (nlen == 10 && memcmp(name, ":authority", 10) == 0)
            f = &st->authority;
        if (f != NULL && field_store(st, f, name, nlen, value, vlen) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0; /* :scheme: the transport knows (the scope's scheme) */
    }
    if (st->nfields >= (size_t)cfg->max_headers) {
        st->hdr_status = 431;
        return 0;
    }
    if (st->nfields == st->cap_fields) {
        size_t cap = st->cap_fields ? st->cap_fields * 2 : 16;
        h2_field *nf = realloc(st->fields, cap * sizeof(*nf));
        if (nf == NULL)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        st->fields = nf;
        st->cap_fields = cap;
    }
    if (field_store(st, &st->fields[st->nfields], name, nlen, value, vlen) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->nfields++;
    if (nlen == 4 && memcmp(name, "host", 4) == 0)
        st->has_host = 1;
    else if (nlen == 6 && memcmp(name, "expect", 6) == 0 &&
             pn_http_ieq((const char *)value, vlen, PN_STRLIT("100-continue")))
        st->expect_continue = 1;
    else if (nlen == 14 && memcmp(name, "content-length", 14) == 0) {
        uint64_t v = 0;
        for (size_t i = 0; i < vlen && v < UINT64_MAX / 10; i++)
            v = v * 10 + (uint64_t)(value[i] - '0'); /* digits: nghttp2 checked */
        st->content_length = v;
    }
    return 0;
}

static void ready_push(pn_h2 *h, h2_stream *st)
{
    if (st->ready)
        return;
    st->ready = 1;
    st->next_ready = NULL;
    if (h->ready_tail)
        h->ready_tail->next_ready = st;
    else
        h->ready = st;
    h->ready_tail = st;
}

static int cb_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    (void)ng;
    pn_h2 *h = ud;
    h->got_frame = 1;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    h2_stream *st = stream_get(h, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        st->end_recv = 1;
        h->events = 1;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        ready_push(h, st);
    return 0;
}

static int cb_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    pn_h2 *h = ud;
    /* The connection's window comes back at once: the bytes are the
     * stream's now, bounded by its own window. */
    nghttp2_session_consume_connection(ng, len);
    h2_stream *st = stream_get(h, id);
    if (st == NULL || st->done || st->body_error) {
        nghttp2_session_consume_stream(ng, id, len); /* nobody reads it */
        if (st != NULL && st->drain_to && (st->in_total += len) > st->drain_to) {
            st->drain_to = 0; /* more than we take: stop it */
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
        }
        return 0;
    }
    const pn_config *cfg = h->c->worker->cfg;
    st->in_total += len;
    if (cfg->max_request_size > 0 && st->in_total > (uint64_t)cfg->max_request_size) {
        st->body_error = 413;
        nghttp2_session_consume_stream(ng, id, len + pn_buf_live(&st->in));
        pn_buf_clear(&st->in);
        h->events = 1;
        return 0;
    }
    if (pn_buf_append(&st->in, data, len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    h->events = 1;
    return 0;
}

static int cb_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    pn_h2 *h = ud;
    h2_stream *st = stream_get(h, id);
    if (st == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    st->closed = 1;
    st->close_error = error_code;
    h->open--;
    h->events = 1;
    return 0;
}

static int cb_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    pn_h2 *h = ud;
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    h2_stream *st = stream_get(h, frame->hd.stream_id);
    if (st == NULL || st->end_recv)
        return 0;
    /* The response is complete but the client is still sending a body
     * nobody will read.  Much of it declared: tell it to stop now (RFC 9113
     * §8.1, RST_STREAM NO_ERROR).  A little, or an unknown length: take up
     * to H2_DRAIN_MAX more and let the request end by itself, as over
     * HTTP/1.1 (a reset while the client is still sending a short body is
     * an error to some clients: curl 7.88 fails the transfer). */
    if (st->content_length != UINT64_MAX && st->content_length > st->in_total + H2_DRAIN_MAX)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    else
        st->drain_to = st->in_total + H2_DRAIN_MAX;
    return 0;
}
/* ---- dispatch ------------------------------------------------------------ */

static const char *hb_at(const h2_stream *st, uint32_t off)
{
    return (const char *)st->hb.data + off;
}

/* The request as the bridge reads it (pn_stream.h): slices into st->hb,
 * host first when only :authority named it, cookies joined (RFC 9113
 * §8.2.3) into *cookies. */
static int build_request(h2_stream *st, pn_http1_request *req, pn_http1_header *hdrs,
                         pn_buf *cookies)
{
    memset(req, 0, sizeof(*req));
    req->method = hb_at(st, st->method.value_off);
    req->method_len = st->method.value_len;
    req->target = hb_at(st, st->path.value_off);
    req->target_len = st->path.value_len;
    const char *q = memchr(req->target, '?', req->target_len);
    req->path = req->target;
    req->path_len = q ? (size_t)(q - req->target) : req->target_len;
    if (q) {
        req->query = q + 1;
        req->query_len = req->target_len - req->path_len - 1;
    }
    req->version_minor = 1;
    if (pn_http_eq(req->method, req->method_len, PN_STRLIT("HEAD")))
        req->flags |= PN_REQ_HEAD;
    if (st->expect_continue)
        req->flags |= PN_REQ_EXPECT_CONTINUE;
    if (st->end_recv && st->in_total == 0 && pn_buf_live(&st->in) == 0)
        req->body_kind = PN_BODY_NONE;
    else if (st->content_length != UINT64_MAX) {
        req->body_kind = st->content_length ? PN_BODY_LENGTH : PN_BODY_NONE;
        req->content_length = st->content_length;
    } else {
        req->body_kind = PN_BODY_CHUNKED;
    }
    size_t n = 0;
    if (!st->has_host && st->authority.value_len > 0) {
        hdrs[n].name = "host";
        hdrs[n].name_len = 4;
        hdrs[n].value = hb_at(st, st->authority.value_off);
        hdrs[n].value_len = st->authority.value_len;
        n++;
    }
    ssize_t cookie_at = -1;
    for (size_t i = 0; i < st->nfields; i++) {
        const h2_field *f = &st->fields[i];
        const char *name = hb_at(st, f->name_off);
        const char *value = hb_at(st, f->value_off);
        if (f->name_len == 6 && memcmp(name, "cookie", 6) == 0) {
            if (cookie_at >= 0) {
                if (pn_buf_append(cookies, "; ", 2) < 0 ||
                    pn_buf_append(cookies, value, f->value_len) < 0)
                    return -1;
                continue;
            }
            cookie_at = (ssize_t)n;
            if (pn_buf_append(cookies, value, f->value_len) < 0)
                return -1;
        }
        hdrs[n].name = name;
        hdrs[n].name_len = f->name_len;
        hdrs[n].value = value;
        hdrs[n].value_len = f->value_len;
        n++;
    }
    if (cookie_at >= 0) {
        hdrs[cookie_at].value = pn_buf_live(cookies) ? pn_buf_head(cookies) : "";
        hdrs[cookie_at].value_len = pn_buf_live(cookies);
    }
    req->headers = hdrs;
    req->num_headers = n;
    return 0;
}

static void dispatch(pn_h2 *h, h2_stream *st)
{
    pn_conn *c = h->c;
    pn_worker *w = c->worker;
    st->dispatched = 1;
    c->requests++;
    if (st->hdr_status) {
        pn_h2_stream_reply(st, st->hdr_status);
        st->done = 1;
        return;
    }
    pn_http1_header *hdrs = malloc((st->nfields + 1) * sizeof(*hdrs));
    pn_buf cookies = PN_BUF_INIT;
    pn_http1_request req;
    if (hdrs == NULL || build_request(st, &req, hdrs, &cookies) < 0) {
        free(hdrs);
        pn_buf_free(&cookies);
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        st->done = 1;
        return;
    }
    st->head_request = (req.flags & PN_REQ_HEAD) != 0;
    /* RFC 9113 §8.3.1: :path is "/..." or, for OPTIONS, "*"; nghttp2 let
     * through any non-empty value. */
    int path_ok =
        req.path_len > 0 &&
        (req.path[0] == '/' || (req.target_len == 1 && req.target[0] == '*' &&
                                pn_http_eq(req.method, req.method_len, PN_STRLIT("OPTIONS"))));
    if (__builtin_expect(w->rid_name_len != 0, 0))
        st->s.request_id_len = (unsigned char)pn_request_id_take(
            &w->rid, req.headers, req.num_headers, w->cfg->request_id_header, w->rid_name_len,
            st->s.request_id);
    if (!path_ok && !pn_http_eq(req.method, req.method_len, PN_STRLIT("CONNECT"))) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
        st->done = 1;
    } else if (pn_http_eq(req.method, req.method_len, PN_STRLIT("CONNECT"))) {
        /* No tunnels (as over HTTP/1.1): 501. */
        pn_h2_stream_reply(st, 501);
        st->done = 1;
    } else if (w->answers && pn_worker_answer_stream(w, &st->s, &req)) {
        st->done = 1;
    } else {
        int rc = w->hooks.on_request(w->ctx, &st->s, &req);
        if (rc < 0 && !st->done) {
            st->s.udata = NULL;
            pn_h2_stream_reply(st, 500);
            st->done = 1;
        }
    }
    free(hdrs);
    pn_buf_free(&cookies);
}

static void dispatch_ready(pn_h2 *h)
{
    while (h->ready) {
        h2_stream *st = h->ready;
        h->ready = st->next_ready;
        if (h->ready == NULL)
            h->ready_tail = NULL;
        st->ready = 0;
        if (st->closed || h->c->dead)
            continue; /* reset in the same read: never reaches the app */
        dispatch(h, st);
    }
}

/* Deliver what the streams owe the bridge, and free the streams both sides
 * are done with.  Inside the poll only. */
static void deliver(pn_h2 *h)
{
    pn_worker *w = h->c->worker;
    size_t high = (size_t)w->cfg->write_buffer_size;
    h->events = 0;
    h2_stream *st = h->streams;
    while (st) {
        h2_stream *next = st->next;
        if (st->s.udata != NULL) {
            if (st->closed) {
                /* Reset by the client, or by us (abort): the request hears
                 * once, and lets go. */
                w->hooks.on_close(w->ctx, &st->s);
                st->s.udata = NULL;
            } else {
                if (st->body_wanted &&
                    (pn_buf_live(&st->in) > 0 || st->end_recv || st->body_error)) {
                    st->body_wanted = 0;
                    w->hooks.on_body(w->ctx, &st->s);
                }
                if (st->s.udata != NULL && st->drain_wanted && pn_buf_live(&st->out) <= high / 2) {
                    st->drain_wanted = 0;
                    w->hooks.on_drain(w->ctx, &st->s);
                }
            }
        }
        if (st->closed && st->s.udata == NULL && !st->ready)
            stream_free(st);
        st = next;
    }
}

/* ---- the session ---------------------------------------------------------- */

/* Let the session write its frames into wbuf while the output stays below
 * the high watermark, and send them, for as long as the socket takes them
 * (bounded: H2_ROUNDS_MAX buffers a step; the connection is queued to go
 * on).  A socket that stops taking them brings EPOLLOUT, and the phase
 * back, later.  -1: the connection failed. */
static int pump_out(pn_h2 *h)
{
    pn_conn *c = h->c;
    size_t high = (size_t)c->worker->cfg->write_buffer_size;
    size_t before = pn_buf_live(&c->wbuf);
    int more = 1; /* the session may have more to send */
    for (int round = 0; round < H2_ROUNDS_MAX && more; round++) {
        while (pn_buf_live(&c->wbuf) < high) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(h->ng, &data);
            if (n <= 0) {
                if (n < 0)
                    h->failed = 1;
                more = 0;
                break;
            }
            if (pn_buf_append(&c->wbuf, data, (size_t)n) < 0) {
                c->dead = 1;
                return -1;
            }
        }
        if (pn_buf_live(&c->wbuf) > 0 && c->can_write && pn_conn_flush_output(c) < 0)
            return -1;
        if (pn_buf_live(&c->wbuf) > 0)
            break; /* the socket is full: EPOLLOUT resumes */
    }
    if (more && pn_buf_live(&c->wbuf) == 0)
        queue_conn(c); /* rounds ran out with more to send: the next poll */
    if (pn_buf_live(&c->wbuf) == 0 || pn_buf_live(&c->wbuf) < before)
        h->out_at = pn_monotonic_ms();
    return c->dead ? -1 : 0;
}

static void goaway(pn_h2 *h, uint32_t error)
{
    if (h->goaway)
        return;
    h->goaway = 1;
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
                          error, NULL, 0);
}

static void arm_timer(pn_h2 *h)
{
    pn_conn *c = h->c;
    pn_worker *w = c->worker;
    if (!h->got_frame)
        return; /* the deadline from accept stands until the preface */
    if (h->open == 0) {
        bufs_give(c); /* idle: no buffer held (those with bytes stay) */
        if (!h->idle_armed) {
            h->idle_armed = 1;
            pn_timer_arm(&w->wheel, &c->timer, pn_monotonic_ms() + h->idle_ms);
        }
        return;
    }
    h->idle_armed = 0;
    uint64_t at = 0;
    for (h2_stream *st = h->streams; st; st = st->next)
        if (st->stall_at && !st->closed && (at == 0 || st->stall_at < at))
            at = st->stall_at;
    if (at)
        pn_timer_arm(&w->wheel, &c->timer, at);
    else
        pn_timer_cancel(&w->wheel, &c->timer);
}

/* No stream the bridge holds remains: every one still held hears on_close
 * (the connection is going away). */
static void close_streams(pn_h2 *h)
{
    pn_worker *w = h->c->worker;
    for (h2_stream *st = h->streams; st; st = st->next) {
        if (st->s.udata != NULL) {
            w->hooks.on_close(w->ctx, &st->s);
            st->s.udata = NULL;
        }
    }
}

/* Finish the connection: what is queued goes out (PN_CONN_CLOSING, under
 * the write deadline), then it closes. */
static void finish(pn_conn *c)
{
    close_streams(c->h2);
    if (c->dead || pn_buf_live(&c->wbuf) == 0) {
        pn_conn_close_now(c);
        return;
    }
    c->phase = PN_CONN_CLOSING;
    c->keep_alive = 0;
    arm_in(c, c->worker->request_ms);
    queue_conn(c);
}

/* No stream left and no new one wanted (drain, idle, the client's FIN):
 * GOAWAY NO_ERROR if not sent yet, out with it, then close (may free c). */
static void goaway_and_finish(pn_conn *c)
{
    pn_h2 *h = c->h2;
    goaway(h, NGHTTP2_NO_ERROR);
    if (pump_out(h) < 0) {
        pn_conn_close_now(c);
        return;
    }
    finish(c);
}

int pn_h2_conn_begin(pn_conn *c)
{
    pn_worker *w = c->worker;
    const pn_config *cfg = w->cfg;
    pn_h2 *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -1;
    h->c = c;
    h->out_at = pn_monotonic_ms();
    uint64_t idle =
        cfg->h2_idle_timeout > 0 ? (uint64_t)(cfg->h2_idle_timeout * 1000.0) : w->keepalive_ms;
    h->idle_ms = idle ? idle : 1;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        free(h);
        return -1;
    }
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        free(h);
        return -1;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, cb_frame_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, pn_h2_send_data);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_settings(opt, H2_MAX_SETTINGS);
    nghttp2_option_set_stream_reset_rate_limit(opt, H2_RESET_BURST, H2_RESET_RATE);
    nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
    int rc = nghttp2_session_server_new2(&h->ng, cbs, h, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc != 0) {
        free(h);
        return -1;
    }
    uint32_t window = (uint32_t)cfg->h2_initial_window_size;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)cfg->h2_max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, (uint32_t)cfg->h2_max_frame_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_header_size},
    };
    uint64_t conn_window = (uint64_t)window * (uint64_t)cfg->h2_max_concurrent_streams;
    if (conn_window > H2_CONN_WINDOW_MAX)
        conn_window = H2_CONN_WINDOW_MAX;
    if (conn_window < 65535)
        conn_window = 65535;
    if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)conn_window) !=
            0) {
        nghttp2_session_del(h->ng);
        free(h);
        return -1;
    }
    c->h2 = h;
    c->phase = PN_CONN_H2;
    c->keep_alive = 0;
    c->can_read = 1; /* the preface may have come with more */
    queue_conn(c);
    return 0;
}

void pn_conn_phase_h2(pn_conn *c)
{
    pn_h2 *h = c->h2;
    pn_worker *w = c->worker;
    size_t high = (size_t)w->cfg->write_buffer_size;
    if (c->closing_soon && !h->goaway)
        goaway(h, NGHTTP2_NO_ERROR); /* drain: the streams in flight finish */
    for (int round = 0; round < H2_ROUNDS_MAX; round++) {
        /* Read only while the output is not backed up: a client that does
         * not read its PING and SETTINGS answers stops being read. */
        if (pn_buf_live(&c->wbuf) < high && !h->failed)
            pn_conn_read_input(c, READ_CHUNK);
        if (c->dead)
            break;
        size_t live = pn_buf_live(&c->rbuf);
        if (live > 0 && !h->failed) {
            ssize_t n =
                nghttp2_session_mem_recv(h->ng, (const uint8_t *)pn_buf_head(&c->rbuf), live);
            if (n < 0) {
                /* A fatal error: say why before closing (RFC 9113 §5.4.1),
                 * unless the client never spoke HTTP/2 (a bad preface). */
                if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
                    nghttp2_session_terminate_session(
                        h->ng, n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                                   ? NGHTTP2_ENHANCE_YOUR_CALM
                                   : NGHTTP2_PROTOCOL_ERROR);
                h->failed = 1;
                pn_buf_clear(&c->rbuf);
            } else {
                pn_buf_consume(&c->rbuf, (size_t)n);
            }
            if (pn_buf_live(&c->rbuf) == 0)
                rbuf_give(c); /* back to the pool until the next bytes */
        }
        dispatch_ready(h);
        if (h->events)
            deliver(h);
        if (pump_out(h) < 0)
            break;
        if (h->events)
            deliver(h);
        if (!c->can_read || c->peer_closed || h->failed || pn_buf_live(&c->wbuf) >= high)
            break;
    }
    if (c->dead) {
        pn_conn_close_now(c);
        return;
    }
    if (h->failed) {
        finish(c);
        return;
    }
    if (c->peer_closed && !h->goaway) {
        /* The client sends no more: no new stream can come.  The streams in
         * flight finish, then the connection closes. */
        goaway(h, NGHTTP2_NO_ERROR);
        if (pump_out(h) < 0) {
            pn_conn_close_now(c);
            return;
        }
    }
    if ((h->goaway || (w->draining && w->close_idle)) && h->open == 0 && h->ready == NULL) {
        goaway_and_finish(c);
        return;
    }
    if (!nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng)) {
        finish(c);
        return;
    }
    /* Input left in the socket (rounds ran out): come back next poll. */
    if (c->can_read && !c->peer_closed && pn_buf_live(&c->wbuf) < high)
        queue_conn(c);
    arm_timer(h);
}

void pn_h2_on_timer(pn_conn *c)
{
    pn_h2 *h = c->h2;
    if (!h->got_frame) {
        pn_conn_close_now(c); /* no preface in time */
        return;
    }
    if (h->open == 0) {
        h->idle_armed = 0;
        goaway_and_finish(c);
        return;
    }
    uint64_t now = pn_monotonic_ms();
    pn_worker *w = c->worker;
    if (pn_buf_live(&c->wbuf) > 0 && now - h->out_at >= w->request_ms) {
        /* The client has read nothing for --request-timeout: even a reset
         * could not reach it. */
        pn_conn_close_now(c);
        return;
    }
    /* A stream whose app waited on the client past --request-timeout, or
     * whose finished response has not moved for as long. */
    for (h2_stream *st = h->streams; st; st = st->next) {
        if (st->stall_at && st->stall_at <= now && !st->closed) {
            st->stall_at = 0;
            nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        }
    }
    queue_conn(c);
    arm_timer(h);
}

void pn_h2_conn_free(pn_conn *c)
{
    pn_h2 *h = c->h2;
    if (h == NULL)
        return;
    close_streams(h);
    while (h->streams)
        stream_free(h->streams);
    nghttp2_session_del(h->ng);
    free(h);
    c->h2 = NULL;
}
