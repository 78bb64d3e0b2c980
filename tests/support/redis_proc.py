"""Throwaway redis-server processes for tests: free loopback port, temp dir, always stopped."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError(
            "redis-server is not installed; the README's test command installs it "
            "(apt-get install redis-server)"
        )
    return found


# Ports handed out by free_port(): below the kernel's ephemeral range, so that no outgoing connection
# (this suite opens thousands) can take one between free_port() and the server's bind, and one block of
# PORT_BLOCK per xdist worker, so that two workers never hand out the same port.
PORT_BLOCK = 1000
_LOWEST_PORT = 10000
_next_port: int | None = None


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _port_block() -> range | None:
    """This process's block of ports, or None when there is no room below the ephemeral range."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    blocks = (_ephemeral_low() - _LOWEST_PORT) // PORT_BLOCK
    if blocks < 1:
        return None
    start = _LOWEST_PORT + (index % blocks) * PORT_BLOCK
    return range(start, start + PORT_BLOCK)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A 127.0.0.1 port nothing listens on, for a server a test is about to start.

    Taken in turn from this xdist worker's own block below the ephemeral range (see PORT_BLOCK), from a
    random place in it so that two separate runs of the suite on one machine seldom meet; the kernel's
    choice (bind to port 0) when the machine leaves no room below its ephemeral range.
    """
    global _next_port
    block = _port_block()
    if block is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    if _next_port is None:
        _next_port = random.SystemRandom().randrange(len(block))
    for _ in range(len(block)):
        port = block[_next_port % len(block)]
        _next_port += 1
        if _bindable(port):
            return port
    raise RuntimeError(f"no free port in {block.start}-{block.stop - 1}")


class RedisProcess:
    """One redis-server bound to 127.0.0.1 on a free port, data in its own temp dir."""

    def __init__(
        self, *extra_args: str, port: int | None = None, workdir: Path | None = None, password: str | None = None
    ) -> None:
        self.password = password
        self.extra_args = list(extra_args) + (["--requirepass", password] if password else [])
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="redbeat-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command_line(self) -> list[str]:
        return [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"),
            *self.extra_args,
        ]

    def start(self, timeout: float = 10.0) -> RedisProcess:
        self.proc = subprocess.Popen(self.command_line(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace") if (self.dir / "redis.log").exists() else ""
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {log[-2000:]}")
            try:
                if self.client().ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout}s")

    def client(self, **kwargs: object) -> redis.Redis:
        kwargs.setdefault("decode_responses", True)
        if self.password:
            kwargs.setdefault("password", self.password)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def commandstats(client: redis.Redis) -> dict[str, int]:
    """Calls per command name since the last CONFIG RESETSTAT."""
    info = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(stats["calls"]) for name, stats in info.items()}


WRITE_COMMANDS = frozenset(
    {
        "set", "setnx", "setex", "psetex", "del", "unlink", "hset", "hsetnx", "hdel", "hmset",
        "zadd", "zrem", "zincrby", "sadd", "srem", "expire", "pexpire", "rename", "incr", "incrby",
        "lpush", "rpush", "lpop", "rpop", "publish", "eval", "evalsha", "fcall", "xadd", "getset",
        "hincrby", "persist", "flushdb", "flushall", "copy", "restore",
    }
)


def write_calls(stats: dict[str, int]) -> dict[str, int]:
    return {name: n for name, n in stats.items() if name in WRITE_COMMANDS and n}


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def env_without_redbeat() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}


def dirty_count(client: redis.Redis) -> int:
    """Redis' own count of changes to the dataset since the last save: scripts included, reads not."""
    return int(client.info("persistence")["rdb_changes_since_last_save"])
