/*
 * pn_metrics.c — the shared table of per-worker counters.  See
 * pn_metrics.h for who writes what.
 */
#include "pn_metrics.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* Lock-free 64-bit atomics are what make the table work across processes
 * (an atomic with a hidden lock would not be shared). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "atomic 64-bit must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic int must be lock-free");
_Static_assert(sizeof(pn_metrics_slot) % 64 == 0, "slots are whole cache lines");

/* .001 .0025 .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 s, then +Inf. */
const uint64_t pn_metrics_bucket_us[PN_M_NBUCKETS - 1] = {
    1000,   2500,   5000,    10000,   25000,   50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

struct pn_metrics {
    _Alignas(64) int nslots; /* fixed at creation */
    size_t map_len;
    atomic_int used;        /* slots ever claimed */
    atomic_ullong restarts; /* written by the supervisor only */
    pn_metrics_slot slots[];
};

pn_metrics *pn_metrics_new(int nslots)
{
    if (nslots <= 0 || nslots > 65536) {
        errno = EINVAL;
        return NULL;
    }
    size_t len = sizeof(pn_metrics) + (size_t)nslots * sizeof(pn_metrics_slot);
    /* Zeroed by the kernel: every counter starts at 0, every slot free. */
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    pn_metrics *m = p;
    m->nslots = nslots;
    m->map_len = len;
    return m;
}

void pn_metrics_free(pn_metrics *m)
{
    if (m)
        munmap(m, m->map_len);
}

int pn_metrics_nslots(const pn_metrics *m)
{
    return m->nslots;
}

int pn_metrics_used(const pn_metrics *m)
{
    return atomic_load_explicit((atomic_int *)&m->used, memory_order_relaxed);
}

pn_metrics_slot *pn_metrics_slot_at(pn_metrics *m, int slot)
{
    if (slot < 0 || slot >= m->nslots)
        return NULL;
    return &m->slots[slot];
}

static void clear_gauges(pn_metrics_slot *s)
{
    pn_metrics_set(&s->in_flight, 0);
    pn_metrics_set(&s->conns_open, 0);
}

int pn_metrics_claim(pn_metrics *m)
{
    for (int i = 0; i < m->nslots; i++) {
        pn_metrics_slot *s = &m->slots[i];
        unsigned expect = 0;
        /* A compare-and-swap, though only the supervisor claims: cheap, and
         * a second claimer (a test, a tool) could not take a live slot. */
        if (!atomic_compare_exchange_strong_explicit(&s->live, &expect, 1, memory_order_relaxed,
                                                     memory_order_relaxed))
            continue;
        clear_gauges(s);
        /* Counted by the supervisor before the worker exists: no race. */
        atomic_fetch_add_explicit(&s->starts, 1, memory_order_relaxed);
        int used = atomic_load_explicit(&m->used, memory_order_relaxed);
        while (used <= i && !atomic_compare_exchange_weak_explicit(
                                &m->used, &used, i + 1, memory_order_relaxed, memory_order_relaxed))
            ;
        return i;
    }
    return -1;
}

int pn_metrics_release(pn_metrics *m, int slot)
{
    if (slot < 0 || slot >= m->nslots)
        return -1;
    clear_gauges(&m->slots[slot]);
    atomic_store_explicit(&m->slots[slot].live, 0, memory_order_relaxed);
    return 0;
}

void pn_metrics_count_restart(pn_metrics *m)
{
    atomic_fetch_add_explicit(&m->restarts, 1, memory_order_relaxed);
}

uint64_t pn_metrics_restarts(const pn_metrics *m)
{
    return atomic_load_explicit((atomic_ullong *)&m->restarts, memory_order_relaxed);
}

int pn_metrics_method(const char *m, size_t len)
{
    /* Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET. */
    switch (len) {
    case 3:
        if (memcmp(m, "GET", 3) == 0)
            return PN_M_GET;
        if (memcmp(m, "PUT", 3) == 0)
            return PN_M_PUT;
        break;
    case 4:
        if (memcmp(m, "HEAD", 4) == 0)
            return PN_M_HEAD;
        if (memcmp(m, "POST", 4) == 0)
            return PN_M_POST;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0)
            return PN_M_PATCH;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0)
            return PN_M_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0)
            return PN_M_OPTIONS;
        break;
    }
    return PN_M_OTHER;
}

void pn_metrics_request(pn_metrics_slot *s, int method, int status, uint64_t ns)
{
    if ((unsigned)method >= PN_M_NMETHODS)
        method = PN_M_OTHER;
    pn_metrics_add(&s->requests[method][pn_metrics_class(status)], 1);
    int b = 0;
    while (b < PN_M_NBUCKETS - 1 && ns > pn_metrics_bucket_us[b] * 1000) /* le: <= bound */
        b++;
    pn_metrics_add(&s->duration[b], 1);
    pn_metrics_add(&s->duration_sum_ns, ns);
}
