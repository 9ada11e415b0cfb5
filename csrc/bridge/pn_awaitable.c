/*
 * pn_awaitable.c — what the app awaits and what drives it: the completed
 * awaitable (Ready) that receive() and send() return when nothing has to
 * wait, the resolution of the asyncio Futures they return when something
 * does, and AppRun, the app's coroutine as its asyncio Task drives it.
 *
 * Owns: Ready and AppRun objects (the module's ready_none is shared by
 * every thread: it is immutable).  Threads: the worker's thread, like the
 * rest of the bridge (pn_asgi.h).
 */
#include "pn_asgi.h"

/* ---- Ready: an awaitable that is already complete ------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *value; /* strong; the result of the await */
} ReadyObject;

PyObject *pn_ready_new(pn_modstate *st, PyObject *value /* stolen */)
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

PyType_Spec pn_ready_spec = {
    .name = "pounce._pounce.Ready",
    .basicsize = sizeof(ReadyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = ready_slots,
};

/* ---- futures ------------------------------------------------------------ */

/* Resolve a future unless it is already done (e.g. cancelled by the app). */
void pn_future_resolve(pn_modstate *st, PyObject **slot, PyObject *value)
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
    PyObject_HEAD
    PyObject *coro;     /* strong: the app's coroutine */
    RequestObject *req; /* strong until the coroutine ends */
} AppRunObject;

/* Account once for the end of r's run (the worker's `active` count).
 * Returns 1 the first time, 0 after. */
static int run_ended(RequestObject *r)
{
    if (r->finished)
        return 0;
    r->finished = 1;
    r->worker->active--;
    if (r->worker->metrics)
        pn_metrics_run_end(r);
    return 1;
}

/* The app's coroutine ended: exc is the exception it raised (borrowed) or
 * NULL when it returned.  Runs synchronously inside the Task's last step,
 * so completing a request costs no done-callback round trip. */
static void run_finish(RequestObject *r, PyObject *exc)
{
    if (!run_ended(r))
        return;
    if (exc != NULL)
        pn_report_error(r->worker, "Exception in ASGI application", exc);
    Py_CLEAR(r->task);
    r->kind->finish(r, exc);
}

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
    /* Dropped without finishing (loop closed under it): only account. */
    if (a->req)
        run_ended(a->req);
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
        run_finish(r, cancelled ? NULL : exc);
        Py_DECREF(r);
    }
    if (escape || cancelled) {
        /* Let the Task see cancellation and process-ending exceptions. */
        restore_exception(exc);
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
            run_finish(r, NULL);
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
     * ends (the stream outlives the step: a transport frees streams only
     * inside its poll). */
    pn_stream *s = a->req ? a->req->stream : NULL;
    if (s)
        s->ops->cork(s);
    PySendResult rc = PyIter_Send(a->coro, arg ? arg : Py_None, result);
    if (s)
        s->ops->uncork(s);
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
        run_finish(r, NULL);
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

PyType_Spec pn_apprun_spec = {
    .name = "pounce._pounce.AppRun",
    .basicsize = sizeof(AppRunObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = apprun_slots,
};

/* ---- starting the app ------------------------------------------------------ */

#if PY_VERSION_HEX < 0x030C0000
/* CPython 3.11 formats every Task's default name, "Task-N", with
 * PyUnicode_FromFormat while it makes the Task: ~1,450 instructions of a
 * plaintext request's ~28,000 (3.12+ keeps the number and formats the
 * name only when asked).  There a request's Task is named here instead,
 * "pounce-W-N" (worker W's Nth request), written digit by digit: the
 * Task's name keyword is replaced in the worker's own kwargs dict. */
static int name_task(WorkerObject *w)
{
    char buf[64];
    char *end = buf + sizeof buf, *p = end;
    uint64_t n = w->served;
    do
        *--p = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    *--p = '-';
    long id = PyLong_AsLong(w->worker_id);
    unsigned long u = id < 0 ? 0 : (unsigned long)id;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    static const char prefix[] = "pounce-";
    p -= sizeof prefix - 1;
    memcpy(p, prefix, sizeof prefix - 1);
    PyObject *name = PyUnicode_New(end - p, 127);
    if (name == NULL)
        return -1;
    memcpy(PyUnicode_DATA(name), p, (size_t)(end - p));
    int rc = PyDict_SetItem(w->task_kwargs, PN_ID(worker_state(w), name), name);
    Py_DECREF(name);
    return rc;
}
#endif

int pn_apprun_start(RequestObject *r, PyObject *scope)
{
    WorkerObject *w = r->worker;
    pn_modstate *st = worker_state(w);
    PyObject *receive = scope ? PyCFunction_New(r->kind->receive, (PyObject *)r) : NULL;
    if (receive == NULL) {
        PyErr_WriteUnraisable((PyObject *)w);
        Py_XDECREF(scope);
        r->stream = NULL;
        Py_DECREF(r);
        return -1;
    }
    /* The stream holds a reference to its request. */
    r->stream->udata = Py_NewRef(r);
    w->active++;
    w->served++;
    if (w->metrics)
        pn_metrics_run_start(w);
    /* send is the request object itself (pn_asgi.h, PN_SEND_CALL_MEMBER). */
    PyObject *args[3] = {scope, receive, (PyObject *)r};
    PyObject *coro = PyObject_Vectorcall(w->app, args, 3, NULL);
    Py_DECREF(scope);
    Py_DECREF(receive);
    if (coro == NULL)
        goto app_failed; /* the app raised before returning a coroutine */
    AppRunObject *run = PyObject_GC_New(AppRunObject, st->apprun_type);
    if (run == NULL) {
        Py_DECREF(coro);
        goto app_failed;
    }
    run->coro = coro; /* stolen */
    run->req = (RequestObject *)Py_NewRef(r);
    PyObject_GC_Track(run);
    PyObject *targs = PyTuple_Pack(1, (PyObject *)run);
    Py_DECREF(run);
    if (targs == NULL)
        goto app_failed;
#if PY_VERSION_HEX < 0x030C0000
    if (name_task(w) < 0) {
        Py_DECREF(targs);
        goto app_failed;
    }
#endif
    /* (A prebuilt kwargs dict: asyncio.Task has no vectorcall, so keyword
     * names would be turned into a fresh dict on every call.) */
    PyObject *task = PyObject_Call(w->task_type, targs, w->task_kwargs);
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
        goto app_failed;
    /* With eager start the whole handler may already have run (and the
     * request finished) inside the Task constructor. */
    if (!r->finished)
        r->task = task; /* owned; cleared by run_finish */
    else
        Py_DECREF(task);
    Py_DECREF(r);
    return 0;

app_failed : {
    PyObject *exc = fetch_exception();
    pn_report_error(w, "Exception in ASGI application", exc);
    Py_XDECREF(exc);
}
    /* Treat it as a task that failed before responding. */
    run_ended(r);
    if (r->stream)
        pn_request_reply(r, 500);
    Py_DECREF(r);
    return 0;
}
