/*
 * pn_metrics — the counters behind --metrics-port (Prometheus).
 *
 * Runtime layer: plain C, no Python.h.
 *
 * One table of per-worker slots in a mmap(MAP_SHARED | MAP_ANONYMOUS)
 * region, made by the supervisor before any worker starts: worker threads
 * and worker processes forked after it write into the same pages, and the
 * supervisor, which serves /metrics, reads them all (pn_balance.h does the
 * same for balanced accept).  One slot per worker, a whole number of cache
 * lines each, so a worker's stores never contend with another's.
 *
 * Who writes what:
 *
 *   - a worker writes only its own slot, and is its only writer: counters
 *     are bumped with a relaxed load and a relaxed store (no locked
 *     instruction: nobody else adds to them), gauges are stored whole;
 *   - the supervisor claims a slot for each new worker (pn_metrics_claim:
 *     one no live worker holds), and after the worker exited clears the
 *     slot's gauges (pn_metrics_release) -- never its counters, so that a
 *     replacement worker on the same slot carries the totals on and every
 *     counter only grows while the table lives;
 *   - anyone reads, with relaxed atomic loads: a 64-bit value never tears,
 *     and a scrape may see one counter of a request bumped and the next not
 *     yet (Prometheus does not ask for more).
 *
 * Off (--metrics-port unset) the worker holds a NULL slot pointer, and each
 * hook below is one predictable branch.
 */
#ifndef PN_METRICS_H
#define PN_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Request methods counted by name; everything else is "other". */
enum {
    PN_M_GET,
    PN_M_HEAD,
    PN_M_POST,
    PN_M_PUT,
    PN_M_DELETE,
    PN_M_PATCH,
    PN_M_OPTIONS,
    PN_M_OTHER,
    PN_M_NMETHODS
};
/* Status classes: index 1..5 is 1xx..5xx; 0 is a request that got no
 * response (the client went away first). */
#define PN_M_NCLASSES 6
/* Request-duration histogram: upper bounds in microseconds, then +Inf. */
#define PN_M_NBUCKETS 14
extern const uint64_t pn_metrics_bucket_us[PN_M_NBUCKETS - 1];

typedef atomic_ullong pn_mcounter;

/* One worker's slot.  Counters (_total) only grow; gauges are stored. */
typedef struct pn_metrics_slot {
    _Alignas(64) pn_mcounter requests[PN_M_NMETHODS][PN_M_NCLASSES]; /* app requests */
    pn_mcounter duration[PN_M_NBUCKETS]; /* per bucket (not cumulative) */
    pn_mcounter duration_sum_ns;
    pn_mcounter early[PN_M_NCLASSES]; /* answered by the server itself */
    pn_mcounter bytes_in, bytes_out;  /* socket bytes */
    pn_mcounter conns_total;          /* accepted */
    pn_mcounter ws_opened, ws_closed; /* sessions accepted / their app run ended */
    pn_mcounter ws_msgs_in, ws_msgs_out;
    pn_mcounter zin, zout; /* response compression: bytes in, out */
    pn_mcounter starts;    /* workers that took this slot */
    /* gauges */
    atomic_ullong in_flight; /* app calls running */
    atomic_ullong conns_open;
    atomic_uint live; /* held by a live worker */
} pn_metrics_slot;

typedef struct pn_metrics pn_metrics;

/* ---- the table (creation, claim, release: the supervisor) ------------- */

/* A table of nslots slots in a shared anonymous mapping; NULL with errno. */
pn_metrics *pn_metrics_new(int nslots);
void pn_metrics_free(pn_metrics *m);
int pn_metrics_nslots(const pn_metrics *m);
/* The lowest slot no live worker holds, marked live, its gauges cleared
 * and `starts` bumped; -1 when all are taken. */
int pn_metrics_claim(pn_metrics *m);
/* The worker on `slot` exited: gauges cleared, the slot free again.  Its
 * counters stay.  0, or -1 out of range. */
int pn_metrics_release(pn_metrics *m, int slot);
pn_metrics_slot *pn_metrics_slot_at(pn_metrics *m, int slot);
/* Slots ever claimed: [0, used) are worth reading. */
int pn_metrics_used(const pn_metrics *m);
/* Worker restarts (the supervisor's count, any thread may read). */
void pn_metrics_count_restart(pn_metrics *m);
uint64_t pn_metrics_restarts(const pn_metrics *m);

/* A relaxed load, for readers. */
static inline uint64_t pn_metrics_load(const pn_mcounter *c)
{
    return atomic_load_explicit((pn_mcounter *)c, memory_order_relaxed);
}

/* ---- the worker's hooks (the slot's owner only; s may be NULL) -------- */

/* Bump a counter of one's own slot: nobody else writes it, so a plain
 * add published with a relaxed store is enough (no lock prefix). */
static inline void pn_metrics_add(pn_mcounter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void pn_metrics_set(atomic_ullong *g, uint64_t v)
{
    atomic_store_explicit(g, v, memory_order_relaxed);
}

/* PN_M_* of a request method. */
int pn_metrics_method(const char *m, size_t len);
/* The status class index of a status (0 for none / out of range). */
static inline int pn_metrics_class(int status)
{
    return status >= 100 && status <= 599 ? status / 100 : 0;
}
/* An app request ended: its method, its status (0: none sent) and how long
 * it ran. */
void pn_metrics_request(pn_metrics_slot *s, int method, int status, uint64_t ns);

#define PN_METRICS_IF(s, stmt)                                                                     \
    do {                                                                                           \
        if (__builtin_expect((s) != NULL, 0)) {                                                    \
            stmt;                                                                                  \
        }                                                                                          \
    } while (0)

static inline void pn_metrics_bytes_in(pn_metrics_slot *s, size_t n)
{
    PN_METRICS_IF(s, pn_metrics_add(&s->bytes_in, n));
}
static inline void pn_metrics_bytes_out(pn_metrics_slot *s, size_t n)
{
    PN_METRICS_IF(s, pn_metrics_add(&s->bytes_out, n));
}
/* A connection was accepted (opened) or closed; conns is the new count. */
static inline void pn_metrics_conns(pn_metrics_slot *s, size_t conns, int opened)
{
    PN_METRICS_IF(s, {
        pn_metrics_set(&s->conns_open, conns);
        if (opened)
            pn_metrics_add(&s->conns_total, 1);
    });
}
/* A piece of a response went through the compressor: in bytes, out bytes. */
static inline void pn_metrics_compressed(pn_metrics_slot *s, size_t in, size_t out)
{
    PN_METRICS_IF(s, {
        pn_metrics_add(&s->zin, in);
        pn_metrics_add(&s->zout, out);
    });
}
/* The server answered a request itself (an error before dispatch, a shed
 * 503, a health check). */
static inline void pn_metrics_early(pn_metrics_slot *s, int status)
{
    PN_METRICS_IF(s, pn_metrics_add(&s->early[pn_metrics_class(status)], 1));
}

#endif
