/*
 * Unit tests for the runtime's HTTP/1.1 connection state machine
 * (pn_worker.c), driven the way the bridge drives it, over real loopback
 * TCP: the test plays the bridge (it supplies pn_worker_hooks, answers
 * requests with pn_conn_write + pn_conn_response_done, and calls
 * pn_worker_poll when the worker's epoll fd is readable) and the client (a
 * plain socket it writes requests to and reads answers from).  Checks are
 * on what the hooks saw and on the bytes and the EOF the client got.
 *
 * Deadlines use real time with short timeouts (a few hundred ms; the wheel
 * ticks every PN_TIMER_TICK_MS).  The checks allow generous lateness, for a
 * loaded machine, and no earliness.
 */
#include "pn_worker.h"

#include "pn_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "pn_tls.h"

/* ---- configuration ---------------------------------------------------- */

static void config_defaults(pn_config *cfg)
{
    pn_config_defaults(cfg);
    cfg->access_log = 0; /* keep the test output to the checks */
}

/* ---- the bridge's side ---------------------------------------------- */

enum {
    ANSWER_NOW,   /* answer inside on_request (an app that never awaits) */
    ANSWER_LATER, /* keep the request; the test answers with answer() */
};

#define MAX_SEEN 8

typedef struct harness {
    pn_config cfg;
    pn_worker *w;
    int lfd;
    uint16_t port;
    int mode;       /* ANSWER_* */
    int keep_alive; /* what the "app" passes to pn_conn_response_done */
    /* What the hooks saw. */
    int nrequests;
    char targets[MAX_SEEN][32];
    int keep_alive_flag[MAX_SEEN]; /* PN_REQ_KEEP_ALIVE of each request */
    pn_conn *held;                 /* ANSWER_LATER: the request waiting for its answer */
    int nclosed;                   /* on_close calls */
    pn_conn *closed;               /* the last connection on_close named */
    int wakeups;
} harness;

/* The response to a request: 200 with the request-target as the body, so
 * the client can tell which request each answer belongs to. */
static void answer(harness *h, pn_conn *c, const char *target)
{
    char head[128];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                     strlen(target));
    struct iovec iov[2] = {{head, (size_t)n}, {(void *)target, strlen(target)}};
    pn_conn_write(c, iov, 2);
    pn_conn_response_done(c, h->keep_alive);
}

static int hook_on_request(void *ctx, pn_stream *s, const pn_http1_request *req)
{
    harness *h = ctx;
    pn_conn *c = pn_http1_stream_conn(s);
    int i = h->nrequests++;
    if (i < MAX_SEEN) {
        /* req's slices live only during this call: copy. */
        size_t n = req->target_len < sizeof(h->targets[i]) - 1 ? req->target_len
                                                               : sizeof(h->targets[i]) - 1;
        memcpy(h->targets[i], req->target, n);
        h->targets[i][n] = '\0';
        h->keep_alive_flag[i] = (req->flags & PN_REQ_KEEP_ALIVE) != 0;
    }
    s->udata = h;
    if (h->mode == ANSWER_NOW)
        answer(h, c, h->targets[i < MAX_SEEN ? i : 0]);
    else
        h->held = c;
    return 0;
}

static void hook_on_body(void *ctx, pn_stream *s)
{
    (void)ctx;
    (void)s;
}

static void hook_on_drain(void *ctx, pn_stream *s)
{
    (void)ctx;
    (void)s;
}

static void hook_on_close(void *ctx, pn_stream *s)
{
    harness *h = ctx;
    pn_conn *c = pn_http1_stream_conn(s);
    h->nclosed++;
    h->closed = c;
    if (h->held == c)
        h->held = NULL;
}

static void hook_wakeup(void *ctx)
{
    harness *h = ctx;
    h->wakeups++;
}

static void hook_on_ws(void *ctx, pn_conn *c, int event)
{
    (void)ctx;
    (void)c;
    (void)event;
}

static const pn_worker_hooks hooks = {
    .on_request = hook_on_request,
    .on_body = hook_on_body,
    .on_drain = hook_on_drain,
    .on_close = hook_on_close,
    .wakeup = hook_wakeup,
    .on_ws = hook_on_ws,
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A worker on a fresh non-blocking listening socket on 127.0.0.1:<any>.
 * Timeouts in seconds; the rest of the config is the defaults. */
static void harness_start(harness *h, int mode, double header_timeout, double keep_alive_timeout)
{
    memset(h, 0, sizeof(*h));
    config_defaults(&h->cfg);
    h->cfg.header_timeout = header_timeout;
    h->cfg.keep_alive_timeout = keep_alive_timeout;
    h->mode = mode;
    h->keep_alive = 1;
    h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (h->lfd < 0 || bind(h->lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(h->lfd, 16) != 0 || getsockname(h->lfd, (struct sockaddr *)&sin, &len) != 0) {
        perror("listening socket");
        abort();
    }
    h->port = ntohs(sin.sin_port);
    h->w = pn_worker_new(&h->cfg, &h->lfd, NULL, 1, &hooks, h);
    if (h->w == NULL) {
        perror("pn_worker_new");
        abort();
    }
}

static void harness_stop(harness *h)
{
    pn_worker_free(h->w);
    close(h->lfd);
}

/* One round of the bridge's loop: wait up to `ms` for the worker's epoll
 * fd, then poll the worker (also when a wakeup was asked for). */
static void pump_once(harness *h, int ms)
{
    struct pollfd p = {.fd = pn_worker_fd(h->w), .events = POLLIN};
    poll(&p, 1, ms);
    h->wakeups = 0;
    pn_worker_poll(h->w);
}

/* Run the worker for `ms` milliseconds. */
static void pump_for(harness *h, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    do
        pump_once(h, 5);
    while (now_ms() < end);
}

/* ---- the client's side ---------------------------------------------- */

typedef struct client {
    int fd;
    char data[16384]; /* everything received, NUL-terminated */
    size_t len;
    int eof;   /* the server closed (FIN) */
    int reset; /* ... or reset the connection */
} client;

/* Connect to the worker and let it accept. */
static void client_open(harness *h, client *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(h->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (cl->fd < 0 || connect(cl->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        perror("connect");
        abort();
    }
    size_t before = pn_worker_connections(h->w);
    for (int i = 0; i < 200 && pn_worker_connections(h->w) == before; i++)
        pump_once(h, 5);
    PN_CHECK_EQ_INT(pn_worker_connections(h->w), before + 1);
}

static void client_send(client *cl, const char *s)
{
    size_t n = strlen(s);
    PN_CHECK_EQ_INT(send(cl->fd, s, n, MSG_NOSIGNAL), (long long)n);
}

/* Take what has arrived, without waiting. */
static void client_read(client *cl)
{
    while (!cl->eof && cl->len < sizeof(cl->data) - 1) {
        ssize_t n = recv(cl->fd, cl->data + cl->len, sizeof(cl->data) - 1 - cl->len, MSG_DONTWAIT);
        if (n > 0) {
            cl->len += (size_t)n;
        } else if (n == 0) {
            cl->eof = 1;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            cl->eof = cl->reset = 1; /* ECONNRESET */
        }
    }
    cl->data[cl->len] = '\0';
}

static void client_close(client *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
}

/* Occurrences of `needle` in what the client received. */
static int count(const client *cl, const char *needle)
{
    int n = 0;
    for (const char *p = cl->data; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Pump until the client has received `n` responses (or EOF), at most ms. */
static void pump_until_responses(harness *h, client *cl, int n, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    for (;;) {
        client_read(cl);
        if (count(cl, "HTTP/1.1 ") >= n || cl->eof || now_ms() >= end)
            return;
        pump_once(h, 5);
    }
}

/* Pump until the client sees EOF, at most ms; returns the time it took. */
static uint64_t pump_until_eof(harness *h, client *cl, int ms)
{
    uint64_t start = now_ms(), end = start + (uint64_t)ms;
    for (;;) {
        client_read(cl);
        if (cl->eof || now_ms() >= end)
            return now_ms() - start;
        pump_once(h, 5);
    }
}

#define GET(target) "GET " target " HTTP/1.1\r\nHost: test\r\n\r\n"
#define RESPONSE(body) "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" body

/* ---- pipelining ------------------------------------------------------- */

PN_TEST(pipelined_requests_are_answered_in_order_on_one_connection)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 10, 5);
    client_open(&h, &cl);
    client_send(&cl, GET("/a") GET("/b") GET("/c"));
    pump_until_responses(&h, &cl, 3, 3000);
    PN_CHECK_EQ_INT(h.nrequests, 3);
    PN_CHECK_SLICE(h.targets[0], strlen(h.targets[0]), "/a");
    PN_CHECK_SLICE(h.targets[1], strlen(h.targets[1]), "/b");
    PN_CHECK_SLICE(h.targets[2], strlen(h.targets[2]), "/c");
    PN_CHECK_SLICE(cl.data, cl.len, RESPONSE("/a") RESPONSE("/b") RESPONSE("/c"));
    /* Keep-alive: still open, nothing closed. */
    pump_for(&h, 50);
    client_read(&cl);
    PN_CHECK(!cl.eof);
    PN_CHECK_EQ_INT(h.nclosed, 0);
    PN_CHECK_EQ_INT(pn_worker_connections(h.w), 1);
    client_close(&cl);
    harness_stop(&h);
}

/* Answer the request the app holds (outside a poll, as after an await),
 * then pump until the next one reaches the app, at most 1 s. */
static void answer_held_and_wait_for_the_next(harness *h, const char *target, int want_requests)
{
    pn_conn *c = h->held;
    PN_CHECK(c != NULL);
    if (c == NULL)
        return;
    h->held = NULL;
    answer(h, c, target);
    PN_CHECK(h->wakeups > 0); /* the worker asks for a poll to go on */
    for (int i = 0; i < 200 && h->nrequests < want_requests; i++)
        pump_once(h, 5);
    PN_CHECK_EQ_INT(h->nrequests, want_requests);
}

PN_TEST(a_pipelined_request_waits_until_the_one_before_it_is_answered)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_LATER, 10, 5);
    client_open(&h, &cl);
    client_send(&cl, GET("/first") GET("/second"));
    pump_for(&h, 100);
    /* A third arrives while the first is with the app (a read event in
     * the middle of a request). */
    client_send(&cl, GET("/third"));
    pump_for(&h, 100);
    /* One request at a time: the others stay in the buffer. */
    PN_CHECK_EQ_INT(h.nrequests, 1);
    pn_conn *c = h.held;
    answer_held_and_wait_for_the_next(&h, "/first", 2);
    PN_CHECK_SLICE(h.targets[1], strlen(h.targets[1]), "/second");
    PN_CHECK(h.held == c); /* the same connection */
    pump_for(&h, 50);
    PN_CHECK_EQ_INT(h.nrequests, 2);
    answer_held_and_wait_for_the_next(&h, "/second", 3);
    PN_CHECK_SLICE(h.targets[2], strlen(h.targets[2]), "/third");
    if (h.held) {
        answer(&h, h.held, "/third");
        h.held = NULL;
    }
    pump_until_responses(&h, &cl, 3, 3000);
    PN_CHECK_SLICE(cl.data, cl.len,
                   "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n/first"
                   "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n/second"
                   "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n/third");
    PN_CHECK(!cl.eof);
    PN_CHECK_EQ_INT(h.nclosed, 0);
    client_close(&cl);
    harness_stop(&h);
}

/* ---- bad requests ----------------------------------------------------- */

PN_TEST(a_bad_request_gets_400_then_the_connection_closes)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 10, 5);
    client_open(&h, &cl);
    /* A header line without a colon (RFC 9112 §5). */
    client_send(&cl, "GET / HTTP/1.1\r\nHost: test\r\nno colon here\r\n\r\n");
    uint64_t took = pump_until_eof(&h, &cl, 3000);
    PN_CHECK(cl.eof);
    PN_CHECK(!cl.reset);
    /* At once (the write side is shut), not at the end of the lingering
     * close, which waits LINGER_MS = 2 s for the client to stop sending. */
    PN_CHECK(took < 1000);
    PN_CHECK(strncmp(cl.data, "HTTP/1.1 400 ", 13) == 0);
    PN_CHECK(strstr(cl.data, "\r\nConnection: close\r\n") != NULL);
    PN_CHECK_EQ_INT(count(&cl, "HTTP/1.1 "), 1);
    PN_CHECK_EQ_INT(h.nrequests, 0); /* the app never saw it */
    /* Once the client closes too, the worker lets the connection go. */
    client_close(&cl);
    for (int i = 0; i < 100 && pn_worker_connections(h.w) > 0; i++)
        pump_once(&h, 5);
    PN_CHECK_EQ_INT(pn_worker_connections(h.w), 0);
    harness_stop(&h);
}

PN_TEST(a_bad_request_after_a_good_one_gets_the_good_answer_then_400_and_close)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 10, 5);
    client_open(&h, &cl);
    client_send(&cl, GET("/a") "GET / HTTP/1.1\r\nHost: test\r\nHost : x\r\n\r\n" GET("/never"));
    pump_until_eof(&h, &cl, 3000);
    PN_CHECK(cl.eof);
    PN_CHECK_EQ_INT(h.nrequests, 1);
    PN_CHECK(strncmp(cl.data, RESPONSE("/a") "HTTP/1.1 400 ", strlen(RESPONSE("/a")) + 13) == 0);
    PN_CHECK_EQ_INT(count(&cl, "HTTP/1.1 "), 2);
    client_close(&cl);
    harness_stop(&h);
}

/* ---- a FIN after the request ----------------------------------------- */

PN_TEST(a_fin_after_a_complete_request_still_gets_the_response_then_a_close)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_LATER, 10, 5);
    client_open(&h, &cl);
    client_send(&cl, GET("/x"));
    shutdown(cl.fd, SHUT_WR); /* `nc -N`, HTTP/1.0-style clients, health checks */
    pump_for(&h, 150);
    /* A FIN ends the client's sending, not its reading (RFC 9112 §9.6). */
    PN_CHECK_EQ_INT(h.nrequests, 1);
    PN_CHECK(h.held != NULL);
    PN_CHECK_EQ_INT(h.nclosed, 0);
    if (h.held) {
        answer(&h, h.held, "/x");
        h.held = NULL;
    }
    pump_until_eof(&h, &cl, 3000);
    PN_CHECK_SLICE(cl.data, cl.len, RESPONSE("/x"));
    PN_CHECK(cl.eof);
    PN_CHECK(!cl.reset);
    PN_CHECK_EQ_INT(h.nclosed, 0); /* the request had finished: nothing to tell the bridge */
    PN_CHECK_EQ_INT(pn_worker_connections(h.w), 0);
    client_close(&cl);
    harness_stop(&h);
}

PN_TEST(a_fin_with_pipelined_requests_gets_every_response_then_a_close)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 10, 5);
    client_open(&h, &cl);
    client_send(&cl, GET("/1") GET("/2"));
    shutdown(cl.fd, SHUT_WR);
    pump_until_eof(&h, &cl, 3000);
    PN_CHECK_EQ_INT(h.nrequests, 2);
    PN_CHECK_SLICE(cl.data, cl.len, RESPONSE("/1") RESPONSE("/2"));
    PN_CHECK(cl.eof);
    client_close(&cl);
    harness_stop(&h);
}

PN_TEST(a_reset_while_the_app_holds_the_request_is_reported_once_by_on_close)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_LATER, 10, 5);
    client_open(&h, &cl);
    client_send(&cl, GET("/slow"));
    pump_for(&h, 50);
    PN_CHECK(h.held != NULL);
    pn_conn *c = h.held;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(cl.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    client_close(&cl); /* RST */
    for (int i = 0; i < 100 && h.nclosed == 0; i++)
        pump_once(&h, 5);
    PN_CHECK_EQ_INT(h.nclosed, 1);
    PN_CHECK(h.closed == c);
    PN_CHECK(h.held == NULL);
    pump_for(&h, 50);
    PN_CHECK_EQ_INT(h.nclosed, 1);
    PN_CHECK_EQ_INT(pn_worker_connections(h.w), 0);
    harness_stop(&h);
}

/* ---- the header deadline --------------------------------------------- */

PN_TEST(a_head_unfinished_at_the_header_deadline_gets_408_then_a_close)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 0.3, 5);
    client_open(&h, &cl);
    uint64_t start = now_ms();
    client_send(&cl, "GET / HTTP/1.1\r\nHost: te");
    pump_for(&h, 150);
    client_read(&cl);
    PN_CHECK_EQ_INT(cl.len, 0); /* not before the deadline */
    PN_CHECK(!cl.eof);
    pump_until_eof(&h, &cl, 3000);
    uint64_t took = now_ms() - start;
    PN_CHECK(cl.eof);
    PN_CHECK(strncmp(cl.data, "HTTP/1.1 408 ", 13) == 0);
    PN_CHECK(took >= 300);
    PN_CHECK(took < 2000);
    PN_CHECK_EQ_INT(h.nrequests, 0);
    client_close(&cl);
    harness_stop(&h);
}

PN_TEST(a_silent_connection_is_closed_at_the_header_deadline_without_a_response)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 0.3, 5);
    client_open(&h, &cl);
    uint64_t start = now_ms();
    pump_for(&h, 150);
    client_read(&cl);
    PN_CHECK(!cl.eof);
    pump_until_eof(&h, &cl, 3000);
    uint64_t took = now_ms() - start;
    PN_CHECK(cl.eof);
    PN_CHECK_EQ_INT(cl.len, 0); /* nothing was asked, nothing is answered */
    PN_CHECK(took >= 300);
    PN_CHECK(took < 2000);
    PN_CHECK_EQ_INT(pn_worker_connections(h.w), 0);
    client_close(&cl);
    harness_stop(&h);
}

PN_TEST(the_first_header_deadline_runs_from_accept_not_from_the_first_byte)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 1.0, 5);
    client_open(&h, &cl);
    uint64_t start = now_ms();
    /* Wait 0.8 s, then trickle a head that never ends, a line every 50 ms
     * (slowloris), for up to 2.5 s. */
    pump_for(&h, 800);
    client_send(&cl, "GET / HTTP/1.1\r\n");
    for (int i = 0; !cl.eof && now_ms() - start < 2500; i++) {
        char line[32];
        snprintf(line, sizeof(line), "X-%d: %d\r\n", i, i);
        client_send(&cl, line);
        pump_for(&h, 50);
        client_read(&cl);
    }
    pump_until_eof(&h, &cl, 3000);
    uint64_t took = now_ms() - start;
    PN_CHECK(strncmp(cl.data, "HTTP/1.1 408 ", 13) == 0);
    PN_CHECK(cl.eof);
    /* 1.0 s after accept (plus up to a tick); counted from the first byte
     * it would be 1.8 s. */
    PN_CHECK(took >= 1000);
    PN_CHECK(took < 1500);
    PN_CHECK_EQ_INT(h.nrequests, 0);
    client_close(&cl);
    harness_stop(&h);
}

/* ---- keep-alive ------------------------------------------------------- */

PN_TEST(keep_alive_serves_the_next_request_on_the_same_connection)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 10, 5);
    client_open(&h, &cl);
    client_send(&cl, GET("/1"));
    pump_until_responses(&h, &cl, 1, 3000);
    PN_CHECK_SLICE(cl.data, cl.len, RESPONSE("/1"));
    PN_CHECK_EQ_INT(h.keep_alive_flag[0], 1);
    pump_for(&h, 100); /* idle between requests */
    client_send(&cl, GET("/2"));
    pump_until_responses(&h, &cl, 2, 3000);
    PN_CHECK_SLICE(cl.data, cl.len, RESPONSE("/1") RESPONSE("/2"));
    PN_CHECK(!cl.eof);
    PN_CHECK_EQ_INT(pn_worker_connections(h.w), 1);
    client_close(&cl);
    harness_stop(&h);
}

PN_TEST(an_idle_keep_alive_connection_closes_silently_at_the_keep_alive_timeout)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 10, 0.3);
    client_open(&h, &cl);
    client_send(&cl, GET("/1"));
    pump_until_responses(&h, &cl, 1, 3000);
    uint64_t start = now_ms();
    pump_for(&h, 150);
    client_read(&cl);
    PN_CHECK(!cl.eof);
    pump_until_eof(&h, &cl, 3000);
    uint64_t took = now_ms() - start;
    PN_CHECK(cl.eof);
    PN_CHECK(took >= 300);
    PN_CHECK(took < 2000); /* the keep-alive timeout, not the 10 s header deadline */
    PN_CHECK_SLICE(cl.data, cl.len, RESPONSE("/1")); /* no 408 for an idle connection */
    client_close(&cl);
    harness_stop(&h);
}

PN_TEST(a_request_with_connection_close_gets_its_response_then_a_close)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 10, 5);
    client_open(&h, &cl);
    client_send(&cl, "GET /bye HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n" GET("/never"));
    pump_until_eof(&h, &cl, 3000);
    PN_CHECK_EQ_INT(h.nrequests, 1);
    PN_CHECK_EQ_INT(h.keep_alive_flag[0], 0);
    PN_CHECK_SLICE(cl.data, cl.len, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n/bye");
    PN_CHECK(cl.eof);
    client_close(&cl);
    harness_stop(&h);
}

PN_TEST(an_http10_request_without_keep_alive_is_closed_after_its_response)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 10, 5);
    client_open(&h, &cl);
    client_send(&cl, "GET /old HTTP/1.0\r\n\r\n");
    pump_until_eof(&h, &cl, 3000);
    PN_CHECK_EQ_INT(h.nrequests, 1);
    PN_CHECK_EQ_INT(h.keep_alive_flag[0], 0);
    PN_CHECK_EQ_INT(count(&cl, "HTTP/1.1 200 OK"), 1);
    PN_CHECK(cl.eof);
    client_close(&cl);
    harness_stop(&h);
}

PN_TEST(a_response_done_without_keep_alive_closes_after_the_response)
{
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 10, 5);
    h.keep_alive = 0; /* the app's response said Connection: close */
    client_open(&h, &cl);
    client_send(&cl, GET("/a") GET("/b"));
    pump_until_eof(&h, &cl, 3000);
    PN_CHECK_EQ_INT(h.nrequests, 1);
    PN_CHECK_SLICE(cl.data, cl.len, RESPONSE("/a"));
    PN_CHECK(cl.eof);
    client_close(&cl);
    harness_stop(&h);
}

/* ---- TLS (pn_tls.c) ----------------------------------------------------
 *
 * The context is built from files, as the config names them: the test
 * makes a key and a self-signed certificate with OpenSSL into a temporary
 * directory.  The client is an OpenSSL session on a non-blocking socket,
 * driven in turn with the worker (one thread plays both sides). */

typedef struct tls_files {
    char dir[32];
    char cert[64], key[64], other_key[64], enc_key[64], missing[64];
} tls_files;

static void write_key(const char *path, EVP_PKEY *k, const char *password)
{
    FILE *f = fopen(path, "w");
    PN_CHECK(f != NULL);
    if (f == NULL)
        return;
    PN_CHECK(PEM_write_PrivateKey(f, k, password ? EVP_aes_256_cbc() : NULL,
                                  (unsigned char *)password, password ? (int)strlen(password) : 0,
                                  NULL, NULL) == 1);
    fclose(f);
}

static void tls_files_make(tls_files *t)
{
    strcpy(t->dir, "/tmp/pn_tls_XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(t->cert, sizeof t->cert, "%s/cert.pem", t->dir);
    snprintf(t->key, sizeof t->key, "%s/key.pem", t->dir);
    snprintf(t->other_key, sizeof t->other_key, "%s/other.pem", t->dir);
    snprintf(t->enc_key, sizeof t->enc_key, "%s/enc.pem", t->dir);
    snprintf(t->missing, sizeof t->missing, "%s/missing.pem", t->dir);
    EVP_PKEY *k = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    PN_CHECK(k && other && x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    PN_CHECK(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(t->cert, "w");
    PN_CHECK(f != NULL && PEM_write_X509(f, x) == 1);
    if (f)
        fclose(f);
    write_key(t->key, k, NULL);
    write_key(t->other_key, other, NULL);
    write_key(t->enc_key, k, "sesame");
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

static void tls_files_remove(tls_files *t)
{
    unlink(t->cert);
    unlink(t->key);
    unlink(t->other_key);
    unlink(t->enc_key);
    rmdir(t->dir);
}

/* The context for cert/key/password, or NULL with err and *setting. */
static pn_tls_ctx *tls_ctx(const char *cert, const char *key, const char *password, char *err,
                           const char **setting)
{
    pn_config cfg;
    config_defaults(&cfg);
    cfg.ssl_certfile = cert;
    cfg.ssl_keyfile = key;
    cfg.ssl_keyfile_password = password;
    return pn_tls_ctx_new(&cfg, err, 512, setting);
}

PN_TEST(a_tls_context_names_the_file_and_setting_at_fault)
{
    tls_files t;
    tls_files_make(&t);
    char err[512];
    const char *setting = NULL;
    PN_CHECK(tls_ctx(t.missing, t.key, "", err, &setting) == NULL);
    PN_CHECK(strcmp(setting, "ssl_certfile") == 0);
    PN_CHECK(strstr(err, t.missing) != NULL && strstr(err, "No such file") != NULL);
    PN_CHECK(tls_ctx(t.cert, t.other_key, "", err, &setting) == NULL);
    PN_CHECK(strcmp(setting, "ssl_keyfile") == 0);
    PN_CHECK(strstr(err, "does not match") != NULL && strstr(err, t.other_key) != NULL);
    PN_CHECK(tls_ctx(t.cert, t.enc_key, "", err, &setting) == NULL);
    PN_CHECK(strstr(err, "encrypted") != NULL && strstr(err, t.enc_key) != NULL);
    PN_CHECK(tls_ctx(t.cert, t.enc_key, "wrong", err, &setting) == NULL);
    PN_CHECK(strcmp(setting, "ssl_keyfile_password") == 0);
    pn_tls_ctx *ok = tls_ctx(t.cert, t.enc_key, "sesame", err, &setting);
    PN_CHECK(ok != NULL);
    size_t pem_len = 0;
    PN_CHECK(ok &&
             strncmp(pn_tls_ctx_cert_pem(ok, &pem_len), "-----BEGIN CERTIFICATE-----", 27) == 0);
    pn_tls_ctx_free(ok);
    tls_files_remove(&t);
}

/* A TLS client session on cl's socket (made non-blocking), its handshake
 * driven together with the worker, at most 3 s. */
static SSL *tls_client_handshake(harness *h, client *cl, SSL_CTX *cctx)
{
    fcntl(cl->fd, F_SETFL, fcntl(cl->fd, F_GETFL) | O_NONBLOCK);
    SSL *ssl = SSL_new(cctx);
    SSL_set_fd(ssl, cl->fd);
    SSL_set_connect_state(ssl);
    uint64_t end = now_ms() + 3000;
    int rc;
    while ((rc = SSL_do_handshake(ssl)) != 1 && now_ms() < end) {
        int e = SSL_get_error(ssl, rc);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            break;
        pump_once(h, 5);
    }
    PN_CHECK_EQ_INT(rc, 1);
    return ssl;
}

/* Read decrypted bytes into cl->data until it holds `n` responses. */
static void tls_client_responses(harness *h, client *cl, SSL *ssl, int n)
{
    uint64_t end = now_ms() + 3000;
    while (count(cl, "HTTP/1.1 ") < n && now_ms() < end) {
        size_t got = 0;
        if (SSL_read_ex(ssl, cl->data + cl->len, sizeof(cl->data) - 1 - cl->len, &got)) {
            cl->len += got;
            cl->data[cl->len] = '\0';
            continue;
        }
        pump_once(h, 5);
    }
}

PN_TEST(tls_keep_alive_and_pipelining_through_the_worker)
{
    tls_files t;
    tls_files_make(&t);
    char err[512];
    const char *setting;
    pn_tls_ctx *ctx = tls_ctx(t.cert, t.key, "", err, &setting);
    PN_CHECK(ctx != NULL);
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 10, 5);
    pn_worker_set_tls(h.w, ctx);
    client_open(&h, &cl);
    SSL *ssl = tls_client_handshake(&h, &cl, cctx);
    PN_CHECK(SSL_write(ssl, GET("/a"), (int)strlen(GET("/a"))) > 0);
    tls_client_responses(&h, &cl, ssl, 1);
    /* Two pipelined requests in one record, answered in order. */
    PN_CHECK(SSL_write(ssl, GET("/b") GET("/c"), (int)strlen(GET("/b") GET("/c"))) > 0);
    tls_client_responses(&h, &cl, ssl, 3);
    PN_CHECK_SLICE(cl.data, cl.len, RESPONSE("/a") RESPONSE("/b") RESPONSE("/c"));
    PN_CHECK_EQ_INT(h.nrequests, 3);
    PN_CHECK_EQ_INT(pn_worker_connections(h.w), 1);
    SSL_free(ssl);
    client_close(&cl);
    harness_stop(&h);
    SSL_CTX_free(cctx);
    pn_tls_ctx_free(ctx);
    tls_files_remove(&t);
}

PN_TEST(plain_http_to_a_tls_worker_gets_400_then_a_close)
{
    tls_files t;
    tls_files_make(&t);
    char err[512];
    const char *setting;
    pn_tls_ctx *ctx = tls_ctx(t.cert, t.key, "", err, &setting);
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 10, 5);
    pn_worker_set_tls(h.w, ctx);
    client_open(&h, &cl);
    client_send(&cl, GET("/"));
    pump_until_eof(&h, &cl, 3000);
    PN_CHECK(cl.eof && !cl.reset);
    PN_CHECK(strncmp(cl.data, "HTTP/1.1 400 ", 13) == 0);
    PN_CHECK(strstr(cl.data, "speaks HTTPS") != NULL);
    PN_CHECK_EQ_INT(h.nrequests, 0);
    client_close(&cl);
    harness_stop(&h);
    pn_tls_ctx_free(ctx);
    tls_files_remove(&t);
}

PN_TEST(an_unfinished_tls_handshake_is_closed_at_the_header_deadline)
{
    tls_files t;
    tls_files_make(&t);
    char err[512];
    const char *setting;
    pn_tls_ctx *ctx = tls_ctx(t.cert, t.key, "", err, &setting);
    harness h;
    client cl;
    harness_start(&h, ANSWER_NOW, 0.3, 5);
    pn_worker_set_tls(h.w, ctx);
    client_open(&h, &cl);
    /* The start of a ClientHello record, and nothing more. */
    PN_CHECK_EQ_INT(send(cl.fd, "\x16\x03\x01\x02\x00\x01", 6, MSG_NOSIGNAL), 6);
    uint64_t took = pump_until_eof(&h, &cl, 3000);
    PN_CHECK(cl.eof);
    PN_CHECK(took >= 250 && took < 2000);
    PN_CHECK_EQ_INT(cl.len, 0); /* no answer: it never spoke HTTP */
    PN_CHECK_EQ_INT(pn_worker_connections(h.w), 0);
    client_close(&cl);
    harness_stop(&h);
    pn_tls_ctx_free(ctx);
    tls_files_remove(&t);
}

int main(void)
{
    PN_RUN(pipelined_requests_are_answered_in_order_on_one_connection);
    PN_RUN(a_pipelined_request_waits_until_the_one_before_it_is_answered);
    PN_RUN(a_bad_request_gets_400_then_the_connection_closes);
    PN_RUN(a_bad_request_after_a_good_one_gets_the_good_answer_then_400_and_close);
    PN_RUN(a_fin_after_a_complete_request_still_gets_the_response_then_a_close);
    PN_RUN(a_fin_with_pipelined_requests_gets_every_response_then_a_close);
    PN_RUN(a_reset_while_the_app_holds_the_request_is_reported_once_by_on_close);
    PN_RUN(a_head_unfinished_at_the_header_deadline_gets_408_then_a_close);
    PN_RUN(a_silent_connection_is_closed_at_the_header_deadline_without_a_response);
    PN_RUN(the_first_header_deadline_runs_from_accept_not_from_the_first_byte);
    PN_RUN(keep_alive_serves_the_next_request_on_the_same_connection);
    PN_RUN(an_idle_keep_alive_connection_closes_silently_at_the_keep_alive_timeout);
    PN_RUN(a_request_with_connection_close_gets_its_response_then_a_close);
    PN_RUN(an_http10_request_without_keep_alive_is_closed_after_its_response);
    PN_RUN(a_response_done_without_keep_alive_closes_after_the_response);
    PN_RUN(a_tls_context_names_the_file_and_setting_at_fault);
    PN_RUN(tls_keep_alive_and_pipelining_through_the_worker);
    PN_RUN(plain_http_to_a_tls_worker_gets_400_then_a_close);
    PN_RUN(an_unfinished_tls_handshake_is_closed_at_the_header_deadline);
    return pn_test_summary();
}
