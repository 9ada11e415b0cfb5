/*
 * pn_trust — see pn_trust.h.
 */
#include "pn_trust.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct trust_net {
    pn_ipaddr net; /* host bits cleared */
    uint8_t prefix;
} trust_net;

struct pn_trust {
    unsigned everyone : 1;   /* "*" */
    unsigned unix_peers : 1; /* "unix" */
    size_t n;
    trust_net nets[]; /* n entries */
};

static const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ::ffff:a.b.c.d is a.b.c.d. */
static void unmap_v4(pn_ipaddr *a)
{
    if (a->family == PN_IP_V6 && memcmp(a->bytes, V4_MAPPED, sizeof V4_MAPPED) == 0) {
        uint8_t v4[4];
        memcpy(v4, a->bytes + 12, 4);
        memset(a->bytes, 0, sizeof a->bytes);
        memcpy(a->bytes, v4, 4);
        a->family = PN_IP_V4;
    }
}

int pn_ipaddr_parse(pn_ipaddr *out, const char *s, size_t n)
{
    char tmp[PN_IPADDR_TEXT];
    memset(out, 0, sizeof *out);
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (memchr(s, '\0', n))
        return -1;
    if (memchr(s, ':', n)) {
        if (inet_pton(AF_INET6, tmp, out->bytes) != 1)
            return -1;
        out->family = PN_IP_V6;
        unmap_v4(out);
        return 0;
    }
    if (inet_pton(AF_INET, tmp, out->bytes) != 1)
        return -1;
    out->family = PN_IP_V4;
    return 0;
}

int pn_ipaddr_from_sockaddr(pn_ipaddr *out, uint16_t *port, const struct sockaddr *sa,
                            socklen_t len)
{
    memset(out, 0, sizeof *out);
    if (port)
        *port = 0;
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return -1;
    switch (sa->sa_family) {
    case AF_INET: {
        if (len < (socklen_t)sizeof(struct sockaddr_in))
            return -1;
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(out->bytes, &in->sin_addr, 4);
        out->family = PN_IP_V4;
        if (port)
            *port = ntohs(in->sin_port);
        return 0;
    }
    case AF_INET6: {
        if (len < (socklen_t)sizeof(struct sockaddr_in6))
            return -1;
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->bytes, &in6->sin6_addr, 16);
        out->family = PN_IP_V6;
        unmap_v4(out);
        if (port)
            *port = ntohs(in6->sin6_port);
        return 0;
    }
    case AF_UNIX:
        out->family = PN_IP_UNIX;
        return 0;
    default:
        return -1;
    }
}

size_t pn_ipaddr_format(const pn_ipaddr *a, char *buf)
{
    buf[0] = '\0';
    if (a->family != PN_IP_V4 && a->family != PN_IP_V6)
        return 0;
    if (!inet_ntop(a->family == PN_IP_V4 ? AF_INET : AF_INET6, a->bytes, buf, PN_IPADDR_TEXT))
        return 0;
    return strlen(buf);
}

/* Clear the bits after the first `prefix`. */
static void mask(pn_ipaddr *a, unsigned prefix)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
        a->bytes[i] &= (uint8_t)(0xff00u >> keep);
    }
}

/* Whether a is in the block: its whole bytes, then the bits of a partial
 * one (the block's host bits are clear).  Runs for every proxy-header
 * hop, so it compares in place instead of masking a copy. */
static int same_net(const trust_net *t, const pn_ipaddr *a)
{
    if (t->net.family != a->family)
        return 0;
    unsigned full = t->prefix / 8, rest = t->prefix % 8;
    for (unsigned i = 0; i < full; i++) /* (at most 16 bytes: no call) */
        if (a->bytes[i] != t->net.bytes[i])
            return 0;
    return rest == 0 || ((a->bytes[full] ^ t->net.bytes[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* One entry s[0..n) (trimmed, non-empty) into t; 0, or -1 with err set. */
static int parse_entry(pn_trust *t, const char *s, size_t n, char *err, size_t errlen)
{
    if (n == 1 && s[0] == '*') {
        t->everyone = 1;
        return 0;
    }
    if (n == 4 && memcmp(s, "unix", 4) == 0) {
        t->unix_peers = 1;
        return 0;
    }
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    trust_net *e = &t->nets[t->n];
    if (pn_ipaddr_parse(&e->net, s, alen) != 0) {
        snprintf(err, errlen, "'%.*s': not an IP address, CIDR block, '*' or 'unix'",
                 (int)(n > 64 ? 64 : n), s);
        return -1;
    }
    unsigned max = e->net.family == PN_IP_V4 ? 32 : 128;
    unsigned prefix = max;
    if (slash) {
        const char *p = slash + 1, *end = s + n;
        if (p == end || end - p > 3) {
            snprintf(err, errlen, "'%.*s': bad prefix length", (int)(n > 64 ? 64 : n), s);
            return -1;
        }
        prefix = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9') {
                snprintf(err, errlen, "'%.*s': bad prefix length", (int)(n > 64 ? 64 : n), s);
                return -1;
            }
            prefix = prefix * 10 + (unsigned)(*p - '0');
        }
        /* An IPv4-mapped IPv6 block counts its prefix over 128 bits. */
        if (e->net.family == PN_IP_V4 && memchr(s, ':', alen)) {
            if (prefix < 96 || prefix > 128) {
                snprintf(err, errlen, "'%.*s': an IPv4-mapped block needs a prefix of 96 to 128",
                         (int)(n > 64 ? 64 : n), s);
                return -1;
            }
            prefix -= 96;
        }
        if (prefix > max) {
            snprintf(err, errlen, "'%.*s': prefix longer than %u bits", (int)(n > 64 ? 64 : n), s,
                     max);
            return -1;
        }
    }
    e->prefix = (uint8_t)prefix;
    mask(&e->net, prefix);
    t->n++;
    return 0;
}

pn_trust *pn_trust_new(const char *spec, size_t n, char *err, size_t errlen)
{
    size_t entries = 1;
    for (size_t i = 0; i < n; i++)
        entries += spec[i] == ',';
    pn_trust *t = calloc(1, sizeof *t + entries * sizeof(trust_net));
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && spec[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && is_space(spec[a]))
            a++;
        while (b > a && is_space(spec[b - 1]))
            b--;
        if (b > a && parse_entry(t, spec + a, b - a, err, errlen) != 0) {
            free(t);
            return NULL;
        }
        i = j + 1;
    }
    return t;
}

void pn_trust_free(pn_trust *t)
{
    free(t);
}

int pn_trust_has(const pn_trust *t, const pn_ipaddr *a)
{
    if (t->everyone)
        return 1;
    if (a->family == PN_IP_UNIX)
        return t->unix_peers;
    for (size_t i = 0; i < t->n; i++)
        if (same_net(&t->nets[i], a))
            return 1;
    return 0;
}

int pn_trust_everyone(const pn_trust *t)
{
    return t->everyone;
}

int pn_trust_empty(const pn_trust *t)
{
    return !t->everyone && !t->unix_peers && t->n == 0;
}
