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
 * Content-Encoding, take an encoder.  Returns 0 or -1 (no memory). */
int pn_codec_begin(RequestObject *r, size_t first_len, int more)
{
    WorkerObject *w = r->worker;
    if (!r->compress)
        return 0;
    int64_t size = more ? r->declared_len : (int64_t)first_len;
    if (size != PN_SIZE_UNKNOWN && size < w->cfg->compression_min_size) {
        r->compress = 0;
        r->codec = PN_CODEC_IDENTITY;
        return 0;
    }
    if (!r->vary_has_ae && pn_http1_resp_header(&r->head, &r->resp, PN_STRLIT("Vary"),
                                                PN_STRLIT("Accept-Encoding")) != PN_WRITE_OK)
        return -1;
    if (r->codec == PN_CODEC_IDENTITY)
        return 0;
    r->enc =
        pn_encoder_get(w->pool, (pn_codec)r->codec, more ? PN_SIZE_UNKNOWN : (int64_t)first_len);
    if (r->enc == NULL) {
        /* Out of memory is not the client's fault: send it as it is.  The
         * app's Content-Length was dropped, so framing falls back to chunked
         * (or the known length of a single message). */
        r->codec = PN_CODEC_IDENTITY;
        return 0;
    }
    const char *name = pn_codec_name((pn_codec)r->codec);
    if (pn_http1_resp_header(&r->head, &r->resp, PN_STRLIT("Content-Encoding"), name,
                             strlen(name)) != PN_WRITE_OK)
        return -1;
    return 0;
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

/* One app header of a response that is re-encoded (r->codec set). */
int pn_codec_header(RequestObject *r, const char *n, size_t nl, const char *v, size_t vl)
{
    if (PN_NAME_IS(n, nl, "content-length")) {
        /* The encoded body has another length: framing is ours. */
        return pn_http1_check_header(n, nl, v, vl);
    }
    if (PN_NAME_IS(n, nl, "etag") && pn_http1_check_header(n, nl, v, vl) == PN_WRITE_OK) {
        /* RFC 9110 §8.8.3: other bytes, so a strong validator turns weak. */
        pn_buf weak = PN_BUF_INIT;
        int wrc = pn_etag_weaken(v, vl, &weak) == 0
                      ? pn_http1_resp_header(&r->head, &r->resp, n, nl, weak.data, weak.len)
                      : PN_WRITE_NOMEM;
        pn_buf_free(&weak);
        return wrc;
    }
    return pn_http1_resp_header(&r->head, &r->resp, n, nl, v, vl);
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
    if (ae.fields)
        return (int)pn_accept_encoding_choose(&ae, w->order, w->norder, NULL);
    return PN_CODEC_IDENTITY;
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
