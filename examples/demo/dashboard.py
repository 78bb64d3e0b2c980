"""The live view: the worker's last runs (from the run log) and the schedule as beat sees it in Redis."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from demo.runlog import Run, RunLogReader
from rich.console import Group
from rich.table import Table

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


@dataclass(frozen=True, slots=True)
class Marker:
    """A line across the runs table: something the demo did at ``at`` (epoch seconds)."""

    at: float
    label: str


class Dashboard:
    """Keeps the last ``rows`` runs and renders them with the schedule; call :meth:`poll` then :meth:`render`.

    :meth:`mark` draws a line across the runs table; the first mark splits the
    gaps of :meth:`summary` and :meth:`gaps` into before and after it.
    """

    def __init__(self, reader: RunLogReader, *, since: float, rows: int = 14) -> None:
        self.reader = reader
        self.since = since
        self.recent: deque[tuple[int, Run, float | None] | Marker] = deque(maxlen=rows)
        self.all_runs: list[Run] = []
        self.mark_at: float | None = None
        self._last_at: dict[str, float] = {}
        self.schedule: list[ScheduledEntry] = []

    def poll(self, app: Any | None = None) -> None:
        for run in self.reader.new_runs():
            key = _run_key(run)
            previous = self._last_at.get(key)
            self._last_at[key] = run.at
            self.all_runs.append(run)
            self.recent.append((len(self.all_runs), run, None if previous is None else run.at - previous))
        self._in_time_order()
        if app is not None:
            self.schedule = read_schedule(app)

    def mark(self, label: str, at: float | None = None) -> None:
        marker = Marker(time.time() if at is None else at, label)
        if self.mark_at is None:
            self.mark_at = marker.at
        self.recent.append(marker)
        self._in_time_order()

    def _in_time_order(self) -> None:
        """A run recorded before a mark but read after it still goes above the mark's line."""
        items = sorted(self.recent, key=lambda item: item.at if isinstance(item, Marker) else item[1].at)
        self.recent = deque(items, maxlen=self.recent.maxlen)

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
        for item in self.recent:
            if isinstance(item, Marker):
                if table.row_count:
                    table.add_section()
                table.add_row(
                    "", f"[bold yellow]{item.label}[/bold yellow]", f"[yellow]{item.at - self.since:5.1f}s[/yellow]",
                    "", "", "", end_section=True,
                )
                continue
            number, run, gap = item
            table.add_row(
                str(number),
                datetime.fromtimestamp(run.at).strftime("%H:%M:%S.%f")[:-3],
                f"{run.at - self.since:5.1f}s",
                run.task.removeprefix("demo.tasks."),
                _arguments(run),
                "first run" if gap is None else f"{gap:.2f}s",
            )
        if not self.all_runs:
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

    def runs_by_task(self) -> dict[str, list[Run]]:
        """All runs, grouped by task and arguments (``"demo.tasks.heartbeat "``), in the order first seen."""
        groups: dict[str, list[Run]] = {}
        for run in self.all_runs:
            groups.setdefault(_run_key(run), []).append(run)
        return groups

    def gaps(self, runs: list[Run]) -> tuple[list[float], list[float]]:
        """The gaps between consecutive ``runs`` before the first mark and after it.

        A gap counts on one side only when both of its runs are on that side, so
        the gap across the mark belongs to neither.
        """
        pairs = list(zip(runs, runs[1:], strict=False))
        if self.mark_at is None:
            return [b.at - a.at for a, b in pairs], []
        before = [b.at - a.at for a, b in pairs if b.at < self.mark_at]
        after = [b.at - a.at for a, b in pairs if a.at >= self.mark_at]
        return before, after

    def summary(self) -> Table:
        split = self.mark_at is not None
        table = Table(title="Runs per task", title_justify="left")
        table.add_column("task", style="bold cyan")
        table.add_column("arguments")
        table.add_column("runs", justify="right")
        if split:
            table.title = "Runs per task, and the mean time between runs before and after the edit"
            table.add_column("after edit", justify="right")
            table.add_column("gap before", justify="right", style="green")
            table.add_column("gap after", justify="right", style="green")
        else:
            table.add_column("mean gap", justify="right", style="green")
        for runs in self.runs_by_task().values():
            before, after = self.gaps(runs)
            row = [runs[0].task.removeprefix("demo.tasks."), _arguments(runs[0]), str(len(runs))]
            if split:
                assert self.mark_at is not None
                row += [str(sum(run.at >= self.mark_at for run in runs)), _mean(before), _mean(after)]
            else:
                row.append(_mean(before))
            table.add_row(*row)
        return table


def _mean(gaps: list[float]) -> str:
    return f"{sum(gaps) / len(gaps):.2f}s" if gaps else "-"


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
