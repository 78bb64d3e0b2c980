"""``redbeat-apply status``: every entry in Redis as a table (or JSON): owner, schedule, next run, last run.

"next run" is when beat will really run the entry, computed from its schedule,
run state and extensions with beat's own rule (:mod:`redbeat.timing`) and shown
in the entry's time zone; the raw sorted-set score (``next_due``) is only where
beat looks next (a new entry is filed under "now" until beat's first tick).
Every entry is read on its own: a corrupt one is a row marked corrupt, and a
score no clock can show (huge, negative, inf, nan) never stops the others.
"""

from __future__ import annotations

import io
import json
import math
from datetime import datetime, timezone, tzinfo
from typing import Any

from reconciler.schedules.convert import EXT_FIELDS, entry_to_manifest
from reconciler.sync.plan_report import printable
from reconciler.sync.state import ActualEntry, read_all
from redbeat.codec import CorruptEntryError, decode_definition, decode_meta

#: Errors any computation on stored values may raise: a date beyond year 9999, a bad zone, a bad value.
_UNREPRESENTABLE = (OverflowError, ValueError, OSError, TypeError, KeyError, IndexError, ArithmeticError)
#: How many keys `other_prefixes` looks at, at most (a big shared Redis must not make status slow).
SCAN_LIMIT = 100_000


def schedule_words(manifest: dict[str, Any]) -> str:
    if "every" in manifest:
        text = f"every {manifest['every']}"
    elif "at" in manifest:
        text = f"once at {manifest['at']}"
    elif "cron" in manifest:
        text = f"cron {manifest['cron']}"
    elif "crontab" in manifest:
        text = "crontab " + " ".join(f"{k}={v}" for k, v in manifest["crontab"].items())
    elif "rrule" in manifest:
        rule = manifest["rrule"]
        text = "rrule " + ", ".join(f"{k}={v}" for k, v in rule.items() if k != "dtstart")
    else:
        text = "?"
    if manifest.get("timezone"):
        text += f" ({manifest['timezone']})"
    extras = [f"{key.replace('_', ' ')} {manifest[key]}" for key in EXT_FIELDS if key in manifest]
    return ", ".join([text, *extras])


def entry_state(enabled: bool | None, score: float | None, start_at: str | None, now: datetime) -> str:
    """active | suspended (disabled) | dormant (before start_at) | finished (no further slot) | unscheduled."""
    if enabled is False:
        return "suspended"
    if score is None or math.isnan(score):
        return "unscheduled"
    if score < 0:
        return "finished"
    try:
        if start_at and datetime.fromisoformat(start_at) > now:
            return "dormant"
    except _UNREPRESENTABLE:
        pass  # an unreadable start_at is reported as the entry's problem, not here
    return "active"


def _set_aside_by_beat(target: Any) -> dict[str, str]:
    """Entry key -> why beat set it aside (it records that in ``<prefix>:unreadable`` and skips the entry)."""
    out = {}
    for member, raw in target.client.hgetall(target.keys.unreadable).items():
        try:
            reason = json.loads(raw)["reason"]
        except (ValueError, TypeError, KeyError):
            reason = "unreadable"
        out[member.decode(errors="replace") if isinstance(member, bytes) else member] = f"beat skips it: {reason}"
    return out


def _iso(moment: datetime | None, zone: tzinfo = timezone.utc) -> str | None:
    return None if moment is None else moment.astimezone(zone).isoformat(timespec="seconds")


def score_time(score: float | None) -> str | None:
    """The raw score as an ISO instant; None for none or "never"; a word for a score no clock can show."""
    if score is None or (score < 0 and math.isfinite(score)):
        return None
    try:
        return _iso(datetime.fromtimestamp(score, timezone.utc))
    except _UNREPRESENTABLE:
        return f"unrepresentable score {score!r}"


def next_run(
    definition: str, ext: dict[str, Any] | None, last_run_at: datetime | None, name: str, now: datetime
) -> tuple[str | None, str]:
    """When beat will run the entry next (ISO, in its zone) and that zone's name; None: never again."""
    from redbeat import timing
    from redbeat.entry import entry_schedule, entry_timezone

    schedule = entry_schedule(decode_definition(definition)["schedule"], ext)
    zone = entry_timezone(ext)
    policy = timing.Policy.from_ext(ext, name)
    moment = timing.next_due(schedule, last_run_at, now=now, tz=zone, policy=policy)
    if moment is not None and moment < now:
        moment = now  # overdue: beat runs it at its next tick
    return _iso(moment, zone or timezone.utc), str(zone or "UTC")


def status_row(name: str, entry: ActualEntry, now: datetime) -> dict[str, Any]:
    """One entry's row; every problem with it becomes its ``problem`` and state ``corrupt``, never an exception."""
    problems: list[str] = []
    definition = entry.decoded_definition()
    words, enabled = "?", None
    if definition is None:
        problems.append("no readable definition")
    else:
        enabled = bool(definition.get("enabled", True))
        try:
            words = schedule_words(entry_to_manifest({**definition, "name": name}, entry.decoded_ext()))
        except _UNREPRESENTABLE as exc:
            problems.append(f"schedule not readable: {exc}")
    try:
        meta = decode_meta(entry.meta)
    except CorruptEntryError as exc:
        meta = {"last_run_at": None, "total_run_count": None}
        problems.append(f"meta: {exc}")
    ext = entry.decoded_ext() or {}
    upcoming, zone = None, str(ext.get("timezone") or "UTC")
    if not problems and enabled and entry.definition is not None:
        try:
            upcoming, zone = next_run(entry.definition, ext, meta["last_run_at"], name, now)
        except CorruptEntryError as exc:
            problems.append(f"definition: {exc}")
        except _UNREPRESENTABLE as exc:
            problems.append(f"next run cannot be computed: {exc}")
    problem = "; ".join(problems) or None
    start_at = ext.get("start_at") if isinstance(ext.get("start_at"), str) else None
    state = "corrupt" if problem else entry_state(enabled, entry.score, start_at, now)
    return {
        "name": name,
        "owner": entry.owner,
        "schedule": words,
        "enabled": enabled,
        "state": state,
        "next_run": upcoming,
        "timezone": zone,
        "next_due": score_time(entry.score),
        "last_run_at": _iso(meta["last_run_at"]),
        "total_run_count": meta["total_run_count"],
        "problem": problem,
    }


def status_rows(
    target: Any, *, now: datetime | None = None, entries: dict[str, ActualEntry] | None = None
) -> list[dict[str, Any]]:
    """One row per entry, by name; ``entries``: what :func:`read_all` returned, when the caller read it already."""
    now = now or datetime.now(timezone.utc)
    set_aside = _set_aside_by_beat(target)
    rows = []
    if entries is None:
        entries = read_all(target.client, target.keys)
    for name, entry in sorted(entries.items()):
        row = status_row(name, entry, now)
        beat_reason = set_aside.get(target.keys.entry(name))
        if beat_reason:
            row["problem"] = beat_reason if row["problem"] is None else f"{beat_reason}; {row['problem']}"
            row["state"] = "corrupt"
        rows.append(row)
    return rows


def status_document(prefix: str, rows: list[dict[str, Any]], elsewhere: dict[str, int]) -> dict[str, Any]:
    """``status -o json``: the document the CLI prints and the console serves."""
    return {"format_version": 1, "key_prefix": prefix, "entries": rows, "other_prefixes": elsewhere}


def other_prefixes(target: Any, *, limit: int = SCAN_LIMIT) -> dict[str, int]:
    """Other key prefixes with a schedule in this Redis, and how many entries each has (a mistyped --key-prefix)."""
    suffix = ":schedule"
    found: dict[str, int] = {}
    for seen, key in enumerate(target.client.scan_iter(match=f"*{suffix}", count=1000, _type="zset")):
        if seen >= limit:
            break
        text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        prefix = text[: -len(suffix)]
        if prefix != target.keys.prefix:
            found[prefix] = int(target.client.zcard(key))
    return {prefix: count for prefix, count in sorted(found.items()) if count}


def _cell(text: str) -> str:
    from rich.markup import escape

    return escape(printable(text))


COLUMNS = ("name", "owner", "schedule", "state", "next run", "last run (UTC)", "runs", "recent runs", "lag")


def lag_text(seconds: float | None) -> str:
    """A dispatch lag as shown in tables: ``0.012s``, or ``-`` when unknown."""
    return "-" if seconds is None else f"{seconds:.3f}s"


def recent_words(row: dict[str, Any]) -> str:
    """``sent 11:59:00, lost 11:58:00`` (newest first) for the status table."""
    runs = row.get("recent_runs") or []
    return ", ".join(f"{run['state']} {(run['slot'] or '?')[11:19]}" for run in reversed(runs)) or "-"


def lag_words(row: dict[str, Any]) -> str:
    return lag_text(row.get("dispatch_lag_seconds"))


def _cells(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Each row's cells as plain text, in :data:`COLUMNS` order."""
    return [
        (
            printable(row["name"]),
            printable(row["owner"] or "-"),
            row["schedule"] if not row["problem"] else f"{row['schedule']} [{row['problem']}]",
            row.get("paused") or row["state"],
            f"{row['next_run']} ({row['timezone']})" if row["next_run"] else "-",
            row["last_run_at"] or "never",
            str(row["total_run_count"] if row["total_run_count"] is not None else "?"),
            recent_words(row),
            lag_words(row),
        )
        for row in rows
    ]


def _columns(rows: list[dict[str, Any]]) -> list[list[str]]:
    cells = _cells(rows)
    return [[header, *(row[index] for row in cells)] for index, header in enumerate(COLUMNS)]


def render_status(
    rows: list[dict[str, Any]], *, prefix: str | None = None, other_prefixes: dict[str, int] | None = None
) -> str:
    from rich.console import Console
    from rich.table import Table

    under = f" under {prefix!r}" if prefix is not None else ""
    title = f"{len(rows)} schedule{'s' if len(rows) != 1 else ''}{under}"
    if other_prefixes:
        title += "; found " + ", ".join(f"{count} under {other!r}" for other, count in other_prefixes.items())
    table = Table(title=_cell(title), title_justify="left")
    for column in COLUMNS:
        table.add_column(column, no_wrap=True)
    for cells in _cells(rows):
        table.add_row(*(_cell(text) for text in cells))
    # Wide enough for the longest cell of each column: a name is never folded or cut.
    from rich.cells import cell_len

    width = max(80, cell_len(title) + 2, sum(max(cell_len(c) for c in col) + 3 for col in _columns(rows)) + 4)
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False, emoji=False).print(table)
    return buffer.getvalue()
