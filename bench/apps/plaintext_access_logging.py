"""bench.apps.plaintext with a handler of its own on the ``pounce.access``
logger (added at import, before the workers start), so access lines go
through ``logging``: what bench/access_log_callgrind.py measures for that
path.  The handler writes to /dev/null with a plain "%(message)s"
formatter: the cost is logging's, not the disk's."""

import logging

from bench.apps.plaintext import app  # noqa: F401

_handler = logging.StreamHandler(open("/dev/null", "w"))  # noqa: SIM115 - lives with the process
_handler.setFormatter(logging.Formatter("%(message)s"))
_access = logging.getLogger("pounce.access")
_access.addHandler(_handler)
_access.setLevel(logging.INFO)
_access.propagate = False
