"""pounce._importer.import_app, in process."""

import os
import pathlib
import sys

import pytest

from pounce._importer import AppImportError, import_app

APPS = pathlib.Path(__file__).resolve().parent / "apps_import"


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """Run from tests/apps_import with a private sys.path and forget the
    test modules afterwards, so each test imports them afresh."""
    monkeypatch.chdir(APPS)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(APPS))])
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("imp_"):
            del sys.modules[name]


def message(spec, **kw):
    with pytest.raises(AppImportError) as info:
        import_app(spec, **kw)
    return str(info.value)


def test_imports_attribute():
    app = import_app("imp_good:app")
    assert app is sys.modules["imp_good"].app
    assert sys.path[0] == os.getcwd()


def test_dotted_module_and_attribute():
    assert import_app("imp_pkg.sub:app") is sys.modules["imp_pkg.sub"].app
    good = import_app("imp_good:holder.app")
    assert good is sys.modules["imp_good"].app


def test_factory():
    assert import_app("imp_good:create_app", factory=True) is sys.modules["imp_good"].app


def test_app_dir(tmp_path):
    assert message("imp_in_app_dir:app") == (
        "could not import module 'imp_in_app_dir': No module named 'imp_in_app_dir'"
    )
    app = import_app("imp_in_app_dir:app", app_dir="other_dir")
    assert callable(app)
    assert sys.path[0] == str(APPS / "other_dir") and sys.path[1] == str(APPS)


@pytest.mark.parametrize(
    "spec",
    ["x", "x:", ":y", "a:b:c", "a b:c", "1mod:app", "mod:app.", "mod:.app", "", "mod.:app"],
)
def test_bad_spec(spec):
    assert message(spec) == f"APP must look like 'module:attribute', got {spec!r}"


def test_missing_module():
    assert message("no_such_module_xyz:app") == (
        "could not import module 'no_such_module_xyz': No module named 'no_such_module_xyz'"
    )


def test_missing_parent_package():
    assert message("no_such_pkg_xyz.sub:app") == (
        "could not import module 'no_such_pkg_xyz.sub': No module named 'no_such_pkg_xyz'"
    )


def test_missing_submodule():
    assert message("imp_pkg.nope:app") == (
        "could not import module 'imp_pkg.nope': No module named 'imp_pkg.nope'"
    )


def test_missing_attribute():
    assert message("imp_good:nope") == "module 'imp_good' has no attribute 'nope'"
    assert message("imp_good:holder.nope") == "module 'imp_good' has no attribute 'holder.nope'"


def test_not_callable():
    assert message("imp_good:NOT_CALLABLE") == "'imp_good:NOT_CALLABLE' is not callable"
    assert message("imp_good:NOT_CALLABLE", factory=True) == (
        "'imp_good:NOT_CALLABLE' is not callable"
    )


def test_factory_returns_non_callable():
    assert message("imp_good:bad_factory", factory=True) == (
        "factory 'imp_good:bad_factory' returned a non-callable"
    )


def test_module_own_error_propagates():
    with pytest.raises(RuntimeError, match="boom from imp_raises"):
        import_app("imp_raises:app")


def test_module_missing_dependency_propagates():
    # The module exists; what it imports does not: that is the app's bug.
    with pytest.raises(ModuleNotFoundError) as info:
        import_app("imp_missing_dep:app")
    assert info.value.name == "pounce_test_no_such_dependency"
    assert not isinstance(info.value, AppImportError)


def test_factory_own_error_propagates():
    with pytest.raises(RuntimeError, match="boom from raising_factory"):
        import_app("imp_good:raising_factory", factory=True)
