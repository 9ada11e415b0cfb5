/*
 * pn_module.c — the pounce._pounce extension module: module state, types,
 * multi-phase init.  Declares Py_MOD_GIL_NOT_USED: nothing here depends on
 * the GIL for its safety (see docs/architecture.md, threading rules).
 */
#include "pn_bridge.h"
#include "pn_compress.h"

#ifndef POUNCE_VERSION
#define POUNCE_VERSION "0.1.0"
#endif

static int intern(PyObject **slot, const char *s)
{
    *slot = PyUnicode_InternFromString(s);
    return *slot ? 0 : -1;
}

static int module_exec(PyObject *m)
{
    pn_modstate *st = pn_get_state(m);
    if (intern(&st->str_type, "type") || intern(&st->str_body, "body") ||
        intern(&st->str_more_body, "more_body") || intern(&st->str_status, "status") ||
        intern(&st->str_headers, "headers") || intern(&st->str_path, "path") ||
        intern(&st->str_http_request, "http.request") ||
        intern(&st->str_http_disconnect, "http.disconnect") ||
        intern(&st->str_http_response_start, "http.response.start") ||
        intern(&st->str_http_response_body, "http.response.body") ||
        intern(&st->str_http_response_pathsend, "http.response.pathsend") ||
        intern(&st->str_trailers, "trailers") || intern(&st->str_create_future, "create_future") ||
        intern(&st->str_set_result, "set_result") || intern(&st->str_done, "done") ||
        intern(&st->str_cancelled, "cancelled") ||
        intern(&st->str_add_done_callback, "add_done_callback") ||
        intern(&st->str_exception, "exception"))
        return -1;
    st->empty_bytes = PyBytes_FromStringAndSize(NULL, 0);
    if (st->empty_bytes == NULL)
        return -1;
    st->asgi_dict = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.4");
    if (st->asgi_dict == NULL)
        return -1;

    PyObject *asyncio = PyImport_ImportModule("asyncio");
    if (asyncio == NULL)
        return -1;
    st->asyncio_task = PyObject_GetAttrString(asyncio, "Task");
    Py_DECREF(asyncio);
    if (st->asyncio_task == NULL)
        return -1;
#if PY_VERSION_HEX >= 0x030C0000
    st->eager_kwargs = Py_BuildValue("{s:O}", "eager_start", Py_True);
    if (st->eager_kwargs == NULL)
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
    return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    pn_modstate *st = pn_get_state(m);
    if (st == NULL)
        return 0;
    Py_VISIT(st->config_type);
    Py_VISIT(st->worker_type);
    Py_VISIT(st->request_type);
    Py_VISIT(st->ready_type);
    Py_VISIT(st->apprun_type);
    Py_VISIT(st->asyncio_task);
    Py_VISIT(st->eager_kwargs);
    Py_VISIT(st->asgi_dict);
    Py_VISIT(st->ready_none);
    Py_VISIT(st->msg_disconnect_template);
    return 0;
}

static int module_clear(PyObject *m)
{
    pn_modstate *st = pn_get_state(m);
    if (st == NULL)
        return 0;
    Py_CLEAR(st->config_type);
    Py_CLEAR(st->worker_type);
    Py_CLEAR(st->request_type);
    Py_CLEAR(st->ready_type);
    Py_CLEAR(st->apprun_type);
    PyObject **strs[] = {&st->str_type,
                         &st->str_body,
                         &st->str_more_body,
                         &st->str_status,
                         &st->str_headers,
                         &st->str_path,
                         &st->str_http_request,
                         &st->str_http_disconnect,
                         &st->str_http_response_start,
                         &st->str_http_response_body,
                         &st->str_http_response_pathsend,
                         &st->str_trailers,
                         &st->str_create_future,
                         &st->str_set_result,
                         &st->str_done,
                         &st->str_cancelled,
                         &st->str_add_done_callback,
                         &st->str_exception,
                         &st->asyncio_task,
                         &st->eager_kwargs,
                         &st->empty_bytes,
                         &st->asgi_dict,
                         &st->ready_none,
                         &st->str_http,
                         &st->str_http10,
                         &st->str_http11,
                         &st->str_scheme_http,
                         &st->msg_disconnect_template,
                         &st->str_websocket,
                         &st->str_ws,
                         &st->str_empty};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        Py_CLEAR(*strs[i]);
    for (int i = 0; i < PN_KEY_COUNT; i++)
        Py_CLEAR(st->keys[i]);
    for (int i = 0; i < PN_METHOD_COUNT; i++)
        Py_CLEAR(st->methods[i]);
    for (int i = 0; i < PN_HNAME_COUNT; i++)
        Py_CLEAR(st->hnames[i]);
    return 0;
}

static void module_free(void *m)
{
    module_clear((PyObject *)m);
}

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
