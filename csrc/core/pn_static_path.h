/*
 * pn_static_path — turn the request path of a static-file URL (the part
 * after the mount prefix, still %-encoded) into a safe relative file path.
 *
 * Protocol core: plain C, no Python.h, no allocation, no global state; any
 * thread may call it.  The input is a slice of the request head (not
 * NUL-terminated) and is only read inside it; the caller owns `out`.
 *
 * The rules (issue 16, docs/static.md):
 *   - %XX escapes are decoded; a malformed escape, a NUL or a control byte
 *     (0x01-0x1f, 0x7f) in the decoded path is PN_SPATH_BAD (400).
 *   - A ".." segment (raw or encoded), an encoded '/' or '\' (%2F, %5C), a
 *     raw '\', or a result longer than cap - 1 is PN_SPATH_NOT_FOUND (404).
 *   - A segment starting with '.' is PN_SPATH_HIDDEN (403) unless flags has
 *     PN_SPATH_DOTFILES; ".well-known" as the first segment is always allowed.
 *   - Empty segments ("//") and "." segments are dropped.
 *   - Other bytes (UTF-8 or not) are kept as they are.
 */
#ifndef PN_STATIC_PATH_H
#define PN_STATIC_PATH_H

#include <stddef.h>

#define PN_STATIC_PATH_MAX 4096
enum {
    PN_SPATH_FILE = 0,       /* ok: out names a file (maybe a directory: the caller finds out) */
    PN_SPATH_DIR = 1,        /* ok: the URL ended in '/' (or was empty): a directory is asked for */
    PN_SPATH_BAD = -1,       /* 400: malformed %-escape, NUL or control byte */
    PN_SPATH_HIDDEN = -2,    /* 403: a dot-segment name without PN_SPATH_DOTFILES */
    PN_SPATH_NOT_FOUND = -3, /* 404: "..", encoded '/' or '\', raw '\', longer than cap */
};
#define PN_SPATH_DOTFILES 1u /* flags: allow names starting with '.' */
/* raw: the request path after the mount prefix, still %-encoded ("" or "/..." ).
 * out: NUL-terminated relative path without leading '/', empty segments and "." segments
 * dropped ("" for the mount root); *out_len its length. */
int pn_static_path(const char *raw, size_t len, unsigned flags, char *out, size_t cap,
                   size_t *out_len);

#endif
