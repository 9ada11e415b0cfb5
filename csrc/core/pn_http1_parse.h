/*
 * pn_http1_parse — strict, incremental HTTP/1.1 request parser (RFC 9112).
 *
 * Protocol core: plain C, no Python.h.  Reusable by any C program.
 *
 * Ownership and threads: a pn_http1_parser and a pn_http1_body are owned by
 * one connection, and so by the one worker thread that owns the connection.
 * Nothing here allocates or keeps global state; all functions are re-entrant.
 *
 * Two stages per request:
 *
 *   1. pn_http1_parse_head() is called each time new bytes arrive.  It scans
 *      only the bytes it has not seen (the scan position lives in the parser),
 *      so a head trickled one byte at a time costs O(n) overall.  Once the
 *      blank line ending the head is found it parses the head once and fills
 *      a pn_http1_request whose slices point INTO the caller's buffer (no
 *      header byte is copied).  The slices are valid as long as the caller
 *      does not move or overwrite those bytes.
 *
 *   2. The body is decoded with pn_http1_body_*(): Content-Length or chunked
 *      (with chunk extensions and trailers, both validated then discarded).
 *
 * Policy (strict, like nginx; see docs/http1-policy.md): CRLF only (a bare LF
 * or bare CR anywhere in the head is an error), no obs-fold, no whitespace
 * between field name and colon, field names must be tokens, field values
 * must not contain NUL/CTL (HTAB allowed), method must be a token, target
 * must be origin-form, absolute-form, authority-form (CONNECT only) or "*"
 * (OPTIONS only) with no CTL/space, version must be exactly "HTTP/1.0" or
 * "HTTP/1.1" (other HTTP/x.y → 505), HTTP/1.1 requires exactly one Host,
 * duplicate or malformed Content-Length is an error, Content-Length together
 * with Transfer-Encoding is an error, any Transfer-Encoding other than a
 * single final "chunked" → 501 (unknown coding) or 400 (chunked not last),
 * Transfer-Encoding in an HTTP/1.0 request → 400.
 */
#ifndef PN_HTTP1_PARSE_H
#define PN_HTTP1_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Return codes.  Negative values are errors; the caller answers with
 * pn_http1_parser.error_status (400, 413, 414, 431, 501, 505) and closes. */
enum {
    PN_HTTP1_OK = 0,         /* head complete (or body step produced data) */
    PN_HTTP1_INCOMPLETE = 1, /* need more bytes */
    PN_HTTP1_ERROR = -1,     /* see error_status / error_reason */
};

typedef struct pn_http1_limits {
    size_t max_request_line; /* bytes of the request line without CRLF → 414 */
    size_t max_head;         /* bytes of the whole head incl. final CRLFCRLF → 431 */
    size_t max_headers;      /* number of header fields → 431 */
    uint64_t max_body;       /* declared Content-Length above this → 413; 0 = no limit */
} pn_http1_limits;

typedef struct pn_http1_header {
    const char *name; /* as sent (case preserved) */
    size_t name_len;
    const char *value; /* leading/trailing OWS stripped */
    size_t value_len;
} pn_http1_header;

/* Body framing decided from the head (RFC 9112 §6.3). */
enum {
    PN_BODY_NONE = 0,    /* no body (no CL, no TE), or Content-Length: 0 */
    PN_BODY_LENGTH = 1,  /* Content-Length: n, n > 0 */
    PN_BODY_CHUNKED = 2, /* Transfer-Encoding: chunked */
};

/* Request flags. */
enum {
    PN_REQ_KEEP_ALIVE = 1u << 0,      /* persistent per version + Connection header */
    PN_REQ_EXPECT_CONTINUE = 1u << 1, /* Expect: 100-continue (case-insensitive) */
    PN_REQ_UPGRADE = 1u << 2,         /* Connection: upgrade + Upgrade header present */
    PN_REQ_HEAD = 1u << 3,            /* method is HEAD */
    /* The head has a TE field (any value): only then can
     * pn_http1_accepts_trailers() say yes, so callers skip its scan. */
    PN_REQ_TE = 1u << 4,
};

typedef struct pn_http1_request {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len; /* the raw request-target */
    const char *path;
    size_t path_len; /* target up to '?' (still percent-encoded);
                        for absolute-form, the path part
                        ("/" when empty) */
    const char *query;
    size_t query_len;         /* after '?', without '?'; len 0 if none */
    int version_minor;        /* 0 or 1 (HTTP/1.x) */
    unsigned flags;           /* PN_REQ_* */
    int body_kind;            /* PN_BODY_* */
    uint64_t content_length;  /* when body_kind == PN_BODY_LENGTH */
    pn_http1_header *headers; /* caller-provided array (see parser) */
    size_t num_headers;
    size_t head_len; /* bytes of the head incl. the final CRLF CRLF */
} pn_http1_request;

typedef struct pn_http1_parser {
    /* configuration, set by pn_http1_parser_init */
    pn_http1_limits limits;
    pn_http1_header *header_space; /* array of limits.max_headers entries, owned by caller */
    /* scan state (private) */
    size_t scanned;    /* bytes of the current head already scanned */
    size_t line_start; /* offset where the current line starts */
    size_t nlines;     /* lines seen so far in this head */
    /* error details after PN_HTTP1_ERROR */
    int error_status;         /* HTTP status to answer with */
    const char *error_reason; /* static string, for logs */
} pn_http1_parser;

void pn_http1_parser_init(pn_http1_parser *p, const pn_http1_limits *lim,
                          pn_http1_header *header_space);
/* Forget scan state; call after each complete head (before the next request). */
void pn_http1_parser_reset(pn_http1_parser *p);

/* Parse the head at buf[0..len).  buf must be the same bytes as on earlier
 * calls for this head, possibly extended.  Leading empty lines (CRLF) before
 * the request line are ignored, as RFC 9112 §2.2 allows (at most a few).
 *
 * Returns PN_HTTP1_OK with *req filled (req->head_len bytes belong to the
 * head), PN_HTTP1_INCOMPLETE, or PN_HTTP1_ERROR.  Limits are enforced as soon
 * as they are exceeded, even before the head is complete (an over-long request
 * line gets 414 without waiting for its end). */
int pn_http1_parse_head(pn_http1_parser *p, const char *buf, size_t len, pn_http1_request *req);

/* After pn_http1_parse_head returned PN_HTTP1_ERROR for buf[0..len): the
 * request line of that head, when it arrived whole and valid, so the access
 * line of the error can name the method and target (a 413 or 431 comes
 * after the request line was read).  Sets req->method, target and
 * version_minor and returns PN_HTTP1_OK, or returns another status (the
 * line is incomplete or invalid) leaving them unspecified.  Only the error
 * path calls it: it scans the line again rather than make the parser keep
 * state for it. */
int pn_http1_parse_request_line(const char *buf, size_t len, pn_http1_request *req);

/* Case-insensitive lookup of the first header named `name` (lowercase). */
const pn_http1_header *pn_http1_find_header(const pn_http1_request *req, const char *name,
                                            size_t name_len);

/* ---- body decoding --------------------------------------------------- */

typedef struct pn_http1_body {
    int kind;             /* PN_BODY_* */
    uint64_t remaining;   /* LENGTH: bytes left; CHUNKED: bytes left in chunk */
    uint64_t total;       /* decoded bytes delivered so far */
    uint64_t max_body;    /* 0 = unlimited; exceeded → error 413 */
    int state;            /* private chunked state */
    size_t line_len;      /* private: bytes in current chunk-size/trailer line */
    size_t trailer_bytes; /* private */
    size_t max_line;      /* max chunk-size line incl. extensions (default 4096) */
    size_t max_trailers;  /* max bytes of trailer section */
    int done;             /* set once the body is complete */
    int error_status;
    const char *error_reason;
} pn_http1_body;

void pn_http1_body_init(pn_http1_body *b, const pn_http1_request *req, uint64_t max_body,
                        size_t max_trailers);

/* Decode the next piece of body from in[0..len).
 *
 * Sets *consumed to the number of input bytes used (always ≤ len) and, when
 * data is available, points *data, *data_len at decoded payload bytes inside
 * `in` (no copy; chunk framing is skipped, not removed).
 *
 * Returns:
 *   PN_HTTP1_OK          *data_len > 0 bytes of payload; call again with the
 *                        rest of the input to continue.
 *   PN_HTTP1_INCOMPLETE  all of the input was consumed (framing only, or
 *                        nothing) and more is needed; *data_len == 0.
 *   PN_BODY_DONE         the body is complete; *consumed includes the final
 *                        framing (last-chunk, trailers, CRLF).  *data_len == 0.
 *   PN_HTTP1_ERROR       malformed framing or body over max_body; see
 *                        error_status (400 or 413) and close the connection.
 */
enum { PN_BODY_DONE = 2 };
/* pn_http1_body_init sets done=1 at once for PN_BODY_NONE. */
int pn_http1_body_next(pn_http1_body *b, const char *in, size_t len, size_t *consumed,
                       const char **data, size_t *data_len);

static inline int pn_http1_body_done(const pn_http1_body *b)
{
    return b->done;
}

#endif
