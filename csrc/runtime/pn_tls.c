/*
 * pn_tls.c — TLS with OpenSSL 3: the server's context (built once from the
 * config, read-only afterwards), and a connection's session: its socket
 * BIO, the handshake phase (PN_CONN_TLS), reads and writes through it, and
 * what the scope reads of it.  Contracts: pn_tls.h (the context, the
 * scope's questions), pn_worker_int.h (what the worker calls).
 *
 * Threads: pn_tls_ctx_new and pn_tls_ctx_free run on the thread that
 * builds or drops the config, never while a worker uses the context; every
 * other function runs on the worker thread that owns the connection.  No
 * static mutable state: the BIO method is made per context and read only.
 *
 * How a connection's bytes flow.  The session reads and writes the socket
 * itself, through a small BIO of ours (not OpenSSL's socket BIO) for two
 * reasons: with the edge-triggered epoll of the worker a read must know
 * whether it drained the socket (a short recv), which OpenSSL does not
 * say, and read-ahead then costs one recv per batch of records instead of
 * two per record (header, body).  Writes gather the response into the
 * connection's wbuf first, so a head and its body become one TLS record
 * and one send, as plain TCP gathers them into one sendmsg.
 */
#include "pn_tls.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "pn_h2.h"
#include "pn_worker_int.h"

/* Session-ticket keys (RFC 5077 tickets in TLS 1.2, PSK tickets in 1.3).
 * Every key is derived from one random secret, made with the context
 * (before workers fork, so every worker of the process has it), and the
 * epoch, floor(wall clock / period): each worker computes the same current
 * key on its own, with no shared memory, lock or timer, and a new key takes
 * over at each period.  Read-only after pn_tls_ctx_new. */
/* The keys of the current epoch, cached: deriving them costs ~56k
 * instructions in OpenSSL 3.0 (KDF and digest set-up), 5 % of a resumed
 * handshake.  A seqlock of atomics, so workers on several threads read it
 * with no lock and no data race (the one mutable part of the context):
 * seq is odd while a thread writes it; a reader that sees seq change, or
 * odd, derives the keys itself. */
#define TICKET_KEY_WORDS 10 /* sizeof(ticket_keys) / 8 */
typedef struct {
    _Atomic uint64_t seq;
    _Atomic uint64_t epoch;
    _Atomic uint64_t words[TICKET_KEY_WORDS];
} ticket_cache;

typedef struct {
    unsigned char secret[32];
    int64_t period; /* seconds: --ssl-ticket-lifetime */
    EVP_KDF *hkdf;  /* fetched once: a fetch per ticket costs a lookup */
    EVP_CIPHER *aes;
    ticket_cache cache;
} pn_tls_tickets;

struct pn_tls_ctx {
    SSL_CTX *ctx;
    int free_idle;   /* SSL_free_buffers is safe in this OpenSSL (safe_free_buffers) */
    BIO_METHOD *bio; /* the socket BIO of every session (see above) */
    char *cert_pem;  /* the server's certificate, PEM (ASGI server_cert) */
    size_t cert_pem_len;
    pn_tls_tickets tickets; /* session-ticket keys (below) */
    /* ALPN (RFC 7301): what we offer for --http, in wire format, most
     * preferred first (pn_h2_alpn: "h2" before "http/1.1" with auto). */
    const unsigned char *alpn;
    unsigned alpn_len;
    /* Kernel TLS for pathsend (ktls_init): whether the kernel takes TLS
     * sockets, and if not why (for the debug line of a file sent). */
    int ktls;
    char ktls_why[160];
};


/* A worker with more connections than this frees the record buffers of
 * its idle TLS sessions (pn_tls_conn_idle). */
#define TLS_IDLE_KEEP_CONNS 256

/* Handshake records start with content type 22 (RFC 8446 §5.1; RFC 5246
 * §6.2.1): anything else as a first byte is not TLS, and is answered as
 * nginx does, with a plain-text 400. */
#define TLS_HANDSHAKE_RECORD 0x16

/* Plain text sent to a client that speaks HTTP to the TLS port. */
static const char plain_http_body[] =
    "400 Bad Request: this port speaks HTTPS, and a plain HTTP request was sent to it.\n";

const char *pn_tls_library(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}

int pn_tls_wanted(const pn_config *cfg)
{
    return cfg->ssl_certfile != NULL && cfg->ssl_certfile[0] != '\0';
}

/* ---- errors of the context ------------------------------------------ */

/* err = "<what>: <OpenSSL's reason of the last error>", or just <what>. */
static void ssl_error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (reason)
        snprintf(err, errlen, "%s (%s)", what, reason);
    else
        snprintf(err, errlen, "%s", what);
    ERR_clear_error();
}

/* A file the settings name must be readable; say why not in err. */
static int readable(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

/* The key's password, given to OpenSSL only when it asks (an encrypted
 * key); `asked` tells an encrypted key without a password from a file
 * that holds no key.  Never prompts on a terminal. */
typedef struct {
    const char *password;
    int asked;
} key_password;

static int password_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    key_password *p = u;
    p->asked = 1;
    size_t n = strlen(p->password);
    if (n == 0 || n > (size_t)size)
        return -1;
    memcpy(buf, p->password, n);
    return (int)n;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    const pn_tls_ctx *t = arg;
    unsigned char *chosen;
    /* Our order wins (SSL_select_next_proto walks the server's list). */
    if (SSL_select_next_proto(&chosen, outlen, t->alpn, t->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no protocol in common: go on without ALPN */
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

/* SNI (RFC 6066 §3): one certificate serves every name, but accepting
 * the name (rather than OpenSSL's default, not acknowledging it) makes
 * OpenSSL keep it in the session, so a resumed TLS 1.2 session still
 * tells the app the name (pn_tls_session_server_name).  The hook where a
 * certificate per name would be chosen. */
static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    (void)ssl;
    (void)alert;
    (void)arg;
    return SSL_TLSEXT_ERR_OK;
}

/* ---- the socket BIO ------------------------------------------------- */

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int bio_read(BIO *b, char *buf, size_t len, size_t *got)
{
    pn_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (c->tls_pre) {
        /* Read with the PROXY header: served first. */
        size_t n = c->tls_pre_len - c->tls_pre_off;
        if (n > len)
            n = len;
        memcpy(buf, c->tls_pre + c->tls_pre_off, n);
        c->tls_pre_off += n;
        if (c->tls_pre_off == c->tls_pre_len) {
            free(c->tls_pre);
            c->tls_pre = NULL;
        }
        *got = n;
        return 1;
    }
    ssize_t n;
    do
        n = recv(c->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        *got = (size_t)n;
        /* Short: the socket is drained now, and new bytes bring a new
         * edge (pn_conn_read_input). */
        c->tls_short = (size_t)n < len;
        return 1;
    }
    *got = 0;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->tls_short = 1;
        BIO_set_retry_read(b);
    }
    return 0; /* EOF (n == 0) or an error */
}

static int bio_write(BIO *b, const char *buf, size_t len, size_t *put)
{
    pn_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do
        n = send(c->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0) {
        *put = (size_t)n;
        return 1;
    }
    *put = 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_write(b);
    return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* Writes go straight to the socket: nothing to flush.  Everything
     * else (kTLS, pending counts) this BIO does not do. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

/* ---- session tickets ----------------------------------------------- */

/* A ticket's key name (16 bytes, sent in clear with the ticket): the epoch
 * whose keys sealed it (8 bytes, big-endian), then 8 bytes derived with
 * those keys, which tell our tickets from another generation's or another
 * server's.  One derivation per ticket, sealed or opened. */
#define TICKET_NAME_LEN 16
#define TICKET_AES_LEN 32
#define TICKET_HMAC_LEN 32

typedef struct {
    unsigned char name[TICKET_NAME_LEN];
    unsigned char aes[TICKET_AES_LEN];
    unsigned char hmac[TICKET_HMAC_LEN];
} ticket_keys;

/* HKDF-SHA256 (RFC 5869) of the secret, with the label and the epoch as
 * info: the keys of that epoch.  Any thread (a new KDF context each call;
 * the fetched algorithm is shared read-only). */
static int ticket_keys_of(const pn_tls_tickets *tk, uint64_t epoch, ticket_keys *k)
{
    unsigned char info[24] = "pounce ticket keys";
    for (int i = 0; i < 8; i++)
        info[16 + i] = (unsigned char)(epoch >> (56 - 8 * i));
    unsigned char out[8 + TICKET_AES_LEN + TICKET_HMAC_LEN];
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(tk->hkdf);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)tk->secret,
                                          sizeof tk->secret),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info),
        OSSL_PARAM_construct_end(),
    };
    int ok = kctx != NULL && EVP_KDF_derive(kctx, out, sizeof out, params) == 1;
    EVP_KDF_CTX_free(kctx);
    if (ok) {
        memcpy(k->name, info + 16, 8);
        memcpy(k->name + 8, out, 8);
        memcpy(k->aes, out + 8, TICKET_AES_LEN);
        memcpy(k->hmac, out + 8 + TICKET_AES_LEN, TICKET_HMAC_LEN);
    }
    OPENSSL_cleanse(out, sizeof out);
    return ok ? 0 : -1;
}

_Static_assert(sizeof(ticket_keys) == TICKET_KEY_WORDS * 8, "ticket_keys is 80 bytes");

/* The keys of epoch from the cache: 0, or -1 when it holds another epoch
 * or a thread is writing it. */
static int ticket_cache_get(ticket_cache *tc, uint64_t epoch, ticket_keys *k)
{
    uint64_t w[TICKET_KEY_WORDS];
    uint64_t s1 = atomic_load_explicit(&tc->seq, memory_order_acquire);
    if ((s1 & 1) || atomic_load_explicit(&tc->epoch, memory_order_acquire) != epoch)
        return -1;
    for (int i = 0; i < TICKET_KEY_WORDS; i++)
        w[i] = atomic_load_explicit(&tc->words[i], memory_order_acquire);
    /* (Acquire loads rather than a fence, which TSan does not model: the
     * check of seq below cannot move above them.) */
    if (atomic_load_explicit(&tc->seq, memory_order_relaxed) != s1) {
        OPENSSL_cleanse(w, sizeof w);
        return -1;
    }
    memcpy(k, w, sizeof w);
    OPENSSL_cleanse(w, sizeof w);
    return 0;
}

/* Cache epoch's keys, unless another thread is writing (it then writes
 * the same, or a newer epoch's). */
static void ticket_cache_put(ticket_cache *tc, uint64_t epoch, const ticket_keys *k)
{
    uint64_t w[TICKET_KEY_WORDS];
    uint64_t s = atomic_load_explicit(&tc->seq, memory_order_relaxed);
    if ((s & 1) || !atomic_compare_exchange_strong_explicit(
                       &tc->seq, &s, s + 1, memory_order_acq_rel, memory_order_relaxed))
        return;
    /* Release stores: a reader that sees one of them sees seq odd. */
    memcpy(w, k, sizeof w);
    atomic_store_explicit(&tc->epoch, epoch, memory_order_release);
    for (int i = 0; i < TICKET_KEY_WORDS; i++)
        atomic_store_explicit(&tc->words[i], w[i], memory_order_release);
    atomic_store_explicit(&tc->seq, s + 2, memory_order_release);
    OPENSSL_cleanse(w, sizeof w);
}

static uint64_t ticket_epoch_now(const pn_tls_tickets *tk)
{
    return (uint64_t)time(NULL) / (uint64_t)tk->period;
}

/* OpenSSL's ticket callback (SSL_CTX_set_tlsext_ticket_key_evp_cb), on the
 * worker thread of the handshake.  Sealing (enc = 1) uses the current
 * epoch's keys; opening accepts the current epoch and the one before
 * (answering 2: sealed with the previous key, so a fresh ticket is sent),
 * and nothing older (0: no resumption, a full handshake).  A ticket is
 * thus valid for one to two periods; the session timeout (one period)
 * bounds it first, so clients never hold a ticket whose key is gone. */
static int ticket_key_cb(SSL *ssl, unsigned char name[TICKET_NAME_LEN],
                         unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX *cctx,
                         EVP_MAC_CTX *hctx, int enc)
{
    pn_tls_ctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    pn_tls_tickets *tk = &t->tickets;
    uint64_t now = ticket_epoch_now(tk), epoch = now;
    int rc = 1;
    if (!enc) {
        epoch = 0;
        for (int i = 0; i < 8; i++)
            epoch = epoch << 8 | name[i];
        if (epoch == now - 1)
            rc = 2;
        else if (epoch != now)
            return 0;
    }
    ticket_keys k;
    if (ticket_cache_get(&tk->cache, epoch, &k) < 0) {
        if (ticket_keys_of(tk, epoch, &k) < 0)
            return -1;
        if (epoch == now) /* the previous epoch's keys are rarely asked for */
            ticket_cache_put(&tk->cache, epoch, &k);
    }
    if (enc) {
        memcpy(name, k.name, TICKET_NAME_LEN);
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(tk->aes)) != 1)
            rc = -1;
    } else if (CRYPTO_memcmp(name, k.name, TICKET_NAME_LEN) != 0) {
        rc = 0; /* another generation's or another server's ticket */
    }
    if (rc > 0) {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, TICKET_HMAC_LEN),
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
            OSSL_PARAM_construct_end(),
        };
        if (EVP_MAC_CTX_set_params(hctx, params) != 1 ||
            (enc ? EVP_EncryptInit_ex2(cctx, tk->aes, k.aes, iv, NULL)
                 : EVP_DecryptInit_ex2(cctx, tk->aes, k.aes, iv, NULL)) != 1)
            rc = -1;
    }
    OPENSSL_cleanse(&k, sizeof k);
    return rc;
}

/* The secret and the callback; sessions then time out after one period. */
static int tickets_init(pn_tls_ctx *t, const pn_config *cfg)
{
    pn_tls_tickets *tk = &t->tickets;
    tk->period = cfg->ssl_ticket_lifetime > 0 ? cfg->ssl_ticket_lifetime : 3600;
    atomic_init(&tk->cache.epoch, UINT64_MAX); /* no epoch cached yet */
    tk->hkdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    tk->aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (tk->hkdf == NULL || tk->aes == NULL || RAND_priv_bytes(tk->secret, sizeof tk->secret) != 1)
        return -1;
    SSL_CTX_set_app_data(t->ctx, t);
    SSL_CTX_set_timeout(t->ctx, (long)tk->period);
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(t->ctx, ticket_key_cb) == 1 ? 0 : -1;
}

static void tickets_free(pn_tls_tickets *tk)
{
    OPENSSL_cleanse(tk->secret, sizeof tk->secret);
    OPENSSL_cleanse(&tk->cache, sizeof tk->cache); /* no worker is left */
    EVP_KDF_free(tk->hkdf);
    EVP_CIPHER_free(tk->aes);
}

/* ---- kernel TLS (pathsend) ------------------------------------------ */

static void session_failed(pn_conn *c);

/* With kernel TLS (Linux's "tls" TCP ULP), OpenSSL hands the session's
 * write keys to the kernel and a file goes out with SSL_sendfile: the
 * kernel reads, encrypts and sends it, without copying it to user space.
 * OpenSSL sets that up only on a socket BIO of its own (the keys are
 * passed in a struct private to OpenSSL), so on a kernel that has kTLS a
 * session writes through OpenSSL's socket BIO (reads stay on ours).  That
 * BIO writes with write(2), which raises SIGPIPE on a reset connection:
 * like sendfile(2) on plain TCP, it relies on SIGPIPE being ignored, as
 * CPython does at start.  On a kernel without it nothing changes (our BIO
 * both ways), and a file is read and written through the session. */

#ifndef TCP_ULP
#define TCP_ULP 31 /* linux/tcp.h */
#endif

/* Whether the kernel accepts the "tls" ULP: tried on a loopback TCP
 * connection (a ULP needs an established socket).  0, or the errno. */
static int ktls_probe(void)
{
    int err = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) < 0 ||
        connect(c, (struct sockaddr *)&a, sizeof a) < 0 ||
        setsockopt(c, IPPROTO_TCP, TCP_ULP, "tls", 3) < 0)
        err = errno ? errno : EINVAL;
    if (c >= 0)
        close(c);
    if (l >= 0)
        close(l);
    return err;
}

static void ktls_init(pn_tls_ctx *t)
{
#ifdef OPENSSL_NO_KTLS
    snprintf(t->ktls_why, sizeof t->ktls_why, "this OpenSSL was built without kTLS");
#else
    int err = ktls_probe();
    if (err) {
        snprintf(t->ktls_why, sizeof t->ktls_why, "the kernel has no TLS ULP: %s",
                 err == ENOENT ? "no \"tls\" module loaded" : strerror(err));
        return;
    }
    t->ktls = 1;
    SSL_CTX_set_options(t->ctx, SSL_OP_ENABLE_KTLS);
#endif
}

/* The BIO a new session writes through: OpenSSL's socket BIO when the
 * kernel has kTLS (see above), else ours (b, read and write). */
static BIO *write_bio(const pn_tls_ctx *t, pn_conn *c, BIO *b)
{
    BIO *w = t->ktls ? BIO_new_socket(c->fd, BIO_NOCLOSE) : NULL;
    return w ? w : b;
}

/* A debug line (stderr, written at once, as the worker's own lines). */
static void debug_line(pn_worker *w, const char *what, const char *why)
{
    if (w->cfg->log_level > PN_LOG_DEBUG)
        return;
    pn_buf line = PN_BUF_INIT;
    pn_buf_append(&line, PN_STRLIT("DEBUG pounce: "));
    pn_buf_append_str(&line, what);
    if (why) {
        pn_buf_append(&line, PN_STRLIT(" ("));
        pn_buf_append_str(&line, why);
        pn_buf_append(&line, PN_STRLIT(")"));
    }
    pn_buf_append(&line, PN_STRLIT("\n"));
    if (line.data && write(2, line.data, line.len) < 0) {
        /* nothing to do: stderr is gone */
    }
    pn_buf_free(&line);
}

int pn_tls_ktls_send(pn_conn *c)
{
    const pn_tls_ctx *t = c->worker->tls;
    int on = 0;
#ifndef OPENSSL_NO_KTLS
    on = t->ktls && BIO_get_ktls_send(SSL_get_wbio(c->ssl));
#endif
    if (!c->tls_file_said) {
        c->tls_file_said = 1;
        char why[200];
        if (!on && t->ktls) {
            const SSL_CIPHER *cipher = SSL_get_current_cipher(c->ssl);
            snprintf(why, sizeof why, "kernel TLS not available: OpenSSL did not turn it on for %s",
                     cipher ? SSL_CIPHER_get_name(cipher) : "this session");
        } else if (!on) {
            snprintf(why, sizeof why, "kernel TLS not available: %s", t->ktls_why);
        }
        debug_line(c->worker,
                   on ? "pathsend over TLS: kTLS sendfile" : "pathsend over TLS: read-and-write",
                   on ? NULL : why);
    }
    return on;
}

ssize_t pn_tls_sendfile(pn_conn *c, uint64_t off, size_t len)
{
    ossl_ssize_t n;
    do {
        ERR_clear_error();
        BLOCKING_BEGIN(c->worker);
        n = SSL_sendfile(c->ssl, c->file_fd, (off_t)off, len, 0);
        BLOCKING_END(c->worker);
    } while (n < 0 && errno == EINTR); /* OpenSSL calls it a retry: not a full socket */
    if (n >= 0)
        return (ssize_t)n;
    switch (SSL_get_error(c->ssl, (int)n)) {
    case SSL_ERROR_WANT_WRITE:
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    default:
        session_failed(c);
        errno = EPIPE;
        return -1;
    }
}

/* ---- the context ---------------------------------------------------- */

static int load_cert_and_key(SSL_CTX *ctx, const pn_config *cfg, char *err, size_t errlen,
                             const char **setting)
{
    char what[512];
    *setting = "ssl_certfile";
    if (readable(cfg->ssl_certfile, err, errlen) < 0)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->ssl_certfile) != 1) {
        snprintf(what, sizeof what, "no PEM certificate could be read from '%s'",
                 cfg->ssl_certfile);
        ssl_error(err, errlen, what);
        return -1;
    }
    const char *keyfile = cfg->ssl_keyfile[0] ? cfg->ssl_keyfile : cfg->ssl_certfile;
    *setting = cfg->ssl_keyfile[0] ? "ssl_keyfile" : "ssl_certfile";
    if (readable(keyfile, err, errlen) < 0)
        return -1;
    key_password pw = {cfg->ssl_keyfile_password, 0};
    SSL_CTX_set_default_passwd_cb(ctx, password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &pw);
    int ok = SSL_CTX_use_PrivateKey_file(ctx, keyfile, SSL_FILETYPE_PEM) == 1;
    /* pw lives on this stack: the context must not keep it. */
    SSL_CTX_set_default_passwd_cb(ctx, NULL);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    unsigned long e = ok ? 0 : ERR_peek_last_error();
    if (!ok && ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        ok = 1; /* a key, but not the certificate's: said below */
    } else if (!ok) {
        if (pw.asked && cfg->ssl_keyfile_password[0] == '\0') {
            snprintf(err, errlen,
                     "the private key in '%s' is encrypted: give its password with "
                     "ssl_keyfile_password",
                     keyfile);
            ERR_clear_error();
        } else if (pw.asked) {
            *setting = "ssl_keyfile_password";
            snprintf(what, sizeof what, "it does not decrypt the private key in '%s'", keyfile);
            ssl_error(err, errlen, what);
        } else {
            snprintf(what, sizeof what, "no PEM private key could be read from '%s'%s", keyfile,
                     cfg->ssl_keyfile[0] ? "" : " (name the key's file with ssl_keyfile)");
            ssl_error(err, errlen, what);
        }
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "the private key in '%s' does not match the certificate in '%s'",
                 keyfile, cfg->ssl_certfile);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* --ssl-cert-reqs optional: a client certificate that does not verify
 * does not fail the handshake; the session's verify result keeps the
 * reason, which the app reads as client_cert_error
 * (pn_tls_session_verify_error).  The FIRST error: OpenSSL goes on after
 * an error we let pass and would leave the last one (an unknown issuer,
 * then "unable to verify the first certificate"), so the first is kept in
 * the session and put back into the store at every later error. */
static int verify_optional(int ok, X509_STORE_CTX *store)
{
    if (!ok) {
        SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
        long first = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        if (first == X509_V_OK && ssl)
            SSL_set_verify_result(ssl, X509_STORE_CTX_get_error(store));
        else if (first != X509_V_OK)
            X509_STORE_CTX_set_error(store, (int)first);
    }
    return 1;
}

/* --ssl-ca-certs and --ssl-cert-reqs: mutual TLS. */
static int load_client_cas(SSL_CTX *ctx, const pn_config *cfg, char *err, size_t errlen,
                           const char **setting)
{
    char what[512];
    *setting = "ssl_ca_certs";
    const char *ca = cfg->ssl_ca_certs;
    struct stat st;
    if (stat(ca, &st) < 0) {
        snprintf(err, errlen, "cannot read '%s': %s", ca, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        if (SSL_CTX_load_verify_dir(ctx, ca) != 1) {
            snprintf(what, sizeof what, "cannot use the directory '%s'", ca);
            ssl_error(err, errlen, what);
            return -1;
        }
    } else {
        if (readable(ca, err, errlen) < 0)
            return -1;
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (names == NULL || SSL_CTX_load_verify_file(ctx, ca) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            snprintf(what, sizeof what, "no PEM certificate could be read from '%s'", ca);
            ssl_error(err, errlen, what);
            return -1;
        }
        /* The CertificateRequest names them, so a client with several
         * certificates picks one these CAs signed. */
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    if (cfg->ssl_cert_reqs == PN_CERT_REQS_REQUIRED)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    else
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_optional);
    return 0;
}

static int keep_cert_pem(pn_tls_ctx *t)
{
    X509 *x = SSL_CTX_get0_certificate(t->ctx);
    BIO *m = x ? BIO_new(BIO_s_mem()) : NULL;
    int rc = -1;
    char *p;
    long n;
    if (m && PEM_write_bio_X509(m, x) == 1 && (n = BIO_get_mem_data(m, &p)) > 0) {
        t->cert_pem = malloc((size_t)n + 1);
        if (t->cert_pem) {
            memcpy(t->cert_pem, p, (size_t)n);
            t->cert_pem[n] = '\0';
            t->cert_pem_len = (size_t)n;
            rc = 0;
        }
    }
    BIO_free(m);
    return rc;
}

/* TLS 1.3 suites, the server's choice first: AES-128-GCM with SHA-256
 * (Mozilla's "intermediate" order).  OpenSSL's default puts AES-256-GCM
 * with SHA-384 first, and SHA-384 makes every step of the key schedule
 * (some twenty HKDF calls per handshake) and the transcript hash dearer,
 * for no strength a 128-bit key exchange (X25519, P-256) can use.  The
 * same three suites stay enabled. */
static int prefer_cheap_suites(SSL_CTX *ctx)
{
    static const char suites[] =
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
    return SSL_CTX_set_ciphersuites(ctx, suites) == 1 ? 0 : -1;
}

/* SSL_free_buffers could free a record the session had decrypted but not
 * yet returned (CVE-2024-4741) before OpenSSL 3.0.14, 3.1.6, 3.2.2 and
 * 3.3.1; with an older library idle sessions keep their buffers. */
static int safe_free_buffers(void)
{
    unsigned long v = OpenSSL_version_num(); /* 0xMNN00PP0L */
    unsigned long minor = (v >> 20) & 0xff, patch = (v >> 4) & 0xff;
    if ((v >> 28) != 3)
        return (v >> 28) > 3;
    static const unsigned long fixed[] = {14, 6, 2, 1}; /* by 3.<minor> */
    return minor >= sizeof(fixed) / sizeof(fixed[0]) || patch >= fixed[minor];
}

pn_tls_ctx *pn_tls_ctx_new(const pn_config *cfg, char *err, size_t errlen, const char **setting)
{
    *setting = "ssl_certfile";
    err[0] = '\0';
    ERR_clear_error();
    pn_tls_ctx *t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto nomem;
    t->ctx = SSL_CTX_new(TLS_server_method());
    t->bio = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pounce socket");
    if (t->ctx == NULL || t->bio == NULL)
        goto nomem;
    BIO_meth_set_create(t->bio, bio_create);
    BIO_meth_set_read_ex(t->bio, bio_read);
    BIO_meth_set_write_ex(t->bio, bio_write);
    BIO_meth_set_ctrl(t->bio, bio_ctrl);

    SSL_CTX *ctx = t->ctx;
    /* TLS 1.2 or newer (RFC 8996 deprecates 1.0 and 1.1). */
    SSL_CTX_set_min_proto_version(ctx, cfg->ssl_min_version == PN_TLS_MIN_13 ? TLS1_3_VERSION
                                                                             : TLS1_2_VERSION);
    /* No renegotiation at all (a client could make us spend handshakes on
     * one connection); an EOF without close_notify is an EOF, as the
     * HTTP/1.1 framing already tells a truncated message; no
     * compression (CRIME). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (prefer_cheap_suites(ctx) < 0)
        goto nomem;
    t->free_idle = safe_free_buffers();
    /* Writes return what went out (the rest stays in wbuf, which may move
     * when it grows before the retry). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Resumption by session tickets only: their keys come from the
     * context (tickets_init: every worker of the process, forked ones too,
     * takes every ticket), and no session cache is shared, written and
     * locked by all workers.  One TLS 1.3 ticket per handshake: clients
     * resume with one. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    static const unsigned char sid_ctx[] = "pounce";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    t->alpn = pn_h2_alpn(cfg, &t->alpn_len);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, t);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);

    if (load_cert_and_key(ctx, cfg, err, errlen, setting) < 0)
        goto fail;
    if (cfg->ssl_ca_certs[0] && load_client_cas(ctx, cfg, err, errlen, setting) < 0)
        goto fail;
    if (cfg->ssl_ciphers[0] && SSL_CTX_set_cipher_list(ctx, cfg->ssl_ciphers) != 1) {
        *setting = "ssl_ciphers";
        char what[300];
        snprintf(what, sizeof what, "OpenSSL knows no cipher in '%s'", cfg->ssl_ciphers);
        ssl_error(err, errlen, what);
        goto fail;
    }
    if (keep_cert_pem(t) < 0 || tickets_init(t, cfg) < 0)
        goto nomem;
    ktls_init(t);
    return t;
nomem:
    snprintf(err, errlen, "TLS: out of memory building the context");
fail:
    ERR_clear_error();
    pn_tls_ctx_free(t);
    return NULL;
}

void pn_tls_ctx_free(pn_tls_ctx *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    BIO_meth_free(t->bio);
    tickets_free(&t->tickets);
    free(t->cert_pem);
    free(t);
}

const char *pn_tls_ctx_cert_pem(const pn_tls_ctx *t, size_t *len)
{
    *len = t->cert_pem_len;
    return t->cert_pem;
}

/* ---- a connection's session ----------------------------------------- */

/* Before an SSL call whose failure SSL_get_error explains: the thread's
 * error queue must be empty (the app may use OpenSSL on this thread too,
 * through Python's ssl module).  It almost always is, and ERR_clear_error
 * walks all its slots (~840 instructions, twice per keep-alive request);
 * a peek costs a tenth of that. */
static void errors_cleared(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

int pn_tls_conn_begin(pn_conn *c)
{
    const pn_tls_ctx *t = c->worker->tls;
    SSL *ssl = SSL_new(t->ctx);
    BIO *b = ssl ? BIO_new(t->bio) : NULL;
    if (b == NULL) {
        SSL_free(ssl);
        ERR_clear_error();
        return -1;
    }
    size_t pre = pn_buf_live(&c->rbuf);
    if (pre > 0) {
        c->tls_pre = malloc(pre);
        if (c->tls_pre == NULL) {
            BIO_free(b);
            SSL_free(ssl);
            return -1;
        }
        memcpy(c->tls_pre, pn_buf_head(&c->rbuf), pre);
        c->tls_pre_len = pre;
        c->tls_pre_off = 0;
        pn_buf_clear(&c->rbuf);
    }
    BIO_set_data(b, c);
    SSL_set_bio(ssl, b, write_bio(t, c, b)); /* the session owns the BIOs */
    SSL_set_accept_state(ssl);
    c->ssl = ssl;
    c->phase = PN_CONN_TLS;
    return 0;
}

void pn_tls_conn_free(pn_conn *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
    free(c->tls_pre);
    c->tls_pre = NULL;
}

/* An idle session keeps a read and a write buffer of about 17 KiB each
 * (a record's maximum): 27.6 KiB of RSS per idle keep-alive connection
 * against 18.5 with them freed (bench/tls_idle_rss.py).  Freed, they come
 * back at the next read or write, ~2,100 instructions per request of a
 * client that waits for each response (4 % of a keep-alive request), so a
 * worker with few connections keeps them: up to TLS_IDLE_KEEP_CONNS
 * connections the most this costs is ~2.5 MiB per worker.  Not freed for
 * every record (SSL_MODE_RELEASE_BUFFERS): pipelined or streamed records
 * would pay the allocation each.  SSL_free_buffers refuses, harmlessly,
 * while bytes of a record wait in either buffer (a partial record read
 * ahead, or one decrypted and not yet read: see safe_free_buffers). */
void pn_tls_conn_idle(pn_conn *c)
{
    if (c->worker->nconns > TLS_IDLE_KEEP_CONNS && c->worker->tls->free_idle)
        (void)SSL_free_buffers(c->ssl);
}

/* After a fatal error the session must not send close_notify (SSL_shutdown
 * is not allowed then): a quiet shutdown sends nothing. */
static void session_failed(pn_conn *c)
{
    SSL_set_quiet_shutdown(c->ssl, 1);
    ERR_clear_error();
}

ssize_t pn_tls_read(pn_conn *c, char *buf, size_t len)
{
    size_t got = 0;
    int ok;
    /* Set again by a short socket read during this call only: bytes served
     * from OpenSSL's buffer say nothing about the socket. */
    c->tls_short = 0;
    errors_cleared();
    {
        BLOCKING_BEGIN(c->worker);
        ok = SSL_read_ex(c->ssl, buf, len, &got);
        BLOCKING_END(c->worker);
    }
    if (ok) {
        if (c->tls_short && SSL_has_pending(c->ssl))
            c->tls_short = 0; /* read ahead: records wait in the session */
        return (ssize_t)got;
    }
    switch (SSL_get_error(c->ssl, ok)) {
    case SSL_ERROR_ZERO_RETURN: /* close_notify, or a plain EOF */
        return 0;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    default:
        session_failed(c);
        errno = ECONNRESET;
        return -1;
    }
}

ssize_t pn_tls_write(pn_conn *c, const char *buf, size_t len)
{
    size_t put = 0;
    int ok;
    errors_cleared();
    {
        BLOCKING_BEGIN(c->worker);
        ok = SSL_write_ex(c->ssl, buf, len, &put);
        BLOCKING_END(c->worker);
    }
    if (ok)
        return (ssize_t)put;
    switch (SSL_get_error(c->ssl, ok)) {
    case SSL_ERROR_WANT_WRITE:
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    default:
        session_failed(c);
        errno = EPIPE;
        return -1;
    }
}

void pn_tls_close_notify(pn_conn *c)
{
    if (c->ssl == NULL || !SSL_is_init_finished(c->ssl) ||
        (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
        return;
    errors_cleared();
    (void)SSL_shutdown(c->ssl); /* one try: a full socket loses it, as a RST would */
    errors_cleared();
}

/* A debug line saying why a handshake failed (never above debug: a scanner
 * must not flood the log). */
static void handshake_log(pn_conn *c, const char *why)
{
    pn_worker *w = c->worker;
    if (w->cfg->log_level > PN_LOG_DEBUG)
        return;
    pn_buf line = PN_BUF_INIT;
    pn_buf_append(&line, PN_STRLIT("DEBUG pounce: TLS handshake failed: "));
    pn_buf_append_str(&line, why);
    pn_buf_append(&line, PN_STRLIT("\n"));
    if (line.data && write(2, line.data, line.len) < 0) {
        /* nothing to do: stderr is gone */
    }
    pn_buf_free(&line);
}

/* The client spoke plain HTTP to the TLS port: answer 400 in plain text
 * saying so (as nginx does), then close after a lingering read. */
static void plain_http(pn_conn *c)
{
    pn_worker *w = c->worker;
    pn_tls_conn_free(c); /* the bytes of this connection are plain from now on */
    pn_http1_head_opts opts = pn_worker_head_opts(w);
    pn_http1_response r;
    size_t len = sizeof(plain_http_body) - 1;
    if (pn_http1_resp_init(&r, 400, 1, PN_RESP_CLOSE) != PN_WRITE_OK ||
        pn_http1_resp_start(&c->wbuf, &r) != PN_WRITE_OK ||
        pn_http1_resp_header(&c->wbuf, &r, PN_STRLIT("Content-Type"),
                             PN_STRLIT("text/plain; charset=utf-8")) != PN_WRITE_OK ||
        pn_http1_resp_finish_head(&c->wbuf, &r, &opts, (int64_t)len) != PN_WRITE_OK ||
        pn_buf_append(&c->wbuf, plain_http_body, len) != 0) {
        pn_conn_close_now(c);
        return;
    }
    pn_metrics_early(w->metrics, 400);
    if (w->cfg->access_log && w->cfg->log_level <= PN_LOG_INFO) {
        pn_access_rec rec = {.method = "-",
                             .method_len = 1,
                             .target = "-",
                             .target_len = 1,
                             .version_minor = 1,
                             .status = 400,
                             .bytes = len};
        pn_conn_access_log(c, &rec);
    }
    c->phase = PN_CONN_CLOSING;
    c->keep_alive = 0;
    arm_in(c, w->request_ms);
    queue_conn(c);
}

void pn_conn_phase_tls(pn_conn *c)
{
    if (!c->tls_peeked) {
        unsigned char first;
        ssize_t n;
        if (c->tls_pre) {
            first = (unsigned char)c->tls_pre[0];
            n = 1;
        } else {
            do
                n = recv(c->fd, &first, 1, MSG_PEEK);
            while (n < 0 && errno == EINTR);
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->can_read = 0;
            return;
        }
        if (n <= 0) {
            pn_conn_close_now(c); /* gone before saying anything */
            return;
        }
        if (first != TLS_HANDSHAKE_RECORD) {
            plain_http(c);
            return;
        }
        c->tls_peeked = 1;
    }
    int rc;
    errors_cleared();
    {
        BLOCKING_BEGIN(c->worker);
        rc = SSL_do_handshake(c->ssl);
        BLOCKING_END(c->worker);
    }
    if (rc == 1) {
        c->stream.tls = 1;
        c->stream.tls_session = c->ssl;
        c->stream.tls_serial = ++c->worker->tls_sessions;
        /* The handshake's reads may have drained the socket of the first
         * request too (read-ahead: it came with the client's Finished),
         * and taken its epoll edge with it: read, whatever can_read said
         * before (an EAGAIN costs one recv per connection). */
        c->can_read = 1;
        const unsigned char *proto;
        unsigned proto_len;
        SSL_get0_alpn_selected(c->ssl, &proto, &proto_len);
        if (proto_len == 2 && memcmp(proto, "h2", 2) == 0) {
            /* HTTP/2 (RFC 9113 §3.2); the deadline from accept stands
             * until its preface. */
            if (pn_h2_conn_begin(c) < 0)
                pn_conn_close_now(c);
            return;
        }
        c->phase = PN_CONN_HEAD; /* head_started is 0: the deadline from accept stands */
        pn_conn_phase_head(c);
        return;
    }
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        c->can_read = 0;
        return;
    case SSL_ERROR_WANT_WRITE:
        c->can_write = 0;
        return;
    default: {
        unsigned long e = ERR_peek_last_error();
        const char *why = e ? ERR_reason_error_string(e) : NULL;
        handshake_log(c, why ? why : "the client closed the connection");
        session_failed(c);
        pn_conn_close_now(c);
        return;
    }
    }
}

/* ---- what the scope reads ------------------------------------------- */

int pn_tls_session_version(const struct ssl_st *ssl)
{
    return SSL_version(ssl);
}

int pn_tls_session_cipher(const struct ssl_st *ssl)
{
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    return cipher ? (int)SSL_CIPHER_get_protocol_id(cipher) : 0;
}

static int append_pem(X509 *x, pn_buf *out)
{
    BIO *m = BIO_new(BIO_s_mem());
    int rc = -1;
    char *p;
    long n;
    if (m && PEM_write_bio_X509(m, x) == 1 && (n = BIO_get_mem_data(m, &p)) > 0)
        rc = pn_buf_append(out, p, (size_t)n) == 0 ? 1 : -1;
    BIO_free(m);
    return rc;
}

int pn_tls_session_peer_cert(const struct ssl_st *ssl, int i, pn_buf *out)
{
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (x == NULL)
        return 0;
    if (i > 0) {
        /* On a server the chain leaves the client's own certificate out
         * (and a resumed session keeps none of it). */
        STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
        if (chain == NULL || i - 1 >= sk_X509_num(chain))
            return 0;
        x = sk_X509_value(chain, i - 1);
    }
    return append_pem(x, out);
}

int pn_tls_session_peer_name(const struct ssl_st *ssl, pn_buf *out)
{
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (x == NULL)
        return 0;
    BIO *m = BIO_new(BIO_s_mem());
    int rc = -1;
    char *p;
    long n;
    if (m && X509_NAME_print_ex(m, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_get_mem_data(m, &p);
        rc = pn_buf_append(out, p, n > 0 ? (size_t)n : 0) == 0 ? 1 : -1;
    }
    BIO_free(m);
    return rc;
}

const char *pn_tls_session_verify_error(const struct ssl_st *ssl)
{
    long rc = SSL_get_verify_result(ssl);
    if (rc == X509_V_OK || SSL_get0_peer_certificate(ssl) == NULL)
        return NULL;
    return X509_verify_cert_error_string(rc);
}

const char *pn_tls_session_server_name(const struct ssl_st *ssl)
{
    return SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
}
