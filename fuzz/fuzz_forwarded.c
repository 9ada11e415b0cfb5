/*
 * fuzz_forwarded.c — libFuzzer target for the proxy-header resolution
 * (pn_forwarded.c): Forwarded, X-Forwarded-For/-Proto/-Host/-Port.
 *
 * Input: one control byte, then header lines separated by '\n', each
 * "name:value" (a line without ':' is a Forwarded value).  The control byte
 * picks the trust list, the peer and the flags.  Each name and value is an
 * exact-size heap copy, so ASan sees any read past a slice.  Checked:
 *   - the result is one of the PN_FWD_* codes, and an untrusted peer never
 *     gets anything applied;
 *   - an applied result is sane: a known client kind and scheme, a host
 *     within its buffer made only of host characters, a client text that
 *     fits its buffer;
 *   - the same input gives the same answer twice, and with the lines'
 *     order among other headers kept, adding an unrelated header changes
 *     nothing.
 */
#include "pn_forwarded.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define MAXH 32

static const char *const trusts[4] = {"127.0.0.1,::1,unix", "*", "10.0.0.0/8,127.0.0.1", ""};
static const char *const peers[4] = {"127.0.0.1", "10.1.2.3", "192.0.2.1", "2001:db8::1"};

static int same(const pn_fwd_result *a, const pn_fwd_result *b)
{
    return a->client == b->client && a->scheme == b->scheme && a->port == b->port &&
           a->host_len == b->host_len && memcmp(a->host, b->host, a->host_len) == 0 &&
           (a->client != PN_FWD_CLIENT_ADDR ||
            (a->addr.family == b->addr.family &&
             memcmp(a->addr.bytes, b->addr.bytes, sizeof a->addr.bytes) == 0)) &&
           (a->client != PN_FWD_CLIENT_NAME ||
            (a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0));
}

static void check_result(const pn_fwd_result *r)
{
    CHECK(r->client >= PN_FWD_CLIENT_PEER && r->client <= PN_FWD_CLIENT_NAME);
    CHECK(r->scheme >= PN_FWD_SCHEME_NONE && r->scheme <= PN_FWD_SCHEME_WSS);
    CHECK(r->host_len <= PN_FWD_HOST_MAX);
    for (size_t i = 0; i < r->host_len; i++) {
        char c = r->host[i];
        CHECK(c > ' ' && c < 0x7f && c != '/' && c != '@' && c != '"' && c != '\\' && c != '?' &&
              c != '#');
    }
    if (r->client == PN_FWD_CLIENT_NAME)
        CHECK(r->name_len >= 2 && r->name_len <= PN_FWD_NAME_MAX && r->name[0] == '_');
    if (r->client == PN_FWD_CLIENT_ADDR)
        CHECK(r->addr.family == PN_IP_V4 || r->addr.family == PN_IP_V6);
    char text[PN_FWD_CLIENT_TEXT + 1];
    text[PN_FWD_CLIENT_TEXT] = 0x5a;
    size_t n = pn_fwd_client_text(r, text);
    CHECK(n <= PN_FWD_CLIENT_TEXT && text[PN_FWD_CLIENT_TEXT] == 0x5a);
    CHECK((n == 0) == (r->client == PN_FWD_CLIENT_PEER));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    char err[128];
    const char *spec = trusts[ctl & 3];
    pn_trust *t = pn_trust_new(spec, strlen(spec), err, sizeof err);
    CHECK(t != NULL);
    pn_ipaddr peer;
    const char *ps = peers[(ctl >> 2) & 3];
    CHECK(pn_ipaddr_parse(&peer, ps, strlen(ps)) == 0);
    unsigned flags = (ctl & 0x10) ? PN_FWD_X_HOST : 0;

    /* Header lines, each name and value in its own exact-size allocation;
     * one slot left for the unrelated header added below. */
    pn_http1_header h[MAXH + 1];
    size_t nh = 0;
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    while (p < end && nh < MAXH) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        const char *name = colon ? p : "forwarded";
        size_t name_len = colon ? (size_t)(colon - p) : 9;
        const char *v = colon ? colon + 1 : p;
        size_t vl = (size_t)(le - v);
        char *nc = malloc(name_len ? name_len : 1), *vc = malloc(vl ? vl : 1);
        memcpy(nc, name, name_len);
        memcpy(vc, v, vl);
        h[nh].name = nc;
        h[nh].name_len = name_len;
        h[nh].value = vc;
        h[nh].value_len = vl;
        nh++;
        p = le + 1;
    }

    pn_fwd_result r1, r2;
    int rc = pn_forwarded_resolve(&r1, h, nh, t, &peer, flags);
    CHECK(rc >= PN_FWD_CONFLICT && rc <= PN_FWD_APPLY);
    if (rc == PN_FWD_APPLY)
        check_result(&r1);
    if (!pn_trust_has(t, &peer))
        CHECK(rc == PN_FWD_ABSENT || rc == PN_FWD_UNTRUSTED);
    CHECK(pn_forwarded_resolve(&r2, h, nh, t, &peer, flags) == rc);
    if (rc == PN_FWD_APPLY)
        CHECK(same(&r1, &r2));
    /* An unrelated header at the end changes nothing. */
    h[nh].name = "accept";
    h[nh].name_len = 6;
    h[nh].value = "*/*";
    h[nh].value_len = 3;
    CHECK(pn_forwarded_resolve(&r2, h, nh + 1, t, &peer, flags) == rc);
    if (rc == PN_FWD_APPLY)
        CHECK(same(&r1, &r2));

    /* The node parser's dotted-quad reader agrees with inet_pton
     * (pn_ipaddr_parse) on a lone X-Forwarded-For entry without ':'. */
    if (nh >= 1 && h[0].value_len > 0 && !memchr(h[0].value, ':', h[0].value_len) &&
        !memchr(h[0].value, ',', h[0].value_len) && !memchr(h[0].value, ' ', h[0].value_len) &&
        !memchr(h[0].value, '\t', h[0].value_len) && h[0].value[0] != '_' &&
        !(h[0].value_len == 7 && strncasecmp(h[0].value, "unknown", 7) == 0)) {
        pn_http1_header one = {"x-forwarded-for", 15, h[0].value, h[0].value_len};
        pn_ipaddr want, lo;
        int ok = pn_ipaddr_parse(&want, h[0].value, h[0].value_len) == 0 && want.family == PN_IP_V4;
        CHECK(pn_ipaddr_parse(&lo, "127.0.0.1", 9) == 0);
        pn_trust *lt = pn_trust_new("127.0.0.1", 9, err, sizeof err);
        int r = pn_forwarded_resolve(&r2, &one, 1, lt, &lo, 0);
        CHECK(r == (ok ? PN_FWD_APPLY : PN_FWD_MALFORMED));
        if (ok)
            CHECK(r2.client == PN_FWD_CLIENT_ADDR && memcmp(r2.addr.bytes, want.bytes, 4) == 0);
        pn_trust_free(lt);
    }

    for (size_t i = 0; i < nh; i++) {
        free((void *)h[i].name);
        free((void *)h[i].value);
    }
    pn_trust_free(t);
    return 0;
}
