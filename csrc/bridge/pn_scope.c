/*
 * pn_scope.c — the ASGI scope of a request, built once per request from the
 * slices of the parsed head (nothing is copied before it becomes a Python
 * object): path decoding, the tables of shared names (methods, common
 * header names), the worker's scope templates, and the `http` and
 * `websocket` scopes, with the client, scheme and Host that trusted
 * proxy headers name (pn_forwarded.h: parsed and resolved in the core,
 * only turned into objects here).
 *
 * Owns: nothing per request; the templates belong to the Worker
 * (pn_scope_templates), the shared names to the module state
 * (pn_scope_init).  Threads: the worker's thread only (pn_asgi.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "pn_asgi.h"
#include "pn_http_token.h"
#include "pn_log.h"
#include "pn_tls.h"
#include "pn_worker.h" /* pn_worker_trust */
#include "pn_ws_handshake.h"

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
            int hi = pn_http_hexval((unsigned char)p[i + 1]),
                lo = pn_http_hexval((unsigned char)p[i + 2]);
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
        d[i] = (char)pn_http_lower((unsigned char)p[i]);
    }
    return b;
}

/* A new (host, port) tuple. */
static PyObject *host_port(const char *host, size_t n, unsigned port)
{
    /* (Built by hand: Py_BuildValue's format parsing costs more.) */
    PyObject *h = PyUnicode_DecodeASCII(host, (Py_ssize_t)n, "strict");
    PyObject *p = h ? PyLong_FromLong((long)port) : NULL;
    PyObject *t = p ? PyTuple_New(2) : NULL;
    if (t == NULL) {
        Py_XDECREF(h);
        Py_XDECREF(p);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, h); /* (stolen) */
    PyTuple_SET_ITEM(t, 1, p);
    return t;
}

/* scope["client"]: (host, port) for an IP peer, None for a Unix socket.
 * The tuple of a peer is made once and shared by the scopes of its
 * requests while its slot of w->client_cache holds it (pn_asgi.h). */
static PyObject *client_tuple(WorkerObject *w, const struct sockaddr_storage *peer)
{
    const unsigned char *addr;
    size_t alen;
    unsigned port;
    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)peer;
        addr = (const unsigned char *)&sin->sin_addr;
        alen = 4;
        port = ntohs(sin->sin_port);
    } else if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)peer;
        addr = (const unsigned char *)&sin6->sin6_addr;
        alen = 16;
        port = ntohs(sin6->sin6_port);
    } else {
        Py_RETURN_NONE;
    }
    pn_client_slot *c = &w->client_cache[(port ^ addr[alen - 1]) % PN_CLIENT_CACHE];
    if (c->tuple && c->family == peer->ss_family && c->port == port &&
        memcmp(c->addr, addr, alen) == 0)
        return Py_NewRef(c->tuple);
    char host[INET6_ADDRSTRLEN];
    size_t n;
    if (alen == 4) {
        n = pn_log_format_ipv4(host, addr);
    } else {
        inet_ntop(AF_INET6, addr, host, sizeof(host));
        n = strlen(host);
    }
    PyObject *t = host_port(host, n, port);
    if (t != NULL) {
        Py_XSETREF(c->tuple, Py_NewRef(t));
        c->family = peer->ss_family;
        c->port = (unsigned short)port;
        memcpy(c->addr, addr, alen);
    }
    return t;
}

/* scope["client"] as proxy headers name it: (address, port) with port 0
 * when the hop gave none, (name, port) for an obfuscated node, None for
 * `unknown` (as for a Unix socket: no address to give). */
static PyObject *fwd_client_tuple(const pn_fwd_result *f)
{
    char text[PN_IPADDR_TEXT];
    const char *host = text;
    size_t n;
    if (f->client == PN_FWD_CLIENT_UNKNOWN)
        Py_RETURN_NONE;
    if (f->client == PN_FWD_CLIENT_NAME) {
        host = f->name;
        n = f->name_len;
    } else if (f->addr.family == PN_IP_V4) {
        n = pn_log_format_ipv4(text, f->addr.bytes);
    } else {
        n = pn_ipaddr_format(&f->addr, text);
    }
    return host_port(host, n, f->port);
}

const pn_fwd_result *pn_scope_forwarded(WorkerObject *w, pn_stream *s, const pn_http1_request *req,
                                        pn_fwd_result *buf)
{
    /* An untrusted peer's headers are never read: the transport judged the
     * peer once per connection (pn_stream.peer_trusted). */
    if (!w->cfg->proxy_headers || !s->peer_trusted)
        return NULL;
    int rc =
        pn_forwarded_resolve(buf, req->headers, req->num_headers, pn_worker_trust(w->w), NULL,
                             PN_FWD_PEER_TRUSTED | (w->cfg->x_forwarded_host ? PN_FWD_X_HOST : 0));
    return rc == PN_FWD_APPLY ? buf : NULL;
}

/* Whether the client used TLS: what a trusted proxy header says (it speaks
 * for the client's own hop), else what the PROXY protocol's SSL TLV said
 * (s->tls: the hop that terminated TLS is the one talking to us). */
static int scope_secure(const pn_stream *s, const pn_fwd_result *fwd)
{
    if (fwd && fwd->scheme != PN_FWD_SCHEME_NONE)
        return fwd->scheme == PN_FWD_SCHEME_HTTPS || fwd->scheme == PN_FWD_SCHEME_WSS;
    return s->tls;
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

/* ---- repeated immutable parts -----------------------------------------------
 *
 * A client sends the same fields on every request (Host, User-Agent,
 * Accept, Accept-Encoding, Accept-Language: the same on each request of a
 * connection, and across a browser's connections), and clients ask for
 * the same paths.  A scope's header pairs are tuples of bytes and its path
 * and raw_path a str and bytes, all immutable, so a request that repeats
 * what an earlier one on this worker sent gets the very objects made then:
 * two allocations and two deallocations less per field.  The worker keeps
 * the last ones made, direct-mapped by a few of their bytes (pn_asgi.h);
 * a miss replaces the slot.  Only short fields are kept (name and value up
 * to 64 bytes each: the caches stay under ~35 KiB), and never the values
 * of Cookie, Authorization or Proxy-Authorization: credentials are not
 * held past their request. */
#define HDR_CACHE_MAX 64
#define PATH_CACHE_MAX 128

static unsigned hdr_slot(const char *n, size_t nl, const char *v, size_t vl)
{
    unsigned h = (unsigned)nl * 31u + (unsigned)vl * 7u;
    if (nl > 0) /* (a parsed name never is empty; a name of another source may be) */
        h += pn_http_lower((unsigned char)n[0]);
    if (vl > 0)
        h += (unsigned char)v[vl - 1] * 3u + (unsigned char)v[vl >> 1];
    return h % PN_HDR_CACHE;
}

static int is_credential(const char *n, size_t nl)
{
    return PN_NAME_IS(n, nl, "cookie") || PN_NAME_IS(n, nl, "authorization") ||
           PN_NAME_IS(n, nl, "proxy-authorization");
}

/* The lower-case name lc equals n[0..nl) in any case. */
static int lower_eq(const char *lc, const char *n, size_t nl)
{
    for (size_t i = 0; i < nl; i++)
        if (lc[i] != (char)pn_http_lower((unsigned char)n[i]))
            return 0;
    return 1;
}

/* scope["headers"]'s (name, value) for one field: a new reference. */
static PyObject *header_pair(WorkerObject *w, pn_modstate *st, const char *n, size_t nl,
                             const char *v, size_t vl)
{
    PyObject **slot = NULL;
    if (vl <= HDR_CACHE_MAX && nl <= HDR_CACHE_MAX && !is_credential(n, nl)) {
        slot = &w->hdr_cache[hdr_slot(n, nl, v, vl)];
        PyObject *pair = *slot;
        if (pair != NULL) {
            PyObject *cn = PyTuple_GET_ITEM(pair, 0); /* borrowed from our own tuple */
            PyObject *cv = PyTuple_GET_ITEM(pair, 1); /* likewise */
            if (PyBytes_GET_SIZE(cv) == (Py_ssize_t)vl && PyBytes_GET_SIZE(cn) == (Py_ssize_t)nl &&
                memcmp(PyBytes_AS_STRING(cv), v, vl) == 0 && lower_eq(PyBytes_AS_STRING(cn), n, nl))
                return Py_NewRef(pair);
        }
    }
    PyObject *name = header_name(st, n, nl);
    PyObject *value = name ? PyBytes_FromStringAndSize(v, (Py_ssize_t)vl) : NULL;
    PyObject *pair = value ? PyTuple_New(2) : NULL;
    if (pair == NULL) {
        Py_XDECREF(name);
        Py_XDECREF(value);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, name); /* (stolen) */
    PyTuple_SET_ITEM(pair, 1, value);
    if (slot)
        Py_XSETREF(*slot, Py_NewRef(pair));
    return pair;
}

/* scope["path"] and scope["raw_path"] (root_path in front of both) for the
 * request target's path: new references in *path and *raw; 0 / -1. */
static int path_pair(WorkerObject *w, const char *p, size_t n, PyObject **path, PyObject **raw)
{
    Py_ssize_t rlen = PyBytes_GET_SIZE(w->root_path_bytes);
    pn_path_slot *slot = NULL;
    if (n <= PATH_CACHE_MAX) {
        unsigned h = (unsigned)n * 7u;
        if (n > 0)
            h += (unsigned char)p[n - 1] * 3u + (unsigned char)p[n >> 1];
        slot = &w->path_cache[h % PN_PATH_CACHE];
        if (slot->raw != NULL && PyBytes_GET_SIZE(slot->raw) == rlen + (Py_ssize_t)n &&
            memcmp(PyBytes_AS_STRING(slot->raw) + rlen, p, n) == 0) {
            *path = Py_NewRef(slot->path);
            *raw = Py_NewRef(slot->raw);
            return 0;
        }
    }
    PyObject *s = decode_path(p, n);
    if (s != NULL && PyUnicode_GET_LENGTH(w->root_path_str) > 0)
        Py_SETREF(s, PyUnicode_Concat(w->root_path_str, s));
    PyObject *b = s ? PyBytes_FromStringAndSize(NULL, rlen + (Py_ssize_t)n) : NULL;
    if (b == NULL) {
        Py_XDECREF(s);
        return -1;
    }
    memcpy(PyBytes_AS_STRING(b), PyBytes_AS_STRING(w->root_path_bytes), (size_t)rlen);
    memcpy(PyBytes_AS_STRING(b) + rlen, p, n);
    if (slot) {
        Py_XSETREF(slot->path, Py_NewRef(s));
        Py_XSETREF(slot->raw, Py_NewRef(b));
    }
    *path = s;
    *raw = b;
    return 0;
}

static int set_key(pn_modstate *st, PyObject *d, int key, PyObject *v /* stolen */)
{
    if (v == NULL)
        return -1;
    int rc = PyDict_SetItem(d, st->ids[key], v);
    Py_DECREF(v);
    return rc;
}

/* A new str from PEM or RFC 4514 text OpenSSL wrote (ASCII, but a
 * subject may hold UTF-8). */
static PyObject *text_of(const pn_buf *b)
{
    return PyUnicode_DecodeUTF8(b->data ? b->data : "", (Py_ssize_t)b->len, "replace");
}

/* The connection's certificates for the tls extension: the client's own,
 * then the chain it sent; () without one.  A tuple: the spec asks for an
 * iterable, and an immutable one can be shared by the requests of the
 * connection. */
static PyObject *client_chain(const pn_stream *s)
{
    PyObject *chain = PyList_New(0);
    pn_buf b = PN_BUF_INIT;
    for (int i = 0; chain != NULL; i++) {
        pn_buf_clear(&b);
        int rc = pn_tls_session_peer_cert(s->tls_session, i, &b);
        if (rc == 0)
            break;
        PyObject *pem = rc > 0 ? text_of(&b) : PyErr_NoMemory();
        if (pem == NULL || PyList_Append(chain, pem) < 0)
            Py_CLEAR(chain);
        Py_XDECREF(pem);
    }
    pn_buf_free(&b);
    if (chain == NULL)
        return NULL;
    PyObject *t = PyList_AsTuple(chain);
    Py_DECREF(chain);
    return t;
}

/* A new tls extension dict for s's session. */
static PyObject *tls_dict(WorkerObject *w, const pn_stream *s)
{
    pn_modstate *st = worker_state(w);
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    pn_buf b = PN_BUF_INIT;
    int named = pn_tls_session_peer_name(s->tls_session, &b);
    PyObject *name = named > 0 ? text_of(&b) : named == 0 ? Py_NewRef(Py_None) : PyErr_NoMemory();
    pn_buf_free(&b);
    const char *why = pn_tls_session_verify_error(s->tls_session);
    const char *sni = pn_tls_session_server_name(s->tls_session);
    if (name == NULL ||
        PyDict_SetItem(d, PN_ID(st, server_cert), w->server_cert ? w->server_cert : Py_None) < 0 ||
        set_key(st, d, PN_ID_client_cert_chain, client_chain(s)) < 0 ||
        PyDict_SetItem(d, PN_ID(st, client_cert_name), name) < 0 ||
        (why ? set_key(st, d, PN_ID_client_cert_error, PyUnicode_FromString(why))
             : PyDict_SetItem(d, PN_ID(st, client_cert_error), Py_None)) < 0 ||
        (sni ? set_key(st, d, PN_ID_server_name, PyUnicode_DecodeLatin1(sni, strlen(sni), NULL))
             : PyDict_SetItem(d, PN_ID(st, server_name), Py_None)) < 0 ||
        set_key(st, d, PN_ID_tls_version, PyLong_FromLong(pn_tls_session_version(s->tls_session))) <
            0 ||
        set_key(st, d, PN_ID_cipher_suite, PyLong_FromLong(pn_tls_session_cipher(s->tls_session))) <
            0)
        Py_CLEAR(d);
    Py_XDECREF(name);
    return d;
}

/* extensions["tls"], the ASGI TLS extension, on a connection whose TLS we
 * terminated (s->tls_session).  client_cert_error is None but with
 * --ssl-cert-reqs optional and a client certificate that did not verify
 * (required refuses those handshakes).  The values stay the same for a connection's
 * requests: keep-alive requests get a copy of the dict made for the first
 * (cached per worker under the session's serial).  Out of line: plain TCP
 * pays one test. */
__attribute__((noinline)) static int put_tls(WorkerObject *w, PyObject *ext, const pn_stream *s)
{
    pn_modstate *st = worker_state(w);
    if (w->tls_cache == NULL || w->tls_cache_serial != s->tls_serial) {
        PyObject *fresh = tls_dict(w, s);
        if (fresh == NULL)
            return -1;
        Py_XSETREF(w->tls_cache, fresh);
        w->tls_cache_serial = s->tls_serial;
    }
    PyObject *d = PyDict_Copy(w->tls_cache); /* the app may change its own */
    if (d == NULL)
        return -1;
    int rc = PyDict_SetItem(ext, PN_ID(st, tls), d);
    Py_DECREF(d);
    return rc;
}

/* --request-id: extensions["pounce.request_id"], the ID the transport chose
 * (ASCII by construction: pn_request_id.h).  Callers test request_id_len
 * first: out of line, off costs them that test only. */
__attribute__((noinline)) static int put_request_id(pn_modstate *st, PyObject *ext,
                                                    const pn_stream *s)
{
    PyObject *id = PyUnicode_New(s->request_id_len, 127);
    if (id == NULL)
        return -1;
    memcpy(PyUnicode_DATA(id), s->request_id, s->request_id_len);
    int rc = PyDict_SetItem(ext, PN_ID(st, pounce_request_id), id);
    Py_DECREF(id);
    return rc;
}

int pn_scope_templates(WorkerObject *w)
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
    /* The defaults pn_scope_http keeps unless a request differs. */
    PyObject *server0 =
        PyTuple_GET_SIZE(w->servers) > 0 ? PyTuple_GET_ITEM(w->servers, 0) : Py_None;
    if (PyDict_SetItem(t, PN_ID(st, type), PN_ID(st, http)) < 0 ||
        PyDict_SetItem(t, PN_ID(st, scheme), PN_ID(st, http)) < 0 ||
        PyDict_SetItem(t, PN_ID(st, root_path), w->root_path_str) < 0 ||
        PyDict_SetItem(t, PN_ID(st, http_version), PN_ID(st, http11)) < 0 ||
        PyDict_SetItem(t, PN_ID(st, server), server0) < 0 ||
        PyDict_SetItem(t, PN_ID(st, method), PN_ID(st, GET)) < 0 ||
        PyDict_SetItem(t, PN_ID(st, query_string), st->empty_bytes) < 0)
        goto fail;
    w->scope_template = t;
    w->scope_template_https = PyDict_Copy(t);
    if (w->scope_template_https == NULL ||
        PyDict_SetItem(w->scope_template_https, PN_ID(st, scheme), PN_ID(st, https)) < 0)
        return -1;
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
PyObject *pn_scope_http(WorkerObject *w, pn_stream *s, const pn_http1_request *req, int decoded,
                        const pn_fwd_result *fwd)
{
    pn_modstate *st = worker_state(w);
    /* http and ws answers keep "http"; the WebSocket scope maps the same
     * two answers to "ws" / "wss". */
    PyObject *scope =
        PyDict_Copy(scope_secure(s, fwd) ? w->scope_template_https : w->scope_template);
    if (scope == NULL)
        return NULL;
    PyObject *server = PyTuple_GetItem(w->servers, s->listener); /* borrowed from our tuple */
    if (server == NULL)
        goto fail;
    /* The template holds the commonest values of http_version ("1.1"),
     * server (the first listener's), method ("GET") and query_string (b""):
     * each is set only when this request differs, a dict store less
     * (~120-230 instructions by CPython version) for each that does not. */
    PyObject *version = s->http2 ? PN_ID(st, http2) : req->version_minor ? NULL : PN_ID(st, http10);
    PyObject *method = method_str(st, req->method, req->method_len);
    if (method == NULL)
        goto fail;
    if (method == PN_ID(st, GET))
        Py_DECREF(method);
    else if (set_key(st, scope, PN_ID_method, method) < 0)
        goto fail;
    if (set_key(st, scope, PN_ID_asgi, PyDict_Copy(st->asgi_dict)) < 0 ||
        (version && PyDict_SetItem(scope, PN_ID(st, http_version), version) < 0) ||
        (s->listener != 0 && PyDict_SetItem(scope, PN_ID(st, server), server) < 0) ||
        set_key(st, scope, PN_ID_client,
                fwd && fwd->client != PN_FWD_CLIENT_PEER ? fwd_client_tuple(fwd)
                                                         : client_tuple(w, s->peer)) < 0)
        goto fail;
    PyObject *path, *raw;
    if (path_pair(w, req->path, req->path_len, &path, &raw) < 0)
        goto fail;
    if (set_key(st, scope, PN_ID_path, path) < 0) {
        Py_DECREF(raw);
        goto fail;
    }
    if (set_key(st, scope, PN_ID_raw_path, raw) < 0 ||
        (req->query_len &&
         set_key(st, scope, PN_ID_query_string,
                 PyBytes_FromStringAndSize(req->query, (Py_ssize_t)req->query_len)) < 0))
        goto fail;
    /* A host the proxy headers name replaces the value of the (first) Host
     * field, or is added when the request had none (HTTP/1.0). */
    int host_owed = fwd && fwd->host_len;
    /* Sized for every field up front and filled in place (no append, no
     * regrowth); trimmed below when fields were left out. */
    Py_ssize_t cap = (Py_ssize_t)req->num_headers + (host_owed ? 1 : 0), nh = 0;
    PyObject *headers = PyList_New(cap);
    if (headers == NULL)
        goto fail;
    for (size_t i = 0; i <= req->num_headers; i++) {
        const char *hn, *hv;
        size_t hnl, hvl;
        if (i == req->num_headers) {
            if (!host_owed)
                break;
            static const char host[] = "host";
            hn = host;
            hnl = sizeof host - 1;
            hv = fwd->host;
            hvl = fwd->host_len;
            host_owed = 0;
        } else {
            const pn_http1_header *h = &req->headers[i];
            hn = h->name;
            hnl = h->name_len;
            hv = h->value;
            hvl = h->value_len;
            if (decoded &&
                (PN_NAME_IS(hn, hnl, "content-encoding") || PN_NAME_IS(hn, hnl, "content-length")))
                continue;
            if (host_owed && PN_NAME_IS(hn, hnl, "host")) {
                hv = fwd->host;
                hvl = fwd->host_len;
                host_owed = 0;
            }
        }
        PyObject *pair = header_pair(w, st, hn, hnl, hv, hvl);
        if (pair == NULL) {
            Py_DECREF(headers); /* (its unfilled slots are NULL: fine for dealloc) */
            goto fail;
        }
        PyList_SET_ITEM(headers, nh++, pair);
    }
    if (nh < cap && PyList_SetSlice(headers, nh, cap, NULL) < 0) {
        Py_DECREF(headers);
        goto fail;
    }
    if (set_key(st, scope, PN_ID_headers, headers) < 0)
        goto fail;
    if (w->state != Py_None && PyDict_Check(w->state)) {
        if (set_key(st, scope, PN_ID_state, PyDict_Copy(w->state)) < 0)
            goto fail;
    }
    PyObject *ext = PyDict_Copy(w->ext_template);
    PyObject *ps = ext ? PyDict_New() : NULL;
    if (ps == NULL || PyDict_SetItem(ext, PN_ID(st, http_response_pathsend), ps) < 0 ||
        (s->request_id_len && put_request_id(st, ext, s) < 0) ||
        (s->tls_session && put_tls(w, ext, s) < 0)) {
        Py_XDECREF(ps);
        Py_XDECREF(ext);
        goto fail;
    }
    Py_DECREF(ps);
    /* http.response.trailers: only when the transport can deliver them
     * (HTTP/2; HTTP/1.1 with TE: trailers): pn_stream.h, pn_http.c. */
    if (s->trailers) {
        PyObject *tr = PyDict_New();
        if (tr == NULL || PyDict_SetItem(ext, PN_ID(st, http_response_trailers), tr) < 0) {
            Py_XDECREF(tr);
            Py_DECREF(ext);
            goto fail;
        }
        Py_DECREF(tr);
    }
    if (set_key(st, scope, PN_ID_extensions, ext) < 0)
        goto fail;
    return scope;
fail:
    Py_DECREF(scope);
    return NULL;
}

PyObject *pn_scope_websocket(WorkerObject *w, pn_stream *s, const pn_http1_request *req,
                             const pn_fwd_result *fwd)
{
    /* Start from the HTTP scope (same keys, same rules), then adjust. */
    PyObject *scope = pn_scope_http(w, s, req, 0, fwd);
    if (scope == NULL)
        return NULL;
    pn_modstate *st = worker_state(w);
    PyObject *subs = PyList_New(0);
    if (subs == NULL)
        goto fail;
    pn_ws_list_iter it;
    const char *tok;
    size_t len;
    pn_ws_protocols_begin(&it, req);
    while (pn_ws_protocols_next(&it, &tok, &len)) {
        PyObject *proto = PyUnicode_DecodeLatin1(tok, (Py_ssize_t)len, NULL);
        if (proto == NULL || PyList_Append(subs, proto) < 0) {
            Py_XDECREF(proto);
            Py_DECREF(subs);
            goto fail;
        }
        Py_DECREF(proto);
    }
    /* extensions: {"websocket.http.response": {}, "pounce.worker": id
     * [, "pounce.request_id": str]} */
    PyObject *ext = PyDict_New();
    PyObject *denial = ext ? PyDict_New() : NULL;
    if (denial == NULL || PyDict_SetItem(ext, PN_ID(st, websocket_http_response), denial) < 0 ||
        PyDict_SetItem(ext, PN_ID(st, pounce_worker), w->worker_id) < 0 ||
        (s->request_id_len && put_request_id(st, ext, s) < 0) ||
        (s->tls_session && put_tls(w, ext, s) < 0))
        Py_CLEAR(ext);
    Py_XDECREF(denial);
    if (ext == NULL || PyDict_SetItem(scope, PN_ID(st, type), PN_ID(st, websocket)) < 0 ||
        PyDict_SetItem(scope, PN_ID(st, scheme),
                       scope_secure(s, fwd) ? PN_ID(st, wss) : PN_ID(st, ws)) < 0 ||
        PyDict_SetItem(scope, PN_ID(st, subprotocols), subs) < 0 ||
        PyDict_SetItem(scope, PN_ID(st, extensions), ext) < 0 ||
        PyDict_DelItem(scope, PN_ID(st, method)) < 0) {
        Py_XDECREF(ext);
        Py_DECREF(subs);
        goto fail;
    }
    Py_DECREF(ext);
    Py_DECREF(subs);
    return scope;
fail:
    Py_DECREF(scope);
    return NULL;
}

int pn_scope_init(pn_modstate *st)
{
    for (int i = 0; i < PN_HNAME_COUNT; i++)
        if ((st->hnames[i] = PyBytes_FromString(header_names[i])) == NULL)
            return -1;
    return 0;
}
