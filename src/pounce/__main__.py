"""``pounce APP [options]`` and ``python -m pounce``.

Exit status: 0 after --help/--version, 2 for usage and configuration
errors, 1 when APP cannot be imported or the sockets cannot be bound, else
whatever the server returns.

The settings are parsed here; then ``_master.start`` binds and this process
becomes the master (same PID), which imports the app only in its children
(``_master.load_app``, with the same messages as always).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence


def _check_reload(config: Any, fail: Callable[[str, int], Any]) -> None:
    """--reload's requirements, before anything is bound."""
    from pounce._reload import MISSING, missing, split_list

    if missing():
        fail(MISSING, 2)
    for d in split_list(config.reload_dir):
        if not os.path.isdir(d):
            fail(f"--reload-dir: {d!r} is not a directory", 2)


def main(argv: Sequence[str] | None = None) -> int:
    from pounce._cli import fail, parse_args
    from pounce._config import ConfigError, load_config
    from pounce._logging import LogConfigError, setup_logging

    try:
        app_spec, config_file, given = parse_args(argv)
        # Which settings were given, and where: with systemd's sockets, an
        # explicit bind option (even one equal to its default) is a conflict.
        origins: dict[str, str] = {}
        dotenv: dict[str, str] = {}
        try:
            config = load_config(
                given, config_file=config_file, origins=origins, env_file_values=dotenv
            )
        except ConfigError as e:
            fail(str(e), 2)
        # --env-file: for the app too (the master and its generations
        # inherit this environment); what is already set wins.
        for key, value in dotenv.items():
            os.environ.setdefault(key, value)
        try:
            # Here already, so that a start-up error (a port in use) follows
            # --log-config; the master applies it again after its exec.
            setup_logging(
                config.log_level,
                config.log_config,
                config.log_format,
                level_given="log_level" in origins,
                app_dir=config.app_dir,
            )
        except LogConfigError as e:
            fail(str(e), 2)
        if config.reload:
            _check_reload(config, fail)
    except SystemExit as e:
        if e.code is None:
            return 0
        return e.code if isinstance(e.code, int) else 1

    from pounce import _master

    args = list(sys.argv[1:] if argv is None else argv)
    return _master.start(app_spec, config, args, explicit=origins)


if __name__ == "__main__":
    sys.exit(main())
