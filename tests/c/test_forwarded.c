/*
 * Unit tests for pn_forwarded: the parsing of Forwarded (RFC 7239) and
 * X-Forwarded-*, and the right-to-left resolution against a trust list.
 * Each case is a request's proxy headers, a peer and a list; the head text
 * is a guard-page copy, so a read past the last value crashes.
 */
#include "pn_forwarded.h"

#include "pn_test.h"

#include <string.h>

#define MAXH 64

typedef struct fcase {
    const char *trust;   /* --forwarded-allow-ips */
    const char *peer;    /* the connection's peer ("unix" for a Unix socket) */
    const char *headers; /* "Name: value" lines, '\n'-separated */
    unsigned flags;
    int rc;             /* PN_FWD_* */
    const char *client; /* pn_fwd_client_text, "" = the peer */
    int scheme;
    const char *host; /* "" = Host left alone */
} fcase;

/* Resolve `c`; fills *r, returns the result code. */
static int run(const fcase *c, pn_fwd_result *r)
{
    char err[128];
    pn_trust *t = pn_trust_new(c->trust, strlen(c->trust), err, sizeof err);
    PN_CHECK(t != NULL);
    if (t == NULL)
        return -100;
    pn_ipaddr peer;
    if (strcmp(c->peer, "unix") == 0) {
        memset(&peer, 0, sizeof peer);
        peer.family = PN_IP_UNIX;
    } else {
        PN_CHECK(pn_ipaddr_parse(&peer, c->peer, strlen(c->peer)) == 0);
    }
    size_t n = strlen(c->headers);
    const char *text = pn_guard_copy(c->headers, n);
    pn_http1_header h[MAXH];
    size_t nh = 0, i = 0;
    while (i < n && nh < MAXH) {
        size_t ls = i;
        while (i < n && text[i] != '\n')
            i++;
        const char *colon = memchr(text + ls, ':', i - ls);
        if (colon) {
            h[nh].name = text + ls;
            h[nh].name_len = (size_t)(colon - text - ls);
            const char *v = colon + 1;
            while (v < text + i && *v == ' ')
                v++;
            h[nh].value = v;
            h[nh].value_len = (size_t)(text + i - v);
            nh++;
        }
        i++;
    }
    memset(r, 0xa5, sizeof *r);
    int rc = pn_forwarded_resolve(r, h, nh, t, &peer, c->flags);
    pn_trust_free(t);
    return rc;
}

static int check_case(const fcase *c)
{
    pn_fwd_result r;
    int before = pn_test_failed_checks;
    int rc = run(c, &r);
    PN_CHECK_EQ_INT(rc, c->rc);
    if (rc == PN_FWD_APPLY && c->rc == PN_FWD_APPLY) {
        char buf[PN_FWD_CLIENT_TEXT];
        size_t n = pn_fwd_client_text(&r, buf);
        PN_CHECK_SLICE(buf, n, c->client);
        PN_CHECK_EQ_INT(r.scheme, c->scheme);
        PN_CHECK_SLICE(r.host, r.host_len, c->host);
    }
    if (pn_test_failed_checks != before)
        fprintf(stderr, "  case: trust=%s peer=%s headers=[%s]\n", c->trust, c->peer, c->headers);
    return pn_test_failed_checks == before;
}

#define DEF "127.0.0.1,::1,unix"
#define HTTP PN_FWD_SCHEME_HTTP
#define HTTPS PN_FWD_SCHEME_HTTPS
#define WS PN_FWD_SCHEME_WS
#define WSS PN_FWD_SCHEME_WSS
#define NONE PN_FWD_SCHEME_NONE
#define OK PN_FWD_APPLY
#define BAD PN_FWD_MALFORMED

static void check_all(const fcase *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_case(&t[i]);
}

PN_TEST(absent_and_untrusted)
{
    static const fcase t[] = {
        {DEF, "127.0.0.1", "Host: a\nAccept: */*", 0, PN_FWD_ABSENT, "", 0, ""},
        {DEF, "127.0.0.1", "", 0, PN_FWD_ABSENT, "", 0, ""},
        /* Only with the opt-in are -Host and -Port ours. */
        {DEF, "127.0.0.1", "X-Forwarded-Host: evil", 0, PN_FWD_ABSENT, "", 0, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Port: 1", 0, PN_FWD_ABSENT, "", 0, ""},
        {DEF, "192.0.2.9", "X-Forwarded-For: 1.2.3.4", 0, PN_FWD_UNTRUSTED, "", 0, ""},
        {DEF, "192.0.2.9", "Forwarded: for=1.2.3.4", 0, PN_FWD_UNTRUSTED, "", 0, ""},
        {DEF, "192.0.2.9", "X-Forwarded-Proto: https", 0, PN_FWD_UNTRUSTED, "", 0, ""},
        {"", "127.0.0.1", "X-Forwarded-For: 1.2.3.4", 0, PN_FWD_UNTRUSTED, "", 0, ""},
        {"10.0.0.0/8", "unix", "X-Forwarded-For: 1.2.3.4", 0, PN_FWD_UNTRUSTED, "", 0, ""},
        /* Present but nothing in it: nothing to apply. */
        {DEF, "127.0.0.1", "X-Forwarded-For: , ,", 0, PN_FWD_ABSENT, "", 0, ""},
        {DEF, "127.0.0.1", "Forwarded: ,;, ;", 0, PN_FWD_ABSENT, "", 0, ""},
    };
    check_all(t, sizeof t / sizeof t[0]);
}

PN_TEST(xff_walk)
{
    static const fcase t[] = {
        {DEF, "127.0.0.1", "X-Forwarded-For: 1.2.3.4", 0, OK, "1.2.3.4:0", NONE, ""},
        {DEF, "unix", "X-Forwarded-For: 1.2.3.4", 0, OK, "1.2.3.4:0", NONE, ""},
        {DEF, "::1", "x-forwarded-for: 1.2.3.4", 0, OK, "1.2.3.4:0", NONE, ""},
        /* Spoofing: what the client wrote is left of what the proxy added. */
        {DEF, "127.0.0.1", "X-Forwarded-For: 6.6.6.6, 1.2.3.4", 0, OK, "1.2.3.4:0", NONE, ""},
        /* Trusted hops pass on to the next. */
        {"127.0.0.1,10.0.0.0/8", "127.0.0.1",
         "X-Forwarded-For: 6.6.6.6, 1.2.3.4, 10.1.1.1, 10.2.2.2", 0, OK, "1.2.3.4:0", NONE, ""},
        /* All trusted: the leftmost. */
        {"127.0.0.1,10.0.0.0/8", "127.0.0.1", "X-Forwarded-For: 10.9.9.9, 10.1.1.1", 0, OK,
         "10.9.9.9:0", NONE, ""},
        {"*", "192.0.2.1", "X-Forwarded-For: 6.6.6.6, 1.2.3.4", 0, OK, "6.6.6.6:0", NONE, ""},
        /* Several lines are one list, in order. */
        {DEF, "127.0.0.1", "X-Forwarded-For: 6.6.6.6\nX-Forwarded-For: 1.2.3.4", 0, OK, "1.2.3.4:0",
         NONE, ""},
        {"127.0.0.1,1.2.3.4", "127.0.0.1", "X-Forwarded-For: 6.6.6.6\nX-Forwarded-For: 1.2.3.4", 0,
         OK, "6.6.6.6:0", NONE, ""},
        /* Empty elements are skipped; OWS trimmed. */
        {DEF, "127.0.0.1", "X-Forwarded-For: ,6.6.6.6 ,, \t1.2.3.4 ,", 0, OK, "1.2.3.4:0", NONE,
         ""},
        /* IPv6 without brackets, with brackets and a port; IPv4 with a port. */
        {DEF, "127.0.0.1", "X-Forwarded-For: 2001:db8::1", 0, OK, "[2001:db8::1]:0", NONE, ""},
        {DEF, "127.0.0.1", "X-Forwarded-For: [2001:DB8::1]:8080", 0, OK, "[2001:db8::1]:8080", NONE,
         ""},
        {DEF, "127.0.0.1", "X-Forwarded-For: 1.2.3.4:5678", 0, OK, "1.2.3.4:5678", NONE, ""},
        {DEF, "127.0.0.1", "X-Forwarded-For: ::ffff:1.2.3.4", 0, OK, "1.2.3.4:0", NONE, ""},
        {DEF, "127.0.0.1", "X-Forwarded-For: unknown", 0, OK, "unknown", NONE, ""},
        {DEF, "127.0.0.1", "X-Forwarded-For: _gazonk", 0, OK, "_gazonk:0", NONE, ""},
        /* A trusted IPv4-mapped hop is the IPv4 address. */
        {"127.0.0.1,10.0.0.1", "127.0.0.1", "X-Forwarded-For: 1.2.3.4, ::ffff:10.0.0.1", 0, OK,
         "1.2.3.4:0", NONE, ""},
    };
    check_all(t, sizeof t / sizeof t[0]);
}

PN_TEST(xff_malformed)
{
    static const char *bad[] = {
        "X-Forwarded-For: 1.2.3.4, garbage",
        "X-Forwarded-For: 1.2.3.256",
        "X-Forwarded-For: 01.2.3.4",
        "X-Forwarded-For: 1.2.3.4:",
        "X-Forwarded-For: 1.2.3.4:65536",
        "X-Forwarded-For: 1.2.3.4:123456",
        "X-Forwarded-For: 1.2.3.4:000080", /* 1*5DIGIT */
        "X-Forwarded-For: 1.2.3.4:8x",
        "X-Forwarded-For: [1.2.3.4]",
        "X-Forwarded-For: [2001:db8::1",
        "X-Forwarded-For: [2001:db8::1]x",
        "X-Forwarded-For: [2001:db8::1]:",
        "X-Forwarded-For: 2001:db8::1%eth0",
        "X-Forwarded-For: 1.2.3.4 5.6.7.8",
        "X-Forwarded-For: _",
        "X-Forwarded-For: _a/b",
        "X-Forwarded-For: \"1.2.3.4\"",
        "X-Forwarded-For: 1.2.3.4\nX-Forwarded-For: nope",
        /* One bad line voids the proto too: one reading or none. */
        "X-Forwarded-Proto: https\nX-Forwarded-For: x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fcase c = {DEF, "127.0.0.1", bad[i], 0, BAD, "", 0, ""};
        check_case(&c);
    }
}

PN_TEST(x_proto)
{
    static const fcase t[] = {
        {DEF, "127.0.0.1", "X-Forwarded-Proto: https", 0, OK, "", HTTPS, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Proto: HTTPS", 0, OK, "", HTTPS, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Proto: http", 0, OK, "", HTTP, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Proto: wss", 0, OK, "", WSS, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Proto: ws", 0, OK, "", WS, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Proto: ftp", 0, OK, "", NONE, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Proto: httpsx", 0, OK, "", NONE, ""},
        {DEF, "127.0.0.1", "X-Forwarded-For: 1.2.3.4\nX-Forwarded-Proto: https", 0, OK, "1.2.3.4:0",
         HTTPS, ""},
        /* One value speaks for every hop. */
        {DEF, "127.0.0.1", "X-Forwarded-For: 6.6.6.6, 1.2.3.4\nX-Forwarded-Proto: https", 0, OK,
         "1.2.3.4:0", HTTPS, ""},
        /* A list: the entry as far from the right as the client's. */
        {"127.0.0.1,10.0.0.0/8", "127.0.0.1",
         "X-Forwarded-For: 1.2.3.4, 10.0.0.1\nX-Forwarded-Proto: https, http", 0, OK, "1.2.3.4:0",
         HTTPS, ""},
        {DEF, "127.0.0.1", "X-Forwarded-For: 1.2.3.4, 5.6.7.8\nX-Forwarded-Proto: https, http", 0,
         OK, "5.6.7.8:0", HTTP, ""},
        /* Shorter than the XFF list: the leftmost. */
        {"127.0.0.1,10.0.0.0/8", "127.0.0.1",
         "X-Forwarded-For: 1.2.3.4, 10.0.0.1, 10.0.0.2\nX-Forwarded-Proto: https, http", 0, OK,
         "1.2.3.4:0", HTTPS, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Proto: ,\nX-Forwarded-Proto: https", 0, OK, "", HTTPS, ""},
    };
    check_all(t, sizeof t / sizeof t[0]);
}

PN_TEST(x_host_port)
{
    static const fcase t[] = {
        {DEF, "127.0.0.1", "Host: internal\nX-Forwarded-Host: example.com", PN_FWD_X_HOST, OK, "",
         NONE, "example.com"},
        {DEF, "127.0.0.1", "Host: internal:8000\nX-Forwarded-Port: 8443\nX-Forwarded-Proto: https",
         PN_FWD_X_HOST, OK, "", HTTPS, "internal:8443"},
        {DEF, "127.0.0.1", "Host: internal:8000\nX-Forwarded-Port: 443\nX-Forwarded-Proto: https",
         PN_FWD_X_HOST, OK, "", HTTPS, "internal"},
        {DEF, "127.0.0.1", "X-Forwarded-Host: example.com:81\nX-Forwarded-Port: 80", PN_FWD_X_HOST,
         OK, "", NONE, "example.com"},
        {DEF, "127.0.0.1", "X-Forwarded-Host: [2001:db8::1]:81\nX-Forwarded-Port: 82",
         PN_FWD_X_HOST, OK, "", NONE, "[2001:db8::1]:82"},
        /* Without the opt-in they change nothing, and do not void the rest. */
        {DEF, "127.0.0.1", "X-Forwarded-Host: a b\nX-Forwarded-Proto: https", 0, OK, "", HTTPS, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Host: a b", PN_FWD_X_HOST, BAD, "", 0, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Host: a/b", PN_FWD_X_HOST, BAD, "", 0, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Host: u@a", PN_FWD_X_HOST, BAD, "", 0, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Port: 99999", PN_FWD_X_HOST, BAD, "", 0, ""},
        {DEF, "127.0.0.1", "X-Forwarded-Port: _x", PN_FWD_X_HOST, BAD, "", 0, ""},
    };
    check_all(t, sizeof t / sizeof t[0]);
}

PN_TEST(forwarded)
{
    static const fcase t[] = {
        {DEF, "127.0.0.1", "Forwarded: for=1.2.3.4", 0, OK, "1.2.3.4:0", NONE, ""},
        {DEF, "127.0.0.1", "Forwarded: For=1.2.3.4;PROTO=https;Host=example.com", 0, OK,
         "1.2.3.4:0", HTTPS, "example.com"},
        {DEF, "127.0.0.1", "Forwarded: for=\"[2001:db8:cafe::17]:4711\"", 0, OK,
         "[2001:db8:cafe::17]:4711", NONE, ""},
        {DEF, "127.0.0.1", "Forwarded: for=\"1.2.3.4:80\";proto=http;by=203.0.113.43", 0, OK,
         "1.2.3.4:80", HTTP, ""},
        {DEF, "127.0.0.1", "Forwarded: for=unknown", 0, OK, "unknown", NONE, ""},
        {DEF, "127.0.0.1", "Forwarded: for=\"_gazonk\"", 0, OK, "_gazonk:0", NONE, ""},
        {DEF, "127.0.0.1", "Forwarded: for=\"_hidden:_port\"", 0, OK, "_hidden:0", NONE, ""},
        {DEF, "127.0.0.1", "Forwarded: for=\"_h:81\"", 0, OK, "_h:81", NONE, ""},
        /* Quoted pairs unescape. */
        {DEF, "127.0.0.1", "Forwarded: for=\"\\1.2.3.\\4\";host=\"ex\\ample.com\"", 0, OK,
         "1.2.3.4:0", NONE, "example.com"},
        /* A comma or semicolon inside quotes is no separator. */
        {DEF, "127.0.0.1", "Forwarded: for=1.2.3.4;ext=\"a,b;c=d\";proto=https", 0, OK, "1.2.3.4:0",
         HTTPS, ""},
        /* The proto/host of the element whose for is the client. */
        {DEF, "127.0.0.1",
         "Forwarded: for=6.6.6.6;proto=http;host=evil, for=1.2.3.4;proto=https;host=good", 0, OK,
         "1.2.3.4:0", HTTPS, "good"},
        {"127.0.0.1,10.0.0.0/8", "127.0.0.1",
         "Forwarded: for=1.2.3.4;proto=https;host=a, for=10.0.0.1;proto=http;host=b", 0, OK,
         "1.2.3.4:0", HTTPS, "a"},
        /* All trusted: the leftmost element. */
        {"127.0.0.1,10.0.0.0/8", "127.0.0.1", "Forwarded: for=10.0.0.2;proto=wss, for=10.0.0.1", 0,
         OK, "10.0.0.2:0", WSS, ""},
        /* Several lines, OWS, empty elements and pairs. */
        {DEF, "127.0.0.1", "Forwarded: for=6.6.6.6\nForwarded: , for=1.2.3.4 ; ; proto=https ,", 0,
         OK, "1.2.3.4:0", HTTPS, ""},
        /* An element without for: its writer is the client. */
        {DEF, "127.0.0.1", "Forwarded: proto=https;host=example.com", 0, OK, "", HTTPS,
         "example.com"},
        {"127.0.0.1,10.0.0.0/8", "127.0.0.1", "Forwarded: for=9.9.9.9, proto=https, for=10.0.0.7",
         0, OK, "10.0.0.7:0", HTTPS, ""},
        /* Unknown stops the walk even when a trusted hop is right of it. */
        {"127.0.0.1,10.0.0.0/8", "127.0.0.1", "Forwarded: for=1.2.3.4, for=unknown, for=10.0.0.1",
         0, OK, "unknown", NONE, ""},
        {DEF, "127.0.0.1", "Forwarded: for=1.2.3.4;proto=gopher", 0, OK, "1.2.3.4:0", NONE, ""},
    };
    check_all(t, sizeof t / sizeof t[0]);
}

PN_TEST(forwarded_malformed)
{
    static const char *bad[] = {
        "Forwarded: for=1.2.3.4;for=5.6.7.8",          /* a parameter twice */
        "Forwarded: proto=https;proto=http",           /* */
        "Forwarded: host=a;host=b",                    /* */
        "Forwarded: by=a;by=b",                        /* */
        "Forwarded: for=[2001:db8::1]",                /* '[' is no tchar: must be quoted */
        "Forwarded: for=\"2001:db8::1\"",              /* IPv6 needs brackets here */
        "Forwarded: for=1.2.3.4:80",                   /* ':' must be quoted */
        "Forwarded: for=\"1.2.3.4",                    /* unterminated */
        "Forwarded: for=\"1.2.3.4\\",                  /* a lone backslash at the end */
        "Forwarded: for",                              /* no '=' */
        "Forwarded: for=",                             /* no value */
        "Forwarded: =1.2.3.4",                         /* no name */
        "Forwarded: for = 1.2.3.4",                    /* no OWS around '=' */
        "Forwarded: for=1.2.3.4 proto=https",          /* no separator */
        "Forwarded: for=\"1.2.3.4\"x",                 /* junk after the quotes */
        "Forwarded: for=bogus",                        /* not a node */
        "Forwarded: for=\"_\"",                        /* empty obfnode */
        "Forwarded: host=\"a b\"",                     /* not a host */
        "Forwarded: host=\"a/b\"",                     /* */
        "Forwarded: for=1.2.3.4, for=\"[::1]:99999\"", /* bad port */
        "Forwarded: for=1.2.3.4\nForwarded: ;;x",      /* a later line */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fcase c = {DEF, "127.0.0.1", bad[i], 0, BAD, "", 0, ""};
        check_case(&c);
    }
}

PN_TEST(long_values)
{
    /* A huge X-Forwarded-For (3000 hops, the last untrusted one wins), a
     * host one byte over the limit, an obfuscated name at and over it. */
    static char big[3000 * 16 + 64];
    size_t o = (size_t)sprintf(big, "X-Forwarded-For: ");
    for (int i = 0; i < 3000; i++)
        o += (size_t)sprintf(big + o, "%s10.%d.%d.%d", i ? ", " : "", i >> 16 & 255, i >> 8 & 255,
                             i & 255);
    fcase c = {"127.0.0.1,10.0.0.0/8", "127.0.0.1", big, 0, OK, "10.0.0.0:0", NONE, ""};
    check_case(&c);
    c.trust = "127.0.0.1";
    c.client = "10.0.11.183:0";
    check_case(&c);

    static char host[300];
    sprintf(host, "Forwarded: host=%0255d", 0);
    fcase h = {DEF, "127.0.0.1", host, 0, OK, "", NONE, host + 16};
    check_case(&h);
    sprintf(host, "Forwarded: host=%0256d", 0);
    fcase h2 = {DEF, "127.0.0.1", host, 0, BAD, "", 0, ""};
    check_case(&h2);
    sprintf(host, "Forwarded: host=\"%0256d\"", 0);
    check_case(&h2);

    static char name[200], want[200];
    sprintf(name, "Forwarded: for=_%063d", 0);
    sprintf(want, "_%063d:0", 0);
    fcase n1 = {DEF, "127.0.0.1", name, 0, OK, want, NONE, ""};
    check_case(&n1);
    sprintf(name, "Forwarded: for=_%064d", 0);
    fcase n2 = {DEF, "127.0.0.1", name, 0, BAD, "", 0, ""};
    check_case(&n2);
}

PN_TEST(both_families)
{
    static const fcase t[] = {
        /* The same account twice: applied (the Forwarded details kept). */
        {DEF, "127.0.0.1",
         "Forwarded: for=\"1.2.3.4:99\";proto=https\nX-Forwarded-For: 1.2.3.4\n"
         "X-Forwarded-Proto: https",
         0, OK, "1.2.3.4:99", HTTPS, ""},
        /* A client's Forwarded against the proxy's X-Forwarded-For. */
        {DEF, "127.0.0.1", "Forwarded: for=6.6.6.6\nX-Forwarded-For: 1.2.3.4", 0, PN_FWD_CONFLICT,
         "", 0, ""},
        {DEF, "127.0.0.1", "Forwarded: for=1.2.3.4;proto=https\nX-Forwarded-For: 1.2.3.4", 0,
         PN_FWD_CONFLICT, "", 0, ""},
        {DEF, "127.0.0.1", "Forwarded: proto=https\nX-Forwarded-For: 1.2.3.4", 0, PN_FWD_CONFLICT,
         "", 0, ""},
        /* The host only when both say it. */
        {DEF, "127.0.0.1", "Forwarded: for=1.2.3.4;host=evil\nX-Forwarded-For: 1.2.3.4", 0, OK,
         "1.2.3.4:0", NONE, ""},
        {DEF, "127.0.0.1",
         "Forwarded: for=1.2.3.4;host=Good\nX-Forwarded-For: 1.2.3.4\nX-Forwarded-Host: good",
         PN_FWD_X_HOST, OK, "1.2.3.4:0", NONE, "Good"},
        /* Either one malformed voids both. */
        {DEF, "127.0.0.1", "Forwarded: for=x\nX-Forwarded-For: 1.2.3.4", 0, BAD, "", 0, ""},
        {DEF, "127.0.0.1", "Forwarded: for=1.2.3.4\nX-Forwarded-For: x", 0, BAD, "", 0, ""},
        /* An empty Forwarded is no account. */
        {DEF, "127.0.0.1", "Forwarded: \nX-Forwarded-For: 1.2.3.4", 0, OK, "1.2.3.4:0", NONE, ""},
    };
    check_all(t, sizeof t / sizeof t[0]);
}

PN_TEST(ipv4_like_inet_pton)
{
    /* The node parser's own dotted-quad reader takes exactly what
     * pn_ipaddr_parse (inet_pton) takes. */
    static const char *v[] = {
        "0.0.0.0",  "255.255.255.255", "1.2.3.4",   "1.2.3",      "1.2.3.4.",  ".1.2.3.4",
        "1..2.3",   "1234.1.1.1",      "00.1.1.1",  "1.2.3.04",   "256.1.1.1", "1.2.3.-1",
        "+1.2.3.4", "1.2.3.4a",        "1.2.3.4.5", "10.0.0.255", "0.0.0.00",  "9.99.199.249",
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        pn_ipaddr want;
        int ok = pn_ipaddr_parse(&want, v[i], strlen(v[i])) == 0 && want.family == PN_IP_V4;
        char line[64], text[64];
        snprintf(line, sizeof line, "X-Forwarded-For: %s", v[i]);
        snprintf(text, sizeof text, "%s:0", v[i]);
        fcase c = {DEF, "127.0.0.1", line, 0, ok ? OK : BAD, text, NONE, ""};
        check_case(&c);
    }
}

int main(void)
{
    PN_RUN(absent_and_untrusted);
    PN_RUN(xff_walk);
    PN_RUN(xff_malformed);
    PN_RUN(x_proto);
    PN_RUN(x_host_port);
    PN_RUN(forwarded);
    PN_RUN(forwarded_malformed);
    PN_RUN(long_values);
    PN_RUN(both_families);
    PN_RUN(ipv4_like_inet_pton);
    return pn_test_summary();
}
