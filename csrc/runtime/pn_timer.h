/*
 * pn_timer — a hashed timing wheel for connection deadlines.
 *
 * Runtime layer: plain C, no Python.h.  One wheel per worker; only the
 * worker thread that owns it touches it (no locking).  Timers are intrusive
 * (embedded in the connection), so arming, re-arming and cancelling are O(1)
 * and allocate nothing: a keep-alive connection re-arms its deadline on every
 * request at the cost of a few pointer writes.
 *
 * Resolution is PN_TIMER_TICK_MS; a deadline fires at most one tick late.
 * Deadlines beyond one turn of the wheel stay in their slot and are skipped
 * until their turn comes (the absolute deadline is kept in the timer).
 */
#ifndef PN_TIMER_H
#define PN_TIMER_H

#include <stdint.h>

#define PN_TIMER_TICK_MS 100
#define PN_TIMER_SLOTS 512 /* power of two: 51.2 s per turn */

typedef struct pn_timer {
    struct pn_timer *next, *prev; /* slot list; prev == NULL when not armed */
    uint64_t deadline_ms;         /* absolute, monotonic milliseconds */
} pn_timer;

typedef struct pn_wheel {
    pn_timer slots[PN_TIMER_SLOTS]; /* list heads (sentinels) */
    uint64_t now_ms;                /* time of the last advance */
    uint64_t cursor;                /* next tick to process, in ticks */
    uint64_t armed;                 /* number of armed timers */
} pn_wheel;

uint64_t pn_monotonic_ms(void);

void pn_wheel_init(pn_wheel *w, uint64_t now_ms);
static inline int pn_timer_armed(const pn_timer *t)
{
    return t->prev != 0;
}
/* Arm (or re-arm) t to fire at deadline_ms. */
void pn_timer_arm(pn_wheel *w, pn_timer *t, uint64_t deadline_ms);
void pn_timer_cancel(pn_wheel *w, pn_timer *t);

/* Advance the wheel to now_ms and unlink every expired timer, calling
 * fire(t, ctx) for each.  fire may re-arm or cancel any timer. */
void pn_wheel_advance(pn_wheel *w, uint64_t now_ms, void (*fire)(pn_timer *t, void *ctx),
                      void *ctx);

#endif
