"""Operator state of an entry (a pause), kept in the entry's hash beside its run state, never in its definition.

A pause is the hash field ``pause``: JSON ``{"by", "at", "until", "note"}``
(times in epoch seconds, ``until`` null for "until resumed").  celery-redbeat
reads only ``definition`` and ``meta``, so it reads a paused entry as before
(and, as a beat, would still run it).  Reconciler applies write only
``definition``, ``ext`` and ``meta``: a pause survives every apply and
resync.  Beat does not run an entry while its pause lasts; after it (by
``until`` or ``resume``) the entry's ``catch_up`` decides what happens to the
slots it missed, as after any downtime.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

#: The entry hash field holding the pause.
PAUSE_FIELD = "pause"
#: A pause without ``until`` is looked at again this often (``resume`` makes the entry due at once anyway).
INDEFINITE_RECHECK_SECONDS = 300.0
#: The longest note kept.
NOTE_MAX = 500


class PauseError(ValueError):
    """A pause field that cannot be read, or a pause request that makes no sense."""


@dataclass(frozen=True, slots=True)
class Pause:
    by: str
    at: float
    until: float | None = None
    note: str = ""

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until

    def recheck_score(self, now: float) -> float:
        """When beat should look at the paused entry again: when the pause ends, else a while from now."""
        return self.until if self.until is not None else now + INDEFINITE_RECHECK_SECONDS

    def encode(self) -> str:
        return json.dumps({"by": self.by, "at": self.at, "until": self.until, "note": self.note},
                          ensure_ascii=False, separators=(",", ":"))

    def words(self, tz: timezone = timezone.utc) -> str:
        """``paused by alice until 2026-12-03 14:00 UTC: incident 4711``."""
        text = f"paused by {self.by}"
        if self.until is not None:
            text += " until " + datetime.fromtimestamp(self.until, tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        return text + (f": {self.note}" if self.note else "")


def decode_pause(raw: str | bytes | None) -> Pause | None:
    """The pause stored in the field, None when absent; PauseError when it is not one."""
    if raw is None:
        return None
    try:
        data: Any = json.loads(raw)
        until = data.get("until")
        pause = Pause(str(data["by"]), float(data["at"]), None if until is None else float(until),
                      str(data.get("note") or ""))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PauseError(f"pause field is not a pause: {exc}") from None
    if not math.isfinite(pause.at) or (pause.until is not None and not math.isfinite(pause.until)):
        raise PauseError("pause field holds a time that is not finite")
    return pause


def active_pause(raw: str | bytes | None, now: float) -> Pause | None:
    """The pause in force at ``now``; an unreadable pause field counts as paused (an operator meant to pause)."""
    try:
        pause = decode_pause(raw)
    except PauseError:
        return Pause(by="?", at=now, until=None, note="unreadable pause field")
    return pause if pause is not None and pause.active(now) else None


def new_pause(by: str, now: float, until: float | None, note: str) -> Pause:
    """A pause asked for now; PauseError when ``until`` is not in the future or the note is too long."""
    if until is not None and until <= now:
        raise PauseError("--until is in the past")
    if len(note) > NOTE_MAX:
        raise PauseError(f"--note is longer than {NOTE_MAX} characters")
    return Pause(by, now, until, note)


# --- trigger now ------------------------------------------------------------------------------

#: The entry hash field holding a pending "run now" request.
TRIGGER_FIELD = "trigger"
#: A request no beat took within this long is dropped unrun (documented in docs/operating.md).
TRIGGER_TTL_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Trigger:
    """A request to run an entry once now; ``score`` is the entry's own score, put back when taken."""

    by: str
    at: float
    score: float
    note: str = ""

    def expired(self, now: float) -> bool:
        return now >= self.at + TRIGGER_TTL_SECONDS

    def encode(self) -> str:
        return json.dumps({"by": self.by, "at": self.at, "score": self.score, "note": self.note},
                          ensure_ascii=False, separators=(",", ":"))

    def history_note(self) -> str:
        return f"triggered by {self.by}" + (f": {self.note}" if self.note else "")


def decode_trigger(raw: str | bytes) -> Trigger:
    """The request stored in the field; PauseError when it is not one."""
    try:
        data: Any = json.loads(raw)
        trigger = Trigger(str(data["by"]), float(data["at"]), float(data["score"]), str(data.get("note") or ""))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PauseError(f"trigger field is not a trigger: {exc}") from None
    if not (math.isfinite(trigger.at) and math.isfinite(trigger.score)):
        raise PauseError("trigger field holds a number that is not finite")
    return trigger
