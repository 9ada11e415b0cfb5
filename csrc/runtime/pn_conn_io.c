/*
 * pn_conn_io.c — a connection's bytes: writes (coalesced, corked, with
 * backpressure), sendfile, reads, and the request body decoded in place.
 *
 * Private to the worker (pn_worker_int.h): runs on the connection's worker
 * thread.  The pn_conn_* functions of pn_worker.h here are called by the
 * stream (pn_http1_stream.c) and the bridge's WebSocket session; they never
 * call a hook, and queue the connection for the next poll when work follows.
 */
#include "pn_worker_int.h"

#include <errno.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

/* TLS: the file slices a pathsend response is read in (4 TLS records). */
#define TLS_FILE_SLICE 65536

/* ---- output --------------------------------------------------------- */

/* After a send or sendfile failed (not with EINTR, which is retried): 0
 * when the socket is full (wait for EPOLLOUT), -1 when the connection
 * failed (c->dead set). */
static int write_failed(pn_conn *c)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->can_write = 0;
        return 0;
    }
    c->dead = 1;
    return -1;
}

/* TLS: the next slice of the pending file, read into the empty wbuf.  0,
 * or -1 when the file cannot be read (c->dead set). */
static int tls_file_slice(pn_conn *c)
{
    size_t want = c->file_left > TLS_FILE_SLICE ? TLS_FILE_SLICE : (size_t)c->file_left;
    if (pn_buf_reserve(&c->wbuf, want) < 0) {
        c->dead = 1;
        return -1;
    }
    ssize_t n;
    do {
        BLOCKING_BEGIN(c->worker);
        n = pread(c->file_fd, pn_buf_tail(&c->wbuf), want, (off_t)c->file_off);
        BLOCKING_END(c->worker);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        /* An error, or the file shrank under us: the declared length
         * cannot be met. */
        c->dead = 1;
        return -1;
    }
    c->wbuf.len += (size_t)n;
    c->file_off += (uint64_t)n;
    c->file_left -= (uint64_t)n;
    return 0;
}

/* Flush wbuf, then the pending file.  Returns 0, or -1 when the connection
 * failed (c->dead set). */
int pn_conn_flush_output(pn_conn *c)
{
again:
    while (pn_buf_live(&c->wbuf) > 0) {
        if (!c->can_write)
            return 0;
        ssize_t n;
        if (c->ssl) {
            n = pn_tls_write(c, pn_buf_head(&c->wbuf), pn_buf_live(&c->wbuf));
        } else {
            /* A file follows (pathsend, --static): MSG_MORE lets the head
             * share its first segment, as nginx's tcp_nopush does. */
            int more = c->file_fd >= 0 && c->file_left > 0 ? MSG_MORE : 0;
            do {
                BLOCKING_BEGIN(c->worker);
                n = send(c->fd, pn_buf_head(&c->wbuf), pn_buf_live(&c->wbuf), MSG_NOSIGNAL | more);
                BLOCKING_END(c->worker);
            } while (n < 0 && errno == EINTR);
        }
        if (n < 0)
            return write_failed(c);
        pn_metrics_bytes_out(c->worker->metrics, (size_t)n);
        pn_buf_consume(&c->wbuf, (size_t)n);
    }
    while (c->file_fd >= 0) {
        if (c->file_left == 0) {
            close(c->file_fd);
            c->file_fd = -1;
            break;
        }
        if (!c->can_write)
            return 0;
        if (c->ssl && !pn_tls_ktls_send(c)) {
            /* No kernel TLS: read a slice into the empty wbuf and send it
             * through the session as any output, until the socket is
             * full. */
            if (tls_file_slice(c) < 0)
                return -1;
            goto again;
        }
        off_t off = (off_t)c->file_off;
        size_t want = c->file_left > SENDFILE_SLICE ? SENDFILE_SLICE : (size_t)c->file_left;
        ssize_t n;
        if (c->ssl) {
            n = pn_tls_sendfile(c, c->file_off, want); /* the kernel encrypts */
        } else {
            do {
                BLOCKING_BEGIN(c->worker);
                n = sendfile(c->fd, c->file_fd, &off, want);
                BLOCKING_END(c->worker);
            } while (n < 0 && errno == EINTR);
        }
        if (n < 0)
            return write_failed(c);
        if (n == 0) {
            /* The file shrank under us: the declared length cannot be met. */
            c->dead = 1;
            return -1;
        }
        pn_metrics_bytes_out(c->worker->metrics, (size_t)n);
        c->file_off += (uint64_t)n;
        c->file_left -= (uint64_t)n;
    }
    if (pn_buf_live(&c->wbuf) == 0) {
        /* Idle (the response went out after the request was done): no
         * buffer; mid-response: a bounded one for the next pieces. */
        if (c->phase == PN_CONN_HEAD && !c->in_request && pn_buf_live(&c->rbuf) == 0)
            bufs_give(c);
        else
            pn_buf_shrink(&c->wbuf, WBUF_KEEP);
        /* A TLS connection whose response went out after it was done,
         * waiting for the next request. */
        if (c->ssl && c->phase == PN_CONN_HEAD && !c->in_request && pn_buf_live(&c->rbuf) == 0)
            pn_tls_conn_idle(c);
    }
    return 0;
}

int pn_conn_write(pn_conn *c, const struct iovec *iov, int iovcnt)
{
    if (c->dead || c->fd < 0)
        return PN_IO_GONE;
    c->resp_started = 1;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    size_t sent = 0;
    if ((c->corked || c->step_cork) && pn_buf_live(&c->wbuf) + total <= CORK_MAX) {
        /* Pipelined requests answered in one batch: coalesce their
         * responses into one send (see conn_dispatch). */
        sent = 0;
    } else if (!output_pending(c) && c->can_write && total > 0 && c->ssl == NULL) {
        /* Plain TCP: straight from the iovecs.  TLS gathers them into
         * wbuf below (one record, one send), then flushes. */
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = (struct iovec *)iov;
        msg.msg_iovlen = (size_t)iovcnt;
        ssize_t n;
        do {
            BLOCKING_BEGIN(c->worker);
            n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
            BLOCKING_END(c->worker);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                c->dead = 1;
                queue_conn(c);
                return PN_IO_GONE;
            }
            c->can_write = 0;
        } else {
            sent = (size_t)n;
            pn_metrics_bytes_out(c->worker->metrics, sent);
            if (sent < total)
                c->can_write = 0; /* short write: the socket buffer is full */
        }
    }
    if (sent < total) {
        size_t skip = sent;
        if (pn_buf_reserve(&c->wbuf, total - sent) < 0) {
            c->dead = 1;
            queue_conn(c);
            return PN_IO_GONE;
        }
        for (int i = 0; i < iovcnt; i++) {
            size_t len = iov[i].iov_len;
            if (skip >= len) {
                skip -= len;
                continue;
            }
            pn_buf_append(&c->wbuf, (const char *)iov[i].iov_base + skip, len - skip);
            skip = 0;
        }
    }
    if (!c->corked && !c->step_cork && output_pending(c) && c->can_write && sent == 0 &&
        total > 0) {
        /* Earlier output (coalesced responses) is still here: send it all
         * now, in order, rather than wait for an event. */
        if (pn_conn_flush_output(c) < 0) {
            queue_conn(c);
            return PN_IO_GONE;
        }
    }
    if (pn_buf_live(&c->wbuf) > (size_t)c->worker->cfg->write_buffer_size) {
        c->drain_wanted = 1;
        return PN_IO_WAIT;
    }
    return PN_IO_OK;
}

void pn_conn_cork(pn_conn *c)
{
    c->step_cork = 1;
}

void pn_conn_uncork(pn_conn *c)
{
    c->step_cork = 0;
    if (c->corked || c->dead)
        return; /* the runtime flushes later (pipelining), or closes */
    if (output_pending(c) && c->can_write && pn_conn_flush_output(c) < 0) {
        queue_conn(c);
        return;
    }
    /* A send() of this step that went over write_buffer_size waits for the
     * drain (pn_conn_write returned PN_IO_WAIT while corked).  When this
     * flush made the room, no EPOLLOUT will come to say so: let the
     * runtime's output step (conn_output_step) wake the sender now. */
    if (c->drain_wanted)
        queue_conn(c);
}

int pn_conn_sendfile(pn_conn *c, int fd, uint64_t off, uint64_t len)
{
    if (c->dead || c->fd < 0 || c->file_fd >= 0) {
        close(fd);
        return PN_IO_GONE;
    }
    c->resp_started = 1;
    c->file_fd = fd;
    c->file_off = off;
    c->file_left = len;
    if (pn_conn_flush_output(c) < 0) {
        queue_conn(c);
        return PN_IO_GONE;
    }
    if (output_pending(c)) {
        c->drain_wanted = 1;
        return PN_IO_WAIT;
    }
    return PN_IO_OK;
}

/* ---- input ---------------------------------------------------------- */

/* Read while the socket has data and the buffer holds fewer than `limit`
 * live bytes.  Sets peer_closed on EOF, dead on error. */
void pn_conn_read_input(pn_conn *c, size_t limit)
{
    while (c->can_read && !c->peer_closed && !c->dead && pn_buf_live(&c->rbuf) < limit) {
        /* Start small (most heads fit in 4 KiB; idle keep-alive connections
         * should stay cheap) and double only when the buffer is full. */
        if (c->rbuf.cap == 0) {
            if (rbuf_take(c) < 0) {
                c->dead = 1;
                return;
            }
        } else if (pn_buf_space(&c->rbuf) < READ_MIN_SPACE &&
                   pn_buf_reserve(&c->rbuf, c->rbuf.cap) < 0) {
            c->dead = 1;
            return;
        }
        size_t space = pn_buf_space(&c->rbuf);
        ssize_t n;
        int drained;
        if (c->ssl) {
            n = pn_tls_read(c, pn_buf_tail(&c->rbuf), space);
            drained = c->tls_short;
        } else {
            BLOCKING_BEGIN(c->worker);
            n = recv(c->fd, pn_buf_tail(&c->rbuf), space, 0);
            BLOCKING_END(c->worker);
            drained = (size_t)n < space;
        }
        if (n > 0) {
            c->rbuf.len += (size_t)n;
            pn_metrics_bytes_in(c->worker->metrics, (size_t)n);
            /* A short read drained the socket; with edge-triggered epoll
             * any later data brings a new event.  Not so for a FIN that came
             * with the data: its EPOLLRDHUP edge is already consumed, so
             * read on until recv() says EOF. */
            if (drained && !c->rdhup)
                c->can_read = 0;
            continue;
        }
        if (n == 0) {
            c->peer_closed = 1;
            c->can_read = 0;
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->can_read = 0;
            /* A TLS connection waiting for its first request. */
            if (c->ssl && c->phase == PN_CONN_HEAD && !c->in_request && pn_buf_live(&c->rbuf) == 0)
                pn_tls_conn_idle(c);
            return;
        }
        c->dead = 1;
        return;
    }
}

/* Decode raw body bytes in place: payload moves down to follow the decoded
 * bytes already at the front of rbuf, framing becomes part of the gap.
 * Returns -1 on a framing error (c->body_error set). */
int pn_conn_decode_body(pn_conn *c)
{
    while (!c->body.done) {
        char *base = pn_buf_head(&c->rbuf);
        size_t raw_at = c->body_ready + c->body_gap;
        size_t raw_len = pn_buf_live(&c->rbuf) - raw_at;
        if (raw_len == 0)
            return 0;
        size_t consumed = 0, dlen = 0;
        const char *data = NULL;
        int rc = pn_http1_body_next(&c->body, base + raw_at, raw_len, &consumed, &data, &dlen);
        if (rc == PN_HTTP1_ERROR) {
            c->body_error = c->body.error_status ? c->body.error_status : 400;
            return -1;
        }
        if (dlen > 0) {
            char *dst = base + c->body_ready;
            if (dst != data)
                memmove(dst, data, dlen);
            c->body_ready += dlen;
        }
        c->body_gap += consumed - dlen;
        if (rc == PN_HTTP1_INCOMPLETE)
            return 0;
    }
    return 0;
}

void pn_conn_drop_decoded_body(pn_conn *c)
{
    pn_buf_consume(&c->rbuf, c->body_ready + c->body_gap);
    c->body_ready = c->body_gap = 0;
}

int pn_conn_body(pn_conn *c, const char **data, size_t *len)
{
    if (c->body_error || c->dead)
        return -1;
    if (c->body_ready == 0 && !c->body.done) {
        /* Nothing decoded yet: read what the socket has now (no loop
         * round-trip when the bytes are already there). */
        pn_conn_read_input(c, BODY_BUFFER_MAX);
        if (pn_conn_decode_body(c) < 0)
            return -1;
        if (c->dead || (c->peer_closed && c->body_ready == 0 && !c->body.done)) {
            queue_conn(c);
            return -1;
        }
    }
    if (c->body_ready == 0 && !c->body.done) {
        c->body_wanted = 1;
        return 0;
    }
    *data = pn_buf_head(&c->rbuf);
    *len = c->body_ready;
    return 1;
}

void pn_conn_body_consume(pn_conn *c, size_t n)
{
    if (n > c->body_ready)
        n = c->body_ready;
    c->body_ready -= n;
    pn_buf_consume(&c->rbuf, n);
    if (c->body_ready == 0 && c->body_gap) {
        pn_buf_consume(&c->rbuf, c->body_gap);
        c->body_gap = 0;
    }
    /* Space freed: the app can take more, so read again if we had stopped. */
    if (c->can_read)
        queue_conn(c);
}

/* Write "100 Continue".  An interim response is not the response: it
 * leaves resp_started as it was. */
static void write_continue(pn_conn *c)
{
    pn_buf tmp = PN_BUF_INIT;
    char space[32];
    unsigned started = c->resp_started;
    /* The interim response is tiny: build it on the stack. */
    tmp.data = space;
    tmp.cap = sizeof(space);
    if (pn_http1_write_continue(&tmp) == 0) {
        struct iovec iov = {tmp.data, tmp.len};
        pn_conn_write(c, &iov, 1);
    }
    c->resp_started = started;
}

void pn_conn_send_continue(pn_conn *c)
{
    if (!c->expect_continue || c->sent_continue || c->body.done)
        return;
    c->sent_continue = 1;
    write_continue(c);
}

/* A FIN cannot tell a client that half-closed and waits for its answer
 * from one that closed its socket and left.  Only bytes can: the closed
 * socket answers them with a RST (EPOLLHUP/ERR or a failed write, and the
 * bridge's on_close says http.disconnect), the half-closed client reads
 * them.  So when the app waits for the client to go away and a FIN came
 * before any of the response, an HTTP/1.1 client gets one interim
 * "100 Continue", which it must accept unasked (RFC 9110 §15.2). */
void pn_conn_probe_if_due(pn_conn *c)
{
    if (c->close_watch && c->peer_closed && !c->probed && !c->resp_started && c->http11 &&
        c->phase == PN_CONN_REQUEST && c->in_request && !c->dead) {
        c->probed = 1;
        write_continue(c);
    }
}

void pn_conn_watch_close(pn_conn *c)
{
    c->close_watch = 1;
    pn_conn_probe_if_due(c);
}
