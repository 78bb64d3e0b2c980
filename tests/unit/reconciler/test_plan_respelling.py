"""Crontab fields stored as written: a spelling-only difference is one cosmetic write, shown as such."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.errors import Location
from reconciler.core.model import DesiredEntry
from reconciler.schedules.convert import manifest_to_entry
from reconciler.sync.apply import encode_definition
from reconciler.sync.plan import FieldChange, Op, plan
from reconciler.sync.plan_report import plan_json, render_markdown, render_text
from reconciler.sync.state import ActualEntry, ActualState, OwnershipRecord, fingerprint

HERE = Location(Path("schedules/x.yaml"), 1, 1, "")


def desired(name: str = "weekend", **schedule: Any) -> DesiredEntry:
    definition, ext = manifest_to_entry({"name": name, "task": "app.tasks.t", **schedule})
    return DesiredEntry(name, definition, ext, False, HERE)


def in_redis(
    definition: dict[str, Any], owner: str | None = "default", applied: dict[str, Any] | None = None
) -> ActualEntry:
    """An entry as stored; its ownership record holds the digest of ``applied`` (default: what is stored)."""
    raw = encode_definition(definition)
    record = None
    if owner == "default":
        record = OwnershipRecord(fingerprint(encode_definition(applied or definition), None)).to_json()
    return ActualEntry(definition["name"], raw, None, None, 1.0, owner, record)


def state(entry: ActualEntry) -> ActualState:
    return ActualState("default", {entry.name: entry}, frozenset({entry.name} if entry.record_raw else ()))


def test_manifest_spelling_is_stored_as_written() -> None:
    assert desired(cron="0 0 * * sat,sun").definition["schedule"]["day_of_week"] == "sat,sun"
    assert desired(cron="0 0 1 1,7 *").definition["schedule"]["month_of_year"] == "1,7"
    assert desired(crontab={"day_of_week": "sat,sun"}).definition["schedule"]["day_of_week"] == "sat,sun"


@pytest.mark.parametrize(("stored", "wanted"), [("0,6", "sat,sun"), ("sat,sun", "0,6"), ("6,0", "sat-sun")])
def test_a_spelling_only_difference_is_one_cosmetic_update(stored: str, wanted: str) -> None:
    have = in_redis(desired(cron=f"0 0 * * {stored}").definition)
    p = plan({"weekend": desired(cron=f"0 0 * * {wanted}")}, state(have))
    [change] = p.changes
    assert change.op is Op.UPDATE
    assert change.fields == ()
    assert change.respelled == (FieldChange("crontab.day_of_week", stored, wanted),)
    assert change.reschedule is False  # same times: the score stays
    assert change.drift == ()
    assert change.respelled_only and p.respelled_only == [change]
    assert p.has_changes


def test_once_written_the_spelling_is_a_noop() -> None:
    want = desired(cron="0 0 * * sat,sun")
    p = plan({"weekend": want}, state(in_redis(want.definition)))
    assert [c.op for c in p.changes] == [Op.NOOP]
    assert p.has_changes is False


def test_a_real_change_is_a_schedule_change_not_a_respelling() -> None:
    have = in_redis(desired(cron="0 0 * * 0,6").definition)
    p = plan({"weekend": desired(cron="0 1 * * sat,sun")}, state(have))
    [change] = p.changes
    assert change.fields == (FieldChange("cron", "0 0 * * 0,6", "0 1 * * sat,sun"),)
    assert change.respelled == ()
    assert change.reschedule is True


def test_a_hand_respelled_entry_is_drift_and_restored() -> None:
    want = desired(cron="0 0 * * sat,sun")
    hand = desired(cron="0 0 * * 0,6").definition
    p = plan({"weekend": want}, state(in_redis(hand, applied=want.definition)))
    [change] = p.changes
    assert change.op is Op.UPDATE and change.drift
    assert change.respelled == (FieldChange("crontab.day_of_week", "0,6", "sat,sun"),)
    assert change.respelled_only is False


def test_adopting_shows_the_respelling_and_keeps_the_score() -> None:
    theirs = desired(crontab={"minute": "0", "hour": "0", "day_of_week": "6,0"}).definition
    p = plan({"weekend": desired(cron="0 0 * * sat,sun")}, state(in_redis(theirs, owner=None)), adopt=True)
    [change] = p.changes
    assert change.op is Op.ADOPT
    assert change.fields == ()
    assert change.respelled == (FieldChange("crontab.day_of_week", "6,0", "sat,sun"),)
    assert change.reschedule is False


def test_celery_redbeat_int_fields_are_not_a_respelling() -> None:
    want = desired(cron="0 3 * * *")
    theirs = dict(want.definition, schedule=dict(want.definition["schedule"], minute=0, hour=3))
    p = plan({"weekend": want}, state(in_redis(theirs)))
    assert [c.op for c in p.changes] == [Op.NOOP]


@pytest.mark.parametrize(
    "schedule",
    [
        {"__type__": "crontab", "day_of_week": "saturday"},  # Celery reads it, we do not: compared as stored
        {"__type__": "crontab", "day_of_week": {"x": 1}},
        {"__type__": "crontab", "day_of_week": "0,6\n~ forged line"},
        "not a mapping",
        None,
    ],
)
def test_odd_stored_schedules_are_never_a_respelling(schedule: Any) -> None:
    want = desired(cron="0 0 * * sat,sun")
    have = in_redis(dict(want.definition, schedule=schedule))
    [change] = plan({"weekend": want}, state(have)).changes
    assert change.op is Op.UPDATE
    assert change.respelled == ()
    assert change.fields and change.reschedule is True


def _respell_plan() -> Any:
    have = in_redis(desired(cron="0 0 * * 0,6").definition)
    return plan({"weekend": desired(cron="0 0 * * sat,sun")}, state(have))


def test_text_report_shows_the_respelling_and_says_it_is_cosmetic() -> None:
    assert render_text(_respell_plan()) == (
        "~ update   weekend\n"
        '      respelled crontab.day_of_week: "0,6" -> "sat,sun" (same times)\n'
        "\n"
        "Plan: 0 to create, 1 to update (1 only respelled), 0 to delete, 0 unchanged.\n"
    )


def test_json_and_markdown_reports_list_the_respelling() -> None:
    p = _respell_plan()
    [change] = plan_json(p)["changes"]
    assert change["fields"] == []
    assert change["respelled"] == [{"path": "crontab.day_of_week", "old": "0,6", "new": "sat,sun"}]
    assert change["reschedule"] is False
    markdown = render_markdown(p)
    assert "| ~ | `weekend` | update | `crontab.day_of_week` (respelled) |" in markdown
    assert 'respelled crontab.day_of_week: "0,6" -> "sat,sun" (same times)' in markdown
    assert json.loads(json.dumps(plan_json(p))) == plan_json(p)
