#include "pn_buf.h"

#include "pn_http_token.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int pn_buf_reserve(pn_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    /* Reclaim consumed space first: cheaper than growing. */
    if (b->off > 0 && b->cap - (b->len - b->off) >= extra) {
        pn_buf_compact(b);
        return 0;
    }
    size_t need = (b->len - b->off) + extra;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return -ENOMEM;
        ncap *= 2;
    }
    if (b->off > 0)
        pn_buf_compact(b);
    char *p = realloc(b->data, ncap);
    if (p == NULL)
        return -ENOMEM;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int pn_buf_append(pn_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = pn_buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int pn_buf_append_str(pn_buf *b, const char *s)
{
    return pn_buf_append(b, s, strlen(s));
}

int pn_buf_append_u64(pn_buf *b, uint64_t v)
{
    char tmp[PN_HTTP_U64_DIGITS];
    return pn_buf_append(b, tmp, pn_http_put_u64(tmp, v));
}

void pn_buf_consume(pn_buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void pn_buf_compact(pn_buf *b)
{
    if (b->off == 0)
        return;
    size_t live = b->len - b->off;
    if (live)
        memmove(b->data, b->data + b->off, live);
    b->off = 0;
    b->len = live;
}

void pn_buf_free(pn_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

void pn_buf_shrink(pn_buf *b, size_t keep)
{
    if (b->len != b->off || b->cap <= keep)
        return;
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
