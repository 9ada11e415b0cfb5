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

/* Every interned string of the module, generated into st->ids[] (see
 * PN_ID below): X(C name, text).  The scope keys come first, in the order
 * apps see them when they print a scope.  The HTTP methods are one run
 * (PN_ID_GET .. PN_ID_TRACE) that pn_scope.c searches. */
#define PN_INTERNED_STRINGS(X)                                                                     \
    /* scope keys */                                                                               \
    X(type, "type")                                                                                \
    X(asgi, "asgi")                                                                                \
    X(http_version, "http_version")                                                                \
    X(server, "server")                                                                            \
    X(client, "client")                                                                            \
    X(scheme, "scheme")                                                                            \
    X(method, "method")                                                                            \
    X(root_path, "root_path")                                                                      \
    X(path, "path")                                                                                \
    X(raw_path, "raw_path")                                                                        \
    X(query_string, "query_string")                                                                \
    X(headers, "headers")                                                                          \
    X(state, "state")                                                                              \
    X(extensions, "extensions")                                                                    \
    /* scope values */                                                                             \
    X(http, "http")                                                                                \
    X(https, "https")                                                                              \
    X(http10, "1.0")                                                                               \
    X(http11, "1.1")                                                                               \
    X(http2, "2")                                                                                  \
    X(pounce_worker, "pounce.worker")                                                              \
    X(pounce_request_id, "pounce.request_id")                                                      \
    /* the ASGI TLS extension (scope["extensions"]["tls"]) */                                      \
    X(tls, "tls")                                                                                  \
    X(server_cert, "server_cert")                                                                  \
    X(client_cert_chain, "client_cert_chain")                                                      \
    X(client_cert_name, "client_cert_name")                                                        \
    X(client_cert_error, "client_cert_error")                                                      \
    X(tls_version, "tls_version")                                                                  \
    X(cipher_suite, "cipher_suite")                                                                \
    X(server_name, "server_name") /* a Pounce addition: the SNI name */                            \
    /* HTTP messages: types and keys */                                                            \
    X(http_request, "http.request")                                                                \
    X(http_disconnect, "http.disconnect")                                                          \
    X(http_response_start, "http.response.start")                                                  \
    X(http_response_body, "http.response.body")                                                    \
    X(http_response_pathsend, "http.response.pathsend")                                            \
    X(http_response_trailers, "http.response.trailers")                                            \
    X(trailers, "trailers")                                                                        \
    X(more_trailers, "more_trailers")                                                              \
    X(body, "body")                                                                                \
    X(more_body, "more_body")                                                                      \
    X(status, "status")                                                                            \
    /* asyncio.Future methods */                                                                   \
    X(done, "done")                                                                                \
    X(set_result, "set_result")                                                                    \
    /* asyncio.Task keyword (CPython 3.11: pn_awaitable.c names request Tasks) */                  \
    X(name, "name")                                                                                \
    /* WebSocket scope and messages */                                                             \
    X(websocket, "websocket")                                                                      \
    X(ws, "ws")                                                                                    \
    X(wss, "wss")                                                                                  \
    X(subprotocols, "subprotocols")                                                                \
    X(websocket_http_response, "websocket.http.response")                                          \
    X(websocket_connect, "websocket.connect")                                                      \
    X(websocket_receive, "websocket.receive")                                                      \
    X(websocket_disconnect, "websocket.disconnect")                                                \
    X(websocket_accept, "websocket.accept")                                                        \
    X(websocket_send, "websocket.send")                                                            \
    X(websocket_close, "websocket.close")                                                          \
    X(websocket_http_response_start, "websocket.http.response.start")                              \
    X(websocket_http_response_body, "websocket.http.response.body")                                \
    X(bytes, "bytes")                                                                              \
    X(text, "text")                                                                                \
    X(code, "code")                                                                                \
    X(reason, "reason")                                                                            \
    X(subprotocol, "subprotocol")                                                                  \
    X(empty, "")                                                                                   \
    /* request methods, one run */                                                                 \
    X(GET, "GET")                                                                                  \
    X(POST, "POST")                                                                                \
    X(HEAD, "HEAD")                                                                                \
    X(PUT, "PUT")                                                                                  \
    X(DELETE, "DELETE")                                                                            \
    X(OPTIONS, "OPTIONS")                                                                          \
    X(PATCH, "PATCH")                                                                              \
    X(CONNECT, "CONNECT")                                                                          \
    X(TRACE, "TRACE")

enum {
#define PN_INTERNED_ENUM(name, text) PN_ID_##name,
    PN_INTERNED_STRINGS(PN_INTERNED_ENUM)
#undef PN_INTERNED_ENUM
        PN_ID_COUNT
};

/* st->ids[PN_ID_name]: the interned string `name` of PN_INTERNED_STRINGS. */
#define PN_ID(st, name) ((st)->ids[PN_ID_##name])

#define PN_HNAME_COUNT 32

/* The module's state.  Every member is a strong reference, created by
 * module_exec (pn_module.c) and the init functions it calls, visited and
 * released through PN_MODSTATE_REFS and the two arrays. */
typedef struct pn_modstate {
    PyTypeObject *config_type;    /* pounce.Config (pn_config_type.c) */
    PyTypeObject *worker_type;    /* _pounce.Worker (pn_worker_type.c) */
    PyTypeObject *request_type;   /* one HTTP request cycle (pn_http.c) */
    PyTypeObject *websocket_type; /* one WebSocket session (pn_websocket.c) */
    PyTypeObject *ready_type;     /* completed awaitable (pn_awaitable.c) */
    PyTypeObject *apprun_type;    /* the app's coroutine as its Task drives it (pn_awaitable.c) */
    PyTypeObject *balance_type;   /* _pounce.BalanceTable (pn_balance_type.c) */
    PyTypeObject *metrics_type;   /* _pounce.MetricsTable (pn_metrics_type.c) */
    PyObject *eager_kwargs;       /* {"eager_start": True} on 3.12+, else NULL */
    PyObject *empty_bytes;        /* b"" */
    PyObject *asgi_dict;          /* {"version": "3.0", "spec_version": "2.4"} */
    /* A completed awaitable whose result is None; immutable, so shared by
     * every thread. */
    PyObject *ready_none;
    PyObject *msg_disconnect_template; /* {"type": "http.disconnect"} (copied per use) */
    PyObject *ids[PN_ID_COUNT];        /* interned, see PN_INTERNED_STRINGS */
    PyObject *hnames[PN_HNAME_COUNT];  /* common lower-case header names as bytes */
} pn_modstate;

/* Every reference the module state holds besides its arrays, for the
 * module's traverse and clear alike: one list, so the two cannot drift. */
#define PN_MODSTATE_REFS(X)                                                                        \
    X(config_type)                                                                                 \
    X(worker_type)                                                                                 \
    X(request_type)                                                                                \
    X(websocket_type)                                                                              \
    X(ready_type)                                                                                  \
    X(apprun_type)                                                                                 \
    X(balance_type)                                                                                \
    X(metrics_type)                                                                                \
    X(eager_kwargs)                                                                                \
    X(empty_bytes)                                                                                 \
    X(asgi_dict)                                                                                   \
    X(ready_none)                                                                                  \
    X(msg_disconnect_template)

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
/* The TLS context of a Config (obj checked by pn_config_struct first), or
 * NULL without TLS; valid while obj lives. */
const struct pn_tls_ctx *pn_config_tls(pn_modstate *st, PyObject *obj);
int pn_config_traverse(pn_modstate *st, visitproc visit, void *arg);

/* pn_worker_type.c: create the ASGI side's types (Worker, Request,
 * WebSocket, Ready, AppRun) and the objects they share.  0 / -1 with an exception. */
int pn_asgi_init(PyObject *module, pn_modstate *st);

#endif
