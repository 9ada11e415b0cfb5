/*
 * pn_websocket.c — the WebSocket session: one ASGI `websocket` cycle on an
 * HTTP/1.1 connection that it takes over once the app accepts (RFC 6455).
 * The protocol work is in the core (pn_ws.c framing, pn_ws_handshake.c,
 * pn_ws_deflate.c, pn_utf8.c); this file turns it into the ASGI
 * `websocket` messages and keeps the session's state.
 *
 * A session is its own object type, WebSocketObject.  It begins with the
 * request part every cycle has (RequestObject, pn_http.c): the upgrade
 * request, its access-log line, and the HTTP response machinery that
 * answers a handshake the app denies (websocket.http.response.*, or a
 * plain 403/500).  Everything after the handshake is here.
 *
 * WebSocket stays HTTP/1.1-specific: the session takes the connection over
 * (pn_http1_stream_conn) and uses the connection API of pn_worker.h, where
 * an HTTP request has only its stream.
 *
 * Owns: the session's parser, deflate context, buffers and receive queue.
 * While the session is attached, its connection's stream holds a strong
 * reference to it (stream->udata), as for an HTTP request.  Threads: the
 * worker's thread only (pn_asgi.h).
 *
 * Life of a session:
 *   CONNECTING    the upgrade request was valid; the app's Task runs
 *   CONNECT_SENT  receive() returned websocket.connect
 *   OPEN          the app sent websocket.accept: 101 out, the connection is
 *                 in PN_CONN_WS and frames flow both ways
 *   CLOSING       we sent a close frame; waiting for the peer's (5 s)
 *   CLOSED        close handshake done, or the connection failed/dropped
 *   RESPONSE      the app denied the handshake with websocket.http.response.*
 *                 (an ordinary HTTP response from then on: receive(), the
 *                 end of the run and a disconnect are the request's)
 */
#include "pn_access_log.h"
#include "pn_asgi.h"
#include "pn_log.h"
#include "pn_worker.h"
#include "pn_utf8.h"
#include "pn_ws.h"
#include "pn_ws_deflate.h"
#include "pn_ws_handshake.h"

enum { WS_CONNECTING, WS_CONNECT_SENT, WS_OPEN, WS_CLOSING, WS_CLOSED, WS_RESPONSE };

#define WS_QUEUE_MAX 16                  /* received messages held before we stop reading */
#define WS_QUEUE_BYTES ((size_t)1 << 20) /* ... or payload bytes held */
#define WS_READ_LIMIT (256 * 1024)       /* bytes buffered ahead of the parser */
#define WS_CLOSE_WAIT_MS 5000            /* for the peer's close frame, after ours */
#define WS_BUF_KEEP 65536                /* a message buffer keeps at most this between messages */

typedef struct {
    RequestObject http; /* the upgrade request; answers a denied handshake */
    int state;          /* WS_* */
    pn_ws_handshake hs;
    pn_ws_parser parser;
    pn_ws_deflate deflate;
    pn_buf msg;             /* a fragmented or compressed message being assembled */
    pn_buf out;             /* compressed payload of the message being sent */
    PyObject *queue;        /* strong: list of messages for receive() */
    Py_ssize_t qhead;       /* next index in queue */
    size_t queued_bytes;    /* payload bytes of the messages in queue */
    int peer_code;          /* the peer's close code (1005 if none, 1006 if it vanished) */
    PyObject *peer_reason;  /* strong, str, or NULL */
    unsigned got_close : 1; /* the peer's close frame arrived */
    unsigned sent_close : 1;
    unsigned ping_out : 1; /* a ping is waiting for its pong */
    unsigned gone : 1;     /* websocket.disconnect was queued */
} WebSocketObject;

static const pn_request_kind ws_kind;

static pn_modstate *ws_state(WebSocketObject *ws)
{
    return worker_state(ws->http.worker);
}

/* The connection the session runs on, NULL once it is released or gone.
 * Only HTTP/1.1 streams ever carry a session (pn_ws_dispatch). */
static pn_conn *ws_conn(WebSocketObject *ws)
{
    return ws->http.stream ? pn_http1_stream_conn(ws->http.stream) : NULL;
}

/* ---- messages to the app -------------------------------------------------- */

/* Hand a message (stolen) to receive(): a waiting future gets it at once,
 * otherwise it is queued; size is its payload, for the queue's limit.  A
 * NULL message (it could not be built) is reported, not delivered. */
static void ws_deliver(WebSocketObject *ws, PyObject *msg, size_t size)
{
    RequestObject *r = &ws->http;
    pn_modstate *st = ws_state(ws);
    if (msg == NULL) {
        PyErr_WriteUnraisable((PyObject *)ws);
        return;
    }
    if (r->recv_future != NULL && PyList_GET_SIZE(ws->queue) == ws->qhead) {
        PyObject *done = PyObject_CallMethodNoArgs(r->recv_future, PN_ID(st, done));
        int is_done = done == Py_True;
        Py_XDECREF(done);
        if (done != NULL && !is_done) {
            pn_future_resolve(st, &r->recv_future, msg);
            Py_DECREF(msg);
            return;
        }
        PyErr_Clear();
        Py_CLEAR(r->recv_future);
    }
    if (PyList_Append(ws->queue, msg) < 0)
        PyErr_WriteUnraisable((PyObject *)ws);
    else
        ws->queued_bytes += size;
    Py_DECREF(msg);
}

/* Size of a received message dict's payload, for the queue accounting. */
static size_t ws_msg_size(pn_modstate *st, PyObject *m)
{
    PyObject *v = NULL;
    size_t n = 0;
    if (PyDict_Check(m)) {
        if (dict_get_ref(m, PN_ID(st, bytes), &v) == 1 && PyBytes_Check(v))
            n = (size_t)PyBytes_GET_SIZE(v);
        Py_XDECREF(v);
        v = NULL;
        if (dict_get_ref(m, PN_ID(st, text), &v) == 1 && PyUnicode_Check(v))
            n += (size_t)PyUnicode_GET_LENGTH(v);
        Py_XDECREF(v);
        PyErr_Clear();
    }
    return n;
}

/* {"type": "websocket.receive", "text" or "bytes": payload} */
static PyObject *ws_message_object(pn_modstate *st, int opcode, const char *p, size_t n)
{
    int text = opcode == PN_WS_TEXT;
    PyObject *v = text ? PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "strict")
                       : PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
    if (v == NULL)
        return NULL;
    PyObject *m = msg_new(st, PN_ID(st, websocket_receive),
                          text ? PN_ID(st, text) : PN_ID(st, bytes), v, NULL, NULL);
    Py_DECREF(v);
    return m;
}

/* {"type": "websocket.disconnect", "code": code, "reason": ...} */
static PyObject *ws_disconnect_object(WebSocketObject *ws, int code)
{
    pn_modstate *st = ws_state(ws);
    PyObject *co = PyLong_FromLong(code);
    if (co == NULL)
        return NULL;
    PyObject *m = msg_new(st, PN_ID(st, websocket_disconnect), PN_ID(st, code), co,
                          PN_ID(st, reason), ws->peer_reason ? ws->peer_reason : PN_ID(st, empty));
    Py_DECREF(co);
    return m;
}

static void ws_deliver_disconnect(WebSocketObject *ws, int code)
{
    if (ws->gone)
        return;
    ws->gone = 1;
    ws_deliver(ws, ws_disconnect_object(ws, code), 0);
}

/* ---- frames to the peer ---------------------------------------------------- */

/* Write one frame: header + payload, without copying the payload. */
static int ws_write_frame(WebSocketObject *ws, int opcode, int rsv1, const char *p, size_t n)
{
    uint8_t hdr[PN_WS_MAX_HEADER];
    size_t hl = pn_ws_frame_header(hdr, opcode, 1, rsv1, n);
    struct iovec iov[2] = {{hdr, hl}, {(void *)p, n}};
    return pn_conn_write(ws_conn(ws), iov, n ? 2 : 1);
}

static void ws_write_control(WebSocketObject *ws, int opcode, const void *p, size_t n)
{
    uint8_t frame[PN_WS_MAX_CONTROL_FRAME];
    size_t fl = pn_ws_control_frame(frame, opcode, p, n);
    if (fl) {
        struct iovec iov = {frame, fl};
        pn_conn_write(ws_conn(ws), &iov, 1);
    }
}

static void ws_send_close(WebSocketObject *ws, int code, const char *reason, size_t rlen)
{
    if (ws->sent_close || ws->http.stream == NULL)
        return;
    ws->sent_close = 1;
    uint8_t frame[PN_WS_MAX_CONTROL_FRAME];
    size_t fl = code == PN_WS_CLOSE_NO_STATUS ? pn_ws_control_frame(frame, PN_WS_CLOSE, NULL, 0)
                                              : pn_ws_close_frame(frame, code, reason, rlen);
    if (fl == 0)
        fl = pn_ws_close_frame(frame, PN_WS_CLOSE_NORMAL, NULL, 0);
    struct iovec iov = {frame, fl};
    pn_conn_write(ws_conn(ws), &iov, 1);
}

/* The connection is done with (close handshake complete or failed): close
 * it after the output drains, and drop the connection's reference. */
static void ws_release_conn(WebSocketObject *ws)
{
    RequestObject *r = &ws->http;
    pn_conn *c = ws_conn(ws);
    if (c == NULL)
        return;
    r->stream = NULL;
    ws->state = WS_CLOSED;
    pn_future_resolve(ws_state(ws), &r->send_future, Py_None);
    pn_conn_finish(c);
    Py_DECREF(ws); /* the connection's reference */
}

/* _Fail the WebSocket Connection_ (RFC 6455 §7.1.7) with a close code. */
static void ws_fail(WebSocketObject *ws, int code)
{
    ws_send_close(ws, code, NULL, 0);
    ws_deliver_disconnect(ws, PN_WS_CLOSE_ABNORMAL);
    ws_release_conn(ws);
}

/* ---- input ------------------------------------------------------------------ */

/* A complete message assembled in ws->msg: deliver it, and make the buffer
 * small again for the next one. */
static void ws_deliver_assembled(WebSocketObject *ws, int opcode)
{
    const char *p = ws->msg.data ? ws->msg.data : "";
    PN_METRICS_IF(ws->http.worker->metrics,
                  pn_metrics_add(&ws->http.worker->metrics->ws_msgs_in, 1));
    ws_deliver(ws, ws_message_object(ws_state(ws), opcode, p, ws->msg.len), ws->msg.len);
    pn_buf_clear(&ws->msg);
    pn_buf_shrink(&ws->msg, WS_BUF_KEEP);
}

/* Parse what the connection has buffered, deliver complete messages, answer
 * pings and the close handshake.  Stops when the app has WS_QUEUE_MAX
 * messages or WS_QUEUE_BYTES waiting (the runtime then stops reading: TCP
 * backpressure).  The check is made before each message is parsed, so one
 * message of any size (up to --ws-max-size) always gets through. */
static void ws_pump(WebSocketObject *ws)
{
    RequestObject *r = &ws->http;
    const pn_config *cfg = r->worker->cfg;
    while (r->stream != NULL && ws->state >= WS_OPEN && ws->state <= WS_CLOSING) {
        if (PyList_GET_SIZE(ws->queue) - ws->qhead >= WS_QUEUE_MAX ||
            ws->queued_bytes >= WS_QUEUE_BYTES)
            return;
        pn_conn *c = ws_conn(ws);
        size_t used = 0;
        pn_ws_event ev;
        int rc = pn_ws_parse(&ws->parser, pn_buf_head(&c->rbuf), pn_buf_live(&c->rbuf), &used, &ev);
        if (rc == PN_WS_ERROR) {
            pn_buf_consume(&c->rbuf, used);
            ws_fail(ws, ws->parser.close_code);
            return;
        }
        if (rc == PN_WS_DATA) {
            if (ev.compressed) {
                int drc = pn_ws_inflate(&ws->deflate, ev.data, ev.len, ev.fin, &ws->msg,
                                        (uint64_t)cfg->ws_max_size);
                if (drc != PN_WS_DEFLATE_OK) {
                    pn_buf_consume(&c->rbuf, used);
                    ws_fail(ws, drc == PN_WS_DEFLATE_TOO_BIG ? PN_WS_CLOSE_TOO_BIG
                                : drc == PN_WS_DEFLATE_NOMEM ? PN_WS_CLOSE_INTERNAL
                                                             : PN_WS_CLOSE_PROTOCOL);
                    return;
                }
                if (ev.fin) {
                    if (ev.opcode == PN_WS_TEXT &&
                        pn_utf8_valid(ws->msg.data ? ws->msg.data : "", ws->msg.len) != 0) {
                        pn_buf_consume(&c->rbuf, used);
                        ws_fail(ws, PN_WS_CLOSE_INVALID_DATA);
                        return;
                    }
                    ws_deliver_assembled(ws, ev.opcode);
                }
            } else if (ev.first && ev.fin) {
                /* The whole message in one piece: straight from the buffer. */
                PN_METRICS_IF(ws->http.worker->metrics,
                              pn_metrics_add(&ws->http.worker->metrics->ws_msgs_in, 1));
                ws_deliver(ws, ws_message_object(ws_state(ws), ev.opcode, ev.data, ev.len), ev.len);
            } else {
                if (pn_buf_append(&ws->msg, ev.data, ev.len) < 0) {
                    pn_buf_consume(&c->rbuf, used);
                    ws_fail(ws, PN_WS_CLOSE_INTERNAL);
                    return;
                }
                if (ev.fin)
                    ws_deliver_assembled(ws, ev.opcode);
            }
            pn_buf_consume(&c->rbuf, used);
            continue;
        }
        if (rc == PN_WS_CONTROL) {
            if (ev.opcode == PN_WS_PING) {
                ws_write_control(ws, PN_WS_PONG, ev.data, ev.len);
            } else if (ev.opcode == PN_WS_PONG) {
                if (ws->ping_out && cfg->ws_ping_interval > 0) {
                    ws->ping_out = 0;
                    pn_conn_set_timer(c, (uint64_t)(cfg->ws_ping_interval * 1000));
                }
            } else { /* PN_WS_CLOSE */
                ws->got_close = 1;
                ws->peer_code = ev.close_code;
                Py_XSETREF(ws->peer_reason,
                           PyUnicode_DecodeUTF8(ev.reason ? ev.reason : "",
                                                (Py_ssize_t)ev.reason_len, "replace"));
                if (ws->peer_reason == NULL)
                    PyErr_Clear();
                pn_buf_consume(&c->rbuf, used);
                /* Echo the code (§5.5.1), report it, close TCP first (§7.1.1). */
                ws_send_close(ws, ev.close_code, NULL, 0);
                ws_deliver_disconnect(ws, ev.close_code);
                ws_release_conn(ws);
                return;
            }
            pn_buf_consume(&c->rbuf, used);
            continue;
        }
        pn_buf_consume(&c->rbuf, used);
        return; /* PN_WS_INCOMPLETE */
    }
}

void pn_ws_on_event(pn_conn *c, int event)
{
    RequestObject *r = c->stream.udata;
    if (r == NULL || r->kind != &ws_kind)
        return;
    WebSocketObject *ws = (WebSocketObject *)r;
    const pn_config *cfg = r->worker->cfg;
    Py_INCREF(ws);
    if (event == PN_WS_EV_READABLE) {
        ws_pump(ws);
    } else if (event == PN_WS_EV_GOING_AWAY) {
        if (ws->state == WS_OPEN) {
            ws_send_close(ws, PN_WS_CLOSE_GOING_AWAY, PN_STRLIT("server shutting down"));
            ws->state = WS_CLOSING;
            pn_conn_set_timer(c, WS_CLOSE_WAIT_MS);
        }
    } else if (event == PN_WS_EV_TIMER) {
        if (ws->state == WS_CLOSING) {
            /* No close frame came back in time. */
            ws_deliver_disconnect(ws, PN_WS_CLOSE_ABNORMAL);
            ws_release_conn(ws);
        } else if (ws->state == WS_OPEN && cfg->ws_ping_interval > 0) {
            if (ws->ping_out) {
                /* No pong within --ws-ping-timeout: the peer is gone. */
                ws_send_close(ws, PN_WS_CLOSE_INTERNAL, PN_STRLIT("keepalive ping timeout"));
                ws_deliver_disconnect(ws, PN_WS_CLOSE_ABNORMAL);
                ws_release_conn(ws);
            } else {
                ws_write_control(ws, PN_WS_PING, PN_STRLIT("pounce"));
                ws->ping_out = 1;
                double t = cfg->ws_ping_timeout > 0 ? cfg->ws_ping_timeout : cfg->ws_ping_interval;
                pn_conn_set_timer(c, (uint64_t)(t * 1000));
            }
        }
    }
    Py_DECREF(ws);
}

/* The connection is gone (runtime on_close): the app learns it. */
static void ws_closed(RequestObject *r)
{
    WebSocketObject *ws = (WebSocketObject *)r;
    if (ws->state == WS_RESPONSE) {
        pn_request_wake_waiters(r);
        return;
    }
    if (ws->state != WS_CONNECTING && ws->state != WS_CONNECT_SENT)
        ws->state = WS_CLOSED;
    ws_deliver_disconnect(ws, ws->got_close ? ws->peer_code : PN_WS_CLOSE_ABNORMAL);
    pn_future_resolve(ws_state(ws), &r->send_future, Py_None);
}

/* ---- receive -------------------------------------------------------------- */

static PyObject *ws_receive(WebSocketObject *ws)
{
    RequestObject *r = &ws->http;
    pn_modstate *st = ws_state(ws);
    if (ws->state == WS_CONNECTING) {
        ws->state = WS_CONNECT_SENT;
        PyObject *m = msg_new(st, PN_ID(st, websocket_connect), NULL, NULL, NULL, NULL);
        return m ? pn_ready_new(st, m) : NULL;
    }
    if (ws->qhead < PyList_GET_SIZE(ws->queue)) {
        PyObject *m = Py_NewRef(PyList_GET_ITEM(ws->queue, ws->qhead)); /* borrowed: our list */
        ws->qhead++;
        size_t sz = ws_msg_size(st, m);
        ws->queued_bytes = sz > ws->queued_bytes ? 0 : ws->queued_bytes - sz;
        if (ws->qhead == PyList_GET_SIZE(ws->queue)) {
            ws->queued_bytes = 0; /* (text is counted in code points on the way out) */
            if (PyList_SetSlice(ws->queue, 0, PY_SSIZE_T_MAX, NULL) < 0) {
                Py_DECREF(m);
                return NULL;
            }
            ws->qhead = 0;
        }
        /* Room again: parse what the runtime held back. */
        pn_conn *c = ws_conn(ws);
        if (c && ws->state >= WS_OPEN && pn_buf_live(&c->rbuf) > 0)
            pn_conn_ws_resume(c);
        return pn_ready_new(st, m);
    }
    if (ws->gone || r->stream == NULL) {
        /* Closed (and the queued disconnect already taken): keep saying so. */
        ws->gone = 1;
        PyObject *m =
            ws_disconnect_object(ws, ws->got_close ? ws->peer_code : PN_WS_CLOSE_ABNORMAL);
        return m ? pn_ready_new(st, m) : NULL;
    }
    PyObject *fut = PyObject_CallNoArgs(r->worker->create_future);
    if (fut == NULL)
        return NULL;
    Py_XSETREF(r->recv_future, Py_NewRef(fut));
    return fut;
}

static PyObject *ws_receive_method(PyObject *op, PyObject *unused)
{
    (void)unused;
    WebSocketObject *ws = (WebSocketObject *)op;
    if (ws->state == WS_RESPONSE)
        return pn_request_receive(&ws->http);
    if (pn_request_forget_receive(&ws->http) < 0)
        return NULL;
    return ws_receive(ws);
}

/* ---- send ----------------------------------------------------------------- */

/* An optional str field of a message (None or missing: *p stays as it is)
 * as UTF-8.  0, or -1 with an exception (RuntimeError "what" when it is not
 * a str). */
static int optional_utf8(PyObject *v, const char *what, const char **p, Py_ssize_t *n)
{
    if (v == NULL || v == Py_None)
        return 0;
    if (!PyUnicode_Check(v)) {
        runtime_error(what, NULL);
        return -1;
    }
    *p = PyUnicode_AsUTF8AndSize(v, n);
    return *p == NULL ? -1 : 0;
}

static PyObject *ws_closed_error(void)
{
    PyErr_SetString(PyExc_OSError,
                    "the WebSocket is closed (the client disconnected or a close was sent)");
    return NULL;
}

static int ws_accept(WebSocketObject *ws, PyObject *msg)
{
    RequestObject *r = &ws->http;
    pn_modstate *st = ws_state(ws);
    pn_conn *c = ws_conn(ws);
    PyObject *sub = NULL, *headers = NULL;
    const char *subp = NULL;
    Py_ssize_t sublen = 0;
    int ok = -1;
    pn_buf out = PN_BUF_INIT;
    int rc = msg_get(msg, PN_ID(st, subprotocol), &sub);
    if (rc < 0)
        return -1;
    rc = optional_utf8(sub, "'websocket.accept' subprotocol must be a str or None", &subp, &sublen);
    if (rc < 0)
        goto done;
    if (pn_ws_handshake_write_101(&out, &ws->hs, subp, (size_t)sublen) != 0) {
        runtime_error("'websocket.accept' subprotocol must be a token", NULL);
        goto done;
    }
    /* --request-id: as for an HTTP response (pn_request_start). */
    const char *rid = NULL;
    size_t rid_len = 0;
    if (r->stream != NULL && r->stream->request_id_len) {
        rid = r->worker->cfg->request_id_header;
        rid_len = strlen(rid);
    }
    rc = msg_get(msg, PN_ID(st, headers), &headers);
    if (rc < 0)
        goto done;
    if (rc == 1 && headers != Py_None) {
        PyObject *it = PyObject_GetIter(headers);
        if (it == NULL)
            goto done;
        PyObject *item;
        while ((item = PyIter_Next(it)) != NULL) {
            PyObject *seq = PySequence_Fast(item, "each header must be a (name, value) pair");
            Py_DECREF(item);
            if (seq == NULL || PySequence_Fast_GET_SIZE(seq) != 2 ||
                !PyBytes_Check(PySequence_Fast_GET_ITEM(seq, 0)) ||
                !PyBytes_Check(PySequence_Fast_GET_ITEM(seq, 1))) {
                Py_XDECREF(seq);
                Py_DECREF(it);
                if (!PyErr_Occurred())
                    runtime_error("each header must be a (name, value) pair of bytes", NULL);
                goto done;
            }
            PyObject *n = PySequence_Fast_GET_ITEM(seq, 0); /* borrowed from seq */
            PyObject *v = PySequence_Fast_GET_ITEM(seq, 1); /* borrowed from seq */
            if (pn_http1_check_header(PyBytes_AS_STRING(n), (size_t)PyBytes_GET_SIZE(n),
                                      PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v)) != 0) {
                PyErr_Format(PyExc_RuntimeError, "invalid response header %R: %R", n, v);
                Py_DECREF(seq);
                Py_DECREF(it);
                goto done;
            }
            if (rid != NULL &&
                pn_http_ieq(PyBytes_AS_STRING(n), (size_t)PyBytes_GET_SIZE(n), rid, rid_len))
                rid = NULL;
            pn_buf_append(&out, PyBytes_AS_STRING(n), (size_t)PyBytes_GET_SIZE(n));
            pn_buf_append(&out, PN_STRLIT(": "));
            pn_buf_append(&out, PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v));
            pn_buf_append(&out, PN_STRLIT("\r\n"));
            Py_DECREF(seq);
        }
        Py_DECREF(it);
        if (PyErr_Occurred())
            goto done;
    }
    if (rid != NULL) {
        char field[PN_REQUEST_ID_FIELD_MAX];
        pn_buf_append(&out, field,
                      pn_request_id_field(field, rid, rid_len, r->stream->request_id,
                                          r->stream->request_id_len));
    }
    if (pn_buf_append(&out, PN_STRLIT("\r\n")) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if (c != NULL) {
        struct iovec iov = {out.data, out.len};
        pn_conn_write(c, &iov, 1);
        r->started = r->head_sent = 1;
        r->resp.status = 101;
        pn_request_log(r);
        const pn_config *cfg = r->worker->cfg;
        unsigned flags = PN_WS_SERVER | (ws->hs.deflate.enabled ? PN_WS_DEFLATE : 0);
        pn_ws_parser_init(&ws->parser, flags, (uint64_t)cfg->ws_max_size);
        if (ws->hs.deflate.enabled)
            pn_ws_deflate_init(&ws->deflate, &ws->hs.deflate, (int)cfg->ws_deflate_level,
                               PN_WS_DEFLATE_MEM_LEVEL);
        ws->state = WS_OPEN;
        PN_METRICS_IF(r->worker->metrics, {
            r->m_ws_open = 1;
            pn_metrics_add(&r->worker->metrics->ws_opened, 1);
        });
        pn_conn_upgrade(c, WS_READ_LIMIT);
        if (cfg->ws_ping_interval > 0)
            pn_conn_set_timer(c, (uint64_t)(cfg->ws_ping_interval * 1000));
    } else {
        ws->state = WS_CLOSED;
    }
    ok = 0;
done:
    Py_XDECREF(sub);
    Py_XDECREF(headers);
    pn_buf_free(&out);
    return ok;
}

/* Deny the handshake with a plain 403 (close before accept, or an app that
 * returned without accepting) or 500 (it raised). */
static void ws_deny(WebSocketObject *ws, int status)
{
    ws->state = WS_CLOSED;
    pn_request_reply(&ws->http, status);
}

static PyObject *ws_send_message(WebSocketObject *ws, PyObject *msg)
{
    RequestObject *r = &ws->http;
    pn_modstate *st = ws_state(ws);
    if (ws->state != WS_OPEN || r->stream == NULL) {
        if (ws->state < WS_OPEN)
            return runtime_error("'websocket.send' before 'websocket.accept'", NULL);
        return ws_closed_error();
    }
    PyObject *b = NULL, *t = NULL;
    if (msg_get(msg, PN_ID(st, bytes), &b) < 0 || msg_get(msg, PN_ID(st, text), &t) < 0) {
        Py_XDECREF(b);
        Py_XDECREF(t);
        return NULL;
    }
    if (b == Py_None)
        Py_CLEAR(b);
    if (t == Py_None)
        Py_CLEAR(t);
    PyObject *result = NULL;
    const char *p = NULL;
    Py_ssize_t n = 0;
    int opcode;
    Py_buffer view = {0};
    int have_view = 0;
    if ((b == NULL) == (t == NULL)) {
        runtime_error("'websocket.send' needs exactly one of 'bytes' and 'text'", NULL);
        goto done;
    }
    if (t != NULL) {
        if (!PyUnicode_Check(t)) {
            runtime_error("'websocket.send' text must be a str", NULL);
            goto done;
        }
        p = PyUnicode_AsUTF8AndSize(t, &n);
        if (p == NULL)
            goto done;
        opcode = PN_WS_TEXT;
    } else {
        if (PyObject_GetBuffer(b, &view, PyBUF_SIMPLE) < 0)
            goto done;
        have_view = 1;
        p = view.buf;
        n = view.len;
        opcode = PN_WS_BINARY;
    }
    int wrc;
    if (ws->hs.deflate.enabled) {
        pn_buf_clear(&ws->out);
        int drc;
        if (r->worker->release_gil && n >= PN_GIL_RELEASE_MIN) {
            Py_BEGIN_ALLOW_THREADS
                drc = pn_ws_deflate_message(&ws->deflate, p, (size_t)n, &ws->out);
            Py_END_ALLOW_THREADS
        } else {
            drc = pn_ws_deflate_message(&ws->deflate, p, (size_t)n, &ws->out);
        }
        if (drc != PN_WS_DEFLATE_OK) {
            PyErr_NoMemory();
            goto done;
        }
        wrc = ws_write_frame(ws, opcode, 1, ws->out.data, ws->out.len);
        pn_buf_shrink(&ws->out, WS_BUF_KEEP);
    } else {
        wrc = ws_write_frame(ws, opcode, 0, p, (size_t)n);
    }
    if (wrc == PN_IO_GONE) {
        ws_closed_error();
        goto done;
    }
    PN_METRICS_IF(r->worker->metrics, pn_metrics_add(&r->worker->metrics->ws_msgs_out, 1));
    result = pn_request_wait_or_ready(r, wrc);
done:
    if (have_view)
        PyBuffer_Release(&view);
    Py_XDECREF(b);
    Py_XDECREF(t);
    return result;
}

static PyObject *ws_send_close_msg(WebSocketObject *ws, PyObject *msg)
{
    pn_modstate *st = ws_state(ws);
    if (ws->state == WS_CONNECTING || ws->state == WS_CONNECT_SENT) {
        ws_deny(ws, 403); /* ASGI: close before accept rejects the handshake */
        return Py_NewRef(st->ready_none);
    }
    if (ws->state != WS_OPEN || ws->http.stream == NULL)
        return ws_closed_error();
    int code = PN_WS_CLOSE_NORMAL;
    const char *reason = "";
    Py_ssize_t rlen = 0;
    PyObject *co = NULL, *ro = NULL;
    PyObject *result = NULL;
    if (msg_get(msg, PN_ID(st, code), &co) < 0 || msg_get(msg, PN_ID(st, reason), &ro) < 0)
        goto done;
    if (co != NULL && co != Py_None) {
        code = PyLong_AsLong(co) > 0 && PyLong_AsLong(co) < 65536 ? (int)PyLong_AsLong(co) : -1;
        if (PyErr_Occurred())
            goto done;
    }
    if (optional_utf8(ro, "'websocket.close' reason must be a str", &reason, &rlen) < 0)
        goto done;
    uint8_t frame[PN_WS_MAX_CONTROL_FRAME];
    if (code < 0 || pn_ws_close_frame(frame, code, reason, (size_t)rlen) == 0) {
        runtime_error("'websocket.close' code must be 1000-1003, 1007-1014 or 3000-4999 and "
                      "the reason at most 123 bytes of UTF-8",
                      NULL);
        goto done;
    }
    ws_send_close(ws, code, reason, (size_t)rlen);
    ws->state = WS_CLOSING;
    pn_conn_set_timer(ws_conn(ws), WS_CLOSE_WAIT_MS);
    result = Py_NewRef(st->ready_none);
done:
    Py_XDECREF(co);
    Py_XDECREF(ro);
    return result;
}

static PyObject *ws_send_method(PyObject *op, PyObject *msg)
{
    WebSocketObject *ws = (WebSocketObject *)op;
    RequestObject *r = &ws->http;
    pn_modstate *st = ws_state(ws);
    PyObject *type = NULL;
    int rc = msg_get(msg, PN_ID(st, type), &type);
    if (rc <= 0)
        return rc == 0 ? runtime_error("ASGI message has no 'type'", NULL) : NULL;
    PyObject *result = NULL;
    int handshake = ws->state == WS_CONNECTING || ws->state == WS_CONNECT_SENT;
    if (!PyUnicode_Check(type)) {
        PyErr_Format(PyExc_RuntimeError, "ASGI message 'type' must be a str, got %R", type);
    } else if (msg_type_is(type, PN_ID(st, websocket_send))) {
        result = ws_send_message(ws, msg);
    } else if (msg_type_is(type, PN_ID(st, websocket_accept))) {
        if (!handshake)
            runtime_error("'websocket.accept' sent twice, or after close", NULL);
        else if (ws_accept(ws, msg) == 0)
            result = Py_NewRef(st->ready_none);
    } else if (msg_type_is(type, PN_ID(st, websocket_close))) {
        result = ws_send_close_msg(ws, msg);
    } else if (msg_type_is(type, PN_ID(st, websocket_http_response_start))) {
        if (!handshake)
            runtime_error("'websocket.http.response.start' after the handshake was answered", NULL);
        else if (pn_request_start(r, &(pn_msg){.msg = msg}) == 0) {
            ws->state = WS_RESPONSE;
            r->resp.flags |= PN_RESP_CLOSE;
            result = Py_NewRef(st->ready_none);
        }
    } else if (msg_type_is(type, PN_ID(st, websocket_http_response_body))) {
        if (ws->state != WS_RESPONSE)
            runtime_error("'websocket.http.response.body' before 'websocket.http.response.start'",
                          NULL);
        else
            result = pn_request_send_body(r, &(pn_msg){.msg = msg});
    } else {
        PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message type %R for a websocket scope",
                     type);
    }
    Py_DECREF(type);
    return result;
}

/* The app's coroutine ended: settle the connection. */
static void ws_finish(RequestObject *r, PyObject *exc)
{
    WebSocketObject *ws = (WebSocketObject *)r;
    switch (ws->state) {
    case WS_CONNECTING:
    case WS_CONNECT_SENT:
        ws_deny(ws, exc ? 500 : 403);
        break;
    case WS_OPEN:
        ws_send_close(ws, exc ? PN_WS_CLOSE_INTERNAL : PN_WS_CLOSE_NORMAL, NULL, 0);
        ws_release_conn(ws);
        break;
    case WS_CLOSING:
        ws_release_conn(ws);
        break;
    case WS_RESPONSE:
        pn_request_finish(r, exc); /* an HTTP response like any other */
        break;
    default:
        break; /* CLOSED */
    }
}

/* ---- the type ---------------------------------------------------------------- */

static int ws_traverse(WebSocketObject *ws, visitproc visit, void *arg)
{
    int rc = pn_request_traverse(&ws->http, visit, arg);
    if (rc)
        return rc;
    Py_VISIT(ws->queue);
    Py_VISIT(ws->peer_reason);
    return 0;
}

static int ws_clear(WebSocketObject *ws)
{
    pn_request_clear(&ws->http);
    Py_CLEAR(ws->queue);
    Py_CLEAR(ws->peer_reason);
    return 0;
}

static void ws_dealloc(WebSocketObject *ws)
{
    PyTypeObject *tp = Py_TYPE(ws);
    PyObject_GC_UnTrack(ws);
    ws_clear(ws);
    pn_request_release(&ws->http);
    pn_ws_deflate_free(&ws->deflate);
    pn_buf_free(&ws->msg);
    pn_buf_free(&ws->out);
    tp->tp_free((PyObject *)ws);
    Py_DECREF(tp);
}

/* The app's send(message): a call of the session itself (pn_asgi.h). */
static PyObject *ws_send_call(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *msg = pn_send_arg(args, nargsf, kwnames);
    return msg ? ws_send_method(op, msg) : NULL;
}

static PyMethodDef ws_receive_def = {"receive", ws_receive_method, METH_NOARGS, "ASGI receive()"};

static const pn_request_kind ws_kind = {
    .receive = &ws_receive_def,
    .send = ws_send_call,
    .finish = ws_finish,
    .closed = ws_closed,
};

static PyMethodDef ws_methods[] = {
    {"receive", ws_receive_method, METH_NOARGS, "ASGI receive()"},
    {"send", ws_send_method, METH_O, "ASGI send(message)"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef ws_members[] = {
    {"__vectorcalloffset__", PN_T_PYSSIZET, offsetof(RequestObject, send_call), PN_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot ws_slots[] = {
    {Py_tp_dealloc, ws_dealloc},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, ws_members},
    {Py_tp_traverse, ws_traverse},
    {Py_tp_clear, ws_clear},
    {Py_tp_methods, ws_methods},
    {Py_tp_doc, "One WebSocket session: owns receive() and send(); calling it is send()."},
    {0, NULL},
};

PyType_Spec pn_websocket_spec = {
    .name = "pounce._pounce.WebSocket",
    .basicsize = sizeof(WebSocketObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = ws_slots,
};

/* ---- handshake ------------------------------------------------------------ */

/* Answer a handshake that failed its checks (400, or 426 for a version we
 * do not speak) and hand the connection back to close. */
static void ws_refuse(WorkerObject *w, pn_conn *c, const pn_http1_request *req, int status,
                      const pn_fwd_result *fwd)
{
    pn_buf out = PN_BUF_INIT;
    pn_http1_response resp;
    pn_http1_head_opts opts = pn_worker_head_opts(c->worker);
    const char *body = status == 426 ? "Upgrade Required: WebSocket version 13\n"
                                     : "Bad Request: invalid WebSocket handshake\n";
    pn_http1_resp_init(&resp, status, req->version_minor, PN_RESP_CLOSE);
    pn_http1_resp_start(&out, &resp);
    if (status == 426)
        pn_http1_resp_header(&out, &resp, PN_STRLIT("Sec-WebSocket-Version"), PN_STRLIT("13"));
    pn_http1_resp_header(&out, &resp, PN_STRLIT("Content-Type"),
                         PN_STRLIT("text/plain; charset=utf-8"));
    if (c->stream.request_id_len)
        pn_http1_resp_header(&out, &resp, w->cfg->request_id_header,
                             strlen(w->cfg->request_id_header), c->stream.request_id,
                             c->stream.request_id_len);
    pn_http1_resp_finish_head(&out, &resp, &opts, (int64_t)strlen(body));
    pn_buf_append_str(&out, body);
    struct iovec iov = {out.data, out.len};
    pn_conn_write(c, &iov, 1);
    pn_buf_free(&out);
    if (w->cfg->access_log && w->cfg->log_level <= PN_LOG_INFO) {
        char client[PN_FWD_CLIENT_TEXT];
        size_t client_len = fwd ? pn_fwd_client_text(fwd, client) : 0;
        pn_access_rec rec = pn_access_rec_of(req, status, strlen(body));
        rec.client = client;
        rec.client_len = client_len;
        pn_conn_access_log(c, &rec);
    }
    pn_conn_response_done(c, 0);
}

int pn_ws_dispatch(WorkerObject *w, pn_stream *s, const pn_http1_request *req)
{
    pn_modstate *st = worker_state(w);
    pn_conn *c = pn_http1_stream_conn(s);
    if (c == NULL)
        return PN_WS_NOT_WEBSOCKET; /* (only HTTP/1.1 upgrades to WebSocket) */
    pn_ws_handshake hs;
    memset(&hs, 0, sizeof(hs));
    pn_ws_deflate_policy policy = PN_WS_DEFLATE_POLICY_DEFAULT;
    policy.enabled = w->cfg->ws_per_message_deflate && pn_ws_deflate_available();
    int rc = pn_ws_handshake_check(req, &policy, &hs);
    if (rc == PN_WS_HS_NOT_WEBSOCKET)
        return PN_WS_NOT_WEBSOCKET;
    pn_fwd_result fwdbuf;
    const pn_fwd_result *fwd = pn_scope_forwarded(w, s, req, &fwdbuf);
    if (rc != PN_WS_HS_OK) {
        ws_refuse(w, c, req, hs.status ? hs.status : 400, fwd);
        return 0;
    }
    PyObject *queue = PyList_New(0);
    if (queue == NULL) {
        PyErr_Clear();
        return PN_WS_NOT_WEBSOCKET;
    }
    WebSocketObject *ws =
        (WebSocketObject *)pn_request_new(w, st->websocket_type, &ws_kind, s, req, fwd);
    if (ws == NULL) {
        Py_DECREF(queue);
        PyErr_WriteUnraisable((PyObject *)w);
        return -1;
    }
    memset((char *)ws + sizeof(RequestObject), 0, sizeof(*ws) - sizeof(RequestObject));
    ws->hs = hs;
    ws->queue = queue;
    ws->state = WS_CONNECTING;
    PyObject_GC_Track(ws);
    return pn_apprun_start(&ws->http, pn_scope_websocket(w, s, req, fwd));
}
