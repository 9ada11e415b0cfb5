/*
 * pn_mime — see pn_mime.h.
 *
 * The table is one open-addressing hash (linear probing, power-of-two size,
 * at most half full) from lowercased extension to Content-Type, over one
 * string arena that holds both; slots keep offsets into the arena so it can
 * grow while the table is built.  Inserting an extension again replaces its
 * type, which gives both "the file overrides the built-in table" and "the
 * last line of the file wins".
 */
#include "pn_mime.h"

#include "pn_http_token.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXT_MAX 64 /* longer extensions are ignored (no real file type has one) */

typedef struct {
    uint32_t ext;  /* arena offset of the lowercased extension; 0 = empty slot */
    uint32_t type; /* arena offset of the Content-Type (NUL-terminated) */
    uint16_t ext_len;
    uint16_t type_len;
} slot;

struct pn_mime_table {
    slot *slots;
    size_t mask; /* number of slots - 1 */
    size_t used;
    char *arena; /* offset 0 is a dummy byte, so offset 0 can mean "empty" */
    size_t arena_len, arena_cap;
};

/* The built-in table (issue 16): what a site needs even without
 * /etc/mime.types; that file's entries override these. */
static const char builtin[] = "text/html html htm\n"
                              "text/css css\n"
                              "text/javascript js mjs\n"
                              "application/json json map\n"
                              "text/plain txt\n"
                              "application/xml xml\n"
                              "image/svg+xml svg\n"
                              "application/wasm wasm\n"
                              "image/png png\n"
                              "image/jpeg jpg jpeg\n"
                              "image/gif gif\n"
                              "image/webp webp\n"
                              "image/avif avif\n"
                              "image/vnd.microsoft.icon ico\n"
                              "font/woff woff\n"
                              "font/woff2 woff2\n"
                              "font/ttf ttf\n"
                              "font/otf otf\n"
                              "application/pdf pdf\n"
                              "video/mp4 mp4\n"
                              "video/webm webm\n"
                              "audio/mpeg mp3\n"
                              "application/zip zip\n"
                              "application/gzip gz\n";

static const char octet_stream[] = "application/octet-stream";
static const char charset[] = "; charset=utf-8";

static uint64_t hash_lower(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= pn_http_lower((unsigned char)s[i]);
        h *= 1099511628211u;
    }
    return h;
}

/* Append s[0..n), then s2[0..n2), then a NUL to the arena (s lowercased
 * when `lower`); the offset, or 0 when out of memory. */
static uint32_t arena_put(pn_mime_table *t, const char *s, size_t n, const char *s2, size_t n2,
                          int lower)
{
    size_t need = t->arena_len + n + n2 + 1;
    if (need > t->arena_cap) {
        size_t cap = t->arena_cap;
        while (need > cap)
            cap *= 2;
        if (cap > UINT32_MAX)
            return 0;
        char *a = realloc(t->arena, cap);
        if (!a)
            return 0;
        t->arena = a;
        t->arena_cap = cap;
    }
    char *p = t->arena + t->arena_len;
    for (size_t i = 0; i < n; i++)
        p[i] = lower ? (char)pn_http_lower((unsigned char)s[i]) : s[i];
    if (n2)
        memcpy(p + n, s2, n2);
    p[n + n2] = '\0';
    uint32_t off = (uint32_t)t->arena_len;
    t->arena_len = need;
    return off;
}

/* The slot of ext (lowercased in the arena or not), or the empty slot where it would go. */
static slot *find(const pn_mime_table *t, const char *ext, size_t n)
{
    size_t i = (size_t)hash_lower(ext, n) & t->mask;
    for (;; i = (i + 1) & t->mask) {
        slot *s = &t->slots[i];
        if (!s->ext || pn_http_ieq(t->arena + s->ext, s->ext_len, ext, n))
            return s;
    }
}

static int grow(pn_mime_table *t)
{
    size_t n = (t->mask + 1) * 2;
    slot *old = t->slots, *fresh = calloc(n, sizeof(slot));
    if (!fresh)
        return -1;
    size_t old_n = t->mask + 1;
    t->slots = fresh;
    t->mask = n - 1;
    for (size_t i = 0; i < old_n; i++)
        if (old[i].ext)
            *find(t, t->arena + old[i].ext, old[i].ext_len) = old[i];
    free(old);
    return 0;
}

/* "type/subtype" with both parts tokens (RFC 9110 §8.3.1): anything else
 * could put bytes into a response header that do not belong there. */
static int valid_type(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    if (!slash)
        return 0;
    size_t a = (size_t)(slash - s);
    return pn_http_is_token(s, a) && pn_http_is_token(slash + 1, n - a - 1);
}

/* The charset rule: text/... and application/javascript are sent as UTF-8. */
static int wants_charset(const char *s, size_t n)
{
    return pn_http_iprefix(s, n, PN_STRLIT("text/")) ||
           pn_http_ieq(s, n, PN_STRLIT("application/javascript"));
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One word of a line at *i (up to the next space), or 0 at the line's end or a
 * '#' comment. */
static int next_word(const char *s, size_t n, size_t *i, const char **w, size_t *wn)
{
    while (*i < n && is_space(s[*i]))
        (*i)++;
    if (*i >= n || s[*i] == '#')
        return 0;
    size_t b = *i;
    while (*i < n && !is_space(s[*i]))
        (*i)++;
    *w = s + b;
    *wn = *i - b;
    return 1;
}

/* Add the entries of mime.types text; 0, or -1 when out of memory. */
static int add_text(pn_mime_table *t, const char *text, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *line = text + pos, *w, *type;
        size_t n = end - pos, i = 0, wn, type_len;
        pos = end + 1;
        if (!next_word(line, n, &i, &type, &type_len) || !valid_type(type, type_len) ||
            type_len + sizeof(charset) > UINT16_MAX)
            continue;
        uint32_t type_off = 0;
        while (next_word(line, n, &i, &w, &wn)) {
            /* Too long, or never a last extension ("cwl.json", "pcf.Z"): skipped. */
            if (wn > EXT_MAX || memchr(w, '.', wn) || memchr(w, '/', wn))
                continue;
            if (!type_off) { /* stored once per line, when it has an extension */
                size_t cs = wants_charset(type, type_len) ? sizeof(charset) - 1 : 0;
                type_off = arena_put(t, type, type_len, charset, cs, 0);
                if (!type_off)
                    return -1;
                type_len += cs;
            }
            slot *s = find(t, w, wn);
            if (!s->ext) {
                uint32_t ext_off = arena_put(t, w, wn, NULL, 0, 1);
                if (!ext_off)
                    return -1;
                s->ext = ext_off;
                s->ext_len = (uint16_t)wn;
                t->used++;
            }
            s->type = type_off;
            s->type_len = (uint16_t)type_len;
            if (t->used * 2 > t->mask + 1 && grow(t) != 0)
                return -1;
        }
    }
    return 0;
}

pn_mime_table *pn_mime_table_new(const char *text, size_t len)
{
    pn_mime_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->mask = 63;
    t->slots = calloc(t->mask + 1, sizeof(slot));
    t->arena_cap = 4096;
    t->arena = malloc(t->arena_cap);
    if (t->arena) {
        t->arena[0] = '\0'; /* the dummy at offset 0 */
        t->arena_len = 1;
    }
    if (!t->slots || !t->arena || add_text(t, builtin, sizeof(builtin) - 1) != 0 ||
        (text && add_text(t, text, len) != 0)) {
        pn_mime_table_free(t);
        return NULL;
    }
    return t;
}

void pn_mime_table_free(pn_mime_table *t)
{
    if (!t)
        return;
    free(t->slots);
    free(t->arena);
    free(t);
}

const char *pn_mime_lookup(const pn_mime_table *t, const char *name, size_t len, size_t *out_len)
{
    /* The extension: after the last '.' of the last path component, where
     * leading dots belong to the name (".bashrc" has none, as in Python's
     * os.path.splitext) and a trailing '.' gives an empty one. */
    size_t b = len;
    while (b > 0 && name[b - 1] != '/')
        b--;
    while (b < len && name[b] == '.')
        b++;
    size_t dot = len;
    while (dot > b && name[dot - 1] != '.')
        dot--;
    if (t && dot > b && dot < len && len - dot <= EXT_MAX) {
        const slot *s = find(t, name + dot, len - dot);
        if (s->ext) {
            *out_len = s->type_len;
            return t->arena + s->type;
        }
    }
    *out_len = sizeof(octet_stream) - 1;
    return octet_stream;
}
