"""Malformed and oversized requests (RFC 9112 strict parsing, design.md
"HTTP/1.1 policy").  Each bad request must get its exact status, the
connection must be closed, and the server must go on serving: after every
case a normal request on a new connection succeeds.
"""

import time

import pytest

from tests.server import ConnectionClosed, assert_serving

APP = "tests.apps.protocol:app"

# Limits of the `limits_server` below; the cases are sized against them.
MAX_HEADERS = 20
MAX_HEADER_SIZE = 4096
MAX_REQUEST_LINE = 1024
MAX_REQUEST_SIZE = 1000

H = b"Host: t\r\n"


def chunked_post(body: bytes) -> bytes:
    return b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body


# (id, request bytes, status).  These are all syntax errors: any server must
# refuse them, whatever its size limits.
SYNTAX_CASES = [
    # RFC 9112 §2.2: we accept CRLF only (design: strict, like nginx).
    ("bare_lf_everywhere", b"GET / HTTP/1.1\nHost: t\n\n", 400),
    ("bare_lf_request_line", b"GET / HTTP/1.1\n" + H + b"\r\n", 400),
    ("bare_lf_in_headers", b"GET / HTTP/1.1\r\nHost: t\nX-A: 1\r\n\r\n", 400),
    ("bare_cr", b"GET / HTTP/1.1\r\nHost: t\rX-A: 1\r\n\r\n", 400),
    # RFC 9112 §5.2: obs-fold rejected with 400.
    ("obs_fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n", 400),
    ("obs_fold_tab", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n\tb\r\n\r\n", 400),
    # RFC 9112 §5.1: no whitespace between field name and colon.
    ("space_before_colon", b"GET / HTTP/1.1\r\n" + H + b"X-A : 1\r\n\r\n", 400),
    ("space_before_colon_host", b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    # RFC 9110 §5.5: NUL and other CTLs are not field-value characters.
    ("nul_in_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400),
    ("ctl_in_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", 400),
    ("nul_in_name", b"GET / HTTP/1.1\r\n" + H + b"X\x00A: 1\r\n\r\n", 400),
    # RFC 9110 §5.1: field names are tokens.
    ("non_token_name", b"GET / HTTP/1.1\r\n" + H + b"X(A): 1\r\n\r\n", 400),
    ("empty_name", b"GET / HTTP/1.1\r\n" + H + b": 1\r\n\r\n", 400),
    ("bad_method", b"G@T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    # RFC 9112 §6.3: CL with TE is a smuggling vector; reject.
    (
        "cl_and_te",
        b"POST /echo HTTP/1.1\r\n" + H
        + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    # RFC 9112 §6.3: duplicate or malformed Content-Length.
    ("duplicate_cl_same", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
    ("duplicate_cl_differ", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("cl_list", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello", 400),
    ("cl_plus_sign", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", 400),
    ("cl_not_a_number", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: five\r\n\r\n", 400),
    ("cl_negative", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    # RFC 9112 §6.1: a transfer coding the server does not understand → 501.
    ("te_gzip", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    # RFC 9112 §7: chunked must not be applied twice.
    ("te_chunked_twice", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    # RFC 9110 §6.2 / RFC 9112 §2.3: versions.
    ("version_1_2", b"GET / HTTP/1.2\r\n" + H + b"\r\n", 505),
    ("version_2_0", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("version_garbage", b"GET / HTTX/1.1\r\n" + H + b"\r\n", 400),
    ("version_no_minor", b"GET / HTTP/11\r\n" + H + b"\r\n", 400),
    ("version_trailing", b"GET / HTTP/1.1x\r\n" + H + b"\r\n", 400),
    ("request_line_extra_space", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    # RFC 9112 §3.2: exactly one Host in a 1.1 request.
    ("missing_host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("duplicate_host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    # RFC 9112 §7.1: chunk framing.
    ("chunk_size_not_hex", chunked_post(b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_negative", chunked_post(b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_size_empty", chunked_post(b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk_missing_crlf", chunked_post(b"3\r\nabcXY0\r\n\r\n"), 400),
    ("chunk_bare_lf", chunked_post(b"3\nabc\n0\n\n"), 400),
]

# Cases uvicorn (httptools/llhttp) accepts or answers differently; only the
# exact-status test, which is pounce_only anyway, covers them there.
UVICORN_LENIENT = {"version_2_0", "request_line_extra_space", "missing_host", "duplicate_host"}


@pytest.fixture(scope="module")
def plain_server(module_server_factory):
    return module_server_factory(APP)


@pytest.fixture(scope="module")
def limits_server(module_server_factory):
    return module_server_factory(
        APP,
        f"--max-headers={MAX_HEADERS}",
        f"--max-header-size={MAX_HEADER_SIZE}",
        f"--max-request-line={MAX_REQUEST_LINE}",
        f"--max-request-size={MAX_REQUEST_SIZE}",
    )


def send_bad(server, data: bytes):
    """Send `data`; return (response or None if closed without one, closed?)."""
    with server.connect() as c:
        c.send(data)
        try:
            resp = c.read_response()
        except ConnectionClosed:
            return None, True
        return resp, c.wait_closed(3)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            d,
            id=name,
            marks=[pytest.mark.pounce_only("uvicorn accepts this")] if name in UVICORN_LENIENT else [],
        )
        for name, d, _ in SYNTAX_CASES
    ],
)
def test_malformed_request_is_refused_and_nothing_is_lost(plain_server, data):
    resp, closed = send_bad(plain_server, data)
    assert resp is None or resp.status >= 400, f"accepted: {resp.status} {resp.body!r}"
    assert closed
    assert_serving(plain_server)


@pytest.mark.pounce_only("exact status codes are Pounce policy")
@pytest.mark.parametrize("data,status", [pytest.param(d, s, id=n) for n, d, s in SYNTAX_CASES])
def test_malformed_request_gets_exact_status(limits_server, data, status):
    resp, closed = send_bad(limits_server, data)
    assert resp is not None, "closed without an error response"
    assert resp.status == status, resp.body
    assert closed, "the connection must be closed after a parse error"
    assert_serving(limits_server)


# -- size limits ----------------------------------------------------------------------

limits_only = pytest.mark.pounce_only("--max-* options are Pounce's")


def headers(n: int, value_len: int = 8) -> bytes:
    return b"".join(b"X-H%d: %s\r\n" % (i, b"v" * value_len) for i in range(n))


@limits_only
def test_request_line_too_long_is_414(limits_server):
    target = b"/" + b"a" * (MAX_REQUEST_LINE + 10)
    resp, closed = send_bad(limits_server, b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n")
    assert resp is not None and resp.status == 414
    assert closed
    assert_serving(limits_server)


@limits_only
def test_request_line_at_limit_is_served(limits_server):
    # "GET " + target + " HTTP/1.1" is exactly MAX_REQUEST_LINE bytes.
    target = b"/" + b"a" * (MAX_REQUEST_LINE - len(b"GET  HTTP/1.1") - 1)
    with limits_server.connect() as c:
        c.send(b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n")
        assert c.read_response().status == 404  # served by the app


@limits_only
def test_too_many_headers_is_431(limits_server):
    data = b"GET / HTTP/1.1\r\n" + H + headers(MAX_HEADERS) + b"\r\n"  # one over
    resp, closed = send_bad(limits_server, data)
    assert resp is not None and resp.status == 431
    assert closed
    assert_serving(limits_server)


@limits_only
def test_max_headers_exactly_is_served(limits_server):
    with limits_server.connect() as c:
        c.send(b"GET / HTTP/1.1\r\n" + H + headers(MAX_HEADERS - 1) + b"\r\n")
        assert c.read_response().status == 200


@limits_only
def test_head_too_large_is_431(limits_server):
    data = b"GET / HTTP/1.1\r\n" + H + headers(3, MAX_HEADER_SIZE // 2) + b"\r\n"
    resp, closed = send_bad(limits_server, data)
    assert resp is not None and resp.status == 431
    assert closed
    assert_serving(limits_server)


@limits_only
def test_declared_body_over_limit_is_413_before_reading_it(limits_server):
    # Only the head is sent: the server must answer without waiting for
    # the body it will never accept.
    with limits_server.connect(timeout=3) as c:
        c.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % (MAX_REQUEST_SIZE * 100))
        t0 = time.monotonic()
        resp = c.read_response()
        assert resp.status == 413
        assert time.monotonic() - t0 < 2
        assert c.wait_closed()
    assert_serving(limits_server)


@limits_only
def test_body_at_limit_is_accepted(limits_server):
    with limits_server.connect() as c:
        body = b"b" * MAX_REQUEST_SIZE
        resp = c.request("POST", "/echo", body=body)
        assert (resp.status, resp.body) == (200, body)


@limits_only
def test_chunked_body_over_limit_is_413(limits_server):
    chunk = b"c" * 600
    body = b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n"
    resp, closed = send_bad(limits_server, chunked_post(body))
    assert resp is not None and resp.status == 413
    assert closed
    assert_serving(limits_server)


@limits_only
def test_chunk_size_overflow_is_refused(limits_server):
    # A size that overflows 64 bits must not wrap into a small number.
    resp, closed = send_bad(limits_server, chunked_post(b"1" + b"0" * 16 + b"5\r\nhello\r\n0\r\n\r\n"))
    assert resp is not None and resp.status in (400, 413)
    assert closed
    assert_serving(limits_server)
