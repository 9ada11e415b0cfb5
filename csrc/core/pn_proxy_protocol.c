/*
 * pn_proxy_protocol — see pn_proxy_protocol.h.  Section names below are
 * those of HAProxy's proxy-protocol.txt (2.1 human-readable header, 2.2
 * binary header).
 */
#include "pn_proxy_protocol.h"

#include <netinet/in.h>
#include <string.h>

#include "pn_http_token.h"

/* §2.2: the v2 signature, which can appear in no v1 header nor HTTP. */
static const char V2_SIG[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};

/* v2 command (low nibble of byte 12), address family and transport
 * (byte 13), and the TLV types we read. */
enum { V2_LOCAL = 0x0, V2_PROXY = 0x1 };
enum { V2_UNSPEC = 0x00, V2_TCP4 = 0x11, V2_TCP6 = 0x21, V2_UNIX_STREAM = 0x31 };
enum { V2_ADDR_INET = 12, V2_ADDR_INET6 = 36, V2_ADDR_UNIX = 216 };
enum { PP2_TYPE_SSL = 0x20, PP2_CLIENT_SSL = 0x01 };

static int fail(pn_proxy_header *out, const char *why)
{
    out->error = why;
    return PN_PROXY_ERROR;
}

static uint16_t be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* ---- version 1 (§2.1) ------------------------------------------------ */

/* A port: 0..65535 in decimal, no sign, no leading zero (§2.1: "leading
 * zeroes MUST NOT be emitted"). */
static int v1_port(const char *s, size_t n, uint16_t *out)
{
    uint64_t v;
    if (n > 5 || (n > 1 && s[0] == '0') || pn_http_parse_u64(s, n, &v) != 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* An address of the protocol's family: TCP4 takes dotted IPv4 only, TCP6
 * IPv6 text only (an IPv4-mapped one reads as IPv4, as in pn_trust). */
static int v1_addr(const char *s, size_t n, int v6, pn_ipaddr *out)
{
    if ((memchr(s, ':', n) != NULL) != v6)
        return -1;
    return pn_ipaddr_parse(out, s, n);
}

/* The line p[0..len), CRLF excluded, which starts with "PROXY ". */
static int v1_line(const char *p, size_t len, pn_proxy_header *out)
{
    const char *s = p + 6, *end = p + len;
    /* §2.1: "UNKNOWN", then anything up to the CRLF, which the receiver
     * ignores: the socket's own endpoints stand. */
    if ((size_t)(end - s) >= 7 && memcmp(s, "UNKNOWN", 7) == 0 &&
        ((size_t)(end - s) == 7 || s[7] == ' ')) {
        out->local = 1;
        return 0;
    }
    /* Otherwise exactly five fields after "PROXY", one space apart. */
    const char *f[5];
    size_t fl[5];
    int nf = 0;
    while (s <= end) {
        const char *sp = memchr(s, ' ', (size_t)(end - s));
        const char *e = sp ? sp : end;
        if (e == s || nf == 5)
            return fail(out, "v1: bad field layout");
        f[nf] = s;
        fl[nf] = (size_t)(e - s);
        nf++;
        s = e + 1;
    }
    if (nf != 5)
        return fail(out, "v1: bad field layout");
    int v6;
    if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
        v6 = 0;
    else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
        v6 = 1;
    else
        return fail(out, "v1: unknown protocol");
    if (v1_addr(f[1], fl[1], v6, &out->src) != 0 || v1_addr(f[2], fl[2], v6, &out->dst) != 0)
        return fail(out, "v1: bad address");
    if (v1_port(f[3], fl[3], &out->src_port) != 0 || v1_port(f[4], fl[4], &out->dst_port) != 0)
        return fail(out, "v1: bad port");
    return 0;
}

static int parse_v1(const char *p, size_t n, pn_proxy_header *out)
{
    out->version = 1;
    /* Fail early on the prefix: a client speaking HTTP fails here. */
    size_t pre = n < 6 ? n : 6;
    if (memcmp(p, "PROXY ", pre) != 0)
        return fail(out, "no PROXY protocol signature");
    /* The CR of the CRLF sits at most at index 105 (107 bytes in all).  A
     * bare CR or LF in the line fails it. */
    size_t lim = n < PN_PROXY_V1_MAX - 1 ? n : PN_PROXY_V1_MAX - 1;
    for (size_t i = 6; i < lim; i++) {
        if (p[i] == '\n')
            return fail(out, "v1: bare LF");
        if (p[i] != '\r')
            continue;
        if (i + 1 == n)
            return PN_PROXY_INCOMPLETE;
        if (p[i + 1] != '\n')
            return fail(out, "v1: bare CR");
        int rc = v1_line(p, i, out);
        return rc < 0 ? rc : (int)(i + 2);
    }
    if (n >= PN_PROXY_V1_MAX - 1)
        return fail(out, "v1: no CRLF within 107 bytes");
    return PN_PROXY_INCOMPLETE;
}

/* ---- version 2 (§2.2) ------------------------------------------------ */

/* The TLVs in p[0..n) (§2.2.7): type, 16-bit length, value; each must fit
 * in what is left, or the header fails.  Only PP2_TYPE_SSL is read. */
static int v2_tlvs(const unsigned char *p, size_t n, pn_proxy_header *out)
{
    size_t off = 0;
    while (off < n) {
        if (n - off < 3)
            return fail(out, "v2: truncated TLV");
        size_t len = be16(p + off + 1);
        if (len > n - off - 3)
            return fail(out, "v2: TLV longer than the header");
        if (p[off] == PP2_TYPE_SSL) {
            /* §2.2.5: client (1 byte), verify (4), then sub-TLVs. */
            if (len < 5)
                return fail(out, "v2: short PP2_TYPE_SSL");
            if (p[off + 3] & PP2_CLIENT_SSL)
                out->ssl = 1;
        }
        off += 3 + len;
    }
    return 0;
}

static int parse_v2(const unsigned char *p, size_t n, pn_proxy_header *out)
{
    out->version = 2;
    size_t pre = n < sizeof V2_SIG ? n : sizeof V2_SIG;
    if (memcmp(p, V2_SIG, pre) != 0)
        return fail(out, "no PROXY protocol signature");
    if (n <= 12)
        return PN_PROXY_INCOMPLETE;
    /* §2.2: version 2 in the high nibble; the command in the low one. */
    if (p[12] >> 4 != 2)
        return fail(out, "v2: unsupported version");
    int cmd = p[12] & 0x0f;
    if (cmd != V2_LOCAL && cmd != V2_PROXY)
        return fail(out, "v2: unknown command");
    if (n < PN_PROXY_V2_FIXED)
        return PN_PROXY_INCOMPLETE;
    size_t len = be16(p + 14);
    if (len > PN_PROXY_V2_MAX_BLOCK)
        return fail(out, "v2: header longer than the cap");
    size_t total = PN_PROXY_V2_FIXED + len;
    if (n < total)
        return PN_PROXY_INCOMPLETE;
    const unsigned char *b = p + PN_PROXY_V2_FIXED;
    /* §2.2: LOCAL (the proxy's own health check) keeps the socket's
     * endpoints and discards the block, family included; so does PROXY
     * over UNSPEC, which the receiver may accept. */
    if (cmd == V2_LOCAL || p[13] == V2_UNSPEC) {
        out->local = 1;
        return (int)total;
    }
    size_t alen;
    switch (p[13]) {
    case V2_TCP4:
        alen = V2_ADDR_INET;
        break;
    case V2_TCP6:
        alen = V2_ADDR_INET6;
        break;
    case V2_UNIX_STREAM:
        alen = V2_ADDR_UNIX;
        break;
    default:
        /* DGRAM transports, and values the specification leaves
         * undefined, which must be rejected. */
        return fail(out, "v2: unsupported family or transport");
    }
    if (len < alen)
        return fail(out, "v2: address block too short");
    if (p[13] == V2_TCP4) {
        out->src.family = out->dst.family = PN_IP_V4;
        memcpy(out->src.bytes, b, 4);
        memcpy(out->dst.bytes, b + 4, 4);
        out->src_port = be16(b + 8);
        out->dst_port = be16(b + 10);
    } else if (p[13] == V2_TCP6) {
        /* Through a sockaddr, so an IPv4-mapped address reads as IPv4
         * exactly as a socket peer's does. */
        struct sockaddr_in6 sa;
        memset(&sa, 0, sizeof sa);
        sa.sin6_family = AF_INET6;
        memcpy(&sa.sin6_addr, b, 16);
        pn_ipaddr_from_sockaddr(&out->src, NULL, (struct sockaddr *)&sa, sizeof sa);
        memcpy(&sa.sin6_addr, b + 16, 16);
        pn_ipaddr_from_sockaddr(&out->dst, NULL, (struct sockaddr *)&sa, sizeof sa);
        out->src_port = be16(b + 32);
        out->dst_port = be16(b + 34);
    } else {
        /* §2.2: two 108-byte paths.  The client has no IP address to show,
         * as a Unix-socket peer of our own. */
        out->src.family = out->dst.family = PN_IP_UNIX;
    }
    if (v2_tlvs(b + alen, len - alen, out) < 0)
        return PN_PROXY_ERROR;
    return (int)total;
}

int pn_proxy_parse(const char *p, size_t n, pn_proxy_header *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return PN_PROXY_INCOMPLETE;
    /* §2: the first byte tells the versions apart ('P' or CR). */
    if (p[0] == V2_SIG[0])
        return parse_v2((const unsigned char *)p, n, out);
    return parse_v1(p, n, out);
}
