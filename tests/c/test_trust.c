/*
 * Unit tests for pn_trust: address literals (what inet_pton takes and the
 * forms it must refuse), IPv4-mapped addresses, socket addresses, the list
 * syntax and its errors, and CIDR matching checked against a bit-by-bit
 * reference over every prefix length.  Inputs come from guard-page copies,
 * so an over-read crashes.
 */
#include "pn_trust.h"

#include "pn_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

static int parse(pn_ipaddr *a, const char *s)
{
    size_t n = strlen(s);
    return pn_ipaddr_parse(a, pn_guard_copy(s, n), n);
}

static pn_trust *trust(const char *spec, char *err, size_t errlen)
{
    size_t n = strlen(spec);
    return pn_trust_new(pn_guard_copy(spec, n), n, err, errlen);
}

/* Whether the list `spec` trusts the address literal `addr`. */
static int trusts(const char *spec, const char *addr)
{
    char err[128];
    pn_trust *t = trust(spec, err, sizeof err);
    PN_CHECK(t != NULL);
    if (t == NULL) {
        fprintf(stderr, "  %s: %s\n", spec, err);
        return -1;
    }
    pn_ipaddr a;
    int r = parse(&a, addr) == 0 ? pn_trust_has(t, &a) : -2;
    pn_trust_free(t);
    return r;
}

PN_TEST(literals)
{
    static const struct {
        const char *s;
        int ok, family;
        const char *canon;
    } t[] = {
        {"127.0.0.1", 1, PN_IP_V4, "127.0.0.1"},
        {"0.0.0.0", 1, PN_IP_V4, "0.0.0.0"},
        {"255.255.255.255", 1, PN_IP_V4, "255.255.255.255"},
        {"::1", 1, PN_IP_V6, "::1"},
        {"2001:DB8::0:1", 1, PN_IP_V6, "2001:db8::1"},
        {"::ffff:10.1.2.3", 1, PN_IP_V4, "10.1.2.3"},
        {"::FFFF:0a01:0203", 1, PN_IP_V4, "10.1.2.3"},
        {"::10.1.2.3", 1, PN_IP_V6, "::10.1.2.3"},
        {"", 0, 0, ""},
        {"256.0.0.1", 0, 0, ""},
        {"1.2.3", 0, 0, ""},
        {"1.2.3.4.5", 0, 0, ""},
        {"01.2.3.4", 0, 0, ""}, /* no octal-looking forms */
        {"1.2.3.4 ", 0, 0, ""},
        {"[::1]", 0, 0, ""},
        {"::1%eth0", 0, 0, ""},
        {"fe80::1:2:3:4:5:6:7:8", 0, 0, ""},
        {"unknown", 0, 0, ""},
        {"_hidden", 0, 0, ""},
        {"1.2.3.4:80", 0, 0, ""},
        {"0123456789012345678901234567890123456789012345678", 0, 0, ""}, /* too long */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        pn_ipaddr a;
        int r = parse(&a, t[i].s);
        if ((r == 0) != t[i].ok)
            fprintf(stderr, "  \"%s\": %d\n", t[i].s, r);
        PN_CHECK_EQ_INT(r == 0, t[i].ok);
        if (r != 0) {
            PN_CHECK_EQ_INT(a.family, PN_IP_NONE);
            continue;
        }
        PN_CHECK_EQ_INT(a.family, t[i].family);
        char buf[PN_IPADDR_TEXT];
        size_t n = pn_ipaddr_format(&a, buf);
        PN_CHECK_SLICE(buf, n, t[i].canon);
    }
    /* An embedded NUL is not an address, whatever follows it. */
    pn_ipaddr a;
    PN_CHECK_EQ_INT(pn_ipaddr_parse(&a, pn_guard_copy("1.2.3.4\0x", 9), 9), -1);
}

PN_TEST(sockaddrs)
{
    pn_ipaddr a;
    uint16_t port = 1;
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "192.0.2.7", &in.sin_addr);
    PN_CHECK_EQ_INT(pn_ipaddr_from_sockaddr(&a, &port, (struct sockaddr *)&in, sizeof in), 0);
    PN_CHECK_EQ_INT(a.family, PN_IP_V4);
    PN_CHECK_EQ_INT(port, 8080);
    PN_CHECK_EQ_INT(pn_ipaddr_from_sockaddr(&a, &port, (struct sockaddr *)&in, sizeof in - 1), -1);

    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &in6.sin6_addr);
    PN_CHECK_EQ_INT(pn_ipaddr_from_sockaddr(&a, &port, (struct sockaddr *)&in6, sizeof in6), 0);
    PN_CHECK_EQ_INT(a.family, PN_IP_V4); /* a dual-stack socket's IPv4 peer */
    PN_CHECK_EQ_INT(port, 443);
    char buf[PN_IPADDR_TEXT];
    size_t n = pn_ipaddr_format(&a, buf);
    PN_CHECK_SLICE(buf, n, "192.0.2.7");
    inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr);
    PN_CHECK_EQ_INT(pn_ipaddr_from_sockaddr(&a, NULL, (struct sockaddr *)&in6, sizeof in6), 0);
    PN_CHECK_EQ_INT(a.family, PN_IP_V6);

    struct sockaddr_un un = {.sun_family = AF_UNIX};
    PN_CHECK_EQ_INT(pn_ipaddr_from_sockaddr(&a, &port, (struct sockaddr *)&un, sizeof(sa_family_t)),
                    0);
    PN_CHECK_EQ_INT(a.family, PN_IP_UNIX);
    PN_CHECK_EQ_INT(port, 0);
    PN_CHECK_EQ_INT(pn_ipaddr_format(&a, buf), 0);

    struct sockaddr other = {.sa_family = AF_APPLETALK};
    PN_CHECK_EQ_INT(pn_ipaddr_from_sockaddr(&a, &port, &other, sizeof other), -1);
    PN_CHECK_EQ_INT(pn_ipaddr_from_sockaddr(&a, &port, NULL, 0), -1);
}

PN_TEST(list_syntax)
{
    static const struct {
        const char *spec;
        const char *err; /* NULL: valid; else a piece of the message */
    } t[] = {
        {"", NULL},
        {"127.0.0.1,::1,unix", NULL},
        {" 10.0.0.0/8 , fd00::/8 ,", NULL},
        {",,,", NULL},
        {"*", NULL},
        {"10.0.0.1/8", NULL}, /* host bits ignored */
        {"0.0.0.0/0", NULL},
        {"::/0", NULL},
        {"::ffff:10.0.0.0/104", NULL},
        {"10.0.0.0/33", "prefix longer than 32 bits"},
        {"::/129", "prefix longer than 128 bits"},
        {"10.0.0.0/", "bad prefix length"},
        {"10.0.0.0/8x", "bad prefix length"},
        {"10.0.0.0/0008", "bad prefix length"},
        {"10.0.0.0/-1", "bad prefix length"},
        {"::ffff:10.0.0.0/8", "IPv4-mapped block"},
        {"localhost", "'localhost': not an IP address"},
        {"127.0.0.1,bogus", "'bogus'"},
        {"Unix", "'Unix'"},
        {"**", "'**'"},
        {"1.2.3.4 5.6.7.8", "'1.2.3.4 5.6.7.8'"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char err[128] = "";
        pn_trust *tr = trust(t[i].spec, err, sizeof err);
        if ((tr != NULL) != (t[i].err == NULL))
            fprintf(stderr, "  \"%s\": %s\n", t[i].spec, tr ? "accepted" : err);
        PN_CHECK_EQ_INT(tr != NULL, t[i].err == NULL);
        if (tr == NULL && t[i].err != NULL) {
            if (strstr(err, t[i].err) == NULL)
                fprintf(stderr, "  \"%s\": message \"%s\" lacks \"%s\"\n", t[i].spec, err,
                        t[i].err);
            PN_CHECK(strstr(err, t[i].err) != NULL);
        }
        pn_trust_free(tr);
    }
}

PN_TEST(matching)
{
    PN_CHECK_EQ_INT(trusts("127.0.0.1,::1,unix", "127.0.0.1"), 1);
    PN_CHECK_EQ_INT(trusts("127.0.0.1,::1,unix", "::1"), 1);
    PN_CHECK_EQ_INT(trusts("127.0.0.1,::1,unix", "127.0.0.2"), 0);
    PN_CHECK_EQ_INT(trusts("127.0.0.1,::1,unix", "::ffff:127.0.0.1"), 1);
    PN_CHECK_EQ_INT(trusts("::ffff:127.0.0.1", "127.0.0.1"), 1);
    PN_CHECK_EQ_INT(trusts("10.0.0.0/8", "10.255.1.2"), 1);
    PN_CHECK_EQ_INT(trusts("10.0.0.0/8", "11.0.0.0"), 0);
    PN_CHECK_EQ_INT(trusts("10.1.2.3/8", "10.9.9.9"), 1);
    PN_CHECK_EQ_INT(trusts("192.168.1.0/25", "192.168.1.127"), 1);
    PN_CHECK_EQ_INT(trusts("192.168.1.0/25", "192.168.1.128"), 0);
    PN_CHECK_EQ_INT(trusts("fd00::/8", "fdff::1"), 1);
    PN_CHECK_EQ_INT(trusts("fd00::/8", "fe00::1"), 0);
    PN_CHECK_EQ_INT(trusts("0.0.0.0/0", "203.0.113.9"), 1);
    PN_CHECK_EQ_INT(trusts("0.0.0.0/0", "2001:db8::1"), 0); /* families never mix */
    PN_CHECK_EQ_INT(trusts("::/0", "203.0.113.9"), 0);
    PN_CHECK_EQ_INT(trusts("::/0", "2001:db8::1"), 1);
    PN_CHECK_EQ_INT(trusts("*", "2001:db8::1"), 1);
    PN_CHECK_EQ_INT(trusts("", "127.0.0.1"), 0);
    PN_CHECK_EQ_INT(trusts("unix", "127.0.0.1"), 0);

    char err[64];
    pn_trust *t = trust("127.0.0.1", err, sizeof err);
    pn_ipaddr unix_peer = {.family = PN_IP_UNIX}, none = {.family = PN_IP_NONE};
    PN_CHECK_EQ_INT(pn_trust_has(t, &unix_peer), 0);
    PN_CHECK_EQ_INT(pn_trust_has(t, &none), 0);
    PN_CHECK_EQ_INT(pn_trust_empty(t), 0);
    PN_CHECK_EQ_INT(pn_trust_everyone(t), 0);
    pn_trust_free(t);
    t = trust("unix", err, sizeof err);
    PN_CHECK_EQ_INT(pn_trust_has(t, &unix_peer), 1);
    pn_trust_free(t);
    t = trust("*", err, sizeof err);
    PN_CHECK_EQ_INT(pn_trust_has(t, &unix_peer), 1);
    PN_CHECK_EQ_INT(pn_trust_has(t, &none), 1);
    PN_CHECK_EQ_INT(pn_trust_everyone(t), 1);
    pn_trust_free(t);
    t = trust(" , ", err, sizeof err);
    PN_CHECK_EQ_INT(pn_trust_empty(t), 1);
    pn_trust_free(t);
}

/* Reference: the first `prefix` bits of a and b are equal, bit by bit. */
static int ref_same_prefix(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    for (unsigned i = 0; i < prefix; i++) {
        unsigned bit = 7 - i % 8;
        if (((a[i / 8] >> bit) & 1) != ((b[i / 8] >> bit) & 1))
            return 0;
    }
    return 1;
}

/* Every prefix length of both families, against addresses that differ from
 * the block's in one bit at every position (and in none). */
PN_TEST(every_prefix)
{
    const char *bases[2] = {"198.51.100.77", "2001:db8:85a3::8a2e:370:7334"};
    for (int fam = 0; fam < 2; fam++) {
        pn_ipaddr base;
        PN_CHECK_EQ_INT(parse(&base, bases[fam]), 0);
        unsigned bits = fam == 0 ? 32 : 128;
        char text[PN_IPADDR_TEXT];
        pn_ipaddr_format(&base, text);
        for (unsigned prefix = 0; prefix <= bits; prefix++) {
            char spec[80], err[128];
            snprintf(spec, sizeof spec, "%s/%u", text, prefix);
            pn_trust *t = trust(spec, err, sizeof err);
            PN_CHECK(t != NULL);
            if (t == NULL)
                continue;
            for (int flip = -1; flip < (int)bits; flip++) {
                pn_ipaddr probe = base;
                if (flip >= 0)
                    probe.bytes[flip / 8] ^= (uint8_t)(0x80 >> (flip % 8));
                int want = ref_same_prefix(base.bytes, probe.bytes, prefix);
                int got = pn_trust_has(t, &probe);
                if (got != want)
                    fprintf(stderr, "  %s, bit %d flipped: %d, want %d\n", spec, flip, got, want);
                PN_CHECK_EQ_INT(got, want);
            }
            pn_trust_free(t);
        }
    }
}

int main(void)
{
    PN_RUN(literals);
    PN_RUN(sockaddrs);
    PN_RUN(list_syntax);
    PN_RUN(matching);
    PN_RUN(every_prefix);
    return pn_test_summary();
}
