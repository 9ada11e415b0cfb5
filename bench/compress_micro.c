/*
 * compress_micro — reusable encoders (pn_compress pool, reset per response)
 * against a fresh encoder per response (what the seed did), for a 64 KiB
 * JSON body, per codec at the default levels.
 *
 * Reports per response: thread CPU microseconds (median of 9 batches,
 * interleaved across the modes, each batch in a forked child, and the min),
 * heap allocations and bytes allocated (counted by wrapping malloc, calloc,
 * realloc and free of the whole process, so allocations inside zlib,
 * libzstd and libbrotlienc are included), output size and ratio.  Also a
 * streamed response (16 writes of 4 KiB, each flushed) to show what the
 * per-message flush costs in size.
 *
 *   make bench-compress            # builds with -O2 and runs
 *   build/bench/compress_micro [ms_per_batch]
 *
 * Single-threaded benchmark program: the allocation counters below are
 * process globals, which the server code never has.
 */
#include "pn_compress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- allocation counting (glibc: wrap the public allocator) ------------ */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static unsigned long long n_allocs, n_bytes;

void *malloc(size_t n)
{
    n_allocs++;
    n_bytes += n;
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    n_allocs++;
    n_bytes += a * b;
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    n_allocs++;
    n_bytes += n;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}

/* ---- the workload ------------------------------------------------------ */

#define BODY (64 * 1024)

static char *make_json(size_t n)
{
    char *p = malloc(n + 128);
    size_t len = 0;
    uint32_t x = 12345;
    static const char *names[] = {"alice", "bob", "carol", "dave", "erin", "frank"};
    p[len++] = '[';
    while (len < n) {
        x = x * 1103515245u + 12345u;
        len += (size_t)snprintf(p + len, 128,
                                "{\"id\":%u,\"name\":\"%s\",\"email\":\"%s%u@example.com\","
                                "\"active\":%s,\"score\":%u.%02u},",
                                (x >> 8) % 1000000, names[(x >> 3) % 6], names[(x >> 5) % 6],
                                (x >> 12) % 1000, (x & 1) ? "true" : "false", (x >> 16) % 100,
                                (x >> 7) % 100);
    }
    p[n - 1] = ']';
    return p;
}

/* CPU time of this thread: other work on the machine (other builds, the
 * other benchmark mode) does not count, only cache effects remain. */
static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

typedef struct result {
    double med_us, min_us;
    double allocs, kbytes;
    size_t out;
} result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { MODE_REUSE, MODE_FRESH, MODE_STREAM };

/* One response.  Returns the output size. */
static size_t one(pn_compress_pool *pool, pn_codec c, int mode, const char *body, pn_buf *out)
{
    pn_compress_pool *p = pool;
    if (mode == MODE_FRESH)
        pn_compress_pool_new(&p, NULL);
    pn_buf_clear(out);
    pn_encoder *e = pn_encoder_get(p, c, mode == MODE_STREAM ? PN_SIZE_UNKNOWN : BODY);
    if (e == NULL) {
        fprintf(stderr, "no encoder for %s\n", pn_codec_name(c));
        exit(1);
    }
    int rc = 0;
    if (mode == MODE_STREAM) {
        for (size_t off = 0; off < BODY; off += 4096)
            rc |= pn_encoder_write(e, body + off, 4096, PN_FLUSH_SYNC, out);
        rc |= pn_encoder_write(e, NULL, 0, PN_FLUSH_FINISH, out);
    } else {
        rc = pn_encoder_write(e, body, BODY, PN_FLUSH_FINISH, out);
    }
    if (rc) {
        fprintf(stderr, "encoder error %d\n", rc);
        exit(1);
    }
    pn_encoder_put(e);
    if (mode == MODE_FRESH)
        pn_compress_pool_free(p);
    return pn_buf_live(out);
}

typedef struct sample {
    double us;
    unsigned long long allocs, bytes;
    size_t out;
} sample;

/* One batch in a child process of its own: a fresh pool, 20 responses of
 * warm-up, then `iters` timed ones.  A fresh process per batch keeps one
 * mode's heap state (glibc grows and trims its heap differently with and
 * without reuse) from leaking into another mode's numbers. */
static sample batch(pn_codec c, int mode, const char *body, int iters)
{
    int fd[2];
    sample r = {0, 0, 0, 0};
    if (pipe(fd) != 0)
        exit(1);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        pn_compress_pool *pool;
        pn_compress_pool_new(&pool, NULL);
        pn_buf out = PN_BUF_INIT;
        for (int i = 0; i < 20; i++)
            one(pool, c, mode, body, &out);
        unsigned long long a0 = n_allocs, b0 = n_bytes;
        double s = now_us();
        for (int i = 0; i < iters; i++)
            r.out = one(pool, c, mode, body, &out);
        r.us = (now_us() - s) / iters;
        r.allocs = n_allocs - a0;
        r.bytes = n_bytes - b0;
        if (write(fd[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
            _exit(1);
        _exit(0);
    }
    close(fd[1]);
    if (pid < 0 || read(fd[0], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
        fprintf(stderr, "benchmark child failed\n");
        exit(1);
    }
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return r;
}

/* The three modes of one codec, measured in interleaved batches (A B C A B
 * C ...) so that a change in machine load hits all of them alike. */
static void run(pn_codec c, const char *body, double batch_ms, result *res)
{
    enum { BATCHES = 9 };
    int iters[3];
    double per[3][BATCHES];
    unsigned long long allocs[3] = {0}, bytes[3] = {0};
    size_t osz[3] = {0};
    for (int m = 0; m < 3; m++) {
        sample s = batch(c, m, body, 10);
        iters[m] = (int)(batch_ms * 1000 / s.us);
        if (iters[m] < 10)
            iters[m] = 10;
    }
    for (int b = 0; b < BATCHES; b++)
        for (int m = 0; m < 3; m++) {
            sample s = batch(c, m, body, iters[m]);
            per[m][b] = s.us;
            allocs[m] += s.allocs;
            bytes[m] += s.bytes;
            osz[m] = s.out;
        }
    for (int m = 0; m < 3; m++) {
        double total = (double)iters[m] * BATCHES;
        qsort(per[m], BATCHES, sizeof(per[m][0]), cmp_double);
        res[m] = (result){per[m][BATCHES / 2], per[m][0], (double)allocs[m] / total,
                          (double)bytes[m] / total / 1024.0, osz[m]};
    }
}

int main(int argc, char **argv)
{
    double batch_ms = argc > 1 ? atof(argv[1]) : 200;
    char *body = make_json(BODY);
    pn_compress_opts o = PN_COMPRESS_OPTS_DEFAULT;
    printf("pn_compress micro-benchmark: one %d-byte JSON response per iteration\n", BODY);
    printf("levels: gzip %d, zstd %d, brotli %d; codecs built: %s\n\n", o.gzip_level, o.zstd_level,
           o.brotli_quality, pn_compress_codecs());
    printf("| codec | mode | CPU us/response (median) | min | allocs/response | KiB "
           "allocated/response "
           "| output bytes | ratio |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
    static const pn_codec codecs[] = {PN_CODEC_ZSTD, PN_CODEC_BR, PN_CODEC_GZIP};
    static const char *modes[] = {"reused", "fresh", "reused, 16 flushed writes"};
    for (size_t i = 0; i < 3; i++) {
        if (!pn_codec_available(codecs[i]))
            continue;
        result res[3];
        run(codecs[i], body, batch_ms, res);
        for (int m = 0; m < 3; m++) {
            result r = res[m];
            printf("| %s | %s | %.1f | %.1f | %.2f | %.1f | %zu | %.2f |\n",
                   pn_codec_name(codecs[i]), modes[m], r.med_us, r.min_us, r.allocs, r.kbytes,
                   r.out, (double)BODY / (double)r.out);
            fflush(stdout);
        }
    }
    free(body);
    return 0;
}
