"""What syncing ``beat_schedule`` into Redis must write: a pure decision over what is stored.

An unchanged entry costs no write; a changed one keeps its run state and is
re-scored from its ``last_run_at`` (a run missed while beat was down is then
caught up, celery-redbeat PR #233); names recorded as statics but gone from
``beat_schedule`` are deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import hashlib
import numbers
from datetime import timedelta

from celery.schedules import schedule as interval_schedule

from . import codec

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
) -> StaticsChanges:
    """``entries``: name -> entry built from beat_schedule; ``record``: names to keep in the statics set.

    Mutates each written entry's ``last_run_at`` to the run state that stays stored.
    """
    keep = None if record is None else set(record)
    removed = frozenset(name for name in recorded if keep is not None and name not in keep)
    writes = {}
    for name, entry in entries.items():
        definition_json = entry._definition_json()
        ext_json = codec.encode_ext(entry.ext)
        stored_definition, stored_meta, stored_ext, stored_score = stored[name]
        if stored_definition == definition_json and stored_ext == ext_json and stored_score is not None:
            continue
        try:
            last_run_at = codec.decode_meta(stored_meta)["last_run_at"] if stored_meta else entry.last_run_at
        except codec.CorruptEntryError:
            last_run_at, stored_meta = entry.last_run_at, None
        entry.last_run_at = last_run_at
        score = entry.score if entry.enabled else -1
        meta = None if stored_meta else codec.encode_meta(last_run_at)
        writes[name] = (definition_json, ext_json, meta, score)
    return StaticsChanges(writes, removed, keep is not None and bool(keep - recorded))


def fast_definition(name: str, item: Any) -> tuple[str, str | None] | None:
    """(definition, ext) JSON of a ``beat_schedule`` item without building an Entry; None when unsure.

    Must equal ``Entry(**item)._definition_json()`` byte for byte (a test
    holds it to that); anything unusual returns None and takes the slow path.
    """
    if not isinstance(item, dict) or set(item) - {"task", "schedule", "args", "kwargs", "options", "relative", "enabled"}:
        return None
    sched = item.get("schedule")
    if isinstance(sched, numbers.Number) and not isinstance(sched, bool):
        sched = timedelta(seconds=sched)
    if isinstance(sched, timedelta):
        sched = interval_schedule(sched, bool(item.get("relative", False)))
    try:
        definition = codec.encode_definition(
            name=name,
            task=item.get("task"),
            args=item.get("args"),
            kwargs=item.get("kwargs") or {},
            options=item.get("options") or {},
            schedule=sched,
            enabled=item.get("enabled", True),
        )
    except TypeError:
        return None
    return definition, None


def statics_digest(definitions: Mapping[str, tuple[str, str | None]]) -> str:
    """What :data:`redbeat.store.STATICS_DIGEST_SCRIPT` computes from Redis when every entry is stored as given."""
    parts = [f"{definitions[name][0]}\n{definitions[name][1] or ''}\n1\n" for name in sorted(definitions)]
    return hashlib.sha1("".join(parts).encode()).hexdigest()
