"""The protocol app, with a handler of its own on the ``pounce.access``
logger (as a user's dictConfig would give it), added at import: before any
worker starts.  Records go to the file named by POUNCE_TEST_ACCESS_LOG as
"logger:LEVEL message" lines."""

import logging
import os

from tests.apps.protocol import app  # noqa: F401

_handler = logging.FileHandler(os.environ["POUNCE_TEST_ACCESS_LOG"])
_handler.setFormatter(logging.Formatter("%(name)s:%(levelname)s %(message)s"))
_access = logging.getLogger("pounce.access")
_access.addHandler(_handler)
_access.setLevel(logging.INFO)
_access.propagate = False  # as uvicorn's own config does: not also to "pounce"'s stderr
