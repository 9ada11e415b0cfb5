/*
 * pn_forwarded — see pn_forwarded.h for the rules.
 *
 * Everything is one left-to-right pass per header family, without storage:
 * the rightmost untrusted hop is the LAST untrusted hop met from the left,
 * so the walk the rules describe from the right needs no array, however
 * long the list (a head may be megabytes under --max-header-size).
 */
#include "pn_forwarded.h"

#include <string.h>

#include "pn_http_token.h"
#include "pn_log.h"

/* The headers: indexes, and bits of those. */
enum { K_FWD, K_XFF, K_XPROTO, K_XHOST, K_XPORT, K_COUNT };
enum {
    H_FWD = 1u << K_FWD,
    H_XFF = 1u << K_XFF,
    H_XPROTO = 1u << K_XPROTO,
    H_XHOST = 1u << K_XHOST,
    H_XPORT = 1u << K_XPORT,
    H_X = H_XFF | H_XPROTO | H_XHOST | H_XPORT,
};

/* Eight bytes of a name, and the ASCII case bit of each.  A field name
 * is a token (the parser admits nothing else), and for token bytes
 * (b | 0x20) equals a lower-case letter or '-' exactly when b is that
 * letter in either case or '-': so OR-ing eight bytes with LC8 compares
 * them case-insensitively with a lower-case literal in one go. */
#define LC8 0x2020202020202020ull
static inline uint64_t load8(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* name[0..n) is the lower-case literal lit (9 <= n <= 24), case aside. */
static inline int name_is(const char *name, const char *lit, size_t n)
{
    return (load8(name) | LC8) == load8(lit) && (load8(name + n - 8) | LC8) == load8(lit + n - 8) &&
           (n <= 16 || (load8(name + 8) | LC8) == load8(lit + 8));
}

/* Which of our headers a field name is: the length picks the candidate, so
 * every other field costs one switch. */
static unsigned header_kind(const char *name, size_t len)
{
    switch (len) {
    case 9:
        return name_is(name, "forwarded", 9) ? H_FWD : 0;
    case 15:
        return name_is(name, "x-forwarded-for", 15) ? H_XFF : 0;
    case 16:
        if (name_is(name, "x-forwarded-host", 16))
            return H_XHOST;
        return name_is(name, "x-forwarded-port", 16) ? H_XPORT : 0;
    case 17:
        return name_is(name, "x-forwarded-proto", 17) ? H_XPROTO : 0;
    default:
        return 0;
    }
}

/* Where our headers are among the request's, found in one scan: the first
 * and last field line of each, so that reading one later looks only at
 * the lines between (usually one: no name compared again). */
typedef struct hdr_map {
    const pn_http1_header *h;
    unsigned present; /* H_* */
    size_t first[K_COUNT], last[K_COUNT];
} hdr_map;

static void map_headers(hdr_map *m, const pn_http1_header *h, size_t n)
{
    m->h = h;
    m->present = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned b = header_kind(h[i].name, h[i].name_len);
        if (b == 0)
            continue;
        int k = __builtin_ctz(b);
        if (!(m->present & b))
            m->first[k] = i;
        m->last[k] = i;
        m->present |= b;
    }
}

/* Line l, between the first and the last of kind k, is one of them. */
static int map_is(const hdr_map *m, int k, size_t l)
{
    return l == m->first[k] || l == m->last[k] ||
           header_kind(m->h[l].name, m->h[l].name_len) == (1u << k);
}

/* ---- nodes (RFC 7239 §6) --------------------------------------------- */

typedef struct fwd_node {
    int kind; /* PN_FWD_CLIENT_ADDR, _UNKNOWN or _NAME */
    pn_ipaddr addr;
    uint16_t port;
    size_t name_len;
    char name[PN_FWD_NAME_MAX];
} fwd_node;

/* obfnode / obfport characters: ALPHA / DIGIT / "." / "_" / "-" (§6.3). */
static int is_obf(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Dotted IPv4 (RFC 3986 dec-octet: no leading zeros, at most 255), the
 * common case, without inet_pton's copy: 0, or -1 when s[0..n) is not
 * one.  The same addresses pn_ipaddr_parse takes. */
static int parse_v4(pn_ipaddr *a, const char *s, size_t n)
{
    uint8_t b[4];
    unsigned v = 0, digits = 0, parts = 0;
    if (n < 7 || n > 15)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned)(unsigned char)s[i] - '0';
        if (c <= 9) {
            if (digits == 3 || (digits && v == 0)) /* four digits, or a leading zero */
                return -1;
            v = v * 10 + c;
            digits++;
        } else if (s[i] == '.' && digits && v <= 255 && parts < 3) {
            b[parts++] = (uint8_t)v;
            v = digits = 0;
        } else {
            return -1;
        }
    }
    if (parts != 3 || !digits || v > 255)
        return -1;
    b[3] = (uint8_t)v;
    memset(a, 0, sizeof *a);
    memcpy(a->bytes, b, 4);
    a->family = PN_IP_V4;
    return 0;
}

/* node-port = port / obfport; port = 1*5DIGIT (§6).  An obfuscated port
 * tells nothing: 0. */
static int parse_port(const char *s, size_t n, uint16_t *port)
{
    *port = 0;
    if (n >= 1 && s[0] == '_') {
        if (n < 2)
            return -1;
        for (size_t i = 1; i < n; i++)
            if (!is_obf(s[i]))
                return -1;
        return 0;
    }
    uint64_t v;
    if (n > 5 || pn_http_parse_u64(s, n, &v) != 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* node = nodename [ ":" node-port ]; nodename = IPv4address / "[" IPv6address
 * "]" / "unknown" / obfnode (§6).  bare_v6: X-Forwarded-For writes IPv6
 * addresses without brackets (and then without a port). */
static int parse_node(fwd_node *o, const char *s, size_t n, int bare_v6)
{
    const char *end = s + n;
    o->port = 0;
    o->name_len = 0;
    if (n == 0)
        return -1;
    if ((s[0] | 0x20) == 'u' && pn_http_ieq(s, n, PN_STRLIT("unknown"))) {
        o->kind = PN_FWD_CLIENT_UNKNOWN;
        return 0;
    }
    if (s[0] == '_') {
        size_t i = 1;
        while (i < n && s[i] != ':') {
            if (!is_obf(s[i]))
                return -1;
            i++;
        }
        if (i < 2 || i > PN_FWD_NAME_MAX)
            return -1;
        memcpy(o->name, s, i);
        o->name_len = i;
        o->kind = PN_FWD_CLIENT_NAME;
        return i < n ? parse_port(s + i + 1, n - i - 1, &o->port) : 0;
    }
    o->kind = PN_FWD_CLIENT_ADDR;
    if (parse_v4(&o->addr, s, n) == 0)
        return 0; /* the usual node: a bare IPv4 address */
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (rb == NULL || memchr(s + 1, ':', (size_t)(rb - s - 1)) == NULL ||
            pn_ipaddr_parse(&o->addr, s + 1, (size_t)(rb - s - 1)) != 0)
            return -1;
        if (rb + 1 == end)
            return 0;
        if (rb[1] != ':')
            return -1;
        return parse_port(rb + 2, (size_t)(end - rb - 2), &o->port);
    }
    const char *colon = memchr(s, ':', n);
    if (colon == NULL)
        return -1; /* (not IPv4: tried above) */
    if (memchr(colon + 1, ':', (size_t)(end - colon - 1)) == NULL) {
        /* IPv4:port. */
        if (parse_v4(&o->addr, s, (size_t)(colon - s)) != 0)
            return -1;
        return parse_port(colon + 1, (size_t)(end - colon - 1), &o->port);
    }
    if (!bare_v6)
        return -1;
    return pn_ipaddr_parse(&o->addr, s, n);
}

static int node_trusted(const fwd_node *nd, const pn_trust *t)
{
    return nd->kind == PN_FWD_CLIENT_ADDR && pn_trust_has(t, &nd->addr);
}

static void node_to_result(pn_fwd_result *out, const fwd_node *nd)
{
    out->client = nd->kind;
    out->addr = nd->addr;
    out->port = nd->port;
    out->name_len = nd->name_len;
    if (nd->name_len)
        memcpy(out->name, nd->name, nd->name_len);
}

/* ---- values ------------------------------------------------------------ */

static int scheme_of(const char *s, size_t n)
{
    if (pn_http_ieq(s, n, PN_STRLIT("https")))
        return PN_FWD_SCHEME_HTTPS;
    if (pn_http_ieq(s, n, PN_STRLIT("http")))
        return PN_FWD_SCHEME_HTTP;
    if (pn_http_ieq(s, n, PN_STRLIT("wss")))
        return PN_FWD_SCHEME_WSS;
    if (pn_http_ieq(s, n, PN_STRLIT("ws")))
        return PN_FWD_SCHEME_WS;
    return PN_FWD_SCHEME_NONE; /* another scheme leaves the connection's */
}

/* Longest host accepted (RFC 1035: 253 for a name, with room to spare for
 * "[v6]"), before a ":port" is added. */
#define HOST_TEXT_MAX 255

/* Host = uri-host [ ":" port ] (RFC 7239 §5.3, RFC 9110 §7.2).  The
 * characters of a reg-name, an IP literal and a port; nothing that could
 * break out of a URL the app builds from it (no '/', '@', '?', '#', space,
 * quote or backslash). */
static int valid_host(const char *s, size_t n)
{
    if (n == 0 || n > HOST_TEXT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (is_obf(c))
            continue;
        switch (c) {
        case '~':
        case '!':
        case '$':
        case '&':
        case '\'':
        case '(':
        case ')':
        case '*':
        case '+':
        case ',':
        case ';':
        case '=':
        case ':':
        case '%':
        case '[':
        case ']':
            continue;
        default:
            return 0;
        }
    }
    return 1;
}

/* quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110
 * §5.6.4), starting at s[*i] == '"'.  The unescaped text goes to dst (its
 * first `cap` bytes; *dlen gets the whole length, which may be more).
 * *i moves past the closing quote.  0, or -1 when malformed. */
static int quoted(const char *s, size_t n, size_t *i, char *dst, size_t cap, size_t *dlen)
{
    size_t j = *i + 1, o = 0;
    while (j < n) {
        unsigned char c = (unsigned char)s[j];
        if (c == '"') {
            *i = j + 1;
            *dlen = o;
            return 0;
        }
        if (c == '\\') {
            if (j + 1 >= n)
                return -1;
            c = (unsigned char)s[j + 1];
            j += 2;
        } else {
            j++;
        }
        /* qdtext and the escaped byte: HTAB, SP, VCHAR, obs-text. */
        if (!(c == '\t' || (c >= 0x20 && c != 0x7f)))
            return -1;
        if (o < cap)
            dst[o] = (char)c;
        o++;
    }
    return -1;
}

/* ---- Forwarded (RFC 7239 §4) ------------------------------------------ */

typedef struct fwd_elem {
    unsigned has_for : 1, has_proto : 1, has_host : 1, has_by : 1;
    fwd_node node; /* has_for */
    int scheme;
    size_t host_len;
    char host[HOST_TEXT_MAX];
} fwd_elem;

/* One forwarded-element of the line v[0..n) from *pi:
 *   forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
 *   forwarded-pair    = token "=" value ; value = token / quoted-string
 * with OWS tolerated around ';' and ','.  Parameter names are
 * case-insensitive; each may occur once per element (§4); unknown ones
 * (extensions, `by`) are checked for syntax and skipped.  *pi moves past
 * the element's comma.  1: an element; 0: an empty one; -1: malformed. */
static int fwd_element(const char *v, size_t n, size_t *pi, fwd_elem *e)
{
    size_t i = *pi;
    int pairs = 0;
    e->has_for = e->has_proto = e->has_host = e->has_by = 0;
    e->scheme = PN_FWD_SCHEME_NONE;
    e->host_len = 0;
    for (;;) {
        while (i < n && pn_http_is_ows(v[i]))
            i++;
        if (i >= n)
            break;
        if (v[i] == ',') {
            i++;
            break;
        }
        if (v[i] == ';') {
            i++;
            continue;
        }
        size_t ns = i;
        while (i < n && pn_http_is_tchar(v[i]))
            i++;
        size_t nl = i - ns;
        if (nl == 0 || i >= n || v[i] != '=')
            return -1;
        i++;
        /* The value: a token in place, or a quoted string unescaped here.
         * The buffer holds the longest value we keep (a host); a longer
         * `for` or `host` is malformed, a longer anything else ignored. */
        char buf[HOST_TEXT_MAX];
        const char *val;
        size_t vl;
        int too_long = 0;
        if (i < n && v[i] == '"') {
            if (quoted(v, n, &i, buf, sizeof buf, &vl) != 0)
                return -1;
            too_long = vl > sizeof buf;
            val = buf;
        } else {
            size_t vs = i;
            while (i < n && pn_http_is_tchar(v[i]))
                i++;
            vl = i - vs;
            if (vl == 0)
                return -1;
            val = v + vs;
        }
        while (i < n && pn_http_is_ows(v[i]))
            i++;
        if (i < n && v[i] != ';' && v[i] != ',')
            return -1;
        pairs++;
        const char *name = v + ns;
        if (pn_http_ieq(name, nl, PN_STRLIT("for"))) {
            if (e->has_for || too_long || parse_node(&e->node, val, vl, 0) != 0)
                return -1;
            e->has_for = 1;
        } else if (pn_http_ieq(name, nl, PN_STRLIT("proto"))) {
            if (e->has_proto)
                return -1;
            e->has_proto = 1;
            e->scheme = too_long ? PN_FWD_SCHEME_NONE : scheme_of(val, vl);
        } else if (pn_http_ieq(name, nl, PN_STRLIT("host"))) {
            if (e->has_host || too_long || !valid_host(val, vl))
                return -1;
            e->has_host = 1;
            memcpy(e->host, val, vl);
            e->host_len = vl;
        } else if (pn_http_ieq(name, nl, PN_STRLIT("by"))) {
            if (e->has_by)
                return -1;
            e->has_by = 1;
        }
    }
    *pi = i;
    return pairs > 0;
}

static void elem_to_result(pn_fwd_result *out, const fwd_elem *e)
{
    out->scheme = e->scheme;
    out->host_len = e->host_len;
    memcpy(out->host, e->host, e->host_len);
}

static int resolve_forwarded(pn_fwd_result *out, const hdr_map *m, const pn_trust *t)
{
    const pn_http1_header *h = m->h;
    fwd_elem cur, choice, lead;
    fwd_node succ;
    size_t nelem = 0;
    int have_choice = 0, need_succ = 0, have_succ = 0;
    for (size_t l = m->first[K_FWD]; l <= m->last[K_FWD]; l++) {
        if (!map_is(m, K_FWD, l))
            continue;
        const char *v = h[l].value;
        size_t vn = h[l].value_len, i = 0;
        while (i < vn) {
            int r = fwd_element(v, vn, &i, &cur);
            if (r < 0)
                return PN_FWD_MALFORMED;
            if (r == 0)
                continue;
            if (nelem++ == 0)
                lead = cur;
            /* Passed on only by a hop that is itself a trusted address. */
            if (!(cur.has_for && node_trusted(&cur.node, t))) {
                choice = cur;
                have_choice = 1;
                need_succ = 1;
                have_succ = 0;
            } else if (need_succ) {
                /* The trusted hop right of the choice: it wrote the choice,
                 * so it is the client when the choice has no `for`. */
                succ = cur.node;
                have_succ = 1;
                need_succ = 0;
            }
        }
    }
    if (nelem == 0)
        return PN_FWD_ABSENT;
    const fwd_elem *e = have_choice ? &choice : &lead;
    memset(out, 0, offsetof(pn_fwd_result, name));
    out->name_len = out->host_len = 0;
    if (e->has_for)
        node_to_result(out, &e->node);
    else if (have_succ)
        node_to_result(out, &succ);
    else
        out->client = PN_FWD_CLIENT_PEER; /* the peer wrote it */
    elem_to_result(out, e);
    return PN_FWD_APPLY;
}

/* ---- X-Forwarded-* ------------------------------------------------------ */

/* The non-empty elements of every field line of one header, in order. */
typedef struct xlist {
    const hdr_map *m;
    int k;
    int single; /* one line without a comma (the usual case): its value is the element */
    size_t line, pos;
} xlist;

static void xlist_begin(xlist *x, const hdr_map *m, int k)
{
    const pn_http1_header *hd = &m->h[m->first[k]];
    x->m = m;
    x->k = k;
    x->line = m->first[k];
    x->pos = 0;
    x->single = m->first[k] == m->last[k] && memchr(hd->value, ',', hd->value_len) == NULL;
}

static int xlist_next(xlist *x, const char **el, size_t *len)
{
    if (x->single) {
        const pn_http1_header *hd = &x->m->h[x->line];
        if (x->pos)
            return 0;
        x->pos = 1;
        *el = hd->value;
        *len = hd->value_len;
        pn_http_trim(el, len);
        return *len > 0;
    }
    for (; x->line <= x->m->last[x->k]; x->line++, x->pos = 0) {
        if (!map_is(x->m, x->k, x->line))
            continue;
        const pn_http1_header *hd = &x->m->h[x->line];
        while (pn_http_list_next(hd->value, hd->value_len, &x->pos, el, len))
            if (*len)
                return 1;
    }
    return 0;
}

/* Whether a short value (a proto) holds a comma; a loop, not a call. */
static int is_list(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == ',')
            return 1;
    return 0;
}

/* The entry of header `kind` that goes with the hop `d` places from the
 * right of X-Forwarded-For: the one as far from the right, or the leftmost
 * when the list is shorter (so one value speaks for every hop).  0 when
 * the header has no entry. */
static int x_pick(const hdr_map *map, int kind, size_t d, const char **el, size_t *len)
{
    xlist x;
    size_t m = 0;
    const char *first = NULL, *e;
    size_t first_len = 0, l;
    const pn_http1_header *hd = &map->h[map->first[kind]];
    if (map->first[kind] == map->last[kind] &&
        (kind == K_XPROTO ? !is_list(hd->value, hd->value_len)
                          : memchr(hd->value, ',', hd->value_len) == NULL)) {
        /* One line, one entry (the usual case): it speaks for every hop. */
        *el = hd->value;
        *len = hd->value_len;
        pn_http_trim(el, len);
        return *len > 0;
    }
    xlist_begin(&x, map, kind);
    while (xlist_next(&x, &e, &l))
        if (m++ == 0) {
            first = e;
            first_len = l;
        }
    if (m == 0)
        return 0;
    size_t want = m - 1 - (d < m - 1 ? d : m - 1), k = 0;
    if (want == 0) {
        *el = first;
        *len = first_len;
        return 1;
    }
    xlist_begin(&x, map, kind);
    while (xlist_next(&x, el, len))
        if (k++ == want)
            return 1;
    return 0; /* (not reached) */
}

/* "host[:port]" without its port. */
static size_t host_without_port(const char *s, size_t n)
{
    if (n && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        return rb ? (size_t)(rb - s + 1) : n;
    }
    const char *c = memchr(s, ':', n);
    if (c && memchr(c + 1, ':', (size_t)(s + n - c - 1)) == NULL)
        return (size_t)(c - s);
    return n;
}

static int resolve_x(pn_fwd_result *out, const hdr_map *m, size_t n, const pn_trust *t,
                     unsigned present)
{
    const pn_http1_header *h = m->h;
    memset(out, 0, offsetof(pn_fwd_result, name));
    out->name_len = out->host_len = 0;
    int any = 0;
    size_t d = 0;
    if (present & H_XFF) {
        /* Each entry is parsed to match it; the chosen one (the last
         * untrusted, else the first) is remembered as a slice and parsed
         * again at the end only when it is not the last one parsed. */
        fwd_node cur;
        const char *el, *pick = NULL;
        size_t len, pick_len = 0, nent = 0, pick_at = 0;
        xlist x;
        el = h[m->first[K_XFF]].value;
        len = h[m->first[K_XFF]].value_len;
        pn_http_trim(&el, &len);
        if (m->first[K_XFF] == m->last[K_XFF] && len && parse_node(&cur, el, len, 1) == 0) {
            /* One line that is one node (a node has no comma): a single
             * proxy's hop, no list to walk. */
            nent = 1;
        } else {
            xlist_begin(&x, m, K_XFF);
            while (xlist_next(&x, &el, &len)) {
                if (parse_node(&cur, el, len, 1) != 0)
                    return PN_FWD_MALFORMED;
                /* The last untrusted entry; the first while there is none. */
                if (nent == 0 || !node_trusted(&cur, t)) {
                    pick = el;
                    pick_len = len;
                    pick_at = nent;
                }
                nent++;
            }
        }
        if (nent) {
            any = 1;
            if (pick_at != nent - 1)
                parse_node(&cur, pick, pick_len, 1); /* (parsed once already: cannot fail) */
            node_to_result(out, &cur);
            d = nent - 1 - pick_at;
        }
    }
    const char *el;
    size_t len;
    if ((present & H_XPROTO) && x_pick(m, K_XPROTO, d, &el, &len)) {
        any = 1;
        out->scheme = scheme_of(el, len);
    }
    /* Behind --x-forwarded-host only (the caller masks the bits). */
    const char *host = NULL;
    size_t host_len = 0;
    if ((present & H_XHOST) && x_pick(m, K_XHOST, d, &el, &len)) {
        if (!valid_host(el, len))
            return PN_FWD_MALFORMED;
        host = el;
        host_len = len;
    }
    uint16_t port = 0;
    int has_port = 0;
    if ((present & H_XPORT) && x_pick(m, K_XPORT, d, &el, &len)) {
        if (len == 0 || el[0] == '_' || parse_port(el, len, &port) != 0)
            return PN_FWD_MALFORMED;
        has_port = 1;
    }
    if (has_port && host == NULL) {
        /* A port alone changes the port of the Host the request has. */
        for (size_t i = 0; i < n; i++) {
            if (pn_http_ieq(h[i].name, h[i].name_len, PN_STRLIT("host"))) {
                if (valid_host(h[i].value, h[i].value_len)) {
                    host = h[i].value;
                    host_len = h[i].value_len;
                }
                break;
            }
        }
    }
    if (host) {
        any = 1;
        if (has_port)
            host_len = host_without_port(host, host_len);
        memcpy(out->host, host, host_len);
        out->host_len = host_len;
        /* The scheme's default port is left out, as a browser does. */
        int secure = out->scheme == PN_FWD_SCHEME_HTTPS || out->scheme == PN_FWD_SCHEME_WSS;
        if (has_port && port != (secure ? 443 : 80)) {
            out->host[out->host_len++] = ':';
            out->host_len += pn_http_put_u64(out->host + out->host_len, port);
        }
    }
    return any ? PN_FWD_APPLY : PN_FWD_ABSENT;
}

/* ---- both families ------------------------------------------------------ */

static int same_client(const pn_fwd_result *a, const pn_fwd_result *b)
{
    if (a->client != b->client)
        return 0;
    switch (a->client) {
    case PN_FWD_CLIENT_ADDR:
        return a->addr.family == b->addr.family &&
               memcmp(a->addr.bytes, b->addr.bytes, sizeof a->addr.bytes) == 0;
    case PN_FWD_CLIENT_NAME:
        return pn_http_eq(a->name, a->name_len, b->name, b->name_len);
    default:
        return 1;
    }
}

int pn_forwarded_resolve(pn_fwd_result *out, const pn_http1_header *h, size_t n, const pn_trust *t,
                         const pn_ipaddr *peer, unsigned flags)
{
    hdr_map m;
    map_headers(&m, h, n);
    unsigned present = m.present;
    if (!(flags & PN_FWD_X_HOST))
        present &= ~(unsigned)(H_XHOST | H_XPORT);
    if (present == 0)
        return PN_FWD_ABSENT;
    if (!(flags & PN_FWD_PEER_TRUSTED) && !pn_trust_has(t, peer))
        return PN_FWD_UNTRUSTED;
    int rf = PN_FWD_ABSENT, rx = PN_FWD_ABSENT;
    pn_fwd_result fx;
    if (present & H_FWD) {
        rf = resolve_forwarded(out, &m, t);
        if (rf == PN_FWD_MALFORMED)
            return rf;
    }
    if (present & H_X) {
        rx = resolve_x(rf == PN_FWD_APPLY ? &fx : out, &m, n, t, present);
        if (rx == PN_FWD_MALFORMED)
            return rx;
    }
    if (rf == PN_FWD_APPLY && rx == PN_FWD_APPLY) {
        /* Two accounts of one request: believed only where they agree. */
        if (!same_client(out, &fx) || out->scheme != fx.scheme)
            return PN_FWD_CONFLICT;
        if (!pn_http_ieq(out->host, out->host_len, fx.host, fx.host_len))
            out->host_len = 0;
        return PN_FWD_APPLY;
    }
    return rf == PN_FWD_APPLY || rx == PN_FWD_APPLY ? PN_FWD_APPLY : PN_FWD_ABSENT;
}

size_t pn_fwd_client_text(const pn_fwd_result *r, char *buf)
{
    size_t n = 0;
    switch (r->client) {
    case PN_FWD_CLIENT_ADDR:
        if (r->addr.family == PN_IP_V6) {
            buf[n++] = '[';
            n += pn_ipaddr_format(&r->addr, buf + n);
            buf[n++] = ']';
        } else {
            n += pn_log_format_ipv4(buf, r->addr.bytes);
        }
        break;
    case PN_FWD_CLIENT_UNKNOWN:
        return (size_t)(pn_http_put(buf, PN_STRLIT("unknown")) - buf);
    case PN_FWD_CLIENT_NAME:
        memcpy(buf, r->name, r->name_len);
        n = r->name_len;
        break;
    default:
        return 0;
    }
    buf[n++] = ':';
    n += pn_http_put_u64(buf + n, r->port);
    return n;
}
