"""Shared by the cr_*.py scripts. Runs ONLY inside the celery-redbeat 2.4.2 venv (see CONTRIBUTING.md)."""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import inspect
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

EXPECTED_VERSION = "2.4.2"


def guard() -> None:
    """Refuse to run with anything but the published celery-redbeat (never our own `redbeat`)."""
    try:
        version = importlib.metadata.version("celery-redbeat")
    except importlib.metadata.PackageNotFoundError:
        sys.exit("tests/compat scripts must run with the celery-redbeat venv python "
                 "(.cache/celery-redbeat-venv/bin/python); celery-redbeat is not installed here")
    import redbeat

    where = Path(redbeat.__file__).resolve()
    if version != EXPECTED_VERSION or "site-packages" not in where.parts:
        sys.exit(f"expected the published celery-redbeat {EXPECTED_VERSION} in site-packages, "
                 f"got {version} at {where}")


def parse_now(text: str | None) -> datetime | None:
    if not text:
        return None
    now = datetime.fromisoformat(text)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now


def pin_now(now: datetime | None) -> None:
    """Make every Celery app's `now()` return `now` (in the app's timezone).

    celery.schedules.BaseSchedule.now, ScheduleEntry.default_now and redbeat's tick all go through
    `app.now()`, so patching the class method pins celery-redbeat's clock completely.
    """
    if now is None:
        return
    from celery import Celery

    def fixed_now(self):  # noqa: ANN001
        return now.astimezone(self.timezone)

    Celery.now = fixed_now


def make_app(redis_url: str, prefix: str, **conf):
    """A Celery app configured for celery-redbeat, made current (decoded schedules use current_app)."""
    from celery import Celery

    app = Celery("cr_compat", set_as_current=True)
    app.conf.update(
        broker_url="memory://",
        timezone="UTC",
        enable_utc=True,
        redbeat_redis_url=redis_url,
        redbeat_key_prefix=prefix,
        redbeat_lock_key=None,
        **conf,
    )
    app.set_current()
    app.set_default()
    return app


def app_from_command_line(description: str, *, now_required: bool = False, **conf):
    """Parse ``--redis-url --prefix [--now]``, pin the clock to ``--now`` and make the app: (app, now)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    default = "" if now_required else " (default: real time)"
    parser.add_argument("--now", required=now_required, help=f"ISO 8601 instant; app.now() is pinned to it{default}")
    args = parser.parse_args()
    now = parse_now(args.now)
    pin_now(now)
    return make_app(args.redis_url, args.prefix, **conf), now


def to_jsonable(value):
    """Plain JSON for things celery-redbeat hands back (datetimes, dateutil weekdays, tuples)."""
    from dateutil.rrule import weekday

    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, weekday):
        return repr(value)  # "MO", "FR(-1)"
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def emit(document) -> None:
    sys.stdout.write(json.dumps(to_jsonable(document), indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


def member_kind(cls: type, name: str) -> str:
    """method / property / constant, from the attribute as the class body defines it (not as bound); the same
    rule for celery-redbeat's classes (cr_public_names.py) and ours (test_public_names.py)."""
    raw = inspect.getattr_static(cls, name)
    if isinstance(raw, (property, functools.cached_property)):
        return "property"
    if isinstance(raw, (staticmethod, classmethod)) or inspect.isfunction(raw) or inspect.ismethoddescriptor(raw):
        return "method"
    return "constant"
