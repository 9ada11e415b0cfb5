"""Logging of Pounce's own lines: the 'pounce' logger and its children.

``setup_logging`` runs once per interpreter, before the app is imported: in
the process of the ``pounce`` command (so that start-up errors such as a
port in use already follow the user's configuration), again in the master
after its exec (same PID, fresh interpreter), and in the caller's process
under ``pounce.run()``.  Generations and process workers are forked, so
they inherit what it did.  It

1. applies ``--log-config`` (dictConfig JSON or YAML, or fileConfig INI),
2. gives back to Pounce's loggers what ``disable_existing_loggers`` took
   by accident (``recheck``),
3. sets the level of 'pounce' from ``--log-level``,
4. puts Pounce's own handler (text or JSON, stderr) on 'pounce'.

**The no-duplicates rule.**  Pounce's handler writes a record only when no
other handler would receive it: none on the record's logger or on any
logger it propagates to, up to the root.  Whoever configures logging, the
``--log-config`` file or the app itself (``dictConfig`` or ``basicConfig``
at import, in its lifespan, at any time), a handler of theirs takes
Pounce's lines and Pounce's handler falls silent; remove theirs and it
speaks again.  The check is made per record, which costs a walk of three
loggers at most, and Pounce logs a few lines per worker start, not per
request (access lines are written by the C core unless 'pounce.access' has
handlers).

Which thread: ``setup_logging`` on the main thread before any worker
starts; ``recheck`` from any thread (it only clears ``disabled`` flags);
the handler is called by ``logging`` from whatever thread logs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any, Iterator

__all__ = [
    "setup_logging",
    "recheck",
    "other_handlers",
    "JSONFormatter",
    "LogConfigError",
    "FORMAT",
    "LOGGER",
]

#: The logger every Pounce module writes to; access lines use LOGGER + ".access".
LOGGER = "pounce"

#: --log-format text.
FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"


class LogConfigError(ValueError):
    """--log-config cannot be read or applied; the message names the file."""


class JSONFormatter(logging.Formatter):
    """--log-format json: one JSON object per line (newlines inside the
    message or a traceback are escaped), ASCII only.

    Keys: time (ISO 8601, UTC, milliseconds), level, logger, pid, message,
    and exc_info / stack (the formatted traceback, a string) when present.
    Usable in a --log-config file: ``"()": "pounce._logging.JSONFormatter"``.
    """

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        millis = int((record.created - seconds) * 1000)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            # Cached as logging.Formatter does, for other handlers' sake.
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line)


class _PounceHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Pounce's own handler: stderr, and only when nobody else handles the
    record (the module docstring's rule)."""

    #: Marks Pounce's handler for whoever looks at a logger's handlers.
    _pounce_handler = True

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        # Stops at the first other handler: about 1 us per line that
        # reaches 'pounce' (Pounce's own lines, not requests).
        if next(_reached(record.name), None) is not None:
            return False
        return bool(super().handle(record))


def _reached(name: str) -> Iterator[logging.Handler]:
    """The handlers other than Pounce's that a record logged on logger
    ``name`` reaches, in the order logging calls them: the logger's own,
    then those of each logger it propagates to."""
    logger = logging.Logger.manager.loggerDict.get(name)
    if not isinstance(logger, logging.Logger):  # not made yet, or a PlaceHolder
        logger = logging.getLogger(LOGGER) if _ours(name) else logging.root
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if not isinstance(handler, _PounceHandler):
                yield handler
        if not current.propagate:
            return
        current = current.parent


def other_handlers(name: str = LOGGER) -> list[logging.Handler]:
    """The handlers of the user's that a line logged on ``name`` (e.g.
    "pounce.access") reaches.  Empty: Pounce's handler writes the line."""
    return list(_reached(name))


def recheck() -> None:
    """Enable 'pounce' and its children again if a logging configuration
    disabled them in passing (``disable_existing_loggers``, True by default
    in dictConfig and fileConfig, disables every existing logger the new
    configuration does not name).  Called after --log-config, after the app
    is imported and after each worker's lifespan startup."""
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if (name == LOGGER or name.startswith(LOGGER + ".")) and isinstance(
            logger, logging.Logger
        ):
            logger.disabled = False


def _read_dict(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise LogConfigError(
                f"--log-config {path}: a YAML file needs PyYAML, which is not installed "
                "(pip install PyYAML, or write the file as JSON)"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            what = getattr(e, "problem", None) or " ".join(str(e).split())
            raise LogConfigError(f"--log-config {path}: not valid YAML: {where}{what}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise LogConfigError(f"--log-config {path}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise LogConfigError(
            f"--log-config {path}: expected a dictConfig mapping, got {type(data).__name__}"
        )
    return data


def _ours(name: str) -> bool:
    return name == LOGGER or name.startswith(LOGGER + ".")


def _no_default_propagation(data: dict[str, Any]) -> None:
    """A Pounce logger the file gives handlers, without a 'propagate' key,
    does not propagate: otherwise each of its lines would also reach the
    root's handlers (dictConfig's default is to propagate)."""
    loggers = data.get("loggers")
    if not isinstance(loggers, dict) or data.get("incremental"):
        return
    for name, spec in loggers.items():
        if _ours(str(name)) and isinstance(spec, dict):
            if spec.get("handlers") and "propagate" not in spec:
                spec["propagate"] = False


def _apply(path: str, app_dir: str) -> None:
    import logging.config

    if not os.path.isfile(path):
        raise LogConfigError(f"--log-config {path}: no such file")
    # A custom formatter or handler ("()": "myproject.logs.Formatter") is
    # imported from where the app is: app_dir and the working directory,
    # put last so that they never shadow pounce or the standard library
    # (the master runs with -P), and only for as long as this takes.
    extra = [d for d in (os.path.abspath(app_dir) if app_dir else "", os.getcwd()) if d]
    extra = [d for d in extra if d not in sys.path]
    sys.path.extend(extra)
    try:
        if path.endswith((".json", ".yaml", ".yml")):
            data = _read_dict(path)
            _no_default_propagation(data)
            logging.config.dictConfig(data)
        else:
            import configparser

            parser = configparser.ConfigParser()
            try:
                parser.read(path, encoding="utf-8")
            except configparser.Error as e:
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise LogConfigError(f"--log-config {path}: not a valid INI file: {first}") from None
            for section in parser.sections():
                if not section.startswith("logger_") or section == "logger_root":
                    continue
                spec = parser[section]
                if (
                    _ours(spec.get("qualname", ""))
                    and spec.get("handlers", "").strip()
                    and "propagate" not in spec
                ):
                    spec["propagate"] = "0"
            logging.config.fileConfig(parser, disable_existing_loggers=True)
    except LogConfigError:
        raise
    except Exception as e:  # ValueError, KeyError, ImportError, OSError, ...
        raise LogConfigError(f"--log-config {path}: {_describe(e)}") from None
    finally:
        for d in extra:
            try:
                sys.path.remove(d)
            except ValueError:
                pass


def _describe(e: BaseException) -> str:
    """One line: dictConfig's message and the causes it wraps ("Unable to
    configure handler 'h': No module named 'nowhere'")."""
    parts: list[str] = []
    seen: BaseException | None = e
    while seen is not None and len(parts) < 4:
        text = str(seen) or type(seen).__name__
        if isinstance(seen, KeyError):
            text = f"missing section or key {text}"
        if not parts or text not in parts[-1]:
            parts.append(text)
        seen = seen.__cause__ or seen.__context__
    return ": ".join(parts).replace("\n", " ")


def setup_logging(
    level: str,
    log_config: str = "",
    log_format: str = "text",
    level_given: bool = True,
    app_dir: str = "",
) -> logging.Logger:
    """Configure logging as the module docstring says; returns 'pounce'.

    level: a log_level choice ("info"); level_given: it was set by the user
    (a level that --log-config gives 'pounce' wins over the default one).
    Raises LogConfigError (the callers exit with status 2)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    if log_config:
        _apply(log_config, app_dir)
    recheck()
    logger = logging.getLogger(LOGGER)
    if level_given or not log_config or logger.level == logging.NOTSET:
        logger.setLevel(numeric)
    for handler in list(logger.handlers):
        if isinstance(handler, _PounceHandler):  # a second call replaces it
            logger.removeHandler(handler)
    handler = _PounceHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    return logger
