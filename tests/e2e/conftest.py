"""e2e fixtures: a real Celery worker and real ``celery beat -S redbeat.Scheduler`` processes.

Every process runs in its own process group against the test's own
redis-server (``fresh_redis``), and the group is killed when the test ends,
whatever happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery

from support.redis_proc import wait_until

HERE = Path(__file__).resolve().parent


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class CeleryRig:
    """Starts worker and beat processes of tests/e2e/beatapp.py; :meth:`stop_all` kills every one."""

    def __init__(self, redis_url: str, workdir: Path, lock_timeout: float = 3.0) -> None:
        self.redis_url = redis_url
        self.workdir = workdir
        self.run_log = workdir / "runs.jsonl"
        self.lock_timeout = lock_timeout
        self.procs: list[Proc] = []

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDBEAT_", "CELERY_"))}
        env.update(
            E2E_REDIS_URL=self.redis_url,
            E2E_LOCK_TIMEOUT=str(self.lock_timeout),
            E2E_RUN_LOG=str(self.run_log),
            PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _spawn(self, name: str, *args: str) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "beatapp", *args],
                cwd=self.workdir, env=self._env(), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def worker(self) -> Proc:
        proc = self._spawn(
            "worker", "worker", "--pool", "solo", "--concurrency", "1", "-n", "e2e@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
        )
        self.wait_for(proc, " ready.", timeout=30)
        return proc

    def beat(self, name: str = "beat") -> Proc:
        return self._spawn(name, "beat", "-S", "redbeat.Scheduler", "--max-interval", "1", "--loglevel", "INFO")

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
        return [json.loads(line) for line in self.run_log.read_text().splitlines()]

    def stop(self, proc: Proc) -> None:
        """SIGTERM the group (beat releases its lock), then SIGKILL whatever of the group is left."""
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc, signal.SIGKILL)
        proc.popen.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


def _signal_group(proc: Proc, sig: int) -> None:
    try:
        os.killpg(proc.popen.pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def celery_rig(fresh_redis, tmp_path):
    rig = CeleryRig(fresh_redis.url, tmp_path)
    try:
        yield rig
    finally:
        rig.stop_all()


@pytest.fixture
def writer_app(fresh_redis):
    """An in-process app that writes entries to the test's redis (as a user's code would)."""
    app = Celery("e2e-writer", set_as_current=False)
    app.conf.update(redbeat_redis_url=fresh_redis.url, timezone="UTC", broker_url=fresh_redis.url)
    yield app
    client = getattr(app, "redbeat_redis", None)
    if client is not None:
        client.close()
