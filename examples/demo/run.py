"""The quick-start demo: ``bash scripts/demo.sh`` (or ``python examples/demo/run.py`` inside the venv).

Starts a throwaway redis-server, a Celery worker and ``celery beat -S
redbeat.Scheduler``; applies ``examples/schedules/`` with ``redbeat-apply``;
shows the runs live for a few seconds; then edits a copy of a manifest (the
heartbeat from every 2 s to every 4 s, plus a new entry), shows the
``redbeat-apply --dry-run`` diff, applies it and shows the new timing taking
effect in the same, never restarted, beat; stops everything it started and
removes its temp dir, on Ctrl-C and on errors too.

Each stage is one small method of :class:`Demo`, run in order by :func:`main`.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCHEDULES = REPO / "examples" / "schedules"
# The queues examples/schedules/*.yaml send to.
QUEUES = ("celery", "reports", "maintenance")
LOCK_KEY = "redbeat::lock"  # celery-redbeat's default lock key
WAKE_CHANNEL = "redbeat::wake"  # redbeat-apply publishes here after writing; beat listens

# The edit of stage 4, made to the demo's copy of examples/schedules/demo.yaml.
EDITED_FILE = "demo.yaml"
HEARTBEAT = "demo-heartbeat"
OLD_EVERY, NEW_EVERY = "2s", "4s"
NEW_ENTRY = """\
  - name: demo-sweep           # added by the demo
    task: demo.tasks.cleanup
    every: 3s
    args: [cache]
"""
STAGES = (
    "Start a throwaway Redis, a Celery worker and celery beat",
    "Apply the manifests in examples/schedules/; open the web console",
    "Watch the tasks run",
    f"Edit a manifest: {HEARTBEAT} every {OLD_EVERY} -> {NEW_EVERY}, and a new entry",
    "Dry run: redbeat-apply --dry-run shows the diff",
    "Apply it; beat is not restarted",
    "Watch the new timing",
    "Stop everything",
)

sys.path.insert(0, str(HERE))  # demo (the Celery app), launcher, dashboard

from dashboard import SCHEDULE_KEY, Dashboard  # noqa: E402
from demo.runlog import ENV_VAR as RUN_LOG_VAR  # noqa: E402
from demo.runlog import RunLogReader  # noqa: E402
from launcher import Child, StartError, free_port, start_redis  # noqa: E402


class Demo:
    """The demo's state: its temp dir, the children it started (stopped in reverse on exit), the Redis URL."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.workdir = Path(tempfile.mkdtemp(prefix="redbeat-demo-"))
        self.children: list[Child] = []
        self.redis_url = ""
        self.run_log = self.workdir / "runs.jsonl"
        self.schedules = self.workdir / "schedules"
        self.app = None
        self.beat: Child | None = None
        self.beat_pid_after: int | None = None
        self.lock_at_start: str | None = None  # the leader's token, "host:pid:random"
        self.lock_at_end: str | None = None
        self.edit_applied_at: float | None = None
        self.dashboard: Dashboard | None = None
        self.console_url: str | None = None

    # -- helpers ---------------------------------------------------------------------

    def done(self, message: str) -> None:
        self.console.print(f"[green]✓[/green] {message}")

    def stage(self, number: int) -> None:
        self.console.print()
        self.console.rule(f"[bold]{number}/{len(STAGES)}  {STAGES[number - 1]}[/bold]", align="left")

    def redbeat_apply(self, *args: str, title: str, fold_fields: bool = False) -> str:
        """Run the real CLI against the demo's Redis, show its output in a panel, return it."""
        argv = [_redbeat_apply(), *args, "--redis-url", self.redis_url]
        self.console.print(f"[bold]$ redbeat-apply {' '.join(args)} --redis-url {self.redis_url}[/bold]")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}  # the demo's prefix and owner
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=self.workdir, env=env)
        output = (result.stdout + result.stderr).rstrip()
        if result.returncode != 0:
            raise StartError(f"redbeat-apply exited with {result.returncode}:\n{output}")
        self.console.print(
            Panel(_plan_text(output or "(no output)", fold_fields=fold_fields), title=title, expand=False)
        )
        return output

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DEMO_REDIS_URL=self.redis_url,
            DEMO_LOCK_TIMEOUT="6",
            PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
            **{RUN_LOG_VAR: str(self.run_log)},
        )
        return env

    def spawn(self, name: str, argv: Sequence[str]) -> Child:
        child = Child(name, argv, log=self.workdir / f"{name}.log", cwd=self.workdir, env=self.child_env())
        self.children.append(child)
        return child

    def celery(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "demo", *args]

    # -- stages ----------------------------------------------------------------------

    def start_redis(self) -> None:
        with self.console.status("starting redis-server"):
            child, self.redis_url = start_redis(self.workdir)
        self.children.append(child)
        os.environ["DEMO_REDIS_URL"] = self.redis_url  # for the demo app imported below
        import redis
        from demo import app

        app.redbeat_redis = redis.Redis.from_url(self.redis_url, decode_responses=True)
        self.app = app
        self.done(f"redis-server on [bold]{self.redis_url}[/bold] (pid {child.pid}), a throwaway in {self.workdir}")

    def start_worker(self) -> None:
        worker = self.spawn(
            "worker",
            self.celery(
                "worker",
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "-Q",
                ",".join(QUEUES),
                "-n",
                "demo@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ),
        )
        with self.console.status("starting the Celery worker"):
            worker.wait_until(lambda: " ready." in worker.log_tail(200), timeout=60, what="'ready' in its log")
        self.done(f"celery worker (pid {worker.pid}), solo pool, queues {', '.join(QUEUES)}")

    def start_beat(self) -> None:
        beat = self.spawn(
            "beat",
            self.celery(
                "beat",
                "-S",
                "redbeat.Scheduler",
                "--max-interval",
                "5",
                "--loglevel",
                "INFO",
            ),
        )
        client = self.app.redbeat_redis  # type: ignore[union-attr]
        with self.console.status("starting celery beat -S redbeat.Scheduler"):
            beat.wait_until(lambda: bool(client.exists(LOCK_KEY)), timeout=60, what=f"lock {LOCK_KEY} taken")
        self.beat = beat
        self.lock_at_start = self._lock_holder()
        if _token_pid(self.lock_at_start) != beat.pid:
            raise StartError(f"{LOCK_KEY} is held by {self.lock_at_start}, not by the beat started (pid {beat.pid})")
        self.done(f"celery beat [bold]-S redbeat.Scheduler[/bold] (pid {beat.pid}) leads: it holds {LOCK_KEY}")

    def apply_schedules(self) -> None:
        """Apply a copy of the manifests with the real CLI; beat picks the entries up at once, no restart."""
        shutil.copytree(SCHEDULES, self.schedules)
        self.redbeat_apply(
            "schedules/",
            title="redbeat-apply: the plan, applied (field lines folded)",
            fold_fields=True,
        )
        count = len(list(self.schedules.rglob("*.y*ml")))
        self.done(f"applied {count} manifests, a copy of examples/schedules/ in the temp dir")

    def start_console(self) -> None:
        """``redbeat-apply console`` over the demo's Redis and manifests, on loopback, for as long as the demo runs."""
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        console = self.spawn("console", [_redbeat_apply(), "console", "--redis-url", self.redis_url,
                                         "--listen", f"127.0.0.1:{port}", "schedules/"])
        with self.console.status("starting the web console"):
            console.wait_until(lambda: url in console.log_tail(20), timeout=30, what="its URL in its log")
        self.console_url = url
        self.done(f"web console (redbeat-apply console) at [bold]{url}[/bold]: open it while the demo runs")

    def watch(self, seconds: float) -> Dashboard:
        if self.dashboard is None:
            self.dashboard = Dashboard(RunLogReader(self.run_log), since=time.time())
        dashboard = self.dashboard
        end = time.monotonic() + seconds
        self.console.print(f"Watching for {seconds:g}s (Ctrl-C stops the demo early)")
        try:
            with Live(dashboard.render(), console=self.console, refresh_per_second=4) as live:
                while time.monotonic() < end:
                    self._check_children()
                    dashboard.poll(self.app)
                    live.update(dashboard.render())
                    time.sleep(0.25)
                dashboard.poll(self.app)
                live.update(dashboard.render())
        finally:
            self.console.print()  # Live leaves the cursor at the end of the table
        return dashboard

    def edit_manifest(self) -> None:
        """Change the heartbeat's interval and add an entry, in the demo's copy, as a person would in an editor."""
        path = self.schedules / EDITED_FILE
        before = path.read_text()
        after = edit_demo_manifest(before)
        path.write_text(after)
        diff = "".join(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                fromfile=f"a/schedules/{EDITED_FILE}",
                tofile=f"b/schedules/{EDITED_FILE}",
            )
        )
        self.console.print(
            Panel(Syntax(diff.rstrip(), "diff", theme="ansi_dark"), title=f"the edit of {path}", expand=False)
        )
        self.done(f"edited {path}: {HEARTBEAT} every {NEW_EVERY}, new entry demo-sweep every 3s")

    def dry_run(self) -> None:
        output = self.redbeat_apply(
            "--dry-run", "schedules/", title="redbeat-apply --dry-run: the diff, nothing written"
        )
        if f'every: "{OLD_EVERY}" -> "{NEW_EVERY}"' not in output:
            raise StartError(f"the dry run does not show the edit of {HEARTBEAT}:\n{output}")
        self.done("the plan shows exactly the edit; Redis is unchanged")

    def apply_edit(self) -> None:
        assert self.beat is not None and self.dashboard is not None
        due_before = self._heartbeat_due()
        self.redbeat_apply("schedules/", title="redbeat-apply: applied")
        self.edit_applied_at = time.time()
        due_after = self._heartbeat_due()
        self.dashboard.mark("edit applied", self.edit_applied_at)
        self._check_children()
        last_run = self._heartbeat_last_run()
        if due_before is not None and due_after is not None and last_run is not None:
            self.done(
                f"{HEARTBEAT} due at {_clock(due_before)} -> {_clock(due_after)} in Redis "
                f"(its last run {_clock(last_run)} {due_after - last_run:+.1f}s)"
            )
        self.done(f"beat (pid {self.beat.pid}) keeps running; apply published on {WAKE_CHANNEL}, beat re-reads Redis")

    def _heartbeat_due(self) -> float | None:
        client = self.app.redbeat_redis  # type: ignore[union-attr]
        return client.zscore(SCHEDULE_KEY, f"redbeat:{HEARTBEAT}")

    def _heartbeat_last_run(self) -> float | None:
        from redbeat import RedBeatSchedulerEntry

        entry = RedBeatSchedulerEntry.from_key(f"redbeat:{HEARTBEAT}", app=self.app)
        return entry.last_run_at.timestamp() if entry.total_run_count else None

    def check_beat_kept_its_pid(self) -> None:
        """The same beat leads as at the start: its process never exited, and it holds the lock with the same token."""
        assert self.beat is not None
        self._check_children()  # raises if beat (or anything else) exited
        self.lock_at_end = self._lock_holder()
        if self.lock_at_end != self.lock_at_start:
            raise StartError(f"the beat lock changed hands: {self.lock_at_start} at the start, {self.lock_at_end} now")
        self.beat_pid_after = _token_pid(self.lock_at_end)
        self.done(f"beat pid {self.beat_pid_after} still leads with its first lock token, {self.lock_at_end}")

    def _lock_holder(self) -> str:
        token = self.app.redbeat_redis.get(LOCK_KEY)  # type: ignore[union-attr]
        if not token:
            raise StartError(f"nobody holds {LOCK_KEY}: beat is not leading")
        return str(token)

    def _check_children(self) -> None:
        for child in self.children:
            if not child.running():
                raise StartError(f"{child.name} exited with {child.proc.returncode}:\n{child.log_tail()}")

    # -- teardown --------------------------------------------------------------------

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None and not issubclass(kind, (KeyboardInterrupt, StartError)):
            for child in self.children:  # an unexpected error: show what the children said last
                self.console.print(Panel(child.log_tail(10), title=f"{child.name}.log", expand=False))
        with self.console.status("stopping everything the demo started"):
            for child in reversed(self.children):
                child.stop()
            shutil.rmtree(self.workdir, ignore_errors=True)
        names = ", ".join(child.name for child in reversed(self.children)) or "nothing to stop"
        self.done(f"stopped {names}; removed {self.workdir}")


def edit_demo_manifest(text: str) -> str:
    """``text`` (examples/schedules/demo.yaml) with the heartbeat every 4 s and ``NEW_ENTRY`` appended.

    A plain text edit, comments and layout kept; a manifest that no longer has
    the lines this expects is an error, not a silently different demo.
    """
    pattern = re.compile(
        rf"(- name: {re.escape(HEARTBEAT)}\n(?:[ \t]+\w+:.*\n)*?[ \t]+every: ){re.escape(OLD_EVERY)}\b"
    )
    edited, count = pattern.subn(rf"\g<1>{NEW_EVERY}", text)
    if count != 1:
        raise StartError(f"examples/schedules/{EDITED_FILE} no longer has '{HEARTBEAT}' with 'every: {OLD_EVERY}'")
    if "\nschedules:\n" not in edited or not edited.endswith("\n"):
        raise StartError(f"examples/schedules/{EDITED_FILE} no longer ends with its 'schedules:' list")
    return edited + "\n" + NEW_ENTRY


_PLAN_STYLES = {"+": "green", "~": "yellow", "-": "red", "!": "bold red"}


def _plan_text(output: str, *, fold_fields: bool) -> Text:
    """redbeat-apply's text plan, coloured as on a terminal; ``fold_fields`` keeps only the entry lines."""
    text = Text()
    folded = 0
    for line in output.splitlines():
        if fold_fields and line.startswith("      "):
            folded += 1
            continue
        style = _PLAN_STYLES.get(line[:1], "") if line[1:2] == " " else ""
        if line.startswith(("Plan:", "Applied", "Dry run", "No changes")):
            style = "bold"
        text.append(line + "\n", style=style)
    if folded:
        text.append(f"({folded} lines of fields folded: each new entry's task, schedule and options)\n", style="dim")
    text.rstrip()
    return text


def _redbeat_apply() -> str:
    beside = Path(sys.executable).with_name("redbeat-apply")
    found = str(beside) if beside.exists() else shutil.which("redbeat-apply")
    if not found:
        raise StartError("redbeat-apply is not installed: run `pip install -e .` (scripts/demo.sh does)")
    return found


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def closing_summary(demo: Demo) -> Group:
    """The summary printed last: runs per task, and the heartbeat's gaps on either side of the edit."""
    dashboard = demo.dashboard
    assert dashboard is not None
    lines = Text()
    heartbeats = dashboard.runs_by_task().get("demo.tasks.heartbeat ", [])
    before, after = dashboard.gaps(heartbeats)
    if before and after:
        lines.append(f"{HEARTBEAT} every {OLD_EVERY} -> {NEW_EVERY}: ", style="bold")
        lines.append(
            f"mean gap {_mean(before)} before the edit ({_count(before, 'gap')}), "
            f"{_mean(after)} after ({_count(after, 'gap')})\n"
        )
    if demo.lock_at_start is not None and demo.beat_pid_after is not None:
        lines.append("celery beat: ", style="bold")
        lines.append(
            f"pid {_token_pid(demo.lock_at_start)} at the start, pid {demo.beat_pid_after} at the end; "
            "the change reached it through Redis\n"
        )
    lines.append("Try it on your own manifests: ", style="dim")
    lines.append("redbeat-apply --dry-run schedules/", style="bold dim")
    return Group(dashboard.summary(), lines)


def _token_pid(token: str) -> int:
    """The pid in a beat lock token, ``host:pid:random``."""
    return int(token.rsplit(":", 2)[-2])


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S.%f")[:-4]


def _count(items: list[float], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _mean(gaps: list[float]) -> str:
    return f"{sum(gaps) / len(gaps):.2f}s" if gaps else "-"


def write_record(demo: Demo, path: Path) -> None:
    """What happened, as JSON: every run, when the edit was applied, the pids and the temp dir (for tests)."""
    dashboard = demo.dashboard
    record = {
        "workdir": str(demo.workdir),
        "redis_url": demo.redis_url,
        "children": {child.name: child.pid for child in demo.children},
        "beat_pid_at_start": _token_pid(demo.lock_at_start) if demo.lock_at_start else None,
        "beat_pid_at_end": demo.beat_pid_after,
        "lock_token_at_start": demo.lock_at_start,
        "lock_token_at_end": demo.lock_at_end,
        "edit_applied_at": demo.edit_applied_at,
        "console_url": demo.console_url,
        "runs": [
            {"task": run.task, "args": list(run.args), "kwargs": run.kwargs, "at": run.at}
            for run in (dashboard.all_runs if dashboard else [])
        ],
    }
    path.write_text(json.dumps(record, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=12.0,
        help="how long each of the two watches lasts, before and after the edit (default 12)",
    )
    parser.add_argument("--record", type=Path, metavar="FILE", help="also write what happened as JSON to FILE")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM both end in the teardown (a shell may start us with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    console = Console()
    console.rule("[bold]redbeat demo[/bold]: celery beat -S redbeat.Scheduler + redbeat-apply")
    demo: Demo | None = None
    try:
        with Demo(console) as demo:
            try:
                demo.stage(1)
                demo.start_redis()
                demo.start_worker()
                demo.start_beat()
                demo.stage(2)
                demo.apply_schedules()
                demo.start_console()
                demo.stage(3)
                demo.watch(args.seconds)
                demo.stage(4)
                demo.edit_manifest()
                demo.stage(5)
                demo.dry_run()
                demo.stage(6)
                demo.apply_edit()
                demo.stage(7)
                demo.watch(args.seconds)
                demo.check_beat_kept_its_pid()
                demo.stage(8)
            except StartError as exc:
                console.print(f"[red]✗ {exc}[/red]")
                return 1
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; everything the demo started has been stopped.[/yellow]")
        return 130
    finally:
        if args.record is not None and demo is not None:
            write_record(demo, args.record)
    console.print()
    console.print(closing_summary(demo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
