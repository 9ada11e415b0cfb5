/*
 * pn_h2 — HTTP/2 (RFC 9113) on a connection: the second transport of the
 * stream seam (pn_stream.h), over an nghttp2 server session.
 *
 * Runtime layer: plain C, no Python.h.  nghttp2 does the framing, HPACK,
 * the stream states and flow-control accounting; this file glues it to the
 * worker: bytes in from the connection's rbuf, frames out into its wbuf,
 * each stream a pn_stream carrying one request to the bridge through the
 * same hooks and ops as HTTP/1.1 (docs/architecture.md, "The seam").
 *
 * A connection becomes HTTP/2 (phase PN_CONN_H2) after a TLS handshake that
 * chose ALPN "h2", or when its first bytes are the connection preface
 * (prior knowledge, cleartext); --http decides which are allowed.
 *
 * Threads: the connection's worker thread only, like all of pn_worker.h.
 *
 * Ownership: the session (struct pn_h2) belongs to its pn_conn (c->h2) and
 * is freed with it; each stream belongs to the session.  A stream is freed
 * only inside pn_worker_poll, once nghttp2 has closed it and the request
 * has let go of it (done(), or on_close delivered).  nghttp2's callbacks
 * never call a hook: they record what happened, and the phase (inside the
 * poll) delivers on_request, on_body, on_drain and on_close afterwards; the
 * stream ops only queue frames (nghttp2_submit_*) and queue the connection,
 * so the re-entrancy rule of pn_worker.h holds.
 */
#ifndef PN_H2_H
#define PN_H2_H

#include <stddef.h>

#include "pn_worker.h"

/* The client connection preface (RFC 9113 §3.4). */
#define PN_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PN_H2_PREFACE_LEN 24

/* How the first bytes p[0..n) of a connection compare with the preface:
 * 1 = they begin with the whole preface, 0 = they are a proper prefix of it
 * (wait for more), -1 = not HTTP/2. */
int pn_h2_preface_match(const char *p, size_t n);

/* Make c an HTTP/2 connection: a session is created, the server's SETTINGS
 * queued, c->phase set to PN_CONN_H2 and c queued; bytes already in c->rbuf
 * (the preface, with prior knowledge) are the session's first.  0, or -1
 * out of memory (the caller closes c). */
int pn_h2_conn_begin(pn_conn *c);

/* The PN_CONN_H2 phase of conn_process (may free c). */
void pn_conn_phase_h2(pn_conn *c);

/* c's timer fired in PN_CONN_H2 (may free c). */
void pn_h2_on_timer(pn_conn *c);

/* From pn_conn_close_now: every stream the bridge still holds gets
 * on_close, then the session is freed.  Sets c->h2 to NULL. */
void pn_h2_conn_free(pn_conn *c);

/* The ALPN list the TLS context offers for cfg->http, in wire format:
 * sets *len. */
const unsigned char *pn_h2_alpn(const pn_config *cfg, unsigned *len);

#endif
