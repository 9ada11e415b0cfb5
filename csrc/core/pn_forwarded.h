/*
 * pn_forwarded — who the client really is behind trusted proxies: RFC 7239
 * `Forwarded` and the de-facto `X-Forwarded-For` / `-Proto` (and, behind an
 * opt-in, `-Host` / `-Port`), resolved right to left against the
 * --forwarded-allow-ips list (pn_trust).
 *
 * Protocol core: plain C, no Python.h.  Reads the header slices of a parsed
 * request head (pn_http1_request.headers) and never past them; allocates
 * nothing; what it keeps (an address, a host, an obfuscated name) is copied
 * into the caller's pn_fwd_result.
 *
 * The rules (docs/deployment.md, "Behind a proxy"):
 *   - Only a trusted peer's headers count; from any other peer they are
 *     ignored whole (PN_FWD_UNTRUSTED).
 *   - Several field lines of one header are one list, in order (RFC 9110
 *     §5.3); empty list elements are skipped (§5.6.1).
 *   - The client is the rightmost untrusted hop: walk the hops from the
 *     right, passing every one that is itself a trusted address; the first
 *     that is not (an untrusted address, `unknown`, an obfuscated `_name`)
 *     is the client.  When every hop is trusted, the leftmost is.  A
 *     Forwarded element without `for` ends the walk too: the client is then
 *     the hop that wrote it (the peer itself when it is the rightmost).
 *   - The scheme (`proto`, X-Forwarded-Proto) and host are the ones given
 *     for that same hop: in Forwarded, of the chosen element; in the X-
 *     family, the entry at the same distance from the right as the client's
 *     X-Forwarded-For entry (or the leftmost, when the list is shorter, so a
 *     single value applies to every hop).
 *   - Anything malformed from a trusted peer (bad syntax, a `for` that is
 *     no node, a bad port or host) voids the whole reading
 *     (PN_FWD_MALFORMED): client, scheme and host come from one consistent
 *     reading or not at all.
 *   - When both families are present, each is read; they must name the same
 *     client (address, or `unknown`, or name) and the same scheme, else
 *     neither applies (PN_FWD_CONFLICT) — a client cannot use the family a
 *     proxy does not manage to contradict the one it does.  The host is then
 *     rewritten only when both give the same one.
 *
 * Threads: pure functions over their arguments; any thread.
 */
#ifndef PN_FORWARDED_H
#define PN_FORWARDED_H

#include <stddef.h>
#include <stdint.h>

#include "pn_http1_parse.h"
#include "pn_trust.h"

/* What the client is, after resolution. */
enum {
    PN_FWD_CLIENT_PEER = 0, /* unchanged: the connection's peer */
    PN_FWD_CLIENT_ADDR,     /* addr (and port, 0 when none was given) */
    PN_FWD_CLIENT_UNKNOWN,  /* the `unknown` node (RFC 7239 §6.2) */
    PN_FWD_CLIENT_NAME,     /* an obfuscated identifier (RFC 7239 §6.3): name, port */
};

/* The scheme a hop says it received; NONE leaves the connection's. */
enum {
    PN_FWD_SCHEME_NONE = 0,
    PN_FWD_SCHEME_HTTP,
    PN_FWD_SCHEME_HTTPS,
    PN_FWD_SCHEME_WS,
    PN_FWD_SCHEME_WSS,
};

/* Flags of pn_forwarded_resolve. */
enum {
    PN_FWD_X_HOST = 1u << 0, /* also believe X-Forwarded-Host and -Port (--x-forwarded-host) */
    PN_FWD_PEER_TRUSTED = 1u << 1, /* the caller found the peer trusted already (peer unused) */
};

/* Results of pn_forwarded_resolve; only PN_FWD_APPLY fills *out. */
enum {
    PN_FWD_ABSENT = 0,     /* none of the headers is present */
    PN_FWD_APPLY = 1,      /* *out holds what to apply */
    PN_FWD_UNTRUSTED = -1, /* present, but the peer is not trusted */
    PN_FWD_MALFORMED = -2, /* present, trusted, but not well formed */
    PN_FWD_CONFLICT = -3,  /* both families present and they disagree */
};

/* Longest obfuscated identifier kept (with its '_'); longer is malformed. */
#define PN_FWD_NAME_MAX 64
/* Longest host kept (a DNS name is at most 253 bytes), with ":port". */
#define PN_FWD_HOST_MAX 262
/* Room pn_fwd_client_text needs: "[v6]:port" or "_name:port". */
#define PN_FWD_CLIENT_TEXT (PN_FWD_NAME_MAX + 8)

typedef struct pn_fwd_result {
    int client;     /* PN_FWD_CLIENT_* */
    pn_ipaddr addr; /* PN_FWD_CLIENT_ADDR */
    uint16_t port;  /* ADDR and NAME: the node's port, 0 when none (or obfuscated) */
    int scheme;     /* PN_FWD_SCHEME_* */
    size_t name_len;
    char name[PN_FWD_NAME_MAX]; /* PN_FWD_CLIENT_NAME */
    size_t host_len;            /* 0: leave the Host header alone */
    char host[PN_FWD_HOST_MAX]; /* the Host the client used ("name[:port]") */
} pn_fwd_result;

/* Resolve the proxy headers among h[0..n) sent by `peer` (its address,
 * PN_IP_UNIX for a Unix socket).  Returns a PN_FWD_* result.  Cheap when no
 * such header is present: one look at each field name's length, and the
 * peer is not even matched. */
int pn_forwarded_resolve(pn_fwd_result *out, const pn_http1_header *h, size_t n, const pn_trust *t,
                         const pn_ipaddr *peer, unsigned flags);

/* The resolved client as the access log writes it ("192.0.2.1:0",
 * "[2001:db8::1]:443", "_hidden:0", "unknown") into buf[PN_FWD_CLIENT_TEXT];
 * returns its length, 0 for PN_FWD_CLIENT_PEER (log the peer). */
size_t pn_fwd_client_text(const pn_fwd_result *r, char *buf);

#endif
