/*
 * pn_slab.c — fixed-size objects in mmap'ed chunks (pn_slab.h).
 *
 * A chunk is 64 KiB: its header, then slots; each slot starts with a
 * pointer to its chunk (so freeing finds the chunk without a search),
 * followed by the object.  A chunk with a free slot is on the slab's
 * partial list; the free slots of a chunk form a list through their
 * object bytes.  The last object freed unmaps its chunk.
 */
#include "pn_slab.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_VIA_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_VIA_MALLOC 1
#endif
#endif

#define CHUNK_BYTES (64u * 1024u)
#define ALIGN 16u

struct pn_slab_chunk {
    pn_slab_chunk *prev, *next; /* on the partial list */
    void *free;                 /* first free object */
    size_t used;                /* objects handed out */
    size_t carved;              /* slots handed out at least once */
    int listed;                 /* on the partial list */
};

static size_t header_bytes(void)
{
    return (sizeof(pn_slab_chunk) + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

void pn_slab_init(pn_slab *s, size_t size)
{
    memset(s, 0, sizeof(*s));
    size_t obj = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    s->slot = ALIGN + obj; /* the chunk pointer, padded to keep the object aligned */
    s->per_chunk = (CHUNK_BYTES - header_bytes()) / s->slot;
}

static void list_add(pn_slab *s, pn_slab_chunk *c)
{
    c->prev = NULL;
    c->next = s->partial;
    if (s->partial)
        s->partial->prev = c;
    s->partial = c;
    c->listed = 1;
}

static void list_del(pn_slab *s, pn_slab_chunk *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->partial = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->listed = 0;
}

void *pn_slab_alloc(pn_slab *s)
{
    if (s->per_chunk == 0) {
        errno = EINVAL;
        return NULL;
    }
#ifdef SLAB_VIA_MALLOC
    return calloc(1, s->slot - ALIGN);
#endif
    pn_slab_chunk *c = s->partial;
    if (c == NULL) {
        void *m =
            mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        c = m; /* zero-filled by the kernel */
        s->chunks++;
        list_add(s, c);
    }
    char *slot;
    if (c->free != NULL) {
        char *obj = c->free;
        memcpy(&c->free, obj, sizeof(void *));
        slot = obj - ALIGN;
    } else {
        slot = (char *)c + header_bytes() + c->carved * s->slot;
        c->carved++;
    }
    c->used++;
    if (s->empty == c)
        s->empty = NULL;
    if (c->used == s->per_chunk)
        list_del(s, c);
    memcpy(slot, &c, sizeof(c));
    void *obj = slot + ALIGN;
    memset(obj, 0, s->slot - ALIGN);
    return obj;
}

void pn_slab_free(pn_slab *s, void *p)
{
    if (p == NULL)
        return;
#ifdef SLAB_VIA_MALLOC
    (void)s;
    free(p);
    return;
#endif
    pn_slab_chunk *c;
    memcpy(&c, (char *)p - ALIGN, sizeof(c));
    memcpy(p, &c->free, sizeof(void *));
    c->free = p;
    c->used--;
    if (!c->listed)
        list_add(s, c);
    if (c->used == 0) {
        if (s->empty == NULL) {
            s->empty = c; /* kept: the next connection needs no mmap */
            return;
        }
        list_del(s, c);
        munmap(c, CHUNK_BYTES);
        s->chunks--;
    }
}

void pn_slab_destroy(pn_slab *s)
{
    /* Every object is freed: only the kept empty chunk is still mapped. */
    if (s->empty != NULL) {
        munmap(s->empty, CHUNK_BYTES);
        s->chunks--;
    }
    s->partial = s->empty = NULL;
}
