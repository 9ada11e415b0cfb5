/*
 * pn_ws_handshake — WebSocket opening handshake and permessage-deflate
 * negotiation.  See pn_ws_handshake.h for the contract.
 */
#include "pn_ws_handshake.h"

#include <errno.h>
#include <string.h>

#include "pn_http_token.h"

/* ---- SHA-1 (FIPS 180-4 §6.1) ------------------------------------------ */

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *b)
{
    uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)b[4 * t] << 24 | (uint32_t)b[4 * t + 1] << 16 |
               (uint32_t)b[4 * t + 2] << 8 | b[4 * t + 3];
    for (int t = 16; t < 80; t++)
        w[t] = rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20) {
            f = (bb & c) | (~bb & d);
            k = 0x5a827999;
        } else if (t < 40) {
            f = bb ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (t < 60) {
            f = (bb & c) | (bb & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = bb ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t tmp = rol(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = rol(bb, 30);
        bb = a;
        a = tmp;
    }
    h[0] += a;
    h[1] += bb;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void pn_sha1(const void *p, size_t n, uint8_t digest[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    const uint8_t *s = p;
    size_t i = 0;
    for (; n - i >= 64; i += 64)
        sha1_block(h, s + i);
    /* Padding (§5.1.1): 0x80, zeros, then the length in bits, big-endian,
     * in the last 8 bytes of a block. */
    uint8_t last[128];
    size_t rem = n - i;
    memset(last, 0, sizeof last);
    if (rem)
        memcpy(last, s + i, rem);
    last[rem] = 0x80;
    size_t total = rem + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int j = 0; j < 8; j++)
        last[total - 1 - j] = (uint8_t)(bits >> (8 * j));
    sha1_block(h, last);
    if (total == 128)
        sha1_block(h, last + 64);
    for (int j = 0; j < 5; j++) {
        digest[4 * j] = (uint8_t)(h[j] >> 24);
        digest[4 * j + 1] = (uint8_t)(h[j] >> 16);
        digest[4 * j + 2] = (uint8_t)(h[j] >> 8);
        digest[4 * j + 3] = (uint8_t)h[j];
    }
}

/* ---- base64 (RFC 4648 §4) --------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t pn_base64_encode(const void *p, size_t n, char *out)
{
    const uint8_t *s = p;
    size_t o = 0, i = 0;
    for (; n - i >= 3; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void pn_ws_accept_key(const char *key, size_t key_len, char out[29])
{
    /* Keys are checked to be 24 bytes; anything longer is cut so the
     * concatenation always fits the stack buffer. */
    char cat[64 + sizeof GUID];
    if (key_len > 64)
        key_len = 64;
    memcpy(cat, key, key_len);
    memcpy(cat + key_len, GUID, sizeof GUID - 1);
    uint8_t digest[20];
    pn_sha1(cat, key_len + sizeof GUID - 1, digest);
    pn_base64_encode(digest, sizeof digest, out);
}

/* ---- header field helpers (RFC 9110 §5.6) ------------------------------ */

static int name_is(const pn_http1_header *h, const char *name, size_t len)
{
    return pn_http_ieq(h->name, h->name_len, name, len);
}

/* Does any header `name` list `token` (case-insensitive)? */
static int lists_token(const pn_http1_request *req, const char *name, size_t name_len,
                       const char *token, size_t token_len)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        const pn_http1_header *h = &req->headers[i];
        if (name_is(h, name, name_len) &&
            pn_http_list_has(h->value, h->value_len, token, token_len))
            return 1;
    }
    return 0;
}

/* ---- Sec-WebSocket-Extensions (RFC 6455 §9.1, RFC 7692 §7) ------------- */

typedef struct {
    const char *s;
    size_t n, i;
} lexer;

static void skip_ows(lexer *lx)
{
    while (lx->i < lx->n && pn_http_is_ows(lx->s[lx->i]))
        lx->i++;
}

static int token(lexer *lx, const char **t, size_t *len)
{
    size_t s = lx->i;
    while (lx->i < lx->n && pn_http_is_tchar(lx->s[lx->i]))
        lx->i++;
    *t = lx->s + s;
    *len = lx->i - s;
    return *len > 0;
}

/* A parameter value: token or quoted-string.  The unescaped value goes to
 * buf (cut at cap, *len still counts it all).  RFC 6455 §9.1: a quoted
 * value must be a token once unescaped. */
static int param_value(lexer *lx, char *buf, size_t cap, size_t *len)
{
    size_t o = 0;
    if (lx->i < lx->n && lx->s[lx->i] == '"') {
        lx->i++;
        for (;;) {
            if (lx->i >= lx->n)
                return 0;
            char c = lx->s[lx->i++];
            if (c == '"')
                break;
            if (c == '\\') {
                if (lx->i >= lx->n)
                    return 0;
                c = lx->s[lx->i++];
            }
            if (!pn_http_is_tchar(c))
                return 0;
            if (o < cap)
                buf[o] = c;
            o++;
        }
    } else {
        const char *t;
        size_t tl;
        if (!token(lx, &t, &tl))
            return 0;
        for (size_t k = 0; k < tl && k < cap; k++)
            buf[k] = t[k];
        o = tl;
    }
    *len = o;
    return o > 0;
}

/* A permessage-deflate offer, as parsed. */
typedef struct {
    int bad; /* unknown or duplicate parameter, or invalid value: decline */
    int snct, cnct;
    int smwb, cmwb; /* -1 absent; 0 present without value (client only); 8..15 */
} pmd_offer;

/* "8".."15", no leading zero (RFC 7692 §7.1.2.1).  -1 when invalid. */
static int window_bits(const char *v, size_t n)
{
    if (n == 1 && v[0] >= '8' && v[0] <= '9')
        return v[0] - '0';
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + v[1] - '0';
    return -1;
}

static void pmd_param(pmd_offer *o, const char *name, size_t nlen, const char *val, size_t vlen,
                      int has_value)
{
    if (pn_http_ieq(name, nlen, PN_STRLIT("server_no_context_takeover"))) {
        if (o->snct || has_value)
            o->bad = 1;
        o->snct = 1;
    } else if (pn_http_ieq(name, nlen, PN_STRLIT("client_no_context_takeover"))) {
        if (o->cnct || has_value)
            o->bad = 1;
        o->cnct = 1;
    } else if (pn_http_ieq(name, nlen, PN_STRLIT("server_max_window_bits"))) {
        /* §7.1.2.1: the value is required in an offer. */
        if (o->smwb != -1 || !has_value || (o->smwb = window_bits(val, vlen)) < 0)
            o->bad = 1;
    } else if (pn_http_ieq(name, nlen, PN_STRLIT("client_max_window_bits"))) {
        /* §7.1.2.2: optional value. */
        if (o->cmwb != -1)
            o->bad = 1;
        o->cmwb = has_value ? window_bits(val, vlen) : 0;
        if (o->cmwb < 0)
            o->bad = 1;
    } else {
        o->bad = 1; /* §7: unknown parameter → decline the offer */
    }
}

static void append(char *buf, size_t *len, const char *s)
{
    size_t n = strlen(s);
    memcpy(buf + *len, s, n);
    *len += n;
}

static void append_bits(char *buf, size_t *len, const char *name, int bits)
{
    append(buf, len, name);
    *len += pn_http_put_u64(buf + *len, (uint64_t)bits);
}

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Accept or decline one offer under the policy (RFC 7692 §7.1).  Returns 1
 * and fills hs when accepted. */
static int pmd_accept(const pmd_offer *o, const pn_ws_deflate_policy *pol, pn_ws_handshake *hs)
{
    if (o->bad)
        return 0;
    /* Our window: the policy's, lowered to the offer's limit.  A limit of 8
     * cannot be honoured (zlib writes raw deflate with 9..15 bits only), so
     * such an offer is declined as §7 allows ("doesn't support"). */
    int s_bits = clamp(pol->server_max_window_bits, 9, 15);
    if (o->smwb != -1) {
        if (o->smwb < 9)
            return 0;
        if (o->smwb < s_bits)
            s_bits = o->smwb;
    }
    /* The client's window: only limited when its offer says it accepts a
     * limit (§7.1.2.2); we may answer with any value up to its hint. */
    int c_bits = 15, send_c = 0;
    if (o->cmwb != -1) {
        int hint = o->cmwb == 0 ? 15 : o->cmwb;
        c_bits = clamp(pol->client_max_window_bits, 8, 15);
        if (hint < c_bits)
            c_bits = hint;
        send_c = c_bits < 15 || o->cmwb != 0;
    }
    pn_ws_deflate_params *pr = &hs->deflate;
    pr->enabled = 1;
    /* §7.1.1.1: an offered server_no_context_takeover must be honoured;
     * the server may add it on its own. */
    pr->server_no_context_takeover = o->snct || pol->server_no_context_takeover;
    /* §7.1.1.2: the server may ask the client to reset; echoing the client's
     * own offer also makes us reset our decompressor, which is then free. */
    pr->client_no_context_takeover = o->cnct || pol->client_no_context_takeover;
    pr->server_max_window_bits = s_bits;
    pr->client_max_window_bits = c_bits;

    char *b = hs->extensions;
    size_t n = 0;
    append(b, &n, "permessage-deflate");
    if (pr->server_no_context_takeover)
        append(b, &n, "; server_no_context_takeover");
    if (pr->client_no_context_takeover)
        append(b, &n, "; client_no_context_takeover");
    if (o->smwb != -1 || s_bits < 15) /* §7.1.2.1: may be sent unasked */
        append_bits(b, &n, "; server_max_window_bits=", s_bits);
    if (send_c)
        append_bits(b, &n, "; client_max_window_bits=", c_bits);
    hs->extensions_len = n;
    return 1;
}

/* Parse one Sec-WebSocket-Extensions value; accept the first acceptable
 * permessage-deflate offer.  Returns -1 when the field is malformed. */
static int parse_extensions(const char *v, size_t n, const pn_ws_deflate_policy *pol,
                            pn_ws_handshake *hs)
{
    lexer lx = {v, n, 0};
    for (;;) {
        /* extension-list = 1#extension; empty elements are allowed. */
        skip_ows(&lx);
        while (lx.i < lx.n && lx.s[lx.i] == ',') {
            lx.i++;
            skip_ows(&lx);
        }
        if (lx.i >= lx.n)
            return 0;
        const char *name;
        size_t nlen;
        if (!token(&lx, &name, &nlen))
            return -1;
        int is_pmd = pn_http_ieq(name, nlen, PN_STRLIT("permessage-deflate"));
        pmd_offer o = {0, 0, 0, -1, -1};
        for (;;) {
            skip_ows(&lx);
            if (lx.i >= lx.n || lx.s[lx.i] != ';')
                break;
            lx.i++;
            skip_ows(&lx);
            const char *pn;
            size_t pl;
            if (!token(&lx, &pn, &pl))
                return -1;
            skip_ows(&lx);
            char val[8];
            size_t vl = 0;
            int has_value = 0;
            if (lx.i < lx.n && lx.s[lx.i] == '=') {
                lx.i++;
                skip_ows(&lx);
                if (!param_value(&lx, val, sizeof val, &vl))
                    return -1;
                has_value = 1;
            }
            if (is_pmd)
                pmd_param(&o, pn, pl, val, vl > sizeof val ? 0 : vl, has_value);
        }
        if (lx.i < lx.n && lx.s[lx.i] != ',')
            return -1;
        if (is_pmd && pol && pol->enabled && !hs->deflate.enabled)
            pmd_accept(&o, pol, hs);
    }
}

/* ---- the handshake ----------------------------------------------------- */

static int error(pn_ws_handshake *hs, int status, const char *why)
{
    hs->status = status;
    hs->reason = why;
    return PN_WS_HS_ERROR;
}

int pn_ws_handshake_check(const pn_http1_request *req, const pn_ws_deflate_policy *policy,
                          pn_ws_handshake *hs)
{
    memset(hs, 0, sizeof *hs);
    /* RFC 6455 §4.2.1 item 3: Upgrade lists "websocket" (case-insensitive).
     * Without it this is not a WebSocket request at all. */
    if (!lists_token(req, PN_STRLIT("upgrade"), PN_STRLIT("websocket")))
        return PN_WS_HS_NOT_WEBSOCKET;
    /* §4.2.1 item 1: GET, HTTP/1.1 or higher. */
    if (!pn_http_eq(req->method, req->method_len, PN_STRLIT("GET")))
        return error(hs, 400, "websocket handshake must use GET");
    if (req->version_minor < 1)
        return error(hs, 400, "websocket handshake needs HTTP/1.1");
    /* §4.2.1 item 4: Connection lists "upgrade". */
    if (!lists_token(req, PN_STRLIT("connection"), PN_STRLIT("upgrade")))
        return error(hs, 400, "websocket handshake without Connection: upgrade");
    const pn_http1_header *key = NULL, *version = NULL;
    int nkeys = 0, nversions = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        const pn_http1_header *h = &req->headers[i];
        if (name_is(h, PN_STRLIT("sec-websocket-key"))) {
            key = h;
            nkeys++;
        } else if (name_is(h, PN_STRLIT("sec-websocket-version"))) {
            version = h;
            nversions++;
        }
    }
    /* §4.2.1 item 6 and §4.2.2: any version but 13 gets 426 and the header
     * "Sec-WebSocket-Version: 13" so the client can retry. */
    if (nversions != 1 || !pn_http_eq(version->value, version->value_len, PN_STRLIT("13")))
        return error(hs, 426, "unsupported websocket version");
    /* §4.2.1 item 5: one key, the base64 form of 16 bytes: 22 base64
     * characters and "==". */
    if (nkeys != 1)
        return error(hs, 400, "websocket handshake needs one Sec-WebSocket-Key");
    if (key->value_len != 24 || key->value[22] != '=' || key->value[23] != '=')
        return error(hs, 400, "invalid Sec-WebSocket-Key");
    for (size_t i = 0; i < 22; i++)
        if (!is_b64((unsigned char)key->value[i]))
            return error(hs, 400, "invalid Sec-WebSocket-Key");
    /* §4.1 / §11.3.4: Sec-WebSocket-Protocol = 1#token. */
    for (size_t i = 0; i < req->num_headers; i++) {
        const pn_http1_header *h = &req->headers[i];
        if (name_is(h, PN_STRLIT("sec-websocket-protocol"))) {
            size_t pos = 0;
            const char *el;
            size_t len;
            /* Empty elements are ignored (RFC 9110 §5.6.1). */
            while (pn_http_list_next(h->value, h->value_len, &pos, &el, &len))
                if (len && !pn_http_is_token(el, len))
                    return error(hs, 400, "invalid Sec-WebSocket-Protocol");
        }
    }
    /* §9.1: extension offers, over all Sec-WebSocket-Extensions fields. */
    pn_ws_deflate_policy none = {0, 0, 0, 15, 15};
    if (!policy || !pn_ws_deflate_available())
        policy = &none;
    for (size_t i = 0; i < req->num_headers; i++) {
        const pn_http1_header *h = &req->headers[i];
        if (name_is(h, PN_STRLIT("sec-websocket-extensions")) &&
            parse_extensions(h->value, h->value_len, policy, hs) != 0) {
            memset(&hs->deflate, 0, sizeof hs->deflate);
            hs->extensions_len = 0;
            return error(hs, 400, "invalid Sec-WebSocket-Extensions");
        }
    }
    pn_ws_accept_key(key->value, key->value_len, hs->accept);
    return PN_WS_HS_OK;
}

void pn_ws_protocols_begin(pn_ws_list_iter *it, const pn_http1_request *req)
{
    it->req = req;
    it->header = 0;
    it->pos = 0;
}

int pn_ws_protocols_next(pn_ws_list_iter *it, const char **tok, size_t *len)
{
    const pn_http1_request *req = it->req;
    for (; it->header < req->num_headers; it->header++, it->pos = 0) {
        const pn_http1_header *h = &req->headers[it->header];
        if (!name_is(h, PN_STRLIT("sec-websocket-protocol")))
            continue;
        /* Empty elements are skipped (RFC 9110 §5.6.1). */
        while (pn_http_list_next(h->value, h->value_len, &it->pos, tok, len))
            if (*len)
                return 1;
    }
    return 0;
}

int pn_ws_handshake_write_101(pn_buf *out, const pn_ws_handshake *hs, const char *subprotocol,
                              size_t subprotocol_len)
{
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: ";
    static const char proto[] = "\r\nSec-WebSocket-Protocol: ";
    static const char ext[] = "\r\nSec-WebSocket-Extensions: ";
    if (subprotocol_len && !pn_http_is_token(subprotocol, subprotocol_len))
        return PN_WS_HS_ERROR;
    /* The accept value is base64 of a SHA-1 digest: always 28 characters,
     * the NUL of hs->accept not sent. */
    size_t accept_len = sizeof hs->accept - 1;
    size_t need = sizeof head + accept_len + sizeof proto + subprotocol_len + sizeof ext +
                  hs->extensions_len + sizeof("\r\n") - 1;
    if (pn_buf_reserve(out, need) != 0)
        return -ENOMEM;
    /* Cannot fail now: the space is reserved. */
    pn_buf_append(out, head, sizeof head - 1);
    pn_buf_append(out, hs->accept, accept_len);
    if (subprotocol_len) {
        pn_buf_append(out, proto, sizeof proto - 1);
        pn_buf_append(out, subprotocol, subprotocol_len);
    }
    if (hs->extensions_len) {
        pn_buf_append(out, ext, sizeof ext - 1);
        pn_buf_append(out, hs->extensions, hs->extensions_len);
    }
    pn_buf_append(out, PN_STRLIT("\r\n"));
    return 0;
}
