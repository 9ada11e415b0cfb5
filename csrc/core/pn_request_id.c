/*
 * pn_request_id.c — request IDs: validation, the per-worker generator,
 * and the choice between an incoming ID and a new one (pn_request_id.h).
 */
#include "pn_request_id.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pn_http_token.h"

/* ---- validation ------------------------------------------------------- */

/* The bytes an ID may hold: ALPHA, DIGIT and ._~:+/=-; every other byte,
 * 128..255 included, is out.  A table: a byte costs a load, where masks and
 * shifts cost 12 instructions (callgrind, a 36-byte UUID: 650 -> 200). */
static const unsigned char id_ok[256] = {
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1,
    [':'] = 1,         ['+'] = 1,         ['/'] = 1,         ['='] = 1, ['-'] = 1,
};

int pn_request_id_valid(const char *v, size_t n)
{
    if (n == 0 || n > PN_REQUEST_ID_MAX)
        return 0;
    /* No early exit (n is at most 128): four bytes per step, one branch. */
    const unsigned char *p = (const unsigned char *)v;
    unsigned ok = 1;
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        ok &= id_ok[p[i]] & id_ok[p[i + 1]] & id_ok[p[i + 2]] & id_ok[p[i + 3]];
    for (; i < n; i++)
        ok &= id_ok[p[i]];
    return (int)ok;
}

/* ---- the generator ---------------------------------------------------- */

static inline uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* One step of xoshiro256**: 64 output bits, a few shifts and xors. */
static inline uint64_t next64(pn_request_id_gen *g)
{
    uint64_t *s = g->s;
    uint64_t out = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return out;
}

/* SplitMix64's finaliser: spreads every input bit over the output. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void pn_request_id_seed_bytes(pn_request_id_gen *g, const void *seed, size_t n)
{
    /* Fold the seed into 32 bytes, then whiten each word with a constant
     * of its own: a bijection, so distinct 32-byte seeds give distinct
     * states, and a zero seed no degenerate one. */
    unsigned char b[32] = {0};
    const unsigned char *p = seed;
    for (size_t i = 0; i < n; i++)
        b[i % sizeof b] ^= p[i];
    for (int i = 0; i < 4; i++) {
        uint64_t w;
        memcpy(&w, b + 8 * i, sizeof w);
        g->s[i] = w ^ mix64(0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1) + (uint64_t)n);
    }
    /* xoshiro's one forbidden state; unreachable in practice. */
    if ((g->s[0] | g->s[1] | g->s[2] | g->s[3]) == 0)
        g->s[0] = 1;
}

void pn_request_id_seed(pn_request_id_gen *g)
{
    unsigned char seed[32];
    size_t got = 0;
    while (got < sizeof seed) {
        /* GRND_NONBLOCK: early at boot, before the pool is ready, fall
         * back rather than hold the server's start. */
        ssize_t r = getrandom(seed + got, sizeof seed - got, GRND_NONBLOCK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < sizeof seed) {
        /* Still distinct per worker: a thread worker has its own thread ID
         * and generator address, a process worker its own PID. */
        struct timespec ts = {0, 0};
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t v[4] = {(uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec,
                         (uint64_t)getpid(), (uint64_t)syscall(SYS_gettid), (uint64_t)(uintptr_t)g};
        for (int i = 0; i < 4; i++)
            v[i] = mix64(v[i] + 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1));
        memcpy(seed, v, sizeof seed);
    }
    pn_request_id_seed_bytes(g, seed, sizeof seed);
}

/* Eight lowercase hex digits of v, most significant first, without a loop:
 * spread the nibbles one per byte (the first digit in the lowest byte, as
 * it is stored), then add '0', or 'a' - 10 to the bytes above 9.  A loop
 * of table look-ups cost 7 instructions a digit (callgrind); this about 2. */
static inline void put_hex32(char *p, uint32_t v)
{
    uint64_t x = v;
    x = (x | (x << 16)) & 0x0000ffff0000ffffULL;
    x = (x | (x << 8)) & 0x00ff00ff00ff00ffULL;
    x = (x | (x << 4)) & 0x0f0f0f0f0f0f0f0fULL; /* nibble i in byte i, lowest first */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    x = __builtin_bswap64(x); /* stored, the most significant digit comes first */
#endif
    uint64_t above9 = ((x + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL;
    x += 0x3030303030303030ULL + above9 * (uint64_t)('a' - '0' - 10);
    memcpy(p, &x, 8);
}

static inline void put_hex64(char *p, uint64_t v)
{
    put_hex32(p, (uint32_t)(v >> 32));
    put_hex32(p + 8, (uint32_t)v);
}

size_t pn_request_id_generate(pn_request_id_gen *g, char *out)
{
    uint64_t hi = next64(g), lo = next64(g);
    /* RFC 9562 §5.4: version 4 in the high nibble of octet 6 (hex digit
     * 12), variant 10 in the two high bits of octet 8 (hex digit 16). */
    hi = (hi & ~0xf000ULL) | 0x4000ULL;
    lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
    put_hex64(out, hi);
    put_hex64(out + 16, lo);
    return PN_REQUEST_ID_GEN_LEN;
}

/* ---- the request's ID ------------------------------------------------- */

size_t pn_request_id_take(pn_request_id_gen *g, const pn_http1_header *h, size_t nh,
                          const char *name, size_t name_len, char *out)
{
    const pn_http1_header *found = NULL;
    for (size_t i = 0; i < nh; i++) {
        if (h[i].name_len != name_len || !pn_http_ieq(h[i].name, h[i].name_len, name, name_len))
            continue;
        if (found != NULL) {
            /* Two IDs for one request: neither can be told to be the
             * right one (a client's, a proxy's?), so neither is kept. */
            found = NULL;
            break;
        }
        found = &h[i];
    }
    if (found != NULL && pn_request_id_valid(found->value, found->value_len)) {
        memcpy(out, found->value, found->value_len);
        return found->value_len;
    }
    return pn_request_id_generate(g, out);
}

size_t pn_request_id_field(char *out, const char *name, size_t name_len, const char *id,
                           size_t id_len)
{
    char *p = out;
    memcpy(p, name, name_len);
    p += name_len;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, id, id_len);
    p += id_len;
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - out);
}

int pn_request_id_name_ok(const char *name, size_t len)
{
    static const char *const owned[] = {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "te",
        "trailer",
        "date",
        "server",
        "host",
        "content-type",
        "content-encoding",
    };
    if (len > PN_REQUEST_ID_NAME_MAX || !pn_http_is_token(name, len))
        return 0;
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        if (pn_http_ieq(name, len, owned[i], strlen(owned[i])))
            return 0;
    return 1;
}
