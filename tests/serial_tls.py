"""A TLS client socket that two threads may use at once, for websockets' sync client.

websockets' sync client reads its socket in a thread of its own (recv() blocks there
from the moment the connection object exists) while the caller's thread writes the
handshake and the frames.  Over TLS both calls enter one OpenSSL SSL object, which
OpenSSL does not allow: when the reader is processing a record (a TLS 1.3
NewSessionTicket arriving just after the handshake, say) while the writer encrypts,
the writer can fail with "ssl.SSLError: [SSL] internal error".  CI saw exactly that in
the handshake write of test_websocket.py::test_two_workers[process].

SerialSSLSocket puts every call into the SSL object under one lock and never holds the
lock across a wait: the socket underneath is non-blocking, a call that would block
releases the lock and waits in select() for the file descriptor, then tries again.
Blocking semantics and settimeout() are kept for the caller.
"""

from __future__ import annotations

import select
import ssl
import threading
import time

from tests.server import tls_certs


class SerialSSLSocket:
    """An ssl.SSLSocket whose reads and writes are serialised (see the module doc)."""

    def __init__(self, sock: ssl.SSLSocket):
        self._sock = sock
        self._lock = threading.Lock()
        self._timeout = sock.gettimeout()
        sock.setblocking(False)

    # -- what the caller sees as a blocking socket ------------------------------------

    def settimeout(self, timeout):
        self._timeout = timeout

    def gettimeout(self):
        return self._timeout

    def _wait(self, want_write: bool, deadline):
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError("timed out")
        fd = self._sock.fileno()
        if fd < 0:
            raise OSError("socket closed")
        r, w, _ = select.select([] if want_write else [fd], [fd] if want_write else [], [], remaining)
        if not r and not w:
            raise TimeoutError("timed out")

    def _call(self, fn, *args):
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            with self._lock:
                try:
                    return fn(*args)
                except ssl.SSLWantReadError:
                    want_write = False
                except ssl.SSLWantWriteError:
                    want_write = True
            self._wait(want_write, deadline)

    def recv(self, n: int) -> bytes:
        return self._call(self._sock.recv, n)

    def send(self, data) -> int:
        return self._call(self._sock.send, data)

    def sendall(self, data) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view):]

    def shutdown(self, how: int) -> None:
        with self._lock:
            self._sock.shutdown(how)

    def close(self) -> None:
        with self._lock:
            self._sock.close()

    def __getattr__(self, name):
        # family, fileno, getpeername, getsockname, setsockopt, ...: read-only or
        # socket-level, no SSL state involved.
        return getattr(self._sock, name)


class SerialContext(ssl.SSLContext):
    """An SSLContext whose wrap_socket() hands out SerialSSLSockets."""

    def wrap_socket(self, sock, *args, **kw):
        return SerialSSLSocket(super().wrap_socket(sock, *args, **kw))


def serial_client_context(cafile=None) -> SerialContext:
    """A client context trusting cafile (by default the test CA), for
    websockets.sync.client.connect(ssl=...)."""
    ctx = SerialContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(cafile or tls_certs().ca))
    return ctx


__all__ = ["SerialSSLSocket", "SerialContext", "serial_client_context"]
