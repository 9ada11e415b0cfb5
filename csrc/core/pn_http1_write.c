/*
 * pn_http1_write — HTTP/1.1 response serialisation.  Contract in
 * pn_http1_write.h.
 *
 * Speed notes: this runs for every response, so each entry point reserves the
 * worst-case size once and then writes through a plain char pointer (no
 * per-field pn_buf_append, no printf).  Status lines for registered codes are
 * preformatted at compile time; decimal and hex numbers are written by hand.
 *
 * No mutable static state: every table here is const, every function
 * re-entrant.  Safe to call from any number of worker threads at once as long
 * as each works on its own pn_http1_response / pn_buf / pn_date_cache.
 */
#include "pn_http1_write.h"

#include <string.h>

#include "pn_http_token.h"
#include "pn_static_http.h"

/* ---- status lines and reason phrases -------------------------------- */

typedef struct status_entry {
    const char *line; /* "HTTP/1.1 200 OK\r\n", NULL when unregistered */
    unsigned char line_len;
    const char *reason; /* "OK" */
} status_entry;

/* RFC 9110 §6.2: a server sends the highest minor version it conforms to,
 * so the status line says HTTP/1.1 even when answering HTTP/1.0. */
#define ST(code, text)                                                                             \
    [code - 100] = {"HTTP/1.1 " #code " " text "\r\n",                                             \
                    (unsigned char)(sizeof("HTTP/1.1 " #code " " text "\r\n") - 1), text}

/* Every code registered by RFC 9110 §15 with a phrase, plus 429/431
 * (RFC 6585) and 451 (RFC 7725).  306 and 418 are registered as "(Unused)"
 * (§15.4.7, §15.5.19): they get the empty reason like any unknown code. */
static const status_entry status_table[500] = {
    ST(100, "Continue"),
    ST(101, "Switching Protocols"),
    ST(200, "OK"),
    ST(201, "Created"),
    ST(202, "Accepted"),
    ST(203, "Non-Authoritative Information"),
    ST(204, "No Content"),
    ST(205, "Reset Content"),
    ST(206, "Partial Content"),
    ST(300, "Multiple Choices"),
    ST(301, "Moved Permanently"),
    ST(302, "Found"),
    ST(303, "See Other"),
    ST(304, "Not Modified"),
    ST(305, "Use Proxy"),
    ST(307, "Temporary Redirect"),
    ST(308, "Permanent Redirect"),
    ST(400, "Bad Request"),
    ST(401, "Unauthorized"),
    ST(402, "Payment Required"),
    ST(403, "Forbidden"),
    ST(404, "Not Found"),
    ST(405, "Method Not Allowed"),
    ST(406, "Not Acceptable"),
    ST(407, "Proxy Authentication Required"),
    ST(408, "Request Timeout"),
    ST(409, "Conflict"),
    ST(410, "Gone"),
    ST(411, "Length Required"),
    ST(412, "Precondition Failed"),
    ST(413, "Content Too Large"),
    ST(414, "URI Too Long"),
    ST(415, "Unsupported Media Type"),
    ST(416, "Range Not Satisfiable"),
    ST(417, "Expectation Failed"),
    ST(421, "Misdirected Request"),
    ST(422, "Unprocessable Content"),
    ST(426, "Upgrade Required"),
    ST(429, "Too Many Requests"),
    ST(431, "Request Header Fields Too Large"),
    ST(451, "Unavailable For Legal Reasons"),
    ST(500, "Internal Server Error"),
    ST(501, "Not Implemented"),
    ST(502, "Bad Gateway"),
    ST(503, "Service Unavailable"),
    ST(504, "Gateway Timeout"),
    ST(505, "HTTP Version Not Supported"),
};

#undef ST

const char *pn_http1_reason(int status)
{
    if (status < 100 || status > 599 || status_table[status - 100].reason == NULL)
        return "";
    return status_table[status - 100].reason;
}

/* Copy a string literal to p and move p past it. */
#define PUT_LIT(p, s) ((p) = pn_http_put((p), PN_STRLIT(s)))

/* A status line without its reason phrase: "HTTP/1.1 NNN \r\n". */
#define STATUS_LINE_BARE (sizeof("HTTP/1.1 200 \r\n") - 1)

/* Append the status line for a status in 100..599. */
static int write_status_line(pn_buf *out, int status)
{
    const status_entry *e = &status_table[status - 100];
    if (e->line != NULL)
        return pn_buf_append(out, e->line, e->line_len);
    /* Unregistered code: the reason phrase is optional but the SP before it
     * is not (RFC 9112 §4: status-line = version SP code SP [reason]). */
    char tmp[STATUS_LINE_BARE], *p = tmp;
    PUT_LIT(p, "HTTP/1.1 ");
    p += pn_http_put_u64(p, (uint64_t)status); /* 100..599: three digits */
    PUT_LIT(p, " \r\n");
    return pn_buf_append(out, tmp, (size_t)(p - tmp));
}

#define SWAR_ONES 0x0101010101010101ULL
#define SWAR_HIGH 0x8080808080808080ULL

/* Nonzero when some byte of w is below n (n <= 128).  Exact as a yes/no
 * answer (borrows can only occur above a byte that already matched). */
static inline uint64_t swar_has_less(uint64_t w, unsigned n)
{
    return (w - SWAR_ONES * n) & ~w & SWAR_HIGH;
}

/* Nonzero when some byte of w equals c. */
static inline uint64_t swar_has_byte(uint64_t w, unsigned c)
{
    return swar_has_less(w ^ (SWAR_ONES * c), 1);
}

int pn_http1_check_header(const char *name, size_t name_len, const char *value, size_t value_len)
{
    /* field-name = token (RFC 9110 §5.1): non-empty, tchar only. */
    if (name_len == 0)
        return PN_WRITE_BAD_HEADER;
    /* AND the classes together and test once: no branch per byte, and names
     * are short enough that an early exit would not pay. */
    for (size_t i = 0; i < name_len; i++)
        if (!pn_http_is_tchar(name[i]))
            return PN_WRITE_BAD_HEADER;
    /* A CR or LF here would let the application split the response
     * (RFC 9110 §5.5: field values never contain CR, LF or NUL); other CTLs
     * and DEL are refused as well, as the request parser does. */
    size_t i = 0;
    /* Eight bytes at a time: values are mostly long runs of plain ASCII.
     * A word that may hold a byte below 0x20 or a DEL goes to the exact
     * per-byte check (HTAB lands there too and is accepted by it). */
    for (; i + 8 <= value_len; i += 8) {
        uint64_t w;
        memcpy(&w, value + i, 8);
        if (swar_has_less(w, 0x20) | swar_has_byte(w, 0x7f)) {
            for (size_t j = i; j < i + 8; j++)
                if (!pn_http_is(value[j], PN_HTTP_VALUE))
                    return PN_WRITE_BAD_HEADER;
        }
    }
    for (; i < value_len; i++)
        if (!pn_http_is(value[i], PN_HTTP_VALUE))
            return PN_WRITE_BAD_HEADER;
    return PN_WRITE_OK;
}

/* ---- number formatting ---------------------------------------------- */

/* Write v in lowercase hex at p; returns the number of bytes (1..16). */
static size_t put_hex(char *p, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = 1;
    while (n < 16 && (v >> (4 * n)) != 0)
        n++;
    for (size_t i = 0; i < n; i++)
        p[i] = digits[(v >> (4 * (n - 1 - i))) & 0xf];
    return n;
}

/* ---- response head -------------------------------------------------- */

/* pn_buf_reserve is out of line; the common case (room already there) should
 * cost one compare. */
static inline int reserve(pn_buf *out, size_t need)
{
    return pn_buf_space(out) >= need ? 0 : pn_buf_reserve(out, need);
}

static int status_has_no_body(int status)
{
    /* RFC 9110 §6.4.1: 1xx, 204 and 304 never carry content. */
    return status < 200 || status == 204 || status == 304;
}

int pn_http1_resp_init(pn_http1_response *r, int status, int version_minor, unsigned flags)
{
    if (status < 200 || status > 599)
        return PN_WRITE_BAD_STATUS;
    r->status = status;
    r->version_minor = version_minor;
    r->flags = flags & (PN_RESP_HEAD_REQUEST | PN_RESP_KEEP_ALIVE | PN_RESP_CLOSE);
    if ((flags & PN_RESP_HEAD_REQUEST) || status_has_no_body(status))
        r->flags |= PN_RESP_NO_BODY;
    r->content_length = 0;
    r->body_sent = 0;
    return PN_WRITE_OK;
}

int pn_http1_resp_start(pn_buf *out, pn_http1_response *r)
{
    if (r->status < 100 || r->status > 599)
        return PN_WRITE_BAD_STATUS;
    return write_status_line(out, r->status) ? PN_WRITE_NOMEM : PN_WRITE_OK;
}

/* Write "name: value\r\n" at p (space reserved); returns the end. */
static char *put_field(char *p, const char *name, size_t name_len, const char *value,
                       size_t value_len)
{
    p = pn_http_put(p, name, name_len);
    PUT_LIT(p, ": ");
    p = pn_http_put(p, value, value_len);
    PUT_LIT(p, "\r\n");
    return p;
}

/* Append "name: value\r\n" as given. */
static int append_field(pn_buf *out, const char *name, size_t name_len, const char *value,
                        size_t value_len)
{
    size_t need = name_len + value_len + sizeof(": \r\n") - 1;
    if (reserve(out, need))
        return PN_WRITE_NOMEM;
    put_field(pn_buf_tail(out), name, name_len, value, value_len);
    out->len += need;
    return PN_WRITE_OK;
}

int pn_http1_resp_header(pn_buf *out, pn_http1_response *r, const char *name, size_t name_len,
                         const char *value, size_t value_len)
{
    if (pn_http1_check_header(name, name_len, value, value_len))
        return PN_WRITE_BAD_HEADER;

    /* Dispatch on length first: most application headers (content-type,
     * cache-control, ...) fall through after one switch and no compare. */
    switch (name_len) {
    case sizeof("content-length") - 1:
        if (pn_http_ieq(name, name_len, PN_STRLIT("content-length"))) {
            uint64_t cl;
            if (pn_http_parse_u64(value, value_len, &cl))
                return PN_WRITE_BAD_LENGTH;
            if (r->flags & PN_RESP_HAS_CL) {
                /* RFC 9110 §8.6: several identical values may be folded to
                 * one; differing values make the framing undefined. */
                if (cl != r->content_length)
                    return PN_WRITE_BAD_LENGTH;
                return PN_WRITE_OK;
            }
            /* 1xx and 204 must not carry Content-Length (RFC 9110 §8.6).
             * For 304 and HEAD it describes the GET representation, so it
             * passes through although no payload follows (§8.6, §9.3.2). */
            if (r->status < 200 || r->status == 204)
                return PN_WRITE_OK;
            int rc = append_field(out, name, name_len, value, value_len);
            if (rc)
                return rc;
            r->content_length = cl;
            r->flags |= PN_RESP_HAS_CL;
            return PN_WRITE_OK;
        }
        break;
    case sizeof("transfer-encoding") - 1:
        /* The server owns message framing (RFC 9112 §6.1): the app's
         * Transfer-Encoding is never forwarded; finish_head decides. */
        if (pn_http_ieq(name, name_len, PN_STRLIT("transfer-encoding")))
            return PN_WRITE_OK;
        break;
    case sizeof("connection") - 1:
        if (pn_http_ieq(name, name_len, PN_STRLIT("connection"))) {
            int rc = append_field(out, name, name_len, value, value_len);
            if (rc)
                return rc;
            r->flags |= PN_RESP_APP_CONNECTION;
            /* RFC 9110 §7.6.1: connection options are case-insensitive
             * tokens in a comma-separated list. */
            if (pn_http_list_has(value, value_len, PN_STRLIT("close")))
                r->flags |= PN_RESP_CLOSE | PN_RESP_APP_CLOSE;
            return PN_WRITE_OK;
        }
        break;
    case sizeof("date") - 1:
        if (pn_http_ieq(name, name_len, PN_STRLIT("date")))
            r->flags |= PN_RESP_APP_DATE;
        break;
    case sizeof("server") - 1:
        if (pn_http_ieq(name, name_len, PN_STRLIT("server")))
            r->flags |= PN_RESP_APP_SERVER;
        break;
    }
    /* Note that the flags above are set before the append: on NOMEM the
     * response is abandoned anyway. */
    return append_field(out, name, name_len, value, value_len);
}

void pn_http1_resp_forget_length(pn_http1_response *r)
{
    r->flags &= ~(unsigned)PN_RESP_HAS_CL;
    r->content_length = 0;
}

int pn_http1_resp_finish_head(pn_buf *out, pn_http1_response *r, const pn_http1_head_opts *opts,
                              int64_t known_body_len)
{
    const char *date = opts ? opts->date : NULL;
    const char *server = opts ? opts->server : NULL;
    size_t date_len = (date && !(r->flags & PN_RESP_APP_DATE)) ? strlen(date) : 0;
    size_t server_len = (server && !(r->flags & PN_RESP_APP_SERVER)) ? strlen(server) : 0;
    unsigned flags = r->flags;

    if (!(flags & PN_RESP_KEEP_ALIVE))
        flags |= PN_RESP_CLOSE;

    /* Worst case: Content-Length (16 + 20 + 2) or Transfer-Encoding (28),
     * Connection (24), Date/Server prefixes (6 + 8 + 4), final CRLF (2). */
    size_t need = 96 + date_len + server_len;
    if (reserve(out, need))
        return PN_WRITE_NOMEM;
    char *start = pn_buf_tail(out), *p = start;

    /* Framing, RFC 9112 §6.3.  A 1xx/204/304 response has no body and no
     * length header of ours; a HEAD response states the length GET would
     * have sent when it is known (RFC 9110 §9.3.2). */
    if (flags & PN_RESP_HAS_CL) {
        /* The application's header is already written. */
    } else if (known_body_len >= 0 && !status_has_no_body(r->status)) {
        PUT_LIT(p, "Content-Length: ");
        p += pn_http_put_u64(p, (uint64_t)known_body_len);
        PUT_LIT(p, "\r\n");
        r->content_length = (uint64_t)known_body_len;
        flags |= PN_RESP_HAS_CL;
    } else if (!(flags & PN_RESP_NO_BODY)) {
        if (r->version_minor >= 1) {
            PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
            flags |= PN_RESP_CHUNKED;
        } else {
            /* HTTP/1.0 has no chunked coding (RFC 9112 §7): the body ends
             * when the connection closes (§6.3 rule 8). */
            flags |= PN_RESP_CLOSE;
        }
    }

    /* RFC 9112 §9.6: a server that is going to close SHOULD say so.  When
     * the app's own Connection header already carries "close", a second one
     * would only repeat it.  A persistent HTTP/1.0 exchange needs an
     * explicit keep-alive or the client assumes close (RFC 9112 §9.3). */
    if (flags & PN_RESP_CLOSE) {
        if (!(flags & PN_RESP_APP_CLOSE))
            PUT_LIT(p, "Connection: close\r\n");
    } else if (r->version_minor == 0 && !(flags & PN_RESP_APP_CONNECTION)) {
        PUT_LIT(p, "Connection: keep-alive\r\n");
    }

    if (date_len)
        p = put_field(p, PN_STRLIT("Date"), date, date_len);
    if (server_len)
        p = put_field(p, PN_STRLIT("Server"), server, server_len);
    PUT_LIT(p, "\r\n");

    out->len += (size_t)(p - start);
    r->flags = flags | PN_RESP_HEAD_DONE;
    return PN_WRITE_OK;
}

/* ---- body framing --------------------------------------------------- */

int pn_http1_resp_body_frame(pn_http1_response *r, size_t len, int final, pn_http1_frame *f)
{
    f->prefix_len = 0;
    f->suffix_len = 0;
    f->send_len = 0;

    unsigned flags = r->flags;
    /* Anything after the final piece would corrupt the next response on a
     * persistent connection. */
    if (flags & PN_RESP_FINISHED)
        return len ? PN_WRITE_TOO_MUCH : PN_WRITE_OK;

    if (flags & PN_RESP_NO_BODY) {
        /* HEAD/1xx/204/304: payload is swallowed (RFC 9110 §6.4.1). */
        if (final)
            r->flags = flags | PN_RESP_FINISHED;
        return PN_WRITE_OK;
    }

    if (flags & PN_RESP_HAS_CL) {
        /* Never send more than declared (RFC 9112 §6.3): the extra bytes
         * would be read as the start of the next response. */
        if (len > r->content_length - r->body_sent) {
            r->flags = flags | PN_RESP_CLOSE;
            return PN_WRITE_TOO_MUCH;
        }
        r->body_sent += len;
        f->send_len = len;
        if (!final)
            return PN_WRITE_OK;
        if (r->body_sent != r->content_length) {
            /* The client can only detect the short body by the close. */
            r->flags = flags | PN_RESP_FINISHED | PN_RESP_CLOSE;
            return PN_WRITE_TOO_LITTLE;
        }
        r->flags = flags | PN_RESP_FINISHED;
        return PN_WRITE_OK;
    }

    r->body_sent += len;
    f->send_len = len;
    if (flags & PN_RESP_CHUNKED) {
        /* chunk = chunk-size CRLF chunk-data CRLF; last-chunk = "0" CRLF,
         * then the (empty) trailer section and CRLF (RFC 9112 §7.1).  An
         * empty non-final piece must not emit "0\r\n": that would end the
         * body early. */
        char *s = f->suffix;
        if (len > 0) {
            char *q = f->prefix;
            q += put_hex(q, (uint64_t)len);
            PUT_LIT(q, "\r\n");
            f->prefix_len = (size_t)(q - f->prefix);
            PUT_LIT(s, "\r\n");
        }
        if (final)
            PUT_LIT(s, "0\r\n\r\n");
        f->suffix_len = (size_t)(s - f->suffix);
    }
    /* Close-delimited (HTTP/1.0 without length): no framing at all. */
    if (final)
        r->flags = flags | PN_RESP_FINISHED;
    return PN_WRITE_OK;
}

/* ---- trailers ------------------------------------------------------- */

int pn_http1_accepts_trailers(const pn_http1_request *req)
{
    if (req->version_minor < 1)
        return 0; /* no chunked coding, so no trailer section (RFC 9112 §7) */
    for (size_t i = 0; i < req->num_headers; i++) {
        const pn_http1_header *h = &req->headers[i];
        if (!pn_http_ieq(h->name, h->name_len, PN_STRLIT("te")))
            continue;
        size_t pos = 0, el_len;
        const char *el;
        while (pn_http_list_next(h->value, h->value_len, &pos, &el, &el_len)) {
            /* t-codings = "trailers" / ( transfer-coding [ weight ] ): the
             * token ends at OWS or ';'. */
            size_t t = 0;
            while (t < el_len && el[t] != ';' && el[t] != ' ' && el[t] != '\t')
                t++;
            if (pn_http_ieq(el, t, PN_STRLIT("trailers")))
                return 1;
        }
    }
    return 0;
}

/* RFC 9110 §6.5.1; the list and its grouping are in the header. */
static const struct {
    const char *name;
    unsigned char len;
} trailer_forbidden[] = {
#define F(s)                                                                                       \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
    F("content-length"), F("transfer-encoding"), F("trailer"),          F("te"),
    F("connection"),     F("keep-alive"),        F("upgrade"),          F("host"),
    F("location"),       F("retry-after"),       F("authorization"),    F("www-authenticate"),
    F("set-cookie"),     F("cache-control"),     F("expires"),          F("date"),
    F("vary"),           F("warning"),           F("content-encoding"), F("content-type"),
    F("content-range"),
#undef F
};

int pn_http1_trailer_forbidden(const char *name, size_t name_len)
{
    if (name_len > 6 && pn_http_ieq(name, 6, PN_STRLIT("proxy-")))
        return 1;
    for (size_t i = 0; i < sizeof(trailer_forbidden) / sizeof(trailer_forbidden[0]); i++)
        if (pn_http_ieq(name, name_len, trailer_forbidden[i].name, trailer_forbidden[i].len))
            return 1;
    return 0;
}

int pn_http1_resp_trailers(pn_buf *out, pn_http1_response *r, const char *fields, size_t len)
{
    unsigned flags = r->flags;
    if ((flags & PN_RESP_FINISHED) || !(flags & PN_RESP_CHUNKED)) {
        /* No trailer section to write: end the body as a final empty piece
         * would (which writes nothing when the body is not chunked). */
        pn_http1_frame f;
        return pn_http1_resp_body_frame(r, 0, 1, &f);
    }
    /* last-chunk, trailer-section, CRLF (RFC 9112 §7.1). */
    if (reserve(out, len + sizeof("0\r\n\r\n") - 1))
        return PN_WRITE_NOMEM;
    char *start = pn_buf_tail(out), *p = start;
    PUT_LIT(p, "0\r\n");
    const char *end = fields + len;
    for (const char *line = fields; line < end;) {
        const char *lf = memchr(line, '\n', (size_t)(end - line));
        const char *next = lf ? lf + 1 : end;
        const char *colon = memchr(line, ':', (size_t)(next - line));
        if (lf != NULL && lf > line && lf[-1] == '\r' && colon != NULL && colon > line &&
            !pn_http1_trailer_forbidden(line, (size_t)(colon - line)))
            p = pn_http_put(p, line, (size_t)(next - line));
        line = next;
    }
    PUT_LIT(p, "\r\n");
    out->len += (size_t)(p - start);
    r->flags = flags | PN_RESP_FINISHED;
    return PN_WRITE_OK;
}

/* ---- server-made responses ------------------------------------------ */

int pn_http1_write_simple(pn_buf *out, int status, const pn_http1_head_opts *opts, int close,
                          const char *body)
{
    return pn_http1_write_simple_field(out, status, opts, close, body, NULL, 0, NULL, 0);
}

int pn_http1_write_simple_field(pn_buf *out, int status, const pn_http1_head_opts *opts, int close,
                                const char *body, const char *name, size_t name_len,
                                const char *value, size_t value_len)
{
    if (status < 200 || status > 599)
        return PN_WRITE_BAD_STATUS;
    const status_entry *e = &status_table[status - 100];
    const char *date = opts ? opts->date : NULL;
    const char *server = opts ? opts->server : NULL;
    size_t date_len = date ? strlen(date) : 0;
    size_t server_len = server ? strlen(server) : 0;
    size_t reason_len = e->line ? (size_t)e->line_len - STATUS_LINE_BARE : 0;
    size_t body_len = body ? strlen(body) : reason_len + 1;

    /* Status line (bare + reason), Content-Type (41), Content-Length (38),
     * Connection (19), Date/Server prefixes and CRLFs (18), final CRLF. */
    size_t field_len = name ? name_len + value_len + 4 : 0;
    size_t need =
        STATUS_LINE_BARE + reason_len + 128 + date_len + server_len + field_len + body_len;
    if (reserve(out, need))
        return PN_WRITE_NOMEM;
    if (write_status_line(out, status))
        return PN_WRITE_NOMEM; /* cannot happen: space was reserved */
    char *start = pn_buf_tail(out), *p = start;
    if (date)
        p = put_field(p, PN_STRLIT("Date"), date, date_len);
    if (server)
        p = put_field(p, PN_STRLIT("Server"), server, server_len);
    if (name)
        p = put_field(p, name, name_len, value, value_len);
    PUT_LIT(p, "Content-Type: text/plain; charset=utf-8\r\n");
    PUT_LIT(p, "Content-Length: ");
    p += pn_http_put_u64(p, body_len);
    PUT_LIT(p, "\r\n");
    if (close)
        PUT_LIT(p, "Connection: close\r\n");
    PUT_LIT(p, "\r\n");
    if (body) {
        p = pn_http_put(p, body, body_len);
    } else {
        p = pn_http_put(p, e->reason ? e->reason : "", reason_len);
        *p++ = '\n';
    }
    out->len += (size_t)(p - start);
    return PN_WRITE_OK;
}

int pn_http1_write_continue(pn_buf *out)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    return pn_buf_append(out, line, sizeof(line) - 1) ? PN_WRITE_NOMEM : PN_WRITE_OK;
}

/* ---- Date cache ----------------------------------------------------- */

const char *pn_date_get(pn_date_cache *c, time_t now)
{
    /* text[0] == 0 marks a fresh (zeroed) cache, so now == 0 still formats. */
    if (c->sec == now && c->text[0] != '\0')
        return c->text;
    pn_http_date_format(c->text, (int64_t)now); /* IMF-fixdate, never the locale's */
    c->sec = now;
    return c->text;
}
