/*
 * pn_module.c — the pounce._pounce extension module: its state (pn_bridge.h),
 * the interned strings, multi-phase init, traverse and clear.
 *
 * Owns: the module state and every reference in it (types, interned
 * strings, shared constants), created by module_exec and the init functions
 * it calls, released by module_clear.  Threads: exec runs once per import,
 * on the importing thread; afterwards the state is read-only and shared by
 * every worker thread.  Declares Py_MOD_GIL_NOT_USED: nothing here depends
 * on the GIL for its safety (see docs/architecture.md, threading rules).
 */
#include "pn_bridge.h"
#include "pn_compress.h"
#include "pn_tls.h"

#include <signal.h>
#include <sys/prctl.h>

#ifndef POUNCE_VERSION
#define POUNCE_VERSION "0.1.0"
#endif

/* The text of each interned string, in PN_ID_* order. */
static const char *const interned_text[PN_ID_COUNT] = {
#define PN_INTERNED_TEXT(name, text) [PN_ID_##name] = text,
    PN_INTERNED_STRINGS(PN_INTERNED_TEXT)
#undef PN_INTERNED_TEXT
};

static int module_exec(PyObject *m)
{
    pn_modstate *st = pn_get_state(m);
    for (int i = 0; i < PN_ID_COUNT; i++)
        if ((st->ids[i] = PyUnicode_InternFromString(interned_text[i])) == NULL)
            return -1;
    st->empty_bytes = PyBytes_FromStringAndSize(NULL, 0);
    if (st->empty_bytes == NULL)
        return -1;
    /* asyncio is not imported here: the pounce command loads this module to
     * parse its settings and then execs the master, so importing asyncio
     * there would be wasted; each Worker takes asyncio.Task from the asyncio
     * its loop runs on (pn_worker_type.c). */
    st->asgi_dict = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.4");
    if (st->asgi_dict == NULL)
        return -1;

#if PY_VERSION_HEX >= 0x030C0000
    /* (PyDict_SetItemString interns the key: the Task's argument parser
     * then finds it by identity, not by comparing the text.) */
    st->eager_kwargs = PyDict_New();
    if (st->eager_kwargs == NULL ||
        PyDict_SetItemString(st->eager_kwargs, "eager_start", Py_True) < 0)
        return -1;
#endif

    if (pn_config_type_init(m, st) < 0)
        return -1;
    if (pn_asgi_init(m, st) < 0)
        return -1;
    if (PyModule_AddStringConstant(m, "VERSION", POUNCE_VERSION) < 0)
        return -1;
    /* The compiled-in response codecs, in default preference order. */
    PyObject *codecs = PyTuple_New(0);
    const char *list = pn_compress_codecs();
    if (codecs != NULL && list[0] != '\0') {
        PyObject *text = PyUnicode_FromString(list);
        PyObject *comma = text ? PyUnicode_FromString(",") : NULL;
        PyObject *parts = comma ? PyUnicode_Split(text, comma, -1) : NULL;
        Py_XDECREF(text);
        Py_XDECREF(comma);
        Py_SETREF(codecs, parts ? PyList_AsTuple(parts) : NULL);
        Py_XDECREF(parts);
    }
    if (codecs == NULL || PyModule_AddObjectRef(m, "CODECS", codecs) < 0) {
        Py_XDECREF(codecs);
        return -1;
    }
    Py_DECREF(codecs);
    /* The TLS library (pn_tls.c), for `pounce --version`. */
    if (PyModule_AddStringConstant(m, "TLS_LIBRARY", pn_tls_library()) < 0)
        return -1;
    return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    pn_modstate *st = pn_get_state(m);
    if (st == NULL)
        return 0;
#define PN_VISIT_REF(member) Py_VISIT(st->member);
    PN_MODSTATE_REFS(PN_VISIT_REF)
#undef PN_VISIT_REF
    for (int i = 0; i < PN_ID_COUNT; i++)
        Py_VISIT(st->ids[i]);
    for (int i = 0; i < PN_HNAME_COUNT; i++)
        Py_VISIT(st->hnames[i]);
    return 0;
}

/* The same members as module_traverse, in the same order. */
static int module_clear(PyObject *m)
{
    pn_modstate *st = pn_get_state(m);
    if (st == NULL)
        return 0;
#define PN_CLEAR_REF(member) Py_CLEAR(st->member);
    PN_MODSTATE_REFS(PN_CLEAR_REF)
#undef PN_CLEAR_REF
    for (int i = 0; i < PN_ID_COUNT; i++)
        Py_CLEAR(st->ids[i]);
    for (int i = 0; i < PN_HNAME_COUNT; i++)
        Py_CLEAR(st->hnames[i]);
    return 0;
}

static void module_free(void *m)
{
    module_clear((PyObject *)m);
}

/* set_pdeathsig(sig): the kernel sends `sig` to this process when the
 * thread that forked it exits (prctl(2) PR_SET_PDEATHSIG), so a worker or
 * a generation never outlives a killed parent (src/pounce/_control.py).
 * The caller checks getppid() afterwards: the parent may have died before
 * the call.  Not in the stdlib; one syscall, no state. */
static PyObject *set_pdeathsig(PyObject *Py_UNUSED(module), PyObject *arg)
{
    long sig = PyLong_AsLong(arg);
    if (sig == -1 && PyErr_Occurred())
        return NULL;
    if (sig < 0 || sig >= NSIG) {
        PyErr_Format(PyExc_ValueError, "signal number out of range: %ld", sig);
        return NULL;
    }
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0UL, 0UL, 0UL) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"set_pdeathsig", set_pdeathsig, METH_O,
     "set_pdeathsig($module, sig, /)\n--\n\nHave the kernel send sig to this process when "
     "the thread that forked it exits (prctl PR_SET_PDEATHSIG; 0 clears it)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pounce._pounce",
    .m_doc = "Pounce C core: HTTP/1.1 protocol, runtime and ASGI bridge.",
    .m_size = sizeof(pn_modstate),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

pn_modstate *pn_get_state_by_type(PyTypeObject *tp)
{
    PyObject *m = PyType_GetModuleByDef(tp, &module_def);
    if (m == NULL)
        return NULL;
    return pn_get_state(m);
}

PyMODINIT_FUNC PyInit__pounce(void)
{
    return PyModuleDef_Init(&module_def);
}
