/*
 * pn_static.h — --static PREFIX=DIR: files served by the worker itself,
 * before the app (docs/static.md).
 *
 * Threads and ownership: a pn_static belongs to one worker and is used only
 * on that worker's thread (created in pn_worker_new, freed in
 * pn_worker_free).  It owns the mounts' directory descriptors and the
 * worker's open-file cache (descriptors, stat results, small bodies); no
 * locks, nothing shared with other workers.  The URL path rules are
 * pn_static_path's, the conditionals and ranges pn_static_eval's, the
 * media types pn_mime's (csrc/core).
 */
#ifndef PN_STATIC_H
#define PN_STATIC_H

#include "pn_config.h"
#include "pn_http1_parse.h"
#include "pn_worker.h"

typedef struct pn_static pn_static;
struct pn_answer; /* pn_worker_int.h */

/* NULL with errno = 0 when cfg->static_mount is empty; NULL with errno set
 * on failure (a DIR that cannot be opened, out of memory). */
pn_static *pn_static_new(const pn_config *cfg);
void pn_static_free(pn_static *s);
/* Called by the worker before the app, whatever the transport (HTTP/1.1's
 * conn_dispatch, an HTTP/2 stream's pn_worker_answer_stream): 0 = not a
 * static URL; 1 = a mount owns it, and *a is its answer (pn_worker_int.h),
 * its head begun in out, which the transport's emitter finishes and sends
 * at once: a's slices point into the cache, valid until the next call. */
int pn_static_answer(pn_static *s, const pn_http1_request *req, struct pn_answer *a, pn_buf *out);

#endif
