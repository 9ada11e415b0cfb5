"""Pounce: an ASGI server for CPython with a C core.

    pounce myapp:app --workers 4

Programmatic use::

    import pounce
    pounce.run(app, port=8000, workers=2)

``pounce.Config(**settings)`` builds and validates an immutable
configuration; its fields are readable and assignment raises.

``import pounce`` alone loads nothing else: the main process of the
``pounce`` command imports this package but must stay small, so ``Config``
and ``__version__`` come from the C extension when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pounce._pounce import VERSION as __version__
    from pounce._pounce import Config

__all__ = ["Config", "run", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Config":
        from pounce._pounce import Config

        return Config
    if name == "__version__":
        from pounce._pounce import VERSION

        return VERSION
    raise AttributeError(f"module 'pounce' has no attribute {name!r}")


def run(app: Any, **settings: Any) -> int:
    """Run ``app`` in this process until SIGINT/SIGTERM with the given
    settings (the same names as the command-line options, with
    underscores).  Returns the exit status.  ``app`` may be an ASGI callable
    or a "module:attribute" string.  Unlike the ``pounce`` command, this
    cannot reload on SIGHUP: the caller's process is the server."""
    import os

    from pounce._config import check_static
    from pounce._importer import import_app
    from pounce._logging import recheck as recheck_logging
    from pounce._logging import setup_logging
    from pounce._pounce import Config
    from pounce._server import serve

    config = settings.pop("config", None)
    # A level that log_config gives 'pounce' wins unless log_level is set here.
    level_given = "log_level" in settings or config is not None
    if settings.get("workers") == "auto":
        settings["workers"] = 0  # as on the command line: one per usable CPU
    # --static's DIRs are checked and made absolute, as on the command line.
    check_static(settings, os.getcwd())
    if config is None:
        config = Config(**settings)
    elif settings:
        config = config.replace(**settings)
    setup_logging(
        config.log_level,
        config.log_config,
        config.log_format,
        level_given=level_given,
        app_dir=config.app_dir,
    )
    if isinstance(app, str):
        app = import_app(app, factory=config.factory, app_dir=config.app_dir)
    recheck_logging()  # the app may have configured logging at import
    return serve(app, config)
