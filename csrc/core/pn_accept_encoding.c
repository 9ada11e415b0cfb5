/*
 * pn_accept_encoding — RFC 9110 §12.5.3 negotiation; see the header for the
 * exact rules.  A single forward pass over the field value, no allocation.
 */
#include "pn_accept_encoding.h"

#include <string.h>

#include "pn_http_token.h"

void pn_accept_encoding_init(pn_accept_encoding *ae)
{
    for (int i = 0; i < PN_CODEC_COUNT; i++)
        ae->q[i] = PN_Q_UNSET;
    ae->star = PN_Q_UNSET;
    ae->fields = 0;
}

int pn_qvalue_parse(const char *s, size_t n)
{
    /* RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
    if (n == 0 || n > 5 || (s[0] != '0' && s[0] != '1'))
        return -1;
    int q = s[0] == '1' ? 1000 : 0;
    if (n == 1)
        return q;
    if (s[1] != '.')
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (q == 1000 && s[i] != '0')
            return -1;
        q += (s[i] - '0') * scale;
    }
    return q;
}

/* Parse "coding [ OWS ; OWS q = qvalue ]" into a name and a q (1000 when no
 * weight).  0 if the element must be ignored. */
static int parse_elem(const char *e, size_t n, const char **name, size_t *nlen, int *q)
{
    const char *semi = memchr(e, ';', n);
    *name = e;
    *nlen = semi ? (size_t)(semi - e) : n;
    pn_http_trim(name, nlen);
    if (*nlen == 0)
        return 0;
    *q = 1000;
    if (semi == NULL)
        return 1;
    const char *w = semi + 1;
    size_t wn = n - (size_t)(w - e);
    pn_http_trim(&w, &wn);
    /* Exactly one parameter, and it must be q (case-insensitive); a second
     * ';' or another name makes the element malformed. */
    if (wn < 2 || (w[0] != 'q' && w[0] != 'Q') || memchr(w, ';', wn))
        return 0;
    w++;
    wn--;
    pn_http_trim(&w, &wn);
    if (wn == 0 || w[0] != '=')
        return 0;
    w++;
    wn--;
    pn_http_trim(&w, &wn);
    *q = pn_qvalue_parse(w, wn);
    return *q >= 0;
}

static void set_min(short *slot, int q)
{
    if (*slot == PN_Q_UNSET || q < *slot)
        *slot = (short)q;
}

void pn_accept_encoding_feed(pn_accept_encoding *ae, const char *v, size_t n)
{
    ae->fields++;
    size_t pos = 0;
    const char *el;
    size_t elen;
    while (pn_http_list_next(v, n, &pos, &el, &elen)) {
        const char *name;
        size_t nlen;
        int q;
        if (parse_elem(el, elen, &name, &nlen, &q)) {
            if (nlen == 1 && name[0] == '*') {
                set_min(&ae->star, q);
            } else if (pn_http_ieq(name, nlen, PN_STRLIT("identity"))) {
                set_min(&ae->q[PN_CODEC_IDENTITY], q);
            } else {
                int codec = pn_codec_from_token(name, nlen);
                if (codec > 0)
                    set_min(&ae->q[codec], q);
            }
        }
    }
}

static int effective_q(const pn_accept_encoding *ae, int codec)
{
    if (ae->q[codec] != PN_Q_UNSET)
        return ae->q[codec];
    if (ae->star != PN_Q_UNSET)
        return ae->star;
    /* identity is acceptable unless excluded; a coding not named is not. */
    return codec == PN_CODEC_IDENTITY ? 1000 : 0;
}

pn_codec pn_accept_encoding_choose(const pn_accept_encoding *ae, const pn_codec *order,
                                   size_t norder, int *identity_ok)
{
    int qi = effective_q(ae, PN_CODEC_IDENTITY);
    if (identity_ok)
        *identity_ok = qi > 0;
    /* identity competes only with a q the client gave it (by name or via
     * "*"): its default acceptability carries no weight, so "gzip;q=0.5"
     * alone still means "gzip, please". */
    if (ae->q[PN_CODEC_IDENTITY] == PN_Q_UNSET && ae->star == PN_Q_UNSET)
        qi = 0;
    /* No field at all: RFC 9110 §12.5.3 allows any coding, but clients that
     * send nothing are mostly tools that would not decode it. */
    if (ae->fields == 0)
        return PN_CODEC_IDENTITY;
    pn_codec best = PN_CODEC_IDENTITY;
    int bestq = 0;
    for (size_t i = 0; i < norder; i++) {
        int q = effective_q(ae, order[i]);
        if (order[i] != PN_CODEC_IDENTITY && q > bestq) {
            best = order[i];
            bestq = q;
        }
    }
    /* A tie with identity goes to the codec: compressing is why we asked. */
    if (best != PN_CODEC_IDENTITY && qi > bestq)
        return PN_CODEC_IDENTITY;
    return best;
}

pn_codec pn_accept_encoding_negotiate(const char *v, size_t n, const pn_codec *order, size_t norder)
{
    pn_accept_encoding ae;
    pn_accept_encoding_init(&ae);
    if (v)
        pn_accept_encoding_feed(&ae, v, n);
    return pn_accept_encoding_choose(&ae, order, norder, NULL);
}
