"""What the server reuses from one request's scope to the next (issue 17,
item 4): the client tuple of a socket peer is made once per address and
port and shared, header names are shared bytes objects; nothing an app can
change may leak into another request, and the app still runs in an
asyncio Task of the worker's loop."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.server import build_request

APP = "tests.apps.scope_reuse:app"


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory(APP)


def ask(conn, extra: str = "") -> dict:
    conn.send(build_request("GET", "/", headers=[("User-Agent", "t"), ("X-Seq", extra)]))
    resp = conn.read_response()
    assert resp.status == 200, resp.body
    return json.loads(resp.body)


def test_client_is_each_connections_own(server):
    # More connections than the worker's cache has slots, asked in turn
    # and then again in reverse order, so slots are shared and replaced.
    conns = [server.connect() for _ in range(70)]
    try:
        for rnd in range(2):
            for c in conns if rnd == 0 else reversed(conns):
                seen = ask(c)
                assert seen["client"] == ["127.0.0.1", c.local_port]
                assert seen["client_type"] == "tuple"
    finally:
        for c in conns:
            c.close()


def test_app_changes_do_not_leak_into_the_next_request(server):
    with server.connect() as c:
        first = ask(c, "1")
        second = ask(c, "2")
    for seen in (first, second):
        assert "leak" not in seen["keys"]
        assert "leak" not in seen["asgi"]
        assert "leak" not in seen["extensions"]
        for v in seen["extensions"].values():
            assert not (isinstance(v, dict) and "leak" in v), seen["extensions"]
        assert ["leak", "1"] not in seen["headers"]
    assert second["headers"][-1] == ["x-seq", "2"]
    assert first["asgi"] == second["asgi"] and first["asgi"]["version"] == "3.0"
    assert first["extensions"] == second["extensions"]
    assert first["client"] == second["client"]


def test_app_runs_in_a_task_of_the_running_loop(server):
    with server.connect() as c:
        for _ in range(3):
            seen = ask(c)
            assert seen["is_task"] is True
            assert seen["task_loop_is_running_loop"] is True


def test_decoded_body_leaves_its_framing_fields_out(server_factory):
    # --decompress-requests: the scope drops Content-Encoding and
    # Content-Length (they described the wire bytes); the list the app gets
    # holds the other fields only, in order, with nothing left empty.
    srv = server_factory(APP, "--decompress-requests")
    body = gzip.compress(b"x" * 100)
    with srv.connect() as c:
        c.send(build_request("POST", "/", headers=[("Content-Encoding", "gzip"), ("X-A", "1"),
                                                   ("Content-Length", str(len(body))), ("X-B", "2")],
                             body=body))
        resp = c.read_response()
    assert resp.status == 200, resp.body
    assert json.loads(resp.body)["headers"] == [["host", "127.0.0.1"], ["x-a", "1"], ["x-b", "2"]]
