/*
 * pn_config — the immutable server configuration as a plain C struct.
 *
 * Built and validated once (by the pounce.Config constructor, in the bridge)
 * before any worker starts, then shared read-only: every worker thread reads
 * it through a `const pn_config *` and nobody writes it again.  Its lifetime
 * is that of the pounce.Config Python object that embeds it; a worker keeps a
 * strong reference to that object.
 *
 * The fields come from pn_settings.def, so the struct cannot drift from the
 * CLI, environment, config file and docs.  No Python.h here: the runtime and
 * protocol core read this struct directly.
 */
#ifndef PN_CONFIG_H
#define PN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct pn_config {
#define PN_STR(name, def, group, help) const char *name; /* UTF-8, NUL-terminated, owned */
#define PN_INT(name, def, lo, hi, group, help) int64_t name;
#define PN_SIZE(name, def, lo, hi, group, help) int64_t name;
#define PN_FLOAT(name, def, lo, hi, group, help) double name;
#define PN_BOOL(name, def, group, help) int name;
#define PN_CHOICE(name, def, choices, group, help) int name; /* index into choices */
#include "pn_settings.def"
#undef PN_STR
#undef PN_INT
#undef PN_SIZE
#undef PN_FLOAT
#undef PN_BOOL
#undef PN_CHOICE
} pn_config;

/* Choice indexes, in the order of the choices strings in pn_settings.def. */
enum { PN_WORKER_MODE_AUTO, PN_WORKER_MODE_THREAD, PN_WORKER_MODE_PROCESS };
enum { PN_LOOP_AUTO, PN_LOOP_ASYNCIO, PN_LOOP_UVLOOP };
enum { PN_LIFESPAN_AUTO, PN_LIFESPAN_ON, PN_LIFESPAN_OFF };
enum { PN_CERT_REQS_NONE, PN_CERT_REQS_OPTIONAL, PN_CERT_REQS_REQUIRED };
enum { PN_TLS_MIN_12, PN_TLS_MIN_13 };
enum { PN_HTTP_AUTO, PN_HTTP_1, PN_HTTP_2 };
enum { PN_LOG_DEBUG, PN_LOG_INFO, PN_LOG_WARNING, PN_LOG_ERROR, PN_LOG_CRITICAL };

/* Index of name[0..len) among a PN_CHOICE's "a|b|c" choices, or -1
 * (csrc/core/pn_config.c; pure, any thread). */
int pn_config_choice_index(const char *choices, const char *name, size_t len);

/* Every setting at its table default: for a pn_config built without the
 * bridge (C tests, fuzz targets).  Strings point at the table's literals. */
void pn_config_defaults(pn_config *cfg);

#endif
