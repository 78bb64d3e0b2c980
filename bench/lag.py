"""Real ``celery beat`` processes: dispatch lag (due time -> message in the broker) and resident memory.

Runs in the bench's own process; beat runs as a child with the
implementation's python, from a temp dir outside the repo holding a tiny app
module (so celery-redbeat's python imports its own ``redbeat``).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import redis

APP_MODULE = '''\
import os
from celery import Celery

app = Celery("benchbeat")
n = int(os.environ.get("BENCH_LAG_ENTRIES", "0"))
app.conf.update(
    broker_url=os.environ["BENCH_BROKER_URL"],
    redbeat_redis_url=os.environ["BENCH_REDIS_URL"],
    redbeat_key_prefix="redbeat:",
    timezone="UTC",
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    beat_schedule={
        "lag-%02d" % i: {"task": "bench.noop", "schedule": 1.0, "args": [i]} for i in range(n)
    },
)
'''

SCHEDULER = {"celery-redbeat": "redbeat.RedBeatScheduler", "ours": "redbeat.Scheduler"}


class Beat:
    """One ``celery beat -S <scheduler>`` child process."""

    def __init__(self, impl: str, python: str, env: dict[str, str], workdir: Path, redis_url: str,
                 broker_url: str, lag_entries: int = 0) -> None:
        self.workdir = workdir
        (workdir / "benchbeat.py").write_text(APP_MODULE)
        env = dict(env)
        env.update(BENCH_REDIS_URL=redis_url, BENCH_BROKER_URL=broker_url, BENCH_LAG_ENTRIES=str(lag_entries))
        self.log = open(workdir / f"beat-{impl}.log", "wb")
        self.proc = subprocess.Popen(
            [python, "-m", "celery", "-A", "benchbeat", "beat", "-S", SCHEDULER[impl], "-l", "warning",
             "-s", str(workdir / "celerybeat-schedule")],
            cwd=str(workdir), env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def rss(self) -> dict[str, float]:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        out = {}
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) / 1024.0  # MiB
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()

    def tail(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-3000:]


class Consumer(threading.Thread):
    """Drains the broker's ``celery`` list; records arrival time and the entry's stored meta right after."""

    def __init__(self, redis_url: str, broker_url: str, prefix: str = "redbeat:") -> None:
        super().__init__(daemon=True)
        self.broker = redis.Redis.from_url(broker_url)
        self.store = redis.Redis.from_url(redis_url, decode_responses=True)
        self.prefix = prefix
        self.records: list[tuple[int, float, str | None]] = []
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                popped = self.broker.brpop(["celery"], timeout=0.2)
                if popped is None:
                    continue
                first_at = time.time()
                pipe = self.broker.pipeline(transaction=True)
                pipe.lrange("celery", 0, -1)
                pipe.delete("celery")
                rest, _ = pipe.execute()
                rest_at = time.time()
                batch = [(popped[1], first_at)] + [(raw, rest_at) for raw in reversed(rest)]
                entries = [(_entry_of(raw), at) for raw, at in batch]
                pipe = self.store.pipeline(transaction=False)
                for i, _ in entries:
                    pipe.hget(f"{self.prefix}lag-{i:02d}", "meta")
                for (i, at), meta in zip(entries, pipe.execute()):
                    self.records.append((i, at, meta))
        except BaseException as exc:  # reported by the caller
            self.error = exc


def _entry_of(raw: bytes) -> int:
    message = json.loads(raw)
    body = json.loads(base64.b64decode(message["body"]))
    return int(body[0][0])


def _last_run_at(meta: str | None) -> float | None:
    if not meta:
        return None
    from redbeat.codec import decode_meta  # reads both implementations' meta

    last = decode_meta(meta)["last_run_at"]
    return None if last is None else last.timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def dispatch_lag(impl: str, python: str, env: dict[str, str], workdir: Path, redis_url: str, broker_url: str,
                 seconds: float, entries: int = 50, settle: float = 3.0) -> dict[str, Any]:
    """Run beat with ``entries`` one-second entries; measure ``seconds`` after a ``settle`` period."""
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    broker = redis.Redis.from_url(broker_url)
    broker.delete("celery")
    consumer = Consumer(redis_url, broker_url)
    consumer.start()
    beat = Beat(impl, python, env, workdir, redis_url, broker_url, lag_entries=entries)
    try:
        deadline = time.time() + 60
        while not consumer.records:
            if beat.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{impl} beat sent nothing: exit {beat.proc.poll()}\n{beat.tail()}")
            time.sleep(0.05)
        window_start = consumer.records[0][1] + settle
        window_end = window_start + seconds
        while time.time() < window_end + 0.5:
            if beat.proc.poll() is not None:
                raise RuntimeError(f"{impl} beat exited {beat.proc.returncode}\n{beat.tail()}")
            time.sleep(0.1)
    finally:
        beat.stop()
        consumer.stopping.set()
        consumer.join(timeout=5)
    if consumer.error is not None:
        raise consumer.error
    previous: dict[int, float | None] = {}
    lags: list[float] = []
    count = 0
    for i, at, meta in consumer.records:
        last_run_before = previous.get(i)
        previous[i] = _last_run_at(meta)
        if not window_start <= at < window_end:
            continue
        count += 1
        if last_run_before is not None:
            lags.append(at - (last_run_before + 1.0))
    return {
        "seconds": seconds,
        "entries": entries,
        "dispatches": count,
        "expected": int(round(entries * seconds)),
        "lag_samples": len(lags),
        "p50": percentile(lags, 0.50),
        "p99": percentile(lags, 0.99),
        "max": max(lags) if lags else float("nan"),
        "mean": statistics.fmean(lags) if lags else float("nan"),
    }


def beat_memory(impl: str, python: str, env: dict[str, str], workdir: Path, redis_url: str, broker_url: str,
                seconds: float) -> dict[str, Any]:
    """RSS of beat after ``seconds`` of ticking over the entries already stored at ``redis_url``."""
    store = redis.Redis.from_url(redis_url)
    store.delete("redbeat::lock")
    n = store.zcard("redbeat::schedule")
    beat = Beat(impl, python, env, workdir, redis_url, broker_url)
    try:
        time.sleep(seconds)
        if beat.proc.poll() is not None:
            raise RuntimeError(f"{impl} beat exited {beat.proc.returncode}\n{beat.tail()}")
        memory = beat.rss()
    finally:
        beat.stop()
        redis.Redis.from_url(broker_url).delete("celery")
    return {"entries": n, "seconds": seconds, "rss_mib": memory.get("VmRSS"), "peak_mib": memory.get("VmHWM")}
