"""Crontab fields are stored, planned, shown and exported as the manifest spells them (issue 14).

Against a real redis-server: the bytes in Redis, the writes an apply makes
(Redis' own command statistics), ``status`` and ``export``; and celery-redbeat
2.4.2, in its own venv, reads what was stored as the same schedule.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery.schedules import crontab
from support.beat import current, make_app, recording_scheduler_class
from support.celery_redbeat_venv import run_compat_script
from support.redis_proc import commandstats, write_calls

from reconciler.cli.main import main
from reconciler.sync.plan import Op
from reconciler.sync.reconcile import PlanOptions, connect, load, make_plan, reconcile
from redbeat import RedBeatSchedulerEntry as Entry
from redbeat.codec import encode_meta
from redbeat.timing import next_occurrence

UTC = timezone.utc
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday


def write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "jobs.yaml").write_text(text, encoding="utf-8")
    return directory


def weekend(spelling: str) -> str:
    return f'schedules:\n  - {{name: weekend, task: app.tasks.t, cron: "0 0 * * {spelling}"}}\n'


def stored_schedule(redis_client: Any, name: str) -> dict[str, Any]:
    schedule: dict[str, Any] = json.loads(redis_client.hget(f"redbeat:{name}", "definition"))["schedule"]
    return schedule


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("REDBEAT_") or name == "NO_COLOR":
            monkeypatch.delenv(name)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, _ = capsys.readouterr()
    return code, out


def test_applied_as_written_reapplied_without_a_write_and_shown_as_written(
    redis_url: str, redis_client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = write(tmp_path / "schedules", weekend("sat,sun"))
    assert cli(capsys, "--redis-url", redis_url, str(manifests))[0] == 0
    raw = redis_client.hget("redbeat:weekend", "definition")
    assert '"day_of_week": "sat,sun"' in raw
    assert stored_schedule(redis_client, "weekend") == {
        "__type__": "crontab", "minute": "0", "hour": "0", "day_of_week": "sat,sun", "day_of_month": "*",
        "month_of_year": "*",
    }  # fmt: skip

    redis_client.config_resetstat()
    code, out = cli(capsys, "--redis-url", redis_url, str(manifests))
    assert (code, out) == (0, "No changes. 1 unchanged.\n")
    assert write_calls(commandstats(redis_client)) == {}

    code, out = cli(capsys, "status", "--redis-url", redis_url)
    assert code == 0 and "cron 0 0 * * sat,sun" in out
    code, out = cli(capsys, "status", "--redis-url", redis_url, "-o", "json")
    assert [row["schedule"] for row in json.loads(out)["entries"]] == ["cron 0 0 * * sat,sun"]

    exported = tmp_path / "exported"
    assert cli(capsys, "export", "--redis-url", redis_url, str(exported))[0] == 0
    [schedule] = yaml.safe_load((exported / "default.yaml").read_text(encoding="utf-8"))["schedules"]
    assert schedule["cron"] == "0 0 * * sat,sun"
    # export, then apply: nothing to do
    redis_client.config_resetstat()
    assert cli(capsys, "--redis-url", redis_url, str(exported)) == (0, "No changes. 1 unchanged.\n")
    assert write_calls(commandstats(redis_client)) == {}


@pytest.mark.parametrize(("before", "after"), [("0,6", "sat,sun"), ("sat,sun", "0,6")])
def test_a_respelling_is_one_write_that_keeps_run_state_then_a_noop(
    redis_url: str, redis_client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], before: str, after: str
) -> None:
    target = connect(redis_url)
    reconcile(load([write(tmp_path / "old", weekend(before))]), target)
    meta = encode_meta(NOW, 4)
    redis_client.hset("redbeat:weekend", "meta", meta)  # as beat records a run
    redis_client.zadd("redbeat::schedule", {"redbeat:weekend": 1_796_256_000.0})
    manifests = write(tmp_path / "new", weekend(after))

    code, out = cli(capsys, "--redis-url", redis_url, "--dry-run", str(manifests))
    assert code == 0
    assert out == (
        "~ update   weekend\n"
        f'      respelled crontab.day_of_week: "{before}" -> "{after}" (same times)\n'
        "\n"
        "Plan: 0 to create, 1 to update (1 only respelled), 0 to delete, 0 unchanged.\n"
        "Dry run: nothing was written.\n"
    )
    assert stored_schedule(redis_client, "weekend")["day_of_week"] == before  # a dry run writes nothing

    redis_client.config_resetstat()
    outcome = reconcile(load([manifests]), target)
    assert [(c.op, c.reschedule) for c in outcome.plan.changes] == [(Op.UPDATE, False)]
    writes = write_calls(commandstats(redis_client))
    assert sum(n for name, n in writes.items() if name in ("eval", "evalsha")) == 1, writes
    assert stored_schedule(redis_client, "weekend")["day_of_week"] == after
    assert redis_client.hget("redbeat:weekend", "meta") == meta
    assert redis_client.zscore("redbeat::schedule", "redbeat:weekend") == 1_796_256_000.0

    redis_client.config_resetstat()
    again = make_plan(load([manifests]), target, PlanOptions())
    assert [c.op for c in again.changes] == [Op.NOOP]
    assert reconcile(load([manifests]), target).result is None
    assert write_calls(commandstats(redis_client)) == {}


#: Spellings a person writes, and the text that must be stored for each field (cron order).
SPELLINGS = {
    "weekend": ('cron: "0 0 * * sat,sun"', {"day_of_week": "sat,sun"}),
    "shouting": ('crontab: {minute: 30, hour: 6, day_of_week: "SAT,sun"}', {"day_of_week": "SAT,sun"}),
    "half-years": ('cron: "0 0 1 1,7 *"', {"month_of_year": "1,7"}),
    "quarters": ('cron: "0 6 1 jan,apr,jul,oct *"', {"month_of_year": "jan,apr,jul,oct"}),
    "office": ('cron: "*/15 9-17 * * mon-fri"', {"minute": "*/15", "hour": "9-17", "day_of_week": "mon-fri"}),
    "wrapped": ('crontab: {minute: 0, hour: 12, day_of_week: "fri-mon/2"}', {"day_of_week": "fri-mon/2"}),
    "night": ('cron: "0 22-2 * * *"', {"hour": "22-2"}),
    # Celery refuses day of week 7: stored as Celery reads Sunday
    "monday-and-sunday": ('cron: "0 0 * * 1,7"', {"day_of_week": "0,1"}),
}


@pytest.mark.compat
def test_celery_redbeat_reads_the_written_spelling_as_the_same_schedule(
    celery_redbeat_python: Path, redis_url: str, redis_client: Any, tmp_path: Path
) -> None:
    lines = ["defaults: {task: app.tasks.t}", "schedules:"]
    lines += [f"  - {{name: {name}, {text}}}" for name, (text, _) in SPELLINGS.items()]
    reconcile(load([write(tmp_path, "\n".join(lines) + "\n")]), connect(redis_url))
    for name in SPELLINGS:
        # last run at NOW: the next run is the first slot after it, for celery-redbeat and for us
        redis_client.hset(f"redbeat:{name}", "meta", encode_meta(NOW, 1))
    args = ["--redis-url", redis_url, "--prefix", "redbeat:", "--now", NOW.isoformat()]
    theirs = json.loads(run_compat_script("cr_read.py", *args, python=celery_redbeat_python))
    assert theirs["errors"] == []
    read = {entry["name"]: entry for entry in theirs["entries"]}
    assert sorted(read) == sorted(SPELLINGS)

    app = make_app(redis_url, now=NOW)
    with current(app):
        for name, (_, spelled) in SPELLINGS.items():
            stored = stored_schedule(redis_client, name)
            assert {field: stored[field] for field in spelled} == spelled, name
            # celery-redbeat's crontab holds the stored text (its repr and Flower show it) ...
            assert {field: read[name]["schedule"][field] for field in spelled} == spelled, name
            # ... and runs it when we do
            fields = {k: v for k, v in stored.items() if k != "__type__"}
            ours = next_occurrence(crontab(**fields), NOW, tz=UTC)
            assert ours is not None and ours > NOW, name
            assert read[name]["due_at"] == ours.isoformat(), name
            assert Entry.from_key(f"redbeat:{name}", app=app).due_at == ours, name


def test_beat_runs_the_written_spelling_and_its_own_writes_keep_it(
    redis_url: str, redis_client: Any, tmp_path: Path
) -> None:
    reconcile(load([write(tmp_path, weekend("sat,sun"))]), connect(redis_url))
    static = crontab(minute=0, hour=0, day_of_week="SAT,sun")
    statics = {"weekend-static": {"task": "app.tasks.s", "schedule": static}}
    saturday = datetime(2026, 12, 5, 0, 0, 1, tzinfo=UTC)
    app = make_app(redis_url, now=saturday, redbeat_lock_key=None, beat_schedule=statics)
    with current(app):
        scheduler = recording_scheduler_class()(app=app)  # syncs beat_schedule into Redis
        assert stored_schedule(redis_client, "weekend-static")["day_of_week"] == "SAT,sun"
        entry = Entry.from_key("redbeat:weekend", app=app)
        assert entry.schedule.day_of_week == {0, 6}
        entry.save()  # beat's own write of the definition
        assert stored_schedule(redis_client, "weekend")["day_of_week"] == "sat,sun"
        redis_client.zadd("redbeat::schedule", {"redbeat:weekend": 0, "redbeat:weekend-static": 0})
        scheduler.tick()  # runs the Saturday slot and records it
    # the new static waits for its first slot after it was created (Sunday); the applied entry runs Saturday's
    assert scheduler.sent_names == ["weekend"]
    assert json.loads(redis_client.hget("redbeat:weekend", "meta"))["total_run_count"] == 1
    for name, spelled in (("weekend", "sat,sun"), ("weekend-static", "SAT,sun")):
        assert stored_schedule(redis_client, name)["day_of_week"] == spelled, name
