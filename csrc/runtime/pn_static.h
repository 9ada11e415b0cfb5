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

/* NULL with errno = 0 when cfg->static_mount is empty; NULL with errno set
 * on failure (a DIR that cannot be opened, out of memory). */
pn_static *pn_static_new(const pn_config *cfg);
void pn_static_free(pn_static *s);
/* Called from conn_dispatch before the app: 1 = answered (the connection
 * is queued), 0 = not a static URL. */
int pn_static_answer(pn_static *s, pn_conn *c, const pn_http1_request *req);

#endif
