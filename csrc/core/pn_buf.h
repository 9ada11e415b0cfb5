/*
 * pn_buf — a growable byte buffer with a read cursor.
 *
 * Protocol core: plain C, no Python.h.
 *
 * Ownership: a pn_buf is owned by whoever embeds it (a connection, a worker).
 * It is not thread-safe; only the owning worker thread touches it.
 *
 * Layout: [0, off) consumed, [off, len) live data, [len, cap) free space.
 * pn_buf_consume() advances `off`; pn_buf_compact() moves live data to the
 * front.  Pointers into the buffer stay valid until the next call that may
 * grow or compact it (pn_buf_reserve, pn_buf_append*, pn_buf_compact).
 */
#ifndef PN_BUF_H
#define PN_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct pn_buf {
    char *data;
    size_t off; /* start of live data */
    size_t len; /* end of live data */
    size_t cap;
} pn_buf;

/* A string literal and its length, counted by the compiler:
 * pn_buf_append(b, PN_STRLIT("\r\n")).  Never count a length by hand. */
#define PN_STRLIT(s) ("" s), (sizeof(s) - 1) /* "" s: a literal only */

#define PN_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

/* Ensure at least `extra` bytes of free space after `len`.  0 or -ENOMEM. */
int pn_buf_reserve(pn_buf *b, size_t extra);
int pn_buf_append(pn_buf *b, const void *p, size_t n);
int pn_buf_append_str(pn_buf *b, const char *s);
/* Append the decimal form of v. */
int pn_buf_append_u64(pn_buf *b, uint64_t v);

static inline size_t pn_buf_live(const pn_buf *b)
{
    return b->len - b->off;
}
static inline char *pn_buf_head(const pn_buf *b)
{
    return b->data + b->off;
}
static inline char *pn_buf_tail(const pn_buf *b)
{
    return b->data + b->len;
}
static inline size_t pn_buf_space(const pn_buf *b)
{
    return b->cap - b->len;
}

/* Drop n live bytes from the front.  Resets to empty when all is consumed. */
void pn_buf_consume(pn_buf *b, size_t n);
/* Move live data to offset 0. */
void pn_buf_compact(pn_buf *b);
/* Empty the buffer; keep the allocation. */
static inline void pn_buf_clear(pn_buf *b)
{
    b->off = b->len = 0;
}
/* Release memory. */
void pn_buf_free(pn_buf *b);
/* Shrink the allocation to at most `keep` bytes if the buffer is empty
 * (used after a large request so idle keep-alive connections stay small). */
void pn_buf_shrink(pn_buf *b, size_t keep);

#endif
