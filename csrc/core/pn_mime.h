/*
 * pn_mime — the Content-Type of a static file from its name: a small
 * built-in table of extensions, overridden by the entries of a mime.types
 * file (/etc/mime.types, Debian package media-types).
 *
 * Protocol core: plain C, no Python.h, no global state.  Unlike the rest of
 * the core it allocates: pn_mime_table_new builds the table on the heap.
 * The table is immutable after pn_mime_table_new returns; each worker makes
 * its own and only that worker's thread reads it (nothing is shared, so no
 * locks or atomics).  pn_mime_table_free is called by the same thread when
 * the worker ends.
 *
 * mime.types syntax: one "type ext ext..." per line, separated by spaces or
 * tabs; '#' starts a comment; blank lines and lines without extensions are
 * skipped; an extension listed twice takes the last type (as Python's
 * mimetypes does).  Extensions are matched ignoring ASCII case.
 */
#ifndef PN_MIME_H
#define PN_MIME_H

#include <stddef.h>

typedef struct pn_mime_table pn_mime_table;
/* The built-in table, then the entries of `text` (mime.types syntax: "type ext ext...",
 * '#' comments) over it; text may be NULL.  NULL on out of memory. Immutable after. */
pn_mime_table *pn_mime_table_new(const char *text, size_t len);
void pn_mime_table_free(pn_mime_table *t);
/* The Content-Type for a file name (its last extension, case-insensitive), with
 * "; charset=utf-8" for text/ types and application/javascript; "application/octet-stream" when
 * unknown.  The string lives as long as the table. */
const char *pn_mime_lookup(const pn_mime_table *t, const char *name, size_t len, size_t *out_len);

#endif
