"""The quick-start demo: ``bash scripts/demo.sh`` (or ``python examples/demo/run.py`` inside the venv).

Starts a throwaway redis-server, a Celery worker and ``celery beat -S
redbeat.Scheduler``; applies ``examples/schedules/`` with ``redbeat-apply``;
shows the runs live for a few seconds; stops everything it started and
removes its temp dir, on Ctrl-C and on errors too.

Each stage is one small method of :class:`Demo`, run in order by :func:`main`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCHEDULES = REPO / "examples" / "schedules"
# The queues examples/schedules/*.yaml send to.
QUEUES = ("celery", "reports", "maintenance")
LOCK_KEY = "redbeat::lock"  # celery-redbeat's default lock key

sys.path.insert(0, str(HERE))  # demo (the Celery app), launcher, dashboard

from dashboard import Dashboard  # noqa: E402
from demo.runlog import ENV_VAR as RUN_LOG_VAR  # noqa: E402
from demo.runlog import RunLogReader  # noqa: E402
from launcher import Child, StartError, start_redis  # noqa: E402


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

    # -- helpers ---------------------------------------------------------------------

    def done(self, message: str) -> None:
        self.console.print(f"[green]✓[/green] {message}")

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
        from demo import app
        import redis

        app.redbeat_redis = redis.Redis.from_url(self.redis_url, decode_responses=True)
        self.app = app
        self.done(f"redis-server on [bold]{self.redis_url}[/bold] (pid {child.pid}), a throwaway in {self.workdir}")

    def start_worker(self) -> None:
        worker = self.spawn("worker", self.celery(
            "worker", "--pool", "solo", "--concurrency", "1", "-Q", ",".join(QUEUES), "-n", "demo@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
        ))
        with self.console.status("starting the Celery worker"):
            worker.wait_until(lambda: " ready." in worker.log_tail(200), timeout=60, what="'ready' in its log")
        self.done(f"celery worker (pid {worker.pid}), solo pool, queues {', '.join(QUEUES)}")

    def start_beat(self) -> None:
        beat = self.spawn("beat", self.celery(
            "beat", "-S", "redbeat.Scheduler", "--max-interval", "5", "--loglevel", "INFO",
        ))
        client = self.app.redbeat_redis  # type: ignore[union-attr]
        with self.console.status("starting celery beat -S redbeat.Scheduler"):
            beat.wait_until(lambda: bool(client.exists(LOCK_KEY)), timeout=60, what=f"lock {LOCK_KEY} taken")
        self.done(f"celery beat [bold]-S redbeat.Scheduler[/bold] (pid {beat.pid}) leads: it holds {LOCK_KEY}")

    def apply_schedules(self) -> None:
        """Apply the manifests with the real CLI; beat picks the entries up on its next tick, no restart."""
        shutil.copytree(SCHEDULES, self.schedules)
        argv = [_redbeat_apply(), str(self.schedules), "--redis-url", self.redis_url]
        self.console.print(f"[bold]$ redbeat-apply {self.schedules} --redis-url {self.redis_url}[/bold]")
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        output = (result.stdout + result.stderr).rstrip()
        if result.returncode != 0:
            raise StartError(f"redbeat-apply exited with {result.returncode}:\n{output}")
        self.console.print(Panel(Text.from_ansi(output or "(no output)"), title="redbeat-apply", expand=False))
        self.done(f"applied {len(list(self.schedules.rglob('*.y*ml')))} manifests from examples/schedules")

    def watch(self, seconds: float) -> Dashboard:
        dashboard = Dashboard(RunLogReader(self.run_log), since=time.time())
        end = time.monotonic() + seconds
        self.console.print(f"Watching the worker for {seconds:g}s (Ctrl-C stops the demo early)")
        try:
            with Live(dashboard.render(), console=self.console, refresh_per_second=4) as live:
                while time.monotonic() < end:
                    self._check_children()
                    dashboard.poll(self.app)
                    live.update(dashboard.render())
                    time.sleep(0.25)
        finally:
            self.console.print()  # Live leaves the cursor at the end of the table
        return dashboard

    def _check_children(self) -> None:
        for child in self.children:
            if not child.running():
                raise StartError(f"{child.name} exited with {child.proc.returncode}:\n{child.log_tail()}")

    # -- teardown --------------------------------------------------------------------

    def __enter__(self) -> "Demo":
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


def _redbeat_apply() -> str:
    beside = Path(sys.executable).with_name("redbeat-apply")
    found = str(beside) if beside.exists() else shutil.which("redbeat-apply")
    if not found:
        raise StartError("redbeat-apply is not installed: run `pip install -e .` (scripts/demo.sh does)")
    return found


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to show tasks running (default 15)")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM both end in the teardown (a shell may start us with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    console = Console()
    console.rule("[bold]redbeat demo[/bold]: Redis + Celery worker + celery beat -S redbeat.Scheduler")
    try:
        with Demo(console) as demo:
            try:
                demo.start_redis()
                demo.start_worker()
                demo.start_beat()
                demo.apply_schedules()
                dashboard = demo.watch(args.seconds)
            except StartError as exc:
                console.print(f"[red]✗ {exc}[/red]")
                return 1
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; everything the demo started has been stopped.[/yellow]")
        return 130
    console.print(dashboard.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
