/*
 * pn_http.c — the HTTP request object: one ASGI `http` cycle.  It owns
 * receive() (the request body, then http.disconnect) and send()
 * (http.response.start, .body, .pathsend), and settles its stream when
 * the app's coroutine ends.
 *
 * The request talks to its transport only through its stream (pn_stream.h:
 * an HTTP/1.1 connection today, an HTTP/2 stream tomorrow) and never learns
 * which it has: it builds the response head with the core's writer, and
 * the stream finishes, frames and sends it.
 *
 * Trailers (the ASGI http.response.trailers extension, offered when the
 * stream said s->trailers): after http.response.start with "trailers":
 * True, the final http.response.body does not end the response; the app's
 * http.response.trailers messages gather their fields here, and the last
 * (more_trailers False) ends it through send_trailers.  Fields RFC 9110
 * §6.5.1 keeps out of trailers are dropped here, whatever the transport.
 * When the scope did not offer the extension, "trailers": True is accepted
 * and the trailers dropped: the final body ends the response as usual.
 *
 * Owns: each RequestObject; while attached, its stream holds a strong
 * reference to it (stream->udata), dropped when the response completes or
 * the stream closes.  RequestObject.stream is the transport's, valid until
 * then, NULL afterwards.  Threads: the worker's thread only (pn_asgi.h).
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pn_access_log.h"
#include "pn_asgi.h"
#include "pn_log.h"

static PyObject *make_disconnect(pn_modstate *st)
{
    return PyDict_Copy(st->msg_disconnect_template);
}

/* ---- receive ------------------------------------------------------------ */

/* The request body turned out to be bad (400) or too large (413): when
 * the app has not started a response and the stream can still answer, the
 * client gets the status; otherwise the stream is abandoned.  The app gets
 * http.disconnect. */
static void request_body_failed(RequestObject *r, int status, int can_answer)
{
    pn_stream *s = r->stream;
    if (s == NULL)
        return;
    if (!r->started && can_answer) {
        pn_request_reply(r, status);
    } else {
        s->ops->abort(s);
        r->stream = NULL;
    }
    r->disconnected = 1;
}

/* Build the next receive() message.  Returns a new dict, or NULL with no
 * exception when the app must wait, or NULL with an exception. */
static PyObject *request_try_receive(RequestObject *r)
{
    pn_modstate *st = worker_state(r->worker);
    if (r->disconnected || r->stream == NULL || r->complete)
        return make_disconnect(st);
    if (r->body_done)
        return NULL; /* nothing more until the client goes away */
    pn_stream *s = r->stream;
    if (!r->started)
        s->ops->send_continue(s);
    const char *data = NULL;
    size_t len = 0;
    int status = 0;
    int rc = s->ops->body(s, &data, &len, &status);
    if (rc < 0) {
        if (status)
            request_body_failed(r, status, rc == PN_BODY_BAD);
        return make_disconnect(st);
    }
    if (rc == PN_BODY_WAIT)
        return NULL;
    PyObject *body;
    int more = rc != PN_BODY_LAST;
    if (r->dec != NULL) {
        /* --decompress-requests: decode, with the bomb cap. */
        body = pn_codec_decode(r, data, len, !more, &status);
        s->ops->body_consume(s, len);
        if (status) {
            request_body_failed(r, status, 1);
            return make_disconnect(st);
        }
    } else {
        body = len ? PyBytes_FromStringAndSize(data, (Py_ssize_t)len) : Py_NewRef(st->empty_bytes);
        s->ops->body_consume(s, len);
    }
    if (body == NULL)
        return NULL;
    if (!more)
        r->body_done = 1;
    PyObject *msg = msg_new(st, PN_ID(st, http_request), PN_ID(st, body), body,
                            PN_ID(st, more_body), more ? Py_True : Py_False);
    Py_DECREF(body);
    return msg;
}

int pn_request_forget_receive(RequestObject *r)
{
    if (r->recv_future == NULL)
        return 0;
    PyObject *done =
        PyObject_CallMethodNoArgs(r->recv_future, PN_ID(worker_state(r->worker), done));
    if (done == NULL)
        return -1;
    int is_done = done == Py_True;
    Py_DECREF(done);
    if (!is_done) {
        runtime_error("receive() called while another receive() is still waiting", NULL);
        return -1;
    }
    Py_CLEAR(r->recv_future);
    return 0;
}

PyObject *pn_request_receive(RequestObject *r)
{
    pn_modstate *st = worker_state(r->worker);
    if (pn_request_forget_receive(r) < 0)
        return NULL;
    PyObject *msg = request_try_receive(r);
    if (msg != NULL)
        return pn_ready_new(st, msg);
    if (PyErr_Occurred())
        return NULL;
    PyObject *fut = PyObject_CallNoArgs(r->worker->create_future);
    if (fut == NULL)
        return NULL;
    r->recv_future = Py_NewRef(fut);
    if (r->stream && !r->body_done)
        r->stream->ops->stall_timer(r->stream, 1);
    else if (r->stream)
        r->stream->ops->watch_close(r->stream); /* only http.disconnect can follow */
    return fut;
}

static PyObject *request_receive(PyObject *op, PyObject *unused)
{
    (void)unused;
    return pn_request_receive((RequestObject *)op);
}

void pn_request_body_ready(RequestObject *r)
{
    pn_modstate *st = worker_state(r->worker);
    if (r->recv_future == NULL)
        return;
    Py_INCREF(r);
    r->stream->ops->stall_timer(r->stream, 0);
    /* If the app cancelled its receive(), leave the body where it is for
     * the next receive() instead of handing it to a dead future. */
    PyObject *done = PyObject_CallMethodNoArgs(r->recv_future, PN_ID(st, done));
    if (done != Py_False) {
        if (done == NULL)
            PyErr_WriteUnraisable(r->recv_future);
        Py_XDECREF(done);
        Py_CLEAR(r->recv_future);
        Py_DECREF(r);
        return;
    }
    Py_DECREF(done);
    PyObject *msg = request_try_receive(r);
    if (msg != NULL) {
        pn_future_resolve(st, &r->recv_future, msg);
        Py_DECREF(msg);
    } else if (PyErr_Occurred()) {
        PyErr_WriteUnraisable((PyObject *)r);
    }
    /* (Nothing yet: the body op asked for another on_body.) */
    Py_DECREF(r);
}

/* ---- send ----------------------------------------------------------------- */

/* --request-id: the response carries the request's ID, unless the app set
 * that header itself: its value wins (it may pass on an ID of its own), and
 * a second field would leave the client to guess.  pairs: the app's
 * (name, value) headers, already checked to be bytes.  Out of line, so
 * that off it costs pn_request_start one test. */
__attribute__((noinline)) static int request_id_header(RequestObject *r, PyObject **pairs,
                                                       Py_ssize_t npairs)
{
    const char *name = r->worker->cfg->request_id_header;
    size_t len = strlen(name);
    for (Py_ssize_t i = 0; i < npairs; i++) {
        PyObject *n = PySequence_Fast_GET_ITEM(pairs[i], 0); /* borrowed from pairs[i] */
        if (pn_http_ieq(PyBytes_AS_STRING(n), (size_t)PyBytes_GET_SIZE(n), name, len))
            return 0;
    }
    /* Appended as it is: the name was checked at start-up, the ID when it
     * was chosen (pn_http1_resp_header's checks cost three times the rest). */
    char field[PN_REQUEST_ID_FIELD_MAX];
    size_t n =
        pn_request_id_field(field, name, len, r->stream->request_id, r->stream->request_id_len);
    if (pn_buf_append(&r->head, field, n) != 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* A head's buffer is kept for the worker's next response when it is no
 * larger than this; a larger one is freed. */
#define SPARE_HEAD_MAX 4096

/* The stream took r's head: its buffer becomes the worker's spare (when
 * there is none yet and it is small), else it is freed.  Called where the
 * head went out, on the worker's thread (pn_asgi.h, spare_head). */
static void head_done(RequestObject *r)
{
    pn_buf *spare = r->worker ? &r->worker->spare_head : NULL;
    if (spare && spare->data == NULL && r->head.data && r->head.cap <= SPARE_HEAD_MAX) {
        *spare = r->head;
        r->head = (pn_buf)PN_BUF_INIT;
    } else {
        pn_buf_free(&r->head);
    }
}

int pn_request_start(RequestObject *r, pn_msg *m)
{
    pn_modstate *st = worker_state(r->worker);
    PyObject *msg = m->msg;
    if (r->started) {
        runtime_error("Unexpected ASGI message 'http.response.start' sent, after response "
                      "already started.",
                      NULL);
        return -1;
    }
    PyObject *status_obj = NULL, *headers = NULL;
    int rc = pn_msg_get(st, m, PN_MSG_status, &status_obj);
    if (rc < 0)
        return -1;
    if (rc == 0 || !PyLong_Check(status_obj)) {
        Py_XDECREF(status_obj);
        runtime_error("'http.response.start' needs an integer 'status'", NULL);
        return -1;
    }
    long status = PyLong_AsLong(status_obj);
    Py_DECREF(status_obj);
    if (status == -1 && PyErr_Occurred())
        return -1;
    /* Whether the connection persists is the stream's to say, when the head
     * goes out (pn_stream.h). */
    unsigned flags = r->head_request ? PN_RESP_HEAD_REQUEST : 0;
    if (status < 200 || status > 599 ||
        pn_http1_resp_init(&r->resp, (int)status, r->version_minor, flags) != PN_WRITE_OK) {
        PyErr_Format(PyExc_RuntimeError,
                     "'http.response.start' status must be between 200 and 599, got %ld", status);
        return -1;
    }
    if (r->head.data == NULL && r->worker && r->worker->spare_head.data) {
        r->head = r->worker->spare_head; /* (head_done) */
        r->worker->spare_head = (pn_buf)PN_BUF_INIT;
    }
    pn_buf_clear(&r->head);
    if (pn_http1_resp_start(&r->head, &r->resp) != PN_WRITE_OK) {
        PyErr_NoMemory();
        return -1;
    }
    rc = pn_msg_get(st, m, PN_MSG_headers, &headers);
    if (rc < 0)
        return -1;
    /* The (name, value) pairs, held for two passes: the first decides on
     * compression (Content-Type may come after Content-Length), the second
     * validates and serialises. */
    PyObject *pairs_stack[32];
    PyObject **pairs = pairs_stack;
    Py_ssize_t npairs = 0, cap = 32;
    int ok = -1;
    if (rc == 1 && headers != Py_None) {
        pn_items it;
        int brc = pn_items_begin(&it, headers);
        Py_DECREF(headers);
        if (brc < 0)
            return -1;
        PyObject *item;
        while ((item = pn_items_next(&it)) != NULL) {
            PyObject *seq = PySequence_Fast(item, "each header must be a (name, value) pair");
            Py_DECREF(item);
            if (seq == NULL)
                break;
            if (PySequence_Fast_GET_SIZE(seq) != 2 ||
                !PyBytes_Check(PySequence_Fast_GET_ITEM(seq, 0)) ||
                !PyBytes_Check(PySequence_Fast_GET_ITEM(seq, 1))) {
                Py_DECREF(seq);
                runtime_error("each header must be a (name, value) pair of bytes", NULL);
                break;
            }
            if (npairs == cap) {
                PyObject **bigger = PyMem_Malloc(sizeof(PyObject *) * (size_t)cap * 2);
                if (bigger == NULL) {
                    Py_DECREF(seq);
                    PyErr_NoMemory();
                    break;
                }
                memcpy(bigger, pairs, sizeof(PyObject *) * (size_t)npairs);
                if (pairs != pairs_stack)
                    PyMem_Free(pairs);
                pairs = bigger;
                cap *= 2;
            }
            pairs[npairs++] = seq; /* owned */
        }
        pn_items_end(&it);
        if (PyErr_Occurred())
            goto done;
    } else {
        Py_XDECREF(headers);
    }
    /* "trailers": True (the http.response.trailers extension).  A dict
     * with no key beyond type, status and headers cannot hold it: most
     * responses skip the lookup. */
    PyObject *tr = NULL;
    int trc = 0;
    if (m->whole || !PyDict_CheckExact(msg) || PyDict_GET_SIZE(msg) > 2 + (rc == 1))
        trc = pn_msg_get(st, m, PN_MSG_trailers, &tr);
    if (trc < 0)
        goto done;
    int trailers_on = 0;
    if (trc == 1) {
        trailers_on = PyObject_IsTrue(tr);
        Py_DECREF(tr);
        if (trailers_on < 0)
            goto done;
    }
    r->trailers_asked = trailers_on != 0;
    pn_codec_decide(r, (int)status, pairs, npairs);
    for (Py_ssize_t i = 0; i < npairs; i++) {
        PyObject *name = PySequence_Fast_GET_ITEM(pairs[i], 0);  /* borrowed from pairs[i] */
        PyObject *value = PySequence_Fast_GET_ITEM(pairs[i], 1); /* borrowed from pairs[i] */
        const char *n = PyBytes_AS_STRING(name), *v = PyBytes_AS_STRING(value);
        size_t nl = (size_t)PyBytes_GET_SIZE(name), vl = (size_t)PyBytes_GET_SIZE(value);
        int wrc = r->codec != PN_CODEC_IDENTITY
                      ? pn_codec_header(r, n, nl, v, vl)
                      : pn_http1_resp_header(&r->head, &r->resp, n, nl, v, vl);
        if (wrc != PN_WRITE_OK) {
            if (wrc == PN_WRITE_BAD_HEADER)
                PyErr_Format(PyExc_RuntimeError,
                             "invalid response header %R: %R (names must be tokens; "
                             "values must not contain CR, LF, NUL or control characters)",
                             name, value);
            else if (wrc == PN_WRITE_BAD_LENGTH)
                PyErr_Format(PyExc_RuntimeError, "invalid or conflicting Content-Length %R", value);
            else
                PyErr_NoMemory();
            goto done;
        }
    }
    if (r->stream != NULL && r->stream->request_id_len && request_id_header(r, pairs, npairs) < 0)
        goto done;
    ok = 0;
done:
    for (Py_ssize_t i = 0; i < npairs; i++)
        Py_DECREF(pairs[i]);
    if (pairs != pairs_stack)
        PyMem_Free(pairs);
    if (ok < 0) {
        r->codec = PN_CODEC_IDENTITY;
        r->compress = 0;
        pn_buf_clear(&r->zbuf);
        return -1;
    }
    r->started = 1;
    return 0;
}

/* Send a body piece, after the head the first time.  Returns the stream's
 * PN_IO_OK/WAIT/GONE, or -2 with a Python exception set, or -3 with one
 * set when the response is complete but short of its Content-Length. */
static int request_write_body(RequestObject *r, const char *data, size_t len, int final)
{
    pn_stream *s = r->stream;
    if (!r->head_sent && r->compress && pn_codec_begin(r, len, !final) < 0) {
        PyErr_NoMemory();
        return -2;
    }
    if (r->enc != NULL) {
        if (pn_codec_piece(r, data, len, final) < 0) {
            s->ops->abort(s);
            runtime_error("response compression failed", NULL);
            return -2;
        }
        data = r->zbuf.data;
        len = r->zbuf.len;
    }
    /* With trailers to follow, the final piece does not end the response
     * (the encoder has finished all the same): send_trailers will. */
    int end = final && !(r->trailers_asked && r->trailers_offered);
    int rc = s->ops->send_body(s, &r->resp, r->head_sent ? NULL : &r->head, data, len, end,
                               &r->bytes_sent);
    if (rc == PN_IO_NOMEM) {
        PyErr_NoMemory();
        return -2;
    }
    if (rc == PN_IO_TOO_MUCH) {
        runtime_error("Response content longer than Content-Length", NULL);
        return -2;
    }
    if (!r->head_sent) {
        r->head_sent = 1;
        head_done(r);
    }
    if (rc == PN_IO_TOO_LITTLE) {
        runtime_error("Response content shorter than Content-Length", NULL);
        return -3;
    }
    return rc;
}

/* The record of r's access line, its slices in r->logline. */
void pn_request_log(RequestObject *r)
{
    const pn_config *cfg = r->worker->cfg;
    if (!(r->stream && cfg->access_log && cfg->log_level <= PN_LOG_INFO))
        return;
    const char *p = r->logline.data;
    pn_access_rec rec = {
        .method = p,
        .method_len = r->log_method_len,
        .target = p + r->log_method_len,
        .target_len = r->log_target_len,
        .status = r->resp.status,
        .bytes = r->bytes_sent,
        .duration_ns = now_ns() - r->t0_ns,
    };
    p += r->log_method_len + r->log_target_len;
    rec.client = p;
    rec.client_len = r->log_client_len;
    p += r->log_client_len;
    if (r->log_referer) {
        rec.referer = p;
        rec.referer_len = r->log_referer_len;
    }
    p += r->log_referer_len;
    if (r->log_ua) {
        rec.user_agent = p;
        rec.user_agent_len = r->log_ua_len;
    }
    r->stream->ops->access_log(r->stream, &rec);
}

/* The request cycle is over (complete, or the client went away): a pending
 * receive() gets http.disconnect, a pending send() returns. */
void pn_request_wake_waiters(RequestObject *r)
{
    pn_modstate *st = worker_state(r->worker);
    if (r->recv_future) {
        PyObject *m = make_disconnect(st);
        if (m) {
            pn_future_resolve(st, &r->recv_future, m);
            Py_DECREF(m);
        } else {
            PyErr_WriteUnraisable((PyObject *)r);
        }
    }
    pn_future_resolve(st, &r->send_future, Py_None);
}

void pn_request_drained(RequestObject *r)
{
    if (r->stream)
        r->stream->ops->stall_timer(r->stream, 0);
    pn_future_resolve(worker_state(r->worker), &r->send_future, Py_None);
}

/* The response is complete (or abandoned): hand the stream back to its
 * transport and drop the stream's reference to us. */
static void request_detach(RequestObject *r, int keep_alive)
{
    pn_stream *s = r->stream;
    pn_codec_end(r);
    if (s == NULL)
        return;
    r->stream = NULL;
    s->udata = NULL;
    s->ops->done(s, keep_alive);
    /* Anything still waiting learns that the cycle is over. */
    pn_request_wake_waiters(r);
    Py_DECREF(r); /* the stream's reference */
}

/* A whole server-made response (an error, a denial): write it, log it,
 * hand the stream back to close. */
void pn_request_reply(RequestObject *r, int status)
{
    pn_stream *s = r->stream;
    if (s == NULL)
        return;
    s->ops->reply(s, status);
    r->resp.status = status;
    r->bytes_sent = 0;
    r->started = r->head_sent = r->complete = 1;
    pn_request_log(r);
    request_detach(r, 0);
}

static void request_complete(RequestObject *r)
{
    r->complete = 1;
    pn_request_log(r);
    request_detach(r, !(r->resp.flags & PN_RESP_CLOSE));
}

PyObject *pn_request_wait_or_ready(RequestObject *r, int rc)
{
    pn_modstate *st = worker_state(r->worker);
    if (rc == PN_IO_WAIT && r->stream && !r->complete) {
        PyObject *fut = PyObject_CallNoArgs(r->worker->create_future);
        if (fut == NULL)
            return NULL;
        Py_XSETREF(r->send_future, Py_NewRef(fut));
        r->stream->ops->stall_timer(r->stream, 1);
        return fut;
    }
    return Py_NewRef(st->ready_none);
}

PyObject *pn_request_send_body(RequestObject *r, pn_msg *m)
{
    pn_modstate *st = worker_state(r->worker);
    if (!r->started)
        return runtime_error("Unexpected ASGI message 'http.response.body' sent, before "
                             "'http.response.start'.",
                             NULL);
    if (r->complete || r->body_ended)
        return runtime_error("Unexpected ASGI message 'http.response.body' sent, after "
                             "response already completed.",
                             NULL);
    PyObject *body = NULL, *more_obj = NULL;
    if (pn_msg_get(st, m, PN_MSG_body, &body) < 0)
        return NULL;
    int more = 0;
    int rc = pn_msg_get(st, m, PN_MSG_more_body, &more_obj);
    if (rc < 0) {
        Py_XDECREF(body);
        return NULL;
    }
    if (rc == 1) {
        more = PyObject_IsTrue(more_obj);
        Py_DECREF(more_obj);
        if (more < 0) {
            Py_XDECREF(body);
            return NULL;
        }
    }
    Py_buffer view = {0};
    int have_view = 0;
    if (body != NULL && body != Py_None) {
        if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0) {
            Py_DECREF(body);
            PyErr_SetString(PyExc_RuntimeError, "'http.response.body' body must be bytes");
            return NULL;
        }
        have_view = 1;
    }
    const char *data = have_view ? view.buf : "";
    size_t len = have_view ? (size_t)view.len : 0;
    PyObject *result = NULL;
    if (r->stream == NULL) {
        /* The client is gone: the app may finish its work; output is
         * discarded, as other servers do. */
        if (!more)
            r->complete = r->body_ended = 1;
        result = Py_NewRef(st->ready_none);
        goto done;
    }
    int wrc = request_write_body(r, data, len, !more);
    if (wrc == -2)
        goto done;
    if (!more)
        r->body_ended = 1; /* (with trailers to follow, the response goes on) */
    if (wrc == -3) {
        request_complete(r);
        goto done;
    }
    if (!more && !(r->trailers_asked && r->trailers_offered)) {
        request_complete(r);
        result = Py_NewRef(st->ready_none);
        goto done;
    }
    if (wrc == PN_IO_GONE) {
        result = Py_NewRef(st->ready_none);
        goto done;
    }
    result = pn_request_wait_or_ready(r, wrc);
done:
    if (have_view)
        PyBuffer_Release(&view);
    Py_XDECREF(body);
    return result;
}

/* Out of line: inlined into request_send, its frame cost every
 * http.response.start and .body a few instructions (callgrind). */
__attribute__((noinline)) static PyObject *request_send_pathsend(RequestObject *r, PyObject *msg)
{
    pn_modstate *st = worker_state(r->worker);
    if (!r->started)
        return runtime_error("Unexpected ASGI message 'http.response.pathsend' sent, before "
                             "'http.response.start'.",
                             NULL);
    if (r->complete || r->head_sent)
        return runtime_error("'http.response.pathsend' must be the only body of a response", NULL);
    PyObject *path = NULL;
    int rc = msg_get(msg, PN_ID(st, path), &path);
    if (rc <= 0) {
        if (rc == 0)
            runtime_error("'http.response.pathsend' needs a 'path'", NULL);
        return NULL;
    }
    PyObject *fspath = NULL;
    if (!PyUnicode_FSConverter(path, &fspath)) {
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    int fd;
    Py_BEGIN_ALLOW_THREADS
        fd = open(PyBytes_AS_STRING(fspath), O_RDONLY | O_CLOEXEC);
    Py_END_ALLOW_THREADS
    if (fd < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, fspath);
        Py_DECREF(fspath);
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        PyErr_Format(PyExc_RuntimeError, "'http.response.pathsend' path %R is not a regular file",
                     fspath);
        Py_DECREF(fspath);
        return NULL;
    }
    Py_DECREF(fspath);
    pn_stream *s = r->stream;
    if (s == NULL) {
        close(fd);
        r->complete = r->body_ended = 1;
        return Py_NewRef(st->ready_none);
    }
    /* A file goes out as it is on disk (docs/compression.md, "pathsend"):
     * never encoded, so its headers are the app's exactly — a strong ETag
     * that If-Range can match, its Content-Length — and no Vary. */
    if (r->codec != PN_CODEC_IDENTITY && pn_codec_as_is(r) < 0) {
        close(fd);
        return PyErr_NoMemory();
    }
    rc = s->ops->send_file(s, &r->resp, &r->head, fd, 0, (uint64_t)sb.st_size, &r->bytes_sent);
    if (rc == PN_IO_NOMEM)
        return PyErr_NoMemory();
    if (rc == PN_IO_TOO_MUCH || rc == PN_IO_TOO_LITTLE)
        return runtime_error("file size does not match the response's Content-Length", NULL);
    r->head_sent = 1;
    head_done(r);
    /* A file is the whole body and ends the response: trailers that
     * follow are dropped (docs/asgi.md, "Response trailers"). */
    r->body_ended = 1;
    request_complete(r);
    return Py_NewRef(st->ready_none);
}

/* Gather one message's fields into r->tbuf as "name: value\r\n" lines,
 * each checked as a response header is; the ones RFC 9110 §6.5.1 keeps out
 * of trailers (pn_http1_trailer_forbidden) are left out.  On error nothing
 * of this message stays. */
static int trailers_gather(RequestObject *r, PyObject *msg)
{
    pn_modstate *st = worker_state(r->worker);
    PyObject *headers = NULL;
    int rc = msg_get(msg, PN_ID(st, headers), &headers);
    if (rc <= 0)
        return rc;
    if (headers == Py_None) {
        Py_DECREF(headers);
        return 0;
    }
    PyObject *it = PyObject_GetIter(headers);
    Py_DECREF(headers);
    if (it == NULL)
        return -1;
    size_t mark = r->tbuf.len;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        PyObject *seq = PySequence_Fast(item, "each trailer must be a (name, value) pair");
        Py_DECREF(item);
        if (seq == NULL)
            break;
        PyObject *name = PySequence_Fast_GET_SIZE(seq) == 2 ? PySequence_Fast_GET_ITEM(seq, 0)
                                                            : NULL; /* borrowed from seq */
        PyObject *value = name ? PySequence_Fast_GET_ITEM(seq, 1) : NULL;
        if (name == NULL || !PyBytes_Check(name) || !PyBytes_Check(value)) {
            Py_DECREF(seq);
            runtime_error("each trailer must be a (name, value) pair of bytes", NULL);
            break;
        }
        const char *n = PyBytes_AS_STRING(name), *v = PyBytes_AS_STRING(value);
        size_t nl = (size_t)PyBytes_GET_SIZE(name), vl = (size_t)PyBytes_GET_SIZE(value);
        if (pn_http1_check_header(n, nl, v, vl) != PN_WRITE_OK) {
            PyErr_Format(PyExc_RuntimeError,
                         "invalid response trailer %R: %R (names must be tokens; "
                         "values must not contain CR, LF, NUL or control characters)",
                         name, value);
            Py_DECREF(seq);
            break;
        }
        if (!pn_http1_trailer_forbidden(n, nl) &&
            (pn_buf_append(&r->tbuf, n, nl) || pn_buf_append(&r->tbuf, PN_STRLIT(": ")) ||
             pn_buf_append(&r->tbuf, v, vl) || pn_buf_append(&r->tbuf, PN_STRLIT("\r\n")))) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            break;
        }
        Py_DECREF(seq);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        r->tbuf.len = mark;
        return -1;
    }
    return 0;
}

/* http.response.trailers: after the final body of a response whose start
 * said "trailers": True; the last one (more_trailers False) ends it.  Out
 * of line: only the apps that use trailers pay for it. */
__attribute__((noinline)) static PyObject *request_send_trailers(RequestObject *r, PyObject *msg)
{
    pn_modstate *st = worker_state(r->worker);
    if (!r->started)
        return runtime_error("Unexpected ASGI message 'http.response.trailers' sent, before "
                             "'http.response.start'.",
                             NULL);
    if (!r->trailers_asked)
        return runtime_error("Unexpected ASGI message 'http.response.trailers' sent, without "
                             "'trailers': True in 'http.response.start'.",
                             NULL);
    if (r->trailers_done)
        return runtime_error("Unexpected ASGI message 'http.response.trailers' sent, after "
                             "response already completed.",
                             NULL);
    if (!r->body_ended)
        return runtime_error("Unexpected ASGI message 'http.response.trailers' sent, before "
                             "the final 'http.response.body' (more_body False).",
                             NULL);
    if (trailers_gather(r, msg) < 0)
        return NULL;
    PyObject *more_obj = NULL;
    int more = 0;
    int rc = msg_get(msg, PN_ID(st, more_trailers), &more_obj);
    if (rc < 0)
        return NULL;
    if (rc == 1) {
        more = PyObject_IsTrue(more_obj);
        Py_DECREF(more_obj);
        if (more < 0)
            return NULL;
    }
    if (more)
        return Py_NewRef(st->ready_none);
    r->trailers_done = 1;
    pn_stream *s = r->stream;
    if (s == NULL || r->complete) {
        /* Not offered (the final body ended the response), or the client
         * is gone: the fields go nowhere. */
        pn_buf_free(&r->tbuf);
        return Py_NewRef(st->ready_none);
    }
    /* A response without content (HEAD, 204, 304) has no trailers either,
     * whatever the transport: RFC 9110 §9.3.2 lets a HEAD response omit the
     * fields known only while the content is made, and HTTP/1.1 has no
     * trailer section without a body. */
    size_t tlen = (r->resp.flags & PN_RESP_NO_BODY) ? 0 : r->tbuf.len;
    int wrc = s->ops->send_trailers(s, &r->resp, r->head_sent ? NULL : &r->head, r->tbuf.data, tlen,
                                    &r->bytes_sent);
    pn_buf_free(&r->tbuf);
    if (wrc == PN_IO_NOMEM)
        return PyErr_NoMemory();
    if (!r->head_sent) {
        r->head_sent = 1;
        head_done(r);
    }
    request_complete(r);
    if (wrc == PN_IO_TOO_LITTLE)
        return runtime_error("Response content shorter than Content-Length", NULL);
    return Py_NewRef(st->ready_none);
}

static PyObject *request_send(PyObject *op, PyObject *msg)
{
    RequestObject *r = (RequestObject *)op;
    pn_modstate *st = worker_state(r->worker);
    PyObject *type = NULL;
    pn_msg m;
    pn_msg_read(st, &m, msg);
    int rc = pn_msg_get(st, &m, PN_MSG_type, &type);
    if (rc <= 0) {
        pn_msg_release(&m);
        return rc < 0 ? NULL : runtime_error("ASGI message has no 'type'", NULL);
    }
    PyObject *result = NULL;
    if (!PyUnicode_Check(type)) {
        PyErr_Format(PyExc_RuntimeError, "ASGI message 'type' must be a str, got %R", type);
    } else if (msg_type_is(type, PN_ID(st, http_response_body))) {
        result = pn_request_send_body(r, &m);
    } else if (msg_type_is(type, PN_ID(st, http_response_start))) {
        if (pn_request_start(r, &m) == 0)
            result = Py_NewRef(st->ready_none);
    } else if (msg_type_is(type, PN_ID(st, http_response_pathsend))) {
        result = request_send_pathsend(r, msg);
    } else if (msg_type_is(type, PN_ID(st, http_response_trailers))) {
        result = request_send_trailers(r, msg);
    } else if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message type %R for an http scope", type);
    }
    Py_DECREF(type);
    pn_msg_release(&m);
    return result;
}

/* ---- the end of the run --------------------------------------------------- */

/* The app's coroutine ended (AppRun has accounted for it and reported exc). */
void pn_request_finish(RequestObject *r, PyObject *exc)
{
    WorkerObject *w = r->worker;
    if (r->stream != NULL && !r->complete) {
        if (!r->started) {
            /* Nothing was sent: the client gets a 500, and the stream
             * closes (the request body may be half-read). */
            /* (An app that saw http.disconnect may return without a word.) */
            if (exc == NULL && !r->disconnected)
                pn_report_error(w, "ASGI callable returned without sending a response", NULL);
            pn_request_reply(r, 500);
        } else {
            /* The response started but did not finish: the client must not
             * mistake a truncated body for a complete one. */
            if (exc == NULL)
                pn_report_error(w, "ASGI callable returned without completing the response", NULL);
            r->stream->ops->abort(r->stream);
            request_detach(r, 0);
        }
    }
}

/* ---- Request type --------------------------------------------------------- */

int pn_request_traverse(RequestObject *r, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(r));
    Py_VISIT(r->worker);
    Py_VISIT(r->task);
    Py_VISIT(r->recv_future);
    Py_VISIT(r->send_future);
    return 0;
}

int pn_request_clear(RequestObject *r)
{
    Py_CLEAR(r->task);
    Py_CLEAR(r->recv_future);
    Py_CLEAR(r->send_future);
    Py_CLEAR(r->worker);
    return 0;
}

void pn_request_release(RequestObject *r)
{
    pn_codec_end(r);
    if (r->dec)
        pn_decoder_free(r->dec);
    pn_buf_free(&r->dbuf);
    pn_buf_free(&r->tbuf);
    pn_buf_free(&r->head);
    pn_buf_free(&r->logline);
}

static void request_dealloc(RequestObject *r)
{
    PyTypeObject *tp = Py_TYPE(r);
    PyObject_GC_UnTrack(r);
    pn_request_clear(r);
    pn_request_release(r);
    tp->tp_free((PyObject *)r);
    Py_DECREF(tp);
}

/* The app's send(message): a call of the Request itself (pn_asgi.h). */
static PyObject *request_send_call(PyObject *op, PyObject *const *args, size_t nargsf,
                                   PyObject *kwnames)
{
    PyObject *msg = pn_send_arg(args, nargsf, kwnames);
    return msg ? request_send(op, msg) : NULL;
}

/* The receive handed to the app is built from this directly (cheaper than
 * an attribute lookup that creates a bound method). */
static PyMethodDef request_receive_def = {"receive", request_receive, METH_NOARGS,
                                          "ASGI receive()"};

static const pn_request_kind http_kind = {
    .receive = &request_receive_def,
    .send = request_send_call,
    .finish = pn_request_finish,
    .closed = pn_request_wake_waiters,
};

static PyMethodDef request_methods[] = {
    {"receive", request_receive, METH_NOARGS, "ASGI receive()"},
    {"send", request_send, METH_O, "ASGI send(message)"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef request_members[] = {
    {"__vectorcalloffset__", PN_T_PYSSIZET, offsetof(RequestObject, send_call), PN_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot request_slots[] = {
    {Py_tp_dealloc, request_dealloc},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, request_members},
    {Py_tp_traverse, pn_request_traverse},
    {Py_tp_clear, pn_request_clear},
    {Py_tp_methods, request_methods},
    {Py_tp_doc, "One HTTP request cycle: owns receive() and send(); calling it is send()."},
    {0, NULL},
};

PyType_Spec pn_request_spec = {
    .name = "pounce._pounce.Request",
    .basicsize = sizeof(RequestObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = request_slots,
};

/* ---- creation ---------------------------------------------------------------- */

RequestObject *pn_request_new(WorkerObject *w, PyTypeObject *type, const pn_request_kind *kind,
                              pn_stream *s, const pn_http1_request *req, const pn_fwd_result *fwd)
{
    RequestObject *r = PyObject_GC_New(RequestObject, type);
    if (r == NULL)
        return NULL;
    /* (The request part only: a constant size the compiler writes inline;
     * a WebSocket session clears the rest itself.) */
    memset((char *)r + sizeof(PyObject), 0, sizeof(RequestObject) - sizeof(PyObject));
    r->send_call = kind->send;
    r->kind = kind;
    r->worker = (WorkerObject *)Py_NewRef(w);
    r->stream = s;
    r->version_minor = req->version_minor;
    r->head_request = (req->flags & PN_REQ_HEAD) != 0;
    r->resp.status = 0;
    /* Negotiate now, while the header slices are valid. */
    r->codec = r->head_request ? PN_CODEC_IDENTITY : pn_codec_negotiate(w, req);
    r->t0_ns = 0;
    if (w->cfg->access_log && w->cfg->log_level <= PN_LOG_INFO) {
        r->t0_ns = now_ns();
        r->log_method_len = req->method_len;
        r->log_target_len = req->target_len;
        pn_buf_append(&r->logline, req->method, req->method_len);
        pn_buf_append(&r->logline, req->target, req->target_len);
        if (fwd) {
            char client[PN_FWD_CLIENT_TEXT];
            r->log_client_len = pn_fwd_client_text(fwd, client);
            pn_buf_append(&r->logline, client, r->log_client_len);
        }
        if (w->cfg->access_log_format == PN_LOG_FMT_COMBINED ||
            w->cfg->access_log_format == PN_LOG_FMT_JSON) {
            /* Only the formats that show them pay for the header scan. */
            pn_access_rec hdrs = {.referer = NULL};
            pn_access_rec_headers(&hdrs, req);
            r->log_referer = hdrs.referer != NULL;
            r->log_referer_len = hdrs.referer_len;
            pn_buf_append(&r->logline, hdrs.referer, hdrs.referer_len);
            r->log_ua = hdrs.user_agent != NULL;
            r->log_ua_len = hdrs.user_agent_len;
            pn_buf_append(&r->logline, hdrs.user_agent, hdrs.user_agent_len);
        }
    }
    if (w->metrics)
        pn_metrics_request_new(w, r, req->method, req->method_len);
    r->dec = w->cfg->decompress_requests ? pn_codec_request_decoder(w, req) : NULL;
    return r;
}

int pn_request_dispatch(WorkerObject *w, pn_stream *s, const pn_http1_request *req)
{
    pn_fwd_result fwdbuf;
    const pn_fwd_result *fwd = pn_scope_forwarded(w, s, req, &fwdbuf);
    RequestObject *r = pn_request_new(w, worker_state(w)->request_type, &http_kind, s, req, fwd);
    if (r == NULL) {
        PyErr_WriteUnraisable((PyObject *)w);
        return -1;
    }
    r->trailers_offered = s->trailers; /* what the scope offers */
    PyObject_GC_Track(r);
    return pn_apprun_start(r, pn_scope_http(w, s, req, r->dec != NULL, fwd));
}
