"""Starlette's StaticFiles at /s, the peer of `pounce --static /s=DIR` in
bench/static_bench.py; the directory comes from BENCH_STATIC_DIR.

    BENCH_STATIC_DIR=/some/dir uvicorn bench.apps.static_starlette:app
"""

import os

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

app = Starlette(routes=[Mount("/s", StaticFiles(directory=os.environ["BENCH_STATIC_DIR"]))])
