"""Awaits asyncio.sleep(0.01) before a 13-byte answer; driven at -c 512.

    pounce bench.apps.sleep10ms:app

Many requests in flight at once: measures timer and task scheduling, and
how latency holds up when 512 connections each wait 10 ms.
"""

import asyncio

from bench.apps._lifespan import lifespan
from bench.apps.plaintext import BODY_MSG, START


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await asyncio.sleep(0.01)
    await send(START)
    await send(BODY_MSG)
