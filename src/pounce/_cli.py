"""The command line, generated from the settings table.

``pounce APP [options]``: one ``--name-with-dashes`` option per setting
(``--x/--no-x`` for booleans), grouped by the table's group, plus
``--config FILE``, ``--version`` and ``--help``.  Option values stay text
here; pounce._config converts and validates them, so a bad value gets the
same message from the command line as from the environment.

Errors are one line, ``pounce: error: <message>``, exit status 2.
Main thread only.
"""

from __future__ import annotations

import argparse
import difflib
import platform
import sys
from typing import Any, NoReturn, Sequence

from pounce import _pounce
from pounce._config import LIST_SETTINGS, Setting, env_name, flag_name, settings

__all__ = ["build_parser", "parse_args", "version_line", "fail"]

PROG = "pounce"

#: String settings holding a comma-separated list whose flag may be given
#: several times: the values are joined with commas (--reload-dir a
#: --reload-dir b is --reload-dir a,b).
REPEATABLE = LIST_SETTINGS


def fail(message: str, status: int) -> NoReturn:
    """Print the one-line error and exit."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def version_line() -> str:
    build_no, build_date = platform.python_build()
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    codecs = getattr(_pounce, "CODECS", None)
    codecs_text = ", ".join(codecs) if codecs else "none"
    missing = [c for c in ("zstd", "br", "gzip") if c not in (codecs or ())]
    if missing:
        codecs_text += f" (built without {', '.join(missing)})"
    return (
        f"{PROG} {_pounce.VERSION} — {platform.python_implementation()} "
        f"{platform.python_version()} ({build_no}, {build_date}, {platform.python_compiler()}), "
        f"GIL {'enabled' if gil else 'disabled'}, codecs: {codecs_text}, "
        f"tls: {getattr(_pounce, 'TLS_LIBRARY', 'none')}"
    )


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kw: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs=0, **kw)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> NoReturn:
        print(version_line())
        parser.exit(0)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        fail(message, 2)


def _default_text(s: Setting) -> str:
    if s.kind == "bool":
        return "on" if s.default else "off"
    if s.kind == "str":
        return repr(s.default) if s.default else "empty"
    return str(s.default)


def _metavar(s: Setting) -> str:
    if s.kind == "choice":
        return "{" + ",".join(s.choices or ()) + "}"
    if s.name == "workers":
        return "N|auto"
    return {"str": "TEXT", "int": "N", "size": "BYTES", "float": "SECONDS"}[s.kind]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage="%(prog)s APP [options]",
        description="Pounce: an ASGI server with a C core.  APP is 'module:attribute'.",
        epilog=(
            "Every option can also be set as a POUNCE_<NAME> environment variable "
            "(e.g. POUNCE_PORT=9000) or in pounce.toml / [tool.pounce] in pyproject.toml. "
            "Priority: command line > environment > --env-file > config file > default."
        ),
        allow_abbrev=False,  # a new setting must never change what an old abbreviation means
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("app", metavar="APP", help="the ASGI app, as 'module:attribute'")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="read settings from this TOML file instead of ./pounce.toml or ./pyproject.toml",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")

    groups: dict[str, argparse._ArgumentGroup] = {}
    for s in settings():
        group = groups.get(s.group)
        if group is None:
            group = groups[s.group] = parser.add_argument_group(s.group)
        # argparse %-formats help strings
        text = f"{s.help} [default: {_default_text(s)}; env {env_name(s.name)}]".replace("%", "%%")
        if s.kind == "bool":
            group.add_argument(
                flag_name(s.name), dest=s.name, action=argparse.BooleanOptionalAction, help=text
            )
        elif s.name in REPEATABLE:
            # --static is the documented spelling of --static-mount.
            flags = ["--static", flag_name(s.name)] if s.name == "static_mount" else [flag_name(s.name)]
            group.add_argument(
                *flags, dest=s.name, metavar=_metavar(s), action="append", help=text
            )
        else:
            group.add_argument(flag_name(s.name), dest=s.name, metavar=_metavar(s), help=text)
    return parser


def parse_args(argv: Sequence[str] | None) -> tuple[str, str | None, dict[str, Any]]:
    """(APP, --config FILE or None, {setting: value given on the command line}).
    Exits with status 0 after --help/--version, 2 on a usage error."""
    parser = build_parser()
    ns, extra = parser.parse_known_args(argv)
    if extra:
        bad = extra[0]
        hint = ""
        if bad.startswith("--"):
            known = [o for a in parser._actions for o in a.option_strings]
            close = difflib.get_close_matches(bad.split("=", 1)[0], known, n=1)
            if close:
                hint = f" (did you mean {close[0]}?)"
        parser.error(f"unrecognized argument: {bad}{hint}")
    given = vars(ns)
    for name in REPEATABLE & given.keys():
        given[name] = ",".join(given[name])
    app = given.pop("app")
    config_file = given.pop("config", None)
    return app, config_file, given
