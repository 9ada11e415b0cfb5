/*
 * pn_proxy_protocol — the PROXY protocol header (HAProxy's "PROXY protocol"
 * specification, versions 1 and 2), which a load balancer sends before the
 * client's bytes to say whom the connection really comes from.
 *
 * Protocol core: plain C, no Python.h.  The parser is pure: it reads the
 * bytes it is given and nothing else, keeps no state between calls, and
 * never reads past p[n).  It is incremental in the way a receive buffer
 * needs: call it with everything received so far (from the connection's
 * first byte); it answers "need more" as long as a valid header could still
 * follow, and fails as soon as the bytes at hand cannot start one (a client
 * speaking HTTP straight away fails on its first byte).  A header longer
 * than its cap fails as soon as its length is known.
 *
 * Policy (docs/deployment.md, "The PROXY protocol"):
 *   v1  "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n" or
 *       "PROXY UNKNOWN<anything>\r\n", at most 107 bytes, single spaces,
 *       addresses as pn_ipaddr_parse takes them (TCP4 dotted IPv4, TCP6
 *       IPv6 text), ports 0..65535 without leading zeros.
 *   v2  the 12-byte signature, version 2, command LOCAL or PROXY, and for
 *       PROXY the families AF_INET, AF_INET6, AF_UNIX over STREAM, or
 *       UNSPEC; at most PN_PROXY_V2_MAX_BLOCK bytes after the fixed 16.
 *       TLVs are walked with bounds checks; a malformed TLV list fails the
 *       header.  PP2_TYPE_SSL with its PP2_CLIENT_SSL bit sets `ssl`; every
 *       other TLV is skipped.
 * LOCAL (v2), UNKNOWN (v1) and UNSPEC (v2 PROXY) all mean "use the
 * socket's own endpoints" (`local` set); their address block is not read.
 *
 * Threads: no state; any thread.
 */
#ifndef PN_PROXY_PROTOCOL_H
#define PN_PROXY_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "pn_trust.h"

/* Longest v1 header, CRLF included (the specification's 107). */
#define PN_PROXY_V1_MAX 107
/* The fixed part of a v2 header: signature, version/command, family,
 * length. */
#define PN_PROXY_V2_FIXED 16
/* Cap on a v2 header's address block plus TLVs (its length field).  The
 * specification allows 65535; what load balancers send (addresses, an SSL
 * TLV with its sub-TLVs, an id or two) fits in a few hundred bytes, and
 * 4 KiB bounds what a broken peer makes us buffer before HTTP starts. */
#define PN_PROXY_V2_MAX_BLOCK 4096
/* The most bytes a valid header can take. */
#define PN_PROXY_MAX (PN_PROXY_V2_FIXED + PN_PROXY_V2_MAX_BLOCK)

/* Results of pn_proxy_parse besides a length. */
enum { PN_PROXY_INCOMPLETE = 0, PN_PROXY_ERROR = -1 };

typedef struct pn_proxy_header {
    uint8_t version; /* 1 or 2 */
    uint8_t local;   /* 1: keep the socket's own endpoints (src/dst unset) */
    uint8_t ssl;     /* v2: the client used TLS (PP2_TYPE_SSL, PP2_CLIENT_SSL) */
    /* When !local: the source (the client) and destination.  family is
     * PN_IP_V4, PN_IP_V6 (an IPv4-mapped address reads as PN_IP_V4, as
     * everywhere in pn_trust) or PN_IP_UNIX (v2 AF_UNIX: no address; the
     * client has none to show, as a Unix-socket peer). */
    pn_ipaddr src, dst;
    uint16_t src_port, dst_port;
    /* On PN_PROXY_ERROR: why, as a constant string for a debug log. */
    const char *error;
} pn_proxy_header;

/* Parse the header at the start of p[0..n).  Returns its length in bytes
 * (> 0; the bytes after it are the client's, untouched), PN_PROXY_INCOMPLETE
 * when p is a proper prefix of a header that may still be valid, or
 * PN_PROXY_ERROR (out->error says why). */
int pn_proxy_parse(const char *p, size_t n, pn_proxy_header *out);

#endif
