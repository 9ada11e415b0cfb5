/*
 * pn_log — access-log line formatting.
 *
 * Protocol core: plain C, no Python.h.  The worker owns the output pn_buf
 * and flushes it to fd 2 with write(2) at the end of each event batch, so
 * one line costs a few hundred nanoseconds and no syscall of its own.
 *
 * Line format (one per response):
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

/* Both functions return 0, or -ENOMEM (nothing appended).  Caller: the
 * worker thread that owns `out`. */

/* Append `s` escaped as described above. */
int pn_log_escape(pn_buf *out, const char *s, size_t n);

/* Append one access-log line.  `client` is e.g. "127.0.0.1:54321" or "unix"
 * (already safe: produced by the server). duration_ns is formatted as
 * milliseconds with three decimals. */
int pn_log_access(pn_buf *out, const char *client, size_t client_len, const char *method,
                  size_t method_len, const char *target, size_t target_len, int version_minor,
                  int status, uint64_t bytes, uint64_t duration_ns);

/* Dotted-quad text of an IPv4 address (network byte order) into out, which
 * must hold 16 bytes; NUL-terminated; returns the length. */
size_t pn_log_format_ipv4(char *out, const unsigned char addr[4]);

#endif
