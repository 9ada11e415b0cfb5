/*
 * Unit tests for balanced accept (pn_balance.c) and for the accept path
 * (pn_accept.c) that uses it: the table and its decision on their own, then
 * real workers on a real loopback listening socket, polled by hand the way
 * the bridge polls them (so "a worker that is never polled" is one stuck in
 * a long handler).
 *
 * The waits are real time: PN_BALANCE_WAIT_MS is a few milliseconds; the
 * checks allow generous lateness for a loaded machine.
 */
#include "pn_balance.h"
#include "pn_worker.h"

#include "pn_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the table and the decision ------------------------------------------ */

/* Slots 0..n-1 joined (accepting) with the given counts, through seats the
 * way workers join; the seats are returned for the caller to close. */
static void seat_all(pn_balance *b, pn_balance_seat *seats, const unsigned *conns, int n)
{
    for (int i = 0; i < n; i++) {
        pn_balance_reset(b, i);
        PN_CHECK_EQ_INT(pn_balance_seat_join(&seats[i], b, i, conns[i]), 0);
    }
}

static void close_all(pn_balance_seat *seats, int n)
{
    for (int i = 0; i < n; i++)
        pn_balance_seat_close(&seats[i]);
}

PN_TEST(a_worker_alone_never_stands_aside)
{
    pn_balance *b = pn_balance_new(8);
    pn_balance_seat s;
    pn_balance_seat_init(&s);
    PN_CHECK_EQ_INT(pn_balance_seat_join(&s, b, 3, 1000), 0);
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 3, 1000), 0);
    PN_CHECK_EQ_INT(pn_balance_seat_decide(&s, 1000), PN_BALANCE_ACCEPT);
    pn_balance_seat_close(&s);
    pn_balance_free(b);
}

PN_TEST(a_worker_above_the_mean_plus_slack_stands_aside)
{
    pn_balance *b = pn_balance_new(8);
    pn_balance_seat seats[2];
    unsigned conns[2] = {0, 0};
    seat_all(b, seats, conns, 2);
    /* Two workers, the other holding 10: mean (10+m)/2, slack 1 + mean/8.
     * 14 is within it (mean 12, slack 2), 15 is not. */
    pn_balance_seat_publish(&seats[1], 10);
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 10), 0);
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 14), 0);
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 15), 1);
    PN_CHECK_EQ_INT(pn_balance_seat_decide(&seats[0], 14), PN_BALANCE_ACCEPT);
    PN_CHECK_EQ_INT(pn_balance_seat_decide(&seats[0], 15), PN_BALANCE_ASIDE);
    /* From an empty start, the third connection in a row is one too many. */
    pn_balance_seat_publish(&seats[1], 0);
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 2), 0);
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 3), 1);
    close_all(seats, 2);
    pn_balance_free(b);
}

PN_TEST(the_slack_grows_with_the_mean)
{
    pn_balance *b = pn_balance_new(8);
    pn_balance_seat seats[4];
    unsigned conns[4] = {0, 800, 800, 800};
    seat_all(b, seats, conns, 4);
    /* mean (2400+m)/4 ~ 830, slack 1 + 104: 930 stays, 1000 goes aside. */
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 930), 0);
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 1000), 1);
    close_all(seats, 4);
    pn_balance_free(b);
}

PN_TEST(a_worker_that_left_or_was_reset_counts_for_nothing)
{
    pn_balance *b = pn_balance_new(8);
    pn_balance_seat seats[3];
    unsigned conns[3] = {5, 0, 0};
    seat_all(b, seats, conns, 3);
    /* Slot 1 empty and accepting: 5 is too many (mean 5/3, slack 1). */
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 5), 1);
    /* Slots 1 and 2 stop accepting (drain): worker 0 is alone. */
    pn_balance_seat_leave(&seats[1]);
    pn_balance_seat_leave(&seats[2]);
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 5), 0);
    pn_balance_view v;
    PN_CHECK_EQ_INT(pn_balance_get(b, 1, &v), 0);
    PN_CHECK_EQ_INT(v.accepting, 0);
    PN_CHECK_EQ_INT(v.conns, 0);
    /* A worker process that died accepting (slot stale, at 0 connections)
     * would repel the others until the supervisor resets its slot. */
    pn_balance_seat_close(&seats[2]);
    pn_balance_seat s2;
    pn_balance_seat_init(&s2);
    PN_CHECK_EQ_INT(pn_balance_seat_join(&s2, b, 2, 0), 0);
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 5), 1);
    PN_CHECK_EQ_INT(pn_balance_reset(b, 2), 0);
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 5), 0);
    /* The slot's next worker joins; the old one, freed late, leaves: the
     * new one's place stands. */
    pn_balance_seat s3;
    pn_balance_seat_init(&s3);
    PN_CHECK_EQ_INT(pn_balance_seat_join(&s3, b, 2, 0), 0);
    pn_balance_seat_leave(&s2);
    PN_CHECK_EQ_INT(pn_balance_get(b, 2, &v), 0);
    PN_CHECK_EQ_INT(v.accepting, 1);
    pn_balance_seat_close(&s3);
    PN_CHECK_EQ_INT(pn_balance_reset(b, 8), -1);
    PN_CHECK_EQ_INT(pn_balance_get(b, -1, &v), -1);
    pn_balance_seat_close(&s2);
    close_all(seats, 2);
    pn_balance_free(b);
}

PN_TEST(counts_published_by_one_process_are_seen_by_another)
{
    pn_balance *b = pn_balance_new(4);
    pn_balance_seat s;
    pn_balance_seat_init(&s);
    PN_CHECK_EQ_INT(pn_balance_seat_join(&s, b, 0, 0), 0);
    pid_t pid = fork();
    if (pid == 0) {
        pn_balance_seat c;
        pn_balance_seat_init(&c);
        pn_balance_reset(b, 2);
        int ok = pn_balance_seat_join(&c, b, 2, 0) == 0;
        for (int i = 1; i <= 7; i++)
            pn_balance_seat_accepted(&c, (size_t)i);
        _exit(ok ? 0 : 1); /* leaves the slot as a crash would */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    PN_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pn_balance_view v;
    pn_balance_get(b, 2, &v);
    PN_CHECK_EQ_INT(v.accepting, 1);
    PN_CHECK_EQ_INT(v.conns, 7);
    PN_CHECK_EQ_INT(v.accepted, 7);
    /* The child's 7 against our 0: we are below the mean, it would not be. */
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 0, 0), 0);
    PN_CHECK_EQ_INT(pn_balance_over_share(b, 2, 7), 1);
    pn_balance_seat_close(&s);
    pn_balance_free(b);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait until fd is readable, at most ms; 1 when it is. */
static int readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

PN_TEST(a_wait_ends_with_take_all_only_if_nobody_else_accepted)
{
    pn_balance *b = pn_balance_new(4);
    pn_balance_seat seats[2];
    unsigned conns[2] = {9, 0};
    seat_all(b, seats, conns, 2);
    PN_CHECK_EQ_INT(pn_balance_seat_decide(&seats[0], 9), PN_BALANCE_ASIDE);
    uint64_t t0 = now_ms();
    PN_CHECK_EQ_INT(pn_balance_seat_stand_aside(&seats[0]), 0);
    PN_CHECK(seats[0].aside);
    PN_CHECK(!readable(pn_balance_seat_fd(&seats[0]), 0));
    PN_CHECK(readable(pn_balance_seat_fd(&seats[0]), 1000));
    PN_CHECK(now_ms() - t0 >= PN_BALANCE_WAIT_MS - 1);
    pn_balance_seat_expired(&seats[0]);
    PN_CHECK(!seats[0].aside);
    /* The other worker accepted nothing: one connection is ours. */
    PN_CHECK_EQ_INT(pn_balance_seat_decide(&seats[0], 9), PN_BALANCE_ACCEPT);
    PN_CHECK_EQ_INT(pn_balance_seat_decide(&seats[0], 9), PN_BALANCE_ASIDE);
    /* Fruitless waits in a row, for PN_BALANCE_STUCK_MS: it is stuck, take
     * everything. */
    int decision = PN_BALANCE_ASIDE, waits = 1;
    while (decision != PN_BALANCE_TAKE_ALL && now_ms() - t0 < 1000) {
        PN_CHECK_EQ_INT(pn_balance_seat_stand_aside(&seats[0]), 0);
        PN_CHECK(readable(pn_balance_seat_fd(&seats[0]), 1000));
        pn_balance_seat_expired(&seats[0]);
        waits++;
        decision = pn_balance_seat_decide(&seats[0], 9);
        if (decision != PN_BALANCE_TAKE_ALL)
            PN_CHECK_EQ_INT(decision, PN_BALANCE_ACCEPT);
        else
            PN_CHECK(now_ms() - t0 >= PN_BALANCE_STUCK_MS);
    }
    PN_CHECK_EQ_INT(decision, PN_BALANCE_TAKE_ALL);
    PN_CHECK(waits > 2); /* one connection per wait before that */
    /* Within its share again, the run is over: the next fruitless wait
     * gives one connection, not all. */
    PN_CHECK_EQ_INT(pn_balance_seat_decide(&seats[0], 0), PN_BALANCE_ACCEPT);
    PN_CHECK_EQ_INT(pn_balance_seat_stand_aside(&seats[0]), 0);
    PN_CHECK(readable(pn_balance_seat_fd(&seats[0]), 1000));
    pn_balance_seat_expired(&seats[0]);
    PN_CHECK_EQ_INT(pn_balance_seat_decide(&seats[0], 9), PN_BALANCE_ACCEPT);
    /* This time the other accepts during the wait: decide afresh. */
    PN_CHECK_EQ_INT(pn_balance_seat_stand_aside(&seats[0]), 0);
    pn_balance_seat_accepted(&seats[1], 1);
    PN_CHECK(readable(pn_balance_seat_fd(&seats[0]), 1000));
    pn_balance_seat_expired(&seats[0]);
    PN_CHECK_EQ_INT(pn_balance_seat_decide(&seats[0], 9), PN_BALANCE_ASIDE);
    close_all(seats, 2);
    pn_balance_free(b);
}

PN_TEST(an_unattached_seat_always_accepts)
{
    pn_balance_seat s;
    pn_balance_seat_init(&s);
    PN_CHECK_EQ_INT(pn_balance_seat_decide(&s, 123456), PN_BALANCE_ACCEPT);
    PN_CHECK_EQ_INT(pn_balance_seat_stand_aside(&s), -1);
    pn_balance_seat_publish(&s, 3);
    pn_balance_seat_accepted(&s, 4);
    pn_balance_seat_close(&s);
}

/* ---- workers on a real listening socket ----------------------------------- */

static int hook_on_request(void *ctx, pn_stream *s, const pn_http1_request *req)
{
    (void)ctx;
    (void)s;
    (void)req;
    return -1; /* no test sends a request */
}
static void hook_stream(void *ctx, pn_stream *s)
{
    (void)ctx;
    (void)s;
}
static void hook_wakeup(void *ctx)
{
    (void)ctx;
}
static void hook_on_ws(void *ctx, pn_conn *c, int event)
{
    (void)ctx;
    (void)c;
    (void)event;
}

static const pn_worker_hooks hooks = {
    .on_request = hook_on_request,
    .on_body = hook_stream,
    .on_drain = hook_stream,
    .on_close = hook_stream,
    .wakeup = hook_wakeup,
    .on_ws = hook_on_ws,
};

/* What pn_worker_new reads of the config; timeouts off. */
static void small_config(pn_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_request_line = 8192;
    cfg->max_header_size = 16384;
    cfg->max_headers = 100;
    cfg->max_request_size = 1 << 20;
    cfg->max_connections = 1000;
}

typedef struct rig {
    pn_config cfg;
    int lfd;
    uint16_t port;
    pn_balance *table;
    pn_worker *w[2];
    int clients[64];
    int nclients;
} rig;

/* Two shared workers on one listening socket, slots 0 and 1 of a table. */
static void rig_start(rig *r, int balanced)
{
    memset(r, 0, sizeof(*r));
    small_config(&r->cfg);
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(r->lfd, 64) != 0 || getsockname(r->lfd, (struct sockaddr *)&sin, &len) != 0) {
        perror("listening socket");
        abort();
    }
    r->port = ntohs(sin.sin_port);
    r->table = pn_balance_new(4);
    for (int i = 0; i < 2; i++) {
        r->w[i] = pn_worker_new(&r->cfg, &r->lfd, NULL, 1, &hooks, r);
        if (r->w[i] == NULL) {
            perror("pn_worker_new");
            abort();
        }
        pn_worker_set_shared(r->w[i], 1);
        pn_balance_reset(r->table, i);
        if (balanced)
            PN_CHECK_EQ_INT(pn_worker_set_balance(r->w[i], r->table, i), 0);
    }
}

static void rig_stop(rig *r)
{
    for (int i = 0; i < 2; i++)
        pn_worker_free(r->w[i]);
    for (int i = 0; i < r->nclients; i++)
        close(r->clients[i]);
    close(r->lfd);
    pn_balance_free(r->table);
}

/* A client connects (the kernel completes it; no worker needs to run). */
static void rig_connect(rig *r)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(r->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        perror("connect");
        abort();
    }
    r->clients[r->nclients++] = fd;
}

/* Poll worker i if its epoll fd is readable within ms; 1 if it was. */
static int pump(rig *r, int i, int ms)
{
    if (!readable(pn_worker_fd(r->w[i]), ms))
        return 0;
    pn_worker_poll(r->w[i]);
    return 1;
}

PN_TEST(a_worker_over_its_share_leaves_the_connection_to_the_other)
{
    rig r;
    rig_start(&r, 1);
    /* Worker 0 takes three connections while worker 1 sleeps: the third
     * is one over (mean 1.5 + slack 1 < 3 only once it holds 3). */
    for (int i = 0; i < 3; i++) {
        rig_connect(&r);
        for (int k = 0; k < 50 && pn_worker_connections(r.w[0]) < (size_t)i + 1; k++)
            pump(&r, 0, 20);
    }
    PN_CHECK_EQ_INT(pn_worker_connections(r.w[0]), 3);
    /* The fourth: worker 0 stands aside, and does not spin while it does
     * (its listener is out of its epoll set: nothing to poll for). */
    rig_connect(&r);
    PN_CHECK(pump(&r, 0, 200));
    PN_CHECK_EQ_INT(pn_worker_connections(r.w[0]), 3);
    PN_CHECK(!readable(pn_worker_fd(r.w[0]), 0));
    /* Worker 1 takes it, within the wait. */
    PN_CHECK(pump(&r, 1, 200));
    PN_CHECK_EQ_INT(pn_worker_connections(r.w[1]), 1);
    pn_balance_view v;
    pn_balance_get(r.table, 1, &v);
    PN_CHECK_EQ_INT(v.conns, 1);
    PN_CHECK_EQ_INT(v.accepted, 1);
    /* The wait ends: worker 0 listens again (its epoll fd turns readable
     * with the timer), finds nothing, and accepts nothing. */
    PN_CHECK(pump(&r, 0, 200));
    pump(&r, 0, 20);
    PN_CHECK_EQ_INT(pn_worker_connections(r.w[0]), 3);
    rig_stop(&r);
}

PN_TEST(a_worker_never_stalls_a_connection_nobody_else_takes)
{
    rig r;
    rig_start(&r, 1);
    for (int i = 0; i < 3; i++) {
        rig_connect(&r);
        for (int k = 0; k < 50 && pn_worker_connections(r.w[0]) < (size_t)i + 1; k++)
            pump(&r, 0, 20);
    }
    /* Worker 1 is stuck (never polled).  Fifty more connections wait:
     * worker 0 takes one at the end of each wait, then, the other having
     * accepted nothing for PN_BALANCE_STUCK_MS, all the rest at once. */
    for (int i = 0; i < 50; i++)
        rig_connect(&r);
    uint64_t t0 = now_ms();
    size_t most = 0; /* connections one poll took */
    while (pn_worker_connections(r.w[0]) < 53 && now_ms() - t0 < 2000) {
        size_t before = pn_worker_connections(r.w[0]);
        pump(&r, 0, 50);
        if (pn_worker_connections(r.w[0]) - before > most)
            most = pn_worker_connections(r.w[0]) - before;
    }
    PN_CHECK_EQ_INT(pn_worker_connections(r.w[0]), 53);
    PN_CHECK(now_ms() - t0 < 1000);
    PN_CHECK(most > 1); /* the rest in one go, not one per wait */
    PN_CHECK_EQ_INT(pn_worker_connections(r.w[1]), 0);
    rig_stop(&r);
}

PN_TEST(without_the_table_a_shared_worker_takes_one_per_wakeup_and_no_more_checks)
{
    rig r;
    rig_start(&r, 0);
    for (int i = 0; i < 6; i++)
        rig_connect(&r);
    for (int k = 0; k < 100 && pn_worker_connections(r.w[0]) < 6; k++)
        pump(&r, 0, 20);
    PN_CHECK_EQ_INT(pn_worker_connections(r.w[0]), 6);
    rig_stop(&r);
}

PN_TEST(a_draining_worker_leaves_its_slot)
{
    rig r;
    rig_start(&r, 1);
    rig_connect(&r);
    for (int k = 0; k < 50 && pn_worker_connections(r.w[0]) < 1; k++)
        pump(&r, 0, 20);
    pn_balance_view v;
    pn_balance_get(r.table, 0, &v);
    PN_CHECK_EQ_INT(v.accepting, 1);
    PN_CHECK_EQ_INT(v.conns, 1);
    pn_worker_drain(r.w[0], 1);
    pn_balance_get(r.table, 0, &v);
    PN_CHECK_EQ_INT(v.accepting, 0);
    PN_CHECK_EQ_INT(v.conns, 0);
    /* ...and a freed one too. */
    pn_worker_free(r.w[1]);
    r.w[1] = NULL;
    pn_balance_get(r.table, 1, &v);
    PN_CHECK_EQ_INT(v.accepting, 0);
    rig_stop(&r);
}

/* ---- a listener shut down under the workers -------------------------------- */

PN_TEST(a_listener_shut_down_under_a_worker_leaves_its_epoll_set_without_spinning)
{
    for (int balanced = 0; balanced <= 1; balanced++) {
        rig r;
        rig_start(&r, balanced);
        rig_connect(&r);
        for (int k = 0; k < 50 && pn_worker_connections(r.w[0]) < 1; k++)
            pump(&r, 0, 20);
        PN_CHECK_EQ_INT(pn_worker_connections(r.w[0]), 1);
        /* What a draining server does to refuse new connections at once:
         * the socket turns readable for good, and accept says EINVAL. */
        PN_CHECK_EQ_INT(shutdown(r.lfd, SHUT_RD), 0);
        for (int i = 0; i < 2; i++) {
            PN_CHECK(pump(&r, i, 200));
            /* Out of the epoll set: the worker's fd is quiet again. */
            PN_CHECK(!readable(pn_worker_fd(r.w[i]), 20));
        }
        /* Connections already accepted are untouched. */
        PN_CHECK_EQ_INT(pn_worker_connections(r.w[0]), 1);
        if (balanced) {
            pn_balance_view v;
            pn_balance_get(r.table, 1, &v);
            PN_CHECK_EQ_INT(v.accepting, 0); /* accepts nothing any more */
        }
        /* Closing a connection would re-register the listeners: not a
         * closed one. */
        close(r.clients[0]);
        r.nclients = 0;
        for (int k = 0; k < 50 && pn_worker_connections(r.w[0]) > 0; k++)
            pump(&r, 0, 20);
        PN_CHECK_EQ_INT(pn_worker_connections(r.w[0]), 0);
        PN_CHECK(!readable(pn_worker_fd(r.w[0]), 20));
        rig_stop(&r);
    }
}

int main(void)
{
    PN_RUN(a_worker_alone_never_stands_aside);
    PN_RUN(a_worker_above_the_mean_plus_slack_stands_aside);
    PN_RUN(the_slack_grows_with_the_mean);
    PN_RUN(a_worker_that_left_or_was_reset_counts_for_nothing);
    PN_RUN(counts_published_by_one_process_are_seen_by_another);
    PN_RUN(a_wait_ends_with_take_all_only_if_nobody_else_accepted);
    PN_RUN(an_unattached_seat_always_accepts);
    PN_RUN(a_worker_over_its_share_leaves_the_connection_to_the_other);
    PN_RUN(a_worker_never_stalls_a_connection_nobody_else_takes);
    PN_RUN(without_the_table_a_shared_worker_takes_one_per_wakeup_and_no_more_checks);
    PN_RUN(a_draining_worker_leaves_its_slot);
    PN_RUN(a_listener_shut_down_under_a_worker_leaves_its_epoll_set_without_spinning);
    return pn_test_summary();
}
