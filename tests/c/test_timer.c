/*
 * Unit tests for pn_timer, the hashed timing wheel of connection deadlines.
 * Time is simulated: the tests pass their own `now` to pn_wheel_advance, so
 * they are exact and take no wall time.
 */
#include "pn_timer.h"

#include "pn_test.h"

#include <stddef.h>

#define TICK PN_TIMER_TICK_MS
#define TURN ((uint64_t)PN_TIMER_SLOTS * PN_TIMER_TICK_MS) /* one turn of the wheel */
#define T0 1000000u /* an arbitrary start, on a tick boundary */

/* What fired, in order; the callback may also re-arm or cancel timers. */
typedef struct fired_log {
    pn_timer *order[16];
    uint64_t at[16]; /* the `now` of the advance that fired it */
    int n;
    uint64_t now;
    pn_wheel *wheel;
    pn_timer *rearm;     /* re-arm this one (when it fires) ... */
    uint64_t rearm_to;   /* ... to this deadline */
    pn_timer *cancel_me; /* cancel this one when anything fires */
} fired_log;

static void on_fire(pn_timer *t, void *ctx)
{
    fired_log *log = ctx;
    if (log->n < 16) {
        log->order[log->n] = t;
        log->at[log->n] = log->now;
    }
    log->n++;
    if (t == log->rearm) {
        log->rearm = NULL;
        pn_timer_arm(log->wheel, t, log->rearm_to);
    }
    if (log->cancel_me) {
        pn_timer_cancel(log->wheel, log->cancel_me);
        log->cancel_me = NULL;
    }
}

static void advance(pn_wheel *w, fired_log *log, uint64_t now)
{
    log->now = now;
    log->wheel = w;
    pn_wheel_advance(w, now, on_fire, log);
}

PN_TEST(a_timer_fires_at_its_deadline_and_not_before)
{
    pn_wheel w;
    pn_timer t = {0};
    fired_log log = {0};
    pn_wheel_init(&w, T0);
    PN_CHECK(!pn_timer_armed(&t));
    pn_timer_arm(&w, &t, T0 + 5 * TICK);
    PN_CHECK(pn_timer_armed(&t));
    PN_CHECK_EQ_INT(w.armed, 1);
    for (uint64_t now = T0; now < T0 + 5 * TICK; now += TICK / 4)
        advance(&w, &log, now);
    PN_CHECK_EQ_INT(log.n, 0);
    advance(&w, &log, T0 + 5 * TICK);
    PN_CHECK_EQ_INT(log.n, 1);
    PN_CHECK(log.order[0] == &t);
    PN_CHECK(!pn_timer_armed(&t));
    PN_CHECK_EQ_INT(w.armed, 0);
    advance(&w, &log, T0 + 50 * TICK); /* fires once only */
    PN_CHECK_EQ_INT(log.n, 1);
}

PN_TEST(a_deadline_inside_a_tick_does_not_fire_early_at_the_start_of_that_tick)
{
    pn_wheel w;
    pn_timer t = {0};
    fired_log log = {0};
    pn_wheel_init(&w, T0);
    pn_timer_arm(&w, &t, T0 + 3 * TICK + 60);
    advance(&w, &log, T0 + 3 * TICK); /* the deadline's slot comes round, 60 ms early */
    PN_CHECK_EQ_INT(log.n, 0);
    PN_CHECK(pn_timer_armed(&t));
    advance(&w, &log, T0 + 3 * TICK + 59);
    PN_CHECK_EQ_INT(log.n, 0);
    advance(&w, &log, T0 + 3 * TICK + 60);
    PN_CHECK_EQ_INT(log.n, 1);
}

PN_TEST(a_late_advance_fires_everything_due_in_deadline_order)
{
    pn_wheel w;
    pn_timer a = {0}, b = {0}, c = {0}, later = {0};
    fired_log log = {0};
    pn_wheel_init(&w, T0);
    pn_timer_arm(&w, &c, T0 + 7 * TICK);
    pn_timer_arm(&w, &a, T0 + 1 * TICK);
    pn_timer_arm(&w, &b, T0 + 4 * TICK);
    pn_timer_arm(&w, &later, T0 + 20 * TICK);
    advance(&w, &log, T0 + 10 * TICK);
    PN_CHECK_EQ_INT(log.n, 3);
    PN_CHECK(log.order[0] == &a);
    PN_CHECK(log.order[1] == &b);
    PN_CHECK(log.order[2] == &c);
    PN_CHECK(pn_timer_armed(&later));
    PN_CHECK_EQ_INT(w.armed, 1);
}

PN_TEST(a_cancelled_timer_never_fires)
{
    pn_wheel w;
    pn_timer t = {0}, other = {0};
    fired_log log = {0};
    pn_wheel_init(&w, T0);
    pn_timer_arm(&w, &t, T0 + 2 * TICK);
    pn_timer_arm(&w, &other, T0 + 2 * TICK);
    pn_timer_cancel(&w, &t);
    PN_CHECK(!pn_timer_armed(&t));
    PN_CHECK_EQ_INT(w.armed, 1);
    pn_timer_cancel(&w, &t); /* cancelling twice is harmless */
    PN_CHECK_EQ_INT(w.armed, 1);
    advance(&w, &log, T0 + 10 * TICK);
    PN_CHECK_EQ_INT(log.n, 1);
    PN_CHECK(log.order[0] == &other);
    PN_CHECK_EQ_INT(w.armed, 0);
}

PN_TEST(rearming_moves_the_deadline_instead_of_adding_one)
{
    pn_wheel w;
    pn_timer t = {0};
    fired_log log = {0};
    pn_wheel_init(&w, T0);
    pn_timer_arm(&w, &t, T0 + 2 * TICK);
    pn_timer_arm(&w, &t, T0 + 8 * TICK); /* a keep-alive connection's next request */
    PN_CHECK_EQ_INT(w.armed, 1);
    advance(&w, &log, T0 + 5 * TICK);
    PN_CHECK_EQ_INT(log.n, 0);
    pn_timer_arm(&w, &t, T0 + 6 * TICK); /* earlier again */
    advance(&w, &log, T0 + 6 * TICK);
    PN_CHECK_EQ_INT(log.n, 1);
    PN_CHECK_EQ_INT(w.armed, 0);
}

PN_TEST(a_deadline_already_past_fires_at_the_next_advance)
{
    pn_wheel w;
    pn_timer t = {0};
    fired_log log = {0};
    pn_wheel_init(&w, T0);
    advance(&w, &log, T0 + 30 * TICK);
    pn_timer_arm(&w, &t, T0 + 2 * TICK); /* behind the cursor */
    advance(&w, &log, T0 + 30 * TICK + 1);
    PN_CHECK_EQ_INT(log.n, 1);
    PN_CHECK(!pn_timer_armed(&t));
}

PN_TEST(a_deadline_beyond_one_turn_waits_for_its_own_turn)
{
    pn_wheel w;
    pn_timer t = {0};
    fired_log log = {0};
    pn_wheel_init(&w, T0);
    uint64_t deadline = T0 + TURN + 3 * TICK; /* same slot as T0 + 3 ticks */
    pn_timer_arm(&w, &t, deadline);
    for (uint64_t now = T0; now < deadline; now += TICK)
        advance(&w, &log, now);
    PN_CHECK_EQ_INT(log.n, 0);
    PN_CHECK(pn_timer_armed(&t));
    PN_CHECK_EQ_INT(w.armed, 1);
    advance(&w, &log, deadline);
    PN_CHECK_EQ_INT(log.n, 1);
}

PN_TEST(a_long_stall_fires_every_due_timer_once)
{
    pn_wheel w;
    pn_timer t[8];
    fired_log log = {0};
    memset(t, 0, sizeof(t));
    pn_wheel_init(&w, T0);
    for (int i = 0; i < 8; i++) /* spread over the wheel and beyond one turn */
        pn_timer_arm(&w, &t[i], T0 + (uint64_t)i * (TURN / 3) + 1);
    advance(&w, &log, T0 + 10 * TURN); /* the process slept for minutes */
    PN_CHECK_EQ_INT(log.n, 8);
    PN_CHECK_EQ_INT(w.armed, 0);
    for (int i = 0; i < 8; i++)
        PN_CHECK(!pn_timer_armed(&t[i]));
    /* The wheel still works afterwards. */
    pn_timer u = {0};
    pn_timer_arm(&w, &u, T0 + 10 * TURN + 2 * TICK);
    advance(&w, &log, T0 + 10 * TURN + TICK);
    PN_CHECK_EQ_INT(log.n, 8);
    advance(&w, &log, T0 + 10 * TURN + 2 * TICK);
    PN_CHECK_EQ_INT(log.n, 9);
}

PN_TEST(a_timer_rearmed_from_its_callback_fires_again_only_at_its_new_deadline)
{
    pn_wheel w;
    pn_timer t = {0};
    fired_log log = {0};
    pn_wheel_init(&w, T0);
    pn_timer_arm(&w, &t, T0 + 2 * TICK);
    /* One full turn later: the very slot being processed. */
    log.rearm = &t;
    log.rearm_to = T0 + 2 * TICK + TURN;
    advance(&w, &log, T0 + 2 * TICK);
    PN_CHECK_EQ_INT(log.n, 1);
    PN_CHECK(pn_timer_armed(&t));
    PN_CHECK_EQ_INT(w.armed, 1);
    advance(&w, &log, T0 + 2 * TICK + TURN - 1);
    PN_CHECK_EQ_INT(log.n, 1);
    advance(&w, &log, T0 + 2 * TICK + TURN);
    PN_CHECK_EQ_INT(log.n, 2);
    PN_CHECK_EQ_INT(w.armed, 0);
}

PN_TEST(a_timer_cancelled_by_another_timers_callback_does_not_fire)
{
    pn_wheel w;
    pn_timer first = {0}, second = {0};
    fired_log log = {0};
    pn_wheel_init(&w, T0);
    /* Same slot: both are on the list being walked when first fires. */
    pn_timer_arm(&w, &first, T0 + 4 * TICK);
    pn_timer_arm(&w, &second, T0 + 4 * TICK + 1);
    log.cancel_me = &second;
    advance(&w, &log, T0 + 5 * TICK);
    PN_CHECK_EQ_INT(log.n, 1);
    PN_CHECK(log.order[0] == &first);
    PN_CHECK(!pn_timer_armed(&second));
    PN_CHECK_EQ_INT(w.armed, 0);
}

PN_TEST(monotonic_clock_never_goes_back)
{
    uint64_t a = pn_monotonic_ms();
    uint64_t b = pn_monotonic_ms();
    PN_CHECK(a > 0);
    PN_CHECK(b >= a);
}

int main(void)
{
    PN_RUN(a_timer_fires_at_its_deadline_and_not_before);
    PN_RUN(a_deadline_inside_a_tick_does_not_fire_early_at_the_start_of_that_tick);
    PN_RUN(a_late_advance_fires_everything_due_in_deadline_order);
    PN_RUN(a_cancelled_timer_never_fires);
    PN_RUN(rearming_moves_the_deadline_instead_of_adding_one);
    PN_RUN(a_deadline_already_past_fires_at_the_next_advance);
    PN_RUN(a_deadline_beyond_one_turn_waits_for_its_own_turn);
    PN_RUN(a_long_stall_fires_every_due_timer_once);
    PN_RUN(a_timer_rearmed_from_its_callback_fires_again_only_at_its_new_deadline);
    PN_RUN(a_timer_cancelled_by_another_timers_callback_does_not_fire);
    PN_RUN(monotonic_clock_never_goes_back);
    return pn_test_summary();
}
