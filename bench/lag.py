"""Real ``celery beat`` processes: dispatch lag (due time -> message in the broker) and resident memory.

Runs in the bench's own process; beat runs as a child with the
implementation's python, from a temp dir outside the repo holding a tiny app
module (so celery-redbeat's python imports its own ``redbeat``).
"""

from __future__ import annotations

import json
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

if os.environ.get("BENCH_PUBLISH_LOG"):
    # when each message reached the broker: Celery's own after_task_publish signal, sent once
    # the broker acknowledged the publish (the LPUSH reply); written out when beat exits
    import atexit
    import json
    import time

    from celery.signals import after_task_publish

    published = []

    @after_task_publish.connect
    def _published(sender=None, body=None, **kwargs):
        published.append((body[0][0], time.time()))

    @atexit.register
    def _write():
        with open(os.environ["BENCH_PUBLISH_LOG"], "w") as f:
            json.dump(published, f)
'''

SCHEDULER = {"celery-redbeat": "redbeat.RedBeatScheduler", "ours": "redbeat.Scheduler"}


class Beat:
    """One ``celery beat -S <scheduler>`` child process."""

    def __init__(self, impl: str, python: str, env: dict[str, str], workdir: Path, redis_url: str,
                 broker_url: str, lag_entries: int = 0, publish_log: Path | None = None) -> None:
        self.workdir = workdir
        (workdir / "benchbeat.py").write_text(APP_MODULE)
        env = dict(env)
        env.update(BENCH_REDIS_URL=redis_url, BENCH_BROKER_URL=broker_url, BENCH_LAG_ENTRIES=str(lag_entries))
        if publish_log is not None:
            env["BENCH_PUBLISH_LOG"] = str(publish_log)
        # open for the beat's lifetime (the Popen writes to it); stop() closes it
        self.log = open(workdir / f"beat-{impl}.log", "wb")  # noqa: SIM115
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


class MetaPoller(threading.Thread):
    """Reads every lag entry's stored ``meta`` every ``every`` seconds (one pipeline): each new value is one run."""

    def __init__(self, redis_url: str, entries: int, every: float = 0.1, prefix: str = "redbeat:") -> None:
        super().__init__(daemon=True)
        self.store = redis.Redis.from_url(redis_url, decode_responses=True)
        self.keys = [f"{prefix}lag-{i:02d}" for i in range(entries)]
        self.every = every
        self.runs: dict[int, list[str]] = {i: [] for i in range(entries)}
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.wait(self.every):
                pipe = self.store.pipeline(transaction=False)
                for key in self.keys:
                    pipe.hget(key, "meta")
                for i, meta in enumerate(pipe.execute()):
                    if meta and (not self.runs[i] or self.runs[i][-1] != meta):
                        self.runs[i].append(meta)
        except BaseException as exc:  # reported by the caller
            self.error = exc


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


def _match_runs_to_sends(
    runs_by_entry: dict[int, list[Any]], publish_log: Path, entries: int, window_start: float, window_end: float
) -> tuple[list[float], int, int]:
    """(lags of the sends whose run falls in the window, runs counted, entries whose runs and sends do not match)."""
    published: dict[int, list[float]] = {i: [] for i in range(entries)}
    for i, at in json.loads(publish_log.read_text()):
        published[int(i)].append(at)
    lags: list[float] = []
    count = 0
    mismatched = 0
    for i in range(entries):
        # the first meta values may be start-up saves, not runs: the last value is the last run, so align the ends
        runs = [_last_run_at(meta) for meta in runs_by_entry[i]]
        sends = published[i]
        offset = len(runs) - len(sends)
        if offset < 0:
            mismatched += 1
            continue
        for j, sent_at in enumerate(sends):
            run_at = runs[j + offset]
            if run_at is None or not window_start <= run_at < window_end:
                continue
            count += 1
            previous = runs[j + offset - 1] if j + offset >= 1 else None
            if j >= 1 and previous is not None:
                lags.append(sent_at - (previous + 1.0))
    return lags, count, mismatched


def dispatch_lag(impl: str, python: str, env: dict[str, str], workdir: Path, redis_url: str, broker_url: str,
                 seconds: float, entries: int = 50, settle: float = 3.0) -> dict[str, Any]:
    """Run beat with ``entries`` one-second entries; measure ``seconds`` after a ``settle`` period.

    Each run is one new ``meta`` value (its ``last_run_at``: the slot for ours, the
    moment of dispatch for celery-redbeat); run k of an entry was due at run k-1's
    ``last_run_at`` + 1 s, each implementation's own rule.  Its message reached the
    broker when Celery's ``after_task_publish`` fired in beat.  Runs are counted by
    their own ``last_run_at`` inside the window.  Nothing consumes the queue while
    beat runs, so the measurement takes no CPU from beat on a small machine.
    """
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    broker = redis.Redis.from_url(broker_url)
    broker.delete("celery")
    publish_log = workdir / "published.json"
    poller = MetaPoller(redis_url, entries)
    poller.start()
    beat = Beat(impl, python, env, workdir, redis_url, broker_url, lag_entries=entries, publish_log=publish_log)
    try:
        deadline = time.time() + 60
        while not any(poller.runs.values()):
            if beat.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{impl} beat ran nothing: exit {beat.proc.poll()}\n{beat.tail()}")
            time.sleep(0.05)
        window_start = time.time() + settle
        window_end = window_start + seconds
        while time.time() < window_end + 1.5:
            if beat.proc.poll() is not None:
                raise RuntimeError(f"{impl} beat exited {beat.proc.returncode}\n{beat.tail()}")
            time.sleep(0.1)
    finally:
        beat.stop()
        poller.stopping.set()
        poller.join(timeout=5)
        broker.delete("celery")
    if poller.error is not None:
        raise poller.error
    lags, count, mismatched = _match_runs_to_sends(poller.runs, publish_log, entries, window_start, window_end)
    return {
        "seconds": seconds,
        "entries": entries,
        "dispatches": count,
        "expected": int(round(entries * seconds)),
        "lag_samples": len(lags),
        "entries_with_unmatched_runs": mismatched,
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
