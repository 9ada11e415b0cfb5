"""Raw ASGI app for the systemd tests: answers with what the application
process can see of socket activation — the LISTEN_* variables (which Pounce
must have removed), whether fds 3, 4, 5 and those of ?fd=N,M are
inheritable (they must be close-on-exec), its pid and the scope's server."""

import os

from tests.apps._support import query, respond_json, simple_lifespan

_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET")


def _inheritable(fd):
    try:
        return os.get_inheritable(fd)
    except OSError:
        return None  # not open


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    extra = [int(q) for q in query(scope).get("fd", "").split(",") if q]
    await respond_json(
        send,
        {
            "pid": os.getpid(),
            "env": {k: os.environ[k] for k in _VARS if k in os.environ},
            "inheritable": {str(fd): _inheritable(fd) for fd in [3, 4, 5] + extra},
            "server": scope["server"],
            "path": scope["path"],
        },
    )
