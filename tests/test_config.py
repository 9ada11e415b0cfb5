"""pounce.Config (C) and the settings loader (pounce._config)."""

import ast
import copy
import math
import pathlib
import pickle
import re
import subprocess
import sys
import threading

import pytest

import pounce
from pounce._cli import build_parser
from pounce._config import ConfigError, load_config, parse_text
from pounce._pounce import SETTINGS, Config

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULTS = {row[0]: row[2] for row in SETTINGS}
KINDS = {row[0]: row[1] for row in SETTINGS}


# ---- the table ------------------------------------------------------------


def test_settings_table_shape():
    assert len(SETTINGS) == len({row[0] for row in SETTINGS}) > 20
    for name, kind, default, lo, hi, choices, group, help_text in SETTINGS:
        assert kind in ("str", "int", "size", "float", "bool", "choice"), name
        assert group and help_text, name
        if kind in ("int", "size", "float"):
            assert lo <= default <= hi, name
        else:
            assert lo is None and hi is None, name
        if kind == "choice":
            assert isinstance(choices, tuple) and default in choices, name
        else:
            assert choices is None, name
    assert ("port", "int", 8000, 0, 65535, None, "socket") == SETTINGS[1][:7]


# ---- the defaults against csrc/pn_settings.def, read here ------------------
#
# Config, SETTINGS, the command line and the docs are all generated from
# pn_settings.def, so comparing them with each other proves little: a
# mistake in how the build expands the table shows up in all of them at
# once.  These tests parse the rows from the file itself and compare every
# place a user sees a default against them.

DEF_FILE = ROOT / "csrc" / "pn_settings.def"
_DEF_ROW = re.compile(r"PN_(STR|INT|SIZE|FLOAT|BOOL|CHOICE)\((.*)\)\s*")
#: The Python type of each kind's values.
PY_TYPES = {"str": str, "int": int, "size": int, "float": float, "bool": bool, "choice": str}


def _macro_args(text: str) -> list[str]:
    """Split macro arguments at the commas outside C string literals."""
    args, cur, in_str, escaped = [], "", False, False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == ",":
            args.append(cur.strip())
            cur = ""
            continue
        cur += ch
    args.append(cur.strip())
    return args


def def_rows() -> dict[str, tuple]:
    """{name: (kind, default, min, max, choices)} from csrc/pn_settings.def,
    in file order; min/max/choices are None where a kind has none."""
    rows: dict[str, tuple] = {}
    lines = [ln for ln in DEF_FILE.read_text().splitlines() if ln.startswith("PN_")]
    for line in lines:
        m = _DEF_ROW.fullmatch(line)
        assert m, f"unparsed row in {DEF_FILE.name}: {line}"
        kind, args = m.group(1).lower(), _macro_args(m.group(2))
        name, lo, hi, choices = args[0], None, None, None
        if kind == "str":
            assert len(args) == 4, line
            default = ast.literal_eval(args[1])
        elif kind in ("int", "size"):
            assert len(args) == 6, line
            default, lo, hi = (int(a) for a in args[1:4])
        elif kind == "float":
            assert len(args) == 6, line
            default, lo, hi = (float(a) for a in args[1:4])
        elif kind == "bool":
            assert len(args) == 4 and args[1] in ("0", "1"), line
            default = args[1] == "1"
        else:
            assert len(args) == 5, line
            default = ast.literal_eval(args[1])
            choices = tuple(ast.literal_eval(args[2]).split("|"))
        assert name.isidentifier() and name not in rows, line
        rows[name] = (kind, default, lo, hi, choices)
    assert len(rows) == len(lines) > 20
    return rows


def test_def_parser_reads_every_kind():
    rows = def_rows()
    assert rows["host"] == ("str", "127.0.0.1", None, None, None)
    assert rows["port"] == ("int", 8000, 0, 65535, None)
    assert rows["max_request_size"][:2] == ("size", 16 << 20)
    assert rows["keep_alive_timeout"][:2] == ("float", 5.0)
    assert rows["access_log"] == ("bool", True, None, None, None)
    assert rows["reuse_port"][:2] == ("bool", False)
    assert rows["loop"] == ("choice", "auto", None, None, ("auto", "asyncio", "uvloop"))
    assert {r[0] for r in rows.values()} == set(PY_TYPES)


def test_defaults_match_table(tmp_path):
    rows = def_rows()
    expected = {name: r[1] for name, r in rows.items()}
    # The table the extension exports: the same rows, in the same order.
    assert [row[0] for row in SETTINGS] == list(rows)
    for name, kind, default, lo, hi, choices, *_ in SETTINGS:
        assert (kind, default, lo, hi, choices) == rows[name], name
        assert type(default) is PY_TYPES[kind], name
    # pounce.Config() and pounce.run()'s defaults.
    c = Config()
    assert c._asdict() == expected
    for name, (kind, default, *_) in rows.items():
        value = getattr(c, name)
        assert value == default and type(value) is PY_TYPES[kind], name
    # What the command line ends up with when nothing is given.
    assert load_config({}, environ={}, cwd=str(tmp_path))._asdict() == expected


def _help_default(kind: str, default) -> str:
    if kind == "bool":
        return "on" if default else "off"
    if kind == "str":
        return repr(default) if default else "empty"
    return str(default)


def test_cli_help_defaults_match_table():
    helps = {a.dest: a.help for a in build_parser()._actions}
    for name, (kind, default, *_) in def_rows().items():
        want = f"[default: {_help_default(kind, default)}; env POUNCE_{name.upper()}]"
        assert want in (helps.get(name) or ""), (name, helps.get(name))


def _doc_default(kind: str, default) -> str:
    if kind == "bool":
        return "`true`" if default else "`false`"
    if kind == "str" and not default:
        return "(empty)"
    return f"`{default}`"


def doc_defaults(text: str) -> dict[str, str]:
    """{setting: default cell} from the settings tables of configuration.md."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"\| `(\w+)` \|", line)
        if m:
            cells = re.split(r"(?<!\\)\|", line)  # help texts escape | as \|
            out[m.group(1)] = cells[5].strip()
    return out


def test_docs_defaults_match_table():
    rows = def_rows()
    docs = doc_defaults((ROOT / "docs" / "configuration.md").read_text(encoding="utf-8"))
    assert list(docs) == list(rows)
    for name, (kind, default, *_) in rows.items():
        assert docs[name] == _doc_default(kind, default), name


def test_getter_types():
    c = Config()
    assert type(c.port) is int and type(c.max_request_size) is int
    assert type(c.keep_alive_timeout) is float
    assert c.factory is False and c.access_log is True
    assert c.loop == "auto" and c.log_level == "info"


def test_every_setting_roundtrips():
    values = {}
    for name, kind, default, lo, hi, choices, *_ in SETTINGS:
        if kind == "str":
            # (the two compression lists are validated as lists of names)
            # (and the trusted proxies as a list of addresses)
            # (the ssl_* files are read at once: tests/test_tls.py has them)
            special = {"uds": "", "compression_order": "gzip", "compression_types": "text/x-y",
                       "forwarded_allow_ips": "10.0.0.0/8", "health_path": "/healthz",
                       "ssl_certfile": "", "ssl_keyfile": "", "ssl_keyfile_password": "",
                       "ssl_ca_certs": "", "ssl_ciphers": ""}
            values[name] = special.get(name, default + "x")
        elif kind in ("int", "size"):
            values[name] = hi if name != "fd" else -1
        elif kind == "float":
            values[name] = float(lo)
        elif kind == "bool":
            values[name] = not default
        else:
            values[name] = choices[-1] if name != "ssl_cert_reqs" else "none"
    c = Config(**values)
    assert c._asdict() == values


# ---- validation messages --------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        ({"prot": 1}, TypeError, "unknown setting 'prot' (did you mean 'port'?)"),
        ({"zzzzzz": 1}, TypeError, "unknown setting 'zzzzzz'"),
        ({"wokers": 2}, TypeError, "unknown setting 'wokers' (did you mean 'workers'?)"),
        ({"port": 70000}, ValueError, "port must be between 0 and 65535, got 70000"),
        ({"forwarded_allow_ips": "127.0.0.1, 10.0.0.0/33"}, ValueError,
         "forwarded_allow_ips: '10.0.0.0/33': prefix longer than 32 bits"),
        ({"forwarded_allow_ips": "localhost"}, ValueError,
         "forwarded_allow_ips: 'localhost': not an IP address, CIDR block, '*' or 'unix'"),
        ({"port": -1}, ValueError, "port must be between 0 and 65535, got -1"),
        ({"port": 2**70}, ValueError, f"port must be between 0 and 65535, got {2**70}"),
        ({"port": "80"}, TypeError, "port must be an int, got str"),
        ({"port": True}, TypeError, "port must be an int, got bool"),
        ({"port": 80.0}, TypeError, "port must be an int, got float"),
        ({"max_request_size": False}, TypeError, "max_request_size must be an int, got bool"),
        (
            {"max_header_size": 100},
            ValueError,
            "max_header_size must be between 256 and 16777216, got 100",
        ),
        ({"host": 1}, TypeError, "host must be a str, got int"),
        ({"host": "a\0b"}, ValueError, "host must not contain NUL characters"),
        ({"uds": "/tmp/x\0"}, ValueError, "uds must not contain NUL characters"),
        ({"keep_alive_timeout": "5"}, TypeError, "keep_alive_timeout must be a number, got str"),
        ({"keep_alive_timeout": True}, TypeError, "keep_alive_timeout must be a number, got bool"),
        (
            {"keep_alive_timeout": math.nan},
            ValueError,
            "keep_alive_timeout must be a finite number, got nan",
        ),
        (
            {"keep_alive_timeout": math.inf},
            ValueError,
            "keep_alive_timeout must be a finite number, got inf",
        ),
        (
            {"header_timeout": 0.05},
            ValueError,
            "header_timeout must be between 0.1 and 86400.0, got 0.05",
        ),
        (
            {"header_timeout": 10**400},
            ValueError,
            f"header_timeout must be between 0.1 and 86400.0, got {10**400}",
        ),
        ({"factory": 1}, TypeError, "factory must be a bool, got int"),
        ({"factory": "yes"}, TypeError, "factory must be a bool, got str"),
        ({"loop": 1}, TypeError, "loop must be a str, got int"),
        (
            {"loop": "trio"},
            ValueError,
            "loop must be one of 'auto', 'asyncio', 'uvloop', got 'trio'",
        ),
        (
            {"log_level": "INFO"},
            ValueError,
            "log_level must be one of 'debug', 'info', 'warning', 'error', 'critical', got 'INFO'",
        ),
        ({"uds": "/tmp/s", "fd": 3}, ValueError, "uds and fd are mutually exclusive"),
        ({"host": ""}, ValueError, "host must not be empty unless uds or fd is given"),
    ],
)
def test_validation_errors(kwargs, exc, message):
    with pytest.raises(exc) as info:
        Config(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "kwargs, settings",
    [
        ({"port": 70000}, ("port",)),
        ({"port": "80"}, ("port",)),
        ({"host": "a\0b"}, ("host",)),
        ({"header_timeout": math.nan}, ("header_timeout",)),
        ({"factory": 1}, ("factory",)),
        ({"loop": "trio"}, ("loop",)),
        ({"root_path": "\udcff"}, ("root_path",)),  # UnicodeEncodeError, a ValueError
        ({"compression_order": "gzip,lz4"}, ("compression_order",)),
        ({"compression_types": "not a type"}, ("compression_types",)),
        ({"port": 1, "backlog": 0, "workers": 2}, ("backlog",)),  # the bad one among good ones
        ({"uds": "/tmp/s", "fd": 3}, ("uds", "fd")),  # a rule across settings
        ({"host": ""}, ("host",)),  # uds or fd would only excuse it
    ],
)
def test_validation_error_names_its_settings(kwargs, settings):
    # exc.settings, not the message, is what load_config reads to name the
    # source of a bad value.
    with pytest.raises((TypeError, ValueError)) as info:
        Config(**kwargs)
    assert info.value.settings == settings
    with pytest.raises(type(info.value)) as again:
        Config().replace(**kwargs)
    assert again.value.settings == settings
    assert str(again.value) == str(info.value)


def test_unknown_setting_error_names_no_setting():
    with pytest.raises(TypeError) as info:
        Config(prot=1)
    assert not hasattr(info.value, "settings")


def test_float_accepts_int_and_bounds():
    assert Config(keep_alive_timeout=0).keep_alive_timeout == 0.0
    assert Config(header_timeout=86400).header_timeout == 86400.0
    assert Config(keep_alive_timeout=2.5).keep_alive_timeout == 2.5


def test_empty_host_allowed_with_uds_or_fd():
    assert Config(host="", uds="/tmp/pounce.sock").uds == "/tmp/pounce.sock"
    assert Config(host="", fd=3).fd == 3


def test_unicode_strings():
    c = Config(root_path="/caf\u00e9")
    assert c.root_path == "/caf\u00e9"
    with pytest.raises(UnicodeEncodeError):
        Config(root_path="\udcff")


def test_positional_arguments_rejected():
    with pytest.raises(TypeError, match="keyword arguments only"):
        Config({"port": 1})


# ---- immutability, replace, repr, equality, pickle ------------------------


def test_immutable():
    c = Config()
    msg = "pounce.Config is immutable; use Config.replace(...)"
    for name in ("port", "host", "nonexistent"):
        with pytest.raises(AttributeError) as info:
            setattr(c, name, 1)
        assert str(info.value) == msg
        with pytest.raises(AttributeError) as info:
            delattr(c, name)
        assert str(info.value) == msg
    assert c.port == 8000
    with pytest.raises(TypeError):
        type("Sub", (Config,), {})  # not subclassable: no mutable subclasses
    with pytest.raises(TypeError):
        Config.port = 1


def test_replace():
    c = Config(port=9000)
    d = c.replace(host="0.0.0.0", workers=4)
    assert (c.host, c.port, c.workers) == ("127.0.0.1", 9000, 1)
    assert (d.host, d.port, d.workers) == ("0.0.0.0", 9000, 4)
    assert c.replace() == c and c.replace() is not c
    with pytest.raises(ValueError, match="port must be between"):
        c.replace(port=-5)
    with pytest.raises(TypeError, match="unknown setting 'prot'"):
        c.replace(prot=1)
    with pytest.raises(ValueError, match="mutually exclusive"):
        Config(uds="/tmp/s").replace(fd=4)
    with pytest.raises(TypeError):
        c.replace({"port": 1})


def test_repr_shows_only_non_defaults():
    assert repr(Config()) == "pounce.Config()"
    assert repr(Config(port=9000, loop="uvloop", access_log=False)) == (
        "pounce.Config(port=9000, loop='uvloop', access_log=False)"
    )


def test_equality_and_hash():
    a = Config(port=1, keep_alive_timeout=0.0)
    b = Config(keep_alive_timeout=-0.0, port=1)
    assert a == b and not (a != b) and hash(a) == hash(b)
    assert a != Config(port=2)
    assert a != {"port": 1}
    assert len({a, b, Config(port=2)}) == 2
    assert Config(host="a") != Config(host="b")


def test_pickle_and_copy(monkeypatch):
    # pounce.Config is the pickled name; the package re-exports it.
    if getattr(pounce, "Config", None) is not Config:
        monkeypatch.setattr(pounce, "Config", Config, raising=False)
    c = Config(port=1234, host="::1", loop="asyncio", factory=True, max_request_size=1 << 30)
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        d = pickle.loads(pickle.dumps(c, proto))
        assert d == c and type(d) is Config
    assert copy.copy(c) == c and copy.deepcopy(c) == c


def test_concurrent_reads():
    c = Config(port=4321, host="h")
    errors = []

    def read():
        for _ in range(2000):
            if (c.port, c.host, c._asdict()["port"]) != (4321, "h", 4321):
                errors.append(1)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ---- text conversions -----------------------------------------------------


@pytest.mark.parametrize(
    "name, text, value",
    [
        ("port", "8080", 8080),
        ("port", " 80 ", 80),
        ("workers", "auto", 0),
        ("workers", "AUTO", 0),
        ("workers", "3", 3),
        ("max_request_size", "1024", 1024),
        ("max_request_size", "16k", 16384),
        ("max_request_size", "16K", 16384),
        ("max_request_size", "16kB", 16384),
        ("max_request_size", "16KiB", 16384),
        ("max_request_size", "2m", 2 << 20),
        ("max_request_size", "2MB", 2 << 20),
        ("max_request_size", "2 MiB", 2 << 20),
        ("max_request_size", "1G", 1 << 30),
        ("max_request_size", "1TiB", 1 << 40),
        ("max_request_size", "10b", 10),
        ("keep_alive_timeout", "2.5", 2.5),
        ("keep_alive_timeout", "3", 3.0),
        ("factory", "1", True),
        ("factory", "TRUE", True),
        ("factory", "yes", True),
        ("factory", "On", True),
        ("factory", "0", False),
        ("factory", "false", False),
        ("factory", "NO", False),
        ("factory", "off", False),
        ("loop", "uvloop", "uvloop"),
        ("host", "::1", "::1"),
    ],
)
def test_parse_text(name, text, value):
    got = parse_text(name, text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("port", "abc", "expected an integer, got 'abc'"),
        ("port", "8.0", "expected an integer, got '8.0'"),
        ("max_request_size", "16q", "expected a size such as 65536, 64k or 16MiB, got '16q'"),
        ("max_request_size", "1.5M", "expected a size such as 65536, 64k or 16MiB, got '1.5M'"),
        ("keep_alive_timeout", "soon", "expected a number, got 'soon'"),
        ("factory", "maybe", "expected a boolean (1/0, true/false, yes/no, on/off), got 'maybe'"),
    ],
)
def test_parse_text_errors(name, text, message):
    with pytest.raises(ValueError) as info:
        parse_text(name, text)
    assert str(info.value) == message


# ---- load_config: sources and precedence ----------------------------------


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_load_defaults(tmp_path):
    assert load_config({}, environ={}, cwd=str(tmp_path)) == Config()


def test_precedence_all_four_sources(tmp_path):
    write(tmp_path / "pounce.toml", "port = 1001\nhost = 'file'\nbacklog = 11\nworkers = 5\n")
    environ = {"POUNCE_PORT": "2002", "POUNCE_HOST": "env", "POUNCE_WORKERS": "6", "HOME": "/"}
    cli = {"port": "3003"}
    c = load_config(cli, environ=environ, cwd=str(tmp_path))
    assert c.port == 3003  # command line beats everything
    assert c.host == "env"  # environment beats the file
    assert c.workers == 6
    assert c.backlog == 11  # file beats the default
    assert c.max_headers == DEFAULTS["max_headers"]  # default


def test_cli_typed_values_and_dashes(tmp_path):
    c = load_config({"keep-alive-timeout": 1.5, "access_log": False}, environ={}, cwd=str(tmp_path))
    assert c.keep_alive_timeout == 1.5 and c.access_log is False


def test_pounce_toml_beats_pyproject(tmp_path):
    write(tmp_path / "pounce.toml", "port = 1\n")
    write(tmp_path / "pyproject.toml", "[tool.pounce]\nport = 2\n")
    assert load_config({}, environ={}, cwd=str(tmp_path)).port == 1
    (tmp_path / "pounce.toml").unlink()
    assert load_config({}, environ={}, cwd=str(tmp_path)).port == 2


def test_pyproject_without_tool_pounce(tmp_path):
    write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n[tool.black]\nline-length = 1\n")
    assert load_config({}, environ={}, cwd=str(tmp_path)) == Config()


def test_explicit_config_file(tmp_path):
    write(tmp_path / "pounce.toml", "port = 1\n")
    write(tmp_path / "other.toml", "port = 7\nmax-request-size = '64MiB'\nworkers = 'auto'\n")
    c = load_config({}, environ={}, cwd=str(tmp_path), config_file="other.toml")
    assert (c.port, c.max_request_size, c.workers) == (7, 64 << 20, 0)
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub / "pyproject.toml", "[tool.pounce]\nport = 8\n")
    c = load_config({}, environ={}, cwd=str(tmp_path), config_file="sub/pyproject.toml")
    assert c.port == 8
    c = load_config({}, environ={}, cwd=str(tmp_path), config_file=str(sub / "pyproject.toml"))
    assert c.port == 8


def test_file_typed_values(tmp_path):
    write(
        tmp_path / "pounce.toml",
        "access_log = false\nkeep_alive_timeout = 2\nloop = 'asyncio'\nmax_headers = 50\n",
    )
    c = load_config({}, environ={}, cwd=str(tmp_path))
    assert (c.access_log, c.keep_alive_timeout, c.loop, c.max_headers) == (
        False,
        2.0,
        "asyncio",
        50,
    )


def test_env_conversions(tmp_path):
    environ = {
        "POUNCE_MAX_REQUEST_SIZE": "1GiB",
        "POUNCE_ACCESS_LOG": "off",
        "POUNCE_FACTORY": "Yes",
        "POUNCE_SHUTDOWN_TIMEOUT": "0.5",
        "POUNCE_LOG_LEVEL": "debug",
        "POUNCE_WORKERS": "auto",
        "POUNCE_NOT_A_SETTING": "ignored",
    }
    c = load_config({}, environ=environ, cwd=str(tmp_path))
    assert c.max_request_size == 1 << 30
    assert c.access_log is False and c.factory is True
    assert c.shutdown_timeout == 0.5 and c.log_level == "debug" and c.workers == 0


def test_workers_auto_from_cli(tmp_path):
    assert load_config({"workers": "auto"}, environ={}, cwd=str(tmp_path)).workers == 0


@pytest.mark.parametrize(
    "files, environ, cli, config_file, message",
    [
        ({}, {"POUNCE_PORT": "abc"}, {}, None, "POUNCE_PORT: expected an integer, got 'abc'"),
        (
            {},
            {"POUNCE_PORT": "70000"},
            {},
            None,
            "POUNCE_PORT: port must be between 0 and 65535, got 70000",
        ),
        (
            {},
            {},
            {"port": "70000"},
            None,
            "--port: port must be between 0 and 65535, got 70000",
        ),
        (
            {},
            {},
            {"loop": "trio"},
            None,
            "--loop: loop must be one of 'auto', 'asyncio', 'uvloop', got 'trio'",
        ),
        (
            {"pounce.toml": "prot = 1\n"},
            {},
            {},
            None,
            "pounce.toml: unknown setting 'prot' (did you mean 'port'?)",
        ),
        (
            {"pounce.toml": "port = 70000\n"},
            {},
            {},
            None,
            "pounce.toml: port must be between 0 and 65535, got 70000",
        ),
        (
            {"pounce.toml": "port = '80'\nhost = 5\n"},
            {},
            {},
            None,
            "pounce.toml: host must be a str, got int",
        ),
        (
            {"pounce.toml": "max_request_size = 'huge'\n"},
            {},
            {},
            None,
            "pounce.toml: max_request_size: expected a size such as 65536, 64k or 16MiB, "
            "got 'huge'",
        ),
        (
            {"pyproject.toml": "[tool.pounce]\nbacklog = 0\n"},
            {},
            {},
            None,
            "pyproject.toml [tool.pounce]: backlog must be between 1 and 1048576, got 0",
        ),
        ({"pounce.toml": "port = \n"}, {}, {}, None, "pounce.toml: invalid TOML: "),
        ({}, {}, {}, "missing.toml", "missing.toml: no such file"),
        (
            {"pounce.toml": "uds = '/tmp/s'\n"},
            {"POUNCE_FD": "3"},
            {},
            None,
            "pounce.toml, POUNCE_FD: uds and fd are mutually exclusive",
        ),
        ({}, {}, {"host": ""}, None, "--host: host must not be empty unless uds or fd is given"),
        (
            {},
            {},
            {"root_path": "a\0b"},
            None,
            "--root-path: root_path must not contain NUL characters",
        ),
    ],
)
def test_load_errors(tmp_path, files, environ, cli, config_file, message):
    for name, text in files.items():
        write(tmp_path / name, text)
    with pytest.raises(ConfigError) as info:
        load_config(cli, environ=environ, cwd=str(tmp_path), config_file=config_file)
    text = str(info.value)
    assert "\n" not in text
    if message.endswith(": "):
        assert text.startswith(message)
    else:
        assert text == message


def test_overridden_bad_value_is_not_an_error(tmp_path):
    # Only the winning value of each setting is validated.
    write(tmp_path / "pounce.toml", "port = 70000\n")
    c = load_config({"port": "1"}, environ={"POUNCE_PORT": "2"}, cwd=str(tmp_path))
    assert c.port == 1


# ---- docs -----------------------------------------------------------------


def test_config_docs_up_to_date():
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_config_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def test_config_docs_check_detects_stale(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text("old\n")
    script = str(ROOT / "scripts" / "gen_config_docs.py")
    r = subprocess.run([sys.executable, script, "--check", "--output", str(stale)])
    assert r.returncode == 1
    r = subprocess.run([sys.executable, script, "--output", str(stale)])
    assert r.returncode == 0
    text = stale.read_text()
    for name, kind, *_ in SETTINGS:
        assert f"`{name}`" in text and f"POUNCE_{name.upper()}" in text
    r = subprocess.run([sys.executable, script, "--check", "--output", str(stale)])
    assert r.returncode == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"compression_order": "gzip,lz4"}, "compression_order: unknown or repeated codec 'lz4'"),
        ({"compression_order": "gzip,gzip"}, "compression_order: unknown or repeated codec 'gzip'"),
        ({"compression_types": "not a type"}, "compression_types must be comma-separated"),
    ],
)
def test_compression_settings_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Config(**kwargs)
