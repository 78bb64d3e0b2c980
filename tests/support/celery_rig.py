"""A real Celery worker and real ``celery beat -S redbeat.Scheduler`` processes, always killed.

Every process runs in its own process group (``start_new_session``) against
the test's own redis-server, and :meth:`CeleryRig.stop_all` kills every
group, whatever happened.  The Celery app is a module in ``app_dir``
(tests/e2e/beatapp.py by default) configured from the environment the rig
sets: E2E_REDIS_URL, E2E_LOCK_TIMEOUT, E2E_RUN_LOG, plus ``extra_env``
(tests/support/rig_app.py reads them for the suite's own apps).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from support.redis_proc import wait_until

TESTS_DIR = Path(__file__).resolve().parent.parent
E2E_DIR = TESTS_DIR / "e2e"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class CeleryRig:
    """Starts worker and beat processes of ``app`` (a module in ``app_dir``); :meth:`stop_all` kills every one."""

    def __init__(
        self,
        redis_url: str,
        workdir: Path,
        lock_timeout: float = 3.0,
        *,
        app: str = "beatapp",
        app_dir: Path = E2E_DIR,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.workdir = workdir
        self.run_log = workdir / "runs.jsonl"
        self.lock_timeout = lock_timeout
        self.app = app
        self.app_dir = Path(app_dir)
        self.extra_env = dict(extra_env or {})
        self.procs: list[Proc] = []

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDBEAT_", "CELERY_"))}
        env.update(
            E2E_REDIS_URL=self.redis_url,
            E2E_LOCK_TIMEOUT=str(self.lock_timeout),
            E2E_RUN_LOG=str(self.run_log),
            PYTHONPATH=os.pathsep.join(filter(None, [*self._import_dirs(), env.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def _import_dirs(self) -> list[str]:
        """The app's directory; and tests/ for the test suite's own apps (they share support.rig_app)."""
        app_dir = self.app_dir.resolve()
        return [str(app_dir), str(TESTS_DIR)] if TESTS_DIR in app_dir.parents else [str(app_dir)]

    def _spawn(self, name: str, *args: str, python: Path | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [str(python or sys.executable), "-m", "celery", "-A", self.app, *args],
                cwd=self.workdir, env=self._env(), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def spawn(self, name: str, *args: str) -> Proc:
        """``celery -A <app> ARGS...`` as given (e.g. a container's args after ``-A app``)."""
        return self._spawn(name, *args)

    def worker(self, name: str = "worker") -> Proc:
        proc = self._spawn(
            name, "worker", "--pool", "solo", "--concurrency", "1", "-n", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
        )
        self.wait_for(proc, " ready.", timeout=30)
        return proc

    def beat(self, name: str = "beat", max_interval: int = 1, *, python: Path | None = None) -> Proc:
        """Our beat; with ``python`` (the celery-redbeat venv's), celery-redbeat's own (its scheduler path)."""
        scheduler = "redbeat.RedBeatScheduler" if python else "redbeat.Scheduler"
        return self._spawn(name, "beat", "-S", scheduler, "--max-interval", str(max_interval),
                           "--loglevel", "INFO", python=python)

    def wait_for(self, proc: Proc, text: str, timeout: float) -> None:
        self.wait_for_any(proc, (text,), timeout)

    def wait_for_any(self, proc: Proc, texts: tuple[str, ...], timeout: float) -> None:
        def seen() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.output()[-3000:]}")
            return any(text in proc.output() for text in texts)

        wait_until(seen, timeout=timeout, message=f"one of {texts!r} in the {proc.name} log")

    def runs(self) -> list[dict[str, object]]:
        if not self.run_log.exists():
            return []
        return [json.loads(line) for line in self.run_log.read_text().splitlines() if line.strip()]

    def signal(self, proc: Proc, sig: int) -> None:
        signal_group(proc, sig)

    def kill(self, proc: Proc) -> None:
        """SIGKILL the group, as a crash would, and reap it."""
        signal_group(proc, signal.SIGKILL)
        proc.popen.wait(timeout=10)

    def stop(self, proc: Proc) -> None:
        """SIGTERM the group (beat releases its lock), then SIGKILL whatever of the group is left."""
        signal_group(proc, signal.SIGCONT)
        signal_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=10)
        signal_group(proc, signal.SIGKILL)
        proc.popen.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


def signal_group(proc: Proc, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.popen.pid, sig)
