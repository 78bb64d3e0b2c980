"""What syncing ``beat_schedule`` into Redis must write: a pure decision over what is stored.

An unchanged entry costs no write; a changed one keeps its run state and is
re-scored from its ``last_run_at`` (a run missed while beat was down is then
caught up, celery-redbeat PR #233); names recorded as statics but gone from
``beat_schedule`` are deleted.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import codec, timing

#: (definition, meta, ext, score) as stored for a static's hash fields and score.
Stored = tuple[str | None, str | None, str | None, float | None]


@dataclass(frozen=True, slots=True)
class StaticsChanges:
    writes: dict[str, tuple[str, str | None, str | None, float]] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()
    record_names: bool = False

    @property
    def empty(self) -> bool:
        return not self.writes and not self.removed and not self.record_names


def statics_changes(
    entries: Mapping[str, Any],
    stored: Mapping[str, Stored],
    recorded: set[str],
    record: Iterable[str] | None,
    *,
    definitions: Mapping[str, tuple[str, str | None]] | None = None,
    now: datetime | None = None,
) -> StaticsChanges:
    """``entries``: name -> entry built from beat_schedule; ``record``: names to keep in the statics set.

    ``definitions``: the (definition, ext) JSON of entries already encoded
    (by :func:`fast_definition`); ``now``: one instant to score them all at.
    Mutates each written entry's ``last_run_at`` to the run state that stays stored.
    """
    keep = None if record is None else set(record)
    removed = frozenset(name for name in recorded if keep is not None and name not in keep)
    known = definitions or {}
    writes = {}
    for name, entry in entries.items():
        definition_json, ext_json = known.get(name) or (entry._definition_json(), codec.encode_ext(entry.ext))
        stored_definition, stored_meta, stored_ext, stored_score = stored[name]
        if stored_definition == definition_json and stored_ext == ext_json and stored_score is not None:
            continue
        try:
            last_run_at = codec.decode_meta(stored_meta)["last_run_at"] if stored_meta else entry.last_run_at
        except codec.CorruptEntryError:
            last_run_at, stored_meta = entry.last_run_at, None
        entry.last_run_at = last_run_at
        due = entry.next_due_after(last_run_at, now) if entry.enabled else None
        score = -1 if due is None else due.timestamp()
        meta = None if stored_meta else codec.encode_meta(last_run_at)
        writes[name] = (definition_json, ext_json, meta, score)
    return StaticsChanges(writes, removed, keep is not None and bool(keep - recorded))


def fast_definition(name: str, item: Any) -> tuple[str, str | None] | None:
    """(definition, ext) JSON of a ``beat_schedule`` item without building an Entry; None when unsure.

    Must equal ``Entry(**item)._definition_json()`` byte for byte (a test
    holds it to that); anything unusual returns None and takes the slow path.
    """
    if not isinstance(item, dict) or set(item) - {
        "task",
        "schedule",
        "args",
        "kwargs",
        "options",
        "relative",
        "enabled",
    }:
        return None
    sched = item.get("schedule")
    if not isinstance(sched, bool) and isinstance(sched, numbers.Number):
        sched = timedelta(seconds=float(sched))  # type: ignore[arg-type]
    if isinstance(sched, timedelta):
        tagged: Any = {
            "__type__": "interval",
            "every": sched.total_seconds(),
            "relative": bool(item.get("relative", False)),
        }
    else:
        try:
            tagged = codec.encode_tagged(sched)
        except TypeError:
            return None
    args = item.get("args")
    try:
        # The C encoder with no fallback hook: a value it cannot encode (a datetime in kwargs) takes the slow path.
        definition = json.dumps(
            {
                "name": name,
                "task": item.get("task"),
                "args": list(args) if isinstance(args, tuple) else args,
                "kwargs": item.get("kwargs") or {},
                "options": item.get("options") or {},
                "schedule": tagged,
                "enabled": item.get("enabled", True),
            }
        )
    except (TypeError, ValueError):
        return None
    return definition, None


def statics_digest(definitions: Mapping[str, tuple[str, str | None]]) -> str:
    """What :data:`redbeat.store.STATICS_DIGEST_SCRIPT` computes from Redis when every entry is stored as given."""
    parts = [f"{definitions[name][0]}\n{definitions[name][1] or ''}\n1\n" for name in sorted(definitions)]
    return hashlib.sha1("".join(parts).encode()).hexdigest()


class FastStatic:
    """A ``beat_schedule`` item with what a sync needs, without building a celery ScheduleEntry.

    Built only for items :func:`fast_definition` encodes (plain dicts, no
    extensions); duck-types the parts of RedBeatSchedulerEntry that
    :func:`statics_changes` uses.
    """

    ext = None
    ext_json = None

    def __init__(self, name: str, item: dict[str, Any], definition: str, schedule: Any, now: datetime) -> None:
        self.name = name
        self.definition = definition
        self.schedule = schedule
        self.enabled = bool(item.get("enabled", True))
        self.last_run_at: datetime | None = now  # celery's default for a new entry

    def _definition_json(self) -> str:
        return self.definition

    def next_due_after(self, last_run_at: datetime | None, now: datetime | None = None) -> datetime | None:
        assert now is not None
        return timing.next_due(self.schedule, last_run_at, now=now)
