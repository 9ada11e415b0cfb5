"""The ASGI lifespan protocol (startup, shutdown, state) and --lifespan."""

import json
import uuid

import pytest

from tests.server import RECORD_ENV, is_clean_exit, read_record, run_to_exit

APPS = "tests.apps.lifespan"


@pytest.fixture
def token():
    return uuid.uuid4().hex


def env_for(token, record_dir):
    return {"POUNCE_TEST_LIFESPAN_TOKEN": token, RECORD_ENV: str(record_dir)}


def test_startup_and_shutdown_run_around_requests(server_factory, token, record_dir):
    srv = server_factory(f"{APPS}:app", env=env_for(token, record_dir))
    with srv.connect() as c:
        assert c.request("GET", "/").body == b"ok"
    assert is_clean_exit(srv.stop())
    assert read_record(record_dir, token) == ["lifespan-scope", "startup", "http /", "shutdown"]


def test_state_is_a_shallow_copy_per_request(server_factory, token, record_dir):
    srv = server_factory(f"{APPS}:app", env=env_for(token, record_dir))
    for _ in range(3):
        with srv.connect() as c:
            state = json.loads(c.request("GET", "/state").body)
        # Each request saw the lifespan state, and not the previous
        # request's mutations of its own copy.
        assert state["greeting"] == "hello"
        assert "mutated" not in state
    # Keep-alive requests on one connection get fresh copies too.
    with srv.connect() as c:
        for _ in range(2):
            state = json.loads(c.request("GET", "/state").body)
            assert state["greeting"] == "hello" and "mutated" not in state


def test_startup_failed_message_stops_the_server(token, record_dir):
    rc, log = run_to_exit(f"{APPS}:failing_app", env=env_for(token, record_dir))
    assert rc not in (0, None), log
    assert f"database unreachable {token}" in log


def test_startup_exception_stops_the_server(token, record_dir):
    rc, log = run_to_exit(f"{APPS}:raising_app", "--lifespan", "on", env=env_for(token, record_dir))
    assert rc not in (0, None), log
    assert f"startup exploded {token}" in log


def test_lifespan_off_sends_no_lifespan_scope(server_factory, token, record_dir):
    srv = server_factory(f"{APPS}:app", "--lifespan", "off", env=env_for(token, record_dir))
    with srv.connect() as c:
        assert c.request("GET", "/").body == b"ok"
    assert is_clean_exit(srv.stop())
    assert read_record(record_dir, token) == ["http /"]


def test_app_without_lifespan_works_under_auto(server_factory, token, record_dir):
    srv = server_factory(f"{APPS}:no_lifespan_app", env=env_for(token, record_dir))
    with srv.connect() as c:
        assert c.request("GET", "/").body == b"ok"
        assert c.request("GET", "/").body == b"ok"
    assert is_clean_exit(srv.stop())
    assert read_record(record_dir, token) == ["rejected lifespan", "http /", "http /"]
