/*
 * pn_http_codec.c — content codings at the bridge: which codec a response
 * gets (Accept-Encoding, the compression policy, the size), its
 * Content-Encoding, Vary and ETag, compressing its body piece by piece; and
 * decoding a request body under --decompress-requests.  The codecs
 * themselves are the core's (pn_compress.c, pn_accept_encoding.c).
 *
 * Owns: a request's encoder (taken from the worker's pool, put back by
 * pn_codec_end) and decoder, and their output buffers.  Threads: the
 * worker's thread only (pn_asgi.h).
 */
#include "pn_asgi.h"
#include "pn_accept_encoding.h"

/* ---- response compression ---------------------------------------------------- */

/* The headers a coding changes.  Whether a response that may be encoded
 * (r->codec set at http.response.start) really is waits for its first
 * body: a body under --compression-min-size, an encoder the pool cannot
 * give, or a pathsend body goes out as the app gave it, and then its ETag
 * and Content-Length must be the app's exactly.  So until then the app's
 * ETag and Content-Length lines wait in r->zbuf (which holds no
 * compressed output before the first body), serialised and validated like
 * any other header, each behind one byte naming the body it belongs to:
 * HELD_AS_IS the app's lines, HELD_CODED the weakened ETag (a coded body
 * has no Content-Length of the app's). */
enum { HELD_AS_IS = 'I', HELD_CODED = 'C' };

static int hold(RequestObject *r, char form, const char *n, size_t nl, const char *v, size_t vl)
{
    size_t mark = r->zbuf.len;
    if (pn_buf_append(&r->zbuf, &form, 1) != 0)
        return PN_WRITE_NOMEM;
    int rc = pn_http1_resp_header(&r->zbuf, &r->resp, n, nl, v, vl);
    if (rc != PN_WRITE_OK || r->zbuf.len == mark + 1)
        r->zbuf.len = mark; /* an error, or a repeated Content-Length folded away */
    return rc;
}

/* Move the held lines of one form to the head and forget the others.
 * 0 or -1 (no memory). */
static int unhold(RequestObject *r, char form)
{
    if (r->zbuf.len == r->zbuf.off)
        return 0;
    const char *p = r->zbuf.data + r->zbuf.off, *end = r->zbuf.data + r->zbuf.len;
    int rc = 0;
    while (p < end && rc == 0) {
        /* Validated values hold no CR or LF: a line ends at its LF. */
        const char *next = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1;
        if (p[0] == form && pn_buf_append(&r->head, p + 1, (size_t)(next - p - 1)) != 0)
            rc = -1;
        p = next;
    }
    pn_buf_clear(&r->zbuf);
    return rc;
}

/* At http.response.start: may this response be compressed, and with what?
 * Sets r->compress (the response is eligible: it needs Vary even if this
 * client gets identity) and keeps r->codec only if a codec may be used.
 * The size check waits for the first body when the size is not declared. */
void pn_codec_decide(RequestObject *r, int status, PyObject **pairs, Py_ssize_t npairs)
{
    WorkerObject *w = r->worker;
    r->compress = 0;
    r->vary_has_ae = 0;
    r->declared_len = PN_SIZE_UNKNOWN;
    if (w->pool == NULL) {
        r->codec = PN_CODEC_IDENTITY;
        return;
    }
    pn_compress_resp info;
    pn_compress_resp_init(&info, status, r->head_request);
    for (Py_ssize_t i = 0; i < npairs; i++) {
        PyObject *name = PySequence_Fast_GET_ITEM(pairs[i], 0);  /* borrowed from pairs[i] */
        PyObject *value = PySequence_Fast_GET_ITEM(pairs[i], 1); /* borrowed from pairs[i] */
        const char *n = PyBytes_AS_STRING(name), *v = PyBytes_AS_STRING(value);
        size_t nl = (size_t)PyBytes_GET_SIZE(name), vl = (size_t)PyBytes_GET_SIZE(value);
        pn_compress_resp_header(&info, n, nl, v, vl);
        if (PN_NAME_IS(n, nl, "vary") && pn_vary_has_accept_encoding(v, vl))
            r->vary_has_ae = 1;
    }
    r->declared_len = info.body_size;
    /* info.content_type points into a header we still hold: decide now. */
    r->compress = pn_compress_eligible(&w->policy, &info) ? 1 : 0;
    if (!r->compress)
        r->codec = PN_CODEC_IDENTITY;
}

/* At the first body: settle the decision (size), add Vary and
 * Content-Encoding, take an encoder, and release the held ETag and
 * Content-Length in the form that matches the body.  Returns 0 or -1 (no
 * memory). */
int pn_codec_begin(RequestObject *r, size_t first_len, int more)
{
    WorkerObject *w = r->worker;
    if (!r->compress)
        return 0;
    int64_t size = more ? r->declared_len : (int64_t)first_len;
    if (size != PN_SIZE_UNKNOWN && size < w->cfg->compression_min_size) {
        r->compress = 0;
        return pn_codec_as_is(r);
    }
    if (!r->vary_has_ae && pn_http1_resp_header(&r->head, &r->resp, PN_STRLIT("Vary"),
                                                PN_STRLIT("Accept-Encoding")) != PN_WRITE_OK)
        return -1;
    if (r->codec == PN_CODEC_IDENTITY)
        return 0;
    r->enc =
        pn_encoder_get(w->pool, (pn_codec)r->codec, more ? PN_SIZE_UNKNOWN : (int64_t)first_len);
    if (r->enc == NULL) {
        /* Out of memory is not the client's fault: send it as it is, with
         * the app's own ETag and Content-Length. */
        return pn_codec_as_is(r);
    }
    const char *name = pn_codec_name((pn_codec)r->codec);
    if (pn_http1_resp_header(&r->head, &r->resp, PN_STRLIT("Content-Encoding"), name,
                             strlen(name)) != PN_WRITE_OK)
        return -1;
    /* The encoded body has another length: framing is ours (a single
     * message gets the exact encoded length, a stream is chunked). */
    pn_http1_resp_forget_length(&r->resp);
    return unhold(r, HELD_CODED);
}

/* Compress one body piece into r->zbuf (cleared first).  The GIL is let go
 * for large pieces when other thread workers could use it. */
int pn_codec_piece(RequestObject *r, const char *data, size_t len, int final)
{
    pn_buf_clear(&r->zbuf);
    int rc;
    if (r->worker->release_gil && len >= PN_GIL_RELEASE_MIN) {
        Py_BEGIN_ALLOW_THREADS
            rc = pn_encoder_write(r->enc, data, len, final ? PN_FLUSH_FINISH : PN_FLUSH_SYNC,
                                  &r->zbuf);
        Py_END_ALLOW_THREADS
    } else {
        rc = pn_encoder_write(r->enc, data, len, final ? PN_FLUSH_FINISH : PN_FLUSH_SYNC, &r->zbuf);
    }
    pn_metrics_compressed(r->worker->metrics, rc == 0 ? len : 0, rc == 0 ? r->zbuf.len : 0);
    return rc;
}

void pn_codec_end(RequestObject *r)
{
    if (r->enc != NULL) {
        pn_encoder_put(r->enc);
        r->enc = NULL;
    }
    pn_buf_free(&r->zbuf);
}

/* One app header of a response that may be re-encoded (r->codec set). */
int pn_codec_header(RequestObject *r, const char *n, size_t nl, const char *v, size_t vl)
{
    if (PN_NAME_IS(n, nl, "content-length"))
        return hold(r, HELD_AS_IS, n, nl, v, vl);
    if (PN_NAME_IS(n, nl, "etag")) {
        int rc = hold(r, HELD_AS_IS, n, nl, v, vl);
        if (rc != PN_WRITE_OK)
            return rc;
        /* RFC 9110 §8.8.3: other bytes, so a strong validator turns weak. */
        pn_buf weak = PN_BUF_INIT;
        rc = pn_etag_weaken(v, vl, &weak) == 0 ? hold(r, HELD_CODED, n, nl, weak.data, weak.len)
                                               : PN_WRITE_NOMEM;
        pn_buf_free(&weak);
        return rc;
    }
    return pn_http1_resp_header(&r->head, &r->resp, n, nl, v, vl);
}

int pn_codec_as_is(RequestObject *r)
{
    r->codec = PN_CODEC_IDENTITY;
    return unhold(r, HELD_AS_IS);
}

/* ---- negotiation and request decoding ---------------------------------------- */

int pn_codec_negotiate(WorkerObject *w, const pn_http1_request *req)
{
    if (w->pool == NULL)
        return PN_CODEC_IDENTITY;
    /* RFC 9110 §12.5.3; several Accept-Encoding lines form one list. */
    pn_accept_encoding ae;
    pn_accept_encoding_init(&ae);
    for (size_t i = 0; i < req->num_headers; i++) {
        const pn_http1_header *h = &req->headers[i];
        if (PN_NAME_IS(h->name, h->name_len, "accept-encoding"))
            pn_accept_encoding_feed(&ae, h->value, h->value_len);
    }
    if (!ae.fields)
        return PN_CODEC_IDENTITY;
    /* A range is asked of the representation the app makes (RFC 9110
     * §14.2).  A 206 is never encoded (Content-Range), and a 200 (If-Range
     * failed, or the app ignores Range) goes out as the app made it too, so
     * a resuming client never holds offsets into one coding and bytes of
     * another.  It still gets Vary when eligible.  (Looked up only when
     * there is a coding to refuse: a plain request pays nothing.) */
    for (size_t i = 0; i < req->num_headers; i++)
        if (PN_NAME_IS(req->headers[i].name, req->headers[i].name_len, "range"))
            return PN_CODEC_IDENTITY;
    return (int)pn_accept_encoding_choose(&ae, w->order, w->norder, NULL);
}

pn_decoder *pn_codec_request_decoder(WorkerObject *w, const pn_http1_request *req)
{
    if (req->body_kind == PN_BODY_NONE)
        return NULL;
    /* One known coding only; anything else goes to the app unchanged. */
    const pn_http1_header *ce = pn_http1_find_header(req, PN_STRLIT("content-encoding"));
    int codec = ce ? pn_codec_from_token(ce->value, ce->value_len) : -1;
    pn_decoder *dec = NULL;
    if (codec > 0 && pn_codec_available((pn_codec)codec) &&
        pn_decoder_new(&dec, (pn_codec)codec, (uint64_t)w->cfg->max_decompressed_size) != 0)
        dec = NULL;
    return dec;
}

PyObject *pn_codec_decode(RequestObject *r, const char *data, size_t len, int last, int *status)
{
    pn_buf_clear(&r->dbuf);
    int drc = pn_decoder_write(r->dec, data, len, last, &r->dbuf);
    if (drc == PN_DECODE_TOO_BIG || drc == PN_DECODE_BAD || drc < 0 ||
        (last && drc != PN_DECODE_DONE)) {
        *status = drc == PN_DECODE_TOO_BIG ? 413 : drc < 0 ? 500 : 400;
        return NULL;
    }
    PyObject *body = PyBytes_FromStringAndSize(r->dbuf.data, (Py_ssize_t)r->dbuf.len);
    if (last) {
        pn_decoder_free(r->dec);
        r->dec = NULL;
        pn_buf_free(&r->dbuf);
    }
    return body;
}
