/*
 * pn_static_http — the HTTP pieces of serving a static file: HTTP dates
 * (RFC 9110 §5.6.7), the strong ETag of a file, and the evaluation of a
 * request's conditionals and Range against the file (RFC 9110 §13.2.2,
 * §14.2).
 *
 * Protocol core: plain C, no Python.h, no allocation, no global state, no
 * locale; any thread may call anything here.  Inputs are slices (not
 * NUL-terminated) and are only read inside them; the caller owns every
 * output buffer and struct.
 *
 * pn_static_eval's choices (docs/static.md): several ranges, other units,
 * syntax errors and numbers that overflow make the Range field ignored
 * (200 with the whole file; RFC 9110 §14.2 allows ignoring Range); Range is
 * ignored for HEAD.
 */
#ifndef PN_STATIC_HTTP_H
#define PN_STATIC_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "pn_http1_parse.h" /* pn_http1_header */

#define PN_HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */
/* IMF-fixdate of unix_seconds, NUL-terminated.  Years outside 0..9999 are
 * clamped to that range's ends. */
void pn_http_date_format(char out[PN_HTTP_DATE_LEN + 1], int64_t unix_seconds);
/* IMF-fixdate, RFC 850 and asctime forms (RFC 9110 §5.6.7); 0, or -1 when invalid. */
int pn_http_date_parse(const char *s, size_t n, int64_t *unix_seconds);
#define PN_ETAG_MAX 40
/* '"' hex(mtime_ns) '-' hex(size) '"'; returns its length. */
size_t pn_static_etag(char out[PN_ETAG_MAX], int64_t mtime_ns, uint64_t size);
typedef struct pn_static_meta {
    uint64_t size;
    int64_t mtime; /* seconds */
    const char *etag;
    size_t etag_len;
} pn_static_meta;
typedef struct pn_static_result {
    int status;        /* 200, 206, 304, 412 or 416 */
    uint64_t off, len; /* bytes to send: 200 → 0,size; 206 → the range; else 0,0 */
} pn_static_result;
/* Evaluate the request's conditionals and Range (every field line of each name, names
 * case-insensitive) against the representation m.  is_get: 1 for GET, 0 for HEAD (Range
 * is ignored for HEAD). */
void pn_static_eval(const pn_http1_header *h, size_t nh, int is_get, const pn_static_meta *m,
                    pn_static_result *r);

#endif
