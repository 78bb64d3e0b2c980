"""The demo's tasks.  Each records its run in the run log (see :mod:`demo.runlog`) and returns a short text."""

from __future__ import annotations

import logging
from typing import Any

from . import app
from .runlog import record

logger = logging.getLogger(__name__)


@app.task(name="demo.tasks.heartbeat")
def heartbeat(*args: Any, **kwargs: Any) -> str:
    record("demo.tasks.heartbeat", args, kwargs)
    return "alive"


@app.task(name="demo.tasks.report")
def report(*args: Any, format: str = "text", **kwargs: Any) -> str:
    record("demo.tasks.report", args, {"format": format, **kwargs})
    return f"report as {format}"


@app.task(name="demo.tasks.cleanup")
def cleanup(path: str = "tmp", *args: Any, **kwargs: Any) -> str:
    # A demo: it says what it would remove, and removes nothing.
    record("demo.tasks.cleanup", (path, *args), kwargs)
    logger.info("cleanup of %s (dry run)", path)
    return f"cleaned {path}"
