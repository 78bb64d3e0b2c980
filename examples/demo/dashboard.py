"""The live view: the worker's last runs (from the run log) and the schedule as beat sees it in Redis."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.table import Table

from demo.runlog import Run, RunLogReader

# celery-redbeat's key layout with the default prefix (see the README's key table).
SCHEDULE_KEY = "redbeat::schedule"


@dataclass(frozen=True, slots=True)
class ScheduledEntry:
    name: str
    task: str
    schedule: str
    enabled: bool
    runs: int
    next_due: float | None  # epoch seconds; None: not in the due index (disabled or finished)


def read_schedule(app: Any) -> list[ScheduledEntry]:
    """Every entry in the schedule index, through redbeat's public entry API (client: ``app.redbeat_redis``)."""
    from redbeat import RedBeatSchedulerEntry

    client = app.redbeat_redis
    out = []
    for key, score in client.zrange(SCHEDULE_KEY, 0, -1, withscores=True):
        try:
            entry = RedBeatSchedulerEntry.from_key(key, app=app)
        except KeyError:  # deleted between the two reads
            continue
        out.append(ScheduledEntry(
            name=entry.name, task=entry.task, schedule=_describe(entry.schedule), enabled=entry.enabled,
            runs=entry.total_run_count, next_due=score if score >= 0 else None,
        ))
    return sorted(out, key=lambda e: (e.next_due is None, e.next_due or 0, e.name))


def _describe(schedule: Any) -> str:
    every = getattr(schedule, "run_every", None)
    if every is not None:
        return f"every {every.total_seconds():g}s"
    if type(schedule).__name__ == "rrule":
        return "rrule"  # its repr lists every by* field; the manifest says it better
    return str(schedule).strip("<>").replace(" (m/h/dM/MY/d)", "")


class Dashboard:
    """Keeps the last ``rows`` runs and renders them with the schedule; call :meth:`poll` then :meth:`render`."""

    def __init__(self, reader: RunLogReader, *, since: float, rows: int = 12) -> None:
        self.reader = reader
        self.since = since
        self.recent: deque[tuple[Run, float | None]] = deque(maxlen=rows)
        self.all_runs: list[Run] = []
        self._last_at: dict[str, float] = {}
        self.schedule: list[ScheduledEntry] = []

    def poll(self, app: Any | None = None) -> None:
        for run in self.reader.new_runs():
            key = _run_key(run)
            previous = self._last_at.get(key)
            self._last_at[key] = run.at
            self.recent.append((run, None if previous is None else run.at - previous))
            self.all_runs.append(run)
        if app is not None:
            self.schedule = read_schedule(app)

    def render(self) -> Group:
        return Group(self._runs_table(), self._schedule_table())

    def _runs_table(self) -> Table:
        table = Table(title="Last runs, as the worker recorded them", title_justify="left", expand=False)
        table.add_column("#", justify="right", style="dim")
        table.add_column("ran at")
        table.add_column("t+", justify="right")
        table.add_column("task", style="bold cyan")
        table.add_column("arguments")
        table.add_column("since last", justify="right", style="green")
        first = len(self.all_runs) - len(self.recent) + 1
        for number, (run, gap) in enumerate(self.recent, start=first):
            table.add_row(
                str(number),
                datetime.fromtimestamp(run.at).strftime("%H:%M:%S.%f")[:-3],
                f"{run.at - self.since:5.1f}s",
                run.task.removeprefix("demo.tasks."),
                _arguments(run),
                "first run" if gap is None else f"{gap:.2f}s",
            )
        if not self.recent:
            table.add_row("", "[dim]waiting for the first run...[/dim]", "", "", "", "")
        return table

    def _schedule_table(self) -> Table:
        table = Table(title="The schedule in Redis, as beat reads it", title_justify="left")
        table.add_column("entry", style="bold")
        table.add_column("task")
        table.add_column("schedule")
        table.add_column("runs", justify="right")
        table.add_column("next due", justify="right")
        now = time.time()
        for entry in self.schedule:
            if not entry.enabled:
                due = "[dim]disabled[/dim]"
            elif entry.next_due is None:
                due = "[dim]never[/dim]"
            else:
                due = _in(entry.next_due - now)
            table.add_row(entry.name, entry.task.removeprefix("demo.tasks."), entry.schedule, str(entry.runs), due)
        return table

    def summary(self) -> Table:
        table = Table(title="Runs per task", title_justify="left")
        table.add_column("task", style="bold cyan")
        table.add_column("arguments")
        table.add_column("runs", justify="right")
        table.add_column("mean gap", justify="right", style="green")
        groups: dict[str, list[Run]] = {}
        for run in self.all_runs:
            groups.setdefault(_run_key(run), []).append(run)
        for runs in groups.values():
            gaps = [b.at - a.at for a, b in zip(runs, runs[1:])]
            mean = f"{sum(gaps) / len(gaps):.2f}s" if gaps else "-"
            table.add_row(runs[0].task.removeprefix("demo.tasks."), _arguments(runs[0]), str(len(runs)), mean)
        return table


def _run_key(run: Run) -> str:
    return f"{run.task} {_arguments(run)}"


def _arguments(run: Run) -> str:
    parts: Iterable[str] = [*(repr(a) for a in run.args), *(f"{k}={v!r}" for k, v in run.kwargs.items())]
    return ", ".join(parts)


def _in(seconds: float) -> str:
    if seconds <= 0:
        return "[yellow]now[/yellow]"
    if seconds < 120:
        return f"in {seconds:.1f}s"
    if seconds < 2 * 3600:
        return f"in {seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"in {seconds / 3600:.0f} h"
    return f"in {seconds / 86400:.0f} days"
