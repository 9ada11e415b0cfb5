/*
 * pn_asgi.h — private to the ASGI bridge: the object structs the bridge's
 * files share, the helpers they all use, and each file's entry points.
 *
 * The files (docs/architecture.md, "The bridge"):
 *   pn_module.c        module state, interned strings, multi-phase init
 *   pn_config_type.c   pounce.Config
 *   pn_worker_type.c   the Worker type, the runtime's hooks, type creation
 *   pn_awaitable.c     the completed awaitable (Ready), AppRun, futures
 *   pn_http.c          the HTTP request object: receive(), send(), finish
 *   pn_http_codec.c    response compression, request decompression
 *   pn_scope.c         HTTP and WebSocket scopes
 *   pn_websocket.c     the WebSocket session
 *
 * A request reaches its transport only through a pn_stream (pn_stream.h,
 * the runtime's seam): this header does not include pn_worker.h, so the
 * files that see connections (pn_worker_type.c, pn_websocket.c) say so.
 *
 * Threads: a Worker object and every object it creates belong to the thread
 * whose event loop drives the worker (free-threading rule 2); nothing here
 * is shared between threads.  Module state is reached through the types or
 * the worker, never through statics.
 *
 * References: every PyObject * field below says whether it is strong or
 * borrowed.  A borrowed reference never survives a call that can run Python
 * code.
 */
#ifndef PN_ASGI_H
#define PN_ASGI_H

#include "pn_bridge.h"

#include <stdint.h>
#include <string.h>
#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h> /* T_PYSSIZET, READONLY (Python.h has them from 3.12) */
#endif
#include <strings.h>
#include <time.h>

#include "pn_buf.h"
#include "pn_compress.h"
#include "pn_forwarded.h"
#include "pn_http1_parse.h"
#include "pn_http1_write.h"
#include "pn_http_token.h"
#include "pn_metrics.h"
#include "pn_stream.h"

/* PN_STRLIT (pn_buf.h): a string literal and its length, from sizeof. */

/* A header name (n, len) equals `lit`, a lower-case literal, in any case. */
#define PN_NAME_IS(n, len, lit) pn_http_ieq((n), (len), PN_STRLIT(lit))

/* Compression of a piece at least this large lets go of the GIL when other
 * thread workers could use it (responses and WebSocket messages alike). */
#define PN_GIL_RELEASE_MIN 16384

/* ---- objects ---------------------------------------------------------- */

typedef struct WorkerObject WorkerObject;
typedef struct RequestObject RequestObject;
/* The runtime's (pn_worker.h); only pn_worker_type.c and pn_websocket.c
 * look inside. */
struct pn_worker;
struct pn_conn;

/* What differs between the two objects that carry an ASGI cycle: the HTTP
 * request (pn_http.c) and the WebSocket session (pn_websocket.c), which
 * starts as the upgrade request and, when the app denies the handshake,
 * is answered as one. */
typedef struct pn_request_kind {
    PyMethodDef *receive; /* the app's receive(), bound to the object */
    /* The app's send(message): the object itself is what the app is given
     * as send (pn_request_new stores this in RequestObject.send_call), so
     * a request makes no bound-method object for it. */
    vectorcallfunc send;
    /* The app's coroutine ended (exc: what it raised, borrowed, or NULL),
     * after AppRun has accounted for it: settle the stream. */
    void (*finish)(RequestObject *r, PyObject *exc);
    /* The stream went away (on_close; r->stream is already NULL): wake the
     * app. */
    void (*closed)(RequestObject *r);
} pn_request_kind;

/* One request cycle: the object whose receive/send the app gets.  While it
 * is attached, its stream holds a strong reference to it (stream->udata)
 * and stream is the transport's (pn_stream.h); both go when the response
 * completes or the stream closes. */
struct RequestObject {
    PyObject_HEAD
    vectorcallfunc send_call; /* kind->send: calling the object is ASGI send (pn_send_arg, below) */
    const pn_request_kind *kind;
    WorkerObject *worker;   /* strong */
    pn_stream *stream;      /* the transport's; NULL once detached or closed */
    PyObject *task;         /* strong; cleared when the task is done */
    PyObject *recv_future;  /* strong or NULL: receive() waiting */
    PyObject *send_future;  /* strong or NULL: send() waiting for drain */
    pn_http1_response resp; /* the response head's record (pn_stream.h) */
    pn_buf head;            /* the head as built so far, until the first body goes out */
    /* For the access log: method, target, the client proxy headers named,
     * Referer and User-Agent (combined, json), one after the other. */
    pn_buf logline;
    size_t log_method_len, log_target_len;
    size_t log_client_len; /* 0: the peer */
    size_t log_referer_len, log_ua_len;
    uint64_t t0_ns;
    uint64_t bytes_sent;
    int version_minor;
    unsigned head_request : 1;
    unsigned log_referer : 1; /* the request had a Referer (logline holds it) */
    unsigned log_ua : 1;      /* ... a User-Agent */
    unsigned started : 1;     /* http.response.start received */
    unsigned head_sent : 1;   /* head handed to the stream */
    unsigned complete : 1;    /* final body sent */
    unsigned body_done : 1;   /* the whole request body was handed to the app */
    unsigned disconnected : 1;
    unsigned finished : 1;    /* task done handled */
    unsigned compress : 1;    /* the response is eligible for compression */
    unsigned vary_has_ae : 1; /* the app's Vary already covers Accept-Encoding */
    unsigned m_ws_open : 1;   /* --metrics-port: a WebSocket session was accepted */
    unsigned m_method : 4;    /* --metrics-port: PN_M_* of the request */
    int codec;                /* pn_codec negotiated from Accept-Encoding */
    int64_t declared_len;     /* the app's Content-Length, or PN_SIZE_UNKNOWN */
    pn_encoder *enc;          /* taken from the worker's pool; put back once */
    pn_buf zbuf;              /* compressed output of the current piece; before the
                                 first body, the held ETag/Content-Length */
    pn_decoder *dec;          /* --decompress-requests: decodes the request body */
    pn_buf dbuf;              /* decoded output of the current piece */
    /* http.response.trailers (pn_http.c): the fields so far, "name:
     * value\r\n" lines; the stream could send trailers (s->trailers when
     * the request came: the scope offered them); the app's
     * http.response.start said "trailers": True; the final body (or a
     * pathsend) went; the last trailers message came. */
    pn_buf tbuf;
    unsigned trailers_offered : 1;
    unsigned trailers_asked : 1;
    unsigned body_ended : 1;
    unsigned trailers_done : 1;
};

/* scope["client"] of a socket peer, kept for the next requests from the
 * same address and port (keep-alive requests of one connection): a tuple of
 * a str and an int, immutable, so every scope can hold the same one.  The
 * key is the address itself, not the connection: a slot is only ever
 * reused for the very (family, address, port) its tuple was made from,
 * so a PROXY header that renames the peer gets a tuple of its own.
 * Direct-mapped by port and last address byte (pn_scope.c). */
#define PN_CLIENT_CACHE 32
typedef struct {
    PyObject *tuple; /* strong or NULL */
    unsigned short family, port;
    unsigned char addr[16];
} pn_client_slot;

/* The immutable parts of scopes a worker made lately, handed to the next
 * request that repeats them (pn_scope.c): header (name, value) tuples and
 * path/raw_path pairs, direct-mapped by a few of their bytes. */
#define PN_HDR_CACHE 64
#define PN_PATH_CACHE 16
typedef struct {
    PyObject *path; /* strong or NULL: scope["path"], a str (root_path included) */
    PyObject *raw;  /* strong or NULL: scope["raw_path"], bytes (root_path included) */
} pn_path_slot;

/* A pn_worker driven from an asyncio loop (pn_worker_type.c). */
struct WorkerObject {
    PyObject_HEAD
    struct pn_worker *w;
    pn_modstate *st;         /* borrowed: the module outlives its types' instances */
    PyObject *config;        /* strong: pounce.Config */
    PyObject *balance;       /* strong or NULL: BalanceTable, read by w (like cfg) */
    PyObject *metrics_table; /* strong or NULL: MetricsTable, written by w (like balance) */
    /* In metrics_table: this worker's counters, or NULL (--metrics-port unset). */
    pn_metrics_slot *metrics;
    const pn_config *cfg;    /* inside config */
    PyObject *app;           /* strong */
    PyObject *loop;          /* strong */
    PyObject *state;         /* strong: lifespan state dict, or None */
    PyObject *on_error;      /* strong: callable(message, exc_or_None) */
    PyObject *servers;       /* strong: tuple, scope["server"] value per listener */
    PyObject *listen_fds;    /* strong: tuple of ints (kept for repr/debug) */
    PyObject *task_type;     /* strong: asyncio.Task */
    PyObject *task_kwargs;   /* strong: {"loop": loop[, "eager_start": True]}; on 3.11 also
                                "name", replaced per request (pn_awaitable.c) */
    PyObject *call_soon;     /* strong: loop.call_soon */
    PyObject *create_future; /* strong: loop.create_future */
    PyObject *poll_cb;       /* strong: self.poll, for wakeups */
    PyObject *root_path_str, *root_path_bytes; /* strong */
    PyObject *worker_id;                       /* strong */
    PyObject *server_cert; /* strong or NULL: the TLS certificate, PEM (tls extension) */
    /* strong or NULL: the tls extension last built, for the connection whose
     * pn_stream.tls_serial is tls_cache_serial; its values are immutable
     * (the chain is a tuple), so each request gets a shallow copy */
    PyObject *tls_cache;
    uint64_t tls_cache_serial;
    PyObject *access_log_cb;        /* strong or NULL: the pounce.access logger's info, when access
                                       lines go through logging (pn_worker_type.c) */
    PyObject *scope_template;       /* strong: every scope key in order, constants filled
                                       in: PyDict_Copy of it + replacing values never
                                       resizes, unlike building a dict key by key */
    PyObject *scope_template_https; /* strong: the same with scheme "https" (proxy headers) */
    PyObject *ext_template;         /* strong: scope["extensions"] likewise */
    Py_ssize_t active;              /* requests whose task has not finished */
    int release_gil;                /* thread workers on a GIL build: let go around slow C work */
    PyObject *pending_exc;          /* strong: SystemExit/KeyboardInterrupt to raise from
                                       poll(), or NULL */
    pn_compress_pool *pool;         /* this worker's encoders; NULL when compression is off */
    pn_compress_policy policy;
    pn_codec order[PN_CODEC_COUNT]; /* --compression-order, available codecs only */
    size_t norder;
    uint64_t served;
    int closed;
    /* A response head's buffer, kept for the next response once its head
     * went out (pn_http.c): one malloc and free less per request.  Used on
     * the worker's thread only, where the stream that took the head is. */
    pn_buf spare_head;
    /* The socket peers' scope["client"] tuples (above). */
    pn_client_slot client_cache[PN_CLIENT_CACHE];
    PyObject *hdr_cache[PN_HDR_CACHE]; /* strong or NULL: (name, value) tuples of bytes */
    pn_path_slot path_cache[PN_PATH_CACHE];
};

static inline pn_modstate *worker_state(WorkerObject *w)
{
    return w->st;
}

/* ---- helpers every file uses -------------------------------------------- */

/* Request and WebSocket objects are callable, and that call is their
 * kind's ASGI send (RequestObject.send_call, by vectorcall): the object
 * itself is the send() the app is given.  Their types list
 * {"__vectorcalloffset__", PN_T_PYSSIZET, offsetof(RequestObject,
 * send_call), PN_READONLY} in Py_tp_members, PyVectorcall_Call as
 * Py_tp_call and Py_TPFLAGS_HAVE_VECTORCALL. */
#if PY_VERSION_HEX >= 0x030C0000
#define PN_T_PYSSIZET Py_T_PYSSIZET
#define PN_READONLY Py_READONLY
#else
#define PN_T_PYSSIZET T_PYSSIZET
#define PN_READONLY READONLY
#endif

/* The one positional argument of a send(message) call; NULL with a
 * TypeError for any other shape. */
static inline PyObject *pn_send_arg(PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (n == 1 && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0))
        return args[0];
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)
        PyErr_SetString(PyExc_TypeError, "send() takes no keyword arguments");
    else
        PyErr_Format(PyExc_TypeError, "send() takes exactly one argument (%zd given)", n);
    return NULL;
}

/* Strong-reference dict lookup: 1 found, 0 missing, -1 error. */
static inline int dict_get_ref(PyObject *d, PyObject *key, PyObject **out)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyDict_GetItemRef(d, key, out);
#else
    /* Before 3.13 there is no free-threaded build, so the GIL protects the
     * borrowed reference until we take our own. */
    PyObject *v = PyDict_GetItemWithError(d, key); /* borrowed, GIL-protected */
    if (v == NULL) {
        *out = NULL;
        return PyErr_Occurred() ? -1 : 0;
    }
    *out = Py_NewRef(v);
    return 1;
#endif
}

/* message[key] for a message that may be any mapping: 1 found (*out is a
 * strong reference), 0 missing, -1 error. */
static inline int msg_get(PyObject *msg, PyObject *key, PyObject **out)
{
    if (PyDict_CheckExact(msg))
        return dict_get_ref(msg, key, out);
    PyObject *v = PyObject_GetItem(msg, key);
    if (v == NULL) {
        *out = NULL;
        if (PyErr_ExceptionMatches(PyExc_KeyError)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    *out = v;
    return 1;
}

/* An http.response.* message the app sent, its fields read at most once.
 * pn_msg_read makes one pass over a small dict whose keys are the interned
 * names themselves (string literals in the app's code are interned), which
 * costs less than a lookup per field; when the pass meets a key it cannot
 * tell by identity, or msg is no small dict, each field is looked up when
 * asked for, as msg_get does. */
enum {
    PN_MSG_type,
    PN_MSG_status,
    PN_MSG_headers,
    PN_MSG_trailers,
    PN_MSG_body,
    PN_MSG_more_body,
    PN_MSG_COUNT
};
typedef struct {
    PyObject *msg;             /* borrowed from the caller: the message */
    PyObject *v[PN_MSG_COUNT]; /* strong or NULL: what the pass found */
    int whole;                 /* 1: the pass saw every key, so a NULL in v is a missing key */
} pn_msg;

static const int pn_msg_ids[PN_MSG_COUNT] = {PN_ID_type,     PN_ID_status, PN_ID_headers,
                                             PN_ID_trailers, PN_ID_body,   PN_ID_more_body};

/* (A message read by lookups only, holding nothing to release, is
 * (pn_msg){.msg = msg}.) */
static inline void pn_msg_read(pn_modstate *st, pn_msg *m, PyObject *msg)
{
    *m = (pn_msg){.msg = msg};
    if (!PyDict_CheckExact(msg))
        return;
    int whole = 1;
    /* The dict may be the app's module-level message, read by requests on
     * other thread workers at the same time: on a free-threaded build the
     * pass holds the dict's lock and takes strong references. */
#if PY_VERSION_HEX >= 0x030D0000
    Py_BEGIN_CRITICAL_SECTION(msg);
#else
    { /* (no free-threaded build before 3.13: the GIL covers the pass) */
#endif
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    if (PyDict_GET_SIZE(msg) > PN_MSG_COUNT)
        whole = 0;
    while (whole && PyDict_Next(msg, &pos, &k, &v)) {
        int i = 0;
        while (i < PN_MSG_COUNT && st->ids[pn_msg_ids[i]] != k)
            i++;
        if (i == PN_MSG_COUNT)
            whole = 0; /* an equal str that is not the interned one, or another key */
        else if (m->v[i] == NULL)
            m->v[i] = Py_NewRef(v);
    }
#if PY_VERSION_HEX >= 0x030D0000
    Py_END_CRITICAL_SECTION();
#else
    }
#endif
    m->whole = whole;
}

/* msg[field]: 1 found (*out strong), 0 missing, -1 error (msg_get). */
static inline int pn_msg_get(pn_modstate *st, pn_msg *m, int field, PyObject **out)
{
    if (m->v[field] != NULL) {
        *out = Py_NewRef(m->v[field]);
        return 1;
    }
    if (m->whole) {
        *out = NULL;
        return 0;
    }
    return msg_get(m->msg, st->ids[pn_msg_ids[field]], out);
}

static inline void pn_msg_release(pn_msg *m)
{
    for (int i = 0; i < PN_MSG_COUNT; i++)
        Py_CLEAR(m->v[i]);
}

/* Walking an iterable the app gave (response headers): a list or a tuple
 * by index, anything else through an iterator, so the common case makes
 * no iterator object.  The app's list may be shared by requests on other
 * thread workers (a module-level http.response.start): on 3.13+ each item
 * is taken with PyList_GetItemRef, safe while the list changes; before
 * 3.13 there is no free-threaded build and the GIL covers the borrow. */
typedef struct {
    PyObject *seq; /* strong: the list or tuple, or NULL */
    PyObject *it;  /* strong: the iterator of anything else, or NULL */
    Py_ssize_t i;
} pn_items;

/* 0, or -1 with an exception (obj is not iterable). */
static inline int pn_items_begin(pn_items *w, PyObject *obj)
{
    w->i = 0;
    w->seq = w->it = NULL;
    if (PyList_CheckExact(obj) || PyTuple_CheckExact(obj)) {
        w->seq = Py_NewRef(obj);
        return 0;
    }
    w->it = PyObject_GetIter(obj);
    return w->it ? 0 : -1;
}

/* The next item (strong), or NULL at the end or with an exception. */
static inline PyObject *pn_items_next(pn_items *w)
{
    PyObject *seq = w->seq;
    if (seq == NULL)
        return PyIter_Next(w->it);
    if (PyTuple_CheckExact(seq))
        return w->i < PyTuple_GET_SIZE(seq) ? Py_NewRef(PyTuple_GET_ITEM(seq, w->i++)) : NULL;
    if (w->i >= PyList_GET_SIZE(seq))
        return NULL;
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *v = PyList_GetItemRef(seq, w->i++);
    if (v == NULL && PyErr_ExceptionMatches(PyExc_IndexError))
        PyErr_Clear(); /* it shrank meanwhile: that is its end */
    return v;
#else
    return Py_NewRef(PyList_GET_ITEM(seq, w->i++)); /* borrowed, GIL-protected */
#endif
}

static inline void pn_items_end(pn_items *w)
{
    Py_CLEAR(w->seq);
    Py_CLEAR(w->it);
}

/* The raised exception as one object (PyErr_GetRaisedException is 3.12+). */
static inline PyObject *fetch_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v != NULL && tb != NULL)
        PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    return v;
#endif
}

static inline void restore_exception(PyObject *exc /* stolen */)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    if (exc == NULL)
        return;
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, tb);
#endif
}

/* RuntimeError(fmt % arg), or RuntimeError(fmt) when arg is NULL; returns
 * NULL for `return runtime_error(...)`. */
static inline PyObject *runtime_error(const char *fmt, PyObject *arg)
{
    if (arg)
        PyErr_Format(PyExc_RuntimeError, fmt, arg);
    else
        PyErr_SetString(PyExc_RuntimeError, fmt);
    return NULL;
}

/* A new message {"type": type, k1: v1, k2: v2}; k1 and k2 may be NULL to
 * leave them out.  The values are borrowed.  NULL with an exception. */
static inline PyObject *msg_new(pn_modstate *st, PyObject *type, PyObject *k1, PyObject *v1,
                                PyObject *k2, PyObject *v2)
{
    PyObject *m = PyDict_New();
    if (m == NULL || PyDict_SetItem(m, PN_ID(st, type), type) < 0 ||
        (k1 && PyDict_SetItem(m, k1, v1) < 0) || (k2 && PyDict_SetItem(m, k2, v2) < 0)) {
        Py_XDECREF(m);
        return NULL;
    }
    return m;
}

/* Is a message's type (a str) the interned `id`?  Identity first (a
 * type the app took from an interned string); then the length and the
 * bytes, since a literal like "http.response.start" is not interned (it is
 * not identifier-like) and PyUnicode_Compare's general path cost ~95
 * instructions a call.  Every id is ASCII, so a type that is not cannot
 * match. */
static inline int msg_type_is(PyObject *type, PyObject *id)
{
    if (type == id)
        return 1;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(type) < 0) {
        PyErr_Clear();
        return 0;
    }
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(id);
    return PyUnicode_GET_LENGTH(type) == n && PyUnicode_IS_ASCII(type) &&
           memcmp(PyUnicode_DATA(type), PyUnicode_DATA(id), (size_t)n) == 0;
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- pn_awaitable.c ------------------------------------------------------ */

/* A completed awaitable whose await returns value (stolen).  NULL with an
 * exception (value released). */
PyObject *pn_ready_new(pn_modstate *st, PyObject *value);
/* Resolve the future in *slot with value (borrowed) unless it is already
 * done (e.g. cancelled by the app); *slot is cleared either way. */
void pn_future_resolve(pn_modstate *st, PyObject **slot, PyObject *value);
/* Run the app for r (a new request or WebSocket session, stolen) with
 * scope (stolen; NULL after a failure, with an exception): attach r to its
 * connection, call the app with (scope, receive, send) and start the
 * asyncio Task that drives its coroutine, eagerly on 3.12+.  The app's
 * errors are its own: reported, and answered with a 500 when nothing was
 * sent; returns 0.  -1 when r could not be started at all (the runtime
 * answers 500). */
int pn_apprun_start(RequestObject *r, PyObject *scope);
extern PyType_Spec pn_ready_spec, pn_apprun_spec;

/* ---- pn_balance_type.c --------------------------------------------------- */

/* The table inside a BalanceTable (borrowed from obj), or NULL with TypeError. */
struct pn_balance *pn_balance_from(pn_modstate *st, PyObject *obj);
extern PyType_Spec pn_balance_spec;

/* ---- pn_metrics_type.c --------------------------------------------------- */

/* The table inside a MetricsTable (borrowed from obj), or NULL with TypeError. */
struct pn_metrics *pn_metrics_from(pn_modstate *st, PyObject *obj);
extern PyType_Spec pn_metrics_spec;
/* --metrics-port hooks of the bridge, called only when w->metrics is set:
 * a request is created (its method and start time are noted), an app run
 * starts or ends (in flight; an HTTP request's count, status class and
 * duration). */
void pn_metrics_request_new(WorkerObject *w, RequestObject *r, const char *method, size_t len);
void pn_metrics_run_start(WorkerObject *w);
void pn_metrics_run_end(RequestObject *r);

/* ---- pn_http.c ----------------------------------------------------------- */

/* An HTTP request for a head on c (slices valid during the call): create
 * its object and run the app.  0, or -1 (the runtime answers 500). */
int pn_request_dispatch(WorkerObject *w, pn_stream *s, const pn_http1_request *req);
/* The request part of a new object of `type` (a Request or a WebSocket):
 * allocated, the RequestObject zeroed and set up for req on s, not yet
 * tracked by the GC.  fwd: what the proxy headers said (pn_scope_forwarded)
 * or NULL; the access log names its client.  NULL with an exception. */
RequestObject *pn_request_new(WorkerObject *w, PyTypeObject *type, const pn_request_kind *kind,
                              pn_stream *s, const pn_http1_request *req, const pn_fwd_result *fwd);
/* The Request type's slots, which a WebSocket session's call for its request part. */
int pn_request_traverse(RequestObject *r, visitproc visit, void *arg);
int pn_request_clear(RequestObject *r);
void pn_request_release(RequestObject *r);
/* HTTP receive(): a completed awaitable or a Future, NULL on error. */
PyObject *pn_request_receive(RequestObject *r);
/* Before a receive(): forget a waiting receive() the app cancelled
 * (Starlette's is_disconnected() does that); refuse a live one.  0 / -1. */
int pn_request_forget_receive(RequestObject *r);
/* Body bytes came (the stream's on_body) while receive() waits. */
void pn_request_body_ready(RequestObject *r);
/* The stream drained (on_drain): a send() waiting on it returns. */
void pn_request_drained(RequestObject *r);
/* http.response.start / http.response.body for r: 0 / -1 with an exception,
 * and the awaitable send() returns or NULL. */
int pn_request_start(RequestObject *r, pn_msg *m);
PyObject *pn_request_send_body(RequestObject *r, pn_msg *m);
/* send()'s result after a write that returned rc (PN_IO_*): a Future when
 * the app must wait for the stream to drain, else a completed one. */
PyObject *pn_request_wait_or_ready(RequestObject *r, int rc);
/* A whole server-made response (an error, a denial): write it, log it,
 * hand the stream back to close. */
void pn_request_reply(RequestObject *r, int status);
/* Append r's access-log line (when the access log is on). */
void pn_request_log(RequestObject *r);
/* The cycle is over: a pending receive() gets http.disconnect, a pending
 * send() returns.  The HTTP request's `closed`. */
void pn_request_wake_waiters(RequestObject *r);
/* The HTTP request's `finish`: answer 500 if nothing was sent, close if the
 * response is incomplete. */
void pn_request_finish(RequestObject *r, PyObject *exc);
extern PyType_Spec pn_request_spec;

/* ---- pn_http_codec.c ---------------------------------------------------- */

/* At the request: the response codec Accept-Encoding picks (RFC 9110
 * §12.5.3), PN_CODEC_IDENTITY when compression is off or nothing fits. */
int pn_codec_negotiate(WorkerObject *w, const pn_http1_request *req);
/* At the request, under --decompress-requests: a decoder for its body, or
 * NULL when the body is not to be decoded (or on out of memory). */
pn_decoder *pn_codec_request_decoder(WorkerObject *w, const pn_http1_request *req);
/* --decompress-requests: decode one piece of r's body (last: the body ends
 * with it).  Returns the decoded bytes, or NULL with *status set to the
 * status the body fails with (413 too large, 400 corrupt, 500 out of
 * memory), or NULL with an exception. */
PyObject *pn_codec_decode(RequestObject *r, const char *data, size_t len, int last, int *status);
/* At http.response.start, with the app's (name, value) pairs: decide
 * whether the response may be compressed. */
void pn_codec_decide(RequestObject *r, int status, PyObject **pairs, Py_ssize_t npairs);
/* Serialise one app header of a response that may be re-encoded: its
 * Content-Length and ETag are validated and held (in r->zbuf) until the
 * body settles whether it is encoded.  Returns a PN_WRITE_* code. */
int pn_codec_header(RequestObject *r, const char *n, size_t nl, const char *v, size_t vl);
/* At the first body of an eligible response (r->compress): settle the
 * decision, add Vary and Content-Encoding, take an encoder, release the held
 * headers (a strong ETag weakened and no Content-Length when encoded, the
 * app's exactly otherwise).  0 or -1 (no memory). */
int pn_codec_begin(RequestObject *r, size_t first_len, int more);
/* The body goes out as the app gave it (pathsend, or no encoder): no
 * encoding, the held ETag and Content-Length released exactly as the app
 * sent them.  0 or -1 (no memory). */
int pn_codec_as_is(RequestObject *r);
/* Compress one piece into r->zbuf.  0 or -1. */
int pn_codec_piece(RequestObject *r, const char *data, size_t len, int final);
/* Give the encoder back, free the buffers. */
void pn_codec_end(RequestObject *r);

/* ---- pn_scope.c ------------------------------------------------------------ */

/* The scope of a request, from the head's slices.  decoded: the body reaches
 * the app decompressed (the scope leaves out Content-Encoding and
 * Content-Length).  A new dict, or NULL with an exception. */
PyObject *pn_scope_http(WorkerObject *w, pn_stream *s, const pn_http1_request *req, int decoded,
                        const pn_fwd_result *fwd);
PyObject *pn_scope_websocket(WorkerObject *w, pn_stream *s, const pn_http1_request *req,
                             const pn_fwd_result *fwd);
/* What the proxy headers of a request say (--proxy-headers): buf filled and
 * returned when they apply, NULL when they are off, absent, from an
 * untrusted peer, malformed or contradict each other.  Once per request,
 * before the scope; the scope and the access log both use the answer. */
const pn_fwd_result *pn_scope_forwarded(WorkerObject *w, pn_stream *s, const pn_http1_request *req,
                                        pn_fwd_result *buf);
/* The worker's scope and extensions templates.  0 / -1. */
int pn_scope_templates(WorkerObject *w);
/* The module's shared header-name objects.  0 / -1. */
int pn_scope_init(pn_modstate *st);

/* ---- pn_websocket.c ------------------------------------------------------- */

/* A request carrying an Upgrade: if it is a WebSocket handshake, create
 * the session and run the app (0, or -1: the runtime answers 500); a bad
 * one is answered and its connection closes (0).  PN_WS_NOT_WEBSOCKET: an
 * ordinary HTTP request after all. */
enum { PN_WS_NOT_WEBSOCKET = 1 };
int pn_ws_dispatch(WorkerObject *w, pn_stream *s, const pn_http1_request *req);
/* The runtime's PN_WS_EV_* for an upgraded connection. */
void pn_ws_on_event(struct pn_conn *c, int event);
extern PyType_Spec pn_websocket_spec;

/* ---- pn_worker_type.c ------------------------------------------------------ */

/* Report an application error through the Python-side logger. */
void pn_report_error(WorkerObject *w, const char *message, PyObject *exc);

#endif
