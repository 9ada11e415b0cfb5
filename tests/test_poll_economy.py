"""A keep-alive request costs the worker one pass of its poll, however the
app's task ends.

The worker drains its epoll set from one loop callback (pn_worker_poll).
A response the app finishes outside that callback (always on CPython 3.11,
which has no eager tasks; on every version when the app awaited something
first) used to queue its connection for another pass, which cost a second
loop callback and an empty epoll_wait per request: on 3.11 about 1,650
instructions and a syscall of a plaintext request's ~30,000.  These tests
count the worker's epoll_wait calls per request with strace (the event loop
itself polls with epoll_pwait, so only the worker's own calls are counted):
one per request, where the old path made two.

strace is a Debian package `make deps` installs; where ptrace is not
allowed (some containers) the tests skip and say so.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess

import pytest

from tests.server import RawConn

STRACE = shutil.which("strace")
APP = "tests.apps.protocol:app"
# Follow the worker processes; only epoll_wait stops the tracee (seccomp).
STRACE_ARGS = ("-f", "-qq", "--seccomp-bpf", "-e", "trace=epoll_wait")


def _strace_works() -> str | None:
    """None when strace can trace a child here, else why not."""
    if STRACE is None:
        return "strace is not installed (make deps installs it)"
    r = subprocess.run([STRACE, *STRACE_ARGS, "true"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return f"strace cannot trace here (ptrace not permitted?): {r.stderr.strip()[:200]}"
    return None


def _epoll_waits(server_factory, tmp_path, target: str, n: int) -> int:
    """epoll_wait calls of a one-worker server that answered `n` requests
    for `target` on one keep-alive connection, start-up and shutdown
    included."""
    out = tmp_path / f"strace-{n}.txt"
    srv = server_factory(APP, "--workers", "1", "--loop", "uvloop",
                         wrap=(STRACE, *STRACE_ARGS, "-o", str(out)),
                         timeout=30)
    with RawConn(srv.host, srv.port, timeout=10) as conn:
        for _ in range(n):
            r = conn.request("GET", target)
            assert r.status == 200
    # Stop the server itself (strace's child): strace then exits with it
    # and has written every call.
    # (Without the ASan runtime `make asan` preloads: uninstrumented
    # programs can hang under it, as curl does.)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    kids = subprocess.run(["pgrep", "-P", str(srv.proc.pid)], capture_output=True, text=True,
                          env=env, timeout=30).stdout.split()
    assert kids, "no server process under strace"
    os.kill(int(kids[0]), signal.SIGTERM)
    # (strace has exited with its tracees: the file is complete.)
    assert srv.proc.wait(30) is not None
    return len(re.findall(r"\bepoll_wait\(", out.read_text()))


@pytest.mark.tcp_only("counts the plain-TCP path's polls; TLS reads add their own passes")
@pytest.mark.parametrize("target", ["/", "/delay?ms=0&id=ok"],
                         ids=["answers-at-once", "awaits-first"])
def test_one_poll_pass_per_keep_alive_request(server_factory, tmp_path, target):
    why = _strace_works()
    if why:
        pytest.skip(why)
    few, many = 20, 320
    a = _epoll_waits(server_factory, tmp_path, target, few)
    b = _epoll_waits(server_factory, tmp_path, target, many)
    per_request = (b - a) / (many - few)
    # One readable event per request, answered in that pass (the old path:
    # 2.0).  Slack for timer ticks and start-up differences between the
    # two runs.
    assert per_request < 1.3, (
        f"{per_request:.2f} epoll_wait calls per request ({a} for {few} requests, {b} for "
        f"{many}): a finished response queued its connection for another poll pass")
