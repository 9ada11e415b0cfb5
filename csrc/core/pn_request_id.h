/*
 * pn_request_id — request IDs (--request-id): which incoming ID to keep,
 * and new IDs from a per-worker generator.
 *
 * Protocol core: plain C, no Python.h.
 *
 * An incoming ID is kept only when it is valid (pn_request_id_valid): 1 to
 * PN_REQUEST_ID_MAX bytes, each a letter, a digit or one of ._~:+/=-
 * (enough for UUIDs, hex, base64 and the IDs of the usual proxies and
 * tracers).  No space, quote, backslash, comma, semicolon, control or
 * non-ASCII byte can pass, so an ID can be written into a header, a log
 * line or a JSON string as it is, without escaping.  Anything else, a
 * request with several such header fields included, gets a new ID.
 *
 * A new ID is 32 lowercase hex digits: a random UUID version 4 (RFC 9562
 * §5.4: 122 random bits) written without dashes, so `uuid.UUID(id)` parses
 * it.  The bits come from xoshiro256** (Blackman and Vigna), seeded once
 * per generator from getrandom(2): no system call per request.  It is not
 * a cryptographic generator: an ID names a request, it guards nothing.
 *
 * Ownership and threads: a pn_request_id_gen belongs to one worker and is
 * used by that worker's thread only (each worker seeds its own, so workers,
 * threads or processes, share nothing and draw independent sequences).
 * Everything else here is a pure function.
 */
#ifndef PN_REQUEST_ID_H
#define PN_REQUEST_ID_H

#include <stddef.h>
#include <stdint.h>

#include "pn_http1_parse.h"

/* The longest incoming ID kept (bytes). */
#define PN_REQUEST_ID_MAX 128
/* The length of a generated ID. */
#define PN_REQUEST_ID_GEN_LEN 32
/* The longest --request-id-header name accepted. */
#define PN_REQUEST_ID_NAME_MAX 64

typedef struct pn_request_id_gen {
    uint64_t s[4]; /* xoshiro256** state, never all zero */
} pn_request_id_gen;

/* Seed from getrandom(2); when the kernel cannot give entropy (ENOSYS, a
 * seccomp filter), from the clock, the process and thread IDs and the
 * generator's address, mixed, which still differs between workers. */
void pn_request_id_seed(pn_request_id_gen *g);

/* Seed from the given bytes (tests and fuzzing: a reproducible sequence).
 * Any n, 0 included; equal seeds give equal sequences. */
void pn_request_id_seed_bytes(pn_request_id_gen *g, const void *seed, size_t n);

/* 1 when v[0..n) may be kept as the request's ID (see above), else 0. */
int pn_request_id_valid(const char *v, size_t n);

/* Write a new ID into out (PN_REQUEST_ID_GEN_LEN bytes, no NUL); returns
 * PN_REQUEST_ID_GEN_LEN. */
size_t pn_request_id_generate(pn_request_id_gen *g, char *out);

/* The ID of a request with these header fields: the value of the field
 * named `name` (compared case-insensitively) when there is exactly one and
 * it is valid, else a new one from g.  out holds PN_REQUEST_ID_MAX bytes;
 * returns the length written (never 0). */
size_t pn_request_id_take(pn_request_id_gen *g, const pn_http1_header *h, size_t nh,
                          const char *name, size_t name_len, char *out);

/* The response field "name: id\r\n" into out (PN_REQUEST_ID_FIELD_MAX
 * bytes), for a name pn_request_id_name_ok accepted and an ID from
 * pn_request_id_take: both valid by construction, so nothing is checked
 * again.  Returns its length. */
#define PN_REQUEST_ID_FIELD_MAX (PN_REQUEST_ID_NAME_MAX + PN_REQUEST_ID_MAX + 4)
size_t pn_request_id_field(char *out, const char *name, size_t name_len, const char *id,
                           size_t id_len);

/* 1 when `name` can be the --request-id-header: a token (RFC 9110 §5.1) of
 * at most PN_REQUEST_ID_NAME_MAX bytes that is none of the fields the
 * server writes or reads itself (framing, Connection and its hop-by-hop
 * fields, Date, Server, Host, Content-Type and Content-Encoding). */
int pn_request_id_name_ok(const char *name, size_t len);

#endif
