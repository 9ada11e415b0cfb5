"""Fixtures shared by the integration tests.

The server under test is `pounce` unless POUNCE_TEST_SERVER=uvicorn, which
runs the same tests against uvicorn to check the tests themselves; tests
marked `pounce_only` are then skipped with their reason.
"""

from __future__ import annotations

import os

import pytest

from tests.server import LIVE_SERVERS, RECORD_ENV, SERVER_KIND, TLS, shared_certs, start_server, tls_certs


def pytest_report_header(config):
    return f"server under test: {SERVER_KIND}" + (" over TLS (POUNCE_TEST_TLS=1)" if TLS else "")


def pytest_sessionstart(session):
    # The TLS mode's clients trust the test CA from the first test on (a
    # client made before any server starts included).
    if TLS:
        tls_certs()


def pytest_collection_modifyitems(config, items):
    # POUNCE_TEST_TLS=1 (tests/server.py) runs the suite over TLS: tests
    # marked tcp_only are about the bare TCP connection (half-closes, plain
    # clients, connections left in the backlog) and are skipped.
    if TLS and os.environ.get("POUNCE_TEST_RUN_ALL") != "1":
        for item in items:
            mark = item.get_closest_marker("tcp_only")
            if mark is not None:
                why = mark.args[0] if mark.args else mark.kwargs.get("reason", "bare TCP")
                item.add_marker(pytest.mark.skip(reason=f"tcp_only under POUNCE_TEST_TLS: {why}"))
    # POUNCE_TEST_RUN_ALL=1 runs pounce_only tests against uvicorn anyway, to
    # see that they catch the differences their reasons claim.
    if SERVER_KIND == "pounce" or os.environ.get("POUNCE_TEST_RUN_ALL") == "1":
        return
    for item in items:
        mark = item.get_closest_marker("pounce_only")
        if mark is None:
            continue
        why = mark.args[0] if mark.args else mark.kwargs.get("reason", "Pounce-specific behaviour")
        item.add_marker(pytest.mark.skip(reason=f"pounce_only under {SERVER_KIND}: {why}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # A failing test shows the logs of every server still running, which is
    # where tracebacks from the server or the app end up.
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for srv in LIVE_SERVERS:
            report.sections.append((f"server log: {' '.join(srv.cmd[1:])}", srv.log_text()))


@pytest.fixture(scope="session")
def certs():
    """The test CA and its certificates (tests/tls_certs.py): one set per
    pytest run, the same files the POUNCE_TEST_TLS=1 mode serves."""
    return shared_certs()


@pytest.fixture(scope="session")
def record_dir(tmp_path_factory):
    """Where test apps record events (they find it in $POUNCE_TEST_RECORD_DIR)."""
    return tmp_path_factory.mktemp("records")


def _factory(record_dir):
    started = []

    def make(app, *args, env=None, timeout=10, wrap=()):
        full_env = {RECORD_ENV: str(record_dir)}
        if env:
            full_env.update(env)
        srv = start_server(app, *args, env=full_env, timeout=timeout, wrap=wrap)
        started.append(srv)
        return srv

    return make, started


def _cleanup(started):
    for srv in started:
        if srv.proc.poll() is None:
            srv.stop(timeout=5)
        else:
            srv.kill()


@pytest.fixture
def server_factory(record_dir):
    """start(app, *args, env=None) -> Server; stopped at the end of the test."""
    make, started = _factory(record_dir)
    yield make
    _cleanup(started)


@pytest.fixture(scope="module")
def module_server_factory(record_dir):
    """Like server_factory, but the servers live for the whole module."""
    make, started = _factory(record_dir)
    yield make
    _cleanup(started)
