"""Structured logs for watch mode: one line per event, as JSON or as ``key=value`` text.

An event is a short message plus fields (``log(logger, "applied", changes=3)``).
``--log-format json`` writes one JSON object per line (``ts``, ``level``,
``logger``, ``event`` and the fields), for log collectors; ``text`` writes
``2026-01-02T03:04:05.678Z INFO applied changes=3``, for people.  Values are
never schedule arguments: callers log names and field paths, not kwargs, so
secrets stay out of logs; every URL in a line (a Redis error names one) has its
credentials masked.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, Literal, TextIO

from redbeat.redaction import redact_text

LogFormat = Literal["json", "text"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")

_FIELDS = "redbeat_fields"


def log(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with structured ``fields``."""
    logger.log(level, event, extra={_FIELDS: fields})


def _fields(record: logging.LogRecord) -> Mapping[str, Any]:
    return getattr(record, _FIELDS, None) or {}


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in _fields(record).items():
            document.setdefault(key, value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return redact_text(json.dumps(document, default=str, ensure_ascii=False))


def _text_value(value: Any) -> str:
    if isinstance(value, str) and value and not any(c in value for c in ' ="\n'):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.getMessage()]
        parts += [f"{key}={_text_value(value)}" for key, value in _fields(record).items()]
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return redact_text(text)


def configure(log_format: LogFormat, stream: TextIO | None = None, level: int = logging.INFO) -> logging.Handler:
    """Send the ``reconciler`` loggers to ``stream`` (stderr) in ``log_format``; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logger = logging.getLogger("reconciler")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler
