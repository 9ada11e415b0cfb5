/*
 * pn_log — access-log line formatting (--access-log-format).
 *
 * Protocol core: plain C, no Python.h.  The worker owns the output pn_buf
 * and flushes it with write(2) (stderr or --access-log-file) at the end of
 * each event batch (runtime/pn_access_log.h), so one line costs a few
 * hundred nanoseconds and no syscall of its own.
 *
 * The default line format (one per response; common, combined and json
 * below):
 *   127.0.0.1:54321 - "GET /path?q=1 HTTP/1.1" 200 13 0.412ms\n
 * Every byte of the client-supplied method and target that is not printable
 * ASCII (0x20..0x7e), and '"' and '\\', is escaped as \xHH so a request
 * cannot forge log lines or terminal escapes.
 */
#ifndef PN_LOG_H
#define PN_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "pn_buf.h"

/* One access-log record: everything a line of any format may show.  The
 * slices are the caller's and only read during the call.  A field added
 * here is filled where the record is built (pn_http.c, pn_websocket.c,
 * pn_worker.c's early answers), not at every call site of the formatter. */
typedef struct pn_access_rec {
    const char *client; /* "127.0.0.1:54321", "[::1]:80", "unix": made by the server */
    size_t client_len;
    const char *method; /* client-supplied: escaped */
    size_t method_len;
    const char *target; /* client-supplied: escaped */
    size_t target_len;
    int version_minor; /* HTTP/1.x; 2 means HTTP/2 */
    int status;        /* < 0: none was sent ("-") */
    uint64_t bytes;    /* body bytes sent */
    uint64_t duration_ns;
    const char *referer; /* NULL: no Referer header */
    size_t referer_len;
    const char *user_agent; /* NULL: no User-Agent header */
    size_t user_agent_len;
    const char *request_id; /* NULL: none (--request-id off) */
    size_t request_id_len;
    uint64_t time_ns; /* wall clock (CLOCK_REALTIME) at the end; formats with a time only */
    long pid;         /* the worker's process; json only */
} pn_access_rec;

/* --access-log-format, in the order of its choices in pn_settings.def. */
enum {
    PN_LOG_FMT_DEFAULT = 0, /* 127.0.0.1:54321 - "GET / HTTP/1.1" 200 13 0.412ms */
    PN_LOG_FMT_COMMON,   /* NCSA common: 127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1"
                            200 13 */
    PN_LOG_FMT_COMBINED, /* common + "referer" "user-agent" */
    PN_LOG_FMT_JSON,     /* one JSON object per line */
};

/* The formatted time of one second, kept by the caller (one per worker) so
 * a second's lines share one conversion: no strftime per line. */
typedef struct pn_log_clock {
    int64_t sec;  /* the second below describes; -1: none yet */
    char clf[32]; /* "10/Oct/2000:13:55:36 +0000" */
    char iso[24]; /* "2000-10-10T13:55:36" (json adds ".mmmZ") */
} pn_log_clock;

#define PN_LOG_CLOCK_INIT                                                                          \
    {                                                                                              \
        .sec = -1                                                                                  \
    }

/* All return 0, or -ENOMEM (nothing appended).  Caller: the worker thread
 * that owns `out` (and `clk`). */

/* Append `s` escaped as described above. */
int pn_log_escape(pn_buf *out, const char *s, size_t n);

/* Append `s` as the inside of a JSON string (RFC 8259 §7): '"' and '\\'
 * backslash-escaped, control characters and DEL as \u00XX, valid UTF-8
 * copied, and each byte that is not part of valid UTF-8 (a stray
 * continuation byte, an overlong form, a surrogate, past U+10FFFF, a
 * truncated sequence) written as the six characters \\xHH, so the line is
 * always valid JSON and the text matches the other formats' escapes. */
int pn_log_json_escape(pn_buf *out, const char *s, size_t n);

/* Append one line of `format` for `r`, ending in '\n'.  When the record
 * has a request id, the text formats end with it as one more field
 * (quoted, escaped); json always has "request_id" (null when absent).
 * clk: the caller's cache (common, combined, json), or NULL for default. */
int pn_log_format(pn_buf *out, int format, const pn_access_rec *r, pn_log_clock *clk);

/* Today's line (PN_LOG_FMT_DEFAULT), kept for callers with loose fields.
 * `client` is e.g. "127.0.0.1:54321" or "unix" (already safe: produced by
 * the server).  duration_ns is formatted as milliseconds with three
 * decimals. */
int pn_log_access(pn_buf *out, const char *client, size_t client_len, const char *method,
                  size_t method_len, const char *target, size_t target_len, int version_minor,
                  int status, uint64_t bytes, uint64_t duration_ns);

/* Dotted-quad text of an IPv4 address (network byte order) into out, which
 * must hold 16 bytes; NUL-terminated; returns the length. */
size_t pn_log_format_ipv4(char *out, const unsigned char addr[4]);

#endif
