/*
 * pn_static.c — --static PREFIX=DIR: matching, safe opening, the per-worker
 * open-file cache and the answers (see pn_static.h; docs/static.md for
 * what users see).
 *
 * Everything runs on the worker's thread.  Each mount's DIR is opened once
 * (O_PATH|O_DIRECTORY); files are opened beneath it with openat2
 * (RESOLVE_BENEATH), or, where the kernel lacks openat2 (or the test hook
 * POUNCE_STATIC_NO_OPENAT2=1 says so), by walking the components with
 * O_NOFOLLOW.  An opened file is cached by (mount, relative path): its
 * descriptor, stat, validators and (up to 16 KiB) its bytes; an entry is
 * trusted for 1 s, then the next hit compares it with one fstatat.
 */
#include "pn_static.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pn_accept_encoding.h"
#include "pn_http_token.h"
#include "pn_mime.h"
#include "pn_static_http.h"
#include "pn_static_path.h"
#include "pn_worker_int.h"

/* The cache's bounds (per worker): entries, the largest body kept in
 * memory (sent with the head in one write), and all bodies together. */
#define CACHE_MAX 1024
#define CACHE_BUCKETS 2048 /* power of two, twice CACHE_MAX */
#define BODY_MAX 16384
#define BODIES_MAX (4u << 20)
/* An entry is used without a syscall while younger than this. */
#define FRESH_MS 1000
/* The mime.types file read at start (larger files are cut: never in practice). */
#define MIME_FILE_MAX (1u << 20)

enum { V_IDENTITY = 0 }; /* variant slots are indexed by pn_codec */

static const char *const coding_name[PN_CODEC_COUNT] = {"", "gzip", "zstd", "br"};
static const char *const coding_ext[PN_CODEC_COUNT] = {"", ".gz", ".zst", ".br"};

typedef struct variant {
    int present; /* the file exists (and is regular) */
    int fd;      /* open while the bytes are not in body; else -1 */
    uint64_t size;
    int64_t mtime_ns;
    dev_t dev;
    ino_t ino;
    char *body; /* the whole file when size <= BODY_MAX, or NULL */
    size_t etag_len;
    char etag[PN_ETAG_MAX];
    char last_modified[PN_HTTP_DATE_LEN + 1];
} variant;

typedef struct entry {
    struct entry *hnext;         /* hash chain */
    struct entry *newer, *older; /* LRU list */
    uint32_t hash;
    int mount;
    uint64_t checked_ms; /* last opened or revalidated */
    const char *ctype;   /* Content-Type (lives in the mime table) */
    size_t ctype_len;
    int nsib; /* precompressed siblings present */
    variant v[PN_CODEC_COUNT];
    size_t key_len;
    char key[]; /* relative path, NUL-terminated */
} entry;

typedef struct mount {
    char *prefix;
    size_t prefix_len;
    int dirfd;
} mount;

struct pn_static {
    const pn_config *cfg;
    mount *mounts; /* longest prefix first */
    int nmounts;
    int use_openat2;
    unsigned path_flags;
    int precompressed, follow;
    size_t index_len, cc_len;
    pn_codec order[PN_CODEC_COUNT];
    size_t norder;
    pn_mime_table *mime;
    entry *buckets[CACHE_BUCKETS];
    entry *newest, *oldest;
    size_t nentries;
    size_t nfds, fd_budget; /* descriptors the cache holds, and may hold */
    size_t body_bytes;
    char rel[PN_STATIC_PATH_MAX + 1];   /* the decoded path of the request */
    char name[PN_STATIC_PATH_MAX + 64]; /* scratch for a file name */
};

/* ---- creation --------------------------------------------------------- */

static int by_prefix_len(const void *a, const void *b)
{
    const mount *x = a, *y = b;
    return (x->prefix_len < y->prefix_len) - (x->prefix_len > y->prefix_len);
}

static char *read_small_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = malloc(MIME_FILE_MAX);
    size_t n = 0;
    while (buf != NULL && n < MIME_FILE_MAX) {
        ssize_t r = read(fd, buf + n, MIME_FILE_MAX - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
}

pn_static *pn_static_new(const pn_config *cfg)
{
    const char *spec = cfg->static_mount;
    if (spec == NULL || *spec == '\0') {
        errno = 0;
        return NULL;
    }
    pn_static *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->cfg = cfg;
    const char *no2 = getenv("POUNCE_STATIC_NO_OPENAT2"); /* test hook, DEVELOPERS.md */
    s->use_openat2 = !(no2 != NULL && no2[0] == '1');
    s->precompressed = cfg->static_precompressed != 0;
    s->follow = cfg->static_follow_symlinks != 0;
    s->path_flags = cfg->static_dotfiles ? PN_SPATH_DOTFILES : 0u;
    s->index_len = cfg->static_index ? strlen(cfg->static_index) : 0;
    s->cc_len = cfg->static_cache_control ? strlen(cfg->static_cache_control) : 0;
    if (s->precompressed) {
        const char *bad = NULL;
        size_t badlen = 0;
        const char *order = cfg->compression_order ? cfg->compression_order : "zstd,br,gzip";
        if (pn_codec_parse_order(order, s->order, &s->norder, &bad, &badlen) < 0)
            s->norder = 0;
    }
    /* Descriptors: a quarter of the soft limit, shared by the workers (thread
     * mode shares one table), so the cache can never starve accept(). */
    struct rlimit rl;
    uint64_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 1024;
    long nw = cfg->workers > 0 ? (long)cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t budget = soft / 4 / (uint64_t)(nw > 0 ? nw : 1);
    s->fd_budget = budget < 16 ? 16 : budget > 4096 ? 4096 : (size_t)budget;
    size_t mlen = 0;
    char *mtext = read_small_file("/etc/mime.types", &mlen);
    s->mime = pn_mime_table_new(mtext, mlen);
    free(mtext);
    if (s->mime == NULL)
        goto nomem;
    int n = 1;
    for (const char *p = spec; *p; p++)
        n += *p == ',';
    s->mounts = calloc((size_t)n, sizeof(mount));
    if (s->mounts == NULL)
        goto nomem;
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq != NULL && eq > p) {
            mount *m = &s->mounts[s->nmounts];
            m->prefix = strndup(p, (size_t)(eq - p));
            char *dir = strndup(eq + 1, (size_t)(end - eq - 1));
            if (m->prefix == NULL || dir == NULL) {
                free(dir);
                free(m->prefix);
                goto nomem;
            }
            m->prefix_len = strlen(m->prefix);
            m->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
            int e = errno;
            free(dir);
            if (m->dirfd < 0) {
                free(m->prefix);
                pn_static_free(s);
                errno = e ? e : ENOENT;
                return NULL;
            }
            s->nmounts++;
        }
        p = *end ? end + 1 : end;
    }
    qsort(s->mounts, (size_t)s->nmounts, sizeof(mount), by_prefix_len);
    return s;
nomem:
    pn_static_free(s);
    errno = ENOMEM;
    return NULL;
}

/* ---- the cache -------------------------------------------------------- */

static uint32_t key_hash(int mount, const char *k, size_t n)
{
    uint32_t h = 2166136261u ^ (uint32_t)mount;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

static void variant_close(pn_static *s, variant *v)
{
    if (v->fd >= 0) {
        close(v->fd);
        s->nfds--;
    }
    v->fd = -1;
    v->present = 0;
    if (v->body) {
        s->body_bytes -= (size_t)v->size;
        free(v->body);
        v->body = NULL;
    }
}

static void lru_unlink(pn_static *s, entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(pn_static *s, entry *e)
{
    e->older = s->newest;
    e->newer = NULL;
    if (s->newest)
        s->newest->newer = e;
    s->newest = e;
    if (s->oldest == NULL)
        s->oldest = e;
}

static void entry_drop(pn_static *s, entry *e)
{
    entry **pp = &s->buckets[e->hash & (CACHE_BUCKETS - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(s, e);
    for (int i = 0; i < PN_CODEC_COUNT; i++)
        variant_close(s, &e->v[i]);
    s->nentries--;
    free(e);
}

void pn_static_free(pn_static *s)
{
    if (s == NULL)
        return;
    while (s->oldest)
        entry_drop(s, s->oldest);
    for (int i = 0; i < s->nmounts; i++) {
        close(s->mounts[i].dirfd);
        free(s->mounts[i].prefix);
    }
    free(s->mounts);
    pn_mime_table_free(s->mime);
    free(s);
}

/* ---- opening beneath a mount ------------------------------------------ */

/* Without openat2: walk rel's components with O_NOFOLLOW (a symlink
 * anywhere is refused with ELOOP, unless --static-follow-symlinks). */
static int open_walk(pn_static *s, int dirfd, const char *rel, int flags)
{
    if (s->follow)
        return openat(dirfd, rel, flags);
    char part[PN_STATIC_PATH_MAX + 64];
    int cur = dirfd;
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (slash == NULL) {
            int fd = openat(cur, p, flags | O_NOFOLLOW);
            int e = errno;
            if (cur != dirfd)
                close(cur);
            errno = e;
            return fd;
        }
        size_t n = (size_t)(slash - p);
        if (n >= sizeof part) {
            if (cur != dirfd)
                close(cur);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        int next = openat(cur, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        if (cur != dirfd)
            close(cur);
        if (next < 0) {
            errno = e;
            return -1;
        }
        cur = next;
        p = slash + 1;
    }
}

/* Open rel beneath the mount for reading, never blocking (a FIFO opens at
 * once) and never escaping DIR. */
static int open_beneath(pn_static *s, int dirfd, const char *rel)
{
    int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    if (s->use_openat2) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = (uint64_t)flags;
        how.resolve = RESOLVE_NO_MAGICLINKS | (s->follow ? 0 : RESOLVE_BENEATH);
        int fd;
        do
            fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
        while (fd < 0 && errno == EAGAIN);
        if (fd >= 0 || errno != ENOSYS)
            return fd;
        s->use_openat2 = 0; /* kernel < 5.6 */
    }
    return open_walk(s, dirfd, rel, flags);
}

/* An errno of opening to a status: 403 when permission is denied, 503
 * when out of descriptors or memory, else 404. */
static int errno_status(int e)
{
    if (e == EACCES || e == EPERM)
        return 403;
    if (e == EMFILE || e == ENFILE || e == ENOMEM)
        return 503;
    return 404;
}

static void variant_fill(pn_static *s, variant *v, int fd, const struct stat *st, int keep_body)
{
    v->present = 1;
    v->fd = fd;
    v->size = (uint64_t)st->st_size;
    v->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    v->dev = st->st_dev;
    v->ino = st->st_ino;
    v->etag_len = pn_static_etag(v->etag, v->mtime_ns, v->size);
    pn_http_date_format(v->last_modified, (int64_t)st->st_mtim.tv_sec);
    v->body = NULL;
    s->nfds++; /* (given back below when the bytes are kept instead) */
    if (keep_body && v->size <= BODY_MAX && s->body_bytes + v->size <= BODIES_MAX) {
        char *b = malloc(v->size ? (size_t)v->size : 1);
        ssize_t n = b ? pread(fd, b, (size_t)v->size, 0) : -1;
        if (n == (ssize_t)v->size) {
            v->body = b;
            s->body_bytes += (size_t)v->size;
            close(fd); /* the bytes are here: no descriptor needed */
            v->fd = -1;
            s->nfds--;
        } else {
            free(b); /* changed while read: sendfile, and revalidation, see to it */
        }
    }
}

/* Open key (a file's relative path) in mount mi and its siblings as a new
 * entry.  Returns the entry, or NULL with *status (301/403/404/503). */
static entry *entry_open(pn_static *s, int mi, const char *key, size_t key_len, int kind,
                         uint32_t hash, uint64_t now, int *status)
{
    /* Room first: an entry may hold up to PN_CODEC_COUNT descriptors. */
    while (s->oldest != NULL &&
           (s->nentries >= CACHE_MAX || s->nfds + PN_CODEC_COUNT > s->fd_budget))
        entry_drop(s, s->oldest);
    int dirfd = s->mounts[mi].dirfd;
    int fd = open_beneath(s, dirfd, key);
    if (fd < 0) {
        *status = errno_status(errno);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        *status = errno_status(errno);
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        /* A directory asked for as a file: 301 to the URL with '/'; an
         * index name that is a directory: no listing. */
        *status = S_ISDIR(st.st_mode) ? (kind == PN_SPATH_FILE ? 301 : 403) : 404;
        return NULL;
    }
    entry *e = calloc(1, sizeof(*e) + key_len + 1);
    if (e == NULL) {
        close(fd);
        *status = 503;
        return NULL;
    }
    for (int i = 0; i < PN_CODEC_COUNT; i++)
        e->v[i].fd = -1;
    memcpy(e->key, key, key_len + 1);
    e->key_len = key_len;
    e->mount = mi;
    e->hash = hash;
    e->checked_ms = now;
    variant_fill(s, &e->v[V_IDENTITY], fd, &st, 1);
    const char *base = strrchr(key, '/');
    base = base ? base + 1 : key;
    e->ctype = pn_mime_lookup(s->mime, base, strlen(base), &e->ctype_len);
    if (s->precompressed && key_len + 5 < sizeof s->name) {
        for (size_t i = 0; i < s->norder; i++) {
            pn_codec cd = s->order[i];
            memcpy(s->name, key, key_len);
            strcpy(s->name + key_len, coding_ext[cd]);
            int sfd = open_beneath(s, dirfd, s->name);
            if (sfd < 0)
                continue;
            struct stat sst;
            if (fstat(sfd, &sst) < 0 || !S_ISREG(sst.st_mode)) {
                close(sfd);
                continue;
            }
            variant_fill(s, &e->v[cd], sfd, &sst, 1);
            e->nsib++;
        }
    }
    entry **b = &s->buckets[hash & (CACHE_BUCKETS - 1)];
    e->hnext = *b;
    *b = e;
    lru_push(s, e);
    s->nentries++;
    return e;
}

/* Whether the file behind v still is the one cached (absent stays absent). */
static int variant_same(pn_static *s, int dirfd, const char *name, const variant *v)
{
    struct stat st;
    (void)s;
    if (fstatat(dirfd, name, &st, 0) < 0 || !S_ISREG(st.st_mode))
        return !v->present;
    return v->present && st.st_dev == v->dev && st.st_ino == v->ino &&
           (uint64_t)st.st_size == v->size &&
           (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec == v->mtime_ns;
}

/* After FRESH_MS: does e still describe the files?  (One fstatat for the
 * file, one per sibling name.) */
static int entry_valid(pn_static *s, entry *e)
{
    int dirfd = s->mounts[e->mount].dirfd;
    if (!variant_same(s, dirfd, e->key, &e->v[V_IDENTITY]))
        return 0;
    if (s->precompressed && e->key_len + 5 < sizeof s->name) {
        for (size_t i = 0; i < s->norder; i++) {
            pn_codec cd = s->order[i];
            memcpy(s->name, e->key, e->key_len);
            strcpy(s->name + e->key_len, coding_ext[cd]);
            if (!variant_same(s, dirfd, s->name, &e->v[cd]))
                return 0;
        }
    }
    return 1;
}

static entry *cache_find(pn_static *s, int mi, const char *key, size_t key_len, uint32_t hash)
{
    for (entry *e = s->buckets[hash & (CACHE_BUCKETS - 1)]; e; e = e->hnext)
        if (e->hash == hash && e->mount == mi && e->key_len == key_len &&
            memcmp(e->key, key, key_len) == 0)
            return e;
    return NULL;
}

/* ---- answers ---------------------------------------------------------- */

/* The answers are decided here, their heads written into the emitter's
 * buffer (pn_worker_int.h's pn_answer): one evaluation, whichever transport
 * asked. */

/* A short text/plain answer (errors, 301, 405), with one extra field. */
static int answer_text(pn_answer *a, pn_buf *out, const pn_http1_request *req, int status,
                       const char *fname, size_t fname_len, const char *fvalue, size_t fvalue_len)
{
    int head = pn_http_eq(req->method, req->method_len, PN_STRLIT("HEAD"));
    pn_answer_start(a, out, req, status, head, 1);
    pn_answer_field(a, PN_STRLIT("Content-Type"), PN_STRLIT("text/plain; charset=utf-8"));
    if (fname)
        pn_answer_field(a, fname, fname_len, fvalue, fvalue_len);
    int n = snprintf(a->text, sizeof a->text, "%s\n", pn_http1_reason(status));
    a->body = a->text;
    a->fd = -1;
    a->off = 0;
    a->len = (uint64_t)n;
    return 1;
}

/* 301 to the URL with a '/' added.  Runs of '/' are merged (as nginx's
 * merge_slashes): with a mount at "/", "//host" names the directory host,
 * and a Location of "//host/" would send the browser to that host. */
static int answer_redirect(pn_static *s, pn_answer *a, pn_buf *out, const pn_http1_request *req)
{
    if (req->path_len + 2 + req->query_len > sizeof s->name)
        return answer_text(a, out, req, 404, NULL, 0, NULL, 0);
    size_t n = 0;
    for (size_t i = 0; i < req->path_len; i++)
        if (req->path[i] != '/' || n == 0 || s->name[n - 1] != '/')
            s->name[n++] = req->path[i];
    if (n == 0 || s->name[n - 1] != '/')
        s->name[n++] = '/';
    if (req->query_len) {
        s->name[n++] = '?';
        memcpy(s->name + n, req->query, req->query_len);
        n += req->query_len;
    }
    return answer_text(a, out, req, 301, PN_STRLIT("Location"), s->name, n);
}

/* Choose the variant of e for this request's Accept-Encoding. */
static pn_codec choose_variant(pn_static *s, const entry *e, const pn_http1_request *req)
{
    pn_codec order[PN_CODEC_COUNT];
    size_t n = 0;
    for (size_t i = 0; i < s->norder; i++)
        if (e->v[s->order[i]].present)
            order[n++] = s->order[i];
    pn_accept_encoding ae;
    pn_accept_encoding_init(&ae);
    for (size_t i = 0; i < req->num_headers; i++) {
        const pn_http1_header *h = &req->headers[i];
        if (pn_http_ieq(h->name, h->name_len, PN_STRLIT("accept-encoding")))
            pn_accept_encoding_feed(&ae, h->value, h->value_len);
    }
    return pn_accept_encoding_choose(&ae, order, n, NULL);
}

static int answer_file(pn_static *s, pn_answer *a, pn_buf *out, const pn_http1_request *req,
                       entry *e)
{
    int head = req->method_len == 4; /* HEAD (GET is 3): checked by the caller */
    pn_codec cd = e->nsib ? choose_variant(s, e, req) : PN_CODEC_IDENTITY;
    const variant *v = &e->v[cd];
    pn_static_meta meta = {v->size, (int64_t)(v->mtime_ns / 1000000000), v->etag, v->etag_len};
    if (v->mtime_ns < 0 && v->mtime_ns % 1000000000)
        meta.mtime--; /* floor for files before 1970 */
    pn_static_result res;
    pn_static_eval(req->headers, req->num_headers, !head, &meta, &res);
    int status = res.status;
    int validators = status == 200 || status == 206 || status == 304;
    int has_body = status == 200 || status == 206;
    char range[96];
    size_t range_len = 0;
    if (status == 206)
        range_len = (size_t)snprintf(
            range, sizeof range, "bytes %llu-%llu/%llu", (unsigned long long)res.off,
            (unsigned long long)(res.off + res.len - 1), (unsigned long long)v->size);
    else if (status == 416)
        range_len =
            (size_t)snprintf(range, sizeof range, "bytes */%llu", (unsigned long long)v->size);
    pn_answer_start(a, out, req, status, head, 1);
    a->fd = -1;
    a->off = 0;
    a->len = 0;
    a->body = NULL;
    if (has_body) {
        pn_answer_field(a, PN_STRLIT("Content-Type"), e->ctype, e->ctype_len);
        a->len = res.len;
        if (v->body != NULL) {
            a->body = v->body + res.off;
        } else {
            a->fd = v->fd;
            a->off = res.off;
        }
    } else if (status != 304) {
        pn_answer_field(a, PN_STRLIT("Content-Type"), PN_STRLIT("text/plain; charset=utf-8"));
        a->len = (uint64_t)snprintf(a->text, sizeof a->text, "%s\n", pn_http1_reason(status));
        a->body = a->text;
    }
    if (validators) {
        pn_answer_field(a, PN_STRLIT("ETag"), v->etag, v->etag_len);
        pn_answer_field(a, PN_STRLIT("Last-Modified"), v->last_modified, PN_HTTP_DATE_LEN);
    }
    if (has_body)
        pn_answer_field(a, PN_STRLIT("Accept-Ranges"), PN_STRLIT("bytes"));
    if (range_len)
        pn_answer_field(a, PN_STRLIT("Content-Range"), range, range_len);
    if (validators && s->cc_len)
        pn_answer_field(a, PN_STRLIT("Cache-Control"), s->cfg->static_cache_control, s->cc_len);
    if (validators && e->nsib > 0)
        pn_answer_field(a, PN_STRLIT("Vary"), PN_STRLIT("Accept-Encoding"));
    if (has_body && cd != PN_CODEC_IDENTITY)
        pn_answer_field(a, PN_STRLIT("Content-Encoding"), coding_name[cd], strlen(coding_name[cd]));
    return 1;
}

int pn_static_answer(pn_static *s, const pn_http1_request *req, pn_answer *a, pn_buf *out)
{
    int mi = -1;
    const char *path = req->path;
    size_t plen = req->path_len;
    for (int i = 0; i < s->nmounts; i++) {
        const mount *m = &s->mounts[i];
        if ((m->prefix_len == 1 && plen > 0 && path[0] == '/') || /* not "OPTIONS *" */
            (plen >= m->prefix_len && memcmp(path, m->prefix, m->prefix_len) == 0 &&
             (plen == m->prefix_len || path[m->prefix_len] == '/'))) {
            mi = i;
            break;
        }
    }
    if (mi < 0)
        return 0;
    if (!pn_http_eq(req->method, req->method_len, PN_STRLIT("GET")) &&
        !pn_http_eq(req->method, req->method_len, PN_STRLIT("HEAD")))
        return answer_text(a, out, req, 405, PN_STRLIT("Allow"), PN_STRLIT("GET, HEAD"));
    size_t skip = s->mounts[mi].prefix_len == 1 ? 0 : s->mounts[mi].prefix_len;
    size_t rl = 0;
    int kind = pn_static_path(path + skip, plen - skip, s->path_flags, s->rel, sizeof s->rel, &rl);
    if (kind == PN_SPATH_BAD)
        return answer_text(a, out, req, 400, NULL, 0, NULL, 0);
    if (kind == PN_SPATH_HIDDEN)
        return answer_text(a, out, req, 403, NULL, 0, NULL, 0);
    if (kind < 0)
        return answer_text(a, out, req, 404, NULL, 0, NULL, 0);
    if (plen == skip) /* "/assets": the mount's root, asked for without '/' */
        return answer_redirect(s, a, out, req);
    if (rl == 0)
        kind = PN_SPATH_DIR;
    if (kind == PN_SPATH_DIR) {
        if (s->index_len == 0)
            return answer_text(a, out, req, 403, NULL, 0, NULL, 0);
        if (rl + 1 + s->index_len >= sizeof s->rel)
            return answer_text(a, out, req, 404, NULL, 0, NULL, 0);
        if (rl > 0)
            s->rel[rl++] = '/';
        memcpy(s->rel + rl, s->cfg->static_index, s->index_len + 1);
        rl += s->index_len;
    }
    uint32_t hash = key_hash(mi, s->rel, rl);
    uint64_t now = pn_monotonic_ms();
    entry *e = cache_find(s, mi, s->rel, rl, hash);
    if (e != NULL && now - e->checked_ms >= FRESH_MS) {
        if (entry_valid(s, e)) {
            e->checked_ms = now;
        } else {
            entry_drop(s, e);
            e = NULL;
        }
    }
    if (e == NULL) {
        int status = 404;
        e = entry_open(s, mi, s->rel, rl, kind, hash, now, &status);
        if (e == NULL) {
            if (status == 301)
                return answer_redirect(s, a, out, req);
            if (status == 404 && kind == PN_SPATH_DIR) {
                /* No index: 403 when the directory itself exists (no
                 * listings), 404 when it does not. */
                rl -= s->index_len + (rl > s->index_len);
                s->rel[rl] = '\0';
                int fd = rl ? open_beneath(s, s->mounts[mi].dirfd, s->rel) : -2;
                struct stat st;
                if (fd == -2 || (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)))
                    status = 403;
                if (fd >= 0)
                    close(fd);
            }
            return answer_text(a, out, req, status, NULL, 0, NULL, 0);
        }
    } else if (e != s->newest) {
        lru_unlink(s, e);
        lru_push(s, e);
    }
    return answer_file(s, a, out, req, e);
}
