/*
 * pn_asgi.c — the ASGI 3.0 bridge for HTTP: the Worker type (a pn_worker
 * driven from an asyncio loop), the per-request object that implements
 * receive()/send(), scope construction, and the completed-awaitable type.
 *
 * Threads: a Worker object and every Request it creates belong to the
 * thread whose event loop drives the worker (free-threading rule 2).  They
 * are not shared; the only cross-thread entry is pn_worker_wake() in the
 * runtime.  Module state is reached through the types, never through
 * statics.
 *
 * References: every PyObject * field below is a strong reference unless
 * marked borrowed.  Request.conn is a runtime pointer valid until the
 * runtime calls on_close (or the response completes and the request is
 * detached); it is NULL afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pn_bridge.h"
#include "pn_accept_encoding.h"
#include "pn_compress.h"
#include "pn_log.h"
#include "pn_worker.h"
#include "pn_ws.h"
#include "pn_ws_deflate.h"
#include "pn_ws_handshake.h"
#include "pn_utf8.h"

/* ---- compatibility ---------------------------------------------------- */

/* Strong-reference dict lookup: 1 found, 0 missing, -1 error. */
static int dict_get_ref(PyObject *d, PyObject *key, PyObject **out)
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

/* message[key] for a message that may be any mapping. */
static int msg_get(PyObject *msg, PyObject *key, PyObject **out)
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

/* The raised exception as one object (PyErr_GetRaisedException is 3.12+). */
static PyObject *fetch_exception(void)
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

static void PyErr_SetRaisedException_compat(PyObject *exc /* stolen */)
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

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- Ready: an awaitable that is already complete --------------------- */

typedef struct {
    PyObject_HEAD PyObject *value; /* strong; the result of the await */
} ReadyObject;

static PyObject *ready_new_value(pn_modstate *st, PyObject *value /* stolen */)
{
    ReadyObject *r = PyObject_GC_New(ReadyObject, st->ready_type);
    if (r == NULL) {
        Py_DECREF(value);
        return NULL;
    }
    r->value = value;
    PyObject_GC_Track(r);
    return (PyObject *)r;
}

static int ready_traverse(ReadyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->value);
    return 0;
}

static int ready_clear(ReadyObject *self)
{
    Py_CLEAR(self->value);
    return 0;
}

static void ready_dealloc(ReadyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    ready_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *ready_await(PyObject *self)
{
    return Py_NewRef(self);
}

static PySendResult ready_am_send(PyObject *self, PyObject *arg, PyObject **result)
{
    (void)arg;
    ReadyObject *r = (ReadyObject *)self;
    *result = Py_NewRef(r->value ? r->value : Py_None);
    return PYGEN_RETURN;
}

static PyObject *raise_stop(PyObject *value)
{
    /* StopIteration(value) built explicitly so a tuple value is not
     * unpacked into several arguments. */
    PyObject *exc = PyObject_CallOneArg(PyExc_StopIteration, value ? value : Py_None);
    if (exc != NULL) {
        PyErr_SetObject(PyExc_StopIteration, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *ready_iternext(PyObject *self)
{
    PyObject *v = ((ReadyObject *)self)->value;
    /* NULL without an exception means StopIteration(None): since 3.12
     * `await` drives non-coroutine awaitables through tp_iternext, so every
     * `await send(...)` comes here; no exception object is built for it. */
    if (v == NULL || v == Py_None)
        return NULL;
    return raise_stop(v);
}

static PyObject *ready_send(PyObject *self, PyObject *arg)
{
    (void)arg;
    return raise_stop(((ReadyObject *)self)->value);
}

static PyObject *ready_throw(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    PyObject *typ = args[0];
    if (PyExceptionInstance_Check(typ)) {
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    } else if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, nargs > 1 ? args[1] : NULL);
    } else {
        PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
    }
    return NULL;
}

static PyObject *ready_close(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_NONE;
}

static PyMethodDef ready_methods[] = {
    {"send", (PyCFunction)ready_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))ready_throw, METH_FASTCALL, NULL},
    {"close", ready_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot ready_slots[] = {
    {Py_tp_dealloc, ready_dealloc},
    {Py_tp_traverse, ready_traverse},
    {Py_tp_clear, ready_clear},
    {Py_am_await, ready_await},
    {Py_am_send, ready_am_send},
    {Py_tp_iter, ready_await},
    {Py_tp_iternext, ready_iternext},
    {Py_tp_methods, ready_methods},
    {Py_tp_doc, "A completed awaitable returned by receive()/send() when no wait is needed."},
    {0, NULL},
};

static PyType_Spec ready_spec = {
    .name = "pounce._pounce.Ready",
    .basicsize = sizeof(ReadyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = ready_slots,
};

/* ---- Worker and Request objects ---------------------------------------- */

typedef struct WorkerObject WorkerObject;

typedef struct {
    PyObject_HEAD WorkerObject *worker; /* strong */
    pn_conn *conn;                      /* runtime's; NULL once detached or closed */
    PyObject *task;                     /* strong; cleared when the task is done */
    PyObject *recv_future;              /* strong or NULL: receive() waiting */
    PyObject *send_future;              /* strong or NULL: send() waiting for drain */
    pn_http1_response resp;
    pn_buf head;    /* serialised head until the first body goes out */
    pn_buf logline; /* "METHOD" + target, for the access log */
    size_t log_method_len;
    uint64_t t0_ns;
    uint64_t bytes_sent;
    int version_minor;
    unsigned head_request : 1;
    unsigned expect_continue : 1;
    unsigned started : 1;   /* http.response.start received */
    unsigned head_sent : 1; /* head written to the connection */
    unsigned complete : 1;  /* final body sent */
    unsigned body_done : 1; /* the whole request body was handed to the app */
    unsigned disconnected : 1;
    unsigned finished : 1;    /* task done handled */
    unsigned compress : 1;    /* the response is eligible for compression */
    unsigned vary_has_ae : 1; /* the app's Vary already covers Accept-Encoding */
    int codec;                /* pn_codec negotiated from Accept-Encoding */
    int64_t declared_len;     /* the app's Content-Length, or PN_SIZE_UNKNOWN */
    pn_encoder *enc;          /* taken from the worker's pool; put back once */
    pn_buf zbuf;              /* compressed output of the current piece */
    struct pn_ws_state *ws;   /* WebSocket scope: its state (pn_asgi_ws.inc); NULL for http */
    pn_decoder *dec;          /* --decompress-requests: decodes the request body */
    pn_buf dbuf;              /* decoded output of the current piece */
} RequestObject;

struct WorkerObject {
    PyObject_HEAD pn_worker *w;
    pn_modstate *st;      /* borrowed: the module outlives its types' instances */
    PyObject *config;     /* pounce.Config */
    const pn_config *cfg; /* inside config */
    PyObject *app;
    PyObject *loop;
    PyObject *state;         /* lifespan state dict, or None */
    PyObject *on_error;      /* callable(message, exc_or_None) */
    PyObject *servers;       /* tuple: scope["server"] value per listener */
    PyObject *listen_fds;    /* tuple of ints (kept for repr/debug) */
    PyObject *task_kwargs;   /* {"loop": loop[, "eager_start": True]} */
    PyObject *call_soon;     /* loop.call_soon */
    PyObject *create_future; /* loop.create_future */
    PyObject *poll_cb;       /* self.poll, for wakeups */
    PyObject *root_path_str, *root_path_bytes;
    PyObject *worker_id;
    PyObject *scope_template; /* every scope key in order, constants filled in:
                                 PyDict_Copy of it + replacing values never
                                 resizes, unlike building a dict key by key */
    PyObject *ext_template;   /* scope["extensions"] likewise */
    Py_ssize_t active;        /* requests whose task has not finished */
    int release_gil;          /* thread workers on a GIL build: let go around slow C work */
    PyObject *pending_exc;    /* SystemExit/KeyboardInterrupt to raise from poll(), or NULL */
    pn_compress_pool *pool;   /* this worker's encoders; NULL when compression is off */
    pn_compress_policy policy;
    pn_codec order[PN_CODEC_COUNT]; /* --compression-order, available codecs only */
    size_t norder;
    uint64_t served;
    int closed;
};

static pn_modstate *worker_state(WorkerObject *w)
{
    return w->st;
}

/* Forward declarations. */
static void request_detach(RequestObject *r, int keep_alive);
static void request_reply_simple(RequestObject *r, int status);
struct pn_ws_state;
static PyObject *runtime_error(const char *fmt, PyObject *arg);
static PyObject *ws_receive(RequestObject *r);
static PyObject *ws_send(RequestObject *r, PyObject *msg);
static void ws_finish(RequestObject *r, PyObject *exc);
static int ws_is_response(const RequestObject *r);
static void ws_on_close(RequestObject *r);
static void ws_state_free(struct pn_ws_state *ws);
static int ws_traverse(struct pn_ws_state *ws, visitproc visit, void *arg);

/* Report an application error through the Python-side logger. */
static void report_error(WorkerObject *w, const char *message, PyObject *exc)
{
    if (w->on_error == NULL || w->on_error == Py_None)
        return;
    PyObject *msg = PyUnicode_FromString(message);
    if (msg == NULL) {
        PyErr_WriteUnraisable((PyObject *)w);
        return;
    }
    PyObject *res = PyObject_CallFunctionObjArgs(w->on_error, msg, exc ? exc : Py_None, NULL);
    Py_DECREF(msg);
    if (res == NULL)
        PyErr_WriteUnraisable(w->on_error);
    Py_XDECREF(res);
}

/* Resolve a future unless it is already done (e.g. cancelled by the app). */
static void future_resolve(pn_modstate *st, PyObject **slot, PyObject *value)
{
    PyObject *fut = *slot;
    if (fut == NULL)
        return;
    *slot = NULL;
    PyObject *done = PyObject_CallMethodNoArgs(fut, PN_ID(st, done));
    if (done == NULL) {
        PyErr_WriteUnraisable(fut);
    } else {
        if (done == Py_False) {
            PyObject *r = PyObject_CallMethodOneArg(fut, PN_ID(st, set_result), value);
            if (r == NULL)
                PyErr_WriteUnraisable(fut);
            Py_XDECREF(r);
        }
        Py_DECREF(done);
    }
    Py_DECREF(fut);
}

static PyObject *make_disconnect(pn_modstate *st)
{
    return PyDict_Copy(st->msg_disconnect_template);
}

/* ---- receive ------------------------------------------------------------ */

/* Answer a request whose body turned out to be bad (400) or too large (413)
 * when the app has not started a response: the client gets the status, the
 * app gets http.disconnect. */
static void request_body_failed(RequestObject *r)
{
    pn_conn *c = r->conn;
    if (c == NULL)
        return;
    int status = c->body_error ? c->body_error : 400;
    if (!r->started && !c->dead) {
        request_reply_simple(r, status);
    } else {
        pn_conn_close(c);
        r->conn = NULL;
    }
    r->disconnected = 1;
}

/* Build the next receive() message.  Returns a new dict, or NULL with no
 * exception when the app must wait, or NULL with an exception. */
static PyObject *request_try_receive(RequestObject *r)
{
    pn_modstate *st = worker_state(r->worker);
    if (r->disconnected || r->conn == NULL || r->complete)
        return make_disconnect(st);
    if (r->body_done)
        return NULL; /* nothing more until the client goes away */
    pn_conn *c = r->conn;
    if (r->expect_continue && !r->started)
        pn_conn_send_continue(c, 1);
    const char *data = NULL;
    size_t len = 0;
    int rc = pn_conn_body(c, &data, &len);
    if (rc < 0) {
        if (c->body_error)
            request_body_failed(r);
        return make_disconnect(st);
    }
    if (rc == 0)
        return NULL;
    PyObject *body;
    int more;
    if (r->dec != NULL) {
        /* --decompress-requests: decode, with the bomb cap. */
        pn_buf_clear(&r->dbuf);
        int last = c->body.done && c->body_ready == len;
        int drc = pn_decoder_write(r->dec, data, len, last, &r->dbuf);
        pn_conn_body_consume(c, len);
        more = !pn_conn_body_complete(c);
        if (drc == PN_DECODE_TOO_BIG || drc == PN_DECODE_BAD || drc < 0 ||
            (!more && drc != PN_DECODE_DONE)) {
            c->body_error = drc == PN_DECODE_TOO_BIG ? 413 : drc < 0 ? 500 : 400;
            request_body_failed(r);
            return make_disconnect(st);
        }
        body = PyBytes_FromStringAndSize(r->dbuf.data, (Py_ssize_t)r->dbuf.len);
        if (!more) {
            pn_decoder_free(r->dec);
            r->dec = NULL;
            pn_buf_free(&r->dbuf);
        }
    } else {
        body = len ? PyBytes_FromStringAndSize(data, (Py_ssize_t)len) : Py_NewRef(st->empty_bytes);
        pn_conn_body_consume(c, len);
        more = !pn_conn_body_complete(c);
    }
    if (body == NULL)
        return NULL;
    if (!more)
        r->body_done = 1;
    PyObject *msg = PyDict_New();
    if (msg == NULL || PyDict_SetItem(msg, PN_ID(st, type), PN_ID(st, http_request)) < 0 ||
        PyDict_SetItem(msg, PN_ID(st, body), body) < 0 ||
        PyDict_SetItem(msg, PN_ID(st, more_body), more ? Py_True : Py_False) < 0) {
        Py_XDECREF(msg);
        Py_DECREF(body);
        return NULL;
    }
    Py_DECREF(body);
    return msg;
}

static PyObject *request_receive(PyObject *op, PyObject *unused)
{
    (void)unused;
    RequestObject *r = (RequestObject *)op;
    pn_modstate *st = worker_state(r->worker);
    if (r->ws != NULL && !ws_is_response(r)) {
        if (r->recv_future != NULL) {
            PyObject *done = PyObject_CallMethodNoArgs(r->recv_future, PN_ID(st, done));
            int is_done = done == Py_True;
            Py_XDECREF(done);
            if (done == NULL)
                return NULL;
            if (!is_done)
                return runtime_error("receive() called while another receive() is still waiting",
                                     NULL);
            Py_CLEAR(r->recv_future);
        }
        return ws_receive(r);
    }
    if (r->recv_future != NULL) {
        /* A receive() whose await was cancelled (Starlette's
         * is_disconnected() does exactly that) leaves a done future
         * behind: forget it.  A live one means two concurrent receives. */
        PyObject *done = PyObject_CallMethodNoArgs(r->recv_future, PN_ID(st, done));
        if (done == NULL)
            return NULL;
        int is_done = done == Py_True;
        Py_DECREF(done);
        if (!is_done) {
            PyErr_SetString(PyExc_RuntimeError,
                            "receive() called while another receive() is still waiting");
            return NULL;
        }
        Py_CLEAR(r->recv_future);
    }
    PyObject *msg = request_try_receive(r);
    if (msg != NULL)
        return ready_new_value(st, msg);
    if (PyErr_Occurred())
        return NULL;
    PyObject *fut = PyObject_CallNoArgs(r->worker->create_future);
    if (fut == NULL)
        return NULL;
    r->recv_future = Py_NewRef(fut);
    if (r->conn && !r->body_done)
        pn_conn_set_stall_timer(r->conn, 1);
    else if (r->conn)
        pn_conn_watch_close(r->conn); /* only http.disconnect can follow */
    return fut;
}

/* ---- send ----------------------------------------------------------------- */

static PyObject *runtime_error(const char *fmt, PyObject *arg)
{
    if (arg)
        PyErr_Format(PyExc_RuntimeError, fmt, arg);
    else
        PyErr_SetString(PyExc_RuntimeError, fmt);
    return NULL;
}

/* ---- compression ----------------------------------------------------------- */

/* At http.response.start: may this response be compressed, and with what?
 * Sets r->compress (the response is eligible: it needs Vary even if this
 * client gets identity) and keeps r->codec only if a codec may be used.
 * The size check waits for the first body when the size is not declared. */
static void request_compress_decide(RequestObject *r, int status, PyObject **pairs,
                                    Py_ssize_t npairs)
{
    WorkerObject *w = r->worker;
    r->compress = 0;
    r->vary_has_ae = 0;
    r->declared_len = PN_SIZE_UNKNOWN;
    if (w->pool == NULL) {
        r->codec = PN_CODEC_IDENTITY;
        return;
    }
    pn_compress_resp info;
    pn_compress_resp_init(&info, status, r->head_request);
    for (Py_ssize_t i = 0; i < npairs; i++) {
        PyObject *name = PySequence_Fast_GET_ITEM(pairs[i], 0);  /* borrowed from pairs[i] */
        PyObject *value = PySequence_Fast_GET_ITEM(pairs[i], 1); /* borrowed from pairs[i] */
        const char *n = PyBytes_AS_STRING(name), *v = PyBytes_AS_STRING(value);
        size_t nl = (size_t)PyBytes_GET_SIZE(name), vl = (size_t)PyBytes_GET_SIZE(value);
        pn_compress_resp_header(&info, n, nl, v, vl);
        if (nl == 4 && strncasecmp(n, "vary", 4) == 0 && pn_vary_has_accept_encoding(v, vl))
            r->vary_has_ae = 1;
    }
    r->declared_len = info.body_size;
    /* info.content_type points into a header we still hold: decide now. */
    r->compress = pn_compress_eligible(&w->policy, &info) ? 1 : 0;
    if (!r->compress)
        r->codec = PN_CODEC_IDENTITY;
}

/* At the first body: settle the decision (size), add Vary and
 * Content-Encoding, take an encoder.  Returns 0 or -1 (no memory). */
static int request_compress_begin(RequestObject *r, size_t first_len, int more)
{
    WorkerObject *w = r->worker;
    if (!r->compress)
        return 0;
    int64_t size = more ? r->declared_len : (int64_t)first_len;
    if (size != PN_SIZE_UNKNOWN && size < w->cfg->compression_min_size) {
        r->compress = 0;
        r->codec = PN_CODEC_IDENTITY;
        return 0;
    }
    if (!r->vary_has_ae &&
        pn_http1_resp_header(&r->head, &r->resp, "Vary", 4, "Accept-Encoding", 15) != PN_WRITE_OK)
        return -1;
    if (r->codec == PN_CODEC_IDENTITY)
        return 0;
    r->enc =
        pn_encoder_get(w->pool, (pn_codec)r->codec, more ? PN_SIZE_UNKNOWN : (int64_t)first_len);
    if (r->enc == NULL) {
        /* Out of memory is not the client's fault: send it as it is.  The
         * app's Content-Length was dropped, so framing falls back to chunked
         * (or the known length of a single message). */
        r->codec = PN_CODEC_IDENTITY;
        return 0;
    }
    const char *name = pn_codec_name((pn_codec)r->codec);
    if (pn_http1_resp_header(&r->head, &r->resp, "Content-Encoding", 16, name, strlen(name)) !=
        PN_WRITE_OK)
        return -1;
    return 0;
}

/* Compress one body piece into r->zbuf (cleared first).  The GIL is let go
 * for large pieces when other thread workers could use it. */
static int request_compress_piece(RequestObject *r, const char *data, size_t len, int final)
{
    pn_buf_clear(&r->zbuf);
    int rc;
    if (r->worker->release_gil && len >= 16384) {
        Py_BEGIN_ALLOW_THREADS rc =
            pn_encoder_write(r->enc, data, len, final ? PN_FLUSH_FINISH : PN_FLUSH_SYNC, &r->zbuf);
        Py_END_ALLOW_THREADS
    } else {
        rc = pn_encoder_write(r->enc, data, len, final ? PN_FLUSH_FINISH : PN_FLUSH_SYNC, &r->zbuf);
    }
    return rc;
}

static void request_compress_end(RequestObject *r)
{
    if (r->enc != NULL) {
        pn_encoder_put(r->enc);
        r->enc = NULL;
    }
    pn_buf_free(&r->zbuf);
}

static int request_start(RequestObject *r, PyObject *msg)
{
    pn_modstate *st = worker_state(r->worker);
    if (r->started) {
        runtime_error("Unexpected ASGI message 'http.response.start' sent, after response "
                      "already started.",
                      NULL);
        return -1;
    }
    PyObject *status_obj = NULL, *headers = NULL;
    int rc = msg_get(msg, PN_ID(st, status), &status_obj);
    if (rc < 0)
        return -1;
    if (rc == 0 || !PyLong_Check(status_obj)) {
        Py_XDECREF(status_obj);
        runtime_error("'http.response.start' needs an integer 'status'", NULL);
        return -1;
    }
    long status = PyLong_AsLong(status_obj);
    Py_DECREF(status_obj);
    if (status == -1 && PyErr_Occurred())
        return -1;
    unsigned flags = 0;
    if (r->head_request)
        flags |= PN_RESP_HEAD_REQUEST;
    if (r->conn && r->conn->keep_alive && !r->conn->closing_soon)
        flags |= PN_RESP_KEEP_ALIVE;
    if (status < 200 || status > 599 ||
        pn_http1_resp_init(&r->resp, (int)status, r->version_minor, flags) != PN_WRITE_OK) {
        PyErr_Format(PyExc_RuntimeError,
                     "'http.response.start' status must be between 200 and 599, got %ld", status);
        return -1;
    }
    pn_buf_clear(&r->head);
    if (pn_http1_resp_start(&r->head, &r->resp) != PN_WRITE_OK) {
        PyErr_NoMemory();
        return -1;
    }
    rc = msg_get(msg, PN_ID(st, headers), &headers);
    if (rc < 0)
        return -1;
    /* The (name, value) pairs, held for two passes: the first decides on
     * compression (Content-Type may come after Content-Length), the second
     * validates and serialises. */
    PyObject *pairs_stack[32];
    PyObject **pairs = pairs_stack;
    Py_ssize_t npairs = 0, cap = 32;
    int ok = -1;
    if (rc == 1 && headers != Py_None) {
        PyObject *it = PyObject_GetIter(headers);
        Py_DECREF(headers);
        if (it == NULL)
            return -1;
        PyObject *item;
        while ((item = PyIter_Next(it)) != NULL) {
            PyObject *seq = PySequence_Fast(item, "each header must be a (name, value) pair");
            Py_DECREF(item);
            if (seq == NULL)
                break;
            if (PySequence_Fast_GET_SIZE(seq) != 2 ||
                !PyBytes_Check(PySequence_Fast_GET_ITEM(seq, 0)) ||
                !PyBytes_Check(PySequence_Fast_GET_ITEM(seq, 1))) {
                Py_DECREF(seq);
                runtime_error("each header must be a (name, value) pair of bytes", NULL);
                break;
            }
            if (npairs == cap) {
                PyObject **bigger = PyMem_Malloc(sizeof(PyObject *) * (size_t)cap * 2);
                if (bigger == NULL) {
                    Py_DECREF(seq);
                    PyErr_NoMemory();
                    break;
                }
                memcpy(bigger, pairs, sizeof(PyObject *) * (size_t)npairs);
                if (pairs != pairs_stack)
                    PyMem_Free(pairs);
                pairs = bigger;
                cap *= 2;
            }
            pairs[npairs++] = seq; /* owned */
        }
        Py_DECREF(it);
        if (PyErr_Occurred())
            goto done;
    } else {
        Py_XDECREF(headers);
    }
    request_compress_decide(r, (int)status, pairs, npairs);
    for (Py_ssize_t i = 0; i < npairs; i++) {
        PyObject *name = PySequence_Fast_GET_ITEM(pairs[i], 0);  /* borrowed from pairs[i] */
        PyObject *value = PySequence_Fast_GET_ITEM(pairs[i], 1); /* borrowed from pairs[i] */
        const char *n = PyBytes_AS_STRING(name), *v = PyBytes_AS_STRING(value);
        size_t nl = (size_t)PyBytes_GET_SIZE(name), vl = (size_t)PyBytes_GET_SIZE(value);
        int wrc;
        if (r->codec != PN_CODEC_IDENTITY && nl == 14 &&
            strncasecmp(n, "content-length", 14) == 0) {
            /* The encoded body has another length: framing is ours. */
            wrc = pn_http1_check_header(n, nl, v, vl);
        } else if (r->codec != PN_CODEC_IDENTITY && nl == 4 && strncasecmp(n, "etag", 4) == 0 &&
                   pn_http1_check_header(n, nl, v, vl) == PN_WRITE_OK) {
            /* RFC 9110 §8.8.3: other bytes, so a strong validator turns weak. */
            pn_buf weak = PN_BUF_INIT;
            wrc = pn_etag_weaken(v, vl, &weak) == 0
                      ? pn_http1_resp_header(&r->head, &r->resp, n, nl, weak.data, weak.len)
                      : PN_WRITE_NOMEM;
            pn_buf_free(&weak);
        } else {
            wrc = pn_http1_resp_header(&r->head, &r->resp, n, nl, v, vl);
        }
        if (wrc != PN_WRITE_OK) {
            if (wrc == PN_WRITE_BAD_HEADER)
                PyErr_Format(PyExc_RuntimeError,
                             "invalid response header %R: %R (names must be tokens; "
                             "values must not contain CR, LF, NUL or control characters)",
                             name, value);
            else if (wrc == PN_WRITE_BAD_LENGTH)
                PyErr_Format(PyExc_RuntimeError, "invalid or conflicting Content-Length %R", value);
            else
                PyErr_NoMemory();
            goto done;
        }
    }
    ok = 0;
done:
    for (Py_ssize_t i = 0; i < npairs; i++)
        Py_DECREF(pairs[i]);
    if (pairs != pairs_stack)
        PyMem_Free(pairs);
    if (ok < 0) {
        r->codec = PN_CODEC_IDENTITY;
        r->compress = 0;
        return -1;
    }
    r->started = 1;
    return 0;
}

/* Write head (if still pending) + framed body.  Returns the pn_conn_write
 * status, or -2 with a Python exception set. */
static int request_write_body(RequestObject *r, const char *data, size_t len, int final)
{
    pn_conn *c = r->conn;
    if (!r->head_sent && request_compress_begin(r, len, !final) < 0) {
        PyErr_NoMemory();
        return -2;
    }
    if (r->enc != NULL) {
        if (request_compress_piece(r, data, len, final) < 0) {
            pn_conn_close(c);
            runtime_error("response compression failed", NULL);
            return -2;
        }
        data = r->zbuf.data;
        len = r->zbuf.len;
    }
    if (!r->head_sent) {
        /* Unread body the client may still be holding back (Expect) or a
         * worker that is draining: say Connection: close up front. */
        if (c->closing_soon || (r->expect_continue && !c->sent_continue && !c->body.done))
            r->resp.flags |= PN_RESP_CLOSE;
        pn_http1_head_opts opts = {pn_worker_date(c->worker),
                                   r->worker->cfg->server_header ? "pounce" : NULL};
        if (pn_http1_resp_finish_head(&r->head, &r->resp, &opts, final ? (int64_t)len : -1) !=
            PN_WRITE_OK) {
            PyErr_NoMemory();
            return -2;
        }
    }
    pn_http1_frame f;
    int frc = pn_http1_resp_body_frame(&r->resp, len, final, &f);
    if (frc == PN_WRITE_TOO_MUCH) {
        pn_conn_close(c);
        runtime_error("Response content longer than Content-Length", NULL);
        return -2;
    }
    struct iovec iov[4];
    int n = 0;
    if (!r->head_sent) {
        iov[n].iov_base = r->head.data;
        iov[n++].iov_len = r->head.len;
    }
    if (f.prefix_len) {
        iov[n].iov_base = f.prefix;
        iov[n++].iov_len = f.prefix_len;
    }
    if (f.send_len) {
        iov[n].iov_base = (void *)data;
        iov[n++].iov_len = f.send_len;
    }
    if (f.suffix_len) {
        iov[n].iov_base = f.suffix;
        iov[n++].iov_len = f.suffix_len;
    }
    int rc = n ? pn_conn_write(c, iov, n) : PN_CONN_OK;
    if (!r->head_sent) {
        r->head_sent = 1;
        pn_buf_free(&r->head);
    }
    r->bytes_sent += f.send_len;
    if (frc == PN_WRITE_TOO_LITTLE) {
        r->resp.flags |= PN_RESP_CLOSE;
        runtime_error("Response content shorter than Content-Length", NULL);
        return -3;
    }
    return rc;
}

static void request_log(RequestObject *r)
{
    const pn_config *cfg = r->worker->cfg;
    if (r->conn && cfg->access_log && cfg->log_level <= PN_LOG_INFO)
        pn_conn_access_log(r->conn, r->logline.data, r->log_method_len,
                           r->logline.data + r->log_method_len, r->logline.len - r->log_method_len,
                           r->version_minor, r->resp.status, r->bytes_sent, now_ns() - r->t0_ns);
}

/* The request cycle is over (complete, or the client went away): a pending
 * receive() gets http.disconnect, a pending send() returns. */
static void request_wake_waiters(RequestObject *r)
{
    pn_modstate *st = worker_state(r->worker);
    if (r->recv_future) {
        PyObject *m = make_disconnect(st);
        if (m) {
            future_resolve(st, &r->recv_future, m);
            Py_DECREF(m);
        } else {
            PyErr_WriteUnraisable((PyObject *)r);
        }
    }
    future_resolve(st, &r->send_future, Py_None);
}

/* The response is complete (or abandoned): hand the connection back to the
 * runtime and drop the conn's reference to us. */
static void request_detach(RequestObject *r, int keep_alive)
{
    pn_conn *c = r->conn;
    request_compress_end(r);
    if (c == NULL)
        return;
    r->conn = NULL;
    c->udata = NULL;
    pn_conn_response_done(c, keep_alive);
    /* Anything still waiting learns that the cycle is over. */
    request_wake_waiters(r);
    Py_DECREF(r); /* the connection's reference */
}

/* A whole server-made response (an error, a denial): write it, log it,
 * hand the connection back to close. */
static void request_reply_simple(RequestObject *r, int status)
{
    pn_conn *c = r->conn;
    if (c == NULL)
        return;
    pn_buf out = PN_BUF_INIT;
    pn_http1_head_opts opts = {pn_worker_date(c->worker),
                               r->worker->cfg->server_header ? "pounce" : NULL};
    if (pn_http1_write_simple(&out, status, &opts, 1, NULL) == 0) {
        struct iovec iov = {out.data, out.len};
        pn_conn_write(c, &iov, 1);
    }
    pn_buf_free(&out);
    r->resp.status = status;
    r->bytes_sent = 0;
    r->started = r->head_sent = r->complete = 1;
    request_log(r);
    request_detach(r, 0);
}

static void request_complete(RequestObject *r)
{
    r->complete = 1;
    request_log(r);
    request_detach(r, !(r->resp.flags & PN_RESP_CLOSE));
}

static PyObject *wait_or_ready(RequestObject *r, int rc)
{
    pn_modstate *st = worker_state(r->worker);
    if (rc == PN_CONN_WAIT && r->conn && !r->complete) {
        PyObject *fut = PyObject_CallNoArgs(r->worker->create_future);
        if (fut == NULL)
            return NULL;
        Py_XSETREF(r->send_future, Py_NewRef(fut));
        pn_conn_set_stall_timer(r->conn, 1);
        return fut;
    }
    return Py_NewRef(st->ready_none);
}

static PyObject *request_send_body(RequestObject *r, PyObject *msg)
{
    pn_modstate *st = worker_state(r->worker);
    if (!r->started)
        return runtime_error("Unexpected ASGI message 'http.response.body' sent, before "
                             "'http.response.start'.",
                             NULL);
    if (r->complete)
        return runtime_error("Unexpected ASGI message 'http.response.body' sent, after "
                             "response already completed.",
                             NULL);
    PyObject *body = NULL, *more_obj = NULL;
    if (msg_get(msg, PN_ID(st, body), &body) < 0)
        return NULL;
    int more = 0;
    int rc = msg_get(msg, PN_ID(st, more_body), &more_obj);
    if (rc < 0) {
        Py_XDECREF(body);
        return NULL;
    }
    if (rc == 1) {
        more = PyObject_IsTrue(more_obj);
        Py_DECREF(more_obj);
        if (more < 0) {
            Py_XDECREF(body);
            return NULL;
        }
    }
    Py_buffer view = {0};
    int have_view = 0;
    if (body != NULL && body != Py_None) {
        if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0) {
            Py_DECREF(body);
            PyErr_SetString(PyExc_RuntimeError, "'http.response.body' body must be bytes");
            return NULL;
        }
        have_view = 1;
    }
    const char *data = have_view ? view.buf : "";
    size_t len = have_view ? (size_t)view.len : 0;
    PyObject *result = NULL;
    if (r->conn == NULL) {
        /* The client is gone: the app may finish its work; output is
         * discarded, as other servers do. */
        if (!more)
            r->complete = 1;
        result = Py_NewRef(st->ready_none);
        goto done;
    }
    int wrc = request_write_body(r, data, len, !more);
    if (wrc == -2)
        goto done;
    if (wrc == -3) {
        request_complete(r);
        goto done;
    }
    if (!more) {
        request_complete(r);
        result = Py_NewRef(st->ready_none);
        goto done;
    }
    if (wrc == PN_CONN_GONE) {
        result = Py_NewRef(st->ready_none);
        goto done;
    }
    result = wait_or_ready(r, wrc);
done:
    if (have_view)
        PyBuffer_Release(&view);
    Py_XDECREF(body);
    return result;
}

static PyObject *request_send_pathsend(RequestObject *r, PyObject *msg)
{
    pn_modstate *st = worker_state(r->worker);
    if (!r->started)
        return runtime_error("Unexpected ASGI message 'http.response.pathsend' sent, before "
                             "'http.response.start'.",
                             NULL);
    if (r->complete || r->head_sent)
        return runtime_error("'http.response.pathsend' must be the only body of a response", NULL);
    PyObject *path = NULL;
    int rc = msg_get(msg, PN_ID(st, path), &path);
    if (rc <= 0) {
        if (rc == 0)
            runtime_error("'http.response.pathsend' needs a 'path'", NULL);
        return NULL;
    }
    PyObject *fspath = NULL;
    if (!PyUnicode_FSConverter(path, &fspath)) {
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    int fd;
    Py_BEGIN_ALLOW_THREADS fd = open(PyBytes_AS_STRING(fspath), O_RDONLY | O_CLOEXEC);
    Py_END_ALLOW_THREADS if (fd < 0)
    {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, fspath);
        Py_DECREF(fspath);
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        PyErr_Format(PyExc_RuntimeError, "'http.response.pathsend' path %R is not a regular file",
                     fspath);
        Py_DECREF(fspath);
        return NULL;
    }
    Py_DECREF(fspath);
    if (r->conn == NULL) {
        close(fd);
        r->complete = 1;
        return Py_NewRef(st->ready_none);
    }
    uint64_t size = (uint64_t)sb.st_size;
    pn_conn *c = r->conn;
    pn_http1_head_opts opts = {pn_worker_date(c->worker),
                               r->worker->cfg->server_header ? "pounce" : NULL};
    if (c->closing_soon)
        r->resp.flags |= PN_RESP_CLOSE;
    if (pn_http1_resp_finish_head(&r->head, &r->resp, &opts, (int64_t)size) != PN_WRITE_OK) {
        close(fd);
        return PyErr_NoMemory();
    }
    pn_http1_frame f;
    int frc = pn_http1_resp_body_frame(&r->resp, (size_t)size, 1, &f);
    if (frc != PN_WRITE_OK) {
        close(fd);
        pn_conn_close(c);
        return runtime_error("file size does not match the response's Content-Length", NULL);
    }
    struct iovec iov[2];
    int n = 0;
    iov[n].iov_base = r->head.data;
    iov[n++].iov_len = r->head.len;
    if (f.prefix_len) {
        iov[n].iov_base = f.prefix;
        iov[n++].iov_len = f.prefix_len;
    }
    pn_conn_write(c, iov, n);
    r->head_sent = 1;
    pn_buf_free(&r->head);
    if (f.send_len) {
        pn_conn_sendfile(c, fd, 0, f.send_len);
        r->bytes_sent += f.send_len;
    } else {
        close(fd);
    }
    if (f.suffix_len) {
        /* Chunked framing never applies here (the length is known), but
         * keep the writer's contract. */
        struct iovec sv = {f.suffix, f.suffix_len};
        pn_conn_write(c, &sv, 1);
    }
    request_complete(r);
    return Py_NewRef(st->ready_none);
}

static PyObject *request_send(PyObject *op, PyObject *msg)
{
    RequestObject *r = (RequestObject *)op;
    if (r->ws != NULL)
        return ws_send(r, msg);
    pn_modstate *st = worker_state(r->worker);
    PyObject *type = NULL;
    int rc = msg_get(msg, PN_ID(st, type), &type);
    if (rc < 0)
        return NULL;
    if (rc == 0)
        return runtime_error("ASGI message has no 'type'", NULL);
    PyObject *result = NULL;
    if (!PyUnicode_Check(type)) {
        PyErr_Format(PyExc_RuntimeError, "ASGI message 'type' must be a str, got %R", type);
    } else if (type == PN_ID(st, http_response_body) ||
               PyUnicode_Compare(type, PN_ID(st, http_response_body)) == 0) {
        result = request_send_body(r, msg);
    } else if (type == PN_ID(st, http_response_start) ||
               PyUnicode_Compare(type, PN_ID(st, http_response_start)) == 0) {
        if (request_start(r, msg) == 0)
            result = Py_NewRef(st->ready_none);
    } else if (PyUnicode_Compare(type, PN_ID(st, http_response_pathsend)) == 0) {
        result = request_send_pathsend(r, msg);
    } else if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message type %R for an http scope", type);
    }
    Py_DECREF(type);
    return result;
}

/* ---- task completion ---------------------------------------------------- */

/* The app's coroutine ended: exc is the exception it raised (borrowed) or
 * NULL when it returned.  Runs synchronously inside the Task's last step,
 * so completing a request costs no done-callback round trip. */
static void request_finish(RequestObject *r, PyObject *exc)
{
    if (r->finished)
        return;
    r->finished = 1;
    WorkerObject *w = r->worker;
    w->active--;
    if (exc != NULL)
        report_error(w, "Exception in ASGI application", exc);
    Py_CLEAR(r->task);
    if (r->ws != NULL && !ws_is_response(r)) {
        ws_finish(r, exc);
        return;
    }
    if (r->conn != NULL && !r->complete) {
        if (!r->started) {
            /* Nothing was sent: the client gets a 500 and a closed
             * connection (the request body may be half-read). */
            /* (An app that saw http.disconnect may return without a word.) */
            if (exc == NULL && !r->disconnected)
                report_error(w, "ASGI callable returned without sending a response", NULL);
            request_reply_simple(r, 500);
        } else {
            /* The response started but did not finish: the client must not
             * mistake a truncated body for a complete one. */
            if (exc == NULL)
                report_error(w, "ASGI callable returned without completing the response", NULL);
            pn_conn_close(r->conn);
            request_detach(r, 0);
        }
    }
}

/* ---- AppRun: the app's coroutine, as the Task sees it ------------------------
 *
 * A thin coroutine-protocol shim around the coroutine the app returned.  The
 * Task drives it exactly as it would drive the app's coroutine (send/throw,
 * am_send), so current_task(), cancellation, contextvars, anyio and
 * asyncio.timeout behave as usual; the shim only notices the end: it
 * finishes the request at once and reports an app exception itself
 * (KeyboardInterrupt/SystemExit still propagate), so the Task never holds
 * an unretrieved exception.
 */
typedef struct {
    PyObject_HEAD PyObject *coro; /* strong: the app's coroutine */
    RequestObject *req;           /* strong until the coroutine ends */
} AppRunObject;

static int apprun_traverse(AppRunObject *a, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(a));
    Py_VISIT(a->coro);
    Py_VISIT(a->req);
    return 0;
}

static int apprun_clear(AppRunObject *a)
{
    Py_CLEAR(a->coro);
    Py_CLEAR(a->req);
    return 0;
}

static void apprun_dealloc(AppRunObject *a)
{
    PyTypeObject *tp = Py_TYPE(a);
    PyObject_GC_UnTrack(a);
    if (a->req && !a->req->finished) {
        /* Dropped without finishing (loop closed under it): only account. */
        a->req->finished = 1;
        a->req->worker->active--;
    }
    apprun_clear(a);
    tp->tp_free((PyObject *)a);
    Py_DECREF(tp);
}

/* The coroutine ended with an exception (set).  Finish the request; keep
 * the exception only for what must escape the Task. */
static PySendResult apprun_ended_with_error(AppRunObject *a, PyObject **result)
{
    PyObject *exc = fetch_exception();
    RequestObject *r = a->req;
    a->req = NULL;
    int escape = exc && (PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt) ||
                         PyErr_GivenExceptionMatches(exc, PyExc_SystemExit));
    int cancelled = exc && PyErr_GivenExceptionMatches(exc, PyExc_BaseException) &&
                    !PyErr_GivenExceptionMatches(exc, PyExc_Exception) && !escape;
    if (r) {
        /* A cancelled request (shutdown) is not an application error. */
        request_finish(r, cancelled ? NULL : exc);
        Py_DECREF(r);
    }
    if (escape || cancelled) {
        /* Let the Task see cancellation and process-ending exceptions. */
        PyErr_SetRaisedException_compat(exc);
        *result = NULL;
        return PYGEN_ERROR;
    }
    Py_XDECREF(exc);
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

static PySendResult apprun_handle(AppRunObject *a, PySendResult rc, PyObject **result)
{
    if (rc == PYGEN_NEXT)
        return rc;
    if (rc == PYGEN_RETURN) {
        RequestObject *r = a->req;
        a->req = NULL;
        if (r) {
            request_finish(r, NULL);
            Py_DECREF(r);
        }
        return rc;
    }
    return apprun_ended_with_error(a, result);
}

static PySendResult apprun_am_send(PyObject *self, PyObject *arg, PyObject **result)
{
    AppRunObject *a = (AppRunObject *)self;
    if (a->coro == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already finished ASGI app run");
        *result = NULL;
        return PYGEN_ERROR;
    }
    /* One step of the app: its writes go out together when it yields or
     * ends (the conn outlives the step: it is only freed inside poll). */
    pn_conn *c = a->req ? a->req->conn : NULL;
    if (c)
        pn_conn_cork(c);
    PySendResult rc = PyIter_Send(a->coro, arg ? arg : Py_None, result);
    if (c)
        pn_conn_uncork(c);
    return apprun_handle(a, rc, result);
}

/* Python-level send()/throw() convert a return into StopIteration. */
static PyObject *apprun_result(PySendResult rc, PyObject *result)
{
    if (rc == PYGEN_NEXT)
        return result;
    if (rc == PYGEN_RETURN) {
        raise_stop(result);
        Py_DECREF(result);
        return NULL;
    }
    return NULL;
}

static PyObject *apprun_send(PyObject *self, PyObject *arg)
{
    PyObject *result = NULL;
    PySendResult rc = apprun_am_send(self, arg, &result);
    return apprun_result(rc, result);
}

static PyObject *apprun_iternext(PyObject *self)
{
    return apprun_send(self, Py_None);
}

static PyObject *apprun_throw(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    AppRunObject *a = (AppRunObject *)self;
    if (a->coro == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot throw into a finished ASGI app run");
        return NULL;
    }
    PyObject *meth = PyObject_GetAttrString(a->coro, "throw");
    if (meth == NULL)
        return NULL;
    PyObject *value = PyObject_Vectorcall(meth, args, (size_t)nargs, NULL);
    Py_DECREF(meth);
    PyObject *result = NULL;
    PySendResult rc;
    if (value != NULL) {
        result = value;
        rc = PYGEN_NEXT;
    } else if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
        /* The coroutine returned in response to the throw. */
        PyObject *exc = fetch_exception();
        PyObject *v = exc ? PyObject_GetAttrString(exc, "value") : NULL;
        Py_XDECREF(exc);
        if (v == NULL) {
            PyErr_Clear();
            v = Py_NewRef(Py_None);
        }
        result = v;
        rc = PYGEN_RETURN;
    } else {
        rc = PYGEN_ERROR;
    }
    rc = apprun_handle(a, rc, &result);
    return apprun_result(rc, result);
}

static PyObject *apprun_close(PyObject *self, PyObject *unused)
{
    (void)unused;
    AppRunObject *a = (AppRunObject *)self;
    if (a->coro == NULL)
        Py_RETURN_NONE;
    PyObject *res = PyObject_CallMethod(a->coro, "close", NULL);
    if (a->req) {
        RequestObject *r = a->req;
        a->req = NULL;
        request_finish(r, NULL);
        Py_DECREF(r);
    }
    return res;
}

static PyObject *apprun_get_coro(PyObject *self, void *closure)
{
    (void)closure;
    AppRunObject *a = (AppRunObject *)self;
    return Py_NewRef(a->coro ? a->coro : Py_None);
}

static PyMethodDef apprun_methods[] = {
    {"send", apprun_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))apprun_throw, METH_FASTCALL, NULL},
    {"close", apprun_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef apprun_getset[] = {
    {"cr_app", apprun_get_coro, NULL, "The application's own coroutine.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot apprun_slots[] = {
    {Py_tp_dealloc, apprun_dealloc},
    {Py_tp_traverse, apprun_traverse},
    {Py_tp_clear, apprun_clear},
    {Py_am_await, ready_await},
    {Py_am_send, apprun_am_send},
    {Py_tp_iter, ready_await},
    {Py_tp_iternext, apprun_iternext},
    {Py_tp_methods, apprun_methods},
    {Py_tp_getset, apprun_getset},
    {Py_tp_doc, "The ASGI app's coroutine for one request, as driven by its asyncio Task."},
    {0, NULL},
};

static PyType_Spec apprun_spec = {
    .name = "pounce._pounce.AppRun",
    .basicsize = sizeof(AppRunObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = apprun_slots,
};

/* ---- Request type --------------------------------------------------------- */

static int request_traverse(RequestObject *r, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(r));
    Py_VISIT(r->worker);
    Py_VISIT(r->task);
    Py_VISIT(r->recv_future);
    Py_VISIT(r->send_future);
    if (r->ws != NULL)
        return ws_traverse(r->ws, visit, arg);
    return 0;
}

static int request_clear(RequestObject *r)
{
    Py_CLEAR(r->task);
    Py_CLEAR(r->recv_future);
    Py_CLEAR(r->send_future);
    Py_CLEAR(r->worker);
    return 0;
}

static void request_dealloc(RequestObject *r)
{
    PyTypeObject *tp = Py_TYPE(r);
    PyObject_GC_UnTrack(r);
    request_clear(r);
    request_compress_end(r);
    if (r->dec)
        pn_decoder_free(r->dec);
    ws_state_free(r->ws);
    r->ws = NULL;
    pn_buf_free(&r->dbuf);
    pn_buf_free(&r->head);
    pn_buf_free(&r->logline);
    tp->tp_free((PyObject *)r);
    Py_DECREF(tp);
}

/* receive/send handed to the app are built from these directly (cheaper
 * than an attribute lookup that creates a bound method). */
static PyMethodDef request_receive_def = {"receive", request_receive, METH_NOARGS,
                                          "ASGI receive()"};
static PyMethodDef request_send_def = {"send", request_send, METH_O, "ASGI send(message)"};

static PyMethodDef request_methods[] = {
    {"receive", request_receive, METH_NOARGS, "ASGI receive()"},
    {"send", request_send, METH_O, "ASGI send(message)"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot request_slots[] = {
    {Py_tp_dealloc, request_dealloc},
    {Py_tp_traverse, request_traverse},
    {Py_tp_clear, request_clear},
    {Py_tp_methods, request_methods},
    {Py_tp_doc, "One HTTP request cycle: owns receive() and send()."},
    {0, NULL},
};

static PyType_Spec request_spec = {
    .name = "pounce._pounce.Request",
    .basicsize = sizeof(RequestObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = request_slots,
};

/* ---- scope ------------------------------------------------------------------ */

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Percent-decode the path and decode it as UTF-8 (invalid sequences become
 * U+FFFD, as urllib.parse.unquote does). */
static PyObject *decode_path(const char *p, size_t n)
{
    if (memchr(p, '%', n) == NULL)
        return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "replace");
    char stackbuf[512] = {0}; /* (zeroed: gcc cannot see that only [0, o) is read) */
    char *buf = n <= sizeof(stackbuf) ? stackbuf : PyMem_Malloc(n);
    if (buf == NULL)
        return PyErr_NoMemory();
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n) {
            int hi = hexval((unsigned char)p[i + 1]), lo = hexval((unsigned char)p[i + 2]);
            if (hi >= 0 && lo >= 0) {
                buf[o++] = (char)(hi << 4 | lo);
                i += 2;
                continue;
            }
        }
        buf[o++] = p[i];
    }
    PyObject *s = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)o, "replace");
    if (buf != stackbuf)
        PyMem_Free(buf);
    return s;
}

static PyObject *lower_bytes(const char *p, size_t n)
{
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (b == NULL)
        return NULL;
    char *d = PyBytes_AS_STRING(b);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        d[i] = (char)((ch >= 'A' && ch <= 'Z') ? ch | 0x20 : ch);
    }
    return b;
}

static PyObject *client_tuple(const pn_conn *c)
{
    char host[INET6_ADDRSTRLEN];
    if (c->peer.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->peer;
        size_t n = pn_log_format_ipv4(host, (const unsigned char *)&sin->sin_addr);
        PyObject *h = PyUnicode_DecodeASCII(host, (Py_ssize_t)n, "strict");
        PyObject *port = h ? PyLong_FromLong((long)ntohs(sin->sin_port)) : NULL;
        PyObject *t = port ? PyTuple_Pack(2, h, port) : NULL;
        Py_XDECREF(h);
        Py_XDECREF(port);
        return t;
    }
    if (c->peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&c->peer;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        return Py_BuildValue("(si)", host, (int)ntohs(sin6->sin6_port));
    }
    Py_RETURN_NONE;
}

/* Header names common enough that sharing one bytes object per name saves
 * an allocation per request (lower case: that is what the scope carries). */
static const char *const header_names[PN_HNAME_COUNT] = {
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "connection",
    "content-type",
    "content-length",
    "cookie",
    "referer",
    "origin",
    "authorization",
    "cache-control",
    "pragma",
    "upgrade-insecure-requests",
    "if-none-match",
    "if-modified-since",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "x-request-id",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "sec-fetch-user",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "dnt",
    "te",
    "transfer-encoding",
};

static PyObject *method_str(pn_modstate *st, const char *m, size_t n)
{
    for (int i = PN_ID_GET; i <= PN_ID_TRACE; i++) {
        PyObject *k = st->ids[i]; /* interned ASCII: one byte per character */
        if ((size_t)PyUnicode_GET_LENGTH(k) == n && memcmp(PyUnicode_DATA(k), m, n) == 0)
            return Py_NewRef(k);
    }
    return PyUnicode_DecodeASCII(m, (Py_ssize_t)n, "strict");
}

static PyObject *header_name(pn_modstate *st, const char *p, size_t n)
{
    for (int i = 0; i < PN_HNAME_COUNT; i++) {
        PyObject *b = st->hnames[i];
        if ((size_t)PyBytes_GET_SIZE(b) != n)
            continue;
        const char *k = PyBytes_AS_STRING(b);
        size_t j = 0;
        for (; j < n; j++) {
            unsigned char ch = (unsigned char)p[j];
            if ((char)((ch >= 'A' && ch <= 'Z') ? ch | 0x20 : ch) != k[j])
                break;
        }
        if (j == n)
            return Py_NewRef(b);
    }
    return lower_bytes(p, n);
}

static int set_key(pn_modstate *st, PyObject *d, int key, PyObject *v /* stolen */)
{
    if (v == NULL)
        return -1;
    int rc = PyDict_SetItem(d, st->ids[key], v);
    Py_DECREF(v);
    return rc;
}

static int build_templates(WorkerObject *w)
{
    pn_modstate *st = worker_state(w);
    PyObject *t = PyDict_New();
    if (t == NULL)
        return -1;
    /* Insertion order is the order apps see when they print a scope. */
    static const int order[] = {PN_ID_type,   PN_ID_asgi,      PN_ID_http_version, PN_ID_server,
                                PN_ID_client, PN_ID_scheme,    PN_ID_method,       PN_ID_root_path,
                                PN_ID_path,   PN_ID_raw_path,  PN_ID_query_string, PN_ID_headers,
                                PN_ID_state,  PN_ID_extensions};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (order[i] == PN_ID_state && !(w->state != Py_None && PyDict_Check(w->state)))
            continue;
        if (PyDict_SetItem(t, st->ids[order[i]], Py_None) < 0)
            goto fail;
    }
    if (PyDict_SetItem(t, PN_ID(st, type), PN_ID(st, http)) < 0 ||
        PyDict_SetItem(t, PN_ID(st, scheme), PN_ID(st, http)) < 0 ||
        PyDict_SetItem(t, PN_ID(st, root_path), w->root_path_str) < 0)
        goto fail;
    w->scope_template = t;
    w->ext_template = PyDict_New();
    if (w->ext_template == NULL ||
        PyDict_SetItem(w->ext_template, PN_ID(st, http_response_pathsend), Py_None) < 0 ||
        PyDict_SetItem(w->ext_template, PN_ID(st, pounce_worker), w->worker_id) < 0)
        return -1;
    return 0;
fail:
    Py_DECREF(t);
    return -1;
}

/* decoded: the body reaches the app decompressed, so the scope leaves out
 * the Content-Encoding and Content-Length that described the wire bytes. */
static PyObject *build_scope(WorkerObject *w, pn_conn *c, const pn_http1_request *req, int decoded)
{
    pn_modstate *st = worker_state(w);
    PyObject *scope = PyDict_Copy(w->scope_template);
    if (scope == NULL)
        return NULL;
    PyObject *server = PyTuple_GetItem(w->servers, c->listener); /* borrowed from our tuple */
    if (server == NULL)
        goto fail;
    if (set_key(st, scope, PN_ID_asgi, PyDict_Copy(st->asgi_dict)) < 0 ||
        PyDict_SetItem(scope, PN_ID(st, http_version),
                       req->version_minor ? PN_ID(st, http11) : PN_ID(st, http10)) < 0 ||
        PyDict_SetItem(scope, PN_ID(st, server), server) < 0 ||
        set_key(st, scope, PN_ID_client, client_tuple(c)) < 0 ||
        set_key(st, scope, PN_ID_method, method_str(st, req->method, req->method_len)) < 0)
        goto fail;
    PyObject *path = decode_path(req->path, req->path_len);
    if (path == NULL)
        goto fail;
    if (PyUnicode_GET_LENGTH(w->root_path_str) > 0) {
        PyObject *full = PyUnicode_Concat(w->root_path_str, path);
        Py_DECREF(path);
        path = full;
    }
    if (set_key(st, scope, PN_ID_path, path) < 0)
        goto fail;
    PyObject *raw;
    Py_ssize_t rlen = PyBytes_GET_SIZE(w->root_path_bytes);
    raw = PyBytes_FromStringAndSize(NULL, rlen + (Py_ssize_t)req->path_len);
    if (raw) {
        memcpy(PyBytes_AS_STRING(raw), PyBytes_AS_STRING(w->root_path_bytes), (size_t)rlen);
        memcpy(PyBytes_AS_STRING(raw) + rlen, req->path, req->path_len);
    }
    if (set_key(st, scope, PN_ID_raw_path, raw) < 0 ||
        set_key(st, scope, PN_ID_query_string,
                req->query_len ? PyBytes_FromStringAndSize(req->query, (Py_ssize_t)req->query_len)
                               : Py_NewRef(st->empty_bytes)) < 0)
        goto fail;
    PyObject *headers = PyList_New(0);
    if (headers == NULL)
        goto fail;
    for (size_t i = 0; i < req->num_headers; i++) {
        const pn_http1_header *h = &req->headers[i];
        if (decoded && ((h->name_len == 16 && strncasecmp(h->name, "content-encoding", 16) == 0) ||
                        (h->name_len == 14 && strncasecmp(h->name, "content-length", 14) == 0)))
            continue;
        PyObject *name = header_name(st, h->name, h->name_len);
        PyObject *value =
            name ? PyBytes_FromStringAndSize(h->value, (Py_ssize_t)h->value_len) : NULL;
        PyObject *pair = value ? PyTuple_Pack(2, name, value) : NULL;
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (pair == NULL) {
            Py_DECREF(headers);
            goto fail;
        }
        int arc = PyList_Append(headers, pair);
        Py_DECREF(pair);
        if (arc < 0) {
            Py_DECREF(headers);
            goto fail;
        }
    }
    if (set_key(st, scope, PN_ID_headers, headers) < 0)
        goto fail;
    if (w->state != Py_None && PyDict_Check(w->state)) {
        if (set_key(st, scope, PN_ID_state, PyDict_Copy(w->state)) < 0)
            goto fail;
    }
    PyObject *ext = PyDict_Copy(w->ext_template);
    PyObject *ps = ext ? PyDict_New() : NULL;
    if (ps == NULL || PyDict_SetItem(ext, PN_ID(st, http_response_pathsend), ps) < 0) {
        Py_XDECREF(ps);
        Py_XDECREF(ext);
        goto fail;
    }
    Py_DECREF(ps);
    if (set_key(st, scope, PN_ID_extensions, ext) < 0)
        goto fail;
    return scope;
fail:
    Py_DECREF(scope);
    return NULL;
}

#include "pn_asgi_ws.inc"

/* ---- runtime hooks ---------------------------------------------------------- */

static int hook_on_request(void *ctx, pn_conn *c, const pn_http1_request *req)
{
    WorkerObject *w = ctx;
    pn_modstate *st = worker_state(w);
    struct pn_ws_state *ws = NULL;
    if (req->flags & PN_REQ_UPGRADE) {
        if (ws_check_upgrade(w, c, req, &ws) < 0)
            return 0; /* a bad handshake was answered; the connection closes */
    }
    RequestObject *r = PyObject_GC_New(RequestObject, st->request_type);
    if (r == NULL) {
        ws_state_free(ws);
        PyErr_WriteUnraisable((PyObject *)w);
        return -1;
    }
    memset((char *)r + sizeof(PyObject), 0, sizeof(RequestObject) - sizeof(PyObject));
    r->ws = ws;
    r->worker = (WorkerObject *)Py_NewRef(w);
    r->conn = c;
    r->version_minor = req->version_minor;
    r->head_request = (req->flags & PN_REQ_HEAD) != 0;
    r->expect_continue = (req->flags & PN_REQ_EXPECT_CONTINUE) != 0;
    r->resp.status = 0;
    r->codec = PN_CODEC_IDENTITY;
    if (w->pool != NULL && !r->head_request) {
        /* Negotiate now, while the header slices are valid (RFC 9110
         * §12.5.3; several Accept-Encoding lines form one list). */
        pn_accept_encoding ae;
        pn_accept_encoding_init(&ae);
        for (size_t i = 0; i < req->num_headers; i++) {
            const pn_http1_header *h = &req->headers[i];
            if (h->name_len == 15 && strncasecmp(h->name, "accept-encoding", 15) == 0)
                pn_accept_encoding_feed(&ae, h->value, h->value_len);
        }
        if (ae.fields)
            r->codec = (int)pn_accept_encoding_choose(&ae, w->order, w->norder, NULL);
    }
    r->t0_ns = 0;
    if (w->cfg->access_log && w->cfg->log_level <= PN_LOG_INFO) {
        r->t0_ns = now_ns();
        r->log_method_len = req->method_len;
        pn_buf_append(&r->logline, req->method, req->method_len);
        pn_buf_append(&r->logline, req->target, req->target_len);
    }
    PyObject_GC_Track(r);

    if (w->cfg->decompress_requests && req->body_kind != PN_BODY_NONE) {
        /* One known coding only; anything else goes to the app unchanged. */
        const pn_http1_header *ce = pn_http1_find_header(req, "content-encoding", 16);
        int codec = ce ? pn_codec_from_token(ce->value, ce->value_len) : -1;
        if (codec > 0 && pn_codec_available((pn_codec)codec) &&
            pn_decoder_new(&r->dec, (pn_codec)codec, (uint64_t)w->cfg->max_decompressed_size) != 0)
            r->dec = NULL;
    }
    PyObject *scope = r->ws ? build_ws_scope(w, c, req) : build_scope(w, c, req, r->dec != NULL);
    PyObject *receive = NULL, *send = NULL, *coro = NULL, *task = NULL;
    if (scope == NULL)
        goto fail;
    receive = PyCFunction_New(&request_receive_def, (PyObject *)r);
    send = receive ? PyCFunction_New(&request_send_def, (PyObject *)r) : NULL;
    if (send == NULL)
        goto fail;
    /* The connection holds a reference to its current request. */
    c->udata = Py_NewRef(r);
    w->active++;
    w->served++;
    coro = PyObject_CallFunctionObjArgs(w->app, scope, receive, send, NULL);
    Py_CLEAR(scope);
    Py_CLEAR(receive);
    Py_CLEAR(send);
    if (coro == NULL)
        goto app_failed_pyerr; /* the app raised before returning a coroutine */
    AppRunObject *run = PyObject_GC_New(AppRunObject, st->apprun_type);
    if (run == NULL) {
        Py_DECREF(coro);
        goto app_failed_pyerr;
    }
    run->coro = coro; /* stolen */
    run->req = (RequestObject *)Py_NewRef(r);
    PyObject_GC_Track(run);
    PyObject *targs = PyTuple_Pack(1, (PyObject *)run);
    Py_DECREF(run);
    if (targs == NULL)
        goto app_failed_pyerr;
    /* (A prebuilt kwargs dict: asyncio.Task has no vectorcall, so keyword
     * names would be turned into a fresh dict on every call.) */
    task = PyObject_Call(st->asyncio_task, targs, w->task_kwargs);
    Py_DECREF(targs);
    if (task == NULL && (PyErr_ExceptionMatches(PyExc_SystemExit) ||
                         PyErr_ExceptionMatches(PyExc_KeyboardInterrupt))) {
        /* With eager start the app ran inside the Task constructor and
         * raised SystemExit/KeyboardInterrupt (AppRun already finished the
         * request).  It must end this worker's loop, as it would from a
         * later task step: poll() raises it once the batch is done. */
        PyObject *exc = fetch_exception();
        Py_XSETREF(w->pending_exc, exc);
        if (r->finished) {
            Py_DECREF(r);
            return 0;
        }
        PyErr_SetString(PyExc_RuntimeError, "the application raised SystemExit");
    }
    if (task == NULL)
        goto app_failed_pyerr;
    /* With eager start the whole handler may already have run (and the
     * request finished) inside the Task constructor. */
    if (!r->finished)
        r->task = task; /* owned; cleared by request_finish */
    else
        Py_DECREF(task);
    Py_DECREF(r);
    return 0;

app_failed_pyerr : {
    PyObject *exc = fetch_exception();
    report_error(w, "Exception in ASGI application", exc);
    Py_XDECREF(exc);
}
    /* Treat it as a task that failed before responding. */
    if (!r->finished) {
        r->finished = 1;
        w->active--;
    }
    if (r->conn)
        request_reply_simple(r, 500);
    Py_DECREF(r);
    return 0;
fail:
    PyErr_WriteUnraisable((PyObject *)w);
    Py_XDECREF(scope);
    Py_XDECREF(receive);
    Py_XDECREF(send);
    r->conn = NULL;
    Py_DECREF(r);
    return -1;
}

static void hook_on_body(void *ctx, pn_conn *c)
{
    WorkerObject *w = ctx;
    RequestObject *r = c->udata;
    if (r == NULL || r->recv_future == NULL)
        return;
    Py_INCREF(r);
    pn_conn_set_stall_timer(c, 0);
    /* If the app cancelled its receive(), leave the body where it is for
     * the next receive() instead of handing it to a dead future. */
    PyObject *done = PyObject_CallMethodNoArgs(r->recv_future, PN_ID(worker_state(w), done));
    if (done != Py_False) {
        if (done == NULL)
            PyErr_WriteUnraisable(r->recv_future);
        Py_XDECREF(done);
        Py_CLEAR(r->recv_future);
        Py_DECREF(r);
        return;
    }
    Py_DECREF(done);
    PyObject *msg = request_try_receive(r);
    if (msg != NULL) {
        future_resolve(worker_state(w), &r->recv_future, msg);
        Py_DECREF(msg);
    } else if (PyErr_Occurred()) {
        PyErr_WriteUnraisable((PyObject *)r);
    } else if (r->conn) {
        /* Spurious wakeup: keep waiting. */
        r->conn->body_wanted = 1;
    }
    Py_DECREF(r);
}

static void hook_on_drain(void *ctx, pn_conn *c)
{
    WorkerObject *w = ctx;
    RequestObject *r = c->udata;
    if (r == NULL)
        return;
    pn_conn_set_stall_timer(c, 0);
    future_resolve(worker_state(w), &r->send_future, Py_None);
}

static void hook_on_close(void *ctx, pn_conn *c)
{
    WorkerObject *w = ctx;
    RequestObject *r = c->udata;
    c->udata = NULL;
    if (r == NULL)
        return;
    pn_modstate *st = worker_state(w);
    r->conn = NULL;
    r->disconnected = 1;
    if (r->ws != NULL && !ws_is_response(r)) {
        ws_on_close(r);
        future_resolve(st, &r->send_future, Py_None);
        Py_DECREF(r); /* the connection's reference */
        return;
    }
    request_wake_waiters(r);
    Py_DECREF(r); /* the connection's reference */
}

static void hook_wakeup(void *ctx)
{
    WorkerObject *w = ctx;
    if (w->closed)
        return;
    PyObject *res = PyObject_CallOneArg(w->call_soon, w->poll_cb);
    if (res == NULL)
        PyErr_WriteUnraisable((PyObject *)w);
    Py_XDECREF(res);
}

static void *hook_release(void *ctx)
{
    (void)ctx;
    return PyEval_SaveThread();
}

static void hook_reacquire(void *ctx, void *token)
{
    (void)ctx;
    PyEval_RestoreThread((PyThreadState *)token);
}

static const pn_worker_hooks worker_hooks = {
    .on_request = hook_on_request,
    .on_body = hook_on_body,
    .on_drain = hook_on_drain,
    .on_close = hook_on_close,
    .wakeup = hook_wakeup,
    .on_ws = hook_on_ws,
};

/* The same, releasing the GIL around socket syscalls: for GIL builds with
 * several thread workers, whose network work then overlaps. */
static const pn_worker_hooks worker_hooks_release = {
    .on_request = hook_on_request,
    .on_body = hook_on_body,
    .on_drain = hook_on_drain,
    .on_close = hook_on_close,
    .wakeup = hook_wakeup,
    .on_ws = hook_on_ws,
    .release = hook_release,
    .reacquire = hook_reacquire,
};

/* ---- Worker type -------------------------------------------------------------- */

static int worker_traverse(WorkerObject *w, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(w));
    Py_VISIT(w->config);
    Py_VISIT(w->app);
    Py_VISIT(w->loop);
    Py_VISIT(w->state);
    Py_VISIT(w->on_error);
    Py_VISIT(w->servers);
    Py_VISIT(w->listen_fds);
    Py_VISIT(w->task_kwargs);
    Py_VISIT(w->call_soon);
    Py_VISIT(w->create_future);
    Py_VISIT(w->poll_cb);
    Py_VISIT(w->root_path_str);
    Py_VISIT(w->root_path_bytes);
    Py_VISIT(w->worker_id);
    Py_VISIT(w->scope_template);
    Py_VISIT(w->ext_template);
    Py_VISIT(w->pending_exc);
    return 0;
}

static int worker_clear(WorkerObject *w)
{
    Py_CLEAR(w->poll_cb);
    Py_CLEAR(w->call_soon);
    Py_CLEAR(w->create_future);
    Py_CLEAR(w->task_kwargs);
    Py_CLEAR(w->app);
    Py_CLEAR(w->loop);
    Py_CLEAR(w->state);
    Py_CLEAR(w->on_error);
    Py_CLEAR(w->servers);
    Py_CLEAR(w->listen_fds);
    Py_CLEAR(w->root_path_str);
    Py_CLEAR(w->root_path_bytes);
    Py_CLEAR(w->worker_id);
    Py_CLEAR(w->scope_template);
    Py_CLEAR(w->ext_template);
    Py_CLEAR(w->pending_exc);
    return 0;
}

static void worker_free_runtime(WorkerObject *w)
{
    if (w->w) {
        pn_worker *pw = w->w;
        w->closed = 1;
        pn_worker_free(pw); /* calls on_close for live connections */
        w->w = NULL;
    }
}

static void worker_dealloc(WorkerObject *w)
{
    PyTypeObject *tp = Py_TYPE(w);
    PyObject_GC_UnTrack(w);
    worker_free_runtime(w);
    worker_clear(w);
    if (w->pool) {
        pn_compress_pool_free(w->pool);
        w->pool = NULL;
    }
    Py_CLEAR(w->config);
    tp->tp_free((PyObject *)w);
    Py_DECREF(tp);
}

static PyObject *worker_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"config",   "app",       "loop",        "listeners",        "state",
                             "on_error", "worker_id", "release_gil", "shared_listeners", NULL};
    PyObject *config, *app, *loop, *listeners, *state = Py_None, *on_error = Py_None;
    int worker_id = 0, release_gil = 0, shared_listeners = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|OOipp", kwlist, &config, &app, &loop,
                                     &listeners, &state, &on_error, &worker_id, &release_gil,
                                     &shared_listeners))
        return NULL;
    pn_modstate *st = pn_get_state_by_type(tp);
    if (st == NULL)
        return NULL;
    const pn_config *cfg = pn_config_struct(st, config);
    if (cfg == NULL)
        return NULL;
    if (!PyCallable_Check(app)) {
        PyErr_SetString(PyExc_TypeError, "app must be callable");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(listeners, "listeners must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    WorkerObject *w = (WorkerObject *)tp->tp_alloc(tp, 0);
    if (w == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    w->st = st;
    w->config = Py_NewRef(config);
    w->cfg = cfg;
    w->app = Py_NewRef(app);
    w->loop = Py_NewRef(loop);
    w->state = Py_NewRef(state);
    w->on_error = Py_NewRef(on_error);
    w->worker_id = PyLong_FromLong(worker_id);
    w->servers = PyTuple_New(n);
    w->listen_fds = PyTuple_New(n);
    int *fds = PyMem_Calloc((size_t)(n ? n : 1), sizeof(int));
    int *unix_flags = PyMem_Calloc((size_t)(n ? n : 1), sizeof(int));
    if (w->worker_id == NULL || w->servers == NULL || w->listen_fds == NULL || fds == NULL ||
        unix_flags == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i); /* borrowed from seq */
        PyObject *fd_obj, *server;
        int is_unix = 0;
        if (!PyArg_ParseTuple(item, "OO|p", &fd_obj, &server, &is_unix))
            goto fail;
        int fd = PyObject_AsFileDescriptor(fd_obj);
        if (fd < 0)
            goto fail;
        fds[i] = fd;
        unix_flags[i] = is_unix;
        PyTuple_SET_ITEM(w->servers, i, Py_NewRef(server));
        PyObject *fdo = PyLong_FromLong(fd);
        if (fdo == NULL)
            goto fail;
        PyTuple_SET_ITEM(w->listen_fds, i, fdo);
    }
    w->task_kwargs = st->eager_kwargs ? PyDict_Copy(st->eager_kwargs) : PyDict_New();
    if (w->task_kwargs == NULL || PyDict_SetItemString(w->task_kwargs, "loop", loop) < 0)
        goto fail;
    w->call_soon = PyObject_GetAttrString(loop, "call_soon");
    w->create_future = w->call_soon ? PyObject_GetAttrString(loop, "create_future") : NULL;
    if (w->create_future == NULL)
        goto fail;
    w->root_path_str = PyUnicode_FromString(cfg->root_path);
    w->root_path_bytes = w->root_path_str ? PyUnicode_AsUTF8String(w->root_path_str) : NULL;
    if (w->root_path_bytes == NULL)
        goto fail;
    w->release_gil = release_gil;
    if (cfg->compression) {
        pn_compress_opts copts = {(int)cfg->gzip_level, (int)cfg->zstd_level,
                                  (int)cfg->brotli_quality, 0};
        const char *bad = NULL;
        size_t badlen = 0;
        if (pn_codec_parse_order(cfg->compression_order, w->order, &w->norder, &bad, &badlen) < 0) {
            (void)bad;
            (void)badlen;
            PyErr_SetString(PyExc_ValueError, "compression_order: unknown or repeated codec");
            goto fail;
        }
        w->policy.min_size = cfg->compression_min_size;
        w->policy.types = cfg->compression_types[0] ? cfg->compression_types : NULL;
        if (w->norder > 0 && pn_compress_pool_new(&w->pool, &copts) < 0) {
            PyErr_NoMemory();
            goto fail;
        }
    }
    w->w = pn_worker_new(cfg, fds, unix_flags, (int)n,
                         release_gil ? &worker_hooks_release : &worker_hooks, w);
    if (w->w == NULL) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    pn_worker_set_shared(w->w, shared_listeners);
    w->poll_cb = PyObject_GetAttrString((PyObject *)w, "poll");
    if (w->poll_cb == NULL || build_templates(w) < 0)
        goto fail;
    PyMem_Free(fds);
    PyMem_Free(unix_flags);
    Py_DECREF(seq);
    return (PyObject *)w;
fail:
    PyMem_Free(fds);
    PyMem_Free(unix_flags);
    Py_DECREF(seq);
    Py_DECREF(w);
    return NULL;
}

static PyObject *worker_check(WorkerObject *w)
{
    if (w->w == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "worker is closed");
        return NULL;
    }
    return (PyObject *)w;
}

static PyObject *worker_poll(PyObject *op, PyObject *unused)
{
    (void)unused;
    WorkerObject *w = (WorkerObject *)op;
    if (w->w == NULL)
        Py_RETURN_NONE;
    Py_INCREF(w);
    pn_worker_poll(w->w);
    PyObject *exc = w->pending_exc;
    w->pending_exc = NULL;
    Py_DECREF(w);
    if (exc != NULL) {
        PyErr_SetRaisedException_compat(exc);
        return NULL;
    }
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *worker_fileno(PyObject *op, PyObject *unused)
{
    (void)unused;
    WorkerObject *w = (WorkerObject *)op;
    if (!worker_check(w))
        return NULL;
    return PyLong_FromLong(pn_worker_fd(w->w));
}

static PyObject *worker_drain(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"close_idle", NULL};
    int close_idle = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|p", kwlist, &close_idle))
        return NULL;
    WorkerObject *w = (WorkerObject *)op;
    if (!worker_check(w))
        return NULL;
    int left = pn_worker_drain(w->w, close_idle);
    pn_worker_flush_log(w->w);
    return PyLong_FromLong(left);
}

static PyObject *worker_close_all(PyObject *op, PyObject *unused)
{
    (void)unused;
    WorkerObject *w = (WorkerObject *)op;
    if (!worker_check(w))
        return NULL;
    pn_worker_close_all(w->w);
    pn_worker_flush_log(w->w);
    Py_RETURN_NONE;
}

static PyObject *worker_close(PyObject *op, PyObject *unused)
{
    (void)unused;
    worker_free_runtime((WorkerObject *)op);
    Py_RETURN_NONE;
}

static PyObject *worker_get_connections(PyObject *op, void *closure)
{
    (void)closure;
    WorkerObject *w = (WorkerObject *)op;
    return PyLong_FromSize_t(w->w ? pn_worker_connections(w->w) : 0);
}

static PyObject *worker_get_active(PyObject *op, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(((WorkerObject *)op)->active);
}

static PyObject *worker_get_served(PyObject *op, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(((WorkerObject *)op)->served);
}

static PyMethodDef worker_methods[] = {
    {"poll", worker_poll, METH_NOARGS,
     "Handle every ready event (called by the event loop when fileno() is readable)."},
    {"fileno", worker_fileno, METH_NOARGS, "The worker's epoll file descriptor."},
    {"drain", (PyCFunction)(void (*)(void))worker_drain, METH_VARARGS | METH_KEYWORDS,
     "drain(close_idle=True)\n--\n\nStop accepting; every connection closes after its "
     "current or next response.  close_idle closes idle keep-alive connections now "
     "(shutdown); without it they close at their next response or keep-alive deadline "
     "(reload, recycling).  Returns the number of connections still open."},
    {"close_all", worker_close_all, METH_NOARGS, "Close every connection now."},
    {"close", worker_close, METH_NOARGS, "Release the worker (closes every connection)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef worker_getset[] = {
    {"connections", worker_get_connections, NULL, "Open connections.", NULL},
    {"active", worker_get_active, NULL, "Requests whose application task is running.", NULL},
    {"served", worker_get_served, NULL, "Requests dispatched so far.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot worker_slots[] = {
    {Py_tp_new, worker_new},
    {Py_tp_dealloc, worker_dealloc},
    {Py_tp_traverse, worker_traverse},
    {Py_tp_clear, worker_clear},
    {Py_tp_methods, worker_methods},
    {Py_tp_getset, worker_getset},
    {Py_tp_doc, "Worker(config, app, loop, listeners, state=None, on_error=None, worker_id=0,\n"
                "       release_gil=False, shared_listeners=False)\n"
                "--\n\n"
                "One Pounce worker: HTTP/1.1 connections on the given listening sockets,\n"
                "served to an ASGI app on the given asyncio loop.  listeners is a sequence\n"
                "of (fd, scope_server_value, is_unix).  release_gil: let go of the GIL around\n"
                "socket calls (thread workers on a GIL build).  shared_listeners: other\n"
                "workers accept from the same sockets, so take one connection per wake-up.\n"
                "Owned by one thread."},
    {0, NULL},
};

static PyType_Spec worker_spec = {
    .name = "pounce._pounce.Worker",
    .basicsize = sizeof(WorkerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = worker_slots,
};

/* ---- init ------------------------------------------------------------------------ */

int pn_asgi_init(PyObject *module, pn_modstate *st)
{
    st->ready_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &ready_spec, NULL);
    if (st->ready_type == NULL)
        return -1;
    st->request_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &request_spec, NULL);
    if (st->request_type == NULL)
        return -1;
    st->apprun_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &apprun_spec, NULL);
    if (st->apprun_type == NULL)
        return -1;
    st->worker_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &worker_spec, NULL);
    if (st->worker_type == NULL)
        return -1;
    if (PyModule_AddType(module, st->worker_type) < 0)
        return -1;
    st->ready_none = ready_new_value(st, Py_NewRef(Py_None));
    if (st->ready_none == NULL)
        return -1;
    st->msg_disconnect_template = PyDict_New();
    if (st->msg_disconnect_template == NULL ||
        PyDict_SetItem(st->msg_disconnect_template, PN_ID(st, type), PN_ID(st, http_disconnect)) <
            0)
        return -1;
    for (int i = 0; i < PN_HNAME_COUNT; i++)
        if ((st->hnames[i] = PyBytes_FromString(header_names[i])) == NULL)
            return -1;
    return 0;
}
