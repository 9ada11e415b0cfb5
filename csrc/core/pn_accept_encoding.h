/*
 * pn_accept_encoding — choose a response content coding from a request's
 * Accept-Encoding field (RFC 9110 §12.5.3).
 *
 * Protocol core: plain C, no Python.h, no allocation, no global state; any
 * thread may call it on its own pn_accept_encoding struct.  Input is a slice
 * of the request head (not NUL-terminated) and is only read inside it.
 *
 * What the negotiation does
 *   - Elements are "coding[;q=value]", comma-separated; names are
 *     case-insensitive, whitespace around ',', ';' and '=' is tolerated, empty
 *     elements are skipped (RFC 9110 §5.6.1).  "x-gzip" means gzip.
 *   - q is 0..1 with at most three decimals (RFC 9110 §12.4.2); q=0 means
 *     "not acceptable".  An element with a malformed q or any other parameter
 *     is ignored, as if absent (never trusted to mean q=1).
 *   - "*" gives its q to every coding not listed by name, identity included.
 *   - A coding listed twice keeps its lowest q.
 *   - identity is acceptable unless refused by name or by "*;q=0".
 *   - The winner is the available codec with the highest q > 0; ties go to
 *     the server's order (--compression-order).  If the client gave identity
 *     a q (by name or through "*") strictly higher than that codec's,
 *     identity wins; a tie goes to the codec.  No field, an empty field, or
 *     nothing acceptable: identity.
 *
 * Usage by the bridge: pn_accept_encoding_init(), pn_accept_encoding_feed()
 * once per Accept-Encoding field line (several lines form one list, RFC 9110
 * §5.3), then pn_accept_encoding_choose() with the configured order.
 */
#ifndef PN_ACCEPT_ENCODING_H
#define PN_ACCEPT_ENCODING_H

#include "pn_compress.h"

#include <stddef.h>

#define PN_Q_UNSET (-1)

typedef struct pn_accept_encoding {
    short q[PN_CODEC_COUNT]; /* per pn_codec, 0..1000 or PN_Q_UNSET; [0] is identity */
    short star;              /* q of "*", or PN_Q_UNSET */
    int fields;              /* field lines fed */
} pn_accept_encoding;

void pn_accept_encoding_init(pn_accept_encoding *ae);
/* Add one Accept-Encoding field value. */
void pn_accept_encoding_feed(pn_accept_encoding *ae, const char *v, size_t n);

/* The coding to use: one of order[0..norder) (the caller's preference, only
 * available codecs) or PN_CODEC_IDENTITY.  *identity_ok (may be NULL) is set
 * to 0 when the client also refused identity ("identity;q=0" or "*;q=0");
 * the bridge still sends the response unencoded then (RFC 9110 §12.5.3 lets
 * it; a 406 helps nobody). */
pn_codec pn_accept_encoding_choose(const pn_accept_encoding *ae, const pn_codec *order,
                                   size_t norder, int *identity_ok);

/* Parse a qvalue ("0", "0.5", "1.000"); 0..1000, or -1 if malformed. */
int pn_qvalue_parse(const char *s, size_t n);

/* One-shot convenience: one field value (NULL = no field). */
pn_codec pn_accept_encoding_negotiate(const char *v, size_t n, const pn_codec *order,
                                      size_t norder);

#endif
