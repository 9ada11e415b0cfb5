"""Logging setup for the 'pounce' logger only.

The root logger and the app's loggers are left alone: an app that configures
logging itself keeps its configuration.  The server logs "Listening on
http://HOST:PORT" through this logger; access lines are written by the C core
directly (see csrc/core/pn_log.h).

Call from the main thread before workers start; logging handlers themselves
are thread-safe.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["setup_logging", "FORMAT"]

FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"

# Marks the handler this module installed, so a second call replaces it
# instead of printing every line twice.
_OURS = "_pounce_handler"


def setup_logging(level: str) -> logging.Logger:
    """Configure the 'pounce' logger: stderr, FORMAT, ``level`` (a
    log_level choice such as "info"), not propagated to the root logger."""
    logger = logging.getLogger("pounce")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    for handler in list(logger.handlers):
        if getattr(handler, _OURS, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    setattr(handler, _OURS, True)
    logger.addHandler(handler)
    logger.setLevel(numeric)
    logger.propagate = False
    return logger
