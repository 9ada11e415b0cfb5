"""``pounce APP [options]`` and ``python -m pounce``.

Exit status: 0 after --help/--version, 2 for usage and configuration
errors, 1 when APP cannot be imported, else whatever the server returns.
"""

from __future__ import annotations

import sys
import traceback
from typing import Sequence


def _is_machinery(filename: str) -> bool:
    import importlib
    import os

    ours = os.path.dirname(os.path.abspath(__file__))
    theirs = os.path.dirname(os.path.abspath(importlib.__file__))
    return filename.startswith(("<frozen importlib", ours + os.sep, theirs + os.sep))


def _print_app_traceback(exc: BaseException) -> None:
    """The traceback from the first frame of the app's code on, without the
    frames of pounce and importlib that lead to it."""
    tb = exc.__traceback__
    while tb is not None and _is_machinery(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)


def main(argv: Sequence[str] | None = None) -> int:
    from pounce._cli import fail, parse_args
    from pounce._config import ConfigError, load_config
    from pounce._importer import AppImportError, import_app
    from pounce._logging import setup_logging

    try:
        app_spec, config_file, given = parse_args(argv)
        try:
            config = load_config(given, config_file=config_file)
        except ConfigError as e:
            fail(str(e), 2)
        setup_logging(config.log_level)
        try:
            app = import_app(app_spec, factory=config.factory, app_dir=config.app_dir)
        except AppImportError as e:
            fail(str(e), 1)
        except Exception as e:
            # The app's own code raised while being imported: its traceback
            # is the useful part.
            _print_app_traceback(e)
            fail(f"importing {app_spec!r} raised the exception above", 1)
    except SystemExit as e:
        if e.code is None:
            return 0
        return e.code if isinstance(e.code, int) else 1

    from pounce import _server

    # SIGHUP starts a fresh Pounce with this same command line (and fresh
    # application code); it inherits the listening sockets.
    args = list(sys.argv[1:] if argv is None else argv)
    reload_argv = [sys.executable, "-m", "pounce", *args]
    return _server.serve(app, config, reload_argv=reload_argv)


if __name__ == "__main__":
    sys.exit(main())
