/*
 * pn_tls — TLS in the runtime, with OpenSSL 3: the server's context, built
 * once from the config, and what the scope asks of a connection's session.
 *
 * Runtime layer: plain C, no Python.h; OpenSSL's headers stay inside
 * pn_tls.c (a connection's session is named by OpenSSL's struct tag only).
 *
 * The context (pn_tls_ctx) is built once, before any worker starts, by
 * pn_tls_ctx_new (the bridge calls it while it validates a pounce.Config, so
 * a bad certificate, key or password stops the server with the file named),
 * and is READ-ONLY afterwards: every worker of the process, on any thread,
 * creates its connections' sessions from it concurrently (SSL_new only
 * takes a reference, an atomic).  One exception, made of atomics only:
 * a cache of the current session-ticket keys (a seqlock, pn_tls.c).  Its
 * owner (the Config object) frees it after the last worker using it is
 * gone.  Forked worker processes inherit it, the ticket-key secret
 * included, so a ticket from one worker resumes on another.  No session
 * cache: resumption is by tickets only (stateless), so no handshake takes
 * a lock shared with other workers.
 *
 * A connection's session (struct ssl_st, OpenSSL's SSL) belongs to the
 * connection's worker thread for its whole life, like the rest of the
 * connection (pn_worker.h); the worker's private functions that drive it
 * are declared in pn_worker_int.h.  The pn_tls_session_* functions below
 * read a session for the scope (tls extension), on that same thread.
 */
#ifndef PN_TLS_H
#define PN_TLS_H

#include <stddef.h>

#include "pn_buf.h"
#include "pn_config.h"

typedef struct pn_tls_ctx pn_tls_ctx;
struct ssl_st; /* OpenSSL's SSL: one connection's session */

/* The OpenSSL library the process runs with, e.g. "OpenSSL 3.0.19 27 Jan
 * 2026" (static; `pounce --version` names it). */
const char *pn_tls_library(void);

/* Whether the config asks for TLS (ssl_certfile is set). */
int pn_tls_wanted(const pn_config *cfg);

/* Build the server's context from cfg's ssl_* settings (cfg must want
 * TLS).  On failure returns NULL, with a message naming the file and what
 * is wrong with it in err (NUL-terminated, truncated to errlen) and the
 * setting at fault in *setting (a static string, e.g. "ssl_keyfile").
 * Runs before any worker starts, on the thread building the config. */
pn_tls_ctx *pn_tls_ctx_new(const pn_config *cfg, char *err, size_t errlen, const char **setting);
/* Free it; no session made from it may be alive any more. */
void pn_tls_ctx_free(pn_tls_ctx *t);

/* The server's certificate, PEM (the ASGI tls extension's server_cert);
 * made once with the context, immutable. */
const char *pn_tls_ctx_cert_pem(const pn_tls_ctx *t, size_t *len);

/* ---- a connection's session, for the scope (its worker thread only) ---- */

/* The negotiated protocol version (0x0303 TLS 1.2, 0x0304 TLS 1.3). */
int pn_tls_session_version(const struct ssl_st *ssl);
/* The IANA number of the negotiated cipher suite (e.g. 0x1301). */
int pn_tls_session_cipher(const struct ssl_st *ssl);
/* The i-th certificate the client sent (0: its own, then its chain), PEM,
 * appended to out.  1 when there is one, 0 when not, -1 out of memory. */
int pn_tls_session_peer_cert(const struct ssl_st *ssl, int i, pn_buf *out);
/* The client certificate's subject as an RFC 4514 string, appended to out:
 * 1, 0 without a client certificate, -1 out of memory. */
int pn_tls_session_peer_name(const struct ssl_st *ssl, pn_buf *out);

/* Why the client's certificate did not verify, as OpenSSL says it (a
 * static string, e.g. "certificate has expired"); NULL when it verified or
 * there is none.  Only --ssl-cert-reqs optional lets such a session
 * through (required refuses its handshake). */
const char *pn_tls_session_verify_error(const struct ssl_st *ssl);

/* The host name the client asked for in its ClientHello (SNI, RFC 6066
 * §3; no NUL inside, OpenSSL checks), or NULL when it sent none (a client
 * that connects to an IP address). */
const char *pn_tls_session_server_name(const struct ssl_st *ssl);

#endif
