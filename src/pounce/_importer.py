"""Import the ASGI app named by APP ('module:attribute').

Mistakes in APP itself (bad spec, missing module, missing attribute, not
callable) raise AppImportError with a one-line message.  An exception raised
by the app's own code while it is imported (or by its factory) is the app's
bug: it propagates unchanged so the caller can show its traceback.

Main thread only; it changes sys.path and sys.modules.
"""

from __future__ import annotations

import importlib
import os
import re
import sys

__all__ = ["AppImportError", "import_app"]

_DOTTED = r"[^\W\d]\w*(?:\.[^\W\d]\w*)*"
_SPEC_RE = re.compile(rf"({_DOTTED}):({_DOTTED})")


class AppImportError(Exception):
    """APP does not name a usable ASGI app; the message is one line."""


def _put_first(path: str) -> None:
    while path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)


def _is_missing(exc: ModuleNotFoundError, module: str) -> bool:
    """True if the module named in APP (or a package on its path) does not
    exist, False if it exists but itself imports something missing."""
    name = exc.name or ""
    return module == name or module.startswith(name + ".")


def import_app(spec: str, *, factory: bool = False, app_dir: str = "") -> object:
    m = _SPEC_RE.fullmatch(spec)
    if m is None:
        raise AppImportError(f"APP must look like 'module:attribute', got {spec!r}")
    module_name, attr_path = m.groups()

    # The current directory first, then app_dir ahead of it, so the app's
    # own modules win over installed ones of the same name.
    _put_first(os.getcwd())
    if app_dir:
        _put_first(os.path.abspath(app_dir))

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if _is_missing(e, module_name):
            raise AppImportError(f"could not import module {module_name!r}: {e}") from None
        raise

    obj: object = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppImportError(
                f"module {module_name!r} has no attribute {attr_path!r}"
            ) from None

    if not callable(obj):
        raise AppImportError(f"{spec!r} is not callable")
    if factory:
        obj = obj()
        if not callable(obj):
            raise AppImportError(f"factory {spec!r} returned a non-callable")
    return obj
