"""Processes the demo starts and always stops: a throwaway redis-server and Celery's worker and beat.

Each child runs in its own session (process group), so Ctrl-C in the terminal
reaches only the driver, which then stops the children itself: SIGTERM to the
whole group, SIGKILL after a grace period.  Output goes to a log file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import redis


class StartError(RuntimeError):
    """A child did not come up; the message ends with the tail of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """One child process in its own process group, output to ``log``."""

    def __init__(self, name: str, argv: Sequence[str], *, log: Path, cwd: Path, env: Mapping[str, str]) -> None:
        self.name, self.argv, self.log = name, list(argv), log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def wait_until(self, ready: Callable[[], bool], *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.running():
                raise StartError(f"{self.name} exited with {self.proc.returncode} before {what}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise StartError(f"{self.name}: no {what} within {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it is still there after ``grace`` seconds."""
        if self.proc.returncode is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        # Whatever the leader did, nothing of the group may outlive the demo.
        _signal_group(self.proc.pid, signal.SIGKILL)
        if self.proc.returncode is None:
            self.proc.wait(timeout=grace)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def start_redis(workdir: Path) -> tuple[Child, str]:
    """A redis-server on a free loopback port, data in ``workdir``, nothing persisted; returns it and its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise StartError("redis-server is not installed (scripts/demo.sh installs it with apt-get)")
    port = free_port()
    argv = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
        "--save", "", "--appendonly", "no", "--daemonize", "no",
    ]
    child = Child("redis-server", argv, log=workdir / "redis.log", cwd=workdir, env=os.environ)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        child.wait_until(lambda: _answers(client), timeout=10, what="answer to PING")
    except BaseException:
        child.stop()
        raise
    finally:
        client.close()
    return child, url


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
