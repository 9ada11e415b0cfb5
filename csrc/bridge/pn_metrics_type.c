/*
 * pn_metrics_type.c — _pounce.MetricsTable: the per-worker counters of
 * --metrics-port (pn_metrics.h) as a Python object, made by the supervisor
 * before it starts workers; and the bridge's hooks that count app runs.
 *
 * Owns: the mapping, unmapped when the object goes (in each process: a
 * forked worker has its own reference to the same shared pages).  Every
 * Worker given the table holds a strong reference to it, so the mapping
 * outlives the pn_worker that writes it.  Threads: any for the table (it is
 * atomics only); the hooks run on the worker's thread, like the rest of
 * the worker.
 */
#include "pn_asgi.h"
#include "pn_metrics.h"

typedef struct {
    PyObject_HEAD
    pn_metrics *table; /* owned */
} MetricsObject;

pn_metrics *pn_metrics_from(pn_modstate *st, PyObject *obj)
{
    if (!PyObject_TypeCheck(obj, st->metrics_type)) {
        PyErr_Format(PyExc_TypeError, "metrics must be a MetricsTable, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return ((MetricsObject *)obj)->table;
}

/* ---- hooks (the worker's thread; w->metrics set) ---------------------------- */

void pn_metrics_request_new(WorkerObject *w, RequestObject *r, const char *method, size_t len)
{
    (void)w;
    r->m_method = (unsigned)pn_metrics_method(method, len);
    if (r->t0_ns == 0)
        r->t0_ns = now_ns(); /* (the access log may have taken it already) */
}

void pn_metrics_run_start(WorkerObject *w)
{
    pn_metrics_set(&w->metrics->in_flight, w->active > 0 ? (uint64_t)w->active : 0);
}

void pn_metrics_run_end(RequestObject *r)
{
    WorkerObject *w = r->worker;
    pn_metrics_slot *s = w->metrics;
    pn_metrics_set(&s->in_flight, w->active > 0 ? (uint64_t)w->active : 0);
    if (r->kind->finish == pn_request_finish) {
        /* An HTTP request: counted when its app call ends, with the status
         * it answered; 500 when it answered nothing and the client is still
         * there (finish() sends that 500 right after this); 0 when the
         * client left before any answer. */
        int status = r->started ? r->resp.status : r->stream != NULL ? 500 : 0;
        pn_metrics_request(s, r->m_method, status, now_ns() - r->t0_ns);
    } else if (r->m_ws_open) {
        pn_metrics_add(&s->ws_closed, 1);
    }
}

/* ---- MetricsTable ------------------------------------------------------------- */

static PyObject *metrics_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"slots", NULL};
    int nslots = 64;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i", kwlist, &nslots))
        return NULL;
    if (nslots < 1 || nslots > 65536) {
        PyErr_SetString(PyExc_ValueError, "slots must be in 1..65536");
        return NULL;
    }
    MetricsObject *m = (MetricsObject *)tp->tp_alloc(tp, 0);
    if (m == NULL)
        return NULL;
    m->table = pn_metrics_new(nslots);
    if (m->table == NULL) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(m);
        return NULL;
    }
    return (PyObject *)m;
}

/* No references but its type: GC support only for the rule that every
 * heap type has it (docs/architecture.md). */
static int metrics_traverse(MetricsObject *m, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(m));
    return 0;
}

static void metrics_dealloc(MetricsObject *m)
{
    PyTypeObject *tp = Py_TYPE(m);
    PyObject_GC_UnTrack(m);
    pn_metrics_free(m->table);
    tp->tp_free((PyObject *)m);
    Py_DECREF(tp);
}

static PyObject *metrics_claim(PyObject *op, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(pn_metrics_claim(((MetricsObject *)op)->table));
}

static PyObject *metrics_release(PyObject *op, PyObject *arg)
{
    long i = PyLong_AsLong(arg);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (pn_metrics_release(((MetricsObject *)op)->table, (int)i) < 0 || i > INT_MAX) {
        PyErr_SetString(PyExc_IndexError, "slot out of range");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *metrics_count_restart(PyObject *op, PyObject *unused)
{
    (void)unused;
    pn_metrics_count_restart(((MetricsObject *)op)->table);
    Py_RETURN_NONE;
}

/* A list of n counters as a tuple of ints. */
static PyObject *counters(const pn_mcounter *c, int n)
{
    PyObject *t = PyTuple_New(n);
    if (t == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(pn_metrics_load(&c[i]));
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

/* One slot as a dict of plain values. */
static PyObject *slot_dict(pn_metrics_slot *s)
{
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    PyObject *req = PyTuple_New(PN_M_NMETHODS);
    if (req == NULL)
        goto fail;
    for (int i = 0; i < PN_M_NMETHODS; i++) {
        PyObject *row = counters(s->requests[i], PN_M_NCLASSES);
        if (row == NULL) {
            Py_DECREF(req);
            goto fail;
        }
        PyTuple_SET_ITEM(req, i, row);
    }
    if (PyDict_SetItemString(d, "requests", req) < 0) {
        Py_DECREF(req);
        goto fail;
    }
    Py_DECREF(req);
#define TUPLE(name, field, n)                                                                      \
    do {                                                                                           \
        PyObject *v_ = counters(s->field, n);                                                      \
        if (v_ == NULL || PyDict_SetItemString(d, name, v_) < 0) {                                 \
            Py_XDECREF(v_);                                                                        \
            goto fail;                                                                             \
        }                                                                                          \
        Py_DECREF(v_);                                                                             \
    } while (0)
#define ONE(name, field)                                                                           \
    do {                                                                                           \
        PyObject *v_ = PyLong_FromUnsignedLongLong(pn_metrics_load(&s->field));                    \
        if (v_ == NULL || PyDict_SetItemString(d, name, v_) < 0) {                                 \
            Py_XDECREF(v_);                                                                        \
            goto fail;                                                                             \
        }                                                                                          \
        Py_DECREF(v_);                                                                             \
    } while (0)
    TUPLE("duration_buckets", duration, PN_M_NBUCKETS);
    TUPLE("early", early, PN_M_NCLASSES);
    ONE("duration_sum_ns", duration_sum_ns);
    ONE("bytes_in", bytes_in);
    ONE("bytes_out", bytes_out);
    ONE("connections_total", conns_total);
    ONE("ws_opened", ws_opened);
    ONE("ws_closed", ws_closed);
    ONE("ws_messages_in", ws_msgs_in);
    ONE("ws_messages_out", ws_msgs_out);
    ONE("compress_in", zin);
    ONE("compress_out", zout);
    ONE("starts", starts);
    ONE("in_flight", in_flight);
    ONE("connections_open", conns_open);
#undef ONE
#undef TUPLE
    PyObject *live = PyBool_FromLong(atomic_load_explicit(&s->live, memory_order_relaxed));
    if (PyDict_SetItemString(d, "live", live) < 0) {
        Py_DECREF(live);
        goto fail;
    }
    Py_DECREF(live);
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

static PyObject *metrics_snapshot(PyObject *op, PyObject *unused)
{
    (void)unused;
    pn_metrics *t = ((MetricsObject *)op)->table;
    int used = pn_metrics_used(t);
    PyObject *slots = PyList_New(used);
    if (slots == NULL)
        return NULL;
    for (int i = 0; i < used; i++) {
        PyObject *d = slot_dict(pn_metrics_slot_at(t, i));
        if (d == NULL) {
            Py_DECREF(slots);
            return NULL;
        }
        PyList_SET_ITEM(slots, i, d);
    }
    PyObject *res = Py_BuildValue("{sNsK}", "slots", slots, "restarts",
                                  (unsigned long long)pn_metrics_restarts(t));
    return res;
}

/* The histogram's upper bounds in seconds (without +Inf). */
static PyObject *metrics_get_buckets(PyObject *op, void *closure)
{
    (void)op;
    (void)closure;
    PyObject *t = PyTuple_New(PN_M_NBUCKETS - 1);
    if (t == NULL)
        return NULL;
    for (int i = 0; i < PN_M_NBUCKETS - 1; i++) {
        PyObject *v = PyFloat_FromDouble((double)pn_metrics_bucket_us[i] / 1e6);
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

static PyObject *metrics_get_slots(PyObject *op, void *closure)
{
    (void)closure;
    return PyLong_FromLong(pn_metrics_nslots(((MetricsObject *)op)->table));
}

static PyMethodDef metrics_methods[] = {
    {"claim", metrics_claim, METH_NOARGS,
     "claim($self, /)\n--\n\nThe lowest slot no live worker holds, now held (its gauges "
     "cleared, its counters kept); -1 when none is free."},
    {"release", metrics_release, METH_O,
     "release($self, slot, /)\n--\n\nThe worker on `slot` exited: clear its gauges and free "
     "the slot.  Its counters stay."},
    {"count_restart", metrics_count_restart, METH_NOARGS,
     "count_restart($self, /)\n--\n\nCount one worker restart."},
    {"snapshot", metrics_snapshot, METH_NOARGS,
     "snapshot($self, /)\n--\n\n{'slots': [one dict per slot ever claimed], 'restarts': n}, "
     "read with relaxed atomic loads."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef metrics_getset[] = {
    {"slots", metrics_get_slots, NULL, "Number of slots.", NULL},
    {"buckets", metrics_get_buckets, NULL,
     "Upper bounds of the request-duration histogram, in seconds (+Inf not included).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot metrics_slots[] = {
    {Py_tp_new, metrics_new},
    {Py_tp_dealloc, metrics_dealloc},
    {Py_tp_traverse, metrics_traverse},
    {Py_tp_methods, metrics_methods},
    {Py_tp_getset, metrics_getset},
    {Py_tp_doc, "MetricsTable(slots=64)\n"
                "--\n\n"
                "The counters of --metrics-port, one slot per worker, in shared memory\n"
                "(seen by threads and by processes forked after it was made).  Pass it to\n"
                "each Worker with a slot from claim(); release() the slot when the\n"
                "worker exited."},
    {0, NULL},
};

PyType_Spec pn_metrics_spec = {
    .name = "pounce._pounce.MetricsTable",
    .basicsize = sizeof(MetricsObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = metrics_slots,
};
