/*
 * pn_worker_answer.c — the answers the worker makes itself, before the app:
 * --health-path, --limit-concurrency's 503 and --static (pn_static.c
 * decides those), one decision for both transports (answer_decide), then
 * written on an HTTP/1.1 connection (answer_conn) or through an HTTP/2
 * stream's ops (answer_stream).
 *
 * Threads: the worker's own thread, inside pn_worker_poll (pn_worker.h).
 * Owns nothing: the head goes into the connection's write buffer or a
 * scratch buffer the caller frees.
 */
#include "pn_worker_int.h"

#include <string.h>
#include <unistd.h>

#include "pn_http_token.h"
#include "pn_static.h"

/* A short text/plain answer of the worker's (health, shed), its head
 * begun in out.  Out of line, so that the decision below, taken for every
 * request when w->answers, stays a few tests (inlined, the compiler hoisted
 * this one's constants ahead of them: 12 instructions more per plaintext
 * request, callgrind). */
static NOINLINE void answer_plain(pn_answer *a, pn_buf *out, const pn_http1_request *req,
                                  int status, int head, int log, const char *body)
{
    pn_answer_start(a, out, req, status, head, log);
    pn_answer_field(a, PN_STRLIT("Content-Type"), PN_STRLIT("text/plain; charset=utf-8"));
    pn_answer_field(a, PN_STRLIT("Cache-Control"), PN_STRLIT("no-store"));
    if (status == 405)
        pn_answer_field(a, PN_STRLIT("Allow"), PN_STRLIT("GET, HEAD"));
    else if (status == 503 && log)
        pn_answer_field(a, PN_STRLIT("Retry-After"), PN_STRLIT("1"));
    a->body = body;
    a->fd = -1;
    a->off = 0;
    a->len = strlen(body);
}

/* A request the worker answers itself, without the app: --health-path,
 * --static, and --limit-concurrency beyond its limit (a WebSocket handshake
 * too: it gets a plain 503).  Health checks write no access-log line (a
 * balancer polls every few seconds: its own log has them); 503s do.  The
 * one decision of both transports: 1 with *a filled and its head begun in
 * out, 0 for the app (out untouched).  Inlined into its two callers. */
static ALWAYS_INLINE int answer_decide(pn_worker *w, const pn_http1_request *req, pn_answer *a,
                                       pn_buf *out)
{
    const pn_config *cfg = w->cfg;
    if (w->health_len > 0 && req->path_len == w->health_len &&
        memcmp(req->path, cfg->health_path, w->health_len) == 0) {
        int head = pn_http_eq(req->method, req->method_len, PN_STRLIT("HEAD"));
        if (head || pn_http_eq(req->method, req->method_len, PN_STRLIT("GET")))
            answer_plain(a, out, req, w->stopping ? 503 : 200, head, 0,
                         w->stopping ? "draining\n" : "ok\n");
        else
            answer_plain(a, out, req, 405, 0, 0, "Method Not Allowed\n");
        return 1;
    }
    if (w->statics != NULL && pn_static_answer(w->statics, req, a, out))
        return 1; /* --static: never reaches the app, nor --limit-concurrency */
    if (cfg->limit_concurrency > 0 && w->hooks.in_flight != NULL &&
        w->hooks.in_flight(w->ctx) >= (size_t)cfg->limit_concurrency) {
        answer_plain(a, out, req, 503, pn_http_eq(req->method, req->method_len, PN_STRLIT("HEAD")),
                     1, "Service Unavailable\n");
        return 1;
    }
    return 0;
}

/* The request's ID (--request-id), the last field of every answer. */
static inline void answer_rid(pn_worker *w, const pn_stream *s, pn_answer *a)
{
    if (s->request_id_len)
        pn_answer_field(a, w->cfg->request_id_header, w->rid_name_len, s->request_id,
                        s->request_id_len);
}

/* HTTP/1.1's emitter: the decision wrote the head into c->wbuf; finish it
 * there, append an in-memory body (or queue the file for sendfile), then
 * pn_worker_answered.  The connection persists when the request has no
 * body and nothing else ends it; a body we would have to read, we refuse
 * by closing, as with the other early answers. */
static void answer_conn(pn_conn *c, const pn_http1_request *req, pn_answer *a)
{
    pn_worker *w = c->worker;
    int keep = (req->flags & PN_REQ_KEEP_ALIVE) && req->body_kind == PN_BODY_NONE &&
               !c->closing_soon && !w->draining;
    pn_buf_consume(&c->rbuf, req->head_len);
    a->r.flags |= keep ? PN_RESP_KEEP_ALIVE : PN_RESP_CLOSE;
    answer_rid(w, &c->stream, a);
    pn_http1_head_opts opts = pn_worker_head_opts(w);
    int ok =
        a->ok && pn_http1_resp_finish_head(&c->wbuf, &a->r, &opts, (int64_t)a->len) == PN_WRITE_OK;
    if (ok && !a->head && a->len > 0) {
        if (a->body != NULL) {
            ok = pn_buf_append(&c->wbuf, a->body, (size_t)a->len) == 0;
        } else {
            int fd = dup(a->fd);
            if (fd < 0)
                ok = 0;
            else
                pn_conn_sendfile(c, fd, a->off, a->len); /* takes fd; c->dead on failure */
        }
    }
    if (!ok) {
        c->dead = 1; /* out of memory (or descriptors) */
        keep = 0;
    }
    pn_worker_answered(c, a->log ? req : NULL, a->status, a->head ? 0 : a->len,
                       keep && !(a->r.flags & PN_RESP_CLOSE));
}

int pn_worker_answer_conn(pn_conn *c, const pn_http1_request *req)
{
    pn_answer a;
    if (!answer_decide(c->worker, req, &a, &c->wbuf))
        return 0;
    answer_conn(c, req, &a);
    return 1;
}

/* A stream's emitter (HTTP/2): the head from a scratch buffer, unfinished,
 * with an explicit Content-Length (a HEAD's too, which sends no body), then
 * the body through send_body or send_file; counted and logged as
 * pn_worker_answered does, then the stream is the transport's again. */
static void answer_stream(pn_worker *w, pn_stream *s, const pn_http1_request *req, pn_answer *a)
{
    char clen[PN_HTTP_U64_DIGITS];
    uint64_t sent = 0;
    int rc = PN_IO_NOMEM;
    answer_rid(w, s, a);
    if (a->status != 304)
        pn_answer_field(a, PN_STRLIT("Content-Length"), clen, pn_http_put_u64(clen, a->len));
    if (a->ok) {
        if (a->head || a->body != NULL || a->len == 0) {
            rc = s->ops->send_body(s, &a->r, a->out, a->head ? NULL : a->body,
                                   a->head ? 0 : (size_t)a->len, 1, &sent);
        } else {
            int fd = dup(a->fd);
            if (fd >= 0)
                rc = s->ops->send_file(s, &a->r, a->out, fd, a->off, a->len, &sent); /* takes fd */
        }
    }
    pn_metrics_early(w->metrics, a->status);
    if (a->log && w->cfg->access_log && w->cfg->log_level <= PN_LOG_INFO) {
        pn_access_rec rec = pn_access_rec_of(req, a->status, sent);
        if (s->request_id_len) {
            rec.request_id = s->request_id;
            rec.request_id_len = s->request_id_len;
        }
        s->ops->access_log(s, &rec);
    }
    if (rc == PN_IO_NOMEM || rc == PN_IO_TOO_MUCH)
        s->ops->abort(s); /* the client must not take it for complete */
    else
        s->ops->done(s, 1);
}

int pn_worker_answer_stream(pn_worker *w, pn_stream *s, const pn_http1_request *req)
{
    pn_answer a;
    pn_buf head = PN_BUF_INIT;
    int answered = answer_decide(w, req, &a, &head);
    if (answered)
        answer_stream(w, s, req, &a);
    pn_buf_free(&head);
    return answered;
}
