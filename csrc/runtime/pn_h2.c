/*
 * pn_h2.c — HTTP/2 connections and their streams (pn_h2.h).
 *
 * One nghttp2 server session per connection.  The phase feeds it what the
 * socket brings (nghttp2_session_mem_recv), hands the requests whose
 * header blocks completed to the bridge after each read (so a stream reset
 * in the same read never reaches the app: CVE-2023-44487), delivers the
 * body, drain and close events, then lets the session write its frames
 * into the connection's wbuf (nghttp2_session_mem_send) while the output
 * stays below --write-buffer-size: input is read only while it does, so a
 * client that never reads cannot make the server queue without bound.
 *
 * Flow control (RFC 9113 §5.2): automatic WINDOW_UPDATEs are off.  The
 * connection window is given back as DATA arrives (the bytes are then held
 * by their stream), a stream's window as the app reads its body, so a
 * stream's buffered body never exceeds its window and a stream whose app
 * does not read stalls itself only.  Responses go out through a data
 * provider reading the stream's own queue; send() waits (PN_IO_WAIT) while
 * that queue holds more than --write-buffer-size, and on_drain follows
 * when nghttp2 has taken it down to half.
 *
 * Threads and ownership: pn_h2.h.
 */
#include <errno.h>
#include <sys/types.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pn_h2.h"
#include "pn_http_token.h"
#include "pn_worker_int.h"

/* Rapid reset (CVE-2023-44487): RST_STREAMs a client may send, as a token
 * bucket: a burst of 1000, refilled at 33 per second (nghttp2's own
 * defaults since 1.57, set explicitly). */
#define H2_RESET_BURST 1000
#define H2_RESET_RATE 33
/* CONTINUATION flood (CVE-2024-27316): CONTINUATION frames per header
 * block; 8 leaves room for any real block of --max-header-size. */
#define H2_MAX_CONTINUATIONS 8
/* SETTINGS entries per frame, and SETTINGS/PING ACKs queued unsent before
 * the session fails with ENHANCE_YOUR_CALM (floods, RFC 9113 §10.5). */
#define H2_MAX_SETTINGS 32
#define H2_MAX_OUTBOUND_ACK 1000
/* The connection's receive window: the streams' windows added up, within
 * these bounds. */
#define H2_CONN_WINDOW_MAX (16u << 20)
/* Reads and session passes per phase step, so one busy connection cannot
 * keep the loop. */
#define H2_ROUNDS_MAX 16

typedef struct h2_field {
    uint32_t name_off, name_len, value_off, value_len;
} h2_field;

typedef struct h2_stream h2_stream;

typedef struct pn_h2 {
    nghttp2_session *ng;
    pn_conn *c;
    h2_stream *streams; /* every stream of the session (doubly linked) */
    /* Header blocks completed during the current read: handed to the bridge
     * once the read is processed. */
    h2_stream *ready, *ready_tail;
    size_t open;             /* streams not yet closed by nghttp2 */
    unsigned got_frame : 1;  /* a frame arrived: the preface is past */
    unsigned goaway : 1;     /* our GOAWAY is queued: no new streams */
    unsigned failed : 1;     /* the session failed: flush what it queued, close */
    unsigned events : 1;     /* a stream has an event to deliver */
    unsigned idle_armed : 1; /* the timer holds the idle deadline */
    uint64_t idle_ms;
    uint64_t out_at; /* monotonic ms the output last moved (or was empty) */
} pn_h2;

struct h2_stream {
    pn_stream s; /* first: the bridge holds &st->s */
    pn_h2 *h;
    int32_t id;
    h2_stream *prev, *next;
    h2_stream *next_ready;
    unsigned ready : 1;           /* on h->ready */
    unsigned dispatched : 1;      /* handed to the worker or the bridge */
    unsigned closed : 1;          /* nghttp2 closed the stream */
    unsigned done : 1;            /* the response is complete: the request let go */
    unsigned end_recv : 1;        /* END_STREAM received: the body is complete */
    unsigned resp_submitted : 1;  /* HEADERS submitted */
    unsigned out_end : 1;         /* the whole body is queued (or the file) */
    unsigned deferred : 1;        /* the data provider waits for more */
    unsigned body_wanted : 1;     /* on_body owed */
    unsigned drain_wanted : 1;    /* on_drain owed */
    unsigned rst_at_end : 1;      /* the body fell short of its length: reset, not END_STREAM */
    unsigned trailers_owed : 1;   /* trailers end the response */
    unsigned expect_continue : 1; /* Expect: 100-continue */
    unsigned sent_continue : 1;
    unsigned head_request : 1;
    unsigned has_host : 1;
    int hdr_status;       /* 431 / 400: answered by the server, not the app */
    uint32_t close_error; /* nghttp2's error code at close */
    int body_error;       /* 413 once the body passed --max-request-size */
    /* The request head: names and values copied into hb, pseudo-header
     * values among them. */
    pn_buf hb;
    h2_field *fields;
    size_t nfields, cap_fields;
    size_t list_size; /* RFC 7541 §4.1 size of the header list so far */
    h2_field method, path, authority;
    uint64_t content_length; /* declared, or UINT64_MAX */
    /* The request body received and not yet read by the app. */
    pn_buf in;
    uint64_t in_total;
    /* The response: body bytes nghttp2 has not taken yet, or a file. */
    pn_buf out;
    int file_fd;
    uint64_t file_off, file_left;
    pn_buf trailers;   /* "name: value\r\n" lines */
    uint64_t stall_at; /* monotonic ms: --request-timeout while the app waits; 0 = none */
};

static const pn_stream_ops h2_ops;

static h2_stream *stream_of(pn_stream *s)
{
    return (h2_stream *)s;
}

/* ---- the preface and ALPN ---------------------------------------------- */

int pn_h2_preface_match(const char *p, size_t n)
{
    size_t m = n < PN_H2_PREFACE_LEN ? n : PN_H2_PREFACE_LEN;
    if (memcmp(p, PN_H2_PREFACE, m) != 0)
        return -1;
    return n >= PN_H2_PREFACE_LEN ? 1 : 0;
}

const unsigned char *pn_h2_alpn(const pn_config *cfg, unsigned *len)
{
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    static const unsigned char h1[] = "\x08http/1.1";
    static const unsigned char h2[] = "\x02h2";
    if (cfg->http == PN_HTTP_1) {
        *len = sizeof h1 - 1;
        return h1;
    }
    if (cfg->http == PN_HTTP_2) {
        *len = sizeof h2 - 1;
        return h2;
    }
    *len = sizeof both - 1;
    return both;
}

/* ---- streams ------------------------------------------------------------- */

static h2_stream *stream_new(pn_h2 *h, int32_t id)
{
    h2_stream *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    pn_conn *c = h->c;
    st->s.ops = &h2_ops;
    st->s.peer = &c->peer;
    st->s.listener = c->listener;
    st->s.tls = c->stream.tls;
    st->s.peer_trusted = c->stream.peer_trusted;
    st->s.http2 = 1;
    st->s.trailers = 1;
    st->s.tls_session = c->stream.tls_session;
    st->s.tls_serial = c->stream.tls_serial;
    st->h = h;
    st->id = id;
    st->file_fd = -1;
    st->content_length = UINT64_MAX;
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->open++;
    return st;
}

static void stream_free(h2_stream *st)
{
    pn_h2 *h = st->h;
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (!st->closed) {
        h->open--;
        nghttp2_session_set_stream_user_data(h->ng, st->id, NULL);
    }
    if (st->file_fd >= 0)
        close(st->file_fd);
    pn_buf_free(&st->hb);
    pn_buf_free(&st->in);
    pn_buf_free(&st->out);
    pn_buf_free(&st->trailers);
    free(st->fields);
    free(st);
}

static h2_stream *stream_get(pn_h2 *h, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h->ng, id);
}

/* Queue the connection so the next poll sends what was submitted. */
static void h2_kick(pn_h2 *h)
{
    queue_conn(h->c);
}

static int stream_gone(const h2_stream *st)
{
    return st->closed || st->h->c->dead || st->h->failed;
}

/* ---- nghttp2's callbacks: they record, the phase acts ------------------- */

static int cb_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    pn_h2 *h = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2_stream *st = stream_new(h, frame->hd.stream_id);
    if (st == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM INTERNAL_ERROR */
    if (nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st) != 0) {
        st->closed = 1;
        h->open--;
        stream_free(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int field_store(h2_stream *st, h2_field *f, const uint8_t *name, size_t nlen,
                       const uint8_t *value, size_t vlen)
{
    if (pn_buf_reserve(&st->hb, nlen + vlen) < 0)
        return -1;
    f->name_off = (uint32_t)st->hb.len;
    f->name_len = (uint32_t)nlen;
    memcpy(pn_buf_tail(&st->hb), name, nlen);
    st->hb.len += nlen;
    f->value_off = (uint32_t)st->hb.len;
    f->value_len = (uint32_t)vlen;
    memcpy(pn_buf_tail(&st->hb), value, vlen);
    st->hb.len += vlen;
    return 0;
}

static int cb_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    pn_h2 *h = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: validated by nghttp2, not passed on */
    h2_stream *st = stream_get(h, frame->hd.stream_id);
    if (st == NULL || st->hdr_status)
        return 0;
    (void)ng;
    const pn_config *cfg = h->c->worker->cfg;
    /* RFC 7541 §4.1: the size of a field is its name and value plus 32;
     * the list is bounded by --max-header-size (our
     * SETTINGS_MAX_HEADER_LIST_SIZE), the fields by --max-headers. */
    st->list_size += nlen + vlen + 32;
    if (st->list_size > (size_t)cfg->max_header_size) {
        st->hdr_status = 431;
        return 0;
    }
    if (nlen > 0 && name[0] == ':') {
        h2_field *f = NULL;
        if (nlen == 7 && memcmp(name, ":method", 7) == 0)
            f = &st->method;
        else if (nlen == 5 && memcmp(name, ":path", 5) == 0)
            f = &st->path;
        else if (nlen == 10 && memcmp(name, ":authority", 10) == 0)
            f = &st->authority;
        if (f != NULL && field_store(st, f, name, nlen, value, vlen) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0; /* :scheme: the transport knows (the scope's scheme) */
    }
    if (st->nfields >= (size_t)cfg->max_headers) {
        st->hdr_status = 431;
        return 0;
    }
    if (st->nfields == st->cap_fields) {
        size_t cap = st->cap_fields ? st->cap_fields * 2 : 16;
        h2_field *nf = realloc(st->fields, cap * sizeof(*nf));
        if (nf == NULL)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        st->fields = nf;
        st->cap_fields = cap;
    }
    if (field_store(st, &st->fields[st->nfields], name, nlen, value, vlen) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->nfields++;
    if (nlen == 4 && memcmp(name, "host", 4) == 0)
        st->has_host = 1;
    else if (nlen == 6 && memcmp(name, "expect", 6) == 0 &&
             pn_http_ieq((const char *)value, vlen, PN_STRLIT("100-continue")))
        st->expect_continue = 1;
    else if (nlen == 14 && memcmp(name, "content-length", 14) == 0) {
        uint64_t v = 0;
        for (size_t i = 0; i < vlen && v < UINT64_MAX / 10; i++)
            v = v * 10 + (uint64_t)(value[i] - '0'); /* digits: nghttp2 checked */
        st->content_length = v;
    }
    return 0;
}

static void ready_push(pn_h2 *h, h2_stream *st)
{
    if (st->ready)
        return;
    st->ready = 1;
    st->next_ready = NULL;
    if (h->ready_tail)
        h->ready_tail->next_ready = st;
    else
        h->ready = st;
    h->ready_tail = st;
}

static int cb_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    (void)ng;
    pn_h2 *h = ud;
    h->got_frame = 1;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    h2_stream *st = stream_get(h, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        st->end_recv = 1;
        h->events = 1;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        ready_push(h, st);
    return 0;
}

static int cb_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    pn_h2 *h = ud;
    /* The connection's window comes back at once: the bytes are the
     * stream's now, bounded by its own window. */
    nghttp2_session_consume_connection(ng, len);
    h2_stream *st = stream_get(h, id);
    if (st == NULL || st->done || st->body_error) {
        nghttp2_session_consume_stream(ng, id, len); /* nobody reads it */
        return 0;
    }
    const pn_config *cfg = h->c->worker->cfg;
    st->in_total += len;
    if (cfg->max_request_size > 0 && st->in_total > (uint64_t)cfg->max_request_size) {
        st->body_error = 413;
        nghttp2_session_consume_stream(ng, id, len + pn_buf_live(&st->in));
        pn_buf_clear(&st->in);
        h->events = 1;
        return 0;
    }
    if (pn_buf_append(&st->in, data, len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    h->events = 1;
    return 0;
}

static int cb_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    pn_h2 *h = ud;
    h2_stream *st = stream_get(h, id);
    if (st == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    st->closed = 1;
    st->close_error = error_code;
    h->open--;
    h->events = 1;
    return 0;
}

static int cb_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    pn_h2 *h = ud;
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    h2_stream *st = stream_get(h, frame->hd.stream_id);
    /* The response is complete but the client is still sending a body
     * nobody will read: tell it to stop (RFC 9113 §8.1). */
    if (st != NULL && !st->end_recv)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

/* ---- the response ------------------------------------------------------ */

/* RFC 9113 §8.2.2: fields that describe a connection have no place in
 * HTTP/2 (and a client must treat them as malformed). */
static int connection_specific(const char *n, size_t len)
{
    return pn_http_ieq(n, len, PN_STRLIT("connection")) ||
           pn_http_ieq(n, len, PN_STRLIT("keep-alive")) ||
           pn_http_ieq(n, len, PN_STRLIT("proxy-connection")) ||
           pn_http_ieq(n, len, PN_STRLIT("transfer-encoding")) ||
           pn_http_ieq(n, len, PN_STRLIT("upgrade"));
}

/* Field lines "name: value\r\n" (well-formed: pn_http1_resp_header or the
 * bridge checked them) into nv entries, names lower-cased into *names.
 * Returns the count, or -1 out of memory.  nv has room for max entries. */
static int lines_to_nv(const char *p, const char *end, nghttp2_nv *nv, int n, int max,
                       pn_buf *names)
{
    /* The names are copied first (their buffer may move), then pointed to. */
    size_t base = names->len;
    int first = n;
    while (p < end && n < max) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL && colon > p) {
            size_t nl = (size_t)(colon - p);
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            if (!connection_specific(p, nl)) {
                if (pn_buf_reserve(names, nl) < 0)
                    return -1;
                char *dst = pn_buf_tail(names);
                for (size_t i = 0; i < nl; i++) {
                    char ch = p[i];
                    dst[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
                }
                nv[n].name = (uint8_t *)(uintptr_t)(names->len - base); /* offset for now */
                nv[n].namelen = nl;
                names->len += nl;
                nv[n].value = (uint8_t *)(uintptr_t)v;
                nv[n].valuelen = (size_t)(eol - v);
                nv[n].flags = NGHTTP2_NV_FLAG_NONE;
                n++;
            }
        }
        p = eol + 2;
    }
    for (int i = first; i < n; i++)
        nv[i].name = (uint8_t *)names->data + base + (uintptr_t)nv[i].name;
    return n;
}

static int count_lines(const char *p, size_t len)
{
    int n = 0;
    for (size_t i = 0; i + 1 < len; i++)
        if (p[i] == '\r' && p[i + 1] == '\n')
            n++;
    return n;
}

static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud);

/* Submit the response HEADERS from the pending head (status line and the
 * app's fields, HTTP/1.1 syntax: pn_stream.h) with what the transport adds
 * (date, server, content-length when the whole body is known), and the
 * data provider unless the response ends with its HEADERS. */
static int submit_head(h2_stream *st, pn_http1_response *resp, pn_buf *head, int64_t known_len,
                       int ends)
{
    pn_h2 *h = st->h;
    pn_worker *w = h->c->worker;
    const char *p = pn_buf_head(head);
    size_t len = pn_buf_live(head);
    const char *eol = memchr(p, '\n', len);
    const char *fields = eol ? eol + 1 : p + len;
    int max = count_lines(fields, (size_t)(p + len - fields)) + 4;
    nghttp2_nv *nv = malloc((size_t)max * sizeof(*nv));
    if (nv == NULL)
        return -1;
    char status[4];
    status[0] = (char)('0' + resp->status / 100);
    status[1] = (char)('0' + resp->status / 10 % 10);
    status[2] = (char)('0' + resp->status % 10);
    nv[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    pn_buf names = PN_BUF_INIT;
    int n = lines_to_nv(fields, p + len, nv, 1, max - 3, &names);
    if (n < 0) {
        free(nv);
        pn_buf_free(&names);
        return -1;
    }
    pn_http1_head_opts opts = pn_worker_head_opts(w);
    if (opts.date && !(resp->flags & PN_RESP_APP_DATE))
        nv[n++] =
            (nghttp2_nv){(uint8_t *)"date", (uint8_t *)opts.date, 4, 29, NGHTTP2_NV_FLAG_NONE};
    if (opts.server && !(resp->flags & PN_RESP_APP_SERVER))
        nv[n++] = (nghttp2_nv){(uint8_t *)"server", (uint8_t *)opts.server, 6, strlen(opts.server),
                               NGHTTP2_NV_FLAG_NONE};
    char cl[24];
    if (known_len >= 0 && !(resp->flags & (PN_RESP_HAS_CL | PN_RESP_NO_BODY))) {
        size_t cln = pn_http_put_u64(cl, (uint64_t)known_len);
        nv[n++] =
            (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)cl, 14, cln, NGHTTP2_NV_FLAG_NONE};
    }
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = data_read};
    int rc = nghttp2_submit_response(h->ng, st->id, nv, (size_t)n, ends ? NULL : &prd);
    free(nv);
    pn_buf_free(&names);
    if (rc != 0)
        return -1;
    st->resp_submitted = 1;
    resp->flags |= PN_RESP_HEAD_DONE;
    return 0;
}

static void resume(h2_stream *st)
{
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->h->ng, st->id);
    }
    h2_kick(st->h);
}

static int submit_trailers(h2_stream *st)
{
    int max = count_lines(pn_buf_head(&st->trailers), pn_buf_live(&st->trailers)) + 1;
    nghttp2_nv *nv = malloc((size_t)max * sizeof(*nv));
    if (nv == NULL)
        return -1;
    pn_buf names = PN_BUF_INIT;
    const char *p = pn_buf_head(&st->trailers);
    int n = lines_to_nv(p, p + pn_buf_live(&st->trailers), nv, 0, max, &names);
    int rc = n < 0 ? -1 : nghttp2_submit_trailer(st->h->ng, st->id, nv, (size_t)n);
    free(nv);
    pn_buf_free(&names);
    return rc == 0 ? 0 : -1;
}

/* The data provider: the stream's queued body, then its file; EOF once the
 * response is complete (trailers after it when owed); deferred while the
 * app has not produced more. */
static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)id;
    (void)ud;
    h2_stream *st = src->ptr;
    size_t n = 0;
    size_t live = pn_buf_live(&st->out);
    if (live > 0) {
        n = live < length ? live : length;
        memcpy(buf, pn_buf_head(&st->out), n);
        pn_buf_consume(&st->out, n);
        if (pn_buf_live(&st->out) == 0)
            pn_buf_shrink(&st->out, 0);
        if (st->drain_wanted)
            st->h->events = 1;
    } else if (st->file_fd >= 0 && st->file_left > 0) {
        size_t want = st->file_left < length ? (size_t)st->file_left : length;
        ssize_t r;
        do {
            r = pread(st->file_fd, buf, want, (off_t)st->file_off);
        } while (r < 0 && errno == EINTR);
        if (r <= 0) /* an error, or the file shrank: the length cannot be met */
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        n = (size_t)r;
        st->file_off += n;
        st->file_left -= n;
    }
    if (n > 0 && st->done)
        st->stall_at = pn_monotonic_ms() + st->h->c->worker->request_ms; /* it moves */
    int empty = pn_buf_live(&st->out) == 0 && (st->file_fd < 0 || st->file_left == 0);
    if (empty && st->out_end) {
        if (st->rst_at_end)
            return n > 0 ? (ssize_t)n : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->file_fd >= 0) {
            close(st->file_fd);
            st->file_fd = -1;
        }
        if (st->trailers_owed && pn_buf_live(&st->trailers) > 0) {
            if (submit_trailers(st) < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static int queue_body(h2_stream *st, pn_http1_response *resp, const char *data, size_t len,
                      int final, uint64_t *sent)
{
    pn_http1_frame f;
    int frc = pn_http1_resp_body_frame(resp, len, final, &f);
    if (frc == PN_WRITE_TOO_MUCH) {
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        h2_kick(st->h);
        return PN_IO_TOO_MUCH;
    }
    if (f.send_len && pn_buf_append(&st->out, data, f.send_len) < 0)
        return PN_IO_NOMEM;
    *sent += f.send_len;
    if (final) {
        st->out_end = 1;
        if (frc == PN_WRITE_TOO_LITTLE)
            st->rst_at_end = 1;
    }
    resume(st);
    if (frc == PN_WRITE_TOO_LITTLE)
        return PN_IO_TOO_LITTLE;
    if (pn_buf_live(&st->out) > (size_t)st->h->c->worker->cfg->write_buffer_size) {
        st->drain_wanted = 1;
        return PN_IO_WAIT;
    }
    return PN_IO_OK;
}

static int h2_send_body(pn_stream *s, pn_http1_response *resp, pn_buf *head, const char *data,
                        size_t len, int final, uint64_t *sent)
{
    h2_stream *st = stream_of(s);
    if (stream_gone(st))
        return PN_IO_GONE;
    if (head != NULL) {
        /* The whole response in one go ends with its HEADERS when it has no
         * body to send. */
        int no_data = final && (len == 0 || (resp->flags & PN_RESP_NO_BODY));
        if (no_data) {
            pn_http1_frame f;
            int frc = pn_http1_resp_body_frame(resp, len, 1, &f);
            if (frc == PN_WRITE_TOO_MUCH)
                return PN_IO_TOO_MUCH;
            if (frc == PN_WRITE_TOO_LITTLE) {
                /* Content-Length: n with no body: HEADERS, then a reset. */
                if (submit_head(st, resp, head, -1, 0) < 0)
                    return PN_IO_NOMEM;
                st->out_end = st->rst_at_end = 1;
                h2_kick(st->h);
                return PN_IO_TOO_LITTLE;
            }
            if (submit_head(st, resp, head, (int64_t)len, 1) < 0)
                return PN_IO_NOMEM;
            st->out_end = 1;
            h2_kick(st->h);
            return PN_IO_OK;
        }
        if (submit_head(st, resp, head, final ? (int64_t)len : -1, 0) < 0)
            return PN_IO_NOMEM;
    }
    return queue_body(st, resp, data, len, final, sent);
}

static int h2_send_file(pn_stream *s, pn_http1_response *resp, pn_buf *head, int fd, uint64_t off,
                        uint64_t size, uint64_t *sent)
{
    h2_stream *st = stream_of(s);
    if (stream_gone(st)) {
        close(fd);
        return PN_IO_GONE;
    }
    pn_http1_frame f;
    /* The length first: a contradiction sends nothing. */
    pn_http1_response probe = *resp;
    int frc = pn_http1_resp_body_frame(&probe, (size_t)size, 1, &f);
    if (frc != PN_WRITE_OK) {
        close(fd);
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        h2_kick(st->h);
        return frc == PN_WRITE_TOO_MUCH ? PN_IO_TOO_MUCH : PN_IO_TOO_LITTLE;
    }
    int ends = f.send_len == 0;
    if (submit_head(st, resp, head, (int64_t)size, ends) < 0) {
        close(fd);
        return PN_IO_NOMEM;
    }
    *resp = probe;
    resp->flags |= PN_RESP_HEAD_DONE;
    st->out_end = 1;
    if (ends) {
        close(fd);
    } else {
        st->file_fd = fd;
        st->file_off = off;
        st->file_left = f.send_len;
        *sent += f.send_len;
    }
    h2_kick(st->h);
    return PN_IO_OK;
}

static int h2_send_trailers(pn_stream *s, pn_http1_response *resp, pn_buf *head, const char *fields,
                            size_t len, uint64_t *sent)
{
    h2_stream *st = stream_of(s);
    if (stream_gone(st))
        return PN_IO_GONE;
    if (head != NULL && submit_head(st, resp, head, -1, 0) < 0)
        return PN_IO_NOMEM;
    if (len > 0) {
        if (pn_buf_append(&st->trailers, fields, len) < 0)
            return PN_IO_NOMEM;
        st->trailers_owed = 1;
    }
    return queue_body(st, resp, NULL, 0, 1, sent);
}

/* A whole response made by the server: status, reason as text/plain. */
static void stream_reply(h2_stream *st, int status)
{
    if (stream_gone(st) || st->resp_submitted)
        return;
    pn_worker *w = st->h->c->worker;
    const char *reason = pn_http1_reason(status);
    char body[64];
    size_t blen = strlen(reason);
    if (blen > sizeof body - 2)
        blen = sizeof body - 2;
    memcpy(body, reason, blen);
    body[blen++] = '\n';
    pn_http1_response r;
    pn_buf head = PN_BUF_INIT;
    uint64_t sent = 0;
    if (pn_http1_resp_init(&r, status, 1, st->head_request ? PN_RESP_HEAD_REQUEST : 0) !=
            PN_WRITE_OK ||
        pn_http1_resp_start(&head, &r) != PN_WRITE_OK ||
        pn_http1_resp_header(&head, &r, PN_STRLIT("content-type"),
                             PN_STRLIT("text/plain; charset=utf-8")) != PN_WRITE_OK ||
        (st->s.request_id_len &&
         pn_http1_resp_header(&head, &r, w->cfg->request_id_header, w->rid_name_len,
                              st->s.request_id, st->s.request_id_len) != PN_WRITE_OK)) {
        pn_buf_free(&head);
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        h2_kick(st->h);
        return;
    }
    h2_send_body(&st->s, &r, &head, body, blen, 1, &sent);
    pn_buf_free(&head);
}

static void h2_reply(pn_stream *s, int status)
{
    stream_reply(stream_of(s), status);
}

static void h2_cork(pn_stream *s)
{
    (void)s; /* frames wait for the poll anyway: one step's sends go together */
}

static void h2_uncork(pn_stream *s)
{
    (void)s;
}

/* ---- the request body ------------------------------------------------- */

static int h2_body(pn_stream *s, const char **data, size_t *len, int *status)
{
    h2_stream *st = stream_of(s);
    *status = 0;
    if (st->body_error) {
        *status = st->body_error;
        return stream_gone(st) ? PN_BODY_GONE : PN_BODY_BAD;
    }
    size_t live = pn_buf_live(&st->in);
    if (live == 0 && !st->end_recv) {
        if (stream_gone(st))
            return PN_BODY_GONE;
        st->body_wanted = 1;
        return PN_BODY_WAIT;
    }
    *data = live ? pn_buf_head(&st->in) : "";
    *len = live;
    return st->end_recv ? PN_BODY_LAST : PN_BODY_MORE;
}

static void h2_body_consume(pn_stream *s, size_t n)
{
    h2_stream *st = stream_of(s);
    if (n == 0)
        return;
    pn_buf_consume(&st->in, n);
    if (pn_buf_live(&st->in) == 0)
        pn_buf_shrink(&st->in, 0);
    if (!stream_gone(st)) {
        /* The window this opens goes out with the next poll. */
        nghttp2_session_consume_stream(st->h->ng, st->id, n);
        h2_kick(st->h);
    }
}

static void h2_send_continue(pn_stream *s)
{
    h2_stream *st = stream_of(s);
    if (!st->expect_continue || st->sent_continue || st->resp_submitted || st->end_recv ||
        stream_gone(st))
        return;
    st->sent_continue = 1;
    const nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE}};
    nghttp2_submit_headers(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NULL, nv, 1, NULL);
    h2_kick(st->h);
}

/* ---- flow and the end --------------------------------------------------- */

static void h2_watch_close(pn_stream *s)
{
    (void)s; /* RST_STREAM and GOAWAY are explicit: on_close will tell */
}

static void h2_stall_timer(pn_stream *s, int on)
{
    h2_stream *st = stream_of(s);
    pn_h2 *h = st->h;
    st->stall_at = on ? pn_monotonic_ms() + h->c->worker->request_ms : 0;
    /* The phase re-arms the connection's timer (and the worker's timerfd,
     * which only ticks while a timer is armed) at the next poll. */
    if (!stream_gone(st))
        h2_kick(h);
}

static void h2_done(pn_stream *s, int keep_alive)
{
    (void)keep_alive; /* a multiplexed connection carries on regardless */
    h2_stream *st = stream_of(s);
    st->done = 1;
    st->s.udata = NULL;
    st->body_wanted = st->drain_wanted = 0;
    /* What is still queued must move within --request-timeout (a client
     * that never opens the stream's window would hold it forever). */
    st->stall_at = pn_buf_live(&st->out) > 0 || (st->file_fd >= 0 && st->file_left > 0)
                       ? pn_monotonic_ms() + st->h->c->worker->request_ms
                       : 0;
    if (!stream_gone(st) && !st->resp_submitted) /* no response: the stream cannot end well */
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    st->h->events = 1;
    h2_kick(st->h);
}

static void h2_abort(pn_stream *s)
{
    h2_stream *st = stream_of(s);
    if (!stream_gone(st))
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    st->h->events = 1;
    h2_kick(st->h); /* on_close follows, from the phase */
}

static void h2_access_log(pn_stream *s, pn_access_rec *rec)
{
    rec->version_minor = 2;
    if (rec->request_id_len == 0 && s->request_id_len) {
        /* The stream's ID: the connection's own stream carries none. */
        rec->request_id = s->request_id;
        rec->request_id_len = s->request_id_len;
    }
    pn_conn_access_log(stream_of(s)->h->c, rec);
}

static const pn_stream_ops h2_ops = {
    .send_body = h2_send_body,
    .send_file = h2_send_file,
    .send_trailers = h2_send_trailers,
    .reply = h2_reply,
    .cork = h2_cork,
    .uncork = h2_uncork,
    .body = h2_body,
    .body_consume = h2_body_consume,
    .send_continue = h2_send_continue,
    .watch_close = h2_watch_close,
    .stall_timer = h2_stall_timer,
    .done = h2_done,
    .abort = h2_abort,
    .access_log = h2_access_log,
};

/* ---- dispatch ------------------------------------------------------------ */

static const char *hb_at(const h2_stream *st, uint32_t off)
{
    return (const char *)st->hb.data + off;
}

/* The request as the bridge reads it (pn_stream.h): slices into st->hb,
 * host first when only :authority named it, cookies joined (RFC 9113
 * §8.2.3) into *cookies. */
static int build_request(h2_stream *st, pn_http1_request *req, pn_http1_header *hdrs,
                         pn_buf *cookies)
{
    memset(req, 0, sizeof(*req));
    req->method = hb_at(st, st->method.value_off);
    req->method_len = st->method.value_len;
    req->target = hb_at(st, st->path.value_off);
    req->target_len = st->path.value_len;
    const char *q = memchr(req->target, '?', req->target_len);
    req->path = req->target;
    req->path_len = q ? (size_t)(q - req->target) : req->target_len;
    if (q) {
        req->query = q + 1;
        req->query_len = req->target_len - req->path_len - 1;
    }
    req->version_minor = 1;
    if (pn_http_eq(req->method, req->method_len, PN_STRLIT("HEAD")))
        req->flags |= PN_REQ_HEAD;
    if (st->expect_continue)
        req->flags |= PN_REQ_EXPECT_CONTINUE;
    if (st->end_recv && st->in_total == 0 && pn_buf_live(&st->in) == 0)
        req->body_kind = PN_BODY_NONE;
    else if (st->content_length != UINT64_MAX) {
        req->body_kind = st->content_length ? PN_BODY_LENGTH : PN_BODY_NONE;
        req->content_length = st->content_length;
    } else {
        req->body_kind = PN_BODY_CHUNKED;
    }
    size_t n = 0;
    if (!st->has_host && st->authority.value_len > 0) {
        hdrs[n].name = "host";
        hdrs[n].name_len = 4;
        hdrs[n].value = hb_at(st, st->authority.value_off);
        hdrs[n].value_len = st->authority.value_len;
        n++;
    }
    ssize_t cookie_at = -1;
    for (size_t i = 0; i < st->nfields; i++) {
        const h2_field *f = &st->fields[i];
        const char *name = hb_at(st, f->name_off);
        const char *value = hb_at(st, f->value_off);
        if (f->name_len == 6 && memcmp(name, "cookie", 6) == 0) {
            if (cookie_at >= 0) {
                if (pn_buf_append(cookies, "; ", 2) < 0 ||
                    pn_buf_append(cookies, value, f->value_len) < 0)
                    return -1;
                continue;
            }
            cookie_at = (ssize_t)n;
            if (pn_buf_append(cookies, value, f->value_len) < 0)
                return -1;
        }
        hdrs[n].name = name;
        hdrs[n].name_len = f->name_len;
        hdrs[n].value = value;
        hdrs[n].value_len = f->value_len;
        n++;
    }
    if (cookie_at >= 0) {
        hdrs[cookie_at].value = pn_buf_live(cookies) ? pn_buf_head(cookies) : "";
        hdrs[cookie_at].value_len = pn_buf_live(cookies);
    }
    req->headers = hdrs;
    req->num_headers = n;
    return 0;
}

static void dispatch(pn_h2 *h, h2_stream *st)
{
    pn_conn *c = h->c;
    pn_worker *w = c->worker;
    st->dispatched = 1;
    c->requests++;
    if (st->hdr_status) {
        stream_reply(st, st->hdr_status);
        st->done = 1;
        return;
    }
    pn_http1_header *hdrs = malloc((st->nfields + 1) * sizeof(*hdrs));
    pn_buf cookies = PN_BUF_INIT;
    pn_http1_request req;
    if (hdrs == NULL || build_request(st, &req, hdrs, &cookies) < 0) {
        free(hdrs);
        pn_buf_free(&cookies);
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        st->done = 1;
        return;
    }
    st->head_request = (req.flags & PN_REQ_HEAD) != 0;
    /* RFC 9113 §8.3.1: :path is "/..." or, for OPTIONS, "*"; nghttp2 let
     * through any non-empty value. */
    int path_ok =
        req.path_len > 0 &&
        (req.path[0] == '/' || (req.target_len == 1 && req.target[0] == '*' &&
                                pn_http_eq(req.method, req.method_len, PN_STRLIT("OPTIONS"))));
    if (__builtin_expect(w->rid_name_len != 0, 0))
        st->s.request_id_len = (unsigned char)pn_request_id_take(
            &w->rid, req.headers, req.num_headers, w->cfg->request_id_header, w->rid_name_len,
            st->s.request_id);
    if (!path_ok && !pn_http_eq(req.method, req.method_len, PN_STRLIT("CONNECT"))) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
        st->done = 1;
    } else if (pn_http_eq(req.method, req.method_len, PN_STRLIT("CONNECT"))) {
        /* No tunnels (as over HTTP/1.1): 501. */
        stream_reply(st, 501);
        st->done = 1;
    } else if (w->answers && pn_worker_answer_stream(w, &st->s, &req)) {
        st->done = 1;
    } else {
        int rc = w->hooks.on_request(w->ctx, &st->s, &req);
        if (rc < 0 && !st->done) {
            st->s.udata = NULL;
            stream_reply(st, 500);
            st->done = 1;
        }
    }
    free(hdrs);
    pn_buf_free(&cookies);
}

static void dispatch_ready(pn_h2 *h)
{
    while (h->ready) {
        h2_stream *st = h->ready;
        h->ready = st->next_ready;
        if (h->ready == NULL)
            h->ready_tail = NULL;
        st->ready = 0;
        if (st->closed || h->c->dead)
            continue; /* reset in the same read: never reaches the app */
        dispatch(h, st);
    }
}

/* Deliver what the streams owe the bridge, and free the streams both sides
 * are done with.  Inside the poll only. */
static void deliver(pn_h2 *h)
{
    pn_worker *w = h->c->worker;
    size_t high = (size_t)w->cfg->write_buffer_size;
    h->events = 0;
    h2_stream *st = h->streams;
    while (st) {
        h2_stream *next = st->next;
        if (st->s.udata != NULL) {
            if (st->closed) {
                /* Reset by the client, or by us (abort): the request hears
                 * once, and lets go. */
                w->hooks.on_close(w->ctx, &st->s);
                st->s.udata = NULL;
            } else {
                if (st->body_wanted &&
                    (pn_buf_live(&st->in) > 0 || st->end_recv || st->body_error)) {
                    st->body_wanted = 0;
                    w->hooks.on_body(w->ctx, &st->s);
                }
                if (st->s.udata != NULL && st->drain_wanted && pn_buf_live(&st->out) <= high / 2) {
                    st->drain_wanted = 0;
                    w->hooks.on_drain(w->ctx, &st->s);
                }
            }
        }
        if (st->closed && st->s.udata == NULL && !st->ready)
            stream_free(st);
        st = next;
    }
}

/* ---- the session ---------------------------------------------------------- */

/* Let the session write its frames into wbuf while the output stays below
 * the high watermark, and send them, for as long as the socket takes them
 * (bounded: H2_ROUNDS_MAX buffers a step; the connection is queued to go
 * on).  A socket that stops taking them brings EPOLLOUT, and the phase
 * back, later.  -1: the connection failed. */
static int pump_out(pn_h2 *h)
{
    pn_conn *c = h->c;
    size_t high = (size_t)c->worker->cfg->write_buffer_size;
    size_t before = pn_buf_live(&c->wbuf);
    int more = 1; /* the session may have more to send */
    for (int round = 0; round < H2_ROUNDS_MAX && more; round++) {
        while (pn_buf_live(&c->wbuf) < high) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(h->ng, &data);
            if (n <= 0) {
                if (n < 0)
                    h->failed = 1;
                more = 0;
                break;
            }
            if (pn_buf_append(&c->wbuf, data, (size_t)n) < 0) {
                c->dead = 1;
                return -1;
            }
        }
        if (pn_buf_live(&c->wbuf) > 0 && c->can_write && pn_conn_flush_output(c) < 0)
            return -1;
        if (pn_buf_live(&c->wbuf) > 0)
            break; /* the socket is full: EPOLLOUT resumes */
    }
    if (more && pn_buf_live(&c->wbuf) == 0)
        queue_conn(c); /* rounds ran out with more to send: the next poll */
    if (pn_buf_live(&c->wbuf) == 0 || pn_buf_live(&c->wbuf) < before)
        h->out_at = pn_monotonic_ms();
    return c->dead ? -1 : 0;
}

static void goaway(pn_h2 *h, uint32_t error)
{
    if (h->goaway)
        return;
    h->goaway = 1;
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
                          error, NULL, 0);
}

static void arm_timer(pn_h2 *h)
{
    pn_conn *c = h->c;
    pn_worker *w = c->worker;
    if (!h->got_frame)
        return; /* the deadline from accept stands until the preface */
    if (h->open == 0) {
        bufs_give(c); /* idle: no buffer held (those with bytes stay) */
        if (!h->idle_armed) {
            h->idle_armed = 1;
            pn_timer_arm(&w->wheel, &c->timer, pn_monotonic_ms() + h->idle_ms);
        }
        return;
    }
    h->idle_armed = 0;
    uint64_t at = 0;
    for (h2_stream *st = h->streams; st; st = st->next)
        if (st->stall_at && !st->closed && (at == 0 || st->stall_at < at))
            at = st->stall_at;
    if (at)
        pn_timer_arm(&w->wheel, &c->timer, at);
    else
        pn_timer_cancel(&w->wheel, &c->timer);
}

/* No stream the bridge holds remains: every one still held hears on_close
 * (the connection is going away). */
static void close_streams(pn_h2 *h)
{
    pn_worker *w = h->c->worker;
    for (h2_stream *st = h->streams; st; st = st->next) {
        if (st->s.udata != NULL) {
            w->hooks.on_close(w->ctx, &st->s);
            st->s.udata = NULL;
        }
    }
}

/* Finish the connection: what is queued goes out (PN_CONN_CLOSING, under
 * the write deadline), then it closes. */
static void finish(pn_conn *c)
{
    close_streams(c->h2);
    if (c->dead || pn_buf_live(&c->wbuf) == 0) {
        pn_conn_close_now(c);
        return;
    }
    c->phase = PN_CONN_CLOSING;
    c->keep_alive = 0;
    arm_in(c, c->worker->request_ms);
    queue_conn(c);
}

/* No stream left and no new one wanted (drain, idle, the client's FIN):
 * GOAWAY NO_ERROR if not sent yet, out with it, then close (may free c). */
static void goaway_and_finish(pn_conn *c)
{
    pn_h2 *h = c->h2;
    goaway(h, NGHTTP2_NO_ERROR);
    if (pump_out(h) < 0) {
        pn_conn_close_now(c);
        return;
    }
    finish(c);
}

int pn_h2_conn_begin(pn_conn *c)
{
    pn_worker *w = c->worker;
    const pn_config *cfg = w->cfg;
    pn_h2 *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -1;
    h->c = c;
    h->out_at = pn_monotonic_ms();
    uint64_t idle =
        cfg->h2_idle_timeout > 0 ? (uint64_t)(cfg->h2_idle_timeout * 1000.0) : w->keepalive_ms;
    h->idle_ms = idle ? idle : 1;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        free(h);
        return -1;
    }
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        free(h);
        return -1;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, cb_frame_send);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_settings(opt, H2_MAX_SETTINGS);
    nghttp2_option_set_stream_reset_rate_limit(opt, H2_RESET_BURST, H2_RESET_RATE);
    nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
    int rc = nghttp2_session_server_new2(&h->ng, cbs, h, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc != 0) {
        free(h);
        return -1;
    }
    uint32_t window = (uint32_t)cfg->h2_initial_window_size;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)cfg->h2_max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, (uint32_t)cfg->h2_max_frame_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_header_size},
    };
    uint64_t conn_window = (uint64_t)window * (uint64_t)cfg->h2_max_concurrent_streams;
    if (conn_window > H2_CONN_WINDOW_MAX)
        conn_window = H2_CONN_WINDOW_MAX;
    if (conn_window < 65535)
        conn_window = 65535;
    if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)conn_window) !=
            0) {
        nghttp2_session_del(h->ng);
        free(h);
        return -1;
    }
    c->h2 = h;
    c->phase = PN_CONN_H2;
    c->keep_alive = 0;
    c->can_read = 1; /* the preface may have come with more */
    queue_conn(c);
    return 0;
}

void pn_conn_phase_h2(pn_conn *c)
{
    pn_h2 *h = c->h2;
    pn_worker *w = c->worker;
    size_t high = (size_t)w->cfg->write_buffer_size;
    if (c->closing_soon && !h->goaway)
        goaway(h, NGHTTP2_NO_ERROR); /* drain: the streams in flight finish */
    for (int round = 0; round < H2_ROUNDS_MAX; round++) {
        /* Read only while the output is not backed up: a client that does
         * not read its PING and SETTINGS answers stops being read. */
        if (pn_buf_live(&c->wbuf) < high && !h->failed)
            pn_conn_read_input(c, READ_CHUNK);
        if (c->dead)
            break;
        size_t live = pn_buf_live(&c->rbuf);
        if (live > 0 && !h->failed) {
            ssize_t n =
                nghttp2_session_mem_recv(h->ng, (const uint8_t *)pn_buf_head(&c->rbuf), live);
            if (n < 0) {
                /* A fatal error: say why before closing (RFC 9113 §5.4.1),
                 * unless the client never spoke HTTP/2 (a bad preface). */
                if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
                    nghttp2_session_terminate_session(
                        h->ng, n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                                   ? NGHTTP2_ENHANCE_YOUR_CALM
                                   : NGHTTP2_PROTOCOL_ERROR);
                h->failed = 1;
                pn_buf_clear(&c->rbuf);
            } else {
                pn_buf_consume(&c->rbuf, (size_t)n);
            }
            if (pn_buf_live(&c->rbuf) == 0)
                rbuf_give(c); /* back to the pool until the next bytes */
        }
        dispatch_ready(h);
        if (h->events)
            deliver(h);
        if (pump_out(h) < 0)
            break;
        if (h->events)
            deliver(h);
        if (!c->can_read || c->peer_closed || h->failed || pn_buf_live(&c->wbuf) >= high)
            break;
    }
    if (c->dead) {
        pn_conn_close_now(c);
        return;
    }
    if (h->failed) {
        finish(c);
        return;
    }
    if (c->peer_closed && !h->goaway) {
        /* The client sends no more: no new stream can come.  The streams in
         * flight finish, then the connection closes. */
        goaway(h, NGHTTP2_NO_ERROR);
        if (pump_out(h) < 0) {
            pn_conn_close_now(c);
            return;
        }
    }
    if ((h->goaway || (w->draining && w->close_idle)) && h->open == 0 && h->ready == NULL) {
        goaway_and_finish(c);
        return;
    }
    if (!nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng)) {
        finish(c);
        return;
    }
    /* Input left in the socket (rounds ran out): come back next poll. */
    if (c->can_read && !c->peer_closed && pn_buf_live(&c->wbuf) < high)
        queue_conn(c);
    arm_timer(h);
}

void pn_h2_on_timer(pn_conn *c)
{
    pn_h2 *h = c->h2;
    if (!h->got_frame) {
        pn_conn_close_now(c); /* no preface in time */
        return;
    }
    if (h->open == 0) {
        h->idle_armed = 0;
        goaway_and_finish(c);
        return;
    }
    uint64_t now = pn_monotonic_ms();
    pn_worker *w = c->worker;
    if (pn_buf_live(&c->wbuf) > 0 && now - h->out_at >= w->request_ms) {
        /* The client has read nothing for --request-timeout: even a reset
         * could not reach it. */
        pn_conn_close_now(c);
        return;
    }
    /* A stream whose app waited on the client past --request-timeout, or
     * whose finished response has not moved for as long. */
    for (h2_stream *st = h->streams; st; st = st->next) {
        if (st->stall_at && st->stall_at <= now && !st->closed) {
            st->stall_at = 0;
            nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        }
    }
    queue_conn(c);
    arm_timer(h);
}

void pn_h2_conn_free(pn_conn *c)
{
    pn_h2 *h = c->h2;
    if (h == NULL)
        return;
    close_streams(h);
    while (h->streams)
        stream_free(h->streams);
    nghttp2_session_del(h->ng);
    free(h);
    c->h2 = NULL;
}
