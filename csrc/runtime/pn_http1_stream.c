/*
 * pn_http1_stream.c — an HTTP/1.1 connection as the stream of its current
 * request: the first implementation of pn_stream_ops (pn_stream.h).
 *
 * The pn_stream is embedded in the pn_conn and carries the connection's
 * requests one after the other; each op is the connection function of the
 * same name (pn_worker.c), plus what HTTP/1.1 adds to a response: the
 * finished head (framing, Connection, Date, Server, RFC 9112 §6) and the
 * chunk framing of the body (§7.1), by the core's writer.  This file only
 * reads the connection's state; pn_worker.c changes it.
 *
 * Threads: the connection's worker thread only, like all of pn_worker.h.
 */
#include <unistd.h>

#include "pn_worker.h"

static pn_conn *conn_of(pn_stream *s)
{
    return (pn_conn *)((char *)s - offsetof(pn_conn, stream));
}

/* ---- the response ---------------------------------------------------- */

/* What the connection adds to a response head before it is finished: keep
 * it open only when the request allows it and the worker is not draining
 * (say "Connection: close" up front otherwise).  unread_body: also close
 * when the client may still be holding its body back for a 100 Continue we
 * never sent (RFC 9110 §10.1.1), since the rest of it cannot be told from
 * the next request. */
static void head_connection(const pn_conn *c, pn_http1_response *resp, int unread_body)
{
    if (c->keep_alive && !c->closing_soon)
        resp->flags |= PN_RESP_KEEP_ALIVE;
    if (c->closing_soon ||
        (unread_body && c->expect_continue && !c->sent_continue && !c->body.done))
        resp->flags |= PN_RESP_CLOSE;
}

static int h1_send_body(pn_stream *s, pn_http1_response *resp, pn_buf *head, const char *data,
                        size_t len, int final, uint64_t *sent)
{
    pn_conn *c = conn_of(s);
    if (head != NULL) {
        head_connection(c, resp, 1);
        pn_http1_head_opts opts = pn_worker_head_opts(c->worker);
        if (pn_http1_resp_finish_head(head, resp, &opts, final ? (int64_t)len : -1) != PN_WRITE_OK)
            return PN_IO_NOMEM;
    }
    pn_http1_frame f;
    int frc = pn_http1_resp_body_frame(resp, len, final, &f);
    if (frc == PN_WRITE_TOO_MUCH) {
        pn_conn_close(c);
        return PN_IO_TOO_MUCH;
    }
    struct iovec iov[4];
    int n = 0;
    if (head != NULL) {
        iov[n].iov_base = head->data;
        iov[n++].iov_len = head->len;
    }
    if (f.prefix_len) {
        iov[n].iov_base = f.prefix;
        iov[n++].iov_len = f.prefix_len;
    }
    if (f.send_len) {
        iov[n].iov_base = (void *)data;
        iov[n++].iov_len = f.send_len;
    }
    if (f.suffix_len) {
        iov[n].iov_base = f.suffix;
        iov[n++].iov_len = f.suffix_len;
    }
    int rc = n ? pn_conn_write(c, iov, n) : PN_IO_OK;
    *sent += f.send_len;
    /* (The writer marked the response to close: the client can only see a
     * short body by the connection closing.) */
    return frc == PN_WRITE_TOO_LITTLE ? PN_IO_TOO_LITTLE : rc;
}

static int h1_send_file(pn_stream *s, pn_http1_response *resp, pn_buf *head, int fd, uint64_t off,
                        uint64_t size, uint64_t *sent)
{
    pn_conn *c = conn_of(s);
    head_connection(c, resp, 0);
    pn_http1_head_opts opts = pn_worker_head_opts(c->worker);
    if (pn_http1_resp_finish_head(head, resp, &opts, (int64_t)size) != PN_WRITE_OK) {
        close(fd);
        return PN_IO_NOMEM;
    }
    pn_http1_frame f;
    int frc = pn_http1_resp_body_frame(resp, (size_t)size, 1, &f);
    if (frc != PN_WRITE_OK) {
        close(fd);
        pn_conn_close(c);
        return frc == PN_WRITE_TOO_MUCH ? PN_IO_TOO_MUCH : PN_IO_TOO_LITTLE;
    }
    struct iovec iov[2];
    int n = 0;
    iov[n].iov_base = head->data;
    iov[n++].iov_len = head->len;
    if (f.prefix_len) {
        iov[n].iov_base = f.prefix;
        iov[n++].iov_len = f.prefix_len;
    }
    int rc = pn_conn_write(c, iov, n);
    if (f.send_len) {
        rc = pn_conn_sendfile(c, fd, off, f.send_len);
        *sent += f.send_len;
    } else {
        close(fd);
    }
    if (f.suffix_len) {
        /* Chunked framing never applies here (the length is known), but
         * keep the writer's contract. */
        struct iovec sv = {f.suffix, f.suffix_len};
        rc = pn_conn_write(c, &sv, 1);
    }
    return rc;
}

/* End the response with a trailer section (RFC 9112 §7.1.2).  s->trailers
 * (the request said TE: trailers, pn_worker.c) lets the section go out on a
 * chunked body: the last-chunk, the fields (the core's writer drops the
 * ones RFC 9110 §6.5.1 keeps out of trailers), CRLF.  A body with a
 * Content-Length, HEAD, 204 and 304 have no trailer section: the fields
 * are dropped and the response ends as a final empty piece ends it.  A
 * head still pending (no body went out) is finished chunked, so that the
 * section can follow it. */
static int h1_send_trailers(pn_stream *s, pn_http1_response *resp, pn_buf *head, const char *fields,
                            size_t len, uint64_t *sent)
{
    if (!s->trailers)
        return h1_send_body(s, resp, head, NULL, 0, 1, sent);
    pn_conn *c = conn_of(s);
    if (head != NULL) {
        head_connection(c, resp, 1);
        pn_http1_head_opts opts = pn_worker_head_opts(c->worker);
        if (pn_http1_resp_finish_head(head, resp, &opts, -1) != PN_WRITE_OK)
            return PN_IO_NOMEM;
    }
    pn_buf out = PN_BUF_INIT;
    int wrc = pn_http1_resp_trailers(&out, resp, fields, len);
    if (wrc == PN_WRITE_NOMEM) {
        pn_buf_free(&out);
        return PN_IO_NOMEM;
    }
    struct iovec iov[2];
    int n = 0;
    if (head != NULL) {
        iov[n].iov_base = head->data;
        iov[n++].iov_len = head->len;
    }
    if (out.len) {
        iov[n].iov_base = out.data;
        iov[n++].iov_len = out.len;
    }
    int rc = n ? pn_conn_write(c, iov, n) : PN_IO_OK;
    pn_buf_free(&out);
    (void)sent; /* no payload */
    return wrc == PN_WRITE_TOO_LITTLE ? PN_IO_TOO_LITTLE : rc;
}

static void h1_reply(pn_stream *s, int status)
{
    pn_conn *c = conn_of(s);
    pn_buf out = PN_BUF_INIT;
    if (pn_conn_write_simple(c, &out, status, 1) == 0) {
        struct iovec iov = {out.data, out.len};
        pn_conn_write(c, &iov, 1);
    }
    pn_buf_free(&out);
}

static void h1_cork(pn_stream *s)
{
    pn_conn_cork(conn_of(s));
}

static void h1_uncork(pn_stream *s)
{
    pn_conn_uncork(conn_of(s));
}

/* ---- the request body ------------------------------------------------ */

static int h1_body(pn_stream *s, const char **data, size_t *len, int *status)
{
    pn_conn *c = conn_of(s);
    int rc = pn_conn_body(c, data, len);
    if (rc < 0) {
        *status = c->body_error;
        return c->body_error && !c->dead ? PN_BODY_BAD : PN_BODY_GONE;
    }
    if (rc == 0)
        return PN_BODY_WAIT;
    /* *len is all of the decoded body there is: it ends it when the body is
     * complete. */
    return c->body.done ? PN_BODY_LAST : PN_BODY_MORE;
}

static void h1_body_consume(pn_stream *s, size_t n)
{
    pn_conn_body_consume(conn_of(s), n);
}

static void h1_send_continue(pn_stream *s)
{
    pn_conn_send_continue(conn_of(s));
}

/* ---- flow and the end ------------------------------------------------- */

static void h1_watch_close(pn_stream *s)
{
    pn_conn_watch_close(conn_of(s));
}

static void h1_stall_timer(pn_stream *s, int on)
{
    pn_conn_set_stall_timer(conn_of(s), on);
}

static void h1_done(pn_stream *s, int keep_alive)
{
    pn_conn_response_done(conn_of(s), keep_alive);
}

static void h1_abort(pn_stream *s)
{
    pn_conn_close(conn_of(s));
}

static void h1_access_log(pn_stream *s, pn_access_rec *rec)
{
    pn_conn *c = conn_of(s);
    rec->version_minor = c->http11;
    pn_conn_access_log(c, rec);
}

const pn_stream_ops pn_http1_stream_ops = {
    .send_body = h1_send_body,
    .send_file = h1_send_file,
    .send_trailers = h1_send_trailers,
    .reply = h1_reply,
    .cork = h1_cork,
    .uncork = h1_uncork,
    .body = h1_body,
    .body_consume = h1_body_consume,
    .send_continue = h1_send_continue,
    .watch_close = h1_watch_close,
    .stall_timer = h1_stall_timer,
    .done = h1_done,
    .abort = h1_abort,
    .access_log = h1_access_log,
};

void pn_http1_stream_init(pn_conn *c)
{
    c->stream.ops = &pn_http1_stream_ops;
    c->stream.udata = NULL;
    c->stream.peer = &c->peer;
    c->stream.listener = c->listener;
    c->stream.request_id_len = 0;
}
