/*
 * pn_slab — fixed-size objects carved from page-sized chunks of their own.
 *
 * Runtime layer: plain C, no Python.h.  A worker's connections (pn_conn)
 * live here rather than in the C heap the interpreter also allocates from:
 * interleaved with a request's short-lived Python objects, each long-lived
 * connection would pin the holes those leave, and an idle connection would
 * cost twice its size in resident memory (measured: 1.6 KiB instead of
 * 0.7 with one request served per connection; issue 17).  Chunks come from
 * mmap and go back to the system when their last object is freed, so a
 * spike of connections does not stay resident after it (one empty chunk
 * is kept, so a connection coming and going costs no mmap).  Under
 * AddressSanitizer objects come from calloc instead, so that use after
 * free stays detectable.
 *
 * Threads and ownership: a pn_slab belongs to one owner (a worker) and is
 * used on its thread only; nothing is shared.
 */
#ifndef PN_SLAB_H
#define PN_SLAB_H

#include <stddef.h>

typedef struct pn_slab_chunk pn_slab_chunk;

typedef struct pn_slab {
    size_t slot;            /* bytes per slot: the object and its chunk pointer */
    size_t per_chunk;       /* slots per chunk */
    pn_slab_chunk *partial; /* chunks with a free slot (doubly linked) */
    pn_slab_chunk *empty;   /* one chunk with no object kept mapped, or NULL */
    size_t chunks;          /* chunks mapped */
} pn_slab;

/* An empty slab of objects of `size` bytes (aligned to 16). */
void pn_slab_init(pn_slab *s, size_t size);
/* A zeroed object, or NULL with errno set. */
void *pn_slab_alloc(pn_slab *s);
/* Give back an object of this slab (NULL: no-op). */
void pn_slab_free(pn_slab *s, void *p);
/* Unmap every chunk; the objects must all be freed already. */
void pn_slab_destroy(pn_slab *s);

#endif
