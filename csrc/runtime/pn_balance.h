/*
 * pn_balance — balanced accept for workers that share a listening socket.
 *
 * Runtime layer: plain C, no Python.h.
 *
 * Workers that share a socket race for each new connection, and which one
 * wins is up to the scheduler: a burst can land on one worker.  So each
 * worker publishes its open-connection count in a table all of them can
 * read, and one that holds more than its share (the mean of the accepting
 * workers plus a slack) stands aside: it takes the socket out of its epoll
 * set for PN_BALANCE_WAIT_MS, during which the kernel wakes the others
 * (the idea of nginx's accept_disabled).  It never stalls the server: when
 * the wait ends it listens again and decides afresh, unless no other worker
 * accepted anything meanwhile: then it accepts one connection without
 * asking the table, and once the others have accepted nothing for
 * PN_BALANCE_STUCK_MS (stuck in a long handler, or gone) it takes whatever
 * is waiting.
 *
 * The table (pn_balance) lives in one mmap(MAP_SHARED | MAP_ANONYMOUS)
 * region, made before workers start: threads of one process and processes
 * forked after it see the same memory, so one object serves both worker
 * modes.  One slot per live worker, one cache line each so that a worker's
 * stores never contend with another's.  Every shared field is an atomic
 * (relaxed: the counts are a heuristic, nothing else is published through
 * them); each is written by one party at a time:
 *
 *   - the supervisor (whoever made the table) gives each worker a slot index
 *     no other live worker holds, and resets the slot with pn_balance_reset
 *     before the worker starts and after it exited (a crashed process
 *     leaves its slot stale);
 *   - the worker then owns its slot (pn_balance_seat: join, publish, leave)
 *     until it stops accepting (drain, exit), when it clears it, unless the
 *     slot was reset since it joined (each reset is a new generation: a
 *     worker freed late never clears its successor's slot);
 *   - every worker reads every slot.
 *
 * A seat is the worker's side: its slot and its stand-aside state and timer.
 * It belongs to the worker's thread, like the rest of the worker.
 */
#ifndef PN_BALANCE_H
#define PN_BALANCE_H

#include <stddef.h>
#include <stdint.h>

/* How long a worker stands aside before it listens again.  Long enough for
 * a sleeping worker to be woken and scheduled (and, in thread mode on a GIL
 * build, to get the GIL), short enough that a connection nobody else takes
 * waits no longer than a few milliseconds. */
#define PN_BALANCE_WAIT_MS 3
/* Others that accepted nothing for this long, over several waits, are not
 * merely waiting for a CPU (on a loaded machine a runnable process can wait
 * tens of ms): a worker standing aside then takes a whole batch at each
 * wait's end instead of one connection.  Until then a worker stuck in a
 * handler costs each new connection one wait. */
#define PN_BALANCE_STUCK_MS 100

typedef struct pn_balance pn_balance;

/* ---- the table (any thread; creation and reset by the supervisor) ------ */

/* A table of nslots slots in a shared anonymous mapping.  NULL with errno. */
pn_balance *pn_balance_new(int nslots);
/* Unmap it.  No worker may use it any more (in this process). */
void pn_balance_free(pn_balance *b);
int pn_balance_nslots(const pn_balance *b);
/* Slot `slot` is about to be given to a new worker, or its worker exited:
 * not accepting, no connections, a new generation.  Returns 0, or -1 for an
 * index out of range. */
int pn_balance_reset(pn_balance *b, int slot);

/* What a slot says, read with relaxed loads (for tests and diagnostics). */
typedef struct pn_balance_view {
    int accepting;
    uint32_t conns;
    uint64_t accepted;
} pn_balance_view;
int pn_balance_get(const pn_balance *b, int slot, pn_balance_view *out);

/* The decision, on its own: would the worker in `slot`, holding `mine`
 * connections, be over its share?  Compares with the other slots that are
 * accepting; 0 when it is the only one. */
int pn_balance_over_share(const pn_balance *b, int slot, uint32_t mine);

/* ---- a worker's seat (the worker's thread only) ------------------------ */

typedef struct pn_balance_seat {
    pn_balance *table; /* NULL: no balancing (every call below is a no-op) */
    int slot;
    unsigned gen;           /* the slot's reset generation when joined */
    int tfd;                /* timerfd of the wait, -1 */
    int aside;              /* standing aside: the timer runs */
    int force_all;          /* with force_until: a whole batch, not one */
    uint64_t aside_since;   /* monotonic ms: when the current wait began */
    uint64_t others_before; /* the others' accept counts then */
    uint64_t force_until;   /* monotonic ms: a wait found nobody else accepting */
    uint64_t stalled_since; /* start of the run of such waits, or 0 */
    uint64_t accepted;      /* this worker's accepts (published in its slot) */
} pn_balance_seat;

/* What pn_balance_seat_decide says about a waiting connection. */
enum {
    PN_BALANCE_ACCEPT = 0,   /* take it (the usual batch), within our share or not */
    PN_BALANCE_ASIDE = 1,    /* over our share: call pn_balance_seat_stand_aside */
    PN_BALANCE_TAKE_ALL = 2, /* the others are stuck: take a whole batch */
};

/* An unattached seat (table NULL, tfd -1). */
void pn_balance_seat_init(pn_balance_seat *s);
/* Take slot `slot` of `b` (reset by the supervisor), holding `conns`
 * connections: creates the seat's timerfd (pn_balance_seat_fd, to be
 * polled for readability) and marks the slot accepting.  0, or -1 with
 * errno (the seat stays unattached). */
int pn_balance_seat_join(pn_balance_seat *s, pn_balance *b, int slot, size_t conns);
int pn_balance_seat_fd(const pn_balance_seat *s);
/* Stop accepting: the slot no longer attracts or repels the others; the
 * wait is cancelled.  For good: a worker that stops accepting (drain)
 * never starts again.  The seat stays attached until _close. */
void pn_balance_seat_leave(pn_balance_seat *s);
/* Leave, close the timerfd, detach. */
void pn_balance_seat_close(pn_balance_seat *s);

/* The open-connection count changed (relaxed store). */
static inline void pn_balance_seat_publish(pn_balance_seat *s, size_t conns);
/* A connection was accepted; conns is the new count. */
static inline void pn_balance_seat_accepted(pn_balance_seat *s, size_t conns);

/* Before accepting, holding `conns` connections. */
int pn_balance_seat_decide(pn_balance_seat *s, size_t conns);
/* Start the wait: returns 0, and the caller takes its listeners out of its
 * epoll set until pn_balance_seat_expired; -1 when no wait could be started
 * (the caller accepts instead).  While a wait runs, a second call returns 0
 * and changes nothing: the deadline stands. */
int pn_balance_seat_stand_aside(pn_balance_seat *s);
/* The timerfd is readable: the wait is over (the caller listens again).
 * If no other worker accepted during it, the next decide (within
 * PN_BALANCE_WAIT_MS) says ACCEPT whatever the shares, or TAKE_ALL after
 * PN_BALANCE_STUCK_MS of such waits. */
void pn_balance_seat_expired(pn_balance_seat *s);

/* ---- inline ------------------------------------------------------------- */

/* Stores into a slot, for its owner only (through the seat above). */
void pn_balance_set_conns(pn_balance *b, int slot, size_t conns);
void pn_balance_set_accepted(pn_balance *b, int slot, uint64_t accepted);

static inline void pn_balance_seat_publish(pn_balance_seat *s, size_t conns)
{
    if (s->table)
        pn_balance_set_conns(s->table, s->slot, conns);
}

static inline void pn_balance_seat_accepted(pn_balance_seat *s, size_t conns)
{
    if (s->table) {
        pn_balance_set_conns(s->table, s->slot, conns);
        pn_balance_set_accepted(s->table, s->slot, ++s->accepted);
    }
}

#endif
