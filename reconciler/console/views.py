"""Page models: plain dicts the templates show, built by pure functions from what the readers read.

A schedules row is the ``status`` row (:mod:`reconciler.operating.status`, the same dict ``status -o json``
prints) plus what only the console shows: the task, the schedule in words, the protected flag, the sync
state against the manifests and the states the filters match on.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reconciler.console import query, upcoming, words
from reconciler.core.errors import Inexpressible, Location
from reconciler.core.model import DesiredEntry
from reconciler.schedules.convert import entry_to_manifest
from reconciler.sync.plan import canonical
from reconciler.sync.state import ActualEntry

#: The states the filter offers: the status row's own, "enabled" for active, and two of the console's.
STATES = ("enabled", "disabled", "paused", "protected", "dormant", "finished", "corrupt", "missing")
_STATE_OF_STATUS = {"active": "enabled", "suspended": "disabled", "unscheduled": "enabled"}

IN_SYNC, DRIFTED, NOT_IN_GIT, MISSING = "in-sync", "drifted", "not-in-git", "missing-in-redis"
#: Sync states (URL values) and how a page says them.
SYNC_WORDS = {IN_SYNC: "in sync", DRIFTED: "drifted", NOT_IN_GIT: "not in git", MISSING: "missing in Redis"}


def sync_state(desired: DesiredEntry | None, actual: ActualEntry | None) -> str | None:
    """in-sync | drifted | not-in-git | missing-in-redis; None when neither side has the entry."""
    if desired is None:
        return NOT_IN_GIT if actual is not None and actual.exists else None
    if actual is None or not actual.exists:
        return MISSING
    ext = json.dumps(desired.ext, sort_keys=True, separators=(",", ":")) if desired.ext else None
    if actual.definition == json.dumps(desired.definition) and (actual.ext or None) == ext:
        return IN_SYNC  # the bytes an apply writes: no need to compare canonically
    same = canonical(desired.definition, desired.ext) == canonical(actual.decoded_definition(), actual.decoded_ext())
    return IN_SYNC if same else DRIFTED


def _manifest(definition: Mapping[str, Any] | None, ext: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if definition is None:
        return None
    try:
        return entry_to_manifest(definition, ext)
    except Inexpressible:  # a definition the converter cannot express: its status row names the problem
        return None


def _epoch(text: Any) -> float | None:
    moment = words.parse_iso(text)
    return None if moment is None else moment.timestamp()


def schedule_row(status: Mapping[str, Any], actual: ActualEntry | None, *, protected: bool, sync: str | None,
                 now: datetime) -> dict[str, Any]:
    """One row of the schedules page from a status row and the entry it was built from."""
    definition = actual.decoded_definition() if actual is not None else None
    ext = actual.decoded_ext() if actual is not None else None
    manifest = _manifest(definition, ext)
    state = "paused" if status.get("paused") else _STATE_OF_STATUS.get(status["state"], status["state"])
    states = (state, "protected") if protected else (state,)
    next_run = words.parse_iso(status.get("next_run"))
    last_run = words.parse_iso(status.get("last_run_at"))
    row = {
        **status,
        "task": str(definition.get("task")) if definition and definition.get("task") is not None else None,
        "words": words.schedule_words(manifest) if manifest is not None else status.get("schedule"),
        "protected": protected,
        "sync": sync,
        "sync_words": SYNC_WORDS.get(sync or "", "-"),
        "states": states,
        "state_words": status.get("paused") or state,
        "next_run_at": None if next_run is None else next_run.timestamp(),
        "next_relative": words.relative(next_run, now),
        "last_relative": words.relative(last_run, now),
        "lag_words": words.duration(status.get("dispatch_lag_seconds")),
        "hidden": hidden_characters(str(status["name"])),
        "definition": definition,  # decoded once here, for the timeline
        "ext": ext,
    }
    row[query.SEARCH_FIELD] = query.search_text(row)
    return row


def pause_start(row: Mapping[str, Any], now: datetime) -> datetime | None:
    """When beat next looks at the row's entry: now, the end of its pause, or None (paused until resumed)."""
    if not row.get("paused"):
        return now
    until = row.get("paused_until")
    return None if until is None else max(now, datetime.fromtimestamp(float(until), timezone.utc))


def hold_for_pause(row: dict[str, Any], actual: ActualEntry | None, until: float | None, now: datetime) -> None:
    """Set a paused row's next run to the one beat gives it: none while paused until resumed; else the first run
    when the pause ends (the missed slots' ``catch_up`` applied), not a slot the pause skips."""
    row["paused_until"] = until
    start = pause_start(row, now)
    if not row.get("paused") or actual is None or actual.definition is None:
        return
    first = None
    if start is not None:
        try:
            runs = upcoming.next_runs(actual.definition, actual.decoded_ext(), words.parse_iso(row.get("last_run_at")),
                                      str(row["name"]), start, count=1)
        except upcoming.UNCOMPUTABLE:
            return  # the row keeps the status row's next run; its problem, if any, says why
        first = runs[0] if runs else None
    row["next_run"] = None if first is None else first.isoformat(timespec="seconds")
    row["next_run_at"] = None if first is None else first.timestamp()
    row["next_relative"] = words.relative(first, now)


def mark_lookalikes(rows: Sequence[dict[str, Any]]) -> None:
    """Set ``lookalike`` on rows whose name differs from another's only by Unicode normalisation or case
    ("café" precomposed and "cafe" + combining accent): two entries a reader cannot tell apart on the page."""
    keys = [query.folded(str(row["name"])) for row in rows]  # folded once: 10,000 names cost milliseconds
    groups: dict[str, int] = {}
    for key in keys:
        groups[key] = groups.get(key, 0) + 1
    for row, key in zip(rows, keys, strict=True):
        row["lookalike"] = groups[key] > 1


def hidden_characters(name: str) -> bool:
    """Whether a name holds characters a reader cannot see: Unicode format characters (category Cf) such as
    the right-to-left override U+202E, which makes "rtl \u202eevil" read "rtl live", or the zero-width space."""
    return any(unicodedata.category(char) == "Cf" for char in name)


def escaped_name(name: str) -> str | None:
    """A non-ASCII name spelled with escapes (``cafe\\u0301``), to tell look-alike names apart; None for ASCII."""
    return None if name.isascii() else name.encode("ascii", "backslashreplace").decode("ascii")


def missing_row(desired: DesiredEntry) -> dict[str, Any]:
    """A row for an entry the manifests name and Redis does not have."""
    manifest = _manifest(desired.definition, desired.ext)
    row: dict[str, Any] = {
        "name": desired.name, "owner": None, "schedule": "", "enabled": desired.definition.get("enabled", True),
        "state": "missing", "next_run": None, "timezone": str((desired.ext or {}).get("timezone") or "UTC"),
        "next_due": None, "last_run_at": None, "total_run_count": None, "problem": None, "recent_runs": [],
        "dispatch_lag_seconds": None, "paused": None, "task": desired.definition.get("task"),
        "words": words.schedule_words(manifest) if manifest else "?", "protected": desired.protected,
        "sync": MISSING, "sync_words": SYNC_WORDS[MISSING], "states": ("missing",), "state_words": "missing",
        "next_run_at": None, "next_relative": "", "last_relative": "", "lag_words": "-",
        "hidden": hidden_characters(desired.name),
    }
    row[query.SEARCH_FIELD] = query.search_text(row)
    return row


def source_text(source: Location, roots: Sequence[Path]) -> str:
    """``schedules/jobs.yaml:4:5: schedules[0]``: the manifest source relative to the folder holding the PATH the
    console was given (an absolute path of the server's disk says nothing to the reader and exposes its layout)."""
    for root in roots:
        try:  # relative to the PATH's parent, so the PATH's own name stays: schedules/jobs.yaml
            relative = source.file.resolve().relative_to(root.parent.resolve())
        except (ValueError, OSError):
            continue
        return str(replace(source, file=relative))
    return str(replace(source, file=Path(source.file.name)))


def owners_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({str(row["owner"]) for row in rows if row.get("owner")})


def definition_text(actual: ActualEntry | None) -> str:
    """The stored definition and extensions, pretty-printed (the page escapes them)."""
    if actual is None or not actual.exists:
        return ""
    document: dict[str, Any] = {"definition": actual.decoded_definition() or actual.definition}
    if actual.ext:
        document["ext"] = actual.decoded_ext() or actual.ext
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False)


def clock(epoch: Any) -> str:
    """Epoch seconds (a number or its text) as ``2026-03-28 12:00:01 UTC``; ``-`` for none."""
    try:
        return datetime.fromtimestamp(float(epoch), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"


def activity_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Audit records newest first, each with its time and a line saying what happened."""
    out = []
    for record in reversed(records):
        if record.get("action") == "apply":
            counts = record.get("counts")
            said = ", ".join(f"{n} {k}" for k, n in counts.items()) if isinstance(counts, dict) else str(counts)
            what = f"owner {record.get('owner', '?')} at revision {record.get('revision', '?')}: {said or 'nothing'}"
        else:
            what = str(record.get("detail") or "")
        out.append({**record, "when": clock(record.get("at")), "what": what})
    return out


@dataclass(frozen=True, slots=True)
class Leader:
    holder: str | None
    lease_ms: int | None  # left on the lock; None when there is no lock
    heartbeat_holder: str | None
    tick_at: float | None


def health_model(leader: Leader, now: float, last_apply: Mapping[str, Any] | None,
                 sidecar: Mapping[str, Any] | None) -> dict[str, Any]:
    """The health page: the leading beat, its lease and last tick; the last apply; the sidecar's probes."""
    since_tick = None if leader.tick_at is None else max(0.0, now - leader.tick_at)
    return {
        "holder": leader.holder,
        "lease": words.duration(None if leader.lease_ms is None else leader.lease_ms / 1000),
        "heartbeat_holder": leader.heartbeat_holder,
        "last_tick": clock(leader.tick_at),
        "since_tick": words.duration(since_tick) + " ago" if since_tick is not None else "never",
        "ticking": since_tick is not None and since_tick < 30,
        "last_apply": None if last_apply is None else {**last_apply, "when": clock(last_apply.get("at"))},
        "sidecar": sidecar,
    }
