"""Run history: what beat records about each run it claims, and reading it back.

Beat appends to one capped Redis stream (``<prefix>:history``) inside the
tick's two scripts, so the history costs no round trip of its own:

* the settle script appends a ``claimed`` record for every claim it applies
  (atomically with the run state: the history has a claim exactly when
  Redis does);
* the next tick's fetch script appends the outcome beat saw after sending:
  ``sent`` (the broker took it) or ``lost`` with the reason beat logged.

A claim with no outcome yet is "pending" (the outcome arrives with the next
tick) or, when beat stopped in between, never resolved.  The stream is
capped with ``MAXLEN ~``: two records per run, ``redbeat_history_size`` runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from .keys import KeySpace

#: Runs kept when ``redbeat_history_size`` is not set (the stream holds about twice as many records).
DEFAULT_HISTORY_SIZE = 10_000
#: Records per run: its claim and its outcome.
RECORDS_PER_RUN = 2

#: Lua shared by the tick's scripts: ``append_history(key, maxlen, records)``
#: XADDs each {event, entry, slot, at, reason} record; maxlen 0 turns it off.
HISTORY_LUA = """
local function append_history(key, maxlen, records)
  if tonumber(maxlen) <= 0 then
    return
  end
  for _, r in ipairs(records) do
    if r[5] ~= '' then
      redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'event', r[1], 'entry', r[2], 'slot', r[3], 'at', r[4],
        'reason', r[5])
    else
      redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'event', r[1], 'entry', r[2], 'slot', r[3], 'at', r[4])
    end
  end
end
"""


class RunEvent(Enum):
    CLAIMED = "claimed"
    SENT = "sent"
    LOST = "lost"


class RunState(Enum):
    """What became of a claimed run, as far as the history knows."""

    SENT = "sent"
    LOST = "lost"
    PENDING = "pending"  # claimed, outcome not recorded (yet, or beat stopped before recording it)


def history_maxlen(size: int) -> int:
    """The stream's MAXLEN for ``size`` runs."""
    return max(0, size) * RECORDS_PER_RUN


def slot_text(slot: datetime | None) -> str:
    """A slot as the history stores it: epoch seconds (so a claim and its outcome compare as text)."""
    return "" if slot is None else repr(round(slot.timestamp(), 6))


@dataclass(slots=True)  # not frozen: one per send, and a frozen __init__ costs twice as much; never changed
class Outcome:
    """What beat saw when it sent a claimed run; recorded by the next tick."""

    event: RunEvent
    entry: str
    slot: str
    at: float
    reason: str = ""

    def as_record(self) -> list[str]:
        return [self.event.value, self.entry, self.slot, repr(round(self.at, 6)), self.reason]


@dataclass(slots=True)
class Run:
    """One claimed run: entry, slot, when it was claimed and what became of it."""

    entry: str
    slot: float | None
    claimed_at: float | None
    id: str
    sent_at: float | None = None
    lost_reason: str | None = None
    note: str | None = None  # a triggered run's "triggered by alice: note"

    @property
    def state(self) -> RunState:
        if self.sent_at is not None:
            return RunState.SENT
        if self.lost_reason is not None:
            return RunState.LOST
        return RunState.PENDING

    @property
    def lag(self) -> float | None:
        """Dispatch lag: from the slot to the broker taking the message (seconds)."""
        if self.sent_at is None or self.slot is None:
            return None
        return max(0.0, self.sent_at - self.slot)

    def as_json(self) -> dict[str, Any]:
        return {
            "entry": self.entry,
            "slot": _iso(self.slot),
            "claimed_at": _iso(self.claimed_at),
            "state": self.state.value,
            "sent_at": _iso(self.sent_at),
            "lost_reason": self.lost_reason,
            "lag_seconds": None if self.lag is None else round(self.lag, 3),
            "note": self.note,
            "id": self.id,
        }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds")


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def runs_from_records(records: Iterable[tuple[Any, dict[Any, Any]]]) -> list[Run]:
    """Fold stream records (oldest first) into runs: an outcome completes the latest claim of its entry and slot.

    An outcome whose claim was trimmed away still becomes a run (claimed at unknown).
    """
    runs: list[Run] = []
    open_claims: dict[tuple[str, str], Run] = {}
    for record_id, raw in records:
        fields = {_text(k): _text(v) for k, v in raw.items()}
        entry, slot, event = fields.get("entry", ""), fields.get("slot", ""), fields.get("event", "")
        at = _float(fields.get("at"))
        if event == RunEvent.CLAIMED.value:
            run = Run(entry, _float(slot), at, _text(record_id), note=fields.get("reason") or None)
            runs.append(run)
            open_claims[(entry, slot)] = run
            continue
        if event not in (RunEvent.SENT.value, RunEvent.LOST.value):
            continue  # a record kind a newer beat writes: skip it, never fail
        claim = open_claims.pop((entry, slot), None)
        run = claim if claim is not None else _orphan(runs, entry, slot, record_id)
        if event == RunEvent.SENT.value:
            run.sent_at = at
        else:
            run.lost_reason = fields.get("reason") or "lost"
    return runs


def _orphan(runs: list[Run], entry: str, slot: str, record_id: Any) -> Run:
    run = Run(entry, _float(slot), None, _text(record_id))
    runs.append(run)
    return run


def stream_id_since(moment: datetime) -> str:
    """The first stream id at or after ``moment`` (stream ids start with milliseconds since the epoch)."""
    return f"{int(moment.timestamp() * 1000)}-0"


def read_runs(
    client: Any, keys: KeySpace, *, entry: str | None = None, since: datetime | None = None, limit: int | None = None
) -> list[Run]:
    """The recorded runs, oldest first, optionally of one entry, claimed since a moment, the last ``limit``.

    Reads the whole capped stream (at most ~2 x history size records) in one XRANGE.
    """
    start = stream_id_since(since) if since is not None else "-"
    runs = runs_from_records(client.xrange(keys.history, min=start, max="+"))
    if entry is not None:
        runs = [run for run in runs if run.entry == entry]
    if limit is not None:
        runs = runs[-limit:] if limit > 0 else []
    return runs


def last_runs(runs: Sequence[Run], per_entry: int) -> dict[str, list[Run]]:
    """Each entry's last ``per_entry`` runs, oldest first."""
    out: dict[str, list[Run]] = {}
    for run in runs:
        out.setdefault(run.entry, []).append(run)
    return {name: items[-per_entry:] for name, items in out.items()}
