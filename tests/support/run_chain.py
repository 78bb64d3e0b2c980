"""Whether a worker's run record shows each entry's runs as one chain: every slot once, on time, none skipped.

The record is relapp's (tests/reliability/relapp.py): each run carries the run count and the slot
(``last_run_at``) that the beat which sent it recorded for it, that beat's pid and the send time.
Whichever beat sends, ours or celery-redbeat's, a run is due one interval after the slot recorded by
the run before it (ours records the grid slot, celery-redbeat the moment it sent) and counts one more.
So, per entry, in the order sent:

* a count seen twice is one run sent twice; a count missing, a run claimed and never sent;
* a run sent before it was due repeats the slot before it (sent twice, by whoever sent it second);
* a run sent more than ``on_time`` after it was due (or after its beat began to lead, when that is
  later) is late; a slot due before the end with no run at all was skipped.

Nothing here looks at our grid: celery-redbeat's runs are offset from it by however late it started,
which is why runs are never labelled by grid slot (a send 1.955 s after a grid slot is not 45 ms early
for the next one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Float rounding between a slot stored to the microsecond and a send time: never a real early send.
EARLY_TOLERANCE = 0.005


@dataclass(frozen=True)
class Run:
    """One run in the worker's record, as its beat labelled it."""

    name: str
    count: int
    slot: float
    sent_at: float
    beat_pid: int


def runs_by_name(record: Iterable[Mapping[str, Any]]) -> dict[str, list[Run]]:
    """relapp's record lines as runs, per entry, in the order they were sent."""
    out: dict[str, list[Run]] = {}
    for line in record:
        run = Run(str(line["name"]), int(line["count"]), float(line["slot"]), float(line["sent_at"]),
                  int(line["beat_pid"]))
        out.setdefault(run.name, []).append(run)
    return {name: sorted(runs, key=lambda run: run.sent_at) for name, runs in out.items()}


def chain_problems(
    runs: list[Run],
    *,
    every: float,
    saved_at: float,
    until: float,
    on_time: float | None = None,
    leading_since: Mapping[int, float] | None = None,
) -> list[str]:
    """What is wrong with one entry's runs (none: every slot once, in order; on time when ``on_time``).

    ``saved_at``: the ``last_run_at`` the entry was saved with (its first run is due one interval
    later); ``until``: when the last beat stopped; ``leading_since``: per beat pid, when it began to
    lead (a run due before then can only be sent then).
    """
    problems = []
    counts = [run.count for run in runs]
    if counts != list(range(1, len(runs) + 1)):
        problems.append(f"run counts {counts}: a count twice is one run sent twice, one missing a run never sent")
    previous = saved_at
    for run in runs:
        due = previous + every
        if run.sent_at < due - EARLY_TOLERANCE:
            problems.append(f"run {run.count} sent {due - run.sent_at:.3f} s before it was due "
                            f"(+{due - saved_at:.3f} s): the slot before it was sent twice")
        if on_time is not None:
            since = (leading_since or {}).get(run.beat_pid)
            if since is None:
                problems.append(f"run {run.count} sent by pid {run.beat_pid}, not a beat of this test")
            elif run.sent_at - max(due, since) > on_time:
                problems.append(f"run {run.count} sent {run.sent_at - max(due, since):.3f} s late")
        previous = run.slot
    if on_time is not None and previous + every < until - on_time:
        problems.append(f"a slot due at +{previous + every - saved_at:.3f} s, before the end, was never sent")
    return problems


def handover_problems(last_run: Run, stored_last_run_at: datetime | None, stored_count: int) -> list[str]:
    """Whether the run state a stopped beat left is its last send: what the next beat reads and counts on."""
    stored = stored_last_run_at.timestamp() if stored_last_run_at is not None else None
    if stored is not None and abs(stored - last_run.slot) <= EARLY_TOLERANCE and stored_count == last_run.count:
        return []
    return [f"{last_run.name}: the last run sent was run {last_run.count} for {last_run.slot:.3f}, but the stored "
            f"run state says run {stored_count} at {stored}: the next beat would send a slot twice or skip one"]
