"""Helpers for scheduler tests: a pinned clock, a recording scheduler, a round-trip counting client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from celery import Celery

UTC = timezone.utc
#: The instant scheduler tests pin beat's clock to (tests/integration's ``app`` fixture): a Wednesday noon, UTC.
PINNED_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Clock:
    """``app.now`` pinned to an instant the test moves on explicitly."""

    def __init__(self, now: datetime, app: Celery | None = None) -> None:
        self.value = now
        self.app = app

    def __call__(self) -> datetime:
        if self.app is not None:
            return self.value.astimezone(self.app.timezone)
        return self.value

    def set(self, now: datetime) -> None:
        self.value = now

    def advance(self, seconds: float) -> datetime:
        self.value = self.value + timedelta(seconds=seconds)
        return self.value


@contextmanager
def current(app: Celery) -> Iterator[Celery]:
    """Make ``app`` current and default as ``celery beat`` does (decoded schedules use current_app)."""
    from celery import _state

    previous_default, previous_current = _state.default_app, getattr(_state._tls, "current_app", None)
    app.set_current()
    app.set_default()
    try:
        yield app
    finally:
        _state.set_default_app(previous_default)
        _state._tls.current_app = previous_current


def make_app(redis_url: str, *, now: datetime | None = None, **conf: Any) -> Celery:
    app = Celery("redbeat-test", set_as_current=False)
    settings = {"broker_url": "memory://", "timezone": "UTC", "enable_utc": True, "redbeat_redis_url": redis_url,
                "beat_max_loop_interval": 300}
    settings.update(conf)
    app.conf.update(settings)
    if now is not None:
        app.now = Clock(now, app)
    return app


@dataclass
class Sent:
    name: str
    task: str
    args: Any
    kwargs: Any
    options: Any
    last_run_at: datetime | None
    total_run_count: int


def recording_scheduler_class():
    from redbeat import RedBeatScheduler

    class RecordingScheduler(RedBeatScheduler):
        """Celery's apply_entry replaced by a recorder: what would have been sent, in order."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.sent: list[Sent] = []
            super().__init__(*args, **kwargs)

        def apply_entry(self, entry: Any, producer: Any = None) -> None:
            self.sent.append(Sent(entry.name, entry.task, entry.args, entry.kwargs, entry.options,
                                  entry.last_run_at, entry.total_run_count))

        @property
        def sent_names(self) -> list[str]:
            return [s.name for s in self.sent]

    return RecordingScheduler


@dataclass
class RoundTrips:
    """Counts what a redis-py client sends: one packed send is one round trip (a pipeline is one)."""

    count: int = 0
    commands: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.count = 0
        self.commands.clear()


def counting_client(url: str) -> tuple[redis.Redis, RoundTrips]:
    trips = RoundTrips()

    class CountingConnection(redis.Connection):
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            trips.count += 1
            trips.commands.append(_first_command(command))
            super().send_packed_command(command, check_health)

    pool = redis.ConnectionPool.from_url(url, decode_responses=True, connection_class=CountingConnection)
    return redis.Redis(connection_pool=pool), trips


def _first_command(packed: Any) -> str:
    chunks = packed if isinstance(packed, list) else [packed]
    raw = b"".join(c if isinstance(c, bytes) else bytes(c) for c in chunks)
    parts = raw.split(b"\r\n")
    return parts[2].decode(errors="replace").upper() if len(parts) > 2 else "?"


def definition(name: str, task: str, every: float | None = None, *, enabled: bool = True, **cron: str) -> str:
    """A celery-redbeat definition JSON, written by hand as its users do."""
    if every is not None:
        sched: dict[str, Any] = {"__type__": "interval", "every": float(every), "relative": False}
    else:
        sched = {"__type__": "crontab", "minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*",
                 "month_of_year": "*", **cron}
    return json.dumps({"name": name, "task": task, "args": [], "kwargs": {}, "options": {}, "schedule": sched,
                       "enabled": enabled})


def datetime_json(dt: datetime) -> dict[str, Any]:
    return {"__type__": "datetime", "year": dt.year, "month": dt.month, "day": dt.day, "hour": dt.hour,
            "minute": dt.minute, "second": dt.second, "microsecond": dt.microsecond, "timezone": "UTC"}


def meta(last_run_at: datetime | None, total_run_count: int | None = None) -> str:
    out: dict[str, Any] = {"last_run_at": None if last_run_at is None else datetime_json(last_run_at)}
    if total_run_count is not None:
        out["total_run_count"] = total_run_count
    return json.dumps(out)
