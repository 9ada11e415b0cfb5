/*
 * pn_http_token — the lexical toolkit; see pn_http_token.h.  The per-byte
 * helpers are static inline in the header; this file holds the ones that
 * run once per field, off the request parser's path.
 */
#include "pn_http_token.h"

int pn_http_list_has(const char *v, size_t n, const char *tok, size_t tok_len)
{
    size_t pos = 0;
    const char *el;
    size_t len;
    while (pn_http_list_next(v, n, &pos, &el, &len))
        if (pn_http_ieq(el, len, tok, tok_len))
            return 1;
    return 0;
}
