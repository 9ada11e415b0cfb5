"""Raw ASGI app for the systemd tests: answers with what the application
process can see of socket activation — the LISTEN_* variables (which Pounce
must have removed), whether fds 3, 4, 5 and those of ?fd=N,M are
inheritable (they must be close-on-exec), its pid and the scope's server."""

import json
import os

from tests.apps._support import query, simple_lifespan

_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET")


def _inheritable(fd):
    try:
        return os.get_inheritable(fd)
    except OSError:
        return None  # not open


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    body = json.dumps(
        {
            "pid": os.getpid(),
            "env": {k: os.environ[k] for k in _VARS if k in os.environ},
            "inheritable": {
                str(fd): _inheritable(fd)
                for fd in [3, 4, 5] + [int(q) for q in query(scope).get("fd", "").split(",") if q]
            },
            "server": scope["server"],
            "path": scope["path"],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
