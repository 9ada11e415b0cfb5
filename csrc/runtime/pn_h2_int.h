/*
 * pn_h2_int.h — PRIVATE to pn_h2.c and pn_h2_stream.c: the HTTP/2
 * session and stream structs they share.  pn_h2.c owns the session (the
 * nghttp2 callbacks, dispatch, the phase and its output); pn_h2_stream.c
 * the stream's ops, the seam's side (pn_stream.h).  Threads and ownership:
 * pn_h2.h.
 */
#ifndef PN_H2_INT_H
#define PN_H2_INT_H

#include <nghttp2/nghttp2.h>
#include <stdint.h>

#include "pn_h2.h"
#include "pn_worker_int.h"

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
    uint64_t drain_to; /* done, body unread: in_total past this resets the stream; 0 = no */
    /* The response: body bytes nghttp2 has not taken yet, or a file. */
    pn_buf out;
    int file_fd;
    uint64_t file_off, file_left;
    pn_buf trailers;   /* "name: value\r\n" lines */
    uint64_t stall_at; /* monotonic ms: --request-timeout while the app waits; 0 = none */
};

/* The ops of every HTTP/2 stream (pn_h2_stream.c). */
extern const pn_stream_ops pn_h2_stream_ops;

/* pn_h2_stream.c: nghttp2's send_data_callback, for the DATA frames the
 * data provider marks NGHTTP2_DATA_FLAG_NO_COPY: appends the frame to the
 * connection's wbuf from the stream's queue or file (user_data is the pn_h2). */
int pn_h2_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                    size_t length, nghttp2_data_source *src, void *ud);

/* pn_h2_stream.c: a whole response made by the server (status, its reason
 * as text/plain), unless the stream is gone or answered already. */
void pn_h2_stream_reply(h2_stream *st, int status);

static inline h2_stream *stream_of(pn_stream *s)
{
    return (h2_stream *)s;
}

/* Queue the connection so the next poll sends what was submitted. */
static inline void h2_kick(pn_h2 *h)
{
    queue_conn(h->c);
}

static inline int stream_gone(const h2_stream *st)
{
    return st->closed || st->h->c->dead || st->h->failed;
}

#endif
