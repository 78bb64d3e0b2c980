"""plan(): pure decisions, exact expectations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.errors import Location, RedbeatError
from reconciler.core.model import DesiredEntry
from reconciler.schedules.convert import entry_to_manifest, manifest_to_entry
from reconciler.sync import plan_file
from reconciler.sync.apply import WriteStep, encode_definition, write_step
from reconciler.sync.plan import MASS_DELETE_FLOOR, FieldChange, Op, canonical, plan, view
from reconciler.sync.state import STATIC_OWNER, ActualEntry, ActualState, OwnershipRecord, fingerprint

HERE = Location(Path("schedules/x.yaml"), 1, 1, "")


def desired(name: str, protected: bool = False, **manifest) -> DesiredEntry:
    manifest = {"name": name, "task": "app.tasks.t", "every": 60, **manifest}
    definition, ext = manifest_to_entry(manifest)
    return DesiredEntry(name, definition, ext, protected, HERE)


def stored(entry: DesiredEntry, owner: str | None = "default", *, record: bool = True, protected=False,
           definition: str | None = None, meta: str | None = None) -> ActualEntry:
    raw = definition if definition is not None else encode_definition(entry.definition)
    ext = json.dumps(entry.ext, sort_keys=True, separators=(",", ":")) if entry.ext else None
    record_raw = (
        OwnershipRecord(fingerprint(encode_definition(entry.definition), ext), protected).to_json()
        if record and owner == "default"
        else None
    )
    return ActualEntry(entry.name, raw, ext, meta, 1.0, owner, record_raw)


def state(*entries: ActualEntry) -> ActualState:
    return ActualState("default", {e.name: e for e in entries}, frozenset(e.name for e in entries if e.record_raw))


def ops(p) -> list[tuple[str, str]]:
    return [(c.op.value, c.name) for c in p.changes]


def test_create_update_delete_noop():
    a, b, c = desired("a"), desired("b"), desired("c")
    b2 = desired("b", every="2m")
    p = plan({"a": a, "b": b2, "new": desired("new")}, state(stored(a), stored(b), stored(c)))
    assert ops(p) == [("no-op", "a"), ("update", "b"), ("delete", "c"), ("create", "new")]
    update = p.changes[1]
    assert update.fields == (FieldChange("every", "1m", "2m"),)
    assert update.reschedule is True
    assert p.errors == ()


def test_reformatted_manifest_is_a_noop():
    written = desired("a", every=60, kwargs={"x": 1, "y": 2})
    rewritten = desired("a", every="1m", kwargs={"y": 2, "x": 1})
    assert plan({"a": rewritten}, state(stored(written))).has_changes is False


def test_stored_by_celery_redbeat_with_int_crontab_fields_equals_manifest_strings():
    manifest = {"name": "c", "task": "app.tasks.t", "cron": "0 3 * * *"}
    definition, ext = manifest_to_entry(manifest)
    entry = DesiredEntry("c", definition, ext, False, HERE)
    theirs = dict(definition, schedule=dict(definition["schedule"], minute=0, hour=3))
    raw = json.dumps(theirs)
    record = OwnershipRecord(fingerprint(raw, None)).to_json()
    actual = ActualState("default", {"c": ActualEntry("c", raw, None, None, 1.0, "default", record)}, frozenset({"c"}))
    assert [c.op for c in plan({"c": entry}, actual).changes] == [Op.NOOP]


def test_kwargs_change_does_not_reschedule():
    a = desired("a", kwargs={"x": 1})
    p = plan({"a": desired("a", kwargs={"x": 2})}, state(stored(a)))
    assert p.changes[0].fields == (FieldChange("kwargs.x", 1, 2),)
    assert p.changes[0].reschedule is False


@pytest.mark.parametrize(
    "owner, expected_reason",
    [
        (None, "owned by nobody"),
        ("other-repo", "owned by owner 'other-repo'"),
        (STATIC_OWNER, "owned by beat_schedule"),
    ],
)
def test_unowned_entries_are_conflicts(owner, expected_reason):
    a = desired("a")
    p = plan({"a": a}, state(stored(a, owner=owner, record=False)))
    assert [c.op for c in p.changes] == [Op.CONFLICT]
    assert expected_reason in p.changes[0].reason
    assert p.errors and p.errors[0].startswith("a: exists in Redis")


def test_adopt_takes_over_unowned_entries_only_with_the_flag():
    a = desired("a")
    p = plan({"a": desired("a", every="5m")}, state(stored(a, owner=None, record=False)), adopt=True)
    assert [c.op for c in p.changes] == [Op.ADOPT]
    assert p.changes[0].fields == (FieldChange("every", "1m", "5m"),)
    assert p.errors == ()


@pytest.mark.parametrize("owner", ["team-a", STATIC_OWNER])
def test_adopt_refuses_an_entry_someone_else_holds(owner):
    a = desired("a")
    p = plan({"a": a}, state(stored(a, owner=owner, record=False)), adopt=True)
    assert [c.op for c in p.changes] == [Op.CONFLICT]
    assert "--adopt takes only unowned entries" in p.errors[0] and "--take-over" in p.errors[0]


@pytest.mark.parametrize("owner", [None, "team-a", STATIC_OWNER])
def test_take_over_hands_over_any_holder(owner):
    a = desired("a")
    p = plan({"a": desired("a", every="5m")}, state(stored(a, owner=owner, record=False)), take_over=True)
    assert [c.op for c in p.changes] == [Op.ADOPT]
    assert p.errors == ()


def test_prune_deletes_only_owned_entries():
    mine, theirs = desired("mine"), desired("theirs")
    actual = state(stored(mine), stored(theirs, owner="other", record=False), stored(desired("keep")))
    p = plan({"keep": desired("keep")}, actual)
    assert ops(p) == [("no-op", "keep"), ("delete", "mine")]
    assert plan({"keep": desired("keep")}, actual, prune=False).has_changes is False


def test_protected_entry_is_not_deleted_when_its_manifest_goes():
    guarded = desired("guarded", protected=True)
    p = plan({"other": desired("other")}, state(stored(guarded, protected=True), stored(desired("other"))))
    assert [c.op for c in p.changes] == [Op.CONFLICT, Op.NOOP]
    assert "protected" in p.errors[0]


def test_unprotecting_is_an_update_of_the_record_only():
    guarded = desired("g", protected=True)
    p = plan({"g": desired("g")}, state(stored(guarded, protected=True)))
    assert p.changes[0].op is Op.UPDATE
    from reconciler.sync.plan import _MISSING

    assert p.changes[0].fields == (FieldChange("protected", True, _MISSING),)
    assert p.changes[0].reschedule is False


def test_mass_delete_guard():
    owned = [desired(f"e{i}") for i in range(10)]
    keep = {e.name: e for e in owned[:4]}
    p = plan(keep, state(*(stored(e) for e in owned)))
    assert len(p.of(Op.DELETE)) == 6
    assert p.errors and "refusing to delete 6 of the 10" in p.errors[0]
    assert plan(keep, state(*(stored(e) for e in owned)), allow_mass_delete=True).errors == ()
    assert plan(keep, state(*(stored(e) for e in owned)), max_delete_share=0.7).errors == ()


def test_a_few_removals_never_need_the_override():
    owned = [desired(f"e{i}") for i in range(5)]
    keep = {e.name: e for e in owned[:2]}
    p = plan(keep, state(*(stored(e) for e in owned)))
    assert len(p.of(Op.DELETE)) == MASS_DELETE_FLOOR
    assert p.errors == ()


def test_deleting_every_entry_of_an_owner_needs_the_override():
    owned = [desired("x"), desired("y")]
    p = plan({"z": desired("z")}, state(*(stored(e) for e in owned)))
    assert p.errors and "refusing to delete all 2" in p.errors[0]


def test_drift_is_shown_apart_and_restored():
    a = desired("a")
    hand_edited = dict(a.definition, task="app.tasks.other")
    p = plan({"a": a}, state(stored(a, definition=json.dumps(hand_edited))))
    change = p.changes[0]
    assert change.op is Op.UPDATE
    assert change.fields == (FieldChange("task", "app.tasks.other", "app.tasks.t"),)
    assert change.drift and p.drifted == [change]


def test_owned_entry_deleted_behind_our_back_is_recreated_as_drift():
    a = desired("a")
    gone = ActualEntry("a", None, None, None, None, "default", OwnershipRecord("x").to_json())
    p = plan({"a": a}, ActualState("default", {"a": gone}, frozenset({"a"})))
    assert p.changes[0].op is Op.CREATE
    assert p.changes[0].drift


def test_canonical_passes_through_what_it_cannot_express():
    odd = {
        "name": "n",
        "task": "t",
        "args": [],
        "kwargs": {},
        "options": {},
        "schedule": {"__type__": "solar"},
        "enabled": True,
    }
    assert canonical(odd, None) == (odd, None)


@pytest.mark.parametrize("change", [{"jitter": "20s"}, {"start_at": "2027-01-01T00:00:00+00:00"}, {"catch_up": "skip"}])
def test_extension_changes_show_in_the_diff_and_reschedule(change):
    before = desired("a", jitter="10s")
    p = plan({"a": desired("a", **{"jitter": "10s", **change})}, state(stored(before)))
    update = p.changes[0]
    assert update.op is Op.UPDATE and update.reschedule is True
    key, value = next(iter(change.items()))
    old = "10s" if key == "jitter" else _missing()
    assert update.fields == (FieldChange(key, old, value),)


def _missing():
    from reconciler.sync.plan import _MISSING

    return _MISSING


def test_a_create_lists_every_field_of_the_entry_when_asked():
    from reconciler.sync.plan import _MISSING

    new = desired("new", protected=True, kwargs={"x": 1}, jitter="5s")
    (create,) = plan({"new": new}, state()).changes
    assert create.op is Op.CREATE and create.changed is None  # not rendered while planning
    assert create.fields == (
        FieldChange("task", _MISSING, "app.tasks.t"),
        FieldChange("every", _MISSING, "1m"),
        FieldChange("kwargs.x", _MISSING, 1),
        FieldChange("jitter", _MISSING, "5s"),
        FieldChange("enabled", _MISSING, True),
        FieldChange("protected", _MISSING, True),
    )
    assert create.fields is create.fields  # listed once


@given(st.text(), st.booleans())
def test_ownership_record_bytes_are_json_dumps_sorted_and_compact(digest: str, protected: bool):
    expected = json.dumps({"digest": digest, "protected": protected}, sort_keys=True, separators=(",", ":"))
    assert OwnershipRecord(digest, protected).to_json() == expected
    assert OwnershipRecord.from_json(expected) == OwnershipRecord(digest, protected)


# -- the hand-off to apply: an Op and flags, never a label to match --------------------------------------------


def test_unreadable_run_state_is_reset_through_the_change_flag():
    a = desired("a")
    (change,) = plan({"a": a}, state(stored(a, meta="{not json"))).changes
    assert change.op is Op.UPDATE and change.reset_run_state is True
    assert [d.path for d in change.drift] == ["(run state)"]  # what reports show
    assert write_step(change).reset_meta is True
    # The report's label decides nothing: the same drift without the flag keeps the run state.
    assert write_step(dataclasses.replace(change, reset_run_state=False)).reset_meta is False
    (readable,) = plan({"a": desired("a", every="2m")}, state(stored(a, meta=None))).changes
    assert readable.reset_run_state is False and write_step(readable).reset_meta is False


def test_a_write_step_holds_its_op_and_a_saved_plan_keeps_it():
    a, b = desired("a"), desired("b")
    p = plan({"a": desired("a", every="2m"), "new": desired("new")}, state(stored(a), stored(b)))
    steps = [write_step(c) for c in p.writes]
    assert [(s.op, s.name) for s in steps] == [(Op.UPDATE, "a"), (Op.DELETE, "b"), (Op.CREATE, "new")]
    assert [s.arguments(0.0)[0] for s in steps] == ["update", "delete", "create"]  # the apply script's words
    saved = [json.loads(json.dumps(s.to_json())) for s in steps]
    assert [d["op"] for d in saved] == ["update", "delete", "create"]
    assert [WriteStep.from_json(d) for d in saved] == steps


@pytest.mark.parametrize("op", ["no-op", "conflict", "drop"])
def test_a_saved_step_that_is_not_a_write_is_refused(tmp_path, op):
    step = write_step(plan({"new": desired("new")}, state()).changes[0]).to_json() | {"op": op}
    with pytest.raises(ValueError):
        WriteStep.from_json(step)
    document = {"kind": plan_file.KIND, "format_version": plan_file.FORMAT_VERSION, "owner": "default",
                "key_prefix": "redbeat:", "plan": {"summary": {}}, "steps": [step]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(RedbeatError, match="damaged plan file"):
        plan_file.load(path)


# -- what the converter cannot express is compared as stored; a converter bug is not hidden ---------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
_EPOCH = st.integers(0, 2**32) | st.integers(min_value=-(2**40), max_value=2**40) | st.floats(allow_nan=True)
_SCHEDULES = st.one_of(
    st.fixed_dictionaries(
        {"__type__": st.just("interval"), "every": st.integers(1, 10**6) | st.floats() | _JSON},
        optional={"relative": _JSON},
    ),
    st.fixed_dictionaries(
        {"__type__": st.just("crontab")},
        optional={f: _JSON | st.lists(st.integers(0, 70) | st.text(max_size=3), max_size=3) | st.text(max_size=6)
                  for f in ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")},
    ),
    st.fixed_dictionaries(
        {"__type__": st.just("rrule"), "freq": st.integers(0, 6) | st.integers(-1, 7) | _JSON, "dtstart": _EPOCH},
        optional={"dtstart_tz": st.integers(-2000, 2000) | _JSON, "until": _EPOCH | _JSON, "count": _JSON,
                  "interval": st.integers(-2, 2000) | _JSON, "wkst": st.integers(-1, 8) | _JSON,
                  "byweekday": st.lists(st.integers(-1, 8), max_size=3) | _JSON,
                  "bymonthday": st.lists(st.integers(-40, 40), max_size=3) | _JSON, "until_tz": _JSON},
    ),
    _JSON,
)
_DEFINITIONS = st.fixed_dictionaries(
    {"schedule": _SCHEDULES, "name": st.just("n") | st.text(max_size=5) | _JSON, "task": st.just("t") | _JSON},
    optional={"args": _JSON, "kwargs": _JSON, "options": _JSON, "enabled": _JSON},
)
_EXTS = st.none() | st.none() | st.dictionaries(
    st.sampled_from(["timezone", "rrule_byweekday", "catch_up", "catch_up_limit", "starting_deadline", "jitter",
                     "start_at", "end_at", "bogus"]),
    _JSON | st.sampled_from(["UTC", "Europe/Berlin", "all", "skip", "2027-01-01T00:00:00+00:00"]),
    max_size=3,
)


@given(_DEFINITIONS, _EXTS)
def test_any_stored_definition_is_converted_or_compared_as_stored_never_an_error(definition, ext):
    definition = json.loads(json.dumps(definition))  # as read from Redis: JSON (nan and inf included)
    ext = json.loads(json.dumps(ext)) if ext else None
    got = canonical(definition, ext)
    assert got == (definition, ext) or got == manifest_to_entry(entry_to_manifest(definition, ext))
    assert isinstance(view(definition, ext), dict)


def test_a_converter_bug_is_not_taken_for_an_entry_it_cannot_express(monkeypatch):
    a = desired("a")
    hand_edited = dict(a.definition, task="app.tasks.other")

    def broken(manifest):
        raise ZeroDivisionError("a bug in the converter")

    monkeypatch.setattr("reconciler.sync.plan.manifest_to_entry", broken)
    with pytest.raises(ZeroDivisionError):
        plan({"a": a}, state(stored(a, definition=json.dumps(hand_edited))))
