/*
 * pn_http1_parse.c — strict, incremental HTTP/1.1 request parser.
 *
 * See pn_http1_parse.h for the contract.  Two passes over a head:
 *
 *   scan   finds line ends with memchr and enforces the size limits as soon
 *          as they are exceeded.  It remembers how far it got, so a head that
 *          arrives byte by byte is scanned once in total.
 *   parse  runs once, on the complete head, and validates every byte.
 *
 * The split keeps the error for a given head independent of how the bytes
 * were delivered: the scan only decides limit and line-ending errors, which
 * depend on a prefix of the head alone, and everything else is decided on
 * the whole head.
 *
 * Fast path: most heads arrive in one read.  So the first call for a head
 * runs the parse pass directly, bounded by the input, and keeps its result
 * only if it is a success that also meets every limit; a success there is
 * exactly what scan + parse would return.  Anything else (incomplete, an
 * error, a limit) is thrown away and decided by the scan as above, so the
 * answer never depends on which path ran.  This saves the separate memchr
 * pass, a quarter of the cost of a typical head.
 *
 * Every loop checks the end of its input, so nothing reads beyond buf[len).
 */
#include "pn_http1_parse.h"

#include <string.h>

#include "pn_http_token.h"

static int fail(pn_http1_parser *p, int status, const char *reason)
{
    p->error_status = status;
    p->error_reason = reason;
    return PN_HTTP1_ERROR;
}

/* ---- word-at-a-time scanning ------------------------------------------ */

/* Header values and targets make up most of a head.  Checking eight bytes at
 * once for "any byte outside [lo, 0x7e]" skips the common printable ASCII;
 * the byte loop afterwards handles the first suspicious byte exactly (the
 * line's CR, HTAB, obs-text, or an error).  Borrows in the subtraction only
 * spread upward from a byte that is already flagged, so "any flag set" is
 * exact and, on little-endian, the lowest flag marks the first such byte. */

#define REP8(b) ((uint64_t)(b)*0x0101010101010101ull)

static uint64_t flag_outside(uint64_t w, unsigned lo)
{
    /* high bit of a byte set iff byte < lo, byte >= 0x80, or byte == 0x7f */
    return (((w - REP8(lo)) | w) | ((w ^ REP8(0x7f)) - REP8(0x01))) & REP8(0x80);
}

static const char *skip_word(const char *s, const char *end, unsigned lo, int hash)
{
    while (end - s >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        uint64_t f = flag_outside(w, lo);
        if (hash) {
            uint64_t x = w ^ REP8('#');
            f |= (x - REP8(0x01)) & ~x & REP8(0x80);
        }
        if (f) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            s += __builtin_ctzll(f) >> 3;
#endif
            break;
        }
        s += 8;
    }
    return s;
}

/* ---- scan: line ends and limits ------------------------------------- */

static int parse_lines(pn_http1_parser *p, const char *buf, const char *e, int fast,
                       pn_http1_request *req);

void pn_http1_parser_init(pn_http1_parser *p, const pn_http1_limits *lim,
                          pn_http1_header *header_space)
{
    p->limits = *lim;
    p->header_space = header_space;
    pn_http1_parser_reset(p);
}

void pn_http1_parser_reset(pn_http1_parser *p)
{
    p->scanned = 0;
    p->line_start = 0;
    p->nlines = 0;
    p->error_status = 0;
    p->error_reason = NULL;
}

/* At most this many empty lines may precede the request line (RFC 9112 §2.2
 * says "at least one"; we keep it small so CRLF floods are cut off). */
#define MAX_LEADING_EMPTY 4

int pn_http1_parse_head(pn_http1_parser *p, const char *buf, size_t len, pn_http1_request *req)
{
    const pn_http1_limits *lim = &p->limits;
    /* Bytes past max_head can never belong to an acceptable head, so the
     * scan never looks at them; this also makes the result the same whether
     * the bytes arrive at once or in pieces. */
    size_t end = len < lim->max_head ? len : lim->max_head;

    if (p->scanned == 0 && end > 0) {
        if (parse_lines(p, buf, buf + end, 1, req) == PN_HTTP1_OK) {
            p->scanned = p->line_start = req->head_len;
            return PN_HTTP1_OK;
        }
        p->error_status = 0; /* not the answer; the scan decides */
        p->error_reason = NULL;
    }

    size_t pos = p->scanned;
    size_t ls = p->line_start;

    while (pos < end) {
        const char *lf = memchr(buf + pos, '\n', end - pos);
        if (lf == NULL) {
            pos = end;
            break;
        }
        size_t i = (size_t)(lf - buf);
        size_t content = i - ls;
        int has_cr = content > 0 && buf[i - 1] == '\r';
        content -= (size_t)has_cr;
        if (p->nlines == 0) {
            /* Length before line ending, so the answer does not depend on
             * whether the LF has arrived yet (see the partial check below). */
            if (content > lim->max_request_line)
                return fail(p, 414, "request line too long");
            if (!has_cr)
                return fail(p, 400, "bare LF"); /* RFC 9112 §2.2: CRLF only */
            if (content == 0) {
                /* RFC 9112 §2.2: ignore empty lines before the request line.
                 * Each is exactly CRLF, so ls / 2 of them came before. */
                if (ls / 2 >= MAX_LEADING_EMPTY)
                    return fail(p, 400, "too many empty lines before request");
            } else {
                p->nlines = 1;
            }
        } else {
            if (!has_cr)
                return fail(p, 400, "bare LF");
            if (content == 0) {
                p->scanned = i + 1;
                p->line_start = i + 1;
                int rc = parse_lines(p, buf, buf + i + 1, 0, req);
                /* A complete head cannot run out; never leave the caller
                 * waiting for bytes that cannot help. */
                return rc == PN_HTTP1_INCOMPLETE ? fail(p, 400, "malformed head") : rc;
            }
            /* This is header line number nlines. */
            if (p->nlines > lim->max_headers)
                return fail(p, 431, "too many header fields");
            p->nlines++;
        }
        pos = ls = i + 1;
    }
    p->scanned = pos;
    p->line_start = ls;

    if (p->nlines == 0) {
        /* Request line still open: its length so far, not counting a CR
         * that may be the first half of its CRLF. */
        size_t content = end - ls;
        if (content > 0 && buf[end - 1] == '\r')
            content--;
        if (content > lim->max_request_line)
            return fail(p, 414, "request line too long");
    }
    /* max_head bytes seen and no end of head among them. */
    if (len >= lim->max_head)
        return fail(p, 431, "request head too large");
    return PN_HTTP1_INCOMPLETE;
}

/* ---- parse: the complete head ----------------------------------------- */

/* uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2), deliberately
 * narrow: an IP-literal of hex digits, ':' and '.', or reg-name / IPv4
 * characters with valid %XX escapes; then 1-5 port digits after ':'.
 * userinfo ('@'), whitespace, '/' and anything else are refused. */
static int valid_authority(const char *h, size_t n, int port_required)
{
    size_t i = 0;
    if (n == 0)
        return 0;
    if (h[0] == '[') {
        i = 1;
        while (i < n && pn_http_is(h[i], PN_HTTP_IP6))
            i++;
        if (i == 1 || i >= n || h[i] != ']')
            return 0;
        i++;
    } else {
        while (i < n) {
            if (pn_http_is(h[i], PN_HTTP_REGNAME))
                i++;
            else if (h[i] == '%' && n - i >= 3 && pn_http_is(h[i + 1], PN_HTTP_HEX) &&
                     pn_http_is(h[i + 2], PN_HTTP_HEX))
                i += 3;
            else
                break;
        }
        if (i == 0)
            return 0;
    }
    if (i == n)
        return !port_required;
    if (h[i] != ':')
        return 0;
    size_t d = ++i;
    while (i < n && h[i] >= '0' && h[i] <= '9')
        i++;
    return i == n && i > d && i - d <= 5;
}

/* Transfer-Encoding (RFC 9112 §6.1): we implement only chunked, and it must
 * be the one and final coding.  Returns 0, 400 or 501. */
static int check_transfer_encoding(const char *v, size_t n, const char **reason)
{
    size_t pos = 0, count = 0;
    const char *el;
    size_t el_len;
    int last_chunked = 0;
    while (pn_http_list_next(v, n, &pos, &el, &el_len)) {
        if (!pn_http_is_token(el, el_len)) {
            *reason = "malformed Transfer-Encoding";
            return 400;
        }
        if (last_chunked) {
            /* chunked must be applied last (RFC 9112 §6.1) */
            *reason = "chunked is not the final transfer coding";
            return 400;
        }
        last_chunked = pn_http_ieq(el, el_len, PN_STRLIT("chunked"));
        count++;
    }
    if (count == 1 && last_chunked)
        return 0;
    *reason = "unsupported transfer coding";
    return 501;
}

/* Connection options (RFC 9110 §7.6.1). */
enum { CONN_CLOSE = 1, CONN_KEEP_ALIVE = 2, CONN_UPGRADE = 4 };

static unsigned connection_options(const char *v, size_t n)
{
    size_t pos = 0;
    const char *el;
    size_t el_len;
    unsigned opts = 0;
    while (pn_http_list_next(v, n, &pos, &el, &el_len)) {
        if (pn_http_ieq(el, el_len, PN_STRLIT("close")))
            opts |= CONN_CLOSE;
        else if (pn_http_ieq(el, el_len, PN_STRLIT("keep-alive")))
            opts |= CONN_KEEP_ALIVE;
        else if (pn_http_ieq(el, el_len, PN_STRLIT("upgrade")))
            opts |= CONN_UPGRADE;
    }
    return opts;
}

/* Slots for the fields the parser interprets. */
typedef struct {
    const pn_http1_header *host, *cl, *te;
    unsigned conn;
    int upgrade, expect_continue, te_field;
} known_fields;

/* Request line (RFC 9112 §3): method SP request-target SP HTTP-version CRLF,
 * exactly one SP each.  *sp is advanced past the CRLF. */
static int parse_request_line(pn_http1_parser *p, const char **sp, const char *e,
                              pn_http1_request *req)
{
    const char *s = *sp;
    const char *m = s;
    while (s < e && pn_http_is(*s, PN_HTTP_TCHAR))
        s++;
    if (s == e)
        return PN_HTTP1_INCOMPLETE;
    if (s == m || *s != ' ')
        return fail(p, 400, "invalid method");
    req->method = m;
    req->method_len = (size_t)(s - m);
    s++;

    const char *t = s;
    s = skip_word(s, e, 0x21, 1);
    while (s < e && pn_http_is(*s, PN_HTTP_TARGET))
        s++;
    if (s == e)
        return PN_HTTP1_INCOMPLETE;
    if (s == t || *s != ' ')
        return fail(p, 400, "invalid request target");
    req->target = t;
    req->target_len = (size_t)(s - t);
    s++;

    /* HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3), then CRLF. */
    if (e - s < 10 || s[8] != '\r' || s[9] != '\n' || memcmp(s, PN_STRLIT("HTTP/")) != 0 ||
        s[5] < '0' || s[5] > '9' || s[6] != '.' || s[7] < '0' || s[7] > '9')
        return fail(p, 400, "invalid HTTP version");
    if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
        return fail(p, 505, "HTTP version not supported");
    req->version_minor = s[7] - '0';
    *sp = s + 10;
    return PN_HTTP1_OK;
}

int pn_http1_parse_request_line(const char *buf, size_t len, pn_http1_request *req)
{
    /* A scratch parser: fail() records the status there, not in the
     * connection's (whose error the caller is answering). */
    pn_http1_parser scratch;
    memset(&scratch, 0, sizeof(scratch));
    const char *s = buf, *e = buf + len;
    for (int i = 0; i < MAX_LEADING_EMPTY && e - s >= 2 && s[0] == '\r' && s[1] == '\n'; i++)
        s += 2;
    return parse_request_line(&scratch, &s, e, req);
}

/* Request-target forms (RFC 9112 §3.2). */
static int parse_target(pn_http1_parser *p, pn_http1_request *req)
{
    const char *t = req->target;
    size_t n = req->target_len;
    const char *m = req->method;
    size_t mlen = req->method_len;
    req->query = t + n;
    req->query_len = 0;

    if (pn_http_eq(m, mlen, PN_STRLIT("CONNECT"))) {
        /* §3.2.3: authority-form, host and port, and only for CONNECT. */
        if (!valid_authority(t, n, 1))
            return fail(p, 400, "CONNECT needs host:port target");
        req->path = t;
        req->path_len = n;
        return PN_HTTP1_OK;
    }
    if (t[0] == '/') {
        /* §3.2.1 origin-form: absolute-path [ "?" query ] */
        const char *q = memchr(t, '?', n);
        size_t plen = q ? (size_t)(q - t) : n;
        req->path = t;
        req->path_len = plen;
        if (q) {
            req->query = q + 1;
            req->query_len = n - plen - 1;
        }
        return PN_HTTP1_OK;
    }
    if (n == 1 && t[0] == '*') {
        /* §3.2.4 asterisk-form, only for OPTIONS */
        if (!pn_http_eq(m, mlen, PN_STRLIT("OPTIONS")))
            return fail(p, 400, "asterisk-form target needs OPTIONS");
        req->path = t;
        req->path_len = 1;
        return PN_HTTP1_OK;
    }
    /* §3.2.2 absolute-form; only the http and https schemes are served. */
    size_t skip = pn_http_iprefix(t, n, PN_STRLIT("http://"));
    if (skip == 0)
        skip = pn_http_iprefix(t, n, PN_STRLIT("https://"));
    if (skip == 0)
        return fail(p, 400, "invalid request target");
    const char *a = t + skip;
    size_t rest = n - skip, alen = 0;
    while (alen < rest && a[alen] != '/' && a[alen] != '?')
        alen++;
    if (!valid_authority(a, alen, 0))
        return fail(p, 400, "invalid authority in request target");
    const char *ps = a + alen;
    size_t plen = rest - alen;
    const char *q = plen ? memchr(ps, '?', plen) : NULL;
    if (q) {
        req->query = q + 1;
        req->query_len = (size_t)(ps + plen - q - 1);
        plen = (size_t)(q - ps);
    }
    if (plen == 0) {
        req->path = "/"; /* RFC 9110 §4.2.3: empty path means "/" */
        req->path_len = 1;
    } else {
        req->path = ps;
        req->path_len = plen;
    }
    return PN_HTTP1_OK;
}

/* Remember the fields that decide framing, persistence and routing. */
static int note_field(pn_http1_parser *p, const pn_http1_header *h, known_fields *k)
{
    const char *nm = h->name;
    /* Dispatch on the length: most fields fall through after one switch. */
    switch (h->name_len) {
    case sizeof("te") - 1:
        if (pn_http_ieq(nm, h->name_len, PN_STRLIT("te")))
            k->te_field = 1;
        break;
    case sizeof("host") - 1:
        if (pn_http_ieq(nm, h->name_len, PN_STRLIT("host"))) {
            if (k->host)
                return fail(p, 400, "duplicate Host"); /* RFC 9112 §3.2 */
            k->host = h;
        }
        break;
    case sizeof("expect") - 1:
        if (pn_http_ieq(nm, h->name_len, PN_STRLIT("expect")) &&
            pn_http_ieq(h->value, h->value_len, PN_STRLIT("100-continue")))
            k->expect_continue = 1;
        break;
    case sizeof("upgrade") - 1:
        if (pn_http_ieq(nm, h->name_len, PN_STRLIT("upgrade")))
            k->upgrade = 1;
        break;
    case sizeof("connection") - 1:
        if (pn_http_ieq(nm, h->name_len, PN_STRLIT("connection")))
            k->conn |= connection_options(h->value, h->value_len);
        break;
    case sizeof("content-length") - 1:
        if (pn_http_ieq(nm, h->name_len, PN_STRLIT("content-length"))) {
            if (k->cl)
                return fail(p, 400, "duplicate Content-Length"); /* RFC 9112 §6.3 */
            k->cl = h;
        }
        break;
    case sizeof("transfer-encoding") - 1:
        if (pn_http_ieq(nm, h->name_len, PN_STRLIT("transfer-encoding"))) {
            if (k->te)
                return fail(p, 400, "duplicate Transfer-Encoding");
            k->te = h;
        }
        break;
    }
    return PN_HTTP1_OK;
}

/* Parse the head at buf[0..e).  From the scan (fast == 0), buf[0..e) is a
 * complete head: lines end in CRLF and the last line is empty.  On the fast
 * path (fast != 0), buf[0..e) is whatever has arrived; running out of input
 * returns PN_HTTP1_INCOMPLETE, and the limits the scan would enforce are
 * checked here, any doubt also returning non-OK so the scan decides. */
static int parse_lines(pn_http1_parser *p, const char *buf, const char *e, int fast,
                       pn_http1_request *req)
{
    const char *s = buf;
    int rc;

    /* RFC 9112 §2.2: empty lines before the request line are skipped. */
    while (e - s >= 2 && s[0] == '\r' && s[1] == '\n')
        s += 2;
    if (fast && (size_t)(s - buf) > 2 * MAX_LEADING_EMPTY)
        return PN_HTTP1_INCOMPLETE;
    const char *rl = s;
    if ((rc = parse_request_line(p, &s, e, req)) != PN_HTTP1_OK)
        return rc;
    if (fast && (size_t)(s - rl - 2) > p->limits.max_request_line)
        return PN_HTTP1_INCOMPLETE;
    if ((rc = parse_target(p, req)) != PN_HTTP1_OK)
        return rc;

    /* Header fields, RFC 9112 §5 and RFC 9110 §5. */
    known_fields k = {0};
    pn_http1_header *hs = p->header_space;
    size_t nh = 0;
    for (;;) {
        if (e - s < 2)
            return PN_HTTP1_INCOMPLETE;
        if (s[0] == '\r' && s[1] == '\n')
            break; /* the empty line ending the head */
        const char *name = s;
        while (s < e && pn_http_is(*s, PN_HTTP_TCHAR))
            s++;
        if (s == e)
            return PN_HTTP1_INCOMPLETE;
        if (*s != ':') {
            if (s == name && pn_http_is_ows(*s))
                /* obs-fold (RFC 9112 §5.2), or whitespace after the start
                 * line (§2.2): both rejected */
                return fail(p, 400, "line folding or leading whitespace");
            if (pn_http_is_ows(*s))
                return fail(p, 400, "whitespace before colon"); /* §5.1 */
            return fail(p, 400, "invalid header name");
        }
        if (s == name)
            return fail(p, 400, "empty header name");
        size_t name_len = (size_t)(s - name);
        s++;
        while (s < e && pn_http_is_ows(*s))
            s++;
        const char *v = s;
        s = skip_word(s, e, 0x20, 0);
        while (s < e && pn_http_is(*s, PN_HTTP_VALUE))
            s++;
        if (e - s < 2)
            return PN_HTTP1_INCOMPLETE;
        if (*s != '\r')
            return fail(p, 400, "invalid character in header value");
        if (s[1] != '\n')
            return fail(p, 400, "bare CR");
        const char *ve = s;
        while (ve > v && pn_http_is_ows(ve[-1]))
            ve--;
        s += 2;
        if (nh >= p->limits.max_headers) /* the scan counted; only the fast path */
            return fail(p, 431, "too many header fields");
        pn_http1_header *h = &hs[nh++];
        h->name = name;
        h->name_len = name_len;
        h->value = v;
        h->value_len = (size_t)(ve - v);
        if ((rc = note_field(p, h, &k)) != PN_HTTP1_OK)
            return rc;
    }
    size_t head_len = (size_t)(s + 2 - buf);

    int v11 = req->version_minor == 1;
    if (k.host) {
        if (!valid_authority(k.host->value, k.host->value_len, 0))
            return fail(p, 400, "invalid Host");
    } else if (v11) {
        return fail(p, 400, "missing Host"); /* RFC 9112 §3.2 */
    }

    req->body_kind = PN_BODY_NONE;
    req->content_length = 0;
    if (k.te) {
        if (!v11)
            return fail(p, 400, "Transfer-Encoding in HTTP/1.0"); /* RFC 9112 §6.1 */
        if (k.cl)
            /* §6.1/§6.3: both framings present is a smuggling vector */
            return fail(p, 400, "Content-Length with Transfer-Encoding");
        const char *why = NULL;
        int st = check_transfer_encoding(k.te->value, k.te->value_len, &why);
        if (st)
            return fail(p, st, why);
        req->body_kind = PN_BODY_CHUNKED;
    } else if (k.cl) {
        /* Content-Length = 1*DIGIT (RFC 9112 §6.2).  A list such as "5, 5"
         * is not accepted even when the members agree: strict, like nginx. */
        uint64_t n;
        if (pn_http_parse_u64(k.cl->value, k.cl->value_len, &n) != 0)
            return fail(p, 400, "invalid Content-Length");
        if (p->limits.max_body && n > p->limits.max_body)
            return fail(p, 413, "body too large");
        if (n > 0) {
            req->body_kind = PN_BODY_LENGTH;
            req->content_length = n;
        }
    }

    unsigned flags = 0;
    /* RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with keep-alive. */
    if (!(k.conn & CONN_CLOSE) && (v11 || (k.conn & CONN_KEEP_ALIVE)))
        flags |= PN_REQ_KEEP_ALIVE;
    if ((k.conn & CONN_UPGRADE) && k.upgrade)
        flags |= PN_REQ_UPGRADE;
    if (k.expect_continue && v11) /* RFC 9110 §10.1.1: ignore for 1.0 */
        flags |= PN_REQ_EXPECT_CONTINUE;
    if (pn_http_eq(req->method, req->method_len, PN_STRLIT("HEAD")))
        flags |= PN_REQ_HEAD;
    if (k.te_field)
        flags |= PN_REQ_TE;
    req->flags = flags;
    req->headers = hs;
    req->num_headers = nh;
    req->head_len = head_len;
    return PN_HTTP1_OK;
}

const pn_http1_header *pn_http1_find_header(const pn_http1_request *req, const char *name,
                                            size_t name_len)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        const pn_http1_header *h = &req->headers[i];
        if (pn_http_ieq(h->name, h->name_len, name, name_len))
            return h;
    }
    return NULL;
}

/* ---- body ------------------------------------------------------------- */

/* Chunked decoder states (RFC 9112 §7.1).  The chunk-size line is
 *   chunk-size *( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] ) CRLF
 * and the states below walk it one byte at a time; chunk data is handed out
 * in bulk. */
enum {
    B_SIZE0,       /* first HEXDIG of chunk-size */
    B_SIZE,        /* more HEXDIG, ';', BWS or CR */
    B_EXT_WS,      /* BWS seen: more BWS or ';' */
    B_EXT_NAME0,   /* after ';': BWS or first tchar of the name */
    B_EXT_NAME,    /* tchar, ';', '=', BWS or CR */
    B_EXT_NAME_WS, /* BWS after the name: BWS, ';' or '=' */
    B_EXT_VAL0,    /* after '=': BWS, tchar or DQUOTE */
    B_EXT_TOKEN,   /* tchar, ';', BWS or CR */
    B_EXT_QUOTED,  /* inside quoted-string */
    B_EXT_QESC,    /* after backslash in quoted-string */
    B_EXT_QEND,    /* after closing DQUOTE: ';', BWS or CR */
    B_SIZE_LF,     /* LF ending the chunk-size line */
    B_DATA,        /* chunk data, b->remaining bytes left */
    B_DATA_CR,     /* CRLF after chunk data */
    B_DATA_LF,
    B_TR_START, /* start of a trailer line, or CR of the final CRLF */
    B_TR_NAME,
    B_TR_VALUE,
    B_TR_LF,
    B_FINAL_LF,
};

/* Largest chunk-size before a 16th significant hex digit: 15 digits fit in
 * 60 bits, so the value never overflows a uint64_t. */
#define CHUNK_SIZE_DIGIT_LIMIT ((uint64_t)1 << 56)

void pn_http1_body_init(pn_http1_body *b, const pn_http1_request *req, uint64_t max_body,
                        size_t max_trailers)
{
    memset(b, 0, sizeof *b);
    b->kind = req->body_kind;
    b->max_body = max_body;
    b->max_line = 4096;
    b->max_trailers = max_trailers;
    b->state = B_SIZE0;
    if (b->kind == PN_BODY_LENGTH)
        b->remaining = req->content_length;
    else if (b->kind != PN_BODY_CHUNKED)
        b->done = 1;
}

static int body_fail(pn_http1_body *b, int status, const char *reason)
{
    b->error_status = status;
    b->error_reason = reason;
    return PN_HTTP1_ERROR;
}

int pn_http1_body_next(pn_http1_body *b, const char *in, size_t len, size_t *consumed,
                       const char **data, size_t *data_len)
{
    *consumed = 0;
    *data = NULL;
    *data_len = 0;
    if (b->error_status)
        return PN_HTTP1_ERROR;
    if (b->done)
        return PN_BODY_DONE;

    if (b->kind == PN_BODY_LENGTH) {
        /* The head parser already refused a Content-Length over max_body;
         * this guards callers that pass a smaller limit here. */
        if (b->max_body && b->total + b->remaining > b->max_body)
            return body_fail(b, 413, "body too large");
        size_t n = len;
        if ((uint64_t)n > b->remaining)
            n = (size_t)b->remaining;
        if (n == 0)
            return PN_HTTP1_INCOMPLETE;
        b->remaining -= n;
        b->total += n;
        if (b->remaining == 0)
            b->done = 1;
        *consumed = n;
        *data = in;
        *data_len = n;
        return PN_HTTP1_OK;
    }

    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        int st = b->state;

        if (st == B_DATA) {
            size_t n = len - i;
            if ((uint64_t)n > b->remaining)
                n = (size_t)b->remaining;
            b->remaining -= n;
            b->total += n;
            if (b->remaining == 0)
                b->state = B_DATA_CR;
            *consumed = i + n;
            *data = in + i;
            *data_len = n;
            return PN_HTTP1_OK;
        }

        if (st <= B_EXT_QEND && c != '\r' && ++b->line_len > b->max_line)
            return body_fail(b, 400, "chunk-size line too long");
        if (st >= B_TR_START && st <= B_TR_LF && !(st == B_TR_START && c == '\r') &&
            ++b->trailer_bytes > b->max_trailers)
            return body_fail(b, 400, "trailer section too large");

        i++;
        switch (st) {
        case B_SIZE0:
        case B_SIZE: {
            int d = pn_http_hexval(c);
            if (d >= 0) {
                /* more than 15 significant digits: refuse before overflow */
                if (b->remaining >= CHUNK_SIZE_DIGIT_LIMIT)
                    return body_fail(b, 400, "chunk size too large");
                b->remaining = b->remaining * 16 + (uint64_t)d;
                b->state = B_SIZE;
            } else if (st == B_SIZE0) {
                return body_fail(b, 400, "invalid chunk size");
            } else if (c == '\r') {
                b->state = B_SIZE_LF;
            } else if (c == ';') {
                b->state = B_EXT_NAME0;
            } else if (pn_http_is_ows((char)c)) {
                b->state = B_EXT_WS;
            } else {
                return body_fail(b, 400, "invalid chunk size");
            }
            break;
        }
        case B_EXT_WS:
            if (c == ';')
                b->state = B_EXT_NAME0;
            else if (!pn_http_is_ows((char)c))
                return body_fail(b, 400, "invalid chunk extension");
            break;
        case B_EXT_NAME0:
            if (pn_http_is(c, PN_HTTP_TCHAR))
                b->state = B_EXT_NAME;
            else if (!pn_http_is_ows((char)c))
                return body_fail(b, 400, "invalid chunk extension");
            break;
        case B_EXT_NAME:
        case B_EXT_TOKEN:
        case B_EXT_QEND:
            if (pn_http_is(c, PN_HTTP_TCHAR) && st != B_EXT_QEND)
                break;
            if (c == '\r')
                b->state = B_SIZE_LF;
            else if (c == ';')
                b->state = B_EXT_NAME0;
            else if (c == '=' && st == B_EXT_NAME)
                b->state = B_EXT_VAL0;
            else if (pn_http_is_ows((char)c))
                b->state = st == B_EXT_NAME ? B_EXT_NAME_WS : B_EXT_WS;
            else
                return body_fail(b, 400, "invalid chunk extension");
            break;
        case B_EXT_NAME_WS:
            if (c == ';')
                b->state = B_EXT_NAME0;
            else if (c == '=')
                b->state = B_EXT_VAL0;
            else if (!pn_http_is_ows((char)c))
                return body_fail(b, 400, "invalid chunk extension");
            break;
        case B_EXT_VAL0:
            if (pn_http_is(c, PN_HTTP_TCHAR))
                b->state = B_EXT_TOKEN;
            else if (c == '"')
                b->state = B_EXT_QUOTED;
            else if (!pn_http_is_ows((char)c))
                return body_fail(b, 400, "invalid chunk extension");
            break;
        case B_EXT_QUOTED:
            if (c == '"')
                b->state = B_EXT_QEND;
            else if (c == '\\')
                b->state = B_EXT_QESC;
            else if (!pn_http_is(c, PN_HTTP_QDTEXT))
                return body_fail(b, 400, "invalid chunk extension");
            break;
        case B_EXT_QESC:
            /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
            if (!pn_http_is(c, PN_HTTP_VALUE))
                return body_fail(b, 400, "invalid chunk extension");
            b->state = B_EXT_QUOTED;
            break;
        case B_SIZE_LF:
            if (c != '\n')
                return body_fail(b, 400, "bare CR in chunk-size line");
            b->line_len = 0;
            if (b->remaining == 0) {
                b->state = B_TR_START; /* last-chunk */
            } else {
                if (b->max_body && b->remaining > b->max_body - b->total)
                    return body_fail(b, 413, "body too large");
                b->state = B_DATA;
            }
            break;
        case B_DATA_CR:
            if (c != '\r')
                return body_fail(b, 400, "chunk data not followed by CRLF");
            b->state = B_DATA_LF;
            break;
        case B_DATA_LF:
            if (c != '\n')
                return body_fail(b, 400, "chunk data not followed by CRLF");
            b->state = B_SIZE0;
            break;
        case B_TR_START:
            /* trailer fields follow the header-field rules (RFC 9112 §7.1.2) */
            if (c == '\r')
                b->state = B_FINAL_LF;
            else if (pn_http_is(c, PN_HTTP_TCHAR))
                b->state = B_TR_NAME;
            else
                return body_fail(b, 400, "invalid trailer field");
            break;
        case B_TR_NAME:
            if (c == ':')
                b->state = B_TR_VALUE;
            else if (!pn_http_is(c, PN_HTTP_TCHAR))
                return body_fail(b, 400, "invalid trailer field");
            break;
        case B_TR_VALUE:
            if (c == '\r')
                b->state = B_TR_LF;
            else if (!pn_http_is(c, PN_HTTP_VALUE))
                return body_fail(b, 400, "invalid trailer field");
            break;
        case B_TR_LF:
            if (c != '\n')
                return body_fail(b, 400, "bare CR in trailer");
            b->state = B_TR_START;
            break;
        case B_FINAL_LF:
            if (c != '\n')
                return body_fail(b, 400, "bare CR after trailers");
            b->done = 1;
            *consumed = i;
            return PN_BODY_DONE;
        }
    }
    *consumed = len;
    return PN_HTTP1_INCOMPLETE;
}
