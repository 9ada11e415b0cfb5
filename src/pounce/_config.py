"""Build a pounce.Config from every source, in priority order.

    command line  >  POUNCE_<NAME> environment variables  >  --env-file  >  config file  >  default

(--env-file names a dotenv file; its POUNCE_* lines count as environment
variables that lose to the real environment.  ``read_env_file`` parses it.)

The settings table (``pounce._pounce.SETTINGS``, generated from
csrc/pn_settings.def) is the only list of settings: this module, the CLI and
docs/configuration.md all walk it.  Validation (types, ranges, choices, rules
across settings) lives in the C constructor of pounce.Config; this module only
turns text into typed values and says which source a bad value came from.  The
constructor's TypeError/ValueError names the settings it is about in its
``settings`` attribute, a tuple; that attribute, not the message, is what
picks the source.

Called once, on the main thread, before any worker starts.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from typing import Any, Mapping, NamedTuple

from pounce._pounce import SETTINGS, Config

__all__ = [
    "ConfigError",
    "Setting",
    "load_config",
    "read_env_file",
    "settings",
    "env_name",
    "flag_name",
    "parse_text",
    "OCTAL_SETTINGS",
    "LIST_SETTINGS",
    "SIZE_UNITS",
]


class ConfigError(Exception):
    """A bad setting; the message is one line and names its source."""


class Setting(NamedTuple):
    name: str
    kind: str  # "str" "int" "size" "float" "bool" "choice"
    default: Any
    min: Any
    max: Any
    choices: tuple[str, ...] | None
    group: str
    help: str


def settings() -> tuple[Setting, ...]:
    return tuple(Setting(*row) for row in SETTINGS)


_BY_NAME = {row[0]: Setting(*row) for row in SETTINGS}


def env_name(name: str) -> str:
    return "POUNCE_" + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


# nginx-style: every unit is a power of 1024, with or without "i" and "B",
# any case.  "16k", "16K", "16KB" and "16KiB" all mean 16384 bytes.
SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE_RE = re.compile(r"\s*(\d+)\s*(?:([kmgt])(?:i?b)?|(b)?)\s*", re.IGNORECASE)
_INT_RE = re.compile(r"\s*[+-]?\d+\s*")
# File modes are written in octal, as chmod takes them: 660, 0660, 0o660.
_OCTAL_RE = re.compile(r"\s*(?:0o?)?([0-7]{1,4})\s*", re.IGNORECASE)
#: int settings whose text form is octal (a TOML integer is taken as is, so
#: write 0o660 or "660" there; the decimal 660 is out of range).
OCTAL_SETTINGS = frozenset({"uds_permissions"})
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, _BY_NAME, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_text(name: str, text: str) -> Any:
    """Convert the text form of a setting (environment, command line) to the
    type its Config field takes.  Ranges and choices are left to Config.
    Raises ValueError with a message that does not name the source."""
    s = _BY_NAME[name]
    if name == "workers" and text.strip().lower() == "auto":
        return 0
    if s.kind in ("str", "choice"):
        return text
    if name in OCTAL_SETTINGS:
        m = _OCTAL_RE.fullmatch(text)
        if not m:
            raise ValueError(f"expected an octal file mode such as 660 or 0o660, got {text!r}")
        return int(m.group(1), 8)
    if s.kind == "int":
        if not _INT_RE.fullmatch(text):
            raise ValueError(f"expected an integer, got {text!r}")
        return int(text)
    if s.kind == "size":
        m = _SIZE_RE.fullmatch(text)
        if not m:
            raise ValueError(f"expected a size such as 65536, 64k or 16MiB, got {text!r}")
        return int(m.group(1)) * SIZE_UNITS[(m.group(2) or "").lower()]
    if s.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    if s.kind == "bool":
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"expected a boolean (1/0, true/false, yes/no, on/off), got {text!r}")
    raise AssertionError(f"unknown kind {s.kind!r}")


def _normalize(key: str) -> str:
    return key.replace("-", "_")


#: String settings holding a comma-separated list: the command-line flag
#: may be repeated and a config file may give a list of strings; both are
#: joined with commas.
LIST_SETTINGS = frozenset({"reload_dir", "reload_include", "reload_exclude", "static_mount"})

#: Shorter spellings: the C field cannot be called `static` (a C keyword), so
#: the setting is static_mount and `static` is the documented key in config
#: files (POUNCE_STATIC in the environment, --static on the command line).
ALIASES = {"static": "static_mount"}


def _env_var(s: Setting, environ: Mapping[str, str]) -> str | None:
    """The environment variable that sets s: POUNCE_<NAME>, or an alias's
    POUNCE_<ALIAS> (the canonical name wins when both are set)."""
    var = env_name(s.name)
    if var in environ:
        return var
    for alias, name in ALIASES.items():
        if name == s.name and env_name(alias) in environ:
            return env_name(alias)
    return None


_PREFIX_BAD = re.compile(r"[\x00-\x20\x7f?#=]")


def _static_mounts(value: str, cwd: str) -> str:
    """Validate --static PREFIX=DIR entries (comma-separated) and return them
    with each DIR absolute and each PREFIX without a trailing '/'.  Raises
    ValueError naming the entry."""
    out: list[str] = []
    seen: set[str] = set()
    for entry in value.split(","):
        if not entry.strip():
            continue
        prefix, sep, directory = entry.partition("=")
        if not sep or not prefix or not directory:
            raise ValueError(f"{entry!r}: expected PREFIX=DIR, e.g. /assets=./public")
        if not prefix.startswith("/"):
            raise ValueError(f"{entry!r}: PREFIX must start with '/'")
        if _PREFIX_BAD.search(prefix):
            raise ValueError(
                f"{entry!r}: PREFIX may not contain spaces, control characters, '?', '#' or '='"
            )
        if len(prefix) > 1:
            prefix = prefix.rstrip("/") or "/"
        if prefix in seen:
            raise ValueError(f"{entry!r}: PREFIX {prefix} is mounted twice")
        seen.add(prefix)
        path = os.path.abspath(os.path.join(cwd, os.path.expanduser(directory)))
        if not os.path.exists(path):
            raise ValueError(f"{entry!r}: {directory}: no such directory")
        if not os.path.isdir(path):
            raise ValueError(f"{entry!r}: {directory}: not a directory")
        out.append(f"{prefix}={path}")
    return ",".join(out)


def _check_static(merged: dict[str, Any], cwd: str) -> None:
    """The static settings Config cannot judge alone (the file system, the
    working directory).  Raises ValueError with `settings` set."""

    def bad(name: str, message: str) -> ValueError:
        e = ValueError(message)
        e.settings = (name,)  # type: ignore[attr-defined]
        return e

    value = merged.get("static_mount")
    if isinstance(value, str) and value:
        try:
            merged["static_mount"] = _static_mounts(value, cwd)
        except ValueError as e:
            raise bad("static_mount", str(e)) from None
    index = merged.get("static_index")
    if isinstance(index, str) and (
        "/" in index or index in (".", "..") or any(ord(ch) < 0x20 or ch == "\x7f" for ch in index)
    ):
        raise bad("static_index", f"static_index must be a file name, got {index!r}")
    cc = merged.get("static_cache_control")
    if isinstance(cc, str) and any(ord(ch) < 0x20 or ch == "\x7f" for ch in cc):
        raise bad("static_cache_control", "static_cache_control may not contain control characters")


def _from_value(name: str, value: Any) -> Any:
    """Values from a file or from Python: strings are accepted wherever the
    text form is (sizes with units, workers = "auto", "5" for a number);
    a list of strings for a LIST_SETTINGS one."""
    if name in LIST_SETTINGS and isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ValueError("expected a list of strings")
        return ",".join(value)
    if isinstance(value, str) and _BY_NAME[name].kind not in ("str", "choice"):
        return parse_text(name, value)
    return value


def _read_file(path: str, label: str, pyproject: bool) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{label}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{label}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{label}: invalid TOML: {e}") from None
    if pyproject:
        data = data.get("tool", {}).get("pounce", {})
        if not isinstance(data, dict):
            raise ConfigError(f"{label}: [tool.pounce] must be a table")
    return data


def _find_file(cwd: str, config_file: str | None) -> tuple[dict[str, Any], str]:
    """The file source: its settings and the label used in messages."""
    if config_file:
        path = os.path.join(cwd, config_file)
        pyproject = os.path.basename(config_file) == "pyproject.toml"
        label = config_file + (" [tool.pounce]" if pyproject else "")
        return _read_file(path, label, pyproject), label
    path = os.path.join(cwd, "pounce.toml")
    if os.path.exists(path):
        return _read_file(path, "pounce.toml", False), "pounce.toml"
    path = os.path.join(cwd, "pyproject.toml")
    if os.path.exists(path):
        label = "pyproject.toml [tool.pounce]"
        return _read_file(path, label, True), label
    return {}, ""


_ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$"}


def _env_value(text: str, where: str) -> str:
    """The value part of a dotenv line (after ``=``)."""
    text = text.strip()
    if not text:
        return ""
    quote = text[0]
    if quote not in "'\"":
        # Unquoted: up to a " #" comment; inner spaces are kept.
        value = re.split(r"\s#", text, maxsplit=1)[0].rstrip()
        if any(c in value for c in "'\""):
            raise ConfigError(f"{where}: quote inside an unquoted value (quote the whole value)")
        return value
    out: list[str] = []
    i = 1
    while i < len(text):
        c = text[i]
        if c == quote:
            rest = text[i + 1 :].strip()
            if rest and not rest.startswith("#"):
                raise ConfigError(f"{where}: unexpected text after the closing quote: {rest!r}")
            return "".join(out)
        if c == "\\" and quote == '"':
            i += 1
            esc = text[i : i + 1]
            if esc not in _ENV_ESCAPES:
                raise ConfigError(f"{where}: unknown escape \\{esc} in a double-quoted value")
            out.append(_ENV_ESCAPES[esc])
        else:
            out.append(c)
        i += 1
    raise ConfigError(f"{where}: missing closing {quote} (values are one line)")


def read_env_file(path: str, label: str | None = None) -> dict[str, tuple[str, int]]:
    """Parse a dotenv file: {KEY: (value, line number)}.

    Accepted, line by line: blank lines; ``# comments``; ``KEY=VALUE`` with
    an optional ``export`` prefix and spaces around ``=``; VALUE unquoted (a
    `` #`` starts a comment), in single quotes (taken literally) or in double
    quotes (escapes \\n \\t \\r \\\\ \\" \\$).  No ${VAR} expansion, no
    multi-line values.  Anything else raises ConfigError naming FILE:LINE;
    a later line for the same KEY wins.
    """
    label = label or path
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{label}: no such file (--env-file)") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{label}: not UTF-8 text: {e.reason}") from None
    except OSError as e:
        raise ConfigError(f"{label}: cannot read: {e.strerror or e}") from None
    found: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(lines, 1):
        where = f"{label}:{number}"
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("export ") or text.startswith("export\t"):
            text = text[7:].lstrip()
        key, eq, value = text.partition("=")
        key = key.strip()
        if not eq:
            raise ConfigError(f"{where}: expected KEY=VALUE, got {line.strip()!r}")
        if not _ENV_KEY_RE.fullmatch(key):
            raise ConfigError(f"{where}: invalid variable name {key!r}")
        found[key] = (_env_value(value, where), number)
    return found


def load_config(
    cli: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    config_file: str | None = None,
    origins: dict[str, str] | None = None,
    env_file_values: dict[str, str] | None = None,
) -> Config:
    """Merge the sources and build the one validated, immutable Config.

    ``cli`` maps setting names to values given on the command line: text
    (converted here) or already-typed values.  Only settings actually given
    belong in it.  ``config_file`` is the --config argument, relative to
    ``cwd``.  Raises ConfigError naming the offending source.

    ``origins``, if given, is filled with every setting that was set
    explicitly (command line, environment or file; defaults are not) and
    the source its value came from, e.g. ``{"port": "--port", "host":
    "POUNCE_HOST", "uds": "pounce.toml"}``.  bind_listeners(explicit=...)
    takes it to tell a bind option from a default.

    ``env_file_values``, if given, is filled with every variable of the
    --env-file (env_file from any source, relative to ``cwd``); the caller
    puts those not already set into os.environ, for the app.
    """
    if environ is None:
        environ = os.environ
    cwd = os.getcwd() if cwd is None else cwd

    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}  # setting name -> where its value came from

    file_values, file_label = _find_file(cwd, config_file)
    for key, value in file_values.items():
        name = _normalize(key)
        name = ALIASES.get(name, name)
        if name not in _BY_NAME:
            raise ConfigError(f"{file_label}: unknown setting {key!r}{_did_you_mean(name)}")
        try:
            merged[name] = _from_value(name, value)
        except ValueError as e:
            raise ConfigError(f"{file_label}: {key}: {e}") from None
        origin[name] = file_label

    # --env-file: named by the command line, the environment or the file.
    env_file = cli.get("env_file", environ.get(env_name("env_file"), merged.get("env_file", "")))
    dotenv: dict[str, tuple[str, int]] = {}
    if env_file:
        dotenv = read_env_file(os.path.join(cwd, env_file), env_file)
        if env_file_values is not None:
            env_file_values.update({k: v for k, (v, _) in dotenv.items()})
    for s in _BY_NAME.values():
        var = _env_var(s, dotenv) or env_name(s.name)
        if var in dotenv and _env_var(s, environ) is None and s.name != "env_file":
            value, number = dotenv[var]
            try:
                merged[s.name] = parse_text(s.name, value)
            except ValueError as e:
                raise ConfigError(f"{env_file}:{number}: {var}: {e}") from None
            origin[s.name] = f"{env_file}:{number}: {var}"

    for s in _BY_NAME.values():
        var = _env_var(s, environ) or ""
        if var:
            try:
                merged[s.name] = parse_text(s.name, environ[var])
            except ValueError as e:
                raise ConfigError(f"{var}: {e}") from None
            origin[s.name] = var

    for key, value in cli.items():
        name = _normalize(key)
        name = ALIASES.get(name, name)
        flag = "--static" if name == "static_mount" else flag_name(name)
        if name not in _BY_NAME:
            raise ConfigError(f"{flag}: unknown setting{_did_you_mean(name)}")
        try:
            merged[name] = _from_value(name, value)
        except ValueError as e:
            raise ConfigError(f"{flag}: {e}") from None
        origin[name] = flag

    if origins is not None:
        origins.update(origin)
    try:
        _check_static(merged, cwd)
        return Config(**merged)
    except (TypeError, ValueError) as e:
        # One setting for a bad value, several for a rule across settings
        # (uds with fd); sources in the order the values were merged.
        blamed = getattr(e, "settings", ())
        sources = dict.fromkeys(origin[n] for n in merged if n in blamed)
        raise ConfigError(f"{', '.join(sources) or 'config'}: {e}") from None
