/*
 * pn_config_type.c — the pounce.Config type: an immutable Python object that
 * embeds one pn_config struct, plus the module attribute SETTINGS.
 *
 * Everything here is generated from pn_settings.def: storage, defaults,
 * validation, getters, repr, equality and the SETTINGS tuple all walk one
 * const descriptor table built from the X-macro rows.
 *
 * A bad value raises TypeError or ValueError whose attribute `settings`
 * names the settings it is about (see name_settings()), so a caller that
 * merged values from several sources can say where the bad one came from.
 *
 * Ownership: a Config owns private copies (PyMem) of its string fields and
 * frees them in dealloc.  Nothing in the object changes after tp_new returns,
 * so any thread may read it (and the embedded struct) concurrently without
 * locks; there are no lazy caches.  Construction and the Python methods run
 * with an attached thread state, like any Python call.
 */
#include "pn_bridge.h"
#include "pn_compress.h"
#include "pn_request_id.h"
#include "pn_tls.h"
#include "pn_trust.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef enum { K_STR, K_INT, K_SIZE, K_FLOAT, K_BOOL, K_CHOICE } setting_kind;

static const char *const kind_names[] = {"str", "int", "size", "float", "bool", "choice"};

/* One row of pn_settings.def.  Only the fields of the row's kind are used:
 * str_def for STR and CHOICE (the choice name), int_* for INT/SIZE/BOOL,
 * flt_* for FLOAT. */
typedef struct {
    const char *name;
    setting_kind kind;
    size_t offset; /* of the field in pn_config */
    const char *str_def;
    int64_t int_def, int_min, int_max;
    double flt_def, flt_min, flt_max;
    const char *choices; /* "a|b|c" */
    const char *group;
    const char *help;
} setting;

/* The fields every row has. */
#define ROW(n, k, g, h)                                                                            \
    .name = #n, .kind = k, .offset = offsetof(pn_config, n), .group = g, .help = h

static const setting settings[] = {
#define PN_STR(n, d, g, h) {ROW(n, K_STR, g, h), .str_def = d},
#define PN_INT(n, d, lo, hi, g, h)                                                                 \
    {ROW(n, K_INT, g, h), .int_def = d, .int_min = lo, .int_max = hi},
#define PN_SIZE(n, d, lo, hi, g, h)                                                                \
    {ROW(n, K_SIZE, g, h), .int_def = d, .int_min = lo, .int_max = hi},
#define PN_FLOAT(n, d, lo, hi, g, h)                                                               \
    {ROW(n, K_FLOAT, g, h), .flt_def = d, .flt_min = lo, .flt_max = hi},
#define PN_BOOL(n, d, g, h) {ROW(n, K_BOOL, g, h), .int_def = d, .int_min = 0, .int_max = 1},
#define PN_CHOICE(n, d, c, g, h) {ROW(n, K_CHOICE, g, h), .str_def = d, .choices = c},
#include "pn_settings.def"
#undef PN_STR
#undef PN_INT
#undef PN_SIZE
#undef PN_FLOAT
#undef PN_BOOL
#undef PN_CHOICE
};
#undef ROW

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Row index of each setting: SI_host, SI_port, ... */
enum {
#define PN_STR(n, d, g, h) SI_##n,
#define PN_INT(n, d, lo, hi, g, h) SI_##n,
#define PN_SIZE(n, d, lo, hi, g, h) SI_##n,
#define PN_FLOAT(n, d, lo, hi, g, h) SI_##n,
#define PN_BOOL(n, d, g, h) SI_##n,
#define PN_CHOICE(n, d, c, g, h) SI_##n,
#include "pn_settings.def"
#undef PN_STR
#undef PN_INT
#undef PN_SIZE
#undef PN_FLOAT
#undef PN_BOOL
#undef PN_CHOICE
    SI_COUNT
};
_Static_assert(SI_COUNT == N_SETTINGS, "settings[] and SI_* disagree");

typedef struct {
    PyObject ob_base;
    pn_config cfg; /* strings owned (PyMem); never written after tp_new */
    /* --ssl-certfile: the TLS context built from cfg when the object was
     * made (so a bad certificate fails here, before any worker starts),
     * owned, read-only afterwards; the workers that read it hold a strong
     * reference to this object.  NULL without TLS. */
    pn_tls_ctx *tls;
} config_object;

/* ---- field access by descriptor ---------------------------------------- */

static const char **str_field(pn_config *c, const setting *s)
{
    return (const char **)((char *)c + s->offset);
}
static int64_t *int_field(pn_config *c, const setting *s)
{
    return (int64_t *)((char *)c + s->offset);
}
static double *flt_field(pn_config *c, const setting *s)
{
    return (double *)((char *)c + s->offset);
}
/* BOOL and CHOICE are stored as int. */
static int *small_field(pn_config *c, const setting *s)
{
    return (int *)((char *)c + s->offset);
}

/* ---- choices: "a|b|c" -------------------------------------------------- */

/* The idx-th choice as a new str, or NULL with an exception. */
static PyObject *choice_name(const char *choices, int idx)
{
    const char *p = choices;
    for (int i = 0; i < idx; i++) {
        p = strchr(p, '|');
        if (p == NULL) {
            PyErr_SetString(PyExc_SystemError, "choice index out of range");
            return NULL;
        }
        p++;
    }
    const char *end = strchr(p, '|');
    return PyUnicode_FromStringAndSize(p, end ? end - p : (Py_ssize_t)strlen(p));
}

/* "'a', 'b', 'c'" for messages.  check_table() proves at module init that
 * every row fits, so this never truncates. */
enum { CHOICES_TEXT_MAX = 256 };

static size_t choices_text(const char *choices, char out[CHOICES_TEXT_MAX])
{
    size_t n = 0;
    out[n++] = '\'';
    for (const char *p = choices; *p && n + 5 < CHOICES_TEXT_MAX; p++) {
        if (*p == '|') {
            static const char sep[] = "', '";
            memcpy(out + n, sep, sizeof(sep) - 1);
            n += sizeof(sep) - 1;
        } else {
            out[n++] = *p;
        }
    }
    out[n++] = '\'';
    out[n] = '\0';
    return n;
}

/* ---- unknown-name suggestion ------------------------------------------ */

/* Optimal-string-alignment distance (edits plus adjacent transpositions),
 * so "prot" is one edit from "port".  Inputs longer than 63 bytes are never
 * close to a setting name; they return a large distance. */
static size_t osa_distance(const char *a, size_t la, const char *b, size_t lb)
{
    enum { MAXL = 64 };
    if (la >= MAXL || lb >= MAXL)
        return MAXL;
    size_t d[MAXL][MAXL];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The closest setting name within a third of its length (at least 1 edit),
 * or NULL. */
static const char *suggest(const char *key, size_t len)
{
    const char *found = NULL;
    size_t best = (size_t)-1;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        size_t nl = strlen(settings[i].name);
        size_t limit = nl / 3 > 1 ? nl / 3 : 1;
        size_t d = osa_distance(key, len, settings[i].name, nl);
        if (d <= limit && d < best) {
            best = d;
            found = settings[i].name;
        }
    }
    return found;
}

static const setting *find_setting(const char *key, size_t len)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strlen(settings[i].name) == len && memcmp(settings[i].name, key, len) == 0)
            return &settings[i];
    return NULL;
}

/* ---- validation -------------------------------------------------------- */

/* Name the settings the pending validation error is about: exc.settings =
 * (first,) or (first, second).  One name for a value that is wrong by
 * itself, two for a rule across settings.  Only a TypeError or ValueError
 * (UnicodeError included) is named; anything else, MemoryError say, passes
 * untouched.  Always returns -1 with an exception set, for `return
 * name_settings(...)` on an error path. */
static int name_settings(const char *first, const char *second)
{
    if (!PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_ValueError))
        return -1;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
#endif
    PyObject *names = second ? Py_BuildValue("(ss)", first, second) : Py_BuildValue("(s)", first);
    int rc = names ? PyObject_SetAttrString(exc, "settings", names) : -1;
    Py_XDECREF(names);
    if (rc < 0) {
        /* The new error (no memory) replaces the one we failed to name. */
        Py_DECREF(exc);
#if PY_VERSION_HEX < 0x030C0000
        Py_XDECREF(type);
        Py_XDECREF(tb);
#endif
        return -1;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(type, exc, tb);
#endif
    return -1;
}

static void set_defaults(pn_config *c)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        switch (s->kind) {
        case K_STR:
            *str_field(c, s) = s->str_def;
            break;
        case K_INT:
        case K_SIZE:
            *int_field(c, s) = s->int_def;
            break;
        case K_FLOAT:
            *flt_field(c, s) = s->flt_def;
            break;
        case K_BOOL:
            *small_field(c, s) = (int)s->int_def;
            break;
        case K_CHOICE:
            /* checked to exist by check_table() at module init */
            *small_field(c, s) = pn_config_choice_index(s->choices, s->str_def, strlen(s->str_def));
            break;
        }
    }
}

static int float_range_error(const setting *s, PyObject *value)
{
    char *lo = PyOS_double_to_string(s->flt_min, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    char *hi = PyOS_double_to_string(s->flt_max, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (lo && hi)
        PyErr_Format(PyExc_ValueError, "%s must be between %s and %s, got %R", s->name, lo, hi,
                     value);
    else
        PyErr_NoMemory();
    PyMem_Free(lo);
    PyMem_Free(hi);
    return -1;
}

/* Convert and range-check one value into c.  A STR field is set to the
 * UTF-8 buffer of `value` (borrowed: the caller keeps `value` alive until
 * the strings are copied).  0 / -1 with an exception. */
static int convert(pn_config *c, const setting *s, PyObject *value)
{
    switch (s->kind) {
    case K_STR: {
        if (!PyUnicode_Check(value)) {
            PyErr_Format(PyExc_TypeError, "%s must be a str, got %s", s->name,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        Py_ssize_t len;
        const char *u = PyUnicode_AsUTF8AndSize(value, &len);
        if (u == NULL)
            return -1;
        /* The C core treats these as C strings: an embedded NUL would
         * silently truncate a path or host name. */
        if (memchr(u, '\0', (size_t)len) != NULL) {
            PyErr_Format(PyExc_ValueError, "%s must not contain NUL characters", s->name);
            return -1;
        }
        *str_field(c, s) = u;
        return 0;
    }
    case K_INT:
    case K_SIZE: {
        /* bool is an int subclass, but port=True is a mistake, not 1. */
        if (!PyLong_Check(value) || PyBool_Check(value)) {
            PyErr_Format(PyExc_TypeError, "%s must be an int, got %s", s->name,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (overflow || v < s->int_min || v > s->int_max) {
            PyErr_Format(PyExc_ValueError, "%s must be between %lld and %lld, got %R", s->name,
                         (long long)s->int_min, (long long)s->int_max, value);
            return -1;
        }
        *int_field(c, s) = v;
        return 0;
    }
    case K_FLOAT: {
        double v;
        if (PyFloat_Check(value)) {
            v = PyFloat_AS_DOUBLE(value);
        } else if (PyLong_Check(value) && !PyBool_Check(value)) {
            v = PyLong_AsDouble(value);
            if (v == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                return float_range_error(s, value);
            }
        } else {
            PyErr_Format(PyExc_TypeError, "%s must be a number, got %s", s->name,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        if (!isfinite(v)) {
            PyErr_Format(PyExc_ValueError, "%s must be a finite number, got %R", s->name, value);
            return -1;
        }
        if (v < s->flt_min || v > s->flt_max)
            return float_range_error(s, value);
        *flt_field(c, s) = v;
        return 0;
    }
    case K_BOOL:
        if (!PyBool_Check(value)) {
            PyErr_Format(PyExc_TypeError, "%s must be a bool, got %s", s->name,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        *small_field(c, s) = value == Py_True;
        return 0;
    case K_CHOICE: {
        if (!PyUnicode_Check(value)) {
            PyErr_Format(PyExc_TypeError, "%s must be a str, got %s", s->name,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        Py_ssize_t len;
        const char *u = PyUnicode_AsUTF8AndSize(value, &len);
        if (u == NULL)
            return -1;
        int idx = pn_config_choice_index(s->choices, u, (size_t)len);
        if (idx < 0) {
            char names[CHOICES_TEXT_MAX];
            choices_text(s->choices, names);
            PyErr_Format(PyExc_ValueError, "%s must be one of %s, got %R", s->name, names, value);
            return -1;
        }
        *small_field(c, s) = idx;
        return 0;
    }
    }
    PyErr_SetString(PyExc_SystemError, "bad setting kind");
    return -1;
}

/* The ssl_* settings that only mean something with a certificate, and
 * mutual TLS's two halves.  The files themselves are read when the
 * context is built (config_from_struct). */
static int check_tls(const pn_config *c)
{
    static const char *const needs_cert[] = {"ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs",
                                             "ssl_ciphers"};
    const char *values[] = {c->ssl_keyfile, c->ssl_keyfile_password, c->ssl_ca_certs,
                            c->ssl_ciphers};
    if (c->ssl_certfile[0] == '\0') {
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            if (values[i][0] != '\0') {
                PyErr_Format(PyExc_ValueError, "%s needs ssl_certfile (TLS is off without it)",
                             needs_cert[i]);
                return name_settings(needs_cert[i], "ssl_certfile");
            }
        }
        if (c->ssl_cert_reqs != PN_CERT_REQS_NONE) {
            PyErr_SetString(PyExc_ValueError,
                            "ssl_cert_reqs needs ssl_certfile (TLS is off without it)");
            return name_settings("ssl_cert_reqs", "ssl_certfile");
        }
        return 0;
    }
    if (c->ssl_cert_reqs != PN_CERT_REQS_NONE && c->ssl_ca_certs[0] == '\0') {
        PyErr_SetString(PyExc_ValueError,
                        "ssl_cert_reqs optional or required needs ssl_ca_certs: the CAs that "
                        "client certificates must chain to");
        return name_settings("ssl_cert_reqs", "ssl_ca_certs");
    }
    if (c->ssl_cert_reqs == PN_CERT_REQS_NONE && c->ssl_ca_certs[0] != '\0') {
        PyErr_SetString(PyExc_ValueError,
                        "ssl_ca_certs is used only with ssl_cert_reqs optional or required "
                        "(none asks clients for no certificate)");
        return name_settings("ssl_ca_certs", "ssl_cert_reqs");
    }
    return 0;
}

/* Rules that involve more than one setting, or a whole string setting;
 * run after every field is set. */
static int check_cross(const pn_config *c)
{
    if (c->uds[0] != '\0' && c->fd != -1) {
        PyErr_SetString(PyExc_ValueError, "uds and fd are mutually exclusive");
        return name_settings("uds", "fd");
    }
    /* The value at fault is the empty host: uds and fd only excuse it. */
    if (c->host[0] == '\0' && c->uds[0] == '\0' && c->fd == -1) {
        PyErr_SetString(PyExc_ValueError, "host must not be empty unless uds or fd is given");
        return name_settings("host", NULL);
    }
    pn_codec order[PN_CODEC_COUNT];
    size_t norder = 0, badlen = 0;
    const char *bad = NULL;
    if (pn_codec_parse_order(c->compression_order, order, &norder, &bad, &badlen) < 0) {
        PyObject *tok =
            PyUnicode_DecodeUTF8(bad ? bad : "", bad ? (Py_ssize_t)badlen : 0, "replace");
        if (tok != NULL) {
            PyErr_Format(PyExc_ValueError,
                         "compression_order: unknown or repeated codec %R (use zstd, br, gzip)",
                         tok);
            Py_DECREF(tok);
        }
        return name_settings("compression_order", NULL);
    }
    if (pn_compress_types_valid(c->compression_types) < 0) {
        PyErr_Format(PyExc_ValueError,
                     "compression_types must be comma-separated media types like "
                     "'application/wasm' or 'image/*', got '%s'",
                     c->compression_types);
        return name_settings("compression_types", NULL);
    }
    /* health_path is compared with the request's path as sent: it must be
     * one (origin-form, no query: the query is ignored anyway). */
    for (const char *h = c->health_path; *h != '\0'; h++) {
        unsigned char ch = (unsigned char)*h;
        if ((h == c->health_path && ch != '/') || ch <= ' ' || ch == '?' || ch == '#' ||
            ch == 0x7f) {
            PyErr_Format(PyExc_ValueError,
                         "health_path must be a path starting with '/', without a query or "
                         "spaces, like '/healthz', got '%s'",
                         c->health_path);
            return name_settings("health_path", NULL);
        }
    }
    if (!pn_request_id_name_ok(c->request_id_header, strlen(c->request_id_header))) {
        PyErr_Format(PyExc_ValueError,
                     "request_id_header must be a header name of at most 64 characters that "
                     "the server does not write itself (not Content-Length, Connection, Date, "
                     "Server, Host, ...), got '%s'",
                     c->request_id_header);
        return name_settings("request_id_header", NULL);
    }
    char err[160];
    pn_trust *trust =
        pn_trust_new(c->forwarded_allow_ips, strlen(c->forwarded_allow_ips), err, sizeof err);
    if (trust == NULL) {
        PyErr_Format(PyExc_ValueError, "forwarded_allow_ips: %s", err);
        return name_settings("forwarded_allow_ips", NULL);
    }
    pn_trust_free(trust);
    return check_tls(c);
}

/* Apply keyword arguments to c.  kwargs may be NULL.  Strings in c end up
 * borrowed from kwargs' values, which the caller's call frame keeps alive;
 * the dict is private to this call, so no other thread can mutate it. */
static int apply_kwargs(pn_config *c, PyObject *kwargs)
{
    if (kwargs == NULL)
        return 0;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kwargs, &pos, &key, &value)) {
        Py_ssize_t len;
        const char *k = PyUnicode_AsUTF8AndSize(key, &len);
        if (k == NULL)
            return -1;
        const setting *s = find_setting(k, (size_t)len);
        if (s == NULL) {
            const char *close = suggest(k, (size_t)len);
            if (close)
                PyErr_Format(PyExc_TypeError, "unknown setting %R (did you mean '%s'?)", key,
                             close);
            else
                PyErr_Format(PyExc_TypeError, "unknown setting %R", key);
            return -1;
        }
        if (convert(c, s, value) < 0)
            return name_settings(s->name, NULL);
    }
    return check_cross(c);
}

static void free_strings(pn_config *c)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (settings[i].kind == K_STR) {
            const char **f = str_field(c, &settings[i]);
            PyMem_Free((void *)*f);
            *f = NULL;
        }
    }
}

/* A new Config holding `c`, with private copies of its (borrowed) strings. */
static PyObject *config_from_struct(PyTypeObject *type, const pn_config *c)
{
    config_object *self = (config_object *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->cfg = *c;
    /* NULL every string first so dealloc after a failed copy frees only
     * what this object owns. */
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].kind == K_STR)
            *str_field(&self->cfg, &settings[i]) = NULL;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->kind != K_STR)
            continue;
        const char *src = *str_field((pn_config *)c, s);
        size_t n = strlen(src) + 1;
        char *copy = PyMem_Malloc(n);
        if (copy == NULL) {
            Py_DECREF(self);
            return PyErr_NoMemory();
        }
        memcpy(copy, src, n);
        *str_field(&self->cfg, s) = copy;
    }
    if (pn_tls_wanted(&self->cfg)) {
        char err[768];
        const char *setting = "ssl_certfile";
        self->tls = pn_tls_ctx_new(&self->cfg, err, sizeof err, &setting);
        if (self->tls == NULL) {
            Py_DECREF(self);
            PyErr_SetString(PyExc_ValueError, err);
            name_settings(setting, NULL);
            return NULL;
        }
    }
    return (PyObject *)self;
}

/* ---- Python values of fields ------------------------------------------ */

static PyObject *field_value(const pn_config *c, const setting *s)
{
    pn_config *m = (pn_config *)c; /* accessors are shared with writers; we only read */
    switch (s->kind) {
    case K_STR:
        return PyUnicode_FromString(*str_field(m, s));
    case K_INT:
    case K_SIZE:
        return PyLong_FromLongLong(*int_field(m, s));
    case K_FLOAT:
        return PyFloat_FromDouble(*flt_field(m, s));
    case K_BOOL:
        return PyBool_FromLong(*small_field(m, s));
    case K_CHOICE:
        return choice_name(s->choices, *small_field(m, s));
    }
    PyErr_SetString(PyExc_SystemError, "bad setting kind");
    return NULL;
}

static int field_equal(const pn_config *a, const pn_config *b, const setting *s)
{
    pn_config *ma = (pn_config *)a, *mb = (pn_config *)b;
    switch (s->kind) {
    case K_STR:
        return strcmp(*str_field(ma, s), *str_field(mb, s)) == 0;
    case K_INT:
    case K_SIZE:
        return *int_field(ma, s) == *int_field(mb, s);
    case K_FLOAT:
        return *flt_field(ma, s) == *flt_field(mb, s);
    case K_BOOL:
    case K_CHOICE:
        return *small_field(ma, s) == *small_field(mb, s);
    }
    return 0;
}

/* ---- type slots -------------------------------------------------------- */

static PyObject *config_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError,
                        "pounce.Config takes keyword arguments only, e.g. Config(port=8080)");
        return NULL;
    }
    pn_config c;
    set_defaults(&c);
    if (apply_kwargs(&c, kwargs) < 0)
        return NULL;
    return config_from_struct(type, &c);
}

static int config_traverse(PyObject *self, visitproc visit, void *arg)
{
    /* No PyObject fields; a heap type's instances keep their type alive. */
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static void config_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    free_strings(&((config_object *)self)->cfg);
    pn_tls_ctx_free(((config_object *)self)->tls);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static int config_setattro(PyObject *self, PyObject *name, PyObject *value)
{
    (void)self;
    (void)name;
    (void)value;
    /* Workers on many threads read the struct without locks; immutability is
     * what makes that safe (design: threading rule 1). */
    PyErr_SetString(PyExc_AttributeError, "pounce.Config is immutable; use Config.replace(...)");
    return -1;
}

static PyObject *config_get(PyObject *self, void *closure)
{
    return field_value(&((config_object *)self)->cfg, (const setting *)closure);
}

static PyObject *config_repr(PyObject *self)
{
    pn_config defaults;
    set_defaults(&defaults);
    const pn_config *c = &((config_object *)self)->cfg;
    PyObject *parts = PyList_New(0);
    if (parts == NULL)
        return NULL;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        if (field_equal(c, &defaults, s))
            continue;
        /* A repr goes to logs and tracebacks: never the key's password. */
        PyObject *v =
            i == SI_ssl_keyfile_password ? PyUnicode_FromString("***") : field_value(c, s);
        PyObject *item = v ? PyUnicode_FromFormat("%s=%R", s->name, v) : NULL;
        Py_XDECREF(v);
        if (item == NULL || PyList_Append(parts, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(parts);
            return NULL;
        }
        Py_DECREF(item);
    }
    PyObject *sep = PyUnicode_FromString(", ");
    PyObject *body = sep ? PyUnicode_Join(sep, parts) : NULL;
    PyObject *r = body ? PyUnicode_FromFormat("pounce.Config(%U)", body) : NULL;
    Py_XDECREF(body);
    Py_XDECREF(sep);
    Py_DECREF(parts);
    return r;
}

static PyObject *config_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(b) != Py_TYPE(a))
        Py_RETURN_NOTIMPLEMENTED;
    const pn_config *ca = &((config_object *)a)->cfg, *cb = &((config_object *)b)->cfg;
    int eq = 1;
    for (size_t i = 0; i < N_SETTINGS && eq; i++)
        eq = field_equal(ca, cb, &settings[i]);
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

/* The values as a tuple, in table order; hashing it keeps __hash__
 * consistent with __eq__ (equal floats hash equal, 0.0 == -0.0 included). */
static PyObject *values_tuple(const pn_config *c)
{
    PyObject *t = PyTuple_New((Py_ssize_t)N_SETTINGS);
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        PyObject *v = field_value(c, &settings[i]);
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, v);
    }
    return t;
}

static Py_hash_t config_hash(PyObject *self)
{
    PyObject *t = values_tuple(&((config_object *)self)->cfg);
    if (t == NULL)
        return -1;
    Py_hash_t h = PyObject_Hash(t);
    Py_DECREF(t);
    return h;
}

static PyObject *config_asdict(PyObject *self, PyObject *unused)
{
    (void)unused;
    const pn_config *c = &((config_object *)self)->cfg;
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        PyObject *v = field_value(c, &settings[i]);
        if (v == NULL || PyDict_SetItemString(d, settings[i].name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static PyObject *config_replace(PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "Config.replace() takes keyword arguments only");
        return NULL;
    }
    /* Start from this object's values; its strings outlive the call. */
    pn_config c = ((config_object *)self)->cfg;
    if (apply_kwargs(&c, kwargs) < 0)
        return NULL;
    return config_from_struct(Py_TYPE(self), &c);
}

/* Pickles as copyreg.__newobj_ex__(Config, (), {every setting}): the
 * keyword-only constructor re-validates on load, and there is no
 * __setstate__ that could mutate a live object. */
static PyObject *config_reduce(PyObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *copyreg = PyImport_ImportModule("copyreg");
    if (copyreg == NULL)
        return NULL;
    PyObject *newobj = PyObject_GetAttrString(copyreg, "__newobj_ex__");
    Py_DECREF(copyreg);
    if (newobj == NULL)
        return NULL;
    PyObject *d = config_asdict(self, NULL);
    if (d == NULL) {
        Py_DECREF(newobj);
        return NULL;
    }
    PyObject *r = Py_BuildValue("(N(O()N))", newobj, (PyObject *)Py_TYPE(self), d);
    return r;
}

/* CPython reads these definition arrays when the type is created and never
 * writes them; they are constant in practice (the API takes non-const). */
static PyMethodDef config_methods[] = {
    {"replace", (PyCFunction)(void (*)(void))config_replace, METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("replace(**changes) -> a new validated Config with these settings changed.")},
    {"_asdict", config_asdict, METH_NOARGS, PyDoc_STR("Every setting as a new dict.")},
    {"__reduce__", config_reduce, METH_NOARGS, PyDoc_STR("Pickle support.")},
    {NULL, NULL, 0, NULL},
};

/* One getter per row; the closure is the row's descriptor. */
static PyGetSetDef config_getset[] = {
#define ROW(n) {#n, config_get, NULL, NULL, (void *)&settings[SI_##n]},
#define PN_STR(n, d, g, h) ROW(n)
#define PN_INT(n, d, lo, hi, g, h) ROW(n)
#define PN_SIZE(n, d, lo, hi, g, h) ROW(n)
#define PN_FLOAT(n, d, lo, hi, g, h) ROW(n)
#define PN_BOOL(n, d, g, h) ROW(n)
#define PN_CHOICE(n, d, c, g, h) ROW(n)
#include "pn_settings.def"
#undef PN_STR
#undef PN_INT
#undef PN_SIZE
#undef PN_FLOAT
#undef PN_BOOL
#undef PN_CHOICE
#undef ROW
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(config_doc,
             "Config(**settings)\n--\n\n"
             "Immutable, validated Pounce server configuration.  Keyword arguments only;\n"
             "see pounce._pounce.SETTINGS or docs/configuration.md for every setting.\n"
             "Use replace(**changes) to derive a modified copy.");

/* ---- SETTINGS and module init ----------------------------------------- */

static PyObject *settings_tuple(void)
{
    PyObject *all = PyTuple_New((Py_ssize_t)N_SETTINGS);
    if (all == NULL)
        return NULL;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        PyObject *def = NULL, *lo = NULL, *hi = NULL, *choices = NULL;
        switch (s->kind) {
        case K_STR:
            def = PyUnicode_FromString(s->str_def);
            break;
        case K_INT:
        case K_SIZE:
            def = PyLong_FromLongLong(s->int_def);
            lo = PyLong_FromLongLong(s->int_min);
            hi = PyLong_FromLongLong(s->int_max);
            break;
        case K_FLOAT:
            def = PyFloat_FromDouble(s->flt_def);
            lo = PyFloat_FromDouble(s->flt_min);
            hi = PyFloat_FromDouble(s->flt_max);
            break;
        case K_BOOL:
            def = PyBool_FromLong((long)s->int_def);
            break;
        case K_CHOICE: {
            def = PyUnicode_FromString(s->str_def);
            PyObject *raw = PyUnicode_FromString(s->choices);
            PyObject *sep = PyUnicode_FromString("|");
            PyObject *parts = raw && sep ? PyUnicode_Split(raw, sep, -1) : NULL;
            choices = parts ? PyList_AsTuple(parts) : NULL;
            Py_XDECREF(parts);
            Py_XDECREF(sep);
            Py_XDECREF(raw);
            if (choices == NULL) {
                Py_XDECREF(def);
                Py_DECREF(all);
                return NULL;
            }
            break;
        }
        }
        int ranged = s->kind == K_INT || s->kind == K_SIZE || s->kind == K_FLOAT;
        if (def == NULL || (ranged && (lo == NULL || hi == NULL))) {
            Py_XDECREF(def);
            Py_XDECREF(lo);
            Py_XDECREF(hi);
            Py_XDECREF(choices);
            Py_DECREF(all);
            return NULL;
        }
        PyObject *row = Py_BuildValue("(ssNNNNss)", s->name, kind_names[s->kind], def,
                                      lo ? lo : Py_NewRef(Py_None), hi ? hi : Py_NewRef(Py_None),
                                      choices ? choices : Py_NewRef(Py_None), s->group, s->help);
        if (row == NULL) {
            Py_DECREF(all);
            return NULL;
        }
        PyTuple_SET_ITEM(all, (Py_ssize_t)i, row);
    }
    return all;
}

/* Catch a broken table row at import rather than at the first request. */
static int check_table(void)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        int bad = 0;
        if (s->kind == K_CHOICE)
            bad = pn_config_choice_index(s->choices, s->str_def, strlen(s->str_def)) < 0 ||
                  strlen(s->choices) * 4 + 3 > CHOICES_TEXT_MAX;
        else if (s->kind == K_INT || s->kind == K_SIZE)
            bad = s->int_def < s->int_min || s->int_def > s->int_max;
        else if (s->kind == K_FLOAT)
            bad = !(s->flt_def >= s->flt_min && s->flt_def <= s->flt_max);
        if (bad) {
            PyErr_Format(PyExc_SystemError, "pn_settings.def: default of %s is invalid", s->name);
            return -1;
        }
    }
    pn_config c;
    set_defaults(&c);
    return check_cross(&c);
}

static PyType_Slot config_slots[] = {
    {Py_tp_doc, (void *)config_doc},
    {Py_tp_new, config_new},
    {Py_tp_dealloc, config_dealloc},
    {Py_tp_traverse, config_traverse},
    {Py_tp_setattro, config_setattro},
    {Py_tp_repr, config_repr},
    {Py_tp_richcompare, config_richcompare},
    {Py_tp_hash, config_hash},
    {Py_tp_methods, config_methods},
    {Py_tp_getset, config_getset},
    {0, NULL},
};

static PyType_Spec config_spec = {
    .name = "pounce.Config",
    .basicsize = sizeof(config_object),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = config_slots,
};

int pn_config_type_init(PyObject *module, pn_modstate *st)
{
    if (check_table() < 0)
        return -1;
    st->config_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &config_spec, NULL);
    if (st->config_type == NULL)
        return -1;
    /* PyModule_AddType adds its own reference, as "Config" (after the dot). */
    if (PyModule_AddType(module, st->config_type) < 0)
        return -1;
    PyObject *table = settings_tuple();
    if (table == NULL)
        return -1;
    if (PyModule_AddObjectRef(module, "SETTINGS", table) < 0) {
        Py_DECREF(table);
        return -1;
    }
    Py_DECREF(table);
    return 0;
}

const pn_config *pn_config_struct(pn_modstate *st, PyObject *obj)
{
    if (st->config_type == NULL || !Py_IS_TYPE(obj, st->config_type)) {
        PyErr_Format(PyExc_TypeError, "expected pounce.Config, got %s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return &((config_object *)obj)->cfg;
}

const pn_tls_ctx *pn_config_tls(pn_modstate *st, PyObject *obj)
{
    (void)st;
    return ((config_object *)obj)->tls;
}

/* Config objects hold no references besides their type, and the module's
 * own traverse already visits st->config_type; visiting it again here would
 * make the collector undercount it.  Kept so the module has one hook per
 * subsystem. */
int pn_config_traverse(pn_modstate *st, visitproc visit, void *arg)
{
    (void)st;
    (void)visit;
    (void)arg;
    return 0;
}
