"""Response trailers: the ASGI http.response.trailers extension (docs/asgi.md,
"Response trailers"), through the real server.  HTTP/1.1 over raw sockets,
so the chunked framing and the trailer section (RFC 9112 §7.1.2) are
checked byte for byte; h11 reads one response as a client library would;
HTTP/2 with the h2 package (trailers: a HEADERS frame with END_STREAM after
the DATA, RFC 9113 §8.1)."""

import json
import socket
import uuid
import zlib

import h11
import pytest

from tests.apps.trailers import BIG
from tests.server import TLS, build_request, tls_client_context, wait_record

APP = "tests.apps.trailers:app"
TE = ("TE", "trailers")


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory(APP)


@pytest.fixture
def token():
    return uuid.uuid4().hex


def head_and_rest(c, method, target, headers=(), version="HTTP/1.1"):
    """Send one request on RawConn c; return its head (bytes) and its fields
    (lower-cased name -> first value), leaving the body unread."""
    c.send(build_request(method, target, headers, version=version))
    head = c.read_until(b"\r\n\r\n")
    names = {}
    for line in head.split(b"\r\n")[1:-2]:
        k, _, v = line.decode("latin-1").partition(":")
        names.setdefault(k.strip().lower(), v.strip())
    return head, names


def still_serving(c):
    """The connection carries another request: the last response ended
    where its framing said."""
    resp = c.request("GET", "/")
    assert resp.status == 200 and resp.body == b"ok"


@pytest.fixture
def rec(record_dir):
    """rec(token, last_step) -> {step: outcome}, once the app recorded last_step."""

    def get(token, last):
        lines = wait_record(record_dir, token, last + ":")
        return dict(line.split(": ", 1) for line in lines)

    return get


# -- the offer ------------------------------------------------------------------


def scope_of(c, headers=(), version="HTTP/1.1"):
    c.send(build_request("GET", "/scope", headers, version=version))
    resp = c.read_response()
    assert resp.status == 200
    return json.loads(resp.body)


@pytest.mark.parametrize(
    "te, offered",
    [
        (None, False),
        ("trailers", True),
        ("Trailers", True),
        ("gzip;q=0.5, trailers", True),
        ("deflate, gzip", False),
        ("trailersx", False),
        ("", False),
    ],
)
def test_offered_only_when_the_request_says_te_trailers(server, te, offered):
    with server.connect() as c:
        scope = scope_of(c, [] if te is None else [("TE", te)])
    assert scope["offered"] is offered
    if offered:
        assert scope["value"] == {}


def test_offer_is_per_request_on_a_keep_alive_connection(server):
    with server.connect() as c:
        assert scope_of(c, [TE])["offered"] is True
        assert scope_of(c)["offered"] is False
        assert scope_of(c, [("Connection", "TE"), TE])["offered"] is True


def test_http10_is_never_offered(server, token, rec):
    with server.connect() as c:
        assert scope_of(c, [TE], version="HTTP/1.0")["offered"] is False
    # The app asks for trailers anyway: accepted, dropped; the body is
    # close-delimited (no chunked coding in HTTP/1.0) and ends at the close.
    with server.connect() as c:
        head, h = head_and_rest(c, "GET", f"/basic?token={token}", [TE], version="HTTP/1.0")
        assert "transfer-encoding" not in h and "content-length" not in h
        assert c.read_to_eof() == b"hello"
    assert set(rec(token, "trailers").values()) == {"ok"}


# -- the trailer section on the wire ---------------------------------------------


def test_trailer_section_on_the_wire(server, token, rec):
    with server.connect() as c:
        head, h = head_and_rest(c, "GET", f"/basic?token={token}", [TE])
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert h["transfer-encoding"] == "chunked" and "content-length" not in h
        want = b"3\r\nhel\r\n2\r\nlo\r\n0\r\nx-checksum: abc\r\ngrpc-status: 0\r\n\r\n"
        assert c.read_exact(len(want)) == want
        still_serving(c)
    assert rec(token, "trailers") == {"start": "ok", "body1": "ok", "body2": "ok", "trailers": "ok"}


def test_several_trailers_messages_accumulate(server, token, rec):
    with server.connect() as c:
        head_and_rest(c, "GET", f"/several?token={token}", [TE])
        # Content-Length and Set-Cookie are not trailers (RFC 9110 §6.5.1):
        # dropped; an empty message adds nothing.
        want = b"4\r\ndata\r\n0\r\na: 1\r\nb: 2\r\nc: 3 ; x\r\n\r\n"
        assert c.read_exact(len(want)) == want
        still_serving(c)
    assert set(rec(token, "t4").values()) == {"ok"}


def test_h11_reads_the_trailers(server, token):
    """A client library's view: h11 parses the response, trailers and all."""
    conn = h11.Connection(h11.CLIENT)
    with server.connect() as c:
        c.send(conn.send(h11.Request(method="GET", target=f"/basic?token={token}",
                                     headers=[("Host", "127.0.0.1"), TE])))
        body, trailers = b"", None
        while trailers is None:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                c._fill()
                conn.receive_data(c.buf)
                c.buf = b""
            elif isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                trailers = list(ev.headers)
    assert body == b"hello"
    assert trailers == [(b"x-checksum", b"abc"), (b"grpc-status", b"0")]


def test_start_without_headers_key(server, token, rec):
    with server.connect() as c:
        head_and_rest(c, "GET", f"/no-headers?token={token}", [TE])
        want = b"4\r\nbare\r\n0\r\na: 1\r\n\r\n"
        assert c.read_exact(len(want)) == want
        still_serving(c)
    assert set(rec(token, "trailers").values()) == {"ok"}


def test_empty_body_then_trailers(server, token, rec):
    with server.connect() as c:
        head, h = head_and_rest(c, "GET", f"/empty?token={token}", [TE])
        assert h["transfer-encoding"] == "chunked"
        want = b"0\r\na: 1\r\n\r\n"
        assert c.read_exact(len(want)) == want
        still_serving(c)
    assert set(rec(token, "trailers").values()) == {"ok"}


# -- errors in the app's send() ---------------------------------------------------


def test_bad_field_raises_in_send(server, token, rec):
    with server.connect() as c:
        head_and_rest(c, "GET", f"/bad?token={token}", [TE])
        # Nothing of a refused message goes out ("good: 2" came with the bad
        # name); the last message still ends the response.
        want = b"1\r\nx\r\n0\r\nok: 1\r\nfinal: yes\r\n\r\n"
        assert c.read_exact(len(want)) == want
        still_serving(c)
    r = rec(token, "last")
    assert r["t1"] == "ok" and r["last"] == "ok"
    assert r["bad-name"].startswith("error: invalid response trailer b'bad name'")
    assert r["bad-value"].startswith("error: invalid response trailer b'x'")
    assert r["not-bytes"] == "error: each trailer must be a (name, value) pair of bytes"


def test_trailers_without_asking_raise(server, token, rec):
    with server.connect() as c:
        resp = c.request("GET", f"/not-asked?token={token}", [TE])
        assert resp.body == b"plain" and resp.trailers == []
        still_serving(c)
    r = rec(token, "trailers")
    assert r["body"] == "ok"
    assert r["trailers"].startswith("error: Unexpected ASGI message 'http.response.trailers' "
                                    "sent, without 'trailers': True")


def test_trailers_out_of_order_raise(server, token, rec):
    with server.connect() as c:
        head_and_rest(c, "GET", f"/early?token={token}", [TE])
        want = b"4\r\nlate\r\n0\r\na: 2\r\n\r\n"
        assert c.read_exact(len(want)) == want
        still_serving(c)
    r = rec(token, "body-after")
    assert r["trailers-early"].startswith("error: Unexpected ASGI message "
                                          "'http.response.trailers' sent, before the final")
    assert r["body"] == "ok" and r["trailers"] == "ok"
    assert r["trailers-after"].startswith("error: Unexpected ASGI message "
                                          "'http.response.trailers' sent, after response")
    assert r["body-after"].startswith("error: Unexpected ASGI message 'http.response.body' "
                                      "sent, after response")


def test_body_after_the_final_body_raises(server, token, rec):
    with server.connect() as c:
        head_and_rest(c, "GET", f"/second-body?token={token}", [TE])
        want = b"3\r\none\r\n0\r\na: 1\r\n\r\n"
        assert c.read_exact(len(want)) == want
        still_serving(c)
    r = rec(token, "trailers")
    assert r["body-again"].startswith("error: Unexpected ASGI message 'http.response.body'")
    assert r["trailers"] == "ok"


def test_trailers_before_start_raise(server, token, rec):
    with server.connect() as c:
        resp = c.request("GET", f"/before-start?token={token}", [TE])
        assert resp.body == b"no"
    assert rec(token, "trailers")["trailers"].startswith(
        "error: Unexpected ASGI message 'http.response.trailers' sent, before "
        "'http.response.start'")


def test_app_that_never_sends_the_trailers_truncates(server, token, rec):
    """The final body alone does not end a trailers response: an app that
    returns there leaves it incomplete, and the client must see that (no
    last-chunk, the connection closes)."""
    with server.connect() as c:
        head_and_rest(c, "GET", f"/unfinished?token={token}", [TE])
        assert c.read_to_eof() == b"6\r\nno end\r\n"
    assert rec(token, "body")["body"] == "ok"


# -- where trailers are dropped ------------------------------------------------------


def test_not_offered_the_final_body_ends_and_trailers_are_dropped(server, token, rec):
    with server.connect() as c:
        head_and_rest(c, "GET", f"/basic?token={token}")
        want = b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
        assert c.read_exact(len(want)) == want
        still_serving(c)
    assert set(rec(token, "trailers").values()) == {"ok"}


def test_content_length_drops_the_trailers(server, token, rec):
    with server.connect() as c:
        head, h = head_and_rest(c, "GET", f"/length?token={token}", [TE])
        assert h["content-length"] == "6" and "transfer-encoding" not in h
        assert c.read_exact(6) == b"sized!"
        still_serving(c)
    assert set(rec(token, "trailers").values()) == {"ok"}


def test_pathsend_ends_the_response(server, token, rec):
    import tests.apps.trailers as trailers_app

    data = open(trailers_app.__file__, "rb").read()
    with server.connect() as c:
        resp = c.request("GET", f"/pathsend?token={token}", [TE])
        assert resp.body == data and resp.header("content-length") == str(len(data))
        still_serving(c)
    assert set(rec(token, "trailers").values()) == {"ok"}


def test_head(server, token, rec):
    with server.connect() as c:
        head, h = head_and_rest(c, "HEAD", f"/basic?token={token}", [TE])
        assert "transfer-encoding" not in h and "content-length" not in h
        # no body, no trailer section: the next response follows at once
        still_serving(c)
    assert set(rec(token, "trailers").values()) == {"ok"}


# -- with compression ---------------------------------------------------------------


def read_chunks(c):
    """The chunks of a chunked body, then the trailer section, exactly."""
    chunks = []
    while True:
        size = int(c.read_until(b"\r\n")[:-2], 16)
        if size == 0:
            return chunks, c.read_until(b"\r\n\r\n")
        chunks.append(c.read_exact(size))
        assert c.read_exact(2) == b"\r\n"


@pytest.mark.parametrize("path", ["/big", "/big-one"])
def test_compression_then_trailers(server, token, rec, path):
    """The encoder's final bytes go out before the last-chunk: the gzip
    stream is complete, then the trailer section ends the response."""
    with server.connect() as c:
        head, h = head_and_rest(c, "GET", f"{path}?token={token}",
                                [TE, ("Accept-Encoding", "gzip")])
        assert h["content-encoding"] == "gzip" and h["transfer-encoding"] == "chunked"
        chunks, section = read_chunks(c)
        assert section == b"x-sum: 11200\r\n\r\n"
        d = zlib.decompressobj(wbits=31)
        assert d.decompress(b"".join(chunks)) == BIG
        assert d.eof and d.unused_data == b""
        still_serving(c)
    assert set(rec(token, "trailers").values()) == {"ok"}


# -- HTTP/2 --------------------------------------------------------------------------


def h2_get(server, path, extra=(), method="GET"):
    """One request over HTTP/2 (prior knowledge on cleartext; ALPN h2 under
    POUNCE_TEST_TLS=1); returns the events of its stream until it ended (or
    was reset)."""
    import h2.config
    import h2.connection
    import h2.events

    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    if TLS:
        ctx = tls_client_context()
        ctx.set_alpn_protocols(["h2"])
        sock = ctx.wrap_socket(sock, server_hostname="127.0.0.1")
        assert sock.selected_alpn_protocol() == "h2"
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.send_headers(1, [(":method", method), (":path", path), (":scheme", "http"),
                              (":authority", "127.0.0.1"), *extra], end_stream=True)
        sock.sendall(conn.data_to_send())
        events = []
        while not any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
                      for e in events):
            data = sock.recv(65536)
            assert data, f"connection closed; events so far: {events}"
            for e in conn.receive_data(data):
                events.append(e)
                if isinstance(e, h2.events.DataReceived):
                    conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            sock.sendall(conn.data_to_send())
        return events
    finally:
        sock.close()


def test_http2_offered_always(server):
    import h2.events

    events = h2_get(server, "/scope")
    body = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    scope = json.loads(body)
    assert scope == {"offered": True, "value": {}, "http_version": "2"}


def test_http2_trailers_are_a_headers_frame_after_the_data(server, token, rec):
    import h2.events

    events = h2_get(server, f"/several?token={token}")
    kinds = [type(e).__name__ for e in events if not isinstance(
        e, (h2.events.RemoteSettingsChanged, h2.events.SettingsAcknowledged,
            h2.events.WindowUpdated, h2.events.PingReceived))]
    assert kinds == ["ResponseReceived", "DataReceived", "TrailersReceived", "StreamEnded"], kinds
    data = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert data == b"data"
    (tr,) = [e for e in events if isinstance(e, h2.events.TrailersReceived)]
    assert tr.stream_ended is not None
    assert list(tr.headers) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3 ; x")]
    assert set(rec(token, "t4").values()) == {"ok"}


def test_http2_bad_field_raises_and_the_rest_goes(server, token, rec):
    import h2.events

    events = h2_get(server, f"/bad?token={token}")
    (tr,) = [e for e in events if isinstance(e, h2.events.TrailersReceived)]
    assert list(tr.headers) == [(b"ok", b"1"), (b"final", b"yes")]
    r = rec(token, "last")
    assert r["bad-name"].startswith("error: invalid response trailer")


def h2_parts(events):
    """(response headers, body, trailers or None, how the stream ended)."""
    import h2.events

    resp = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    body = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    trailers = [list(e.headers) for e in events if isinstance(e, h2.events.TrailersReceived)]
    end = events[-1]
    return dict(resp.headers), body, trailers[0] if trailers else None, type(end).__name__


def test_http2_empty_body_length_and_compression(server, token, rec):
    h, body, tr, end = h2_parts(h2_get(server, f"/empty?token={token}e"))
    assert (body, tr, end) == (b"", [(b"a", b"1")], "StreamEnded")
    # HTTP/2 frames the body itself: a declared length keeps the trailers.
    h, body, tr, end = h2_parts(h2_get(server, f"/length?token={token}l"))
    assert h[b"content-length"] == b"6"
    assert (body, tr, end) == (b"sized!", [(b"a", b"1")], "StreamEnded")
    for path in ("/big", "/big-one"):
        h, body, tr, end = h2_parts(h2_get(server, f"{path}?token={token}",
                                           [("accept-encoding", "gzip")]))
        assert h[b"content-encoding"] == b"gzip"
        d = zlib.decompressobj(wbits=31)
        assert d.decompress(body) == BIG and d.eof
        assert (tr, end) == ([(b"x-sum", b"11200")], "StreamEnded")


def test_http2_head_and_unfinished(server, token, rec):
    # HEAD: no content, no trailers (as over HTTP/1.1)
    h, body, tr, end = h2_parts(h2_get(server, f"/basic?token={token}", method="HEAD"))
    assert h[b":status"] == b"200" and (body, tr, end) == (b"", None, "StreamEnded")
    assert set(rec(token, "trailers").values()) == {"ok"}
    # The app returns after the final body: the stream must not look
    # complete (RST_STREAM, not END_STREAM; the body queued before it may
    # be dropped with the stream).
    events = h2_get(server, f"/unfinished?token={token}u")
    names = [type(e).__name__ for e in events]
    assert names[-1] == "StreamReset" and "StreamEnded" not in names
    assert "TrailersReceived" not in names
