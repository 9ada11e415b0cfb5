"""The Python shell's shape: imports go one way, and the stub of the C
extension (src/pounce/_pounce.pyi) says what the built module exports."""

import ast
import importlib.resources
import inspect
import pathlib
import subprocess
import sys

import pytest

from pounce import _pounce

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "pounce"
STUB = SRC / "_pounce.pyi"
GEN = ROOT / "scripts" / "gen_stub.py"

# ---- import direction -----------------------------------------------------

# Each server-side module and the pounce modules it may import (anywhere in
# it, function bodies included): protocol below, supervisor above, the
# serve() entry point on top, as in uvicorn and granian.
ALLOWED = {
    "_control": set(),  # light: the master process imports it
    "_systemd": set(),
    "_reload": set(),  # light too: the master and its watcher process import it
    "_logging": set(),  # a leaf: every layer may log, and re-check logging
    "_listeners": {"_pounce", "_systemd"},
    "_metrics": {"_listeners"},  # --metrics-port: rendering and serving, no C
    "_runner": {"_pounce", "_control", "_lifespan", "_listeners", "_logging"},
    "_supervisor": {"_pounce", "_control", "_listeners", "_runner", "_metrics"},
    "_server": {"_pounce", "_control", "_listeners", "_runner", "_supervisor", "_metrics"},
    "_master": {
        "_pounce", "_control", "_listeners", "_logging", "_server", "_systemd", "_cli",
        "_importer", "_reload", "_metrics",
    },
}


def pounce_imports(path: pathlib.Path) -> set[str]:
    """The pounce modules `path` imports, by their name inside the package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "pounce" and len(parts) > 1 and (SRC / f"{parts[1]}.py").exists():
                found.add(parts[1])
            elif parts[0] == "pounce" and len(parts) > 1 and parts[1] == "_pounce":
                found.add("_pounce")
    return found


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_imports_go_one_way(module):
    assert pounce_imports(SRC / f"{module}.py") <= ALLOWED[module]


def test_no_module_of_the_shell_imports_one_above_it():
    # Whatever the layers, the graph of the whole package has no cycle.
    graph = {p.stem: pounce_imports(p) - {p.stem} for p in SRC.glob("*.py")}
    done: set[str] = set()

    def visit(mod: str, path: tuple[str, ...]) -> None:
        assert mod not in path, " -> ".join(path + (mod,))
        if mod in done:
            return
        for dep in graph.get(mod, ()):
            visit(dep, path + (mod,))
        done.add(mod)

    for mod in graph:
        visit(mod, ())


def test_import_checker_can_fail(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from pounce._supervisor import Supervisor\n")
    assert pounce_imports(bad) == {"_supervisor"}
    assert not pounce_imports(bad) <= ALLOWED["_runner"]


# ---- the stub ---------------------------------------------------------------


def stub_tree(text: str | None = None) -> ast.Module:
    return ast.parse(STUB.read_text() if text is None else text)


def declared(body: list[ast.stmt]) -> set[str]:
    """Public names a stub body declares (functions, classes, annotated
    names), dunders and _private names left out."""
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def stub_class(tree: ast.Module, name: str) -> ast.ClassDef:
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
    return cls


def public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_stub_declares_exactly_what_the_module_exports():
    tree = stub_tree()
    assert declared(tree.body) == public(_pounce)
    for cls in ("Config", "Worker"):
        assert declared(stub_class(tree, cls).body) == public(getattr(_pounce, cls)), cls


def test_stub_worker_signature_matches_the_type():
    # The C type's docstring carries its signature (an __text_signature__).
    runtime = inspect.signature(_pounce.Worker)
    node = next(
        n for n in stub_class(stub_tree(), "Worker").body
        if isinstance(n, ast.FunctionDef) and n.name == "__new__"
    )
    stub = [a.arg for a in node.args.args[1:]]  # without cls
    assert stub == list(runtime.parameters)


def test_stub_is_installed_with_the_package():
    installed = importlib.resources.files("pounce") / "_pounce.pyi"
    assert installed.read_text() == STUB.read_text(), "stale install: make build"
    assert (importlib.resources.files("pounce") / "py.typed").is_file()


def test_stub_config_is_up_to_date():
    r = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_stub_check_detects_stale(tmp_path):
    stale = tmp_path / "_pounce.pyi"
    text = STUB.read_text()
    # A setting the table no longer has, left in the generated block.
    extra = "    @property\n    def gone(self) -> int: ...\n"
    stale.write_text(text.replace("    def __eq__(", extra + "    def __eq__(", 1))
    r = subprocess.run([sys.executable, str(GEN), "--check", "--output", str(stale)])
    assert r.returncode == 1
    r = subprocess.run([sys.executable, str(GEN), "--output", str(stale)])
    assert r.returncode == 0
    assert stale.read_text() == text
    config = stub_class(stub_tree(stale.read_text()), "Config")
    props = {n.name for n in config.body if isinstance(n, ast.FunctionDef) and n.decorator_list}
    assert props == {row[0] for row in _pounce.SETTINGS}
