"""A formatter class of the user's, named by a --log-config file
(tests/test_logging_config.py): found from the working directory, as the
app is, although the pounce command and the master do not put that
directory on sys.path."""

from __future__ import annotations

import logging


class Prefixed(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"FMT|{record.name}|{record.getMessage()}"
