"""The ASGI lifespan protocol, run on a worker's own event loop.

Each worker runs the app's lifespan itself, so that resources created at
startup (connection pools, clients) belong to the loop that uses them; the
worker's ``scope["state"]`` is a shallow copy of what its startup stored.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger("pounce")


class LifespanFailed(Exception):
    """Startup failed; the message says why."""


class Lifespan:
    def __init__(self, app: Any, mode: str) -> None:
        self.app = app
        self.mode = mode  # "auto" | "on" | "off"
        self.state: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[dict[str, Any]] | None = None
        self._outbox: asyncio.Queue[dict[str, Any]] | None = None
        self._supported = False
        self._error: BaseException | None = None

    async def startup(self) -> None:
        """Run startup; raise LifespanFailed when the app reports failure
        (or fails in mode "on")."""
        if self.mode == "off":
            return
        self.state = {}
        self._inbox = asyncio.Queue()
        self._outbox = asyncio.Queue()
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        self._task = asyncio.get_running_loop().create_task(self._run(scope))
        await self._inbox.put({"type": "lifespan.startup"})
        message = await self._next_message()
        if message is None:
            # The app returned or raised without answering startup.
            if self._error is not None and self.mode == "auto":
                logger.info(
                    "ASGI 'lifespan' protocol appears unsupported (%s: %s); continuing without it.",
                    type(self._error).__name__,
                    self._error,
                )
                self.state = None
                return
            if self.mode == "on":
                if self._error is not None:
                    raise LifespanFailed(
                        f"lifespan startup raised {type(self._error).__name__}: {self._error}"
                    )
                raise LifespanFailed("the app returned from lifespan without completing startup")
            self.state = None
            return
        self._supported = True
        if message["type"] == "lifespan.startup.failed":
            raise LifespanFailed(message.get("message") or "lifespan startup failed")
        if message["type"] != "lifespan.startup.complete":
            raise LifespanFailed(f"unexpected lifespan message {message['type']!r} during startup")

    async def shutdown(self, timeout: float = 30.0) -> None:
        if self._task is None:
            return
        if not self._supported or self._task.done():
            await self._finish(0.1)
            return
        assert self._inbox is not None
        await self._inbox.put({"type": "lifespan.shutdown"})
        try:
            message = await asyncio.wait_for(self._next_message(), timeout)
        except asyncio.TimeoutError:
            logger.error("lifespan shutdown did not complete within %.1f s", timeout)
            message = None
        if message is not None and message["type"] == "lifespan.shutdown.failed":
            logger.error("lifespan shutdown failed: %s", message.get("message", ""))
        await self._finish(1.0)

    async def _finish(self, timeout: float) -> None:
        task = self._task
        if task is None:
            return
        if not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except (asyncio.TimeoutError, Exception):
                task.cancel()
        self._task = None

    async def _next_message(self) -> dict[str, Any] | None:
        """The app's next send(), or None once its lifespan task ended."""
        assert self._outbox is not None and self._task is not None
        getter = asyncio.ensure_future(self._outbox.get())
        done, _ = await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        if not self._outbox.empty():
            return self._outbox.get_nowait()
        return None

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:  # noqa: BLE001 - reported below
            self._error = exc
            if self._supported:
                logger.error("Exception in ASGI lifespan", exc_info=exc)
            elif self.mode == "on":
                logger.error("Exception in ASGI lifespan startup", exc_info=exc)

    async def _receive(self) -> dict[str, Any]:
        assert self._inbox is not None
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._outbox is not None
        if not isinstance(message, dict) or not str(message.get("type", "")).startswith(
            "lifespan."
        ):
            raise RuntimeError(f"unexpected ASGI lifespan message {message!r}")
        await self._outbox.put(message)
