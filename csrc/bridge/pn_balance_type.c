/*
 * pn_balance_type.c — _pounce.BalanceTable: the table of balanced accept
 * (pn_balance.h) as a Python object, made by the supervisor before it
 * starts workers and handed to each Worker with a slot index.
 *
 * Owns: the mapping, unmapped when the object goes (in each process: a
 * forked worker has its own reference to the same shared pages).  Every
 * Worker given the table holds a strong reference to it, so the mapping
 * outlives the pn_worker that reads it.  Threads: any; the table is atomics
 * only (the object itself has no mutable Python state).
 */
#include "pn_asgi.h"
#include "pn_balance.h"

typedef struct {
    PyObject_HEAD
    pn_balance *table; /* owned */
} BalanceObject;

pn_balance *pn_balance_from(pn_modstate *st, PyObject *obj)
{
    if (!PyObject_TypeCheck(obj, st->balance_type)) {
        PyErr_Format(PyExc_TypeError, "balance must be a BalanceTable, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return ((BalanceObject *)obj)->table;
}

static PyObject *balance_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"slots", NULL};
    int nslots = 64;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i", kwlist, &nslots))
        return NULL;
    if (nslots < 1 || nslots > 65536) {
        PyErr_SetString(PyExc_ValueError, "slots must be in 1..65536");
        return NULL;
    }
    BalanceObject *b = (BalanceObject *)tp->tp_alloc(tp, 0);
    if (b == NULL)
        return NULL;
    b->table = pn_balance_new(nslots);
    if (b->table == NULL) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(b);
        return NULL;
    }
    return (PyObject *)b;
}

/* No references but its type: GC support only for the rule that every
 * heap type has it (docs/architecture.md). */
static int balance_traverse(BalanceObject *b, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(b));
    return 0;
}

static void balance_dealloc(BalanceObject *b)
{
    PyTypeObject *tp = Py_TYPE(b);
    PyObject_GC_UnTrack(b);
    pn_balance_free(b->table);
    tp->tp_free((PyObject *)b);
    Py_DECREF(tp);
}

static int slot_arg(BalanceObject *b, PyObject *arg)
{
    long i = PyLong_AsLong(arg);
    if (i == -1 && PyErr_Occurred())
        return -1;
    if (i < 0 || i >= pn_balance_nslots(b->table)) {
        PyErr_SetString(PyExc_IndexError, "slot out of range");
        return -1;
    }
    return (int)i;
}

static PyObject *balance_reset(PyObject *op, PyObject *arg)
{
    BalanceObject *b = (BalanceObject *)op;
    int i = slot_arg(b, arg);
    if (i < 0)
        return NULL;
    pn_balance_reset(b->table, i);
    Py_RETURN_NONE;
}

/* assign(taken): the lowest slot not in `taken`, reset for a new worker;
 * -1 when every slot is taken (that worker then does without). */
static PyObject *balance_assign(PyObject *op, PyObject *taken)
{
    BalanceObject *b = (BalanceObject *)op;
    int n = pn_balance_nslots(b->table);
    char *used = PyMem_Calloc((size_t)n, 1);
    if (used == NULL)
        return PyErr_NoMemory();
    PyObject *it = PyObject_GetIter(taken);
    if (it == NULL)
        goto fail;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        long i = PyLong_AsLong(item);
        Py_DECREF(item);
        if (i == -1 && PyErr_Occurred())
            break;
        if (i >= 0 && i < n)
            used[i] = 1;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        goto fail;
    int slot = -1;
    for (int i = 0; i < n && slot < 0; i++)
        if (!used[i])
            slot = i;
    PyMem_Free(used);
    if (slot >= 0)
        pn_balance_reset(b->table, slot);
    return PyLong_FromLong(slot);
fail:
    PyMem_Free(used);
    return NULL;
}

static PyObject *balance_get(PyObject *op, PyObject *arg)
{
    BalanceObject *b = (BalanceObject *)op;
    int i = slot_arg(b, arg);
    if (i < 0)
        return NULL;
    pn_balance_view v;
    pn_balance_get(b->table, i, &v);
    return Py_BuildValue("(OIK)", v.accepting ? Py_True : Py_False, (unsigned)v.conns,
                         (unsigned long long)v.accepted);
}

static PyObject *balance_get_slots(PyObject *op, void *closure)
{
    (void)closure;
    return PyLong_FromLong(pn_balance_nslots(((BalanceObject *)op)->table));
}

static PyMethodDef balance_methods[] = {
    {"reset", balance_reset, METH_O,
     "reset($self, slot, /)\n--\n\nGive slot `slot` to a new worker: not accepting, no "
     "connections (clears what a worker that died left there)."},
    {"assign", balance_assign, METH_O,
     "assign($self, taken, /)\n--\n\nThe lowest slot not among the ints of `taken` (the slots of "
     "the live workers), reset for a new worker; -1 when none is free."},
    {"get", balance_get, METH_O,
     "get($self, slot, /)\n--\n\n(accepting, open connections, accepted connections) of a "
     "slot, as its worker last published them."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef balance_getset[] = {
    {"slots", balance_get_slots, NULL, "Number of slots.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot balance_slots[] = {
    {Py_tp_new, balance_new},
    {Py_tp_dealloc, balance_dealloc},
    {Py_tp_traverse, balance_traverse},
    {Py_tp_methods, balance_methods},
    {Py_tp_getset, balance_getset},
    {Py_tp_doc, "BalanceTable(slots=64)\n"
                "--\n\n"
                "The connection counts of the workers that share listening sockets, in\n"
                "shared memory (seen by threads and by processes forked after it was\n"
                "made).  Pass it to each Worker with a slot index no other live worker\n"
                "holds; a worker holding more than its share of connections leaves new\n"
                "ones to the others for a few milliseconds."},
    {0, NULL},
};

PyType_Spec pn_balance_spec = {
    .name = "pounce._pounce.BalanceTable",
    .basicsize = sizeof(BalanceObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = balance_slots,
};
