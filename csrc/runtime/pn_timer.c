#include "pn_timer.h"

#include <time.h>

uint64_t pn_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void pn_wheel_init(pn_wheel *w, uint64_t now_ms)
{
    for (int i = 0; i < PN_TIMER_SLOTS; i++)
        w->slots[i].next = w->slots[i].prev = &w->slots[i];
    w->now_ms = now_ms;
    w->cursor = now_ms / PN_TIMER_TICK_MS;
    w->armed = 0;
}

static void unlink_timer(pn_timer *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = 0;
}

void pn_timer_arm(pn_wheel *w, pn_timer *t, uint64_t deadline_ms)
{
    if (t->prev)
        unlink_timer(t);
    else
        w->armed++;
    t->deadline_ms = deadline_ms;
    uint64_t tick = deadline_ms / PN_TIMER_TICK_MS;
    /* A deadline already in the past goes to the next tick processed. */
    if (tick < w->cursor)
        tick = w->cursor;
    pn_timer *head = &w->slots[tick & (PN_TIMER_SLOTS - 1)];
    t->next = head;
    t->prev = head->prev;
    head->prev->next = t;
    head->prev = t;
}

void pn_timer_cancel(pn_wheel *w, pn_timer *t)
{
    if (!t->prev)
        return;
    unlink_timer(t);
    w->armed--;
}

void pn_wheel_advance(pn_wheel *w, uint64_t now_ms, void (*fire)(pn_timer *t, void *ctx), void *ctx)
{
    w->now_ms = now_ms;
    uint64_t target = now_ms / PN_TIMER_TICK_MS;
    /* After a long stall there is no point walking more than one turn. */
    if (target - w->cursor > PN_TIMER_SLOTS)
        w->cursor = target - PN_TIMER_SLOTS;
    while (w->cursor <= target && w->armed > 0) {
        pn_timer *head = &w->slots[w->cursor & (PN_TIMER_SLOTS - 1)];
        /* Detach the slot's list first: fire() may re-arm timers into this
         * very slot (a deadline one full turn later). */
        pn_timer pending;
        if (head->next == head) {
            w->cursor++;
            continue;
        }
        pending.next = head->next;
        pending.prev = head->prev;
        pending.next->prev = &pending;
        pending.prev->next = &pending;
        head->next = head->prev = head;
        while (pending.next != &pending) {
            pn_timer *t = pending.next;
            unlink_timer(t);
            if (t->deadline_ms > now_ms) {
                /* Not due yet (a later turn): put it back. */
                w->armed--;
                /* Due a few ms later within this tick, or a later turn:
                 * arm() puts it back (at the cursor slot at the earliest,
                 * which the next advance looks at again). */
                pn_timer_arm(w, t, t->deadline_ms);
                continue;
            }
            w->armed--;
            fire(t, ctx);
        }
        if (w->cursor == target)
            break;
        w->cursor++;
    }
    if (w->armed == 0 || w->cursor < target)
        w->cursor = target;
}
