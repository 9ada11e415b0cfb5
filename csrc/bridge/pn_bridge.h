/*
 * pn_bridge — shared declarations of the ASGI bridge (the only layer that
 * includes Python.h and creates Python objects).
 *
 * Module state holds every type and cached object; there is no static
 * mutable state anywhere in the extension (free-threading rule 4).  The
 * module declares Py_MOD_GIL_NOT_USED.
 */
#ifndef PN_BRIDGE_H
#define PN_BRIDGE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pn_config.h"

/* Interned scope keys (pn_asgi.c lists their text). */
enum {
    PN_KEY_TYPE,
    PN_KEY_ASGI,
    PN_KEY_HTTP_VERSION,
    PN_KEY_SERVER,
    PN_KEY_CLIENT,
    PN_KEY_SCHEME,
    PN_KEY_METHOD,
    PN_KEY_ROOT_PATH,
    PN_KEY_PATH,
    PN_KEY_RAW_PATH,
    PN_KEY_QUERY_STRING,
    PN_KEY_HEADERS,
    PN_KEY_STATE,
    PN_KEY_EXTENSIONS,
    PN_KEY_PATHSEND,
    PN_KEY_POUNCE_WORKER,
    PN_KEY_COUNT
};
#define PN_METHOD_COUNT 9
#define PN_HNAME_COUNT 32

typedef struct pn_modstate {
    PyTypeObject *config_type;  /* pounce.Config (pn_config_type.c) */
    PyTypeObject *worker_type;  /* _pounce.Worker (pn_asgi.c) */
    PyTypeObject *request_type; /* per-request receive/send owner */
    PyTypeObject *ready_type;   /* completed awaitable */
    PyTypeObject *apprun_type;  /* the app's coroutine as its Task drives it */
    /* interned strings and constants, created at module exec */
    PyObject *str_type, *str_body, *str_more_body, *str_status, *str_headers;
    PyObject *str_path, *str_http_request, *str_http_disconnect;
    PyObject *str_http_response_start, *str_http_response_body;
    PyObject *str_http_response_pathsend, *str_trailers;
    PyObject *str_create_future, *str_set_result, *str_done, *str_cancelled;
    PyObject *str_add_done_callback, *str_exception;
    PyObject *asyncio_task; /* asyncio.Task */
    PyObject *eager_kwargs; /* {"eager_start": True} on 3.12+, else NULL */
    PyObject *empty_bytes;
    PyObject *asgi_dict;  /* {"version": "3.0", "spec_version": "2.4"} */
    PyObject *ready_none; /* a completed awaitable whose result is None;
                             immutable, so shared by every thread */
    PyObject *str_http, *str_http10, *str_http11, *str_scheme_http;
    PyObject *str_websocket, *str_ws, *str_empty;
    PyObject *msg_disconnect_template;  /* {"type": "http.disconnect"} (copied per use) */
    PyObject *keys[PN_KEY_COUNT];       /* interned scope keys, see pn_key_names */
    PyObject *methods[PN_METHOD_COUNT]; /* interned common method names */
    PyObject *hnames[PN_HNAME_COUNT];   /* common lower-case header names as bytes */
} pn_modstate;

pn_modstate *pn_get_state_by_type(PyTypeObject *tp);
static inline pn_modstate *pn_get_state(PyObject *module)
{
    return (pn_modstate *)PyModule_GetState(module);
}

/* pn_config_type.c: create pounce.Config and store it in state->config_type.
 * Also adds the module attribute SETTINGS (the settings table as a tuple of
 * tuples, see pn_config_type.c).  0 / -1 with an exception. */
int pn_config_type_init(PyObject *module, pn_modstate *st);
/* The C struct inside a Config object, or NULL with TypeError. */
const pn_config *pn_config_struct(pn_modstate *st, PyObject *obj);
int pn_config_traverse(pn_modstate *st, visitproc visit, void *arg);

/* pn_asgi.c: Worker/Request/Ready types. */
int pn_asgi_init(PyObject *module, pn_modstate *st);

#endif
