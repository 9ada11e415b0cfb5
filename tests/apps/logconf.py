"""An app that configures logging itself, for tests/test_logging_config.py.

LOGCONF_AT (environment) says when: "import" (the default: at module
import, as most apps do) or "lifespan" (in its lifespan startup).
LOGCONF_HOW says how:

* "root-json": ``logging.config.dictConfig`` with a JSON formatter on the
  root logger, everything else at dictConfig's defaults
  (``disable_existing_loggers`` True) -- issue 13's scenario;
* "root-json-keep": the same with ``disable_existing_loggers: False``;
* "pounce-json": the JSON handler on the 'pounce' logger itself (and one
  on the root: 'pounce' does not propagate, as the config says);
* "basic": ``logging.basicConfig`` (a text handler on the root, "APP|"
  prefix so that its lines can be told from Pounce's);
* "none": nothing (for the tests of --log-config and --log-format).

The JSON lines carry "via": "app" so that the test knows whose handler
wrote them.  GET / answers "ok"; GET /warn logs a warning on 'pounce.test'
from inside the worker (a Pounce child logger: its line must appear once);
GET /raise raises, so that the worker logs the error with its traceback.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os


class AppJSON(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {"via": "app", "logger": record.name, "level": record.levelname,
             "message": record.getMessage(), "pid": record.process}
        )


def configure() -> None:
    how = os.environ.get("LOGCONF_HOW", "root-json")
    if how == "none":
        return
    if how == "basic":
        logging.basicConfig(format="APP|%(name)s|%(message)s", level=logging.INFO)
        return
    config: dict = {
        "version": 1,
        "formatters": {"json": {"()": AppJSON}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json",
                              "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["json"], "level": "INFO"},
    }
    if how == "root-json-keep":
        config["disable_existing_loggers"] = False
    elif how == "pounce-json":
        config["loggers"] = {"pounce": {"handlers": ["json"], "level": "INFO",
                                        "propagate": False}}
    logging.config.dictConfig(config)


if os.environ.get("LOGCONF_AT", "import") == "import":
    configure()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if os.environ.get("LOGCONF_AT") == "lifespan":
                    configure()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/warn":
        logging.getLogger("pounce.test").warning("warn-from-worker %d", os.getpid())
    elif scope["path"] == "/raise":
        raise RuntimeError("raised-by-app\nsecond line")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
