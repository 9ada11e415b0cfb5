/*
 * pn_worker_type.c — the Worker type (a pn_worker driven from an asyncio
 * loop), the hooks through which the runtime reaches the bridge, and the
 * creation of the bridge's types.
 *
 * Owns: the pn_worker inside each Worker object, freed with it (or by
 * close()).  Threads: a Worker and everything it creates belong to the
 * thread whose loop drives it; the hooks run inside pn_worker_poll() on
 * that thread (pn_worker.h, re-entrancy rule).
 */
#include <unistd.h>

#include "pn_access_log.h"
#include "pn_asgi.h"
#include "pn_worker.h"

/* Report an application error through the Python-side logger. */
void pn_report_error(WorkerObject *w, const char *message, PyObject *exc)
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

/* ---- runtime hooks ---------------------------------------------------------- */

/* The stream events (pn_stream.h): each names the stream, whose udata is
 * the request object attached to it (an HTTP request or a WebSocket
 * session), if any. */

static int hook_on_request(void *ctx, pn_stream *s, const pn_http1_request *req)
{
    WorkerObject *w = ctx;
    if (req->flags & PN_REQ_UPGRADE) {
        int rc = pn_ws_dispatch(w, s, req);
        if (rc != PN_WS_NOT_WEBSOCKET)
            return rc;
    }
    return pn_request_dispatch(w, s, req);
}

static void hook_on_body(void *ctx, pn_stream *s)
{
    (void)ctx;
    RequestObject *r = s->udata;
    if (r != NULL)
        pn_request_body_ready(r);
}

static void hook_on_drain(void *ctx, pn_stream *s)
{
    (void)ctx;
    RequestObject *r = s->udata;
    if (r != NULL)
        pn_request_drained(r);
}

static void hook_on_close(void *ctx, pn_stream *s)
{
    (void)ctx;
    RequestObject *r = s->udata;
    s->udata = NULL;
    if (r == NULL)
        return;
    r->stream = NULL;
    r->disconnected = 1;
    r->kind->closed(r);
    Py_DECREF(r); /* the stream's reference */
}

/* An upgraded connection's events (HTTP/1.1 only). */
static void hook_on_ws(void *ctx, pn_conn *c, int event)
{
    (void)ctx;
    pn_ws_on_event(c, event);
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

/* (pn_worker_new copies the table: worker_new adds release/reacquire to
 * its copy when the GIL is to be let go.) */
/* --limit-concurrency: the requests in flight are the app calls running
 * (HTTP requests and WebSocket sessions) — the worker's `active` count. */
static size_t hook_in_flight(void *ctx)
{
    const WorkerObject *w = ctx;
    return w->active > 0 ? (size_t)w->active : 0;
}

static const pn_worker_hooks worker_hooks = {
    .on_request = hook_on_request,
    .on_body = hook_on_body,
    .on_drain = hook_on_drain,
    .on_close = hook_on_close,
    .wakeup = hook_wakeup,
    .in_flight = hook_in_flight,
    .on_ws = hook_on_ws,
};

/* ---- Worker type -------------------------------------------------------------- */

/* The Worker's references, for traverse and clear alike.  config and
 * balance are not among them: w->cfg points into the one and the runtime
 * reads the other's table until the pn_worker is freed, so only dealloc
 * drops them, after pn_worker_free. */
#define WORKER_REFS(X)                                                                             \
    X(poll_cb)                                                                                     \
    X(call_soon)                                                                                   \
    X(create_future)                                                                               \
    X(task_type)                                                                                   \
    X(task_kwargs)                                                                                 \
    X(app)                                                                                         \
    X(loop)                                                                                        \
    X(state)                                                                                       \
    X(on_error)                                                                                    \
    X(servers)                                                                                     \
    X(listen_fds)                                                                                  \
    X(root_path_str)                                                                               \
    X(root_path_bytes)                                                                             \
    X(worker_id)                                                                                   \
    X(server_cert)                                                                                 \
    X(tls_cache)                                                                                   \
    X(access_log_cb)                                                                               \
    X(scope_template)                                                                              \
    X(scope_template_https)                                                                        \
    X(ext_template)                                                                                \
    X(pending_exc)

static int worker_traverse(WorkerObject *w, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(w));
    Py_VISIT(w->config);
    Py_VISIT(w->balance);
    Py_VISIT(w->metrics_table);
#define VISIT_REF(member) Py_VISIT(w->member);
    WORKER_REFS(VISIT_REF)
#undef VISIT_REF
    for (int i = 0; i < PN_CLIENT_CACHE; i++)
        Py_VISIT(w->client_cache[i].tuple);
    for (int i = 0; i < PN_HDR_CACHE; i++)
        Py_VISIT(w->hdr_cache[i]);
    for (int i = 0; i < PN_PATH_CACHE; i++) {
        Py_VISIT(w->path_cache[i].path);
        Py_VISIT(w->path_cache[i].raw);
    }
    return 0;
}

static int worker_clear(WorkerObject *w)
{
#define CLEAR_REF(member) Py_CLEAR(w->member);
    WORKER_REFS(CLEAR_REF)
#undef CLEAR_REF
    for (int i = 0; i < PN_CLIENT_CACHE; i++)
        Py_CLEAR(w->client_cache[i].tuple);
    for (int i = 0; i < PN_HDR_CACHE; i++)
        Py_CLEAR(w->hdr_cache[i]);
    for (int i = 0; i < PN_PATH_CACHE; i++) {
        Py_CLEAR(w->path_cache[i].path);
        Py_CLEAR(w->path_cache[i].raw);
    }
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
    pn_buf_free(&w->spare_head);
    if (w->pool) {
        pn_compress_pool_free(w->pool);
        w->pool = NULL;
    }
    Py_CLEAR(w->config);
    Py_CLEAR(w->balance);
    Py_CLEAR(w->metrics_table);
    tp->tp_free((PyObject *)w);
    Py_DECREF(tp);
}

/* The access log's sink when lines go through logging (access_logger=):
 * one logger.info(line) per line, on the worker's thread, which holds the
 * GIL or is attached here (pn_worker_poll and the bridge's own calls).
 * After worker_clear (a worker being freed flushes its last lines) the
 * lines go to stderr rather than nowhere. */
static void access_log_sink(void *ctx, const char *lines, size_t len)
{
    WorkerObject *w = ctx;
    PyObject *cb = w->access_log_cb;
    if (cb == NULL) {
        while (len > 0) {
            ssize_t n = write(2, lines, len);
            if (n <= 0)
                return;
            lines += n;
            len -= (size_t)n;
        }
        return;
    }
    Py_INCREF(cb); /* Beware: a handler may run anything, even drop the Worker's reference */
    PyObject *pending = fetch_exception();
    while (len > 0) {
        const char *nl = memchr(lines, '\n', len);
        size_t n = nl ? (size_t)(nl - lines) : len;
        /* Text formats are ASCII, json is UTF-8 (pn_log.h); never fail. */
        PyObject *line = PyUnicode_DecodeUTF8(lines, (Py_ssize_t)n, "replace");
        PyObject *res = line ? PyObject_CallOneArg(cb, line) : NULL;
        if (res == NULL)
            PyErr_WriteUnraisable(cb);
        Py_XDECREF(res);
        Py_XDECREF(line);
        n += nl != NULL;
        lines += n;
        len -= n;
    }
    restore_exception(pending);
    Py_DECREF(cb);
}

static PyObject *worker_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"config",
                             "app",
                             "loop",
                             "listeners",
                             "state",
                             "on_error",
                             "worker_id",
                             "release_gil",
                             "shared_listeners",
                             "balance",
                             "balance_slot",
                             "access_log_fd",
                             "access_logger",
                             "metrics",
                             "metrics_slot",
                             NULL};
    PyObject *config, *app, *loop, *listeners, *state = Py_None, *on_error = Py_None;
    PyObject *balance = Py_None, *access_logger = Py_None, *metrics = Py_None;
    int worker_id = 0, release_gil = 0, shared_listeners = 0, balance_slot = -1;
    int access_log_fd = -1, metrics_slot = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|OOippOiiOOi", kwlist, &config, &app, &loop,
                                     &listeners, &state, &on_error, &worker_id, &release_gil,
                                     &shared_listeners, &balance, &balance_slot, &access_log_fd,
                                     &access_logger, &metrics, &metrics_slot))
        return NULL;
    pn_modstate *st = pn_get_state_by_type(tp);
    if (st == NULL)
        return NULL;
    const pn_config *cfg = pn_config_struct(st, config);
    if (cfg == NULL)
        return NULL;
    pn_balance *table = NULL;
    if (balance != Py_None && balance_slot >= 0 && (table = pn_balance_from(st, balance)) == NULL)
        return NULL;
    pn_metrics *mtable = NULL;
    if (metrics != Py_None && metrics_slot >= 0 && (mtable = pn_metrics_from(st, metrics)) == NULL)
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
    PyObject *asyncio = PyImport_ImportModule("asyncio"); /* (loaded: the loop is asyncio's) */
    w->task_type = asyncio ? PyObject_GetAttrString(asyncio, "Task") : NULL;
    Py_XDECREF(asyncio);
    if (w->task_type == NULL)
        goto fail;
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
    pn_worker_hooks hooks = worker_hooks;
    if (release_gil) {
        /* GIL builds with several thread workers: let go of the GIL around
         * socket syscalls, so their network work overlaps. */
        hooks.release = hook_release;
        hooks.reacquire = hook_reacquire;
    }
    w->w = pn_worker_new(cfg, fds, unix_flags, (int)n, &hooks, w);
    if (w->w == NULL) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    pn_worker_set_shared(w->w, shared_listeners);
    const pn_tls_ctx *tls = pn_config_tls(st, config);
    if (tls != NULL) {
        /* The Config (w->config, strong) owns the context and outlives
         * the worker. */
        size_t pem_len;
        const char *pem = pn_tls_ctx_cert_pem(tls, &pem_len);
        w->server_cert = PyUnicode_DecodeASCII(pem, (Py_ssize_t)pem_len, "strict");
        if (w->server_cert == NULL)
            goto fail;
        pn_worker_set_tls(w->w, tls);
    }
    /* Where access lines go: the pounce.access logger's handlers, the
     * --access-log-file descriptor (its number never changes: reopened
     * with dup2 by the process, pn_access_log.h), or stderr. */
    pn_alog *alog = pn_worker_alog(w->w);
    if (access_log_fd >= 0)
        alog->fd = access_log_fd;
    if (access_logger != Py_None) {
        w->access_log_cb = PyObject_GetAttrString(access_logger, "info");
        if (w->access_log_cb == NULL)
            goto fail;
        alog->sink = access_log_sink;
        alog->sink_ctx = w;
    }
    if (table != NULL) {
        if (balance_slot >= pn_balance_nslots(table)) {
            PyErr_SetString(PyExc_IndexError, "balance_slot out of range");
            goto fail;
        }
        w->balance = Py_NewRef(balance);
        if (pn_worker_set_balance(w->w, table, balance_slot) < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            goto fail;
        }
    }
    if (mtable != NULL) {
        w->metrics = pn_metrics_slot_at(mtable, metrics_slot);
        if (w->metrics == NULL) {
            PyErr_SetString(PyExc_IndexError, "metrics_slot out of range");
            goto fail;
        }
        w->metrics_table = Py_NewRef(metrics);
        pn_worker_set_metrics(w->w, w->metrics);
    }
    w->poll_cb = PyObject_GetAttrString((PyObject *)w, "poll");
    if (w->poll_cb == NULL || pn_scope_templates(w) < 0)
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
        restore_exception(exc);
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
    static char *kwlist[] = {"close_idle", "shutdown", NULL};
    int close_idle = 1;
    PyObject *shutdown_arg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|pO", kwlist, &close_idle, &shutdown_arg))
        return NULL;
    WorkerObject *w = (WorkerObject *)op;
    if (!worker_check(w))
        return NULL;
    int shutdown = shutdown_arg == Py_None ? close_idle : PyObject_IsTrue(shutdown_arg);
    if (shutdown < 0)
        return NULL;
    int left = pn_worker_drain(w->w, (close_idle ? PN_DRAIN_CLOSE_IDLE : 0u) |
                                         (shutdown ? PN_DRAIN_SHUTDOWN : 0u));
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
     "drain($self, /, close_idle=True, shutdown=None)\n--\n\nStop accepting; every connection "
     "closes after its current or next response.  close_idle closes idle keep-alive connections "
     "now; without it they close at their next response or keep-alive deadline.  shutdown "
     "(when not given: close_idle) says the server stops, so --health-path answers 503; a "
     "reload or recycling drain passes False.  Called again, it only escalates.  Returns the "
     "number of connections still open."},
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
                "       release_gil=False, shared_listeners=False, balance=None,\n"
                "       balance_slot=-1, access_log_fd=-1, access_logger=None,\n"
                "       metrics=None, metrics_slot=-1)\n"
                "--\n\n"
                "One Pounce worker: HTTP/1.1 connections on the given listening sockets,\n"
                "served to an ASGI app on the given asyncio loop.  listeners is a sequence\n"
                "of (fd, scope_server_value, is_unix).  release_gil: let go of the GIL around\n"
                "socket calls (thread workers on a GIL build).  shared_listeners: other\n"
                "workers accept from the same sockets, so take one connection per wake-up.\n"
                "balance, balance_slot: a BalanceTable shared with those workers and this\n"
                "worker's slot in it (no other live worker's): a shared worker holding more\n"
                "than its share of connections leaves new ones to the others.\n"
                "access_log_fd: write access lines there instead of stderr (the process\n"
                "reopens it in place with dup2).  access_logger: a logging.Logger whose\n"
                "info() gets each access line instead (its handlers were configured).\n"
                "metrics, metrics_slot: a MetricsTable and the slot (claimed for this\n"
                "worker) its counters go to (--metrics-port).\n"
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

/* A heap type of the module, into its state slot.  0 / -1. */
static int make_type(PyObject *module, PyTypeObject **slot, PyType_Spec *spec)
{
    *slot = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, NULL);
    return *slot ? 0 : -1;
}

int pn_asgi_init(PyObject *module, pn_modstate *st)
{
    if (make_type(module, &st->ready_type, &pn_ready_spec) < 0 ||
        make_type(module, &st->request_type, &pn_request_spec) < 0 ||
        make_type(module, &st->websocket_type, &pn_websocket_spec) < 0 ||
        make_type(module, &st->apprun_type, &pn_apprun_spec) < 0 ||
        make_type(module, &st->worker_type, &worker_spec) < 0 ||
        PyModule_AddType(module, st->worker_type) < 0 ||
        make_type(module, &st->balance_type, &pn_balance_spec) < 0 ||
        PyModule_AddType(module, st->balance_type) < 0 ||
        make_type(module, &st->metrics_type, &pn_metrics_spec) < 0 ||
        PyModule_AddType(module, st->metrics_type) < 0)
        return -1;
    st->ready_none = pn_ready_new(st, Py_NewRef(Py_None));
    if (st->ready_none == NULL)
        return -1;
    st->msg_disconnect_template = PyDict_New();
    if (st->msg_disconnect_template == NULL ||
        PyDict_SetItem(st->msg_disconnect_template, PN_ID(st, type), PN_ID(st, http_disconnect)) <
            0)
        return -1;
    return pn_scope_init(st);
}
