/*
 * pn_access_log.c — the worker's access log: one line per response into the
 * worker's buffer, flushed with write(2) at the end of each poll.
 *
 * Runtime layer, no Python.h.  Everything here runs on the worker's own
 * thread (pn_worker.h); the line itself is formatted by pn_log.c (core).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pn_http_token.h"
#include "pn_log.h"
#include "pn_worker.h"

/* Access-log bytes buffered inside a poll before a write(2): a few hundred
 * lines per syscall, flushed at the end of the poll anyway. */
#define LOG_FLUSH_AT 32768

void pn_worker_flush_log(pn_worker *w)
{
    pn_buf *b = pn_worker_logbuf(w);
    while (pn_buf_live(b) > 0) {
        ssize_t n = write(2, pn_buf_head(b), pn_buf_live(b));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        pn_buf_consume(b, (size_t)n);
    }
    pn_buf_clear(b);
}

void pn_conn_access_log(pn_conn *c, const char *method, size_t method_len, const char *target,
                        size_t target_len, int version_minor, const char *fwd_client,
                        size_t fwd_client_len, int status, uint64_t bytes, uint64_t duration_ns)
{
    pn_worker *w = c->worker;
    /* "[addr]:port": the address, its brackets, ':' and the port's digits. */
    char peer[INET6_ADDRSTRLEN + 3 + PN_HTTP_U64_DIGITS];
    const char *client = peer;
    size_t clen = 0;
    if (fwd_client_len) {
        /* The client the request's proxy headers named (pn_forwarded.h). */
        client = fwd_client;
        clen = fwd_client_len;
    } else if (c->peer.ss_family == AF_INET) {
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
    pn_buf *b = pn_worker_logbuf(w);
    pn_log_access(b, client, clen, method, method_len, target, target_len, version_minor,
                  status, bytes, duration_ns);
    if (!pn_worker_in_poll(w) || pn_buf_live(b) > LOG_FLUSH_AT)
        pn_worker_flush_log(w);
}
