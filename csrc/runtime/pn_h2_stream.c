/*
 * pn_h2_stream.c — an HTTP/2 stream as the seam sees it: the pn_stream_ops
 * of every HTTP/2 stream (pn_stream.h), over the connection's nghttp2
 * session (pn_h2.c).
 *
 * The response head the request built (HTTP/1.1 syntax) becomes HEADERS;
 * the body is queued on the stream and handed to nghttp2 by a data
 * provider as the stream's and the connection's windows allow; send()
 * waits while the queue holds more than --write-buffer-size.  The body
 * ops hand out received DATA and give the stream's window back as the app
 * reads.  No op writes to the socket or calls a hook: they submit frames
 * and queue the connection, whose phase (pn_h2.c) sends them.
 *
 * Threads and ownership: pn_h2.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "pn_h2_int.h"
#include "pn_http_token.h"

/* ---- the response ------------------------------------------------------ */

/* RFC 9113 §8.2.2: fields that describe a connection have no place in
 * HTTP/2 (and a client must treat them as malformed). */
static int connection_specific(const char *n, size_t len)
{
    return pn_http_ieq(n, len, PN_STRLIT("connection")) ||
           pn_http_ieq(n, len, PN_STRLIT("keep-alive")) ||
           pn_http_ieq(n, len, PN_STRLIT("proxy-connection")) ||
           pn_http_ieq(n, len, PN_STRLIT("transfer-encoding")) ||
           pn_http_ieq(n, len, PN_STRLIT("upgrade"));
}

/* Field lines "name: value\r\n" (well-formed: pn_http1_resp_header or the
 * bridge checked them) into nv entries, names lower-cased into *names.
 * Returns the count, or -1 out of memory.  nv has room for max entries. */
static int lines_to_nv(const char *p, const char *end, nghttp2_nv *nv, int n, int max,
                       pn_buf *names)
{
    /* The names are copied first (their buffer may move), then pointed to. */
    size_t base = names->len;
    int first = n;
    while (p < end && n < max) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL && colon > p) {
            size_t nl = (size_t)(colon - p);
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            if (!connection_specific(p, nl)) {
                if (pn_buf_reserve(names, nl) < 0)
                    return -1;
                char *dst = pn_buf_tail(names);
                for (size_t i = 0; i < nl; i++) {
                    char ch = p[i];
                    dst[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
                }
                nv[n].name = (uint8_t *)(uintptr_t)(names->len - base); /* offset for now */
                nv[n].namelen = nl;
                names->len += nl;
                nv[n].value = (uint8_t *)(uintptr_t)v;
                nv[n].valuelen = (size_t)(eol - v);
                nv[n].flags = NGHTTP2_NV_FLAG_NONE;
                n++;
            }
        }
        p = eol + 2;
    }
    for (int i = first; i < n; i++)
        nv[i].name = (uint8_t *)names->data + base + (uintptr_t)nv[i].name;
    return n;
}

static int count_lines(const char *p, size_t len)
{
    int n = 0;
    for (size_t i = 0; i + 1 < len; i++)
        if (p[i] == '\r' && p[i + 1] == '\n')
            n++;
    return n;
}

static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud);

/* Submit the response HEADERS from the pending head (status line and the
 * app's fields, HTTP/1.1 syntax: pn_stream.h) with what the transport adds
 * (date, server, content-length when the whole body is known), and the
 * data provider unless the response ends with its HEADERS. */
static int submit_head(h2_stream *st, pn_http1_response *resp, pn_buf *head, int64_t known_len,
                       int ends)
{
    pn_h2 *h = st->h;
    pn_worker *w = h->c->worker;
    const char *p = pn_buf_head(head);
    size_t len = pn_buf_live(head);
    const char *eol = memchr(p, '\n', len);
    const char *fields = eol ? eol + 1 : p + len;
    int max = count_lines(fields, (size_t)(p + len - fields)) + 4;
    nghttp2_nv *nv = malloc((size_t)max * sizeof(*nv));
    if (nv == NULL)
        return -1;
    char status[4];
    status[0] = (char)('0' + resp->status / 100);
    status[1] = (char)('0' + resp->status / 10 % 10);
    status[2] = (char)('0' + resp->status % 10);
    nv[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    pn_buf names = PN_BUF_INIT;
    int n = lines_to_nv(fields, p + len, nv, 1, max - 3, &names);
    if (n < 0) {
        free(nv);
        pn_buf_free(&names);
        return -1;
    }
    pn_http1_head_opts opts = pn_worker_head_opts(w);
    if (opts.date && !(resp->flags & PN_RESP_APP_DATE))
        nv[n++] =
            (nghttp2_nv){(uint8_t *)"date", (uint8_t *)opts.date, 4, 29, NGHTTP2_NV_FLAG_NONE};
    if (opts.server && !(resp->flags & PN_RESP_APP_SERVER))
        nv[n++] = (nghttp2_nv){(uint8_t *)"server", (uint8_t *)opts.server, 6, strlen(opts.server),
                               NGHTTP2_NV_FLAG_NONE};
    char cl[24];
    if (known_len >= 0 && !(resp->flags & (PN_RESP_HAS_CL | PN_RESP_NO_BODY))) {
        size_t cln = pn_http_put_u64(cl, (uint64_t)known_len);
        nv[n++] =
            (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)cl, 14, cln, NGHTTP2_NV_FLAG_NONE};
    }
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = data_read};
    int rc = nghttp2_submit_response(h->ng, st->id, nv, (size_t)n, ends ? NULL : &prd);
    free(nv);
    pn_buf_free(&names);
    if (rc != 0)
        return -1;
    st->resp_submitted = 1;
    resp->flags |= PN_RESP_HEAD_DONE;
    return 0;
}

static void resume(h2_stream *st)
{
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->h->ng, st->id);
    }
    h2_kick(st->h);
}

static int submit_trailers(h2_stream *st)
{
    int max = count_lines(pn_buf_head(&st->trailers), pn_buf_live(&st->trailers)) + 1;
    nghttp2_nv *nv = malloc((size_t)max * sizeof(*nv));
    if (nv == NULL)
        return -1;
    pn_buf names = PN_BUF_INIT;
    const char *p = pn_buf_head(&st->trailers);
    int n = lines_to_nv(p, p + pn_buf_live(&st->trailers), nv, 0, max, &names);
    int rc = n < 0 ? -1 : nghttp2_submit_trailer(st->h->ng, st->id, nv, (size_t)n);
    free(nv);
    pn_buf_free(&names);
    return rc == 0 ? 0 : -1;
}

/* The data provider: the stream's queued body, then its file; EOF once the
 * response is complete (trailers after it when owed); deferred while the
 * app has not produced more.  It only says how many bytes the next DATA
 * frame carries (NGHTTP2_DATA_FLAG_NO_COPY): pn_h2_send_data writes the
 * frame into the connection's wbuf straight from the queue or the file,
 * which saves copying every body byte into nghttp2's frame buffer first. */
static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)id;
    (void)buf;
    (void)ud;
    h2_stream *st = src->ptr;
    size_t n = 0;
    size_t live = pn_buf_live(&st->out);
    int file = 0;
    if (live > 0) {
        n = live < length ? live : length;
    } else if (st->file_fd >= 0 && st->file_left > 0) {
        n = st->file_left < length ? (size_t)st->file_left : length;
        file = 1;
    }
    if (n > 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    int empty = file ? st->file_left == n : (live == n && (st->file_fd < 0 || st->file_left == 0));
    if (empty && st->out_end) {
        if (st->rst_at_end)
            return n > 0 ? (ssize_t)n : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->trailers_owed && pn_buf_live(&st->trailers) > 0) {
            if (submit_trailers(st) < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

int pn_h2_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                    size_t length, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    pn_h2 *h = ud;
    h2_stream *st = src->ptr;
    pn_buf *wb = &h->c->wbuf;
    /* No padding is ever asked for (no select_padding callback), so the
     * frame is its 9-byte header and the bytes. */
    if (frame->data.padlen > 0 || pn_buf_reserve(wb, 9 + length) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    char *dst = pn_buf_tail(wb);
    size_t live = pn_buf_live(&st->out);
    if (live > 0) {
        if (live < length)
            return NGHTTP2_ERR_CALLBACK_FAILURE; /* data_read promised these bytes */
        memcpy(dst + 9, pn_buf_head(&st->out), length);
        pn_buf_consume(&st->out, length);
        if (pn_buf_live(&st->out) == 0)
            pn_buf_shrink(&st->out, 0);
        if (st->drain_wanted)
            h->events = 1;
    } else {
        size_t got = 0;
        while (got < length) {
            ssize_t r =
                pread(st->file_fd, dst + 9 + got, length - got, (off_t)(st->file_off + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) /* an error, or the file shrank: the length cannot be met */
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            got += (size_t)r;
        }
        st->file_off += length;
        st->file_left -= length;
    }
    memcpy(dst, framehd, 9);
    wb->len += 9 + length;
    if (st->done)
        st->stall_at = pn_monotonic_ms() + h->c->worker->request_ms; /* it moves */
    if (st->file_fd >= 0 && st->file_left == 0 && pn_buf_live(&st->out) == 0 && st->out_end) {
        close(st->file_fd);
        st->file_fd = -1;
    }
    return 0;
}

static int queue_body(h2_stream *st, pn_http1_response *resp, const char *data, size_t len,
                      int final, uint64_t *sent)
{
    pn_http1_frame f;
    int frc = pn_http1_resp_body_frame(resp, len, final, &f);
    if (frc == PN_WRITE_TOO_MUCH) {
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        h2_kick(st->h);
        return PN_IO_TOO_MUCH;
    }
    if (f.send_len && pn_buf_append(&st->out, data, f.send_len) < 0)
        return PN_IO_NOMEM;
    *sent += f.send_len;
    if (final) {
        st->out_end = 1;
        if (frc == PN_WRITE_TOO_LITTLE)
            st->rst_at_end = 1;
    }
    resume(st);
    if (frc == PN_WRITE_TOO_LITTLE)
        return PN_IO_TOO_LITTLE;
    if (pn_buf_live(&st->out) > (size_t)st->h->c->worker->cfg->write_buffer_size) {
        st->drain_wanted = 1;
        return PN_IO_WAIT;
    }
    return PN_IO_OK;
}

static int h2_send_body(pn_stream *s, pn_http1_response *resp, pn_buf *head, const char *data,
                        size_t len, int final, uint64_t *sent)
{
    h2_stream *st = stream_of(s);
    if (stream_gone(st))
        return PN_IO_GONE;
    if (head != NULL) {
        /* The whole response in one go ends with its HEADERS when it has no
         * body to send. */
        int no_data = final && (len == 0 || (resp->flags & PN_RESP_NO_BODY));
        if (no_data) {
            pn_http1_frame f;
            int frc = pn_http1_resp_body_frame(resp, len, 1, &f);
            if (frc == PN_WRITE_TOO_MUCH)
                return PN_IO_TOO_MUCH;
            if (frc == PN_WRITE_TOO_LITTLE) {
                /* Content-Length: n with no body: HEADERS, then a reset. */
                if (submit_head(st, resp, head, -1, 0) < 0)
                    return PN_IO_NOMEM;
                st->out_end = st->rst_at_end = 1;
                h2_kick(st->h);
                return PN_IO_TOO_LITTLE;
            }
            if (submit_head(st, resp, head, (int64_t)len, 1) < 0)
                return PN_IO_NOMEM;
            st->out_end = 1;
            h2_kick(st->h);
            return PN_IO_OK;
        }
        if (submit_head(st, resp, head, final ? (int64_t)len : -1, 0) < 0)
            return PN_IO_NOMEM;
    }
    return queue_body(st, resp, data, len, final, sent);
}

static int h2_send_file(pn_stream *s, pn_http1_response *resp, pn_buf *head, int fd, uint64_t off,
                        uint64_t size, uint64_t *sent)
{
    h2_stream *st = stream_of(s);
    if (stream_gone(st)) {
        close(fd);
        return PN_IO_GONE;
    }
    pn_http1_frame f;
    /* The length first: a contradiction sends nothing. */
    pn_http1_response probe = *resp;
    int frc = pn_http1_resp_body_frame(&probe, (size_t)size, 1, &f);
    if (frc != PN_WRITE_OK) {
        close(fd);
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        h2_kick(st->h);
        return frc == PN_WRITE_TOO_MUCH ? PN_IO_TOO_MUCH : PN_IO_TOO_LITTLE;
    }
    int ends = f.send_len == 0;
    if (submit_head(st, resp, head, (int64_t)size, ends) < 0) {
        close(fd);
        return PN_IO_NOMEM;
    }
    *resp = probe;
    resp->flags |= PN_RESP_HEAD_DONE;
    st->out_end = 1;
    if (ends) {
        close(fd);
    } else {
        st->file_fd = fd;
        st->file_off = off;
        st->file_left = f.send_len;
        *sent += f.send_len;
    }
    h2_kick(st->h);
    return PN_IO_OK;
}

static int h2_send_trailers(pn_stream *s, pn_http1_response *resp, pn_buf *head, const char *fields,
                            size_t len, uint64_t *sent)
{
    h2_stream *st = stream_of(s);
    if (stream_gone(st))
        return PN_IO_GONE;
    if (head != NULL && submit_head(st, resp, head, -1, 0) < 0)
        return PN_IO_NOMEM;
    if (len > 0) {
        if (pn_buf_append(&st->trailers, fields, len) < 0)
            return PN_IO_NOMEM;
        st->trailers_owed = 1;
    }
    return queue_body(st, resp, NULL, 0, 1, sent);
}

/* A whole response made by the server: status, reason as text/plain. */
void pn_h2_stream_reply(h2_stream *st, int status)
{
    if (stream_gone(st) || st->resp_submitted)
        return;
    pn_worker *w = st->h->c->worker;
    const char *reason = pn_http1_reason(status);
    char body[64];
    size_t blen = strlen(reason);
    if (blen > sizeof body - 2)
        blen = sizeof body - 2;
    memcpy(body, reason, blen);
    body[blen++] = '\n';
    pn_http1_response r;
    pn_buf head = PN_BUF_INIT;
    uint64_t sent = 0;
    if (pn_http1_resp_init(&r, status, 1, st->head_request ? PN_RESP_HEAD_REQUEST : 0) !=
            PN_WRITE_OK ||
        pn_http1_resp_start(&head, &r) != PN_WRITE_OK ||
        pn_http1_resp_header(&head, &r, PN_STRLIT("content-type"),
                             PN_STRLIT("text/plain; charset=utf-8")) != PN_WRITE_OK ||
        (st->s.request_id_len &&
         pn_http1_resp_header(&head, &r, w->cfg->request_id_header, w->rid_name_len,
                              st->s.request_id, st->s.request_id_len) != PN_WRITE_OK)) {
        pn_buf_free(&head);
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        h2_kick(st->h);
        return;
    }
    h2_send_body(&st->s, &r, &head, body, blen, 1, &sent);
    pn_buf_free(&head);
}

static void h2_reply(pn_stream *s, int status)
{
    pn_h2_stream_reply(stream_of(s), status);
}

static void h2_cork(pn_stream *s)
{
    (void)s; /* frames wait for the poll anyway: one step's sends go together */
}

static void h2_uncork(pn_stream *s)
{
    (void)s;
}

/* ---- the request body ------------------------------------------------- */

static int h2_body(pn_stream *s, const char **data, size_t *len, int *status)
{
    h2_stream *st = stream_of(s);
    *status = 0;
    if (st->body_error) {
        *status = st->body_error;
        return stream_gone(st) ? PN_BODY_GONE : PN_BODY_BAD;
    }
    size_t live = pn_buf_live(&st->in);
    if (live == 0 && !st->end_recv) {
        if (stream_gone(st))
            return PN_BODY_GONE;
        st->body_wanted = 1;
        return PN_BODY_WAIT;
    }
    *data = live ? pn_buf_head(&st->in) : "";
    *len = live;
    return st->end_recv ? PN_BODY_LAST : PN_BODY_MORE;
}

static void h2_body_consume(pn_stream *s, size_t n)
{
    h2_stream *st = stream_of(s);
    if (n == 0)
        return;
    pn_buf_consume(&st->in, n);
    if (pn_buf_live(&st->in) == 0)
        pn_buf_shrink(&st->in, 0);
    if (!stream_gone(st)) {
        /* The window this opens goes out with the next poll. */
        nghttp2_session_consume_stream(st->h->ng, st->id, n);
        h2_kick(st->h);
    }
}

static void h2_send_continue(pn_stream *s)
{
    h2_stream *st = stream_of(s);
    if (!st->expect_continue || st->sent_continue || st->resp_submitted || st->end_recv ||
        stream_gone(st))
        return;
    st->sent_continue = 1;
    const nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE}};
    nghttp2_submit_headers(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NULL, nv, 1, NULL);
    h2_kick(st->h);
}

/* ---- flow and the end --------------------------------------------------- */

static void h2_watch_close(pn_stream *s)
{
    (void)s; /* RST_STREAM and GOAWAY are explicit: on_close will tell */
}

static void h2_stall_timer(pn_stream *s, int on)
{
    h2_stream *st = stream_of(s);
    pn_h2 *h = st->h;
    st->stall_at = on ? pn_monotonic_ms() + h->c->worker->request_ms : 0;
    /* The phase re-arms the connection's timer (and the worker's timerfd,
     * which only ticks while a timer is armed) at the next poll. */
    if (!stream_gone(st))
        h2_kick(h);
}

static void h2_done(pn_stream *s, int keep_alive)
{
    (void)keep_alive; /* a multiplexed connection carries on regardless */
    h2_stream *st = stream_of(s);
    st->done = 1;
    st->s.udata = NULL;
    st->body_wanted = st->drain_wanted = 0;
    /* What is still queued must move, and a body still arriving must end,
     * within --request-timeout (a client that never opens the stream's
     * window, or never finishes its body, would hold it forever). */
    st->stall_at =
        pn_buf_live(&st->out) > 0 || (st->file_fd >= 0 && st->file_left > 0) || !st->end_recv
            ? pn_monotonic_ms() + st->h->c->worker->request_ms
            : 0;
    if (!stream_gone(st) && !st->resp_submitted) /* no response: the stream cannot end well */
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    st->h->events = 1;
    h2_kick(st->h);
}

static void h2_abort(pn_stream *s)
{
    h2_stream *st = stream_of(s);
    if (!stream_gone(st))
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    st->h->events = 1;
    h2_kick(st->h); /* on_close follows, from the phase */
}

static void h2_access_log(pn_stream *s, pn_access_rec *rec)
{
    rec->version_minor = 2;
    if (rec->request_id_len == 0 && s->request_id_len) {
        /* The stream's ID: the connection's own stream carries none. */
        rec->request_id = s->request_id;
        rec->request_id_len = s->request_id_len;
    }
    pn_conn_access_log(stream_of(s)->h->c, rec);
}

const pn_stream_ops pn_h2_stream_ops = {
    .send_body = h2_send_body,
    .send_file = h2_send_file,
    .send_trailers = h2_send_trailers,
    .reply = h2_reply,
    .cork = h2_cork,
    .uncork = h2_uncork,
    .body = h2_body,
    .body_consume = h2_body_consume,
    .send_continue = h2_send_continue,
    .watch_close = h2_watch_close,
    .stall_timer = h2_stall_timer,
    .done = h2_done,
    .abort = h2_abort,
    .access_log = h2_access_log,
};
