/*
 * fuzz_tls_first_bytes.c — libFuzzer target for the first bytes of a TLS
 * connection: the first-byte test (a handshake record, or plain HTTP that
 * gets a 400), the PROXY header before the handshake (--proxy-protocol),
 * the bytes read with that header handed to the session (tls_pre), and
 * OpenSSL's handshake on whatever follows.  pn_tls.c and pn_proxy_phase.c,
 * driven through a real worker (pn_worker.h) on a loopback socket.
 *
 * Input: byte 0 picks the worker (bit 0: the one with --proxy-protocol)
 * and where the rest is cut in two writes (bits 1-7: a fraction of the
 * length; the worker runs between them, so a header and the handshake
 * arrive together or apart); the rest is what the client sends, then it
 * shuts its side.  Checked, besides ASan/UBSan/leaks: every connection
 * ends (EOF or reset) within 2 s of the client's end, whatever it sent,
 * and the worker goes on serving.  The worker's certificate is made at
 * start-up (a P-256 key, self-signed) in a temporary directory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pn_tls.h"
#include "pn_worker.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

typedef struct {
    pn_config cfg;
    pn_worker *w;
    int lfd;
    uint16_t port;
} fworker;

static fworker workers[2]; /* [1]: --proxy-protocol */
static pn_tls_ctx *tls;

/* The app: a request that gets this far (none can: no handshake ends)
 * is answered 200, empty. */
static int on_request(void *ctx, pn_stream *s, const pn_http1_request *req)
{
    (void)ctx;
    (void)req;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    struct iovec iov = {(void *)ok, sizeof ok - 1};
    pn_conn *c = pn_http1_stream_conn(s);
    pn_conn_write(c, &iov, 1);
    pn_conn_response_done(c, 0);
    return 0;
}

static void on_stream(void *ctx, pn_stream *s)
{
    (void)ctx;
    (void)s;
}

static void on_wakeup(void *ctx)
{
    (void)ctx;
}

static void on_ws(void *ctx, pn_conn *c, int event)
{
    (void)ctx;
    (void)c;
    (void)event;
}

static const pn_worker_hooks hooks = {
    .on_request = on_request,
    .on_body = on_stream,
    .on_drain = on_stream,
    .on_close = on_stream,
    .wakeup = on_wakeup,
    .on_ws = on_ws,
};

static void make_certificate(char *cert, char *key)
{
    char dir[] = "/tmp/pn_fuzz_tls_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cert, 64, "%s/cert.pem", dir);
    snprintf(key, 64, "%s/key.pem", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    CHECK(k && x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    CHECK(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(cert, "w");
    CHECK(f && PEM_write_X509(f, x) == 1);
    fclose(f);
    f = fopen(key, "w");
    CHECK(f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void worker_start(fworker *fw, int proxy)
{
    pn_config_defaults(&fw->cfg);
    fw->cfg.proxy_protocol = proxy;
    /* The clients come from all of 127/8 (see client_socket): trusted. */
    fw->cfg.forwarded_allow_ips = "127.0.0.0/8";
    fw->cfg.access_log = 0;
    fw->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    CHECK(fw->lfd >= 0 && bind(fw->lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
          listen(fw->lfd, 64) == 0 && getsockname(fw->lfd, (struct sockaddr *)&sin, &len) == 0);
    fw->port = ntohs(sin.sin_port);
    fw->w = pn_worker_new(&fw->cfg, &fw->lfd, NULL, 1, &hooks, NULL);
    CHECK(fw->w != NULL);
    pn_worker_set_tls(fw->w, tls);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static char cert[64], key[64];
    make_certificate(cert, key);
    pn_config cfg;
    pn_config_defaults(&cfg);
    cfg.ssl_certfile = cert;
    cfg.ssl_keyfile = key;
    char err[512];
    const char *setting;
    tls = pn_tls_ctx_new(&cfg, err, sizeof err, &setting);
    CHECK(tls != NULL);
    unlink(cert);
    unlink(key);
    *strrchr(cert, '/') = '\0';
    rmdir(cert);
    worker_start(&workers[0], 0);
    worker_start(&workers[1], 1);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pump(fworker *fw, int ms)
{
    struct pollfd p = {.fd = pn_worker_fd(fw->w), .events = POLLIN};
    poll(&p, 1, ms);
    pn_worker_poll(fw->w);
}

/* Read what the worker sent; 1 at EOF or a reset. */
static int drained(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n == 0)
            return 1;
        return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
}

static void send_all(fworker *fw, int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pump(fw, 1);
            (void)drained(fd);
        } else {
            return; /* the worker closed: it has said all it will */
        }
    }
}

/* A client socket connected to fw, or -1 when the system has no port left
 * for it.  Each input's client half-closes first, so its port stays in
 * TIME_WAIT for a minute: tens of thousands of inputs a minute would use up
 * the ephemeral ports of one source address, so the source rotates over
 * 127.0.0.2-251 (a harness limit, not the server's: skipped, not a crash;
 * so is a connect that a signal interrupted). */
static int client_socket(fworker *fw)
{
    static unsigned next_src;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in src = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(0x7f000002u + next_src++ % 250u)};
    struct sockaddr_in dst = {.sin_family = AF_INET,
                              .sin_port = htons(fw->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&src, sizeof src) == 0 &&
        connect(fd, (struct sockaddr *)&dst, sizeof dst) == 0)
        return fd;
    /* EINTR: libFuzzer's once-a-second SIGALRM interrupted the connect. */
    CHECK(errno == EADDRNOTAVAIL || errno == EADDRINUSE || errno == EINTR);
    close(fd);
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fworker *fw = &workers[data[0] & 1];
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    size_t cut = n * (data[0] >> 1) / 128;
    int fd = client_socket(fw);
    if (fd < 0)
        return 0;
    pump(fw, 0); /* accept */
    send_all(fw, fd, body, cut);
    pump(fw, 0);
    send_all(fw, fd, body + cut, n - cut);
    shutdown(fd, SHUT_WR);
    /* Whatever was sent, the client's end ends the connection. */
    uint64_t deadline = now_ms() + 2000;
    int done = 0;
    while (!(done = drained(fd)) && now_ms() < deadline)
        pump(fw, 1);
    CHECK(done);
    close(fd);
    pump(fw, 0);
    return 0;
}
