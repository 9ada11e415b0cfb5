/*
 * h2_harness.h — an HTTP/2 client and a stub app around a real pn_worker,
 * shared by the unit test tests/c/test_h2.c and the libFuzzer target
 * fuzz/fuzz_h2_session.c (the HTTP/2 session glue, csrc/runtime/pn_h2.c:
 * frames in, stream events out).
 *
 * The harness plays the bridge and the client, like tests/c/test_worker.c:
 *   - the app: pn_worker_hooks whose on_request checks what a request
 *     looks like when it crosses the seam (pn_stream.h), then answers it
 *     through the stream's ops in one of the ways of enum h2h_action, at
 *     once or later, reading the request body or not;
 *   - the client: a socket connected to the worker (over a Unix-domain
 *     listener: a socketpair cannot be handed to a worker, which accepts
 *     its connections; Unix sockets spare the fuzzer the ephemeral ports a
 *     TCP client per input would use up), which sends the connection
 *     preface and whatever frames it is given, and reads everything the
 *     server sends through a frame walker: each frame is checked (size,
 *     stream id, type), header blocks are decoded with nghttp2's own HPACK
 *     inflater (an independent decoder of our output) and checked, and the
 *     responses are recorded per stream.
 *
 * The includer defines H2H_CHECK(cond) (a test counts the failure, the
 * fuzzer traps) before including this file.  Everything is static: one
 * program, one thread.
 */
#ifndef H2_HARNESS_H
#define H2_HARNESS_H

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "pn_access_log.h"
#include "pn_worker.h"

#ifndef H2H_CHECK
#error "define H2H_CHECK(cond) before including h2_harness.h"
#endif

/* Each includer uses part of the harness. */
#define H2H_FN static __attribute__((unused))

#define H2H_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2H_PREFACE_LEN 24

/* ---- the app ----------------------------------------------------------- */

/* How the app answers a request (chosen per request: h2h.script). */
enum h2h_action {
    H2H_SMALL,    /* at once: a final send_body with a small body, done */
    H2H_TWO,      /* at once, corked: send_body non-final, then final, done */
    H2H_REPLY500, /* at once: reply(500), done (the bridge's pn_request_reply) */
    H2H_ABORT,    /* at once: abort; on_close must follow */
    H2H_READ,     /* read the whole body (body/body_consume, on_body), then answer
                     "got <n>" */
    H2H_LATER,    /* keep it: answered by h2h_answer_later (as after an await) */
    H2H_BIG,      /* 100 KiB in 16 KiB pieces, waiting for on_drain on PN_IO_WAIT */
    H2H_TRAILERS, /* a body, then send_trailers */
    H2H_SHORT,    /* content-length 10, a final body of 5: PN_IO_TOO_LITTLE, done */
    H2H_LONG,     /* content-length 2, a body of 5: PN_IO_TOO_MUCH, abort then done */
    H2H_NACTIONS
};

enum { H2H_W_NONE, H2H_W_BODY, H2H_W_DRAIN, H2H_W_LATER, H2H_W_CLOSE };

#define H2H_SLOTS 256 /* streams the app holds at once */
#define H2H_SEEN 64   /* requests remembered for the tests */
#define H2H_BIG_LEN (100u * 1024u)

typedef struct h2h_app_stream {
    pn_stream *s;
    int live;   /* the app holds s: from on_request to done() or on_close */
    int action; /* enum h2h_action */
    int wait;   /* H2H_W_*: what it waits for */
    int seen;   /* index in h2h.seen, or -1 */
    int head_request;
    pn_http1_response resp;
    pn_buf head;
    int head_sent;
    uint64_t sent;
    uint64_t big_left;
    uint64_t body_len;
    int log_status; /* for the access log: the status sent (0: none) */
    char method[16], target[64];
} h2h_app_stream;

/* What the app saw of a request (the first H2H_SEEN of a harness). */
typedef struct h2h_seen {
    char method[16];
    char target[128];
    char headers[1024]; /* "name: value\n" lines, in order, truncated */
    size_t headers_len;
    int body_kind;
    uint64_t content_length;
    int flags;
    uint64_t body_len;  /* request body bytes the app read */
    uint32_t body_hash; /* FNV-1a of them */
    int body_done;      /* PN_BODY_LAST came */
    int body_status;    /* PN_BODY_BAD's status */
    int closed;         /* on_close named it */
    int done;           /* the app handed it back with done() */
} h2h_seen;

/* ---- the client's view of the server's frames ------------------------- */

typedef struct h2h_resp {
    uint32_t id;
    int status;         /* of the final head; 0 before */
    int informational;  /* 1xx heads seen */
    int trailers;       /* header blocks after the final head */
    char headers[1024]; /* "name: value\n" of the final head (truncated) */
    size_t headers_len;
    char body[512]; /* the first bytes of the body */
    size_t body_len;
    uint64_t data_total;
    int end_stream;
    int rst;
    uint32_t rst_code;
    uint64_t window_inc; /* WINDOW_UPDATE increments for the stream */
} h2h_resp;

typedef struct h2h {
    pn_config cfg;
    pn_worker *w;
    int lfd;
    int is_unix;
    /* the app */
    const uint8_t *script; /* action bytes, used in turn; NULL: `action` */
    size_t script_len;
    size_t script_pos;
    int action;
    int nrequests;
    int nclosed; /* on_close naming a stream the app held */
    int wakeups;
    pn_buf alog; /* access-log lines (cfg.access_log): the latest, up to 64 KiB */
    h2h_app_stream slots[H2H_SLOTS];
    h2h_seen seen[H2H_SEEN];
    /* the client */
    int fd;
    int eof;     /* EOF or reset from the server */
    int no_walk; /* the server's bytes are not HTTP/2 frames (kept in `in`) */
    int hold;    /* the client reads nothing (its socket fills: backpressure); h2h_send_raw
                    gives in when both directions are stuck */
    uint32_t peer_max_frame; /* the largest SETTINGS_MAX_FRAME_SIZE the client sent */
    pn_buf in;               /* server bytes not walked yet */
    uint64_t received;
    nghttp2_hd_inflater *inflater;
    int hpack_broken;
    pn_buf block; /* the header block being gathered */
    uint32_t block_sid;
    int block_end_stream;
    int nframes;
    int settings, settings_acks, ping_acks, window_updates;
    uint64_t conn_window_inc; /* WINDOW_UPDATE increments for the connection */
    uint8_t ping_payload[8];
    int goaway;
    uint32_t goaway_code, goaway_last;
    h2h_resp *resps;
    size_t nresps, cap_resps;
} h2h;

H2H_FN uint32_t h2h_fnv(uint32_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

H2H_FN int h2h_next_action(h2h *h)
{
    if (h->script == NULL || h->script_len == 0)
        return h->action;
    return h->script[h->script_pos++ % h->script_len] % H2H_NACTIONS;
}

H2H_FN void h2h_release(h2h_app_stream *a)
{
    pn_buf_free(&a->head);
    a->live = 0;
    a->s = NULL;
}

/* The response is complete: hand the stream back (the bridge's
 * request_detach). */
H2H_FN void h2h_done(h2h *h, h2h_app_stream *a)
{
    pn_stream *s = a->s;
    if (a->seen >= 0)
        h->seen[a->seen].done = 1;
    if (h->cfg.access_log) {
        /* The bridge's pn_request_log. */
        pn_access_rec rec = {
            .method = a->method,
            .method_len = strlen(a->method),
            .target = a->target,
            .target_len = strlen(a->target),
            .status = a->log_status ? a->log_status : -1,
            .bytes = a->sent,
        };
        s->ops->access_log(s, &rec);
    }
    s->udata = NULL;
    h2h_release(a);
    s->ops->done(s, 1);
}

/* The head of a response: status, a Content-Type (the transport lower-cases
 * names), maybe a content-length. */
H2H_FN void h2h_head(h2h_app_stream *a, int status, const char *cl)
{
    pn_buf_clear(&a->head);
    a->log_status = status;
    H2H_CHECK(pn_http1_resp_init(&a->resp, status, 1, a->head_request ? PN_RESP_HEAD_REQUEST : 0) ==
              PN_WRITE_OK);
    H2H_CHECK(pn_http1_resp_start(&a->head, &a->resp) == PN_WRITE_OK);
    H2H_CHECK(pn_http1_resp_header(&a->head, &a->resp, PN_STRLIT("Content-Type"),
                                   PN_STRLIT("text/plain")) == PN_WRITE_OK);
    if (cl != NULL)
        H2H_CHECK(pn_http1_resp_header(&a->head, &a->resp, PN_STRLIT("content-length"), cl,
                                       strlen(cl)) == PN_WRITE_OK);
    a->head_sent = 0;
}

H2H_FN int h2h_send(h2h_app_stream *a, const char *data, size_t len, int final)
{
    int rc = a->s->ops->send_body(a->s, &a->resp, a->head_sent ? NULL : &a->head, data, len, final,
                                  &a->sent);
    H2H_CHECK(rc == PN_IO_OK || rc == PN_IO_WAIT || rc == PN_IO_GONE || rc == PN_IO_TOO_MUCH ||
              rc == PN_IO_TOO_LITTLE);
    if (rc != PN_IO_TOO_MUCH && rc != PN_IO_NOMEM && !a->head_sent) {
        a->head_sent = 1;
        pn_buf_free(&a->head);
    }
    return rc;
}

H2H_FN void h2h_big_go_on(h2h *h, h2h_app_stream *a)
{
    static const char piece[16384] = {0};
    while (a->big_left > 0) {
        size_t n = a->big_left < sizeof piece ? (size_t)a->big_left : sizeof piece;
        a->big_left -= n;
        int rc = h2h_send(a, piece, n, a->big_left == 0);
        if (a->big_left == 0)
            break;
        if (rc == PN_IO_WAIT) {
            a->wait = H2H_W_DRAIN;
            a->s->ops->stall_timer(a->s, 1);
            return;
        }
    }
    h2h_done(h, a);
}

/* Answer a request the app holds, the way `action` says. */
H2H_FN void h2h_answer(h2h *h, h2h_app_stream *a, int action)
{
    pn_stream *s = a->s;
    a->wait = H2H_W_NONE;
    switch (action) {
    default:
    case H2H_SMALL:
    case H2H_LATER:
    case H2H_READ: {
        char body[64];
        int n = snprintf(body, sizeof body, "got %llu", (unsigned long long)a->body_len);
        h2h_head(a, 200, NULL);
        h2h_send(a, body, (size_t)n, 1);
        h2h_done(h, a);
        return;
    }
    case H2H_TWO:
        s->ops->cork(s);
        h2h_head(a, 200, NULL);
        /* A connection-specific field the transport must leave out. */
        H2H_CHECK(pn_http1_resp_header(&a->head, &a->resp, PN_STRLIT("Connection"),
                                       PN_STRLIT("close")) == PN_WRITE_OK);
        if (h2h_send(a, "hello, ", 7, 0) != PN_IO_TOO_MUCH)
            h2h_send(a, "world", 5, 1);
        s->ops->uncork(s);
        h2h_done(h, a);
        return;
    case H2H_REPLY500:
        s->ops->reply(s, 500);
        a->log_status = 500;
        h2h_done(h, a);
        return;
    case H2H_ABORT:
        s->ops->abort(s);
        a->wait = H2H_W_CLOSE; /* the bridge's request_body_failed: no done() */
        return;
    case H2H_BIG:
        h2h_head(a, 200, NULL);
        a->big_left = H2H_BIG_LEN;
        h2h_big_go_on(h, a);
        return;
    case H2H_TRAILERS: {
        static const char fields[] = "x-checksum: 1234\r\n";
        s->ops->cork(s);
        h2h_head(a, 200, NULL);
        int rc = h2h_send(a, "body", 4, 0);
        if (rc != PN_IO_TOO_MUCH) {
            rc = s->ops->send_trailers(s, &a->resp, a->head_sent ? NULL : &a->head, fields,
                                       sizeof fields - 1, &a->sent);
            H2H_CHECK(rc == PN_IO_OK || rc == PN_IO_WAIT || rc == PN_IO_GONE);
        }
        s->ops->uncork(s);
        h2h_done(h, a);
        return;
    }
    case H2H_SHORT: {
        h2h_head(a, 200, "10");
        int rc = h2h_send(a, "short", 5, 1);
        /* (HEAD: nothing is sent, nothing is short.) */
        H2H_CHECK(a->head_request || rc == PN_IO_TOO_LITTLE || rc == PN_IO_GONE);
        h2h_done(h, a);
        return;
    }
    case H2H_LONG: {
        h2h_head(a, 200, "2");
        int rc = h2h_send(a, "long!", 5, 0);
        H2H_CHECK(a->head_request || rc == PN_IO_TOO_MUCH || rc == PN_IO_GONE);
        if (rc == PN_IO_TOO_MUCH) {
            /* The app's send() raised; the request ends abandoned
             * (pn_request_finish: abort, then done). */
            s->ops->abort(s);
            h2h_done(h, a);
        } else {
            h2h_send(a, "", 0, 1);
            h2h_done(h, a);
        }
        return;
    }
    }
}

/* Read the request body as far as it has come (the bridge's receive()). */
H2H_FN void h2h_read(h2h *h, h2h_app_stream *a)
{
    pn_stream *s = a->s;
    h2h_seen *seen = a->seen >= 0 ? &h->seen[a->seen] : NULL;
    for (int i = 0; i < 100000; i++) {
        const char *data = NULL;
        size_t len = 0;
        int status = 0;
        int rc = s->ops->body(s, &data, &len, &status);
        switch (rc) {
        case PN_BODY_WAIT:
            a->wait = H2H_W_BODY;
            s->ops->stall_timer(s, 1);
            return;
        case PN_BODY_MORE:
        case PN_BODY_LAST:
            H2H_CHECK(len == 0 || data != NULL);
            H2H_CHECK(rc == PN_BODY_LAST || len > 0); /* MORE with nothing: a busy loop */
            a->body_len += len;
            if (seen) {
                seen->body_len += len;
                seen->body_hash = h2h_fnv(seen->body_hash, data, len);
            }
            s->ops->body_consume(s, len);
            if (rc == PN_BODY_LAST) {
                s->ops->stall_timer(s, 0);
                if (seen)
                    seen->body_done = 1;
                h2h_answer(h, a, H2H_SMALL);
                return;
            }
            continue;
        case PN_BODY_BAD:
            H2H_CHECK(status == 400 || status == 413);
            if (seen)
                seen->body_status = status;
            s->ops->reply(s, status == 413 ? 413 : 400);
            a->log_status = status == 413 ? 413 : 400;
            h2h_done(h, a);
            return;
        case PN_BODY_GONE:
            /* The app sees http.disconnect and returns without a word: the
             * bridge answers 500 on the (gone) stream. */
            s->ops->reply(s, 500);
            a->log_status = 500;
            h2h_done(h, a);
            return;
        default:
            H2H_CHECK(!"body(): an unknown result");
            return;
        }
    }
    H2H_CHECK(!"body() never ran dry");
}

H2H_FN h2h_app_stream *h2h_of(h2h *h, pn_stream *s)
{
    h2h_app_stream *a = s->udata;
    if (a == NULL)
        return NULL; /* a stream the app handed back */
    H2H_CHECK(a >= h->slots && a < h->slots + H2H_SLOTS);
    H2H_CHECK(a->live && a->s == s);
    return a->live && a->s == s ? a : NULL;
}

H2H_FN int h2h_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c);
}

H2H_FN void h2h_copy(char *dst, size_t cap, const char *p, size_t n)
{
    if (n > cap - 1)
        n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
}

H2H_FN int h2h_on_request(void *ctx, pn_stream *s, const pn_http1_request *req)
{
    h2h *h = ctx;
    /* What a request looks like when it crosses the seam. */
    H2H_CHECK(s->http2);
    H2H_CHECK(s->udata == NULL);
    H2H_CHECK(s->ops != NULL && s->ops->send_body && s->ops->done && s->ops->abort);
    H2H_CHECK(req->method != NULL && req->method_len > 0);
    for (size_t i = 0; i < req->method_len; i++)
        H2H_CHECK(h2h_tchar((unsigned char)req->method[i]) ||
                  (req->method[i] >= 'A' && req->method[i] <= 'Z'));
    H2H_CHECK(req->target != NULL && req->target_len > 0);
    H2H_CHECK(req->path == req->target && req->path_len > 0 && req->path_len <= req->target_len);
    for (size_t i = 0; i < req->target_len; i++) {
        unsigned char c = (unsigned char)req->target[i];
        H2H_CHECK(c > 0x20 && c != 0x7f);
    }
    if (req->query_len > 0)
        H2H_CHECK(req->query == req->target + req->path_len + 1 &&
                  req->path_len + 1 + req->query_len == req->target_len);
    H2H_CHECK(req->body_kind == PN_BODY_NONE || req->body_kind == PN_BODY_LENGTH ||
              req->body_kind == PN_BODY_CHUNKED);
    for (size_t i = 0; i < req->num_headers; i++) {
        const pn_http1_header *f = &req->headers[i];
        H2H_CHECK(f->name_len > 0);
        for (size_t j = 0; j < f->name_len; j++)
            H2H_CHECK(h2h_tchar((unsigned char)f->name[j])); /* a lower-case token */
        for (size_t j = 0; j < f->value_len; j++) {
            char c = f->value[j];
            H2H_CHECK(c != '\r' && c != '\n' && c != '\0');
        }
    }
    int i = h->nrequests++;
    int seen = -1;
    if (i < H2H_SEEN) {
        h2h_seen *sn = &h->seen[i];
        memset(sn, 0, sizeof *sn);
        sn->body_hash = 2166136261u;
        h2h_copy(sn->method, sizeof sn->method, req->method, req->method_len);
        h2h_copy(sn->target, sizeof sn->target, req->target, req->target_len);
        for (size_t k = 0; k < req->num_headers; k++) {
            const pn_http1_header *f = &req->headers[k];
            int n =
                snprintf(sn->headers + sn->headers_len, sizeof sn->headers - sn->headers_len,
                         "%.*s: %.*s\n", (int)f->name_len, f->name, (int)f->value_len, f->value);
            if (n < 0 || (size_t)n >= sizeof sn->headers - sn->headers_len)
                break;
            sn->headers_len += (size_t)n;
        }
        sn->body_kind = req->body_kind;
        sn->content_length = req->content_length;
        sn->flags = (int)req->flags;
        seen = i;
    }
    h2h_app_stream *a = NULL;
    for (int k = 0; k < H2H_SLOTS; k++) {
        if (!h->slots[k].live) {
            a = &h->slots[k];
            break;
        }
    }
    if (a == NULL) {
        /* More held at once than the harness keeps: 503, as
         * --limit-concurrency would. */
        s->ops->reply(s, 503);
        s->ops->done(s, 1);
        return 0;
    }
    memset(a, 0, sizeof *a);
    a->s = s;
    a->live = 1;
    a->seen = seen;
    a->head_request = (req->flags & PN_REQ_HEAD) != 0;
    h2h_copy(a->method, sizeof a->method, req->method, req->method_len);
    h2h_copy(a->target, sizeof a->target, req->target, req->target_len);
    a->action = h2h_next_action(h);
    s->udata = a;
    if (a->action == H2H_READ) {
        s->ops->send_continue(s);
        h2h_read(h, a);
    } else if (a->action == H2H_LATER) {
        a->wait = H2H_W_LATER;
    } else {
        h2h_answer(h, a, a->action);
    }
    return 0;
}

H2H_FN void h2h_on_body(void *ctx, pn_stream *s)
{
    h2h *h = ctx;
    h2h_app_stream *a = h2h_of(h, s);
    if (a != NULL && a->wait == H2H_W_BODY)
        h2h_read(h, a);
}

H2H_FN void h2h_on_drain(void *ctx, pn_stream *s)
{
    h2h *h = ctx;
    h2h_app_stream *a = h2h_of(h, s);
    if (a != NULL && a->wait == H2H_W_DRAIN) {
        a->wait = H2H_W_NONE;
        s->ops->stall_timer(s, 0);
        h2h_big_go_on(h, a);
    }
}

H2H_FN void h2h_on_close(void *ctx, pn_stream *s)
{
    h2h *h = ctx;
    h2h_app_stream *a = s->udata;
    if (a == NULL)
        return; /* handed back with done(): nothing to tell the app */
    /* One the app holds, named once: the slot stays in s->udata, so a
     * second on_close (or any later event) finds it dead and fails. */
    H2H_CHECK(a >= h->slots && a < h->slots + H2H_SLOTS);
    H2H_CHECK(a->live && a->s == s);
    if (!(a->live && a->s == s))
        return;
    h->nclosed++;
    if (a->seen >= 0)
        h->seen[a->seen].closed = 1;
    h2h_release(a);
}

H2H_FN void h2h_wakeup(void *ctx)
{
    h2h *h = ctx;
    h->wakeups++;
}

H2H_FN void h2h_on_ws(void *ctx, pn_conn *c, int event)
{
    (void)ctx;
    (void)c;
    (void)event;
    H2H_CHECK(!"on_ws on an HTTP/2 connection");
}

static const pn_worker_hooks h2h_hooks = {
    .on_request = h2h_on_request,
    .on_body = h2h_on_body,
    .on_drain = h2h_on_drain,
    .on_close = h2h_on_close,
    .wakeup = h2h_wakeup,
    .on_ws = h2h_on_ws,
};

/* The worker's access log goes here (cfg.access_log), not to stderr. */
H2H_FN void h2h_alog_sink(void *ctx, const char *lines, size_t len)
{
    h2h *h = ctx;
    if (pn_buf_live(&h->alog) + len > 65536)
        pn_buf_clear(&h->alog);
    H2H_CHECK(pn_buf_append(&h->alog, lines, len) == 0);
}

/* Answer every request kept for later (outside a poll, as after an await),
 * with the next actions of the script (LATER itself: SMALL). */
H2H_FN void h2h_answer_later(h2h *h)
{
    for (int k = 0; k < H2H_SLOTS; k++) {
        h2h_app_stream *a = &h->slots[k];
        if (a->live && a->wait == H2H_W_LATER) {
            int act = h2h_next_action(h);
            if (act == H2H_READ) {
                a->s->ops->send_continue(a->s);
                h2h_read(h, a);
            } else {
                h2h_answer(h, a, act == H2H_LATER ? H2H_SMALL : act);
            }
        }
    }
}

/* Streams the app still holds. */
H2H_FN int h2h_held(const h2h *h)
{
    int n = 0;
    for (int k = 0; k < H2H_SLOTS; k++)
        n += h->slots[k].live;
    return n;
}

/* ---- the worker ------------------------------------------------------- */

/* A worker with cfg (already filled in by the caller, from
 * pn_config_defaults) on a fresh abstract Unix-domain listener. */
H2H_FN void h2h_start(h2h *h)
{
    static unsigned serial;
    h->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int n = snprintf(sun.sun_path + 1, sizeof sun.sun_path - 1, "pn_h2h_%d_%u", (int)getpid(),
                     serial++);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    if (h->lfd < 0 || bind(h->lfd, (struct sockaddr *)&sun, len) != 0 || listen(h->lfd, 64) != 0) {
        perror("h2h: listening socket");
        abort();
    }
    h->is_unix = 1;
    h->w = pn_worker_new(&h->cfg, &h->lfd, &h->is_unix, 1, &h2h_hooks, h);
    if (h->w == NULL) {
        perror("h2h: pn_worker_new");
        abort();
    }
    pn_worker_alog(h->w)->sink = h2h_alog_sink;
    pn_worker_alog(h->w)->sink_ctx = h;
    h->fd = -1;
}

H2H_FN void h2h_stop(h2h *h)
{
    pn_worker_free(h->w); /* on_close for whatever is still open */
    close(h->lfd);
    pn_buf_free(&h->alog);
    for (int k = 0; k < H2H_SLOTS; k++)
        if (h->slots[k].live)
            h2h_release(&h->slots[k]);
}

H2H_FN uint64_t h2h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the client: reading the server's frames -------------------------- */

H2H_FN h2h_resp *h2h_resp_of(h2h *h, uint32_t id)
{
    for (size_t i = 0; i < h->nresps; i++)
        if (h->resps[i].id == id)
            return &h->resps[i];
    if (h->nresps == h->cap_resps) {
        size_t cap = h->cap_resps ? h->cap_resps * 2 : 16;
        if (cap > 4096)
            return NULL; /* enough to check */
        h2h_resp *bigger = realloc(h->resps, cap * sizeof *bigger);
        H2H_CHECK(bigger != NULL);
        if (bigger == NULL)
            return NULL;
        h->resps = bigger;
        h->cap_resps = cap;
    }
    h2h_resp *r = &h->resps[h->nresps++];
    memset(r, 0, sizeof *r);
    r->id = id;
    return r;
}

/* The response (as the client saw it) on stream id, or NULL. */
H2H_FN h2h_resp *h2h_find(h2h *h, uint32_t id)
{
    for (size_t i = 0; i < h->nresps; i++)
        if (h->resps[i].id == id)
            return &h->resps[i];
    return NULL;
}

H2H_FN int h2h_is(const uint8_t *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* A complete header block from the server: decode it with nghttp2's
 * inflater and check it as RFC 9113 §8.3.2 and §8.2.2 want a response's. */
H2H_FN void h2h_header_block(h2h *h, uint32_t sid, int end_stream)
{
    h2h_resp *r = h2h_resp_of(h, sid);
    const uint8_t *in = (const uint8_t *)h->block.data + h->block.off;
    size_t inlen = h->block.len - h->block.off;
    int first = 1, status = 0, trailers = r && r->status != 0;
    char fields[1024];
    size_t fields_len = 0;
    fields[0] = '\0';
    if (h->hpack_broken)
        return;
    for (;;) {
        nghttp2_nv nv;
        int flags = 0;
        ssize_t rv = nghttp2_hd_inflate_hd2(h->inflater, &nv, &flags, in, inlen, 1);
        H2H_CHECK(rv >= 0); /* our HPACK output decodes */
        if (rv < 0) {
            h->hpack_broken = 1;
            return;
        }
        in += rv;
        inlen -= (size_t)rv;
        if (flags & NGHTTP2_HD_INFLATE_EMIT) {
            H2H_CHECK(nv.namelen > 0);
            if (nv.namelen > 0 && nv.name[0] == ':') {
                /* One pseudo-field, :status, first, in a head only. */
                H2H_CHECK(first && !trailers && h2h_is(nv.name, nv.namelen, ":status"));
                H2H_CHECK(nv.valuelen == 3 && nv.value[0] >= '1' && nv.value[0] <= '5' &&
                          nv.value[1] >= '0' && nv.value[1] <= '9' && nv.value[2] >= '0' &&
                          nv.value[2] <= '9');
                if (nv.valuelen == 3)
                    status =
                        (nv.value[0] - '0') * 100 + (nv.value[1] - '0') * 10 + (nv.value[2] - '0');
            } else {
                for (size_t j = 0; j < nv.namelen; j++)
                    H2H_CHECK(h2h_tchar(nv.name[j])); /* lower-case (§8.2.1) */
                for (size_t j = 0; j < nv.valuelen; j++)
                    H2H_CHECK(nv.value[j] != '\r' && nv.value[j] != '\n' && nv.value[j] != 0);
                /* No connection-specific field (§8.2.2). */
                H2H_CHECK(!h2h_is(nv.name, nv.namelen, "connection") &&
                          !h2h_is(nv.name, nv.namelen, "keep-alive") &&
                          !h2h_is(nv.name, nv.namelen, "proxy-connection") &&
                          !h2h_is(nv.name, nv.namelen, "transfer-encoding") &&
                          !h2h_is(nv.name, nv.namelen, "upgrade"));
                int n = snprintf(fields + fields_len, sizeof fields - fields_len, "%.*s: %.*s\n",
                                 (int)nv.namelen, nv.name, (int)nv.valuelen, nv.value);
                if (n > 0 && (size_t)n < sizeof fields - fields_len)
                    fields_len += (size_t)n;
            }
            first = 0;
        }
        if (flags & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(h->inflater);
            break;
        }
        if (rv == 0 && inlen == 0) {
            H2H_CHECK(!"a header block that ends in the middle of a field");
            h->hpack_broken = 1;
            return;
        }
    }
    if (r == NULL)
        return;
    if (trailers) {
        H2H_CHECK(end_stream); /* trailers end the stream (§8.1) */
        r->trailers++;
    } else {
        H2H_CHECK(status != 0);
        if (status >= 100 && status < 200) {
            H2H_CHECK(!end_stream);
            r->informational++;
        } else {
            r->status = status;
            memcpy(r->headers, fields, fields_len + 1);
            r->headers_len = fields_len;
        }
    }
    if (end_stream)
        r->end_stream = 1;
}

H2H_FN uint32_t h2h_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One frame from the server. */
H2H_FN void h2h_frame(h2h *h, const uint8_t *f, size_t len)
{
    uint8_t type = f[3], flags = f[4];
    uint32_t sid = h2h_u32(f + 5) & 0x7fffffffu;
    const uint8_t *p = f + 9;
    int first = h->nframes++ == 0;
    /* No larger than the client allows (RFC 9113 §4.2). */
    H2H_CHECK(len <= h->peer_max_frame);
    /* The server's preface is a SETTINGS frame (§3.4). */
    if (first)
        H2H_CHECK(type == NGHTTP2_SETTINGS && !(flags & NGHTTP2_FLAG_ACK));
    /* A header block is contiguous (§4.3). */
    if (h->block_sid != 0)
        H2H_CHECK(type == NGHTTP2_CONTINUATION && sid == h->block_sid);
    switch (type) {
    case NGHTTP2_DATA: {
        H2H_CHECK(sid != 0 && (sid & 1));
        size_t pad = 0, off = 0;
        if (flags & NGHTTP2_FLAG_PADDED) {
            H2H_CHECK(len >= 1);
            pad = len ? p[0] : 0;
            off = 1;
        }
        H2H_CHECK(off + pad <= len);
        if (off + pad > len)
            return;
        h2h_resp *r = h2h_resp_of(h, sid);
        if (r) {
            H2H_CHECK(r->status >= 200); /* DATA after the final head (§8.1) */
            H2H_CHECK(!r->end_stream && !r->rst);
            size_t n = len - off - pad;
            size_t keep = sizeof r->body - r->body_len;
            memcpy(r->body + r->body_len, p + off, n < keep ? n : keep);
            r->body_len += n < keep ? n : keep;
            r->data_total += n;
            if (flags & NGHTTP2_FLAG_END_STREAM)
                r->end_stream = 1;
        }
        return;
    }
    case NGHTTP2_HEADERS: {
        H2H_CHECK(sid != 0 && (sid & 1));
        size_t pad = 0, off = 0;
        if (flags & NGHTTP2_FLAG_PADDED) {
            pad = len ? p[0] : 0;
            off = 1;
        }
        if (flags & NGHTTP2_FLAG_PRIORITY)
            off += 5;
        H2H_CHECK(off + pad <= len);
        if (off + pad > len)
            return;
        h2h_resp *r = h2h_resp_of(h, sid);
        if (r)
            H2H_CHECK(!r->end_stream && !r->rst);
        pn_buf_clear(&h->block);
        H2H_CHECK(pn_buf_append(&h->block, p + off, len - off - pad) == 0);
        h->block_end_stream = (flags & NGHTTP2_FLAG_END_STREAM) != 0;
        if (flags & NGHTTP2_FLAG_END_HEADERS)
            h2h_header_block(h, sid, h->block_end_stream);
        else
            h->block_sid = sid;
        return;
    }
    case NGHTTP2_CONTINUATION:
        H2H_CHECK(h->block_sid != 0 && sid == h->block_sid);
        if (h->block_sid == 0)
            return;
        H2H_CHECK(pn_buf_append(&h->block, p, len) == 0);
        if (flags & NGHTTP2_FLAG_END_HEADERS) {
            h->block_sid = 0;
            h2h_header_block(h, sid, h->block_end_stream);
        }
        return;
    case NGHTTP2_PRIORITY:
        H2H_CHECK(!"PRIORITY from the server");
        return;
    case NGHTTP2_RST_STREAM: {
        H2H_CHECK(sid != 0 && (sid & 1) && len == 4);
        h2h_resp *r = h2h_resp_of(h, sid);
        if (r && len == 4 && !r->rst) {
            r->rst = 1;
            r->rst_code = h2h_u32(p);
        }
        return;
    }
    case NGHTTP2_SETTINGS:
        H2H_CHECK(sid == 0);
        if (flags & NGHTTP2_FLAG_ACK) {
            H2H_CHECK(len == 0);
            h->settings_acks++;
        } else {
            H2H_CHECK(len % 6 == 0);
            h->settings++;
        }
        return;
    case NGHTTP2_PUSH_PROMISE:
        H2H_CHECK(!"PUSH_PROMISE: the server pushes nothing");
        return;
    case NGHTTP2_PING:
        H2H_CHECK(sid == 0 && len == 8);
        if ((flags & NGHTTP2_FLAG_ACK) && len == 8) {
            h->ping_acks++;
            memcpy(h->ping_payload, p, 8);
        }
        return;
    case NGHTTP2_GOAWAY:
        H2H_CHECK(sid == 0 && len >= 8);
        if (len >= 8) {
            /* A second GOAWAY may only lower the last stream id (§6.8). */
            uint32_t last = h2h_u32(p) & 0x7fffffffu;
            H2H_CHECK(!h->goaway || last <= h->goaway_last);
            h->goaway++;
            h->goaway_last = last;
            h->goaway_code = h2h_u32(p + 4);
        }
        return;
    case NGHTTP2_WINDOW_UPDATE:
        H2H_CHECK(len == 4);
        if (len == 4) {
            uint32_t inc = h2h_u32(p) & 0x7fffffffu;
            H2H_CHECK(inc != 0);
            if (sid == 0) {
                h->conn_window_inc += inc;
            } else {
                h2h_resp *r = h2h_resp_of(h, sid);
                if (r)
                    r->window_inc += inc;
            }
        }
        h->window_updates++;
        return;
    default:
        H2H_CHECK(!"a frame of an unknown type from the server");
        return;
    }
}

/* Walk the complete frames received so far. */
H2H_FN void h2h_walk(h2h *h)
{
    for (;;) {
        size_t have = h->in.len - h->in.off;
        const uint8_t *f = (const uint8_t *)h->in.data + h->in.off;
        if (have < 9)
            break;
        size_t len = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];
        if (have < 9 + len)
            break;
        h2h_frame(h, f, len);
        pn_buf_consume(&h->in, 9 + len);
    }
    pn_buf_compact(&h->in);
}

/* Take what the server has sent, without waiting.  Returns the bytes. */
H2H_FN size_t h2h_read_out(h2h *h)
{
    size_t got = 0;
    while (h->fd >= 0 && !h->eof && !h->hold) {
        if (pn_buf_reserve(&h->in, 65536) != 0)
            abort();
        ssize_t n = recv(h->fd, h->in.data + h->in.len, 65536, MSG_DONTWAIT);
        if (n > 0) {
            h->in.len += (size_t)n;
            h->received += (uint64_t)n;
            got += (size_t)n;
            if (!h->no_walk)
                h2h_walk(h);
        } else if (n == 0) {
            h->eof = 1;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            h->eof = 1; /* reset */
        }
    }
    return got;
}

/* One round of the bridge's loop: wait up to ms for the worker's epoll
 * fd, poll the worker, read what it sent.  Returns 1 when nothing
 * happened (no event, no wakeup asked, no byte out). */
H2H_FN int h2h_pump(h2h *h, int ms)
{
    struct pollfd p = {.fd = pn_worker_fd(h->w), .events = POLLIN};
    int ready = poll(&p, 1, ms);
    int woke = h->wakeups;
    h->wakeups = 0;
    pn_worker_poll(h->w);
    size_t got = h2h_read_out(h);
    return ready <= 0 && woke == 0 && got == 0 && h->wakeups == 0;
}

/* Pump until two quiet rounds in a row, at most `rounds` rounds. */
H2H_FN void h2h_settle(h2h *h, int rounds)
{
    /* (A Unix socket delivers at once: what one side wrote, the other can
     * read without waiting; the worker's timers are not waited for.) */
    int quiet = 0;
    for (int i = 0; i < rounds && quiet < 2; i++)
        quiet = h2h_pump(h, 0) ? quiet + 1 : 0;
}

/* ---- the client: sending ---------------------------------------------- */

/* The frames the client sends, walked for its SETTINGS_MAX_FRAME_SIZE: the
 * server may send frames up to the largest value it announced. */
H2H_FN void h2h_note_sent(h2h *h, const uint8_t *p, size_t n)
{
    while (n >= 9) {
        size_t len = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
        if (p[3] == NGHTTP2_SETTINGS && !(p[4] & NGHTTP2_FLAG_ACK)) {
            for (size_t i = 0; i + 6 <= len && 9 + i + 6 <= n; i += 6) {
                const uint8_t *e = p + 9 + i;
                if (e[0] == 0 && e[1] == NGHTTP2_SETTINGS_MAX_FRAME_SIZE) {
                    uint32_t v = h2h_u32(e + 2);
                    if (v > h->peer_max_frame && v <= 16777215u)
                        h->peer_max_frame = v;
                }
            }
        }
        if (9 + len > n)
            break;
        p += 9 + len;
        n -= 9 + len;
    }
}

/* Connect a client and let the worker accept it. */
H2H_FN void h2h_connect(h2h *h)
{
    struct sockaddr_un sun;
    socklen_t len = sizeof sun;
    if (getsockname(h->lfd, (struct sockaddr *)&sun, &len) != 0)
        abort();
    h->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0 || connect(h->fd, (struct sockaddr *)&sun, len) != 0) {
        perror("h2h: connect");
        abort();
    }
    h->eof = 0;
    h->hold = 0;
    h->peer_max_frame = 16384;
    h->received = 0;
    h->nframes = 0;
    h->settings = h->settings_acks = h->ping_acks = h->window_updates = 0;
    h->conn_window_inc = 0;
    h->goaway = 0;
    h->goaway_code = h->goaway_last = 0;
    h->block_sid = 0;
    h->hpack_broken = 0;
    h->nresps = 0;
    pn_buf_clear(&h->in);
    if (h->inflater)
        nghttp2_hd_inflate_del(h->inflater);
    h->inflater = NULL;
    if (nghttp2_hd_inflate_new(&h->inflater) != 0)
        abort();
    size_t before = pn_worker_connections(h->w);
    for (int i = 0; i < 200 && pn_worker_connections(h->w) == before; i++)
        h2h_pump(h, i ? 1 : 0);
    H2H_CHECK(pn_worker_connections(h->w) == before + 1);
}

/* Send bytes, running the worker and reading its output while the socket
 * is full.  Returns 0, or -1 when the server is gone. */
H2H_FN int h2h_send_raw(h2h *h, const void *data, size_t n)
{
    const uint8_t *p = data;
    int stuck = 0;
    h2h_note_sent(h, p, n);
    while (n > 0) {
        ssize_t k = send(h->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            stuck = 0;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            /* The server stops reading while its own output is backed up:
             * a client that holds its reading must give in. */
            if (++stuck > 3)
                h->hold = 0;
            h2h_pump(h, 1);
        } else {
            return -1; /* the worker closed: it has said all it will */
        }
    }
    return 0;
}

H2H_FN void h2h_close_client(h2h *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
}

/* Free the client's side (the worker's is h2h_stop's). */
H2H_FN void h2h_client_free(h2h *h)
{
    h2h_close_client(h);
    pn_buf_free(&h->in);
    pn_buf_free(&h->block);
    if (h->inflater)
        nghttp2_hd_inflate_del(h->inflater);
    h->inflater = NULL;
    free(h->resps);
    h->resps = NULL;
    h->nresps = h->cap_resps = 0;
}

#endif
