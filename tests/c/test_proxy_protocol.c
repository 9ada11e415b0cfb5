/*
 * Unit tests for pn_proxy_protocol: v1 and v2 headers that must parse (and
 * what they yield), the ones that must fail, and for each valid header
 * every proper prefix, which must say "need more" — the runtime feeds the
 * parser whatever has arrived.  Inputs come from guard-page copies, so an
 * over-read crashes.
 */
#include "pn_proxy_protocol.h"

#include "pn_test.h"

#include <arpa/inet.h>
#include <string.h>

static int parse_n(const void *p, size_t n, pn_proxy_header *h)
{
    return pn_proxy_parse(pn_guard_copy(p, n), n, h);
}

static int parse_s(const char *s, pn_proxy_header *h)
{
    return parse_n(s, strlen(s), h);
}

/* Every proper prefix of p[0..n) is INCOMPLETE; the whole gives n. */
static void check_prefixes(const void *p, size_t n)
{
    pn_proxy_header h;
    for (size_t i = 0; i < n; i++) {
        int rc = parse_n(p, i, &h);
        if (rc != PN_PROXY_INCOMPLETE) {
            fprintf(stderr, "  prefix of %zu bytes: %d (%s)\n", i, rc, h.error ? h.error : "");
            PN_CHECK_EQ_INT(rc, PN_PROXY_INCOMPLETE);
            return;
        }
    }
    PN_CHECK_EQ_INT(parse_n(p, n, &h), (int)n);
}

static void check_addr(const pn_ipaddr *a, const char *text)
{
    char buf[PN_IPADDR_TEXT];
    size_t n = pn_ipaddr_format(a, buf);
    PN_CHECK_SLICE(buf, n, text);
}

/* ---- version 1 ------------------------------------------------------- */

PN_TEST(v1_tcp4)
{
    const char *s = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET / HTTP/1.1\r\n\r\n";
    pn_proxy_header h;
    int rc = parse_s(s, &h);
    PN_CHECK_EQ_INT(rc, 45);
    PN_CHECK_EQ_INT(h.version, 1);
    PN_CHECK_EQ_INT(h.local, 0);
    PN_CHECK_EQ_INT(h.src.family, PN_IP_V4);
    check_addr(&h.src, "192.0.2.1");
    check_addr(&h.dst, "198.51.100.7");
    PN_CHECK_EQ_INT(h.src_port, 56324);
    PN_CHECK_EQ_INT(h.dst_port, 443);
    check_prefixes(s, 45);
}

PN_TEST(v1_tcp6)
{
    const char *s = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    pn_proxy_header h;
    PN_CHECK_EQ_INT(parse_s(s, &h), (int)strlen(s));
    PN_CHECK_EQ_INT(h.src.family, PN_IP_V6);
    check_addr(&h.src, "2001:db8::1");
    check_addr(&h.dst, "::1");
    PN_CHECK_EQ_INT(h.src_port, 65535);
    PN_CHECK_EQ_INT(h.dst_port, 0);
    check_prefixes(s, strlen(s));
    /* An IPv4-mapped source reads as IPv4, as a socket peer does. */
    PN_CHECK(parse_s("PROXY TCP6 ::ffff:10.1.2.3 ::1 1 2\r\n", &h) > 0);
    PN_CHECK_EQ_INT(h.src.family, PN_IP_V4);
    check_addr(&h.src, "10.1.2.3");
}

PN_TEST(v1_unknown)
{
    pn_proxy_header h;
    PN_CHECK_EQ_INT(parse_s("PROXY UNKNOWN\r\n", &h), 15);
    PN_CHECK_EQ_INT(h.local, 1);
    PN_CHECK_EQ_INT(h.src.family, PN_IP_NONE);
    /* Anything after UNKNOWN is ignored. */
    const char *s = "PROXY UNKNOWN ffff::1 whatever 1 2\r\n";
    PN_CHECK_EQ_INT(parse_s(s, &h), (int)strlen(s));
    PN_CHECK_EQ_INT(h.local, 1);
    check_prefixes(s, strlen(s));
    PN_CHECK_EQ_INT(parse_s("PROXY UNKNOWNX\r\n", &h), PN_PROXY_ERROR);
}

/* The longest line is 107 bytes, CRLF included. */
PN_TEST(v1_length)
{
    char line[200];
    memcpy(line, "PROXY UNKNOWN ", 14);
    memset(line + 14, 'x', sizeof line - 14);
    pn_proxy_header h;
    memcpy(line + 105, "\r\n", 2); /* 107 bytes */
    PN_CHECK_EQ_INT(parse_n(line, 107, &h), 107);
    check_prefixes(line, 107);
    memset(line + 14, 'x', sizeof line - 14);
    memcpy(line + 106, "\r\n", 2); /* 108 bytes */
    PN_CHECK_EQ_INT(parse_n(line, 108, &h), PN_PROXY_ERROR);
    /* Without a CRLF, it fails once 106 bytes are in. */
    memset(line + 14, 'x', sizeof line - 14);
    PN_CHECK_EQ_INT(parse_n(line, 105, &h), PN_PROXY_INCOMPLETE);
    PN_CHECK_EQ_INT(parse_n(line, 106, &h), PN_PROXY_ERROR);
    PN_CHECK_EQ_INT(parse_n(line, sizeof line, &h), PN_PROXY_ERROR);
}

PN_TEST(v1_bad)
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n\r\n",
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP6 [::1] ::1 1 2\r\n",
        "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
        "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",
        "PROXY \r\n",
        "PROXY UNKNOWN\n",
        "\r\n\r\n\0\r\nQUIT!",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pn_proxy_header h;
        size_t n = i == sizeof bad / sizeof bad[0] - 1 ? 12 : strlen(bad[i]);
        int rc = parse_n(bad[i], n, &h);
        if (rc != PN_PROXY_ERROR)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        PN_CHECK_EQ_INT(rc, PN_PROXY_ERROR);
        PN_CHECK(h.error != NULL);
    }
    /* A NUL inside an address. */
    pn_proxy_header h;
    static const char nul[] = "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n";
    PN_CHECK_EQ_INT(parse_n(nul, sizeof nul - 1, &h), PN_PROXY_ERROR);
    /* HTTP fails on its first byte: no waiting for more. */
    PN_CHECK_EQ_INT(parse_n("G", 1, &h), PN_PROXY_ERROR);
    PN_CHECK_EQ_INT(parse_n("PROXZ", 5, &h), PN_PROXY_ERROR);
}

/* ---- version 2 ------------------------------------------------------- */

static const unsigned char SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* A v2 header into out: ver_cmd, fam, then the block (len bytes). */
static size_t v2(unsigned char *out, int ver_cmd, int fam, const void *block, size_t len)
{
    memcpy(out, SIG, 12);
    out[12] = (unsigned char)ver_cmd;
    out[13] = (unsigned char)fam;
    out[14] = (unsigned char)(len >> 8);
    out[15] = (unsigned char)len;
    if (len)
        memcpy(out + 16, block, len);
    return 16 + len;
}

static const unsigned char INET_BLOCK[12] = {192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb};

PN_TEST(v2_tcp4)
{
    unsigned char buf[64];
    size_t n = v2(buf, 0x21, 0x11, INET_BLOCK, sizeof INET_BLOCK);
    memcpy(buf + n, "GET", 3);
    pn_proxy_header h;
    PN_CHECK_EQ_INT(parse_n(buf, n + 3, &h), 28);
    PN_CHECK_EQ_INT(h.version, 2);
    PN_CHECK_EQ_INT(h.local, 0);
    PN_CHECK_EQ_INT(h.ssl, 0);
    check_addr(&h.src, "192.0.2.1");
    check_addr(&h.dst, "198.51.100.7");
    PN_CHECK_EQ_INT(h.src_port, 56324);
    PN_CHECK_EQ_INT(h.dst_port, 443);
    check_prefixes(buf, n);
}

PN_TEST(v2_tcp6)
{
    unsigned char block[36] = {0};
    inet_pton(AF_INET6, "2001:db8::5", block);
    inet_pton(AF_INET6, "::ffff:127.0.0.1", block + 16);
    block[32] = 0x12;
    block[33] = 0x34;
    block[35] = 80;
    unsigned char buf[64];
    size_t n = v2(buf, 0x21, 0x21, block, sizeof block);
    pn_proxy_header h;
    PN_CHECK_EQ_INT(parse_n(buf, n, &h), (int)n);
    PN_CHECK_EQ_INT(h.src.family, PN_IP_V6);
    check_addr(&h.src, "2001:db8::5");
    PN_CHECK_EQ_INT(h.dst.family, PN_IP_V4); /* mapped */
    check_addr(&h.dst, "127.0.0.1");
    PN_CHECK_EQ_INT(h.src_port, 0x1234);
    PN_CHECK_EQ_INT(h.dst_port, 80);
    check_prefixes(buf, n);
}

PN_TEST(v2_unix)
{
    unsigned char block[216] = {0};
    memcpy(block, "/run/client.sock", 16);
    unsigned char buf[256];
    size_t n = v2(buf, 0x21, 0x31, block, sizeof block);
    pn_proxy_header h;
    PN_CHECK_EQ_INT(parse_n(buf, n, &h), (int)n);
    PN_CHECK_EQ_INT(h.local, 0);
    PN_CHECK_EQ_INT(h.src.family, PN_IP_UNIX);
    /* A short block fails. */
    n = v2(buf, 0x21, 0x31, block, 215);
    PN_CHECK_EQ_INT(parse_n(buf, n, &h), PN_PROXY_ERROR);
}

PN_TEST(v2_local_and_unspec)
{
    unsigned char buf[64];
    pn_proxy_header h;
    /* LOCAL (a health check): the block, family included, is ignored. */
    size_t n = v2(buf, 0x20, 0x00, NULL, 0);
    PN_CHECK_EQ_INT(parse_n(buf, n, &h), 16);
    PN_CHECK_EQ_INT(h.local, 1);
    check_prefixes(buf, n);
    n = v2(buf, 0x20, 0x12, INET_BLOCK, 5); /* even a nonsense one */
    PN_CHECK_EQ_INT(parse_n(buf, n, &h), 21);
    PN_CHECK_EQ_INT(h.local, 1);
    /* PROXY over UNSPEC: the socket's endpoints too. */
    n = v2(buf, 0x21, 0x00, INET_BLOCK, 3);
    PN_CHECK_EQ_INT(parse_n(buf, n, &h), 19);
    PN_CHECK_EQ_INT(h.local, 1);
}

PN_TEST(v2_bad)
{
    unsigned char buf[64];
    pn_proxy_header h;
    /* Families and transports: DGRAM and undefined values. */
    static const int fams[] = {0x12, 0x22, 0x32, 0x10, 0x01, 0x13, 0x41, 0x02};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        size_t n = v2(buf, 0x21, fams[i], INET_BLOCK, sizeof INET_BLOCK);
        PN_CHECK_EQ_INT(parse_n(buf, n, &h), PN_PROXY_ERROR);
    }
    /* Versions and commands, refused as soon as byte 12 is in. */
    static const int vc[] = {0x11, 0x31, 0x01, 0x22, 0x2f};
    for (size_t i = 0; i < sizeof vc / sizeof vc[0]; i++) {
        v2(buf, vc[i], 0x11, INET_BLOCK, sizeof INET_BLOCK);
        PN_CHECK_EQ_INT(parse_n(buf, 13, &h), PN_PROXY_ERROR);
    }
    /* A block shorter than its addresses. */
    size_t n = v2(buf, 0x21, 0x11, INET_BLOCK, 11);
    PN_CHECK_EQ_INT(parse_n(buf, n, &h), PN_PROXY_ERROR);
    /* Every byte of the signature counts. */
    for (size_t i = 0; i < 12; i++) {
        n = v2(buf, 0x21, 0x11, INET_BLOCK, sizeof INET_BLOCK);
        buf[i] ^= 0x20;
        PN_CHECK_EQ_INT(parse_n(buf, n, &h), PN_PROXY_ERROR);
        /* and fails as soon as it is in */
        PN_CHECK_EQ_INT(parse_n(buf, i + 1, &h), PN_PROXY_ERROR);
    }
}

PN_TEST(v2_cap)
{
    static unsigned char buf[PN_PROXY_MAX + 64];
    static unsigned char block[PN_PROXY_V2_MAX_BLOCK + 1];
    pn_proxy_header h;
    /* The cap itself, filled with NOOP TLVs (type 4). */
    memcpy(block, INET_BLOCK, sizeof INET_BLOCK);
    size_t left = PN_PROXY_V2_MAX_BLOCK - sizeof INET_BLOCK;
    block[12] = 4;
    block[13] = (unsigned char)((left - 3) >> 8);
    block[14] = (unsigned char)(left - 3);
    size_t n = v2(buf, 0x21, 0x11, block, PN_PROXY_V2_MAX_BLOCK);
    PN_CHECK_EQ_INT(parse_n(buf, n, &h), PN_PROXY_MAX);
    PN_CHECK_EQ_INT(parse_n(buf, n - 1, &h), PN_PROXY_INCOMPLETE);
    /* One byte more fails once the length field is in. */
    v2(buf, 0x21, 0x11, block, PN_PROXY_V2_MAX_BLOCK + 1);
    PN_CHECK_EQ_INT(parse_n(buf, 16, &h), PN_PROXY_ERROR);
    PN_CHECK_EQ_INT(parse_n(buf, 15, &h), PN_PROXY_INCOMPLETE);
    buf[14] = buf[15] = 0xff;
    PN_CHECK_EQ_INT(parse_n(buf, 16, &h), PN_PROXY_ERROR);
}

/* A v2 TCP4 header whose TLVs are tlv[0..tlen). */
static int with_tlvs(const void *tlv, size_t tlen, pn_proxy_header *h)
{
    unsigned char block[256], buf[300];
    memcpy(block, INET_BLOCK, sizeof INET_BLOCK);
    memcpy(block + sizeof INET_BLOCK, tlv, tlen);
    size_t n = v2(buf, 0x21, 0x11, block, sizeof INET_BLOCK + tlen);
    int rc = parse_n(buf, n, h);
    PN_CHECK(rc == PN_PROXY_ERROR || rc == (int)n);
    return rc;
}

PN_TEST(v2_tlvs)
{
    pn_proxy_header h;
    /* ALPN, AUTHORITY, NOOP, UNIQUE_ID, an unknown type: skipped. */
    static const unsigned char skipped[] = {0x01, 0, 2, 'h',  '2', 0x02, 0, 3,    'a', '.', 'b',
                                            4,    0, 0, 0x05, 0,   1,    7, 0xee, 0,   1,   0xff};
    PN_CHECK(with_tlvs(skipped, sizeof skipped, &h) > 0);
    PN_CHECK_EQ_INT(h.ssl, 0);
    /* PP2_TYPE_SSL, client bit set: TLS; with a sub-TLV (VERSION). */
    static const unsigned char ssl[] = {0x20, 0, 13, 0x01, 0,   0,   0,   0,
                                        0x21, 0, 5,  'T',  'L', 'S', 'v', '1'};
    PN_CHECK(with_tlvs(ssl, sizeof ssl, &h) > 0);
    PN_CHECK_EQ_INT(h.ssl, 1);
    /* PP2_TYPE_SSL without PP2_CLIENT_SSL (only a client certificate bit). */
    static const unsigned char nossl[] = {0x20, 0, 5, 0x02, 0, 0, 0, 0};
    PN_CHECK(with_tlvs(nossl, sizeof nossl, &h) > 0);
    PN_CHECK_EQ_INT(h.ssl, 0);
    /* Malformed: a short SSL TLV, a truncated TLV head, a value past the
     * end (by one byte). */
    static const unsigned char short_ssl[] = {0x20, 0, 4, 0x01, 0, 0, 0};
    PN_CHECK_EQ_INT(with_tlvs(short_ssl, sizeof short_ssl, &h), PN_PROXY_ERROR);
    static const unsigned char trunc[] = {0x04, 0};
    PN_CHECK_EQ_INT(with_tlvs(trunc, sizeof trunc, &h), PN_PROXY_ERROR);
    static const unsigned char past[] = {0x04, 0, 3, 1, 2};
    PN_CHECK_EQ_INT(with_tlvs(past, sizeof past, &h), PN_PROXY_ERROR);
    static const unsigned char exact[] = {0x04, 0, 2, 1, 2};
    PN_CHECK(with_tlvs(exact, sizeof exact, &h) > 0);
}

int main(void)
{
    PN_RUN(v1_tcp4);
    PN_RUN(v1_tcp6);
    PN_RUN(v1_unknown);
    PN_RUN(v1_length);
    PN_RUN(v1_bad);
    PN_RUN(v2_tcp4);
    PN_RUN(v2_tcp6);
    PN_RUN(v2_unix);
    PN_RUN(v2_local_and_unspec);
    PN_RUN(v2_bad);
    PN_RUN(v2_cap);
    PN_RUN(v2_tlvs);
    return pn_test_summary();
}
