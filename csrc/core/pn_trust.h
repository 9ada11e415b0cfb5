/*
 * pn_trust — IP addresses, and the set of peers whose forwarding information
 * Pounce believes (--forwarded-allow-ips): the proxies allowed to say who the
 * client is, with Forwarded / X-Forwarded-* headers or the PROXY protocol.
 *
 * Protocol core: plain C, no Python.h.
 *
 * The list is comma-separated; each entry is one of
 *   an IPv4 or IPv6 address    127.0.0.1, ::1
 *   a CIDR block               10.0.0.0/8, fd00::/8 (host bits are ignored,
 *                              as Python's ip_network(strict=False) does)
 *   *                          every peer (use only where the network itself
 *                              guarantees that a proxy is the only peer)
 *   unix                       peers on a Unix domain socket
 * Spaces around entries are ignored; an empty list trusts nobody.  An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address everywhere,
 * in the list and in what is matched against it, so a dual-stack socket's
 * peers match IPv4 entries.
 *
 * Ownership and threads: pn_trust_new returns a list owned by the caller;
 * it is immutable until pn_trust_free, so any number of threads may match
 * against it at once.  pn_ipaddr is a plain value.  No global state.
 */
#ifndef PN_TRUST_H
#define PN_TRUST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum { PN_IP_NONE = 0, PN_IP_V4 = 4, PN_IP_V6 = 6, PN_IP_UNIX = 1 };

typedef struct pn_ipaddr {
    uint8_t family;    /* PN_IP_*; PN_IP_UNIX carries no bytes */
    uint8_t bytes[16]; /* network order; an IPv4 address uses bytes[0..4) */
} pn_ipaddr;

/* Longest text of an address pn_ipaddr_format writes, with its NUL. */
#define PN_IPADDR_TEXT 46

/* Parse an address literal: dotted IPv4 (no leading zeros) or IPv6 text,
 * without brackets, port or zone.  0, or -1 when s[0..n) is not one. */
int pn_ipaddr_parse(pn_ipaddr *out, const char *s, size_t n);
/* The address of a socket peer: AF_INET, AF_INET6 (IPv4-mapped ones become
 * IPv4) or AF_UNIX (PN_IP_UNIX).  *port gets the port (0 for Unix) when port
 * is not NULL.  0, or -1 for another family or a short length. */
int pn_ipaddr_from_sockaddr(pn_ipaddr *out, uint16_t *port, const struct sockaddr *sa,
                            socklen_t len);
/* The canonical text (inet_ntop's) into buf[PN_IPADDR_TEXT]; returns its
 * length, 0 for PN_IP_NONE and PN_IP_UNIX. */
size_t pn_ipaddr_format(const pn_ipaddr *a, char *buf);

typedef struct pn_trust pn_trust;

/* Parse a list.  NULL when it is malformed (err gets a one-line message
 * naming the entry, e.g. "'10.0.0.0/33': prefix longer than 32 bits") or
 * out of memory (err says so). */
pn_trust *pn_trust_new(const char *spec, size_t n, char *err, size_t errlen);
void pn_trust_free(pn_trust *t);
/* Whether the list trusts this peer (a PN_IP_NONE address never is, except
 * under "*"). */
int pn_trust_has(const pn_trust *t, const pn_ipaddr *a);
/* Whether the list holds "*" / anything at all. */
int pn_trust_everyone(const pn_trust *t);
int pn_trust_empty(const pn_trust *t);

#endif
