/*
 * pn_access_log — a worker's access log (private to the runtime and the
 * bridge's worker type; the line formats are pn_log.h's).
 *
 * Each worker owns one pn_alog, embedded in its pn_worker: a buffer of
 * formatted lines, the clock cache of the time formats, and where the lines
 * go.  Lines are appended on the worker's thread and flushed at the end of
 * each poll (or at once outside a poll), either
 *   - with write(2) to `fd`: 2 (stderr) or the --access-log-file descriptor.
 *     That descriptor is shared by every worker of the process and never
 *     changes NUMBER: a reopen (SIGUSR1, logrotate) opens the new file and
 *     dup2()s it over the number, so a worker's write goes to the old file
 *     or the new one, never to a closed or reused fd, and no worker state
 *     changes (nothing shared and mutable);
 *   - or to `sink` (the bridge's: the `pounce.access` logger had handlers),
 *     called with the buffered lines on the worker's thread, from inside
 *     the poll or the bridge call that logged.
 *
 * Threads: everything here belongs to the worker's thread.
 */
#ifndef PN_ACCESS_LOG_H
#define PN_ACCESS_LOG_H

#include <stddef.h>

#include "pn_buf.h"
#include "pn_http1_parse.h"
#include "pn_log.h"

typedef void (*pn_alog_sink)(void *ctx, const char *lines, size_t len);

typedef struct pn_alog {
    pn_buf buf;         /* formatted lines not yet written */
    int fd;             /* 2, or the --access-log-file descriptor (not owned) */
    int format;         /* PN_LOG_FMT_* */
    long pid;           /* getpid() of the worker's process (json) */
    pn_log_clock clock; /* the time of the current second, formatted */
    pn_alog_sink sink;  /* NULL: write to fd */
    void *sink_ctx;
} pn_alog;

/* Point r->referer and r->user_agent at the request's Referer and
 * User-Agent headers (the first of each), leaving NULL what is absent.
 * Any thread; the slices live as long as req's. */
void pn_access_rec_headers(pn_access_rec *r, const pn_http1_request *req);
/* The record of a request the server answers itself, its head in hand:
 * method, target, version and the headers above from req (the slices live
 * as long as req's), status and bytes as given, everything else zero. */
pn_access_rec pn_access_rec_of(const pn_http1_request *req, int status, uint64_t bytes);

/* Set up with the config's format, writing to stderr. */
void pn_alog_init(pn_alog *a, int format);
/* Write (or hand to the sink) everything buffered, then forget it. */
void pn_alog_flush(pn_alog *a);
/* Flush, then free the buffer. */
void pn_alog_free(pn_alog *a);

#endif
