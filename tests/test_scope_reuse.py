"""What the server reuses from one request's scope to the next (issue 17,
item 4): the client tuple of a socket peer is made once per address and
port and shared, header names are shared bytes objects, and a header's
(name, value) pair and the path/raw_path come from a small per-worker cache
when a request repeats them (never a credential's); nothing an app can
change may leak into another request, nothing is ever handed to the wrong
request, and the app still runs in an asyncio Task of the worker's loop."""

from __future__ import annotations

import gzip
import json
import random
import urllib.parse

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


def get(conn, target: str, headers: list[tuple[str, str]]) -> dict:
    conn.send(build_request("GET", target, headers=headers))
    resp = conn.read_response()
    assert resp.status == 200, resp.body
    return json.loads(resp.body)


def test_repeated_fields_share_pairs_but_never_credentials(server):
    fields = [("User-Agent", "t"), ("Accept", "*/*"), ("Cookie", "session=s3cret"),
              ("Authorization", "Bearer s3cret"), ("Proxy-Authorization", "Basic czNjcmV0"),
              ("X-Long", "v" * 100), ("X-" + "n" * 80, "v")]
    with server.connect() as c:
        get(c, "/p?keep", fields)
        seen = get(c, "/p?compare", fields)
    # A repeated short field is the same tuple; a credential, a long value
    # or a long name is made again for each request (not kept past it).
    assert seen["same"] == {"host": True, "user-agent": True, "accept": True, "cookie": False,
                            "authorization": False, "proxy-authorization": False,
                            "x-long": False, "x-" + "n" * 80: False}, seen["same"]
    assert seen["same_path"] is True and seen["same_raw_path"] is True


def test_cached_parts_never_reach_the_wrong_request(server):
    # Values and paths built to land in the same cache slots (same length,
    # same middle and last byte) but differing elsewhere or only in case,
    # names in any case, long values, percent-escapes: every request must
    # see exactly what it sent, through hits, misses and replaced slots.
    rng = random.Random(17)
    values = ["aXa", "bXa", "AXa", "aXA", "", "x", "X", "1", "v" * 64, "w" * 64, "v" * 65,
              "127.0.0.1:8000", "127.0.0.2:8000"]
    names = ["X-Test", "x-test", "X-TEST", "X-Tesu", "Accept"]
    paths = ["/a1b", "/z1b", "/A1b", "/a1B", "/%41", "/A", "/", "/a" * 70, "/b" * 70,
             "/caf%C3%A9", "/caf%c3%a9"]
    with server.connect() as c1, server.connect() as c2:
        for i in range(400):
            conn = c1 if i % 3 else c2
            fields = [(rng.choice(names), rng.choice(values)) for _ in range(rng.randint(0, 4))]
            target = rng.choice(paths)
            seen = get(conn, target, fields)
            want = [["host", "127.0.0.1"]] + [[n.lower(), v] for n, v in fields]
            assert seen["headers"] == want, (i, fields)
            assert seen["raw_path"] == target, (i, target)
            assert seen["path"] == urllib.parse.unquote(target), (i, target)


def test_root_path_in_cached_paths(server_factory):
    srv = server_factory(APP, "--root-path", "/mnt")
    with srv.connect() as c:
        for target in ["/x", "/x", "/y", "/x"]:
            seen = get(c, target, [])
            assert (seen["path"], seen["raw_path"]) == ("/mnt" + target, "/mnt" + target)
