"""Green validate means beat can run it: validate -> apply -> real beat ticks on a real redis-server.

The property drives schedule kinds, values and options (hypothesis) through
the manifest converter; whatever it accepts is applied with redbeat-apply's
own code, and RedBeatScheduler (Celery's real send path, an in-memory broker)
must then send it at its first due time, with no error or "lost" line. The
examples below it show that what validate now refuses does fail in beat.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.beat import current, make_app, recording_scheduler_class

from reconciler.core.errors import FieldError, Location
from reconciler.core.model import DesiredEntry
from reconciler.schedules.convert import manifest_to_entry
from reconciler.sync.reconcile import connect, reconcile
from redbeat import RedBeatScheduler

HERE = Location(Path("x.yaml"), 1, 1, "")
KEY = "redbeat:job"
SCHEDULE = "redbeat::schedule"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def beat_log() -> Iterator[_Lines]:
    handler = _Lines()
    logger = logging.getLogger("celery.beat")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _cron_field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        value.map(str),
        st.tuples(value, value).map(lambda pair: f"{min(pair)}-{max(pair)}"),
        st.integers(1, high - low + 1).map(lambda step: f"*/{step}"),
        st.lists(value, min_size=1, max_size=3).map(lambda items: ",".join(map(str, items))),
    )


DURATIONS = st.one_of(
    st.floats(0.05, 3.2e9, allow_nan=False),
    st.floats(0.1, 86_400.0, allow_nan=False),
    st.integers(1, 3_600),
    st.integers(1, 40_000).map(lambda days: f"{days}d"),
    st.integers(1, 5_000).map(lambda ms: f"{ms}ms"),
    st.sampled_from(["1h30m", "90s", "0.5s", "3000000d"]),
)
EXPIRES = st.one_of(
    st.floats(-10, 1e12, allow_nan=False),
    st.integers(-5, 400).map(lambda days: (datetime.now(UTC) + timedelta(days=days)).isoformat()),
    st.integers(1, 400).map(lambda days: (datetime.now(UTC) + timedelta(days=days)).replace(tzinfo=None).isoformat()),
    st.sampled_from(["tomorrow", "2026-13-45", "1.0e300", "2099-02-30T00:00:00Z", ""]),
)
KINDS = st.one_of(
    st.fixed_dictionaries({"every": DURATIONS}),
    st.fixed_dictionaries({"every": st.floats(0.1, 1e6, allow_nan=False)}),
    st.fixed_dictionaries({"crontab": st.fixed_dictionaries({
        "minute": _cron_field(0, 59), "hour": _cron_field(0, 23),
        "day_of_month": _cron_field(1, 31), "month_of_year": _cron_field(1, 12),
    })}),
    st.tuples(_cron_field(0, 59), _cron_field(1, 31), _cron_field(1, 12)).map(
        lambda f: {"cron": f"{f[0]} 3 {f[1]} {f[2]} *"}
    ),
    st.integers(1, 3000).map(lambda days: {"at": (datetime.now(UTC) + timedelta(days=days)).replace(
        microsecond=0).isoformat()}),
    st.fixed_dictionaries({"rrule": st.fixed_dictionaries({
        "freq": st.sampled_from(["yearly", "monthly", "weekly", "daily"]),
        "dtstart": st.just("2026-01-01T09:00:00+00:00"),
        "interval": st.integers(1, 2000),
        "bymonthday": st.lists(st.integers(1, 31), min_size=1, max_size=2),
    })}),
    # plain and numbered weekdays together: dateutil alone intersects them, beat and validate unite them
    st.fixed_dictionaries({"rrule": st.fixed_dictionaries({
        "freq": st.sampled_from(["yearly", "monthly", "weekly"]),
        "dtstart": st.just("2026-01-01T09:00:00+00:00"),
        "byweekday": st.lists(st.sampled_from(["mo", "fr", "-1fr", "1su", "2we", "5th", "-5sa", "53mo"]),
                              min_size=1, max_size=3, unique=True),
    })}),
)


def schedules(jitter: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(
        KINDS,
        st.one_of(st.none(), st.integers(1, 86_400), EXPIRES),
        jitter,
        st.sampled_from([None, "Europe/Berlin", "Pacific/Kiritimati"]),
    ).map(lambda parts: {
        "name": "job", "task": "app.tasks.job", **parts[0],
        **({"options": {"expires": parts[1]}} if parts[1] is not None else {}),
        **({"jitter": parts[2]} if parts[2] is not None else {}),
        **({"timezone": parts[3]} if parts[3] is not None and not {"every", "at"} & set(parts[0]) else {}),
    })


def _runs(client: Any) -> int:
    raw = client.hget(KEY, "meta")
    return int(json.loads(raw).get("total_run_count", 0)) if raw else 0


def _beat_runs_it(redis_url: str, client: Any, desired: DesiredEntry, log: _Lines) -> tuple[int, float, list[str]]:
    """Apply ``desired`` at now, then let beat tick up to its first due time (and a little past it).

    Returns (runs, seconds from the apply to the tick that sent it, beat's warning lines about it).
    """
    app = make_app(redis_url, now=datetime.now(UTC).replace(microsecond=0), redbeat_lock_key=None)
    start = app.now.value
    reconcile({"job": desired}, connect(redis_url), clock=lambda: start.timestamp())
    with current(app):
        scheduler = RedBeatScheduler(app=app)
        try:
            for _ in range(4):
                scheduler.tick()
                if _runs(client):
                    break
                score = client.zscore(SCHEDULE, KEY)
                assert score is not None and score >= 0, f"beat dropped the entry (score {score})"
                # A never-run entry waiting out its jitter stays filed under its slot; beat wakes at the slot
                # plus the jitter at the latest, so that is when the next tick looks.
                jitter = timedelta(seconds=float((desired.ext or {}).get("jitter", 0.0)))
                latest = datetime.fromtimestamp(score, UTC) + jitter + timedelta(milliseconds=1)
                app.now.set(max(app.now.value, latest))
        finally:
            scheduler.close()
    elapsed = (app.now.value - start).total_seconds()
    return _runs(client), elapsed, [line for line in log.lines if "job" in line or "never" in line]


def _check_sent_at_first_due_time(
    redis_url: str, redis_client: Any, beat_log: _Lines, manifest: dict[str, Any]
) -> None:
    try:
        definition, ext = manifest_to_entry(manifest)
    except FieldError:
        return  # refused: the examples below show beat would fail on these
    redis_client.flushdb()
    beat_log.lines.clear()
    runs, elapsed, problems = _beat_runs_it(
        redis_url, redis_client, DesiredEntry("job", definition, ext, False, HERE), beat_log
    )
    assert problems == []
    assert runs == 1, f"{manifest} was not sent at its first due time"
    if definition["schedule"]["__type__"] == "interval":  # a new entry runs within its first period plus its jitter
        assert elapsed <= definition["schedule"]["every"] + (ext or {}).get("jitter", 0.0) + 0.01, elapsed


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedules(st.none()))
def test_what_validate_accepts_beat_sends_at_its_first_due_time(redis_url, redis_client, beat_log, manifest):
    _check_sent_at_first_due_time(redis_url, redis_client, beat_log, manifest)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedules(DURATIONS))
def test_what_validate_accepts_with_a_jitter_beat_sends_at_its_first_due_time(
    redis_url, redis_client, beat_log, manifest
):
    _check_sent_at_first_due_time(redis_url, redis_client, beat_log, manifest)


def test_beat_runs_every_monday_and_the_last_friday_as_validate_accepts_it(redis_url, redis_client):
    """``byweekday: ["-1fr", "mo"]`` is the union of RFC 5545 (validate once called it "never fires")."""
    rule = {"freq": "monthly", "byweekday": ["-1fr", "mo"], "dtstart": "2026-01-01T09:00:00+00:00"}
    definition, ext = manifest_to_entry({"name": "job", "task": "app.tasks.job", "rrule": rule})
    start = datetime(2026, 1, 22, 10, 0, tzinfo=UTC)
    reconcile({"job": DesiredEntry("job", definition, ext, False, HERE)}, connect(redis_url),
              clock=lambda: start.timestamp())  # fmt: skip
    app = make_app(redis_url, now=start, redbeat_lock_key=None, result_expires=None)
    ticks = {  # (day of January 2026, whether it runs): the 23rd is a Friday but not the last one
        23: False, 24: False, 26: True, 27: False, 30: True,
    }  # fmt: skip
    with current(app):
        scheduler = recording_scheduler_class()(app=app)
        try:
            for day, runs in ticks.items():
                app.now.set(datetime(2026, 1, day, 9, 0, 1, tzinfo=UTC))
                before = scheduler.sent_names.count("job")
                scheduler.tick()
                assert (scheduler.sent_names.count("job") > before) == runs, day
        finally:
            scheduler.close()
    assert _runs(redis_client) == 2


def _raw(schedule: dict[str, Any], options: dict[str, Any] | None = None) -> str:
    return json.dumps(
        {
            "name": "job",
            "task": "app.tasks.job",
            "args": [],
            "kwargs": {},
            "options": options or {},
            "schedule": schedule,
            "enabled": True,
        }
    )


INTERVAL = {"__type__": "interval", "every": 60.0, "relative": False}
REFUSED = {
    "cron 0 0 30 2 *": (
        {"cron": "0 0 30 2 *"},
        _raw(
            {
                "__type__": "crontab",
                "minute": "0",
                "hour": "0",
                "day_of_week": "*",
                "day_of_month": "30",
                "month_of_year": "2",
            }
        ),
    ),
    "expires tomorrow": ({"every": 60, "options": {"expires": "tomorrow"}}, _raw(INTERVAL, {"expires": "tomorrow"})),
    "expires 2026-13-45": (
        {"every": 60, "options": {"expires": "2026-13-45"}},
        _raw(INTERVAL, {"expires": "2026-13-45"}),
    ),
    "expires 1.0e300": ({"every": 60, "options": {"expires": 1.0e300}}, _raw(INTERVAL, {"expires": 1.0e300})),
    "every 3000000d": ({"every": "3000000d"}, _raw({**INTERVAL, "every": 3000000 * 86400.0})),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_validate_refuses_fails_in_beat(redis_url, redis_client, beat_log, case):
    manifest, stored = REFUSED[case]
    with pytest.raises(FieldError):
        manifest_to_entry({"name": "job", "task": "app.tasks.job", **manifest})
    redis_client.hset(KEY, mapping={"definition": stored, "meta": json.dumps({"total_run_count": 1})})
    redis_client.zadd(SCHEDULE, {KEY: 0})
    app = make_app(redis_url, now=datetime.now(UTC), redbeat_lock_key=None)
    with current(app):
        scheduler = RedBeatScheduler(app=app)
        try:
            scheduler.tick()
        finally:
            scheduler.close()
    assert [line for line in beat_log.lines if KEY in line or "job" in line], beat_log.lines
