/*
 * pn_proxy_phase.c — a connection's PN_CONN_PROXY phase: the PROXY protocol
 * header (--proxy-protocol) read before the first request, and the peer
 * trust check (--forwarded-allow-ips) that it and the proxy headers use.
 * The header's parser is in the core (pn_proxy_protocol.c).
 *
 * Private to the worker (pn_worker_int.h): runs on the connection's worker
 * thread, from accept (pn_accept.c) and the connection state machine
 * (pn_worker.c).
 */
#include "pn_worker_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "pn_proxy_protocol.h"

/* ---- the PROXY protocol (--proxy-protocol) --------------------------
 *
 * Every connection must start with a PROXY header, v1 or v2, and only a
 * peer in --forwarded-allow-ips may send one: the specification forbids
 * guessing whether a header is present, and a header from anyone else
 * would let a client pick its own address.  Whatever fails (an untrusted
 * peer, a malformed header, a close before it ended) closes the connection
 * without an answer; it is logged at debug level only, so a scanner cannot
 * flood the log.  The header shares the first request's deadline, which
 * runs from accept (header_timeout). */

/* A debug line saying why a connection was refused. */
static void proxy_log(pn_conn *c, const char *why)
{
    pn_worker *w = c->worker;
    if (w->cfg->log_level > PN_LOG_DEBUG)
        return;
    pn_ipaddr a;
    char text[PN_IPADDR_TEXT];
    size_t n = 0;
    if (pn_ipaddr_from_sockaddr(&a, NULL, (struct sockaddr *)&c->peer, c->peer_len) == 0)
        n = pn_ipaddr_format(&a, text);
    /* A debug line goes to stderr, not the access log (its own buffer). */
    pn_buf line = PN_BUF_INIT;
    pn_buf_append(&line, PN_STRLIT("DEBUG pounce: PROXY protocol: closed a connection from "));
    if (n)
        pn_buf_append(&line, text, n);
    else
        pn_buf_append(&line, PN_STRLIT("unix"));
    pn_buf_append(&line, PN_STRLIT(": "));
    pn_buf_append_str(&line, why);
    pn_buf_append(&line, PN_STRLIT("\n"));
    if (line.data && write(2, line.data, line.len) < 0) {
        /* nothing to do: stderr is gone */
    }
    pn_buf_free(&line);
}

/* c->stream.peer_trusted for c->peer, when a setting needs it. */
void pn_conn_judge_peer(pn_conn *c)
{
    const pn_config *cfg = c->worker->cfg;
    pn_ipaddr a;
    c->stream.peer_trusted =
        (cfg->proxy_headers || cfg->proxy_protocol) &&
        pn_ipaddr_from_sockaddr(&a, NULL, (struct sockaddr *)&c->peer, c->peer_len) == 0 &&
        pn_trust_has(c->worker->trust, &a);
}

/* At accept: a trusted peer's connection starts in PN_CONN_PROXY, another
 * is closed (c is freed). */
void pn_conn_proxy_begin(pn_conn *c)
{
    if (!c->stream.peer_trusted) {
        proxy_log(c, "peer not in --forwarded-allow-ips");
        pn_conn_close_now(c);
        return;
    }
    c->phase = PN_CONN_PROXY;
}

/* The header's source becomes the connection's client: scope["client"],
 * the access log and the proxy-header trust check all read c->peer.  LOCAL
 * and UNKNOWN keep the socket's peer; a Unix-socket source leaves no
 * address (client None).  The destination is not kept: scope["server"]
 * stays the listening socket's address. */
static void proxy_apply(pn_conn *c, const pn_proxy_header *h)
{
    c->stream.tls = h->ssl;
    if (h->local)
        return;
    memset(&c->peer, 0, sizeof c->peer);
    if (h->src.family == PN_IP_V4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&c->peer;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, h->src.bytes, 4);
        sin->sin_port = htons(h->src_port);
        c->peer_len = sizeof *sin;
    } else if (h->src.family == PN_IP_V6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->peer;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, h->src.bytes, 16);
        sin6->sin6_port = htons(h->src_port);
        c->peer_len = sizeof *sin6;
    } else {
        c->peer.ss_family = AF_UNIX;
        c->peer_len = sizeof(sa_family_t);
    }
    pn_conn_judge_peer(c);
}

/* PN_CONN_PROXY: read the header, then go on to the first request head
 * with the bytes that followed it (they may hold whole requests). */
void pn_conn_phase_proxy(pn_conn *c)
{
    pn_conn_read_input(c, PN_PROXY_MAX);
    if (c->dead) {
        pn_conn_close_now(c);
        return;
    }
    if (pn_buf_live(&c->rbuf) == 0) {
        /* Nothing yet (the phase runs once right after accept): rbuf may
         * have no storage at all, and NULL + 0 is undefined in C. */
        if (c->peer_closed)
            pn_conn_close_now(c);
        return;
    }
    pn_proxy_header h;
    int n = pn_proxy_parse(pn_buf_head(&c->rbuf), pn_buf_live(&c->rbuf), &h);
    if (n == PN_PROXY_INCOMPLETE) {
        if (c->peer_closed) {
            if (pn_buf_live(&c->rbuf) > 0)
                proxy_log(c, "closed before the end of the header");
            pn_conn_close_now(c);
        }
        return;
    }
    if (n < 0) {
        proxy_log(c, h.error);
        pn_conn_close_now(c);
        return;
    }
    proxy_apply(c, &h);
    pn_buf_consume(&c->rbuf, (size_t)n);
    if (c->worker->tls) {
        /* The TLS handshake follows the header (a TCP proxy in front of
         * us); the bytes read with the header are its first. */
        if (pn_tls_conn_begin(c) < 0) {
            pn_conn_close_now(c);
            return;
        }
        pn_conn_phase_tls(c);
        return;
    }
    c->phase = PN_CONN_HEAD; /* head_started is 0: the deadline from accept stands */
    pn_conn_phase_head(c);
}
