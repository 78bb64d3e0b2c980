"""``redbeat-apply status``: every entry in Redis as a table (or JSON): owner, schedule, next due, last run."""

from __future__ import annotations

import io

from datetime import datetime, timezone
from typing import Any

from redbeat.codec import CorruptEntryError, decode_meta

from reconciler.convert import EXT_FIELDS, entry_to_manifest
from reconciler.state import read_all


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
    if score is None:
        return "unscheduled"
    if score < 0:
        return "finished"
    if start_at and datetime.fromisoformat(start_at) > now:
        return "dormant"
    return "active"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def status_rows(target: Any, *, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(timezone.utc)
    rows = []
    for name, entry in sorted(read_all(target.client, target.keys).items()):
        definition = entry.decoded_definition()
        problem = None
        words = "?"
        enabled = None
        if definition is None:
            problem = "no readable definition"
        else:
            enabled = bool(definition.get("enabled", True))
            try:
                words = schedule_words(entry_to_manifest({**definition, "name": name}, entry.decoded_ext()))
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                problem = f"schedule not readable: {exc}"
        try:
            meta = decode_meta(entry.meta)
        except CorruptEntryError as exc:
            meta = {"last_run_at": None, "total_run_count": None}
            problem = problem or f"meta: {exc}"
        if entry.score is None or entry.score < 0:
            next_due = None
        else:
            next_due = _iso(datetime.fromtimestamp(entry.score, timezone.utc))
        ext = entry.decoded_ext() or {}
        rows.append(
            {
                "name": name,
                "owner": entry.owner,
                "schedule": words,
                "enabled": enabled,
                "state": entry_state(enabled, entry.score, ext.get("start_at"), now),
                "next_due": next_due,
                "last_run_at": _iso(meta["last_run_at"]),
                "total_run_count": meta["total_run_count"],
                "problem": problem,
            }
        )
    return rows


def render_status(rows: list[dict[str, Any]]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} schedule{'s' if len(rows) != 1 else ''} in Redis", title_justify="left")
    from rich.markup import escape

    from reconciler.operate import lag_words, recent_words

    for column in ("name", "owner", "schedule", "state", "next due (UTC)", "last run (UTC)", "runs",
                   "recent runs", "lag"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["owner"] or "-",
            row["schedule"] if not row["problem"] else f"{row['schedule']} [{row['problem']}]",
            row["state"] if not row.get("paused") else escape(row["paused"]),
            row["next_due"] or "-",
            row["last_run_at"] or "never",
            str(row["total_run_count"] if row["total_run_count"] is not None else "?"),
            recent_words(row),
            lag_words(row),
        )
    buffer = io.StringIO()
    Console(file=buffer, width=160, color_system=None).print(table)
    return buffer.getvalue()


