/*
 * Unit tests for pn_http1_write: exact response bytes for every framing
 * case, header validation, body accounting, the reason table and the Date
 * cache.  Application-supplied bytes (header names and values) are read
 * from guard-page copies (value) and exact-size heap copies (name, checked
 * by ASan) so an over-read fails the test.
 */
#include "pn_http1_write.h"
#include "pn_test.h"

#include <string.h>

#define DATE "Sun, 06 Nov 1994 08:49:37 GMT"

static const pn_http1_head_opts opts_std = {DATE, "pounce"};
static const pn_http1_head_opts opts_none = {NULL, NULL};

/* Add one header with its bytes placed for over-read detection. */
static int add_header(pn_buf *out, pn_http1_response *r, const char *name, size_t name_len,
                      const char *value, size_t value_len)
{
    char *n = malloc(name_len ? name_len : 1);
    memcpy(n, name, name_len);
    const char *v = pn_guard_copy(value, value_len);
    int rc = pn_http1_resp_header(out, r, n, name_len, v, value_len);
    free(n);
    return rc;
}

#define ADD(out, r, name, value) add_header((out), (r), name, strlen(name), value, strlen(value))

/* Check the live bytes of b equal `want` exactly, then clear b. */
#define CHECK_BUF(b, want)                                                                         \
    do {                                                                                           \
        PN_CHECK_SLICE(pn_buf_head(&(b)), pn_buf_live(&(b)), want);                                \
        pn_buf_clear(&(b));                                                                        \
    } while (0)

/* A response with no app headers through init/start/finish_head. */
static int head_only(pn_buf *out, pn_http1_response *r, int status, int minor, unsigned flags,
                     const pn_http1_head_opts *o, int64_t known)
{
    int rc = pn_http1_resp_init(r, status, minor, flags);
    if (rc)
        return rc;
    rc = pn_http1_resp_start(out, r);
    if (rc)
        return rc;
    return pn_http1_resp_finish_head(out, r, o, known);
}

PN_TEST(app_content_length)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "content-type", "text/plain"), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "Content-Length", "13"), 0);
    /* known_body_len is ignored when the app declared a length */
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_std, 99), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 13\r\n"
                 "Date: " DATE "\r\nServer: pounce\r\n\r\n");
    PN_CHECK(r.flags & PN_RESP_HAS_CL);
    PN_CHECK(r.flags & PN_RESP_HEAD_DONE);
    PN_CHECK(!(r.flags & (PN_RESP_CLOSE | PN_RESP_CHUNKED)));
    PN_CHECK_EQ_INT(r.content_length, 13);

    pn_http1_frame f;
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 5, 0, &f), 0);
    PN_CHECK_EQ_INT(f.send_len, 5);
    PN_CHECK_EQ_INT(f.prefix_len, 0);
    PN_CHECK_EQ_INT(f.suffix_len, 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 8, 1, &f), 0);
    PN_CHECK_EQ_INT(f.send_len, 8);
    PN_CHECK_EQ_INT(r.body_sent, 13);
    PN_CHECK(r.flags & PN_RESP_FINISHED);
    PN_CHECK(!(r.flags & PN_RESP_CLOSE));
    /* nothing may follow the final piece */
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 1, 0, &f), PN_WRITE_TOO_MUCH);
    PN_CHECK_EQ_INT(f.send_len, 0);
    pn_buf_free(&b);
}

/* A content-coded body: the app's Content-Length was validated (and kept
 * out of the head by the caller), then forgotten, so the framing is the
 * server's: the known encoded length, or chunked. */
PN_TEST(forget_length)
{
    pn_buf held = PN_BUF_INIT, b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&held, &r, "Content-Length", "5000"), 0);
    PN_CHECK_EQ_INT(ADD(&held, &r, "Content-Length", "5001"), PN_WRITE_BAD_LENGTH);
    PN_CHECK(r.flags & PN_RESP_HAS_CL);
    pn_http1_resp_forget_length(&r);
    PN_CHECK(!(r.flags & PN_RESP_HAS_CL));
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, 321), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nContent-Length: 321\r\n\r\n");
    pn_http1_frame f;
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 321, 1, &f), 0);
    PN_CHECK_EQ_INT(f.send_len, 321);

    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&held, &r, "Content-Length", "5000"), 0);
    pn_http1_resp_forget_length(&r);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    PN_CHECK(r.flags & PN_RESP_CHUNKED);
    pn_buf_free(&held);
    pn_buf_free(&b);
}

PN_TEST(known_length)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(head_only(&b, &r, 404, 1, PN_RESP_KEEP_ALIVE, &opts_std, 0), 0);
    CHECK_BUF(b, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                 "Date: " DATE "\r\nServer: pounce\r\n\r\n");
    pn_http1_frame f;
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 0, 1, &f), 0);
    PN_CHECK(r.flags & PN_RESP_FINISHED);

    PN_CHECK_EQ_INT(
        head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, (int64_t)1234567890123), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123\r\n\r\n");
    PN_CHECK_EQ_INT(r.content_length, 1234567890123ULL);
    PN_CHECK(r.flags & PN_RESP_HAS_CL);
    pn_buf_free(&b);
}

PN_TEST(chunked)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "x-a", "1"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nx-a: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    PN_CHECK(r.flags & PN_RESP_CHUNKED);
    PN_CHECK(!(r.flags & PN_RESP_CLOSE));

    pn_http1_frame f;
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 0x1a2b, 0, &f), 0);
    PN_CHECK_SLICE(f.prefix, f.prefix_len, "1a2b\r\n");
    PN_CHECK_SLICE(f.suffix, f.suffix_len, "\r\n");
    PN_CHECK_EQ_INT(f.send_len, 0x1a2b);
    /* an empty non-final piece emits nothing (a "0" line would end the body) */
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 0, 0, &f), 0);
    PN_CHECK_EQ_INT(f.prefix_len, 0);
    PN_CHECK_EQ_INT(f.suffix_len, 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 1, 0, &f), 0);
    PN_CHECK_SLICE(f.prefix, f.prefix_len, "1\r\n");
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 16, 1, &f), 0);
    PN_CHECK_SLICE(f.prefix, f.prefix_len, "10\r\n");
    PN_CHECK_SLICE(f.suffix, f.suffix_len, "\r\n0\r\n\r\n");
    PN_CHECK(r.flags & PN_RESP_FINISHED);
    PN_CHECK_EQ_INT(r.body_sent, 0x1a2b + 1 + 16);
    /* after the last-chunk nothing more may go out */
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 3, 0, &f), PN_WRITE_TOO_MUCH);
    PN_CHECK_EQ_INT(f.prefix_len + f.suffix_len + f.send_len, 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 0, 1, &f), 0);
    PN_CHECK_EQ_INT(f.prefix_len + f.suffix_len + f.send_len, 0);

    /* final piece with no data: only the last-chunk */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, -1), 0);
    pn_buf_clear(&b);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 0, 1, &f), 0);
    PN_CHECK_EQ_INT(f.prefix_len, 0);
    PN_CHECK_SLICE(f.suffix, f.suffix_len, "0\r\n\r\n");
    PN_CHECK_EQ_INT(f.send_len, 0);

    /* largest size: 16 hex digits still fit the prefix */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, -1), 0);
    pn_buf_clear(&b);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, SIZE_MAX, 0, &f), 0);
    PN_CHECK_SLICE(f.prefix, f.prefix_len, "ffffffffffffffff\r\n");
    pn_buf_free(&b);
}

PN_TEST(http10_close_delimited)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    /* HTTP/1.0 client asked for keep-alive, but with no length we must close */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 0, PN_RESP_KEEP_ALIVE, &opts_std, -1), 0);
    CHECK_BUF(b,
              "HTTP/1.1 200 OK\r\nConnection: close\r\nDate: " DATE "\r\nServer: pounce\r\n\r\n");
    PN_CHECK(r.flags & PN_RESP_CLOSE);
    PN_CHECK(!(r.flags & PN_RESP_CHUNKED));
    pn_http1_frame f;
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 100, 0, &f), 0);
    PN_CHECK_EQ_INT(f.prefix_len + f.suffix_len, 0);
    PN_CHECK_EQ_INT(f.send_len, 100);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 7, 1, &f), 0);
    PN_CHECK_EQ_INT(f.prefix_len + f.suffix_len, 0);
    PN_CHECK_EQ_INT(f.send_len, 7);
    PN_CHECK(r.flags & PN_RESP_FINISHED);

    /* no keep-alive requested: plain HTTP/1.0 close */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 0, 0, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    pn_buf_free(&b);
}

PN_TEST(http10_keep_alive)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 0, PN_RESP_KEEP_ALIVE, &opts_none, 5), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n");
    PN_CHECK(!(r.flags & PN_RESP_CLOSE));

    /* app Content-Length also allows keep-alive */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 0, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "content-length", "2"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nConnection: keep-alive\r\n\r\n");

    /* HTTP/1.1 persistent: no Connection header at all */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, 5), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");

    /* HTTP/1.1 without keep-alive (client sent close) */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, 0, &opts_none, 5), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n");
    PN_CHECK(r.flags & PN_RESP_CLOSE);

    /* caller forces close (draining) although keep-alive was allowed */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE | PN_RESP_CLOSE, &opts_none, 5),
                    0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n");
    pn_buf_free(&b);
}

PN_TEST(head_request)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    pn_http1_frame f;
    unsigned fl = PN_RESP_HEAD_REQUEST | PN_RESP_KEEP_ALIVE;

    /* known length: the length GET would send, and no payload */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, fl, &opts_none, 42), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n");
    PN_CHECK(r.flags & PN_RESP_NO_BODY);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 42, 1, &f), 0);
    PN_CHECK_EQ_INT(f.send_len + f.prefix_len + f.suffix_len, 0);
    PN_CHECK(r.flags & PN_RESP_FINISHED);

    /* app Content-Length passes through, payload swallowed */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, fl), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "Content-Length", "1000"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 10, 0, &f), 0);
    PN_CHECK_EQ_INT(f.send_len, 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 0, 1, &f), 0);
    PN_CHECK(!(r.flags & PN_RESP_CLOSE));

    /* unknown length: neither chunked nor close (no body follows anyway) */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, fl, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\n\r\n");
    PN_CHECK(!(r.flags & (PN_RESP_CHUNKED | PN_RESP_CLOSE)));
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 5, 1, &f), 0);
    PN_CHECK_EQ_INT(f.send_len + f.prefix_len + f.suffix_len, 0);

    /* HTTP/1.0 HEAD with unknown length stays persistent */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 0, fl, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n");
    pn_buf_free(&b);
}

PN_TEST(no_content_and_not_modified)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    pn_http1_frame f;

    /* 204 drops an app Content-Length and gets none of ours */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 204, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK(r.flags & PN_RESP_NO_BODY);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "content-length", "0"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, 0), 0);
    CHECK_BUF(b, "HTTP/1.1 204 No Content\r\n\r\n");
    PN_CHECK(!(r.flags & PN_RESP_HAS_CL));
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 3, 1, &f), 0);
    PN_CHECK_EQ_INT(f.send_len, 0);

    /* 204 with unknown length: no chunked either */
    PN_CHECK_EQ_INT(head_only(&b, &r, 204, 1, PN_RESP_KEEP_ALIVE, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 204 No Content\r\n\r\n");

    /* 304 keeps the app Content-Length (it describes the GET body) */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 304, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "ETag", "\"x\""), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "Content-Length", "512"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 512\r\n\r\n");
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 512, 1, &f), 0);
    PN_CHECK_EQ_INT(f.send_len, 0);

    /* 304 with known_body_len: we add no length of our own */
    PN_CHECK_EQ_INT(head_only(&b, &r, 304, 1, PN_RESP_KEEP_ALIVE, &opts_none, 0), 0);
    CHECK_BUF(b, "HTTP/1.1 304 Not Modified\r\n\r\n");

    /* 204 on HTTP/1.0 keep-alive: persistent, no framing */
    PN_CHECK_EQ_INT(head_only(&b, &r, 204, 0, PN_RESP_KEEP_ALIVE, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
    pn_buf_free(&b);
}

PN_TEST(app_connection)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;

    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "Connection", "Close"), 0);
    PN_CHECK(r.flags & PN_RESP_CLOSE);
    PN_CHECK(r.flags & PN_RESP_APP_CONNECTION);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, 3), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 3\r\n\r\n");

    /* close among other options, with OWS */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "connection", "x-foo , CLOSE\t"), 0);
    PN_CHECK(r.flags & PN_RESP_CLOSE);
    pn_buf_clear(&b);

    /* words that merely contain "close" are not the option */
    const char *not_close[] = {"closed", "x-close", "clos", "close x", "", ",,"};
    for (size_t i = 0; i < sizeof(not_close) / sizeof(*not_close); i++) {
        PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
        PN_CHECK_EQ_INT(ADD(&b, &r, "Connection", not_close[i]), 0);
        PN_CHECK(!(r.flags & PN_RESP_CLOSE));
        PN_CHECK(r.flags & PN_RESP_APP_CONNECTION);
        pn_buf_clear(&b);
    }

    /* app says keep-alive but the server closes: our close is added */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, 0), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "Connection", "keep-alive"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, 0), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n");

    /* HTTP/1.0 persistent with an app Connection: no second one */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 0, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "Connection", "keep-alive"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, 0), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
    pn_buf_free(&b);
}

PN_TEST(app_date_server)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "DATE", "Mon, 01 Jan 2024 00:00:00 GMT"), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "server", "myapp/1"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_std, 0), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nDATE: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                 "server: myapp/1\r\nContent-Length: 0\r\n\r\n");
    PN_CHECK(r.flags & PN_RESP_APP_DATE);
    PN_CHECK(r.flags & PN_RESP_APP_SERVER);

    /* only Server from the app: our Date is still added */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "Server", "x"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_std, 0), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 0\r\nDate: " DATE "\r\n\r\n");

    /* look-alike names of the same length are ordinary headers */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "dat3", "x"), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "serves", "x"), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "content-lengtH", "1"), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "content_length", "x"), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "transfer_encoding", "x"), 0);
    PN_CHECK(!(r.flags & (PN_RESP_APP_DATE | PN_RESP_APP_SERVER)));
    PN_CHECK(r.flags & PN_RESP_HAS_CL);
    CHECK_BUF(b, "dat3: x\r\nserves: x\r\ncontent-lengtH: 1\r\ncontent_length: x\r\n"
                 "transfer_encoding: x\r\n");
    pn_buf_free(&b);
}

PN_TEST(transfer_encoding_dropped)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "Transfer-Encoding", "gzip, chunked"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, 4), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n");
    PN_CHECK(!(r.flags & PN_RESP_CHUNKED));
    /* still validated */
    PN_CHECK_EQ_INT(ADD(&b, &r, "transfer-encoding", "a\r\nb"), PN_WRITE_BAD_HEADER);
    pn_buf_free(&b);
}

PN_TEST(duplicate_content_length)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "content-length", "7"), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "Content-Length", "7"), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "content-length", "8"), PN_WRITE_BAD_LENGTH);
    PN_CHECK_EQ_INT(r.content_length, 7);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n");
    pn_buf_free(&b);
}

PN_TEST(bad_content_length)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    const char *bad[] = {"",
                         "-1",
                         "+1",
                         " 1",
                         "1 ",
                         "1,1",
                         "0x10",
                         "1a",
                         "18446744073709551616",
                         "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
        PN_CHECK_EQ_INT(ADD(&b, &r, "Content-Length", bad[i]), PN_WRITE_BAD_LENGTH);
        PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
        PN_CHECK(!(r.flags & PN_RESP_HAS_CL));
    }
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "Content-Length", "18446744073709551615"), 0);
    PN_CHECK(r.content_length == UINT64_MAX);
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "Content-Length", "007"), 0);
    PN_CHECK_EQ_INT(r.content_length, 7);
    pn_buf_free(&b);
}

PN_TEST(too_much_too_little)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    pn_http1_frame f;

    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, 10), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 6, 0, &f), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 5, 0, &f), PN_WRITE_TOO_MUCH);
    PN_CHECK_EQ_INT(f.send_len, 0);
    PN_CHECK_EQ_INT(r.body_sent, 6); /* nothing accounted */
    PN_CHECK(r.flags & PN_RESP_CLOSE);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 4, 1, &f), 0);
    PN_CHECK_EQ_INT(f.send_len, 4);

    /* huge len must not wrap the check */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, 10), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 1, 0, &f), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, SIZE_MAX, 1, &f), PN_WRITE_TOO_MUCH);

    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, 10), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 3, 0, &f), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 3, 1, &f), PN_WRITE_TOO_LITTLE);
    PN_CHECK_EQ_INT(f.send_len, 3); /* send what there is, then close */
    PN_CHECK(r.flags & PN_RESP_CLOSE);
    PN_CHECK(r.flags & PN_RESP_FINISHED);

    /* app Content-Length 0 then a byte */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "content-length", "0"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, -1), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 1, 1, &f), PN_WRITE_TOO_MUCH);
    pn_buf_free(&b);
}

PN_TEST(bad_header_names)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    static const char *bad[] = {"x y", "x:y", "x\"", "(x)", "x/y", "x@y", "x[",
                                "x{",  "x=",  "x?",  "x\\", "x,",  "x;",  "é"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        PN_CHECK_EQ_INT(ADD(&b, &r, bad[i], "v"), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(add_header(&b, &r, "", 0, "v", 1), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(add_header(&b, &r, "a\0b", 3, "v", 1), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(ADD(&b, &r, "a\r\nb", "v"), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(ADD(&b, &r, "a\tb", "v"), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(ADD(&b, &r, "a\x7f", "v"), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(ADD(&b, &r, "a\x01", "v"), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    /* every tchar is accepted */
    PN_CHECK_EQ_INT(ADD(&b, &r, "!#$%&'*+-.^_`|~09azAZ", "v"), 0);
    CHECK_BUF(b, "!#$%&'*+-.^_`|~09azAZ: v\r\n");

    /* exhaustive: a one-byte name is valid iff the byte is a tchar */
    for (int c = 0; c < 256; c++) {
        char n = (char)c;
        int tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
        PN_CHECK_EQ_INT(pn_http1_check_header(pn_guard_copy(&n, 1), 1, "", 0),
                        tchar ? 0 : PN_WRITE_BAD_HEADER);
    }
    pn_buf_free(&b);
}

PN_TEST(bad_header_values)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(add_header(&b, &r, "x", 1, "a\0b", 3), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(ADD(&b, &r, "x", "a\rb"), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(ADD(&b, &r, "x", "a\nb"), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(ADD(&b, &r, "x", "a\r\nSet-Cookie: evil"), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(ADD(&b, &r, "x", "\x1b[31m"), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(ADD(&b, &r, "x", "a\x7f"), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(ADD(&b, &r, "x", "\x01"), PN_WRITE_BAD_HEADER);
    /* bad value on a special header: nothing appended, no flag set */
    PN_CHECK_EQ_INT(ADD(&b, &r, "Connection", "close\n"), PN_WRITE_BAD_HEADER);
    PN_CHECK_EQ_INT(ADD(&b, &r, "date", "x\r"), PN_WRITE_BAD_HEADER);
    PN_CHECK(!(r.flags & (PN_RESP_CLOSE | PN_RESP_APP_CONNECTION | PN_RESP_APP_DATE)));
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);

    /* HTAB, SP, obs-text and empty values are fine */
    PN_CHECK_EQ_INT(ADD(&b, &r, "x", "a\tb c\x80\xff"), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "y", ""), 0);
    CHECK_BUF(b, "x: a\tb c\x80\xff\r\ny: \r\n");

    /* exhaustive: one-byte values */
    for (int c = 0; c < 256; c++) {
        char v = (char)c;
        int ok = c == '\t' || (c >= 0x20 && c != 0x7f);
        PN_CHECK_EQ_INT(pn_http1_check_header("x", 1, pn_guard_copy(&v, 1), 1),
                        ok ? 0 : PN_WRITE_BAD_HEADER);
    }

    /* long values take the word-at-a-time path: every byte at every
     * position of a 19-byte value (two full words and a tail) */
    for (int c = 0; c < 256; c++) {
        int ok = c == '\t' || (c >= 0x20 && c != 0x7f);
        for (size_t pos = 0; pos < 19; pos++) {
            char v[19];
            memset(v, 'a', sizeof(v));
            v[pos] = (char)c;
            int rc = pn_http1_check_header("x", 1, pn_guard_copy(v, sizeof(v)), sizeof(v));
            if (rc != (ok ? 0 : PN_WRITE_BAD_HEADER)) {
                fprintf(stderr, "byte 0x%02x at %zu: rc %d\n", c, pos, rc);
                PN_CHECK(0);
            }
        }
    }
    /* every pair of neighbouring bytes inside a word (borrow effects) */
    for (int c1 = 0; c1 < 256; c1++) {
        for (int c2 = 0; c2 < 256; c2++) {
            int ok1 = c1 == '\t' || (c1 >= 0x20 && c1 != 0x7f);
            int ok2 = c2 == '\t' || (c2 >= 0x20 && c2 != 0x7f);
            char v[16];
            memset(v, '~', sizeof(v));
            v[3] = (char)c1;
            v[4] = (char)c2;
            int rc = pn_http1_check_header("x", 1, v, sizeof(v));
            if (rc != ((ok1 && ok2) ? 0 : PN_WRITE_BAD_HEADER)) {
                fprintf(stderr, "bytes 0x%02x 0x%02x: rc %d\n", c1, c2, rc);
                PN_CHECK(0);
            }
        }
    }
    pn_buf_free(&b);
}

PN_TEST(bad_status)
{
    pn_http1_response r;
    memset(&r, 0x5a, sizeof(r));
    const int bad[] = {-1, 0, 99, 100, 101, 199, 600, 1000, 20};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        PN_CHECK_EQ_INT(pn_http1_resp_init(&r, bad[i], 1, 0), PN_WRITE_BAD_STATUS);
    PN_CHECK_EQ_INT(r.status, 0x5a5a5a5a); /* untouched */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, 0), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 599, 1, 0), 0);

    pn_buf b = PN_BUF_INIT;
    PN_CHECK_EQ_INT(pn_http1_write_simple(&b, 99, NULL, 1, NULL), PN_WRITE_BAD_STATUS);
    PN_CHECK_EQ_INT(pn_http1_write_simple(&b, 600, NULL, 1, NULL), PN_WRITE_BAD_STATUS);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    pn_buf_free(&b);
}

PN_TEST(status_lines)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(head_only(&b, &r, 599, 1, PN_RESP_KEEP_ALIVE, &opts_none, 0), 0);
    CHECK_BUF(b, "HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n");
    PN_CHECK_EQ_INT(head_only(&b, &r, 418, 1, PN_RESP_KEEP_ALIVE, &opts_none, 0), 0);
    CHECK_BUF(b, "HTTP/1.1 418 \r\nContent-Length: 0\r\n\r\n");
    PN_CHECK_EQ_INT(head_only(&b, &r, 201, 1, PN_RESP_KEEP_ALIVE, &opts_none, 0), 0);
    CHECK_BUF(b, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    /* HTTP/1.0 requests still get an HTTP/1.1 status line */
    PN_CHECK_EQ_INT(head_only(&b, &r, 500, 0, 0, &opts_none, 0), 0);
    CHECK_BUF(b, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n");
    PN_CHECK_EQ_INT(pn_http1_write_continue(&b), 0);
    CHECK_BUF(b, "HTTP/1.1 100 Continue\r\n\r\n");
    pn_buf_free(&b);
}

PN_TEST(reason_table)
{
    static const struct {
        int code;
        const char *reason;
    } want[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {203, "Non-Authoritative Information"},
        {204, "No Content"},
        {205, "Reset Content"},
        {206, "Partial Content"},
        {300, "Multiple Choices"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {305, "Use Proxy"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {402, "Payment Required"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {407, "Proxy Authentication Required"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {416, "Range Not Satisfiable"},
        {417, "Expectation Failed"},
        {421, "Misdirected Request"},
        {422, "Unprocessable Content"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {451, "Unavailable For Legal Reasons"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };
    size_t n = sizeof(want) / sizeof(*want);
    for (size_t i = 0; i < n; i++)
        PN_CHECK(strcmp(pn_http1_reason(want[i].code), want[i].reason) == 0);
    /* every other code (and out-of-range ones) is unknown */
    size_t known = 0;
    for (int c = -5; c < 1005; c++)
        if (pn_http1_reason(c)[0] != '\0')
            known++;
    PN_CHECK_EQ_INT(known, n);
    PN_CHECK_EQ_INT(strlen(pn_http1_reason(306)), 0);
    PN_CHECK_EQ_INT(strlen(pn_http1_reason(418)), 0);

    /* the status line always carries the same reason */
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    for (int c = 200; c < 600; c++) {
        PN_CHECK_EQ_INT(pn_http1_resp_init(&r, c, 1, 0), 0);
        PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
        char want_line[64];
        snprintf(want_line, sizeof(want_line), "HTTP/1.1 %d %s\r\n", c, pn_http1_reason(c));
        CHECK_BUF(b, want_line);
    }
    pn_buf_free(&b);
}

PN_TEST(write_simple)
{
    pn_buf b = PN_BUF_INIT;
    PN_CHECK_EQ_INT(pn_http1_write_simple(&b, 400, &opts_std, 1, NULL), 0);
    CHECK_BUF(b, "HTTP/1.1 400 Bad Request\r\nDate: " DATE "\r\nServer: pounce\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\n"
                 "Connection: close\r\n\r\nBad Request\n");
    PN_CHECK_EQ_INT(pn_http1_write_simple(&b, 503, &opts_none, 0, "busy"), 0);
    CHECK_BUF(b, "HTTP/1.1 503 Service Unavailable\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\n\r\nbusy");
    PN_CHECK_EQ_INT(pn_http1_write_simple(&b, 431, NULL, 1, NULL), 0);
    CHECK_BUF(b, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 32\r\n"
                 "Connection: close\r\n\r\nRequest Header Fields Too Large\n");
    PN_CHECK_EQ_INT(pn_http1_write_simple(&b, 599, NULL, 1, NULL), 0);
    CHECK_BUF(b, "HTTP/1.1 599 \r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Length: 1\r\nConnection: close\r\n\r\n\n");
    const int codes[] = {400, 408, 413, 414, 431, 500, 501, 503, 505};
    for (size_t i = 0; i < sizeof(codes) / sizeof(*codes); i++) {
        PN_CHECK_EQ_INT(pn_http1_write_simple(&b, codes[i], NULL, 1, NULL), 0);
        char want[256];
        const char *reason = pn_http1_reason(codes[i]);
        snprintf(want, sizeof(want),
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                 codes[i], reason, strlen(reason) + 1, reason);
        CHECK_BUF(b, want);
    }
    pn_buf_free(&b);
}

PN_TEST(appends_after_existing_data)
{
    /* the writer appends; it must not clobber what is already queued
     * (pipelined responses share one output buffer) */
    pn_buf b = PN_BUF_INIT;
    pn_buf_append_str(&b, "PREVIOUS");
    pn_buf_consume(&b, 3);
    pn_http1_response r;
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, 1), 0);
    CHECK_BUF(b, "VIOUSHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n");
    /* many headers force growth mid-head */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    for (int i = 0; i < 200; i++)
        PN_CHECK_EQ_INT(ADD(&b, &r, "x-header-name", "some value here"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_std, 1), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 17 + 200 * 32 + 19 + 37 + 16 + 2);
    pn_buf_free(&b);
}

static int check_date(pn_date_cache *c, time_t t, const char *want)
{
    const char *got = pn_date_get(c, t);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "date %lld: got \"%s\" want \"%s\"\n", (long long)t, got, want);
        return 0;
    }
    return strlen(got) == 29;
}

PN_TEST(date_format)
{
    pn_date_cache c;
    memset(&c, 0, sizeof(c));
    PN_CHECK(check_date(&c, 0, "Thu, 01 Jan 1970 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 784111777, "Sun, 06 Nov 1994 08:49:37 GMT"));
    PN_CHECK(check_date(&c, 951782400, "Tue, 29 Feb 2000 00:00:00 GMT"));  /* leap day */
    PN_CHECK(check_date(&c, 1709251199, "Thu, 29 Feb 2024 23:59:59 GMT")); /* leap day */
    PN_CHECK(check_date(&c, 1709251200, "Fri, 01 Mar 2024 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1704067199, "Sun, 31 Dec 2023 23:59:59 GMT"));
    PN_CHECK(check_date(&c, 2147483647, "Tue, 19 Jan 2038 03:14:07 GMT"));
    PN_CHECK(check_date(&c, 4102444800, "Fri, 01 Jan 2100 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1000000000, "Sun, 09 Sep 2001 01:46:40 GMT"));
    PN_CHECK(check_date(&c, 1717171717, "Fri, 31 May 2024 16:08:37 GMT"));
    PN_CHECK(check_date(&c, 1690000000, "Sat, 22 Jul 2023 04:26:40 GMT"));
    PN_CHECK(check_date(&c, 1500000000, "Fri, 14 Jul 2017 02:40:00 GMT"));
    PN_CHECK(check_date(&c, 1234567890, "Fri, 13 Feb 2009 23:31:30 GMT"));
    PN_CHECK(check_date(&c, 1113000000, "Fri, 08 Apr 2005 22:40:00 GMT"));
    PN_CHECK(check_date(&c, 1130000000, "Sat, 22 Oct 2005 16:53:20 GMT"));
    PN_CHECK(check_date(&c, 1100000000, "Tue, 09 Nov 2004 11:33:20 GMT"));
    PN_CHECK(check_date(&c, 1420070400, "Thu, 01 Jan 2015 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1425168000, "Sun, 01 Mar 2015 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1433116800, "Mon, 01 Jun 2015 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1438387200, "Sat, 01 Aug 2015 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1443657600, "Thu, 01 Oct 2015 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1430438400, "Fri, 01 May 2015 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1435708800, "Wed, 01 Jul 2015 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1441065600, "Tue, 01 Sep 2015 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1446336000, "Sun, 01 Nov 2015 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1422748800, "Sun, 01 Feb 2015 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1427846400, "Wed, 01 Apr 2015 00:00:00 GMT"));
    PN_CHECK(check_date(&c, 1448928000, "Tue, 01 Dec 2015 00:00:00 GMT"));
}

PN_TEST(date_cache)
{
    pn_date_cache c;
    memset(&c, 0, sizeof(c));
    const char *a = pn_date_get(&c, 784111777);
    PN_CHECK(a == c.text);
    /* same second: no reformat (a corrupted text proves it is reused) */
    c.text[0] = 'X';
    PN_CHECK(pn_date_get(&c, 784111777)[0] == 'X');
    /* next second: reformatted */
    PN_CHECK(strcmp(pn_date_get(&c, 784111778), "Sun, 06 Nov 1994 08:49:38 GMT") == 0);
    /* going backwards also reformats */
    PN_CHECK(strcmp(pn_date_get(&c, 784111777), "Sun, 06 Nov 1994 08:49:37 GMT") == 0);
}

/* ---- trailers ---- */

/* A request with the given headers (name, value pairs), HTTP/1.minor. */
static pn_http1_request req_with(int minor, pn_http1_header *h, size_t n)
{
    pn_http1_request q;
    memset(&q, 0, sizeof q);
    q.version_minor = minor;
    q.headers = h;
    q.num_headers = n;
    return q;
}

#define HDR(n, v)                                                                                  \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

PN_TEST(accepts_trailers)
{
    pn_http1_header plain[] = {HDR("TE", "trailers")};
    pn_http1_request q = req_with(1, plain, 1);
    PN_CHECK(pn_http1_accepts_trailers(&q));
    q.version_minor = 0; /* HTTP/1.0: never */
    PN_CHECK(!pn_http1_accepts_trailers(&q));

    pn_http1_header list[] = {HDR("host", "x"), HDR("te", "gzip;q=0.5 , TRAILERS")};
    q = req_with(1, list, 2);
    PN_CHECK(pn_http1_accepts_trailers(&q));
    pn_http1_header param[] = {HDR("Te", "deflate;q=0.1,trailers ;q=1")};
    q = req_with(1, param, 1);
    PN_CHECK(pn_http1_accepts_trailers(&q));
    /* a second TE field lists it */
    pn_http1_header two[] = {HDR("te", "gzip"), HDR("te", "trailers")};
    q = req_with(1, two, 2);
    PN_CHECK(pn_http1_accepts_trailers(&q));

    pn_http1_header no[] = {HDR("te", "gzip, trailersx, x-trailers"), HDR("trailers", "trailers"),
                            HDR("accept", "trailers")};
    q = req_with(1, no, 3);
    PN_CHECK(!pn_http1_accepts_trailers(&q));
    pn_http1_header empty[] = {HDR("te", "")};
    q = req_with(1, empty, 1);
    PN_CHECK(!pn_http1_accepts_trailers(&q));
    q = req_with(1, NULL, 0);
    PN_CHECK(!pn_http1_accepts_trailers(&q));
}

PN_TEST(trailer_forbidden)
{
    static const char *const bad[] = {
        "Content-Length",
        "transfer-encoding",
        "Trailer",
        "TE",
        "connection",
        "keep-alive",
        "upgrade",
        "Host",
        "location",
        "retry-after",
        "Authorization",
        "www-authenticate",
        "set-cookie",
        "cache-control",
        "expires",
        "date",
        "vary",
        "warning",
        "content-encoding",
        "Content-Type",
        "content-range",
        "proxy-authenticate",
        "Proxy-Authorization",
        "proxy-connection",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!pn_http1_trailer_forbidden(bad[i], strlen(bad[i])))
            fprintf(stderr, "  allowed but forbidden: %s\n", bad[i]);
        PN_CHECK(pn_http1_trailer_forbidden(bad[i], strlen(bad[i])));
    }
    static const char *const good[] = {"grpc-status", "server-timing", "content-digest",
                                       "etag",        "x-checksum",    "proxy",
                                       "tes",         "dat",           "content-lengthx"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        PN_CHECK(!pn_http1_trailer_forbidden(good[i], strlen(good[i])));
}

PN_TEST(trailers_chunked)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    pn_http1_frame f;
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 5, 0, &f), 0);
    PN_CHECK_SLICE(f.prefix, f.prefix_len, "5\r\n");
    PN_CHECK_SLICE(f.suffix, f.suffix_len, "\r\n");
    const char fields[] = "grpc-status: 0\r\nContent-Length: 9\r\nx-sum: a b\r\n"
                          "set-cookie: s=1\r\nProxy-Authenticate: x\r\nserver-timing: db;dur=5\r\n";
    const char *g = pn_guard_copy(fields, sizeof fields - 1);
    PN_CHECK_EQ_INT(pn_http1_resp_trailers(&b, &r, g, sizeof fields - 1), 0);
    CHECK_BUF(b, "0\r\ngrpc-status: 0\r\nx-sum: a b\r\nserver-timing: db;dur=5\r\n\r\n");
    PN_CHECK(r.flags & PN_RESP_FINISHED);
    PN_CHECK(!(r.flags & PN_RESP_CLOSE));
    PN_CHECK_EQ_INT(r.body_sent, 5);
    /* nothing after the end: no second section, no body */
    PN_CHECK_EQ_INT(pn_http1_resp_trailers(&b, &r, "a: b\r\n", 6), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 1, 1, &f), PN_WRITE_TOO_MUCH);

    /* no fields (or only forbidden ones): the bare last-chunk and CRLF */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, -1), 0);
    pn_buf_clear(&b);
    PN_CHECK_EQ_INT(pn_http1_resp_trailers(&b, &r, "", 0), 0);
    CHECK_BUF(b, "0\r\n\r\n");
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, -1), 0);
    pn_buf_clear(&b);
    PN_CHECK_EQ_INT(pn_http1_resp_trailers(&b, &r, "date: x\r\nvary: *\r\n", 18), 0);
    CHECK_BUF(b, "0\r\n\r\n");

    /* lines of another shape are skipped, never copied half */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, -1), 0);
    pn_buf_clear(&b);
    const char odd[] = "nocolon\r\n: empty-name\r\nbare-lf: 1\na: 1\r\ntail: 2";
    PN_CHECK_EQ_INT(pn_http1_resp_trailers(&b, &r, odd, sizeof odd - 1), 0);
    CHECK_BUF(b, "0\r\na: 1\r\n\r\n");

    /* after data already in the buffer: appended */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE, &opts_none, -1), 0);
    pn_buf_clear(&b);
    pn_buf_append(&b, "xy", 2);
    PN_CHECK_EQ_INT(pn_http1_resp_trailers(&b, &r, "a: 1\r\n", 6), 0);
    CHECK_BUF(b, "xy0\r\na: 1\r\n\r\n");
    pn_buf_free(&b);
}

PN_TEST(trailers_dropped_without_chunked)
{
    pn_buf b = PN_BUF_INIT;
    pn_http1_response r;
    pn_http1_frame f;
    /* a declared length, met: the response ends, no section */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "content-length", "3"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, -1), 0);
    pn_buf_clear(&b);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 3, 0, &f), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_trailers(&b, &r, "a: 1\r\n", 6), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    PN_CHECK(r.flags & PN_RESP_FINISHED);
    PN_CHECK(!(r.flags & PN_RESP_CLOSE));
    /* ... unmet: too little, close */
    PN_CHECK_EQ_INT(pn_http1_resp_init(&r, 200, 1, PN_RESP_KEEP_ALIVE), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_start(&b, &r), 0);
    PN_CHECK_EQ_INT(ADD(&b, &r, "content-length", "3"), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_finish_head(&b, &r, &opts_none, -1), 0);
    pn_buf_clear(&b);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 1, 0, &f), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_trailers(&b, &r, "a: 1\r\n", 6), PN_WRITE_TOO_LITTLE);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    PN_CHECK(r.flags & PN_RESP_CLOSE);
    /* HEAD, 204, 304: no body, no section */
    PN_CHECK_EQ_INT(
        head_only(&b, &r, 200, 1, PN_RESP_KEEP_ALIVE | PN_RESP_HEAD_REQUEST, &opts_none, -1), 0);
    CHECK_BUF(b, "HTTP/1.1 200 OK\r\n\r\n");
    PN_CHECK_EQ_INT(pn_http1_resp_trailers(&b, &r, "a: 1\r\n", 6), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    PN_CHECK(r.flags & PN_RESP_FINISHED);
    PN_CHECK_EQ_INT(head_only(&b, &r, 304, 1, PN_RESP_KEEP_ALIVE, &opts_none, -1), 0);
    pn_buf_clear(&b);
    PN_CHECK_EQ_INT(pn_http1_resp_trailers(&b, &r, "a: 1\r\n", 6), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    /* HTTP/1.0, close-delimited: nothing */
    PN_CHECK_EQ_INT(head_only(&b, &r, 200, 0, 0, &opts_none, -1), 0);
    pn_buf_clear(&b);
    PN_CHECK_EQ_INT(pn_http1_resp_body_frame(&r, 4, 0, &f), 0);
    PN_CHECK_EQ_INT(pn_http1_resp_trailers(&b, &r, "a: 1\r\n", 6), 0);
    PN_CHECK_EQ_INT(pn_buf_live(&b), 0);
    PN_CHECK(r.flags & PN_RESP_FINISHED);
    pn_buf_free(&b);
}

int main(void)
{
    PN_RUN(app_content_length);
    PN_RUN(known_length);
    PN_RUN(forget_length);
    PN_RUN(chunked);
    PN_RUN(http10_close_delimited);
    PN_RUN(http10_keep_alive);
    PN_RUN(head_request);
    PN_RUN(no_content_and_not_modified);
    PN_RUN(app_connection);
    PN_RUN(app_date_server);
    PN_RUN(transfer_encoding_dropped);
    PN_RUN(duplicate_content_length);
    PN_RUN(bad_content_length);
    PN_RUN(too_much_too_little);
    PN_RUN(bad_header_names);
    PN_RUN(bad_header_values);
    PN_RUN(bad_status);
    PN_RUN(status_lines);
    PN_RUN(reason_table);
    PN_RUN(write_simple);
    PN_RUN(appends_after_existing_data);
    PN_RUN(date_format);
    PN_RUN(date_cache);
    PN_RUN(accepts_trailers);
    PN_RUN(trailer_forbidden);
    PN_RUN(trailers_chunked);
    PN_RUN(trailers_dropped_without_chunked);
    return pn_test_summary();
}
