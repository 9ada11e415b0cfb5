/*
 * pn_balance.c — the shared table of accepting workers and the
 * stand-aside decision.  See pn_balance.h for who writes what.
 */
#include "pn_balance.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "pn_timer.h"

/* Slack over the mean before a worker stands aside: one connection plus an
 * eighth of the mean.  Within it the race decides, as before; beyond it a
 * burst is evened out (with two workers, 64 connections split no worse than
 * 37/27), and a large steady population is not rebalanced at every accept. */
#define SLACK_MIN 1
#define SLACK_SHIFT 3

#define CACHE_LINE 64

/* The counts are lock-free atomics, which is what makes them work across
 * processes in shared memory (an atomic with a hidden lock would not). */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic int must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "atomic 64-bit must be lock-free");

/* One worker's slot: written by its owner (or by the supervisor before the
 * owner starts), read by everyone. */
typedef struct slot {
    _Alignas(CACHE_LINE) atomic_uint accepting; /* 1 while its worker takes connections */
    atomic_uint conns;                          /* its open connections */
    atomic_ullong accepted;                     /* connections it accepted since it joined */
    atomic_uint gen; /* bumped by each reset: a seat clears only the slot it joined */
} slot;

_Static_assert(sizeof(slot) == CACHE_LINE, "one slot per cache line");

struct pn_balance {
    _Alignas(CACHE_LINE) int nslots; /* fixed at creation */
    size_t map_len;                  /* of the whole mapping */
    atomic_int used;                 /* slots ever handed out: [0, used) are scanned */
    slot slots[];
};

pn_balance *pn_balance_new(int nslots)
{
    if (nslots <= 0 || nslots > 65536) {
        errno = EINVAL;
        return NULL;
    }
    size_t len = sizeof(pn_balance) + (size_t)nslots * sizeof(slot);
    /* Shared and anonymous: inherited by fork() as the same pages.  Zeroed
     * by the kernel, which is every slot's initial state. */
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    pn_balance *b = p;
    b->nslots = nslots;
    b->map_len = len;
    atomic_init(&b->used, 0);
    return b;
}

void pn_balance_free(pn_balance *b)
{
    if (b)
        munmap(b, b->map_len);
}

int pn_balance_nslots(const pn_balance *b)
{
    return b->nslots;
}

/* Make sure the scans cover `slot`. */
static void note_used(pn_balance *b, int slot)
{
    int used = atomic_load_explicit(&b->used, memory_order_relaxed);
    while (used <= slot &&
           !atomic_compare_exchange_weak_explicit(&b->used, &used, slot + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

int pn_balance_reset(pn_balance *b, int i)
{
    if (i < 0 || i >= b->nslots)
        return -1;
    slot *s = &b->slots[i];
    atomic_store_explicit(&s->accepting, 0, memory_order_relaxed);
    atomic_store_explicit(&s->conns, 0, memory_order_relaxed);
    atomic_store_explicit(&s->accepted, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->gen, 1, memory_order_relaxed);
    note_used(b, i);
    return 0;
}

int pn_balance_get(const pn_balance *b, int i, pn_balance_view *out)
{
    if (i < 0 || i >= b->nslots)
        return -1;
    /* The loads take a pointer to non-const (C11 7.17.7.2 in practice). */
    slot *s = (slot *)&b->slots[i];
    out->accepting = (int)atomic_load_explicit(&s->accepting, memory_order_relaxed);
    out->conns = atomic_load_explicit(&s->conns, memory_order_relaxed);
    out->accepted = atomic_load_explicit(&s->accepted, memory_order_relaxed);
    return 0;
}

void pn_balance_set_conns(pn_balance *b, int i, size_t conns)
{
    atomic_store_explicit(&b->slots[i].conns, conns > UINT32_MAX ? UINT32_MAX : (unsigned)conns,
                          memory_order_relaxed);
}

void pn_balance_set_accepted(pn_balance *b, int i, uint64_t accepted)
{
    atomic_store_explicit(&b->slots[i].accepted, accepted, memory_order_relaxed);
}

int pn_balance_over_share(const pn_balance *b, int me, uint32_t mine)
{
    slot *slots = (slot *)b->slots;
    int used = atomic_load_explicit((atomic_int *)&b->used, memory_order_relaxed);
    uint64_t total = mine, n = 1;
    for (int i = 0; i < used; i++) {
        if (i == me || !atomic_load_explicit(&slots[i].accepting, memory_order_relaxed))
            continue;
        total += atomic_load_explicit(&slots[i].conns, memory_order_relaxed);
        n++;
    }
    if (n == 1)
        return 0; /* alone: nobody to leave it to */
    /* mine > mean + slack, with mean = total / n, in integers. */
    uint64_t slack = SLACK_MIN + (total / n >> SLACK_SHIFT);
    return (uint64_t)mine * n > total + slack * n;
}

/* The sum of the other workers' accept counters: it moves when any of them
 * accepted something. */
static uint64_t others_accepted(const pn_balance *b, int me)
{
    slot *slots = (slot *)b->slots;
    int used = atomic_load_explicit((atomic_int *)&b->used, memory_order_relaxed);
    uint64_t sum = 0;
    for (int i = 0; i < used; i++)
        if (i != me)
            sum += atomic_load_explicit(&slots[i].accepted, memory_order_relaxed);
    return sum;
}

/* ---- seat ------------------------------------------------------------------ */

void pn_balance_seat_init(pn_balance_seat *s)
{
    memset(s, 0, sizeof(*s));
    s->tfd = -1;
    s->slot = -1;
}

int pn_balance_seat_join(pn_balance_seat *s, pn_balance *b, int i, size_t conns)
{
    if (i < 0 || i >= b->nslots) {
        errno = EINVAL;
        return -1;
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0)
        return -1;
    pn_balance_seat_init(s);
    s->table = b;
    s->slot = i;
    s->tfd = tfd;
    s->gen = atomic_load_explicit(&b->slots[i].gen, memory_order_relaxed);
    note_used(b, i);
    pn_balance_set_conns(b, i, conns);
    pn_balance_set_accepted(b, i, 0);
    atomic_store_explicit(&b->slots[i].accepting, 1, memory_order_relaxed);
    return 0;
}

int pn_balance_seat_fd(const pn_balance_seat *s)
{
    return s->tfd;
}

static void disarm(pn_balance_seat *s)
{
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    timerfd_settime(s->tfd, 0, &its, NULL);
    uint64_t v;
    ssize_t r = read(s->tfd, &v, sizeof(v)); /* an expiry that came meanwhile */
    (void)r;
    s->aside = 0;
}

void pn_balance_seat_leave(pn_balance_seat *s)
{
    if (s->table == NULL)
        return;
    slot *sl = &s->table->slots[s->slot];
    /* A worker freed late (its Python object outlived its thread) must not
     * clear the slot the supervisor has given to its successor since. */
    if (atomic_load_explicit(&sl->gen, memory_order_relaxed) == s->gen) {
        atomic_store_explicit(&sl->accepting, 0, memory_order_relaxed);
        atomic_store_explicit(&sl->conns, 0, memory_order_relaxed);
    }
    disarm(s);
    s->force_until = s->stalled_since = 0;
}

void pn_balance_seat_close(pn_balance_seat *s)
{
    pn_balance_seat_leave(s);
    if (s->tfd >= 0)
        close(s->tfd);
    pn_balance_seat_init(s);
}

int pn_balance_seat_decide(pn_balance_seat *s, size_t conns)
{
    if (s->table == NULL)
        return PN_BALANCE_ACCEPT;
    if (s->force_until) {
        int fresh = pn_monotonic_ms() <= s->force_until;
        s->force_until = 0;
        if (fresh)
            return s->force_all ? PN_BALANCE_TAKE_ALL : PN_BALANCE_ACCEPT;
    }
    uint32_t mine = conns > UINT32_MAX ? UINT32_MAX : (uint32_t)conns;
    if (pn_balance_over_share(s->table, s->slot, mine))
        return PN_BALANCE_ASIDE;
    s->stalled_since = 0; /* within our share: a run of fruitless waits ends */
    return PN_BALANCE_ACCEPT;
}

int pn_balance_seat_stand_aside(pn_balance_seat *s)
{
    if (s->table == NULL)
        return -1;
    if (s->aside)
        return 0;
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_nsec = PN_BALANCE_WAIT_MS * 1000000L;
    if (timerfd_settime(s->tfd, 0, &its, NULL) < 0)
        return -1; /* nothing would end the wait */
    s->aside = 1;
    s->aside_since = pn_monotonic_ms();
    s->others_before = others_accepted(s->table, s->slot);
    return 0;
}

void pn_balance_seat_expired(pn_balance_seat *s)
{
    uint64_t v;
    ssize_t r = read(s->tfd, &v, sizeof(v));
    (void)r;
    if (!s->aside)
        return;
    s->aside = 0;
    if (others_accepted(s->table, s->slot) != s->others_before) {
        s->stalled_since = 0; /* they accept: decide afresh */
        return;
    }
    /* Nobody else accepted while we stood aside: they wait for a CPU, or
     * are busy (a handler holding their loop) or gone.  The connection is
     * ours (the listener event that follows at once takes it), and after
     * PN_BALANCE_STUCK_MS of this, everything that waits. */
    uint64_t now = pn_monotonic_ms();
    if (s->stalled_since == 0)
        s->stalled_since = s->aside_since;
    s->force_until = now + PN_BALANCE_WAIT_MS;
    s->force_all = now - s->stalled_since >= PN_BALANCE_STUCK_MS;
}
