"""The Python shell's shape: imports go one way."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "pounce"

# ---- import direction -----------------------------------------------------

# Each server-side module and the pounce modules it may import (anywhere in
# it, function bodies included): protocol below, supervisor above, the
# serve() entry point on top, as in uvicorn and granian.
ALLOWED = {
    "_listeners": {"_pounce"},
    "_runner": {"_pounce", "_lifespan", "_listeners"},
    "_supervisor": {"_pounce", "_listeners", "_runner"},
    "_server": {"_pounce", "_listeners", "_runner", "_supervisor"},
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

