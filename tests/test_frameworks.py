"""Real frameworks on the real server, driven with httpx and with curl.

The three apps in tests/apps/{starlette,fastapi,django}_app.py serve the
same URLs:

  GET  /json                  {"hello": "world", "framework": NAME}
  POST /json                  echoes a JSON object: {"received": ..., "keys": [...]}
  GET  /items/<int>?q=        {"item_id": int, "q": str|null}
  POST /upload                multipart: name field + file → size and sha256
  GET  /stream                10 lines, streamed
  GET  /state                 lifespan state (Starlette and FastAPI only)
  GET  /background?token=     records "background-done" after responding
                              (Starlette and FastAPI only)
  GET  /wait-disconnect?token=  records "disconnected" when the client leaves
"""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid

import httpx
import pytest

from tests.server import build_request, wait_record

FRAMEWORKS = ["starlette", "fastapi", "django"]
HAS_LIFESPAN = {"starlette", "fastapi"}


@pytest.fixture(scope="module", params=FRAMEWORKS)
def fw(request, module_server_factory):
    """(framework name, server) — one server per framework for the module."""
    return request.param, module_server_factory(f"tests.apps.{request.param}_app:app", timeout=20)


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as c:
        yield c


@pytest.fixture
def token():
    return uuid.uuid4().hex


# -- httpx --------------------------------------------------------------------------


def test_json_get(fw, client):
    name, srv = fw
    resp = client.get(f"{srv.url}/json")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == {"hello": "world", "framework": name}


def test_json_post(fw, client):
    _, srv = fw
    payload = {"name": "café ☕", "count": 3, "tags": ["a", "b"]}
    resp = client.post(f"{srv.url}/json", json=payload)
    assert resp.status_code == 200
    assert resp.json() == {"received": payload, "keys": ["count", "name", "tags"]}


def test_path_and_query_parameters(fw, client):
    _, srv = fw
    resp = client.get(f"{srv.url}/items/42", params={"q": "a b&c"})
    assert resp.json() == {"item_id": 42, "q": "a b&c"}
    assert client.get(f"{srv.url}/items/7").json() == {"item_id": 7, "q": None}


def test_bad_path_parameter_is_a_client_error(fw, client):
    name, srv = fw
    resp = client.get(f"{srv.url}/items/not-a-number")
    assert resp.status_code == (422 if name == "fastapi" else 404)


def test_multipart_upload(fw, client):
    _, srv = fw
    data = os.urandom(300_000)
    resp = client.post(
        f"{srv.url}/upload",
        data={"name": "Ünïcode name"},
        files={"file": ("payload.bin", data, "application/octet-stream")},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "name": "Ünïcode name",
        "filename": "payload.bin",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_streaming_response(fw, client):
    _, srv = fw
    with client.stream("GET", f"{srv.url}/stream") as resp:
        assert resp.status_code == 200
        assert resp.headers.get("transfer-encoding") == "chunked"
        pieces = list(resp.iter_text())
    assert "".join(pieces) == "".join(f"line {i}\n" for i in range(10))


def test_lifespan_state(fw, client):
    name, srv = fw
    if name not in HAS_LIFESPAN:
        pytest.skip(f"{name} has no lifespan state")
    for _ in range(2):
        assert client.get(f"{srv.url}/state").json() == {"greeting": "hello from lifespan"}


def test_background_task_runs_after_response(fw, client, token, record_dir):
    name, srv = fw
    if name not in HAS_LIFESPAN:
        pytest.skip(f"{name} has no background tasks")
    resp = client.get(f"{srv.url}/background", params={"token": token})
    assert resp.json() == {"queued": True}
    wait_record(record_dir, token, "background-done")


def test_client_disconnect_reaches_the_app(fw, token, record_dir):
    _, srv = fw
    c = srv.connect()
    c.send(build_request("GET", f"/wait-disconnect?token={token}"))
    wait_record(record_dir, token, "started")
    time.sleep(0.1)
    c.close()
    lines = wait_record(record_dir, token, "disconnected")
    assert "timeout" not in lines
    # And the server serves on.
    with httpx.Client(timeout=5) as client:
        assert client.get(f"{srv.url}/json").status_code == 200


@pytest.mark.tcp_only("a TLS client cannot half-close (Python's SSLSocket.shutdown drops the session)")
@pytest.mark.pounce_only("uvicorn may drop the answer to a half-closed request")
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_half_closed_request_is_answered(fw, method):
    # `nc -N` and some health checkers send the request, then shut their
    # write side and read.  Django drops its view when it hears
    # http.disconnect, so a FIN must not be reported as one.
    name, srv = fw
    payload = {"name": "nc", "count": 1, "tags": []}
    body = json.dumps(payload).encode() if method == "POST" else b""
    headers = [("Content-Type", "application/json")] if body else []
    for _ in range(5):
        with srv.connect(timeout=10) as c:
            c.send(build_request(method, "/json", headers, body=body))
            c.sock.shutdown(socket.SHUT_WR)
            resp = c.read_response()
            while resp.status == 100:  # the half-close probe, when the app listened
                resp = c.read_response()
            assert resp.status == 200, resp
            got = json.loads(resp.body)
            if method == "GET":
                assert got == {"hello": "world", "framework": name}
            else:
                assert got["received"] == payload
            assert c.wait_closed(timeout=5)


# -- curl ---------------------------------------------------------------------------

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed (make deps installs it)")


def curl(*args: str) -> str:
    out = subprocess.run(
        [CURL, "-sS", "--max-time", "10", *args], capture_output=True, timeout=15, check=False
    )
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


@needs_curl
def test_curl_json(fw):
    name, srv = fw
    assert json.loads(curl(f"{srv.url}/json")) == {"hello": "world", "framework": name}
    body = curl("-H", "Content-Type: application/json", "-d", '{"name": "x", "count": 1, "tags": []}',
                f"{srv.url}/json")
    assert json.loads(body)["received"] == {"name": "x", "count": 1, "tags": []}


@needs_curl
def test_curl_query_and_keep_alive(fw):
    # Two URLs in one curl run reuse the connection.
    _, srv = fw
    out = curl(f"{srv.url}/items/1?q=one", f"{srv.url}/items/2?q=two")
    first, second = out.replace("}{", "}\n{").splitlines()
    assert json.loads(first) == {"item_id": 1, "q": "one"}
    assert json.loads(second) == {"item_id": 2, "q": "two"}


@needs_curl
def test_curl_upload(fw, tmp_path):
    _, srv = fw
    data = os.urandom(100_000)
    f = tmp_path / "up.bin"
    f.write_bytes(data)
    out = json.loads(curl("-F", "name=curl", "-F", f"file=@{f}", f"{srv.url}/upload"))
    assert out == {
        "name": "curl",
        "filename": "up.bin",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@needs_curl
def test_curl_stream(fw):
    _, srv = fw
    assert curl("-N", f"{srv.url}/stream") == "".join(f"line {i}\n" for i in range(10))


@needs_curl
def test_curl_expect_100_continue_upload(fw, tmp_path):
    # curl sends "Expect: 100-continue" for bodies over 1 MiB and waits for
    # the 100 before sending; a server that never sends it costs a stall of
    # --expect100-timeout (5 s here, well above the upload's own time even
    # on a loaded machine under ASan).
    _, srv = fw
    data = os.urandom(2 * 1024 * 1024)
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    t0 = time.monotonic()
    out = json.loads(curl("--expect100-timeout", "5", "-F", "name=big", "-F", f"file=@{f}",
                          f"{srv.url}/upload"))
    assert out["size"] == len(data)
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    assert time.monotonic() - t0 < 4
