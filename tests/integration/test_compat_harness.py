"""The celery-redbeat 2.4.2 harness itself: golden data, cr_read, cr_tick, dump/restore.

These pin what the published celery-redbeat writes, reads and sends, so tests of our scheduler can
rely on tests/data/celery_redbeat_2.4.2/*.json and the cr_*.py scripts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.celery_redbeat_venv import ROOT, run_compat_script
from support.redis_dump import dump, restore

DATA_DIR = ROOT / "tests" / "data" / "celery_redbeat_2.4.2"
GOLDEN = json.loads((DATA_DIR / "golden.json").read_text())
EXPECTED_READ_TEXT = (DATA_DIR / "expected_read.json").read_text()
NOW = GOLDEN["_meta"]["now"]
NOW_TS = 1795608000  # 2026-11-25T12:00:00Z
PREFIX = GOLDEN["prefix"]
SCHEDULE_KEY = PREFIX + ":schedule"
GOLDEN_DATA = {k: v for k, v in GOLDEN.items() if k != "_meta"}
ALL_NAMES = sorted(key[len(PREFIX):] for key in GOLDEN["hashes"])


def as_text(document) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def cr(script: str, python: Path, redis_url: str, *extra: str) -> dict:
    out = run_compat_script(script, "--redis-url", redis_url, "--prefix", PREFIX, *extra, python=python)
    return json.loads(out)


def meta_of(client, name: str) -> dict:
    return json.loads(client.hget(PREFIX + name, "meta"))


def test_golden_covers_the_representative_set():
    assert ALL_NAMES == [
        "advanced-twice", "celery.backend_cleanup", "cron-every-5", "cron-hour-list", "cron-month-days",
        "cron-quarterly", "cron-weekdays-0230", "disabled", "interval-30s", "interval-half-second",
        "interval-hourly-relative", "never-run", "overdue", "rescheduled", "rrule-count-until",
        "rrule-daily-plus2", "rrule-finished", "rrule-last-friday", "rrule-mo-fr", "static-cleanup",
        "static-every-2m", "with-args",
    ]
    assert set(GOLDEN["zset"]) == set(GOLDEN["hashes"])
    assert GOLDEN["sets"] == {PREFIX + ":statics": ["static-cleanup", "static-every-2m"]}
    assert GOLDEN["zset"][PREFIX + "rrule-finished"] == -1
    assert json.loads(GOLDEN["hashes"][PREFIX + "advanced-twice"]["meta"])["total_run_count"] == 2


def test_dump_restore_round_trips_every_type(redis_client):
    redis_client.hset("p:e", mapping={"definition": '{"a": 1}', "meta": "x"})
    redis_client.zadd("p::schedule", {"p:e": 12.5, "p:f": -1, "p:g": 1795608000})
    redis_client.zadd("p:other", {"m": 3})
    redis_client.sadd("p::statics", "b", "a")
    redis_client.set("p::lock", "token", px=600_000)
    redis_client.set("q:not-mine", "kept")
    first = dump(redis_client, "p:")
    assert first["zset"] == {"p:e": 12.5, "p:f": -1, "p:g": 1795608000}
    assert first["zsets"] == {"p:other": {"m": 3}}
    assert first["sets"] == {"p::statics": ["a", "b"]}
    assert first["strings"] == {"p::lock": "token"}
    assert 0 < first["ttl_ms"]["p::lock"] <= 600_000
    redis_client.set("p:stray", "deleted by restore")
    redis_client.hset("p:e", "extra", "deleted by restore")
    restore(redis_client, first)
    second = dump(redis_client, "p:")
    assert second["ttl_ms"]["p::lock"] <= first["ttl_ms"]["p::lock"]
    assert {**second, "ttl_ms": {}} == {**first, "ttl_ms": {}}
    assert redis_client.get("q:not-mine") == "kept"
    assert redis_client.zscore("p::schedule", "p:e") == 12.5


@pytest.mark.compat
def test_celery_redbeat_writes_exactly_the_golden_data(celery_redbeat_python, redis_client, redis_url):
    run_compat_script("cr_write.py", "--redis-url", redis_url, "--prefix", PREFIX, "--now", NOW,
                      python=celery_redbeat_python)
    assert dump(redis_client, PREFIX) == GOLDEN_DATA


@pytest.mark.compat
def test_restored_golden_reads_exactly_as_expected(celery_redbeat_python, redis_client, redis_url):
    restore(redis_client, GOLDEN)
    assert dump(redis_client, PREFIX) == GOLDEN_DATA
    read = cr("cr_read.py", celery_redbeat_python, redis_url, "--now", NOW)
    assert as_text(read) == EXPECTED_READ_TEXT
    assert read["errors"] == []
    # cr_read only reads: nothing changed
    assert dump(redis_client, PREFIX) == GOLDEN_DATA


@pytest.mark.compat
def test_tick_at_golden_now_sends_exactly_the_due_entries(celery_redbeat_python, redis_client, redis_url):
    restore(redis_client, GOLDEN)
    result = cr("cr_tick.py", celery_redbeat_python, redis_url, "--now", NOW)
    # ZRANGEBYSCORE order: rescheduled's score is 11:30Z (the crontab due_at bug, #307), the two
    # others 12:00Z. interval-half-second (score 12:00Z, due 12:00:00.5) is loaded but not due.
    assert [s["name"] for s in result["sent"]] == ["rescheduled", "never-run", "overdue"]
    assert [s["task"] for s in result["sent"]] == ["tasks.resched", "tasks.first", "tasks.late"]
    assert result["next_sleep"] == 0.5

    # celery-redbeat reserved them: meta rewritten with total_run_count, new score
    for name, score in (("never-run", NOW_TS + 600), ("overdue", NOW_TS + 600), ("rescheduled", NOW_TS + 7200)):
        meta = meta_of(redis_client, name)
        assert meta["total_run_count"] == 1
        assert (meta["last_run_at"]["hour"], meta["last_run_at"]["minute"]) == (12, 0)
        assert redis_client.zscore(SCHEDULE_KEY, PREFIX + name) == score
    after = dump(redis_client, PREFIX)
    untouched = [n for n in ALL_NAMES if n not in ("never-run", "overdue", "rescheduled")]
    for name in untouched:
        assert after["hashes"][PREFIX + name] == GOLDEN["hashes"][PREFIX + name], name
        assert after["zset"][PREFIX + name] == GOLDEN["zset"][PREFIX + name], name

    # the same instant again: nothing is due any more
    again = cr("cr_tick.py", celery_redbeat_python, redis_url, "--now", NOW)
    assert again["sent"] == []


@pytest.mark.compat
def test_tick_a_day_later_sends_everything_due_by_then(celery_redbeat_python, redis_client, redis_url):
    restore(redis_client, GOLDEN)
    result = cr("cr_tick.py", celery_redbeat_python, redis_url, "--now", "2026-11-26T12:00:00+00:00")
    # Not sent: disabled; rrule-finished (score -1); rrule-mo-fr and rrule-last-friday (Fri 27th);
    # cron-month-days and cron-quarterly (1st of the next months).
    # Sent in ZRANGEBYSCORE order (score, then key).
    assert [s["name"] for s in result["sent"]] == [
        "rescheduled", "interval-half-second", "never-run", "overdue", "interval-30s", "static-every-2m",
        "advanced-twice", "cron-every-5", "with-args", "interval-hourly-relative", "rrule-count-until",
        "rrule-daily-plus2", "cron-hour-list", "cron-weekdays-0230", "celery.backend_cleanup",
        "static-cleanup",
    ]
    by_name = {s["name"]: s for s in result["sent"]}
    assert by_name["with-args"] == {
        "name": "with-args", "task": "reports.build", "args": [42, "x", None, 1.5],
        "kwargs": {"format": "pdf", "pages": [1, 2], "deep": {"a": True}},
        "options": {"queue": "reports", "priority": 5, "expires": 3600},
    }
    assert by_name["static-every-2m"]["args"] == [1, 2]
    assert meta_of(redis_client, "advanced-twice")["total_run_count"] == 3
    assert redis_client.zscore(SCHEDULE_KEY, PREFIX + "disabled") == GOLDEN["zset"][PREFIX + "disabled"]


@pytest.mark.compat
def test_read_reports_every_broken_entry_and_keeps_going(celery_redbeat_python, redis_client, redis_url):
    restore(redis_client, GOLDEN)
    good_definition = json.loads(GOLDEN["hashes"][PREFIX + "interval-30s"]["definition"])
    redis_client.hset(PREFIX + "bad-json", "definition", "{not json")
    redis_client.hset(PREFIX + "bad-definition-field",
                      "definition", json.dumps({**good_definition, "name": "bad-definition-field", "tz": "UTC"}))
    redis_client.hset(PREFIX + "bad-meta-field", mapping={
        "definition": json.dumps({**good_definition, "name": "bad-meta-field"}),
        "meta": json.dumps({"last_run_at": None, "total_run_count": 0, "last_result": "ok"}),
    })
    redis_client.zadd(SCHEDULE_KEY, {PREFIX + n: NOW_TS for n in
                                     ("bad-json", "bad-definition-field", "bad-meta-field", "no-hash")})
    read = cr("cr_read.py", celery_redbeat_python, redis_url, "--now", NOW)
    errors = {e["key"][len(PREFIX):]: e["error"] for e in read["errors"]}
    assert sorted(errors) == ["bad-definition-field", "bad-json", "bad-meta-field", "no-hash"]
    assert errors["bad-json"].startswith("JSONDecodeError(")
    assert errors["no-hash"] == f"KeyError('{PREFIX}no-hash')"
    # celery-redbeat builds Entry(**definition, **meta): an unknown field is a TypeError
    assert errors["bad-definition-field"].startswith("TypeError(") and "'tz'" in errors["bad-definition-field"]
    assert errors["bad-meta-field"].startswith("TypeError(") and "last_result" in errors["bad-meta-field"]
    assert read["entries"] == json.loads(EXPECTED_READ_TEXT)["entries"]


@pytest.mark.compat
def test_celery_redbeat_tick_dies_on_one_corrupt_entry(celery_redbeat_python, redis_client, redis_url):
    """The behaviour docs/design.md §3.7 improves on: one bad due entry stops celery-redbeat's whole tick."""
    restore(redis_client, GOLDEN)
    redis_client.hset(PREFIX + "bad-json", "definition", "{not json")
    redis_client.zadd(SCHEDULE_KEY, {PREFIX + "bad-json": NOW_TS - 60})
    with pytest.raises(RuntimeError, match="JSONDecodeError"):
        run_compat_script("cr_tick.py", "--redis-url", redis_url, "--prefix", PREFIX, "--now", NOW,
                          python=celery_redbeat_python)
    # nothing was sent or reserved before it died (bad-json sorts first by score)
    assert meta_of(redis_client, "never-run") == {"last_run_at": None}
