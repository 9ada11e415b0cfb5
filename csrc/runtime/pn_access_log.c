/*
 * pn_access_log.c — the worker's access log: one line per response into the
 * worker's buffer, flushed at the end of each poll with write(2) to stderr
 * or --access-log-file, or handed to the bridge's logging sink.  Contract
 * in pn_access_log.h.
 *
 * Runtime layer, no Python.h.  Everything here runs on the worker's own
 * thread (pn_worker.h); the line itself is formatted by pn_log.c (core).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pn_access_log.h"
#include "pn_http_token.h"
#include "pn_log.h"
#include "pn_worker.h"

/* Access-log bytes buffered inside a poll before a write(2): a few hundred
 * lines per syscall, flushed at the end of the poll anyway. */
#define LOG_FLUSH_AT 32768

void pn_access_rec_headers(pn_access_rec *r, const pn_http1_request *req)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        const pn_http1_header *h = &req->headers[i];
        if (r->referer == NULL && pn_http_ieq(h->name, h->name_len, PN_STRLIT("referer"))) {
            r->referer = h->value;
            r->referer_len = h->value_len;
        } else if (r->user_agent == NULL &&
                   pn_http_ieq(h->name, h->name_len, PN_STRLIT("user-agent"))) {
            r->user_agent = h->value;
            r->user_agent_len = h->value_len;
        }
    }
}

pn_access_rec pn_access_rec_of(const pn_http1_request *req, int status, uint64_t bytes)
{
    pn_access_rec rec = {
        .method = req->method,
        .method_len = req->method_len,
        .target = req->target,
        .target_len = req->target_len,
        .version_minor = req->version_minor,
        .status = status,
        .bytes = bytes,
    };
    pn_access_rec_headers(&rec, req);
    return rec;
}

void pn_alog_init(pn_alog *a, int format)
{
    a->buf = (pn_buf)PN_BUF_INIT;
    a->fd = 2;
    a->format = format;
    a->pid = (long)getpid();
    a->clock = (pn_log_clock)PN_LOG_CLOCK_INIT;
    a->sink = NULL;
    a->sink_ctx = NULL;
}

void pn_alog_flush(pn_alog *a)
{
    pn_buf *b = &a->buf;
    if (pn_buf_live(b) > 0 && a->sink) {
        a->sink(a->sink_ctx, pn_buf_head(b), pn_buf_live(b));
        pn_buf_clear(b);
        return;
    }
    while (pn_buf_live(b) > 0) {
        ssize_t n = write(a->fd, pn_buf_head(b), pn_buf_live(b));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        pn_buf_consume(b, (size_t)n);
    }
    pn_buf_clear(b);
}

void pn_alog_free(pn_alog *a)
{
    pn_alog_flush(a);
    pn_buf_free(&a->buf);
}

void pn_worker_flush_log(pn_worker *w)
{
    pn_alog_flush(pn_worker_alog(w));
}

void pn_conn_access_log(pn_conn *c, pn_access_rec *rec)
{
    pn_worker *w = c->worker;
    pn_alog *a = pn_worker_alog(w);
    /* "[addr]:port": the address, its brackets, ':' and the port's digits. */
    char peer[INET6_ADDRSTRLEN + 3 + PN_HTTP_U64_DIGITS];
    if (rec->client_len == 0) {
        /* No client named by the request's proxy headers (pn_forwarded.h):
         * the connection's peer. */
        size_t clen;
        if (c->peer.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&c->peer;
            clen = pn_log_format_ipv4(peer, (const unsigned char *)&sin->sin_addr);
            peer[clen++] = ':';
            clen += pn_http_put_u64(peer + clen, ntohs(sin->sin_port));
        } else if (c->peer.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->peer;
            peer[0] = '[';
            inet_ntop(AF_INET6, &sin6->sin6_addr, peer + 1, INET6_ADDRSTRLEN);
            clen = strlen(peer);
            peer[clen++] = ']';
            peer[clen++] = ':';
            clen += pn_http_put_u64(peer + clen, ntohs(sin6->sin6_port));
        } else {
            clen = (size_t)(pn_http_put(peer, PN_STRLIT("unix")) - peer);
        }
        rec->client = peer;
        rec->client_len = clen;
    }
    if (rec->request_id_len == 0 && c->stream.request_id_len) {
        /* --request-id: the ID the transport chose for this request when
         * its head arrived (or a new one for a head that did not parse). */
        rec->request_id = c->stream.request_id;
        rec->request_id_len = c->stream.request_id_len;
    }
    if (a->format != PN_LOG_FMT_DEFAULT) {
        /* The wall clock, for formats that show it (one vDSO call; the
         * text of the second is cached in a->clock). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rec->time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        rec->pid = a->pid;
    }
    pn_log_format(&a->buf, a->format, rec, &a->clock);
    if (!pn_worker_in_poll(w) || pn_buf_live(&a->buf) > LOG_FLUSH_AT)
        pn_alog_flush(a);
}
