"""Scenario 7: load (RELIABILITY.md).

A real ``celery beat -S redbeat.Scheduler`` process, a real Redis broker (db 1
of the test's own redis-server; the schedule lives in db 0) and a consumer
draining the broker's ``celery`` list as a worker would, stamping each
message's arrival.

N interval entries exist.  R * P of them are *active*: entry i runs every P
seconds and is first due at t0 + i/R, so R slots fall due every second,
spread evenly, and each active entry comes round again every P seconds; the
other entries wait in the schedule, due after the run.  Sizes:

* default (CI): N = 10,000, R = 200/s, D = 15 s, P = 5 s (1,000 active);
* ``REDBEAT_RELIABILITY_SCALE=full``: N = 100,000, R = 1,000/s, D = 60 s,
  P = 15 s (15,000 active).

Checked from the broker's record, not from beat's word: every slot due in the
window arrived exactly once, none before it was due; dispatch lag (broker
arrival - due time) p99 is reported and bounded; and beat's resident memory
stays flat: the last sample of the window within 20 % of the first sample
after one full period (by then beat has decoded every active entry once; it
keeps decoded definitions, so the first period grows with the number of
distinct entries seen, which is reported too).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import pytest
import redis
from support.redis_proc import env_without_redbeat, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("REDBEAT_RELIABILITY_SCALE", "").strip().lower() == "full"
ENTRIES, RATE, SECONDS, PERIOD = (100_000, 1_000, 60.0, 15.0) if FULL else (10_000, 200, 15.0, 5.0)
ACTIVE = int(RATE * PERIOD)
GRACE = 3.0  # after the window: slots due at its very end still arrive
LAG_P99_BOUND = 1.0  # seconds
MAX_LAG_BOUND = 3.0
RSS_GROWTH_BOUND = 0.20

APP = '''\
import os
from celery import Celery

app = Celery("loadapp")
app.conf.update(
    broker_url=os.environ["LOAD_BROKER_URL"],
    redbeat_redis_url=os.environ["LOAD_REDIS_URL"],
    timezone="UTC",
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    result_expires=None,
)
'''


@dataclass
class Record:
    arrivals: dict[int, list[float]] = field(default_factory=dict)
    malformed: int = 0


class Consumer(threading.Thread):
    """Drains the broker list oldest first, as a worker's BRPOP does, and stamps each message on arrival."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True, name="broker-consumer")
        self.client = redis.Redis.from_url(url)
        self.record = Record()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                batch = self.client.rpop("celery", 2000)
                now = time.time()
                if not batch:
                    if self.stopping.is_set():
                        return
                    time.sleep(0.002)
                    continue
                for raw in batch:
                    try:
                        message = json.loads(raw)
                        args = json.loads(base64.b64decode(message["body"]))[0]
                        self.record.arrivals.setdefault(int(args[0]), []).append(now)
                    except (ValueError, KeyError, IndexError, TypeError):
                        self.record.malformed += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []  # (time, MiB)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except FileNotFoundError:
                return
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    self.samples.append((time.time(), int(line.split()[1]) / 1024.0))


def seed(client: redis.Redis, t0: float) -> None:
    """ENTRIES interval entries in celery-redbeat's layout: ACTIVE of them every PERIOD s, entry i first due at
    t0 + i/RATE; the others due an hour after the run."""
    from redbeat.codec import encode_definition, encode_meta

    pipe = client.pipeline(transaction=False)
    for i in range(ENTRIES):
        name = f"load-{i:06d}"
        every = PERIOD if i < ACTIVE else 3600.0
        due = t0 + i / RATE if i < ACTIVE else t0 + SECONDS + 3600.0 + i / RATE
        last = datetime.fromtimestamp(due - every, timezone.utc)
        key = f"redbeat:{name}"
        pipe.hset(key, mapping={
            "definition": encode_definition(name=name, task="load.tick", args=[i], kwargs={}, options={},
                                            schedule={"__type__": "interval", "every": every, "relative": False},
                                            enabled=True),
            "meta": encode_meta(last, 1),
        })
        pipe.zadd("redbeat::schedule", {key: due})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    client.publish("redbeat::wake", "load-test")  # as an apply does: beat re-reads at once


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def start_beat(tmp_path: Path, schedule_url: str, broker_url: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """`celery -A loadapp beat -S redbeat.Scheduler` in its own session, its output to `log`."""
    env = env_without_redbeat()
    env.update(LOAD_REDIS_URL=schedule_url, LOAD_BROKER_URL=broker_url, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), str(ROOT), env.get("PYTHONPATH")])))
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "loadapp", "beat", "-S", "redbeat.Scheduler", "-l", "warning",
         "-s", str(tmp_path / "celerybeat-schedule"), "--pidfile="],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def watch_beat_until(beat: subprocess.Popen[bytes], until: float, log_path: Path) -> None:
    """Check every 0.2 s until `until` that beat is still running (failing with its log's tail if not)."""
    while time.time() < until:
        assert beat.poll() is None, log_path.read_text()[-3000:]
        time.sleep(0.2)


def stop_beat(beat: subprocess.Popen[bytes]) -> None:
    """SIGTERM beat if it still runs; SIGKILL its process group if it has not exited 20 s later."""
    if beat.poll() is None:
        beat.send_signal(signal.SIGTERM)
        try:
            beat.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(beat.pid, signal.SIGKILL)
            beat.wait(timeout=10)


def match_arrivals_to_slots(record: Record, t0: float) -> tuple[int, int, int, int, list[tuple[float, float]]]:
    """(slots due in the window, missed, early, duplicated beyond the last slot, [(due, lag)]) of the active entries."""
    end = t0 + SECONDS
    in_window = misses = early = duplicates = 0
    lags: list[tuple[float, float]] = []  # (due, lag)
    for i in range(ACTIVE):
        slots = [t0 + i / RATE + k * PERIOD for k in range(int(SECONDS / PERIOD) + 2)]
        due_in_window = [slot for slot in slots if slot < end]
        got = sorted(record.arrivals.get(i, []))
        in_window += len(due_in_window)
        misses += max(0, len(due_in_window) - len(got))
        duplicates += max(0, len(got) - len(slots))
        # the k-th message is for the k-th slot: a second message for one slot shifts the rest onto later
        # slots, so it shows as a message that arrived before its slot was due
        for slot, arrived in zip(slots, got, strict=False):
            if arrived < slot - 0.05:
                early += 1
            if slot < end:
                lags.append((slot, arrived - slot))
    return in_window, misses, early, duplicates, lags


def lag_percentiles(lags: list[tuple[float, float]]) -> tuple[float, float, float, float, float]:
    """Lag p50, p99 and max, then the p99 of the first and of the last tenth of the window (sorts `lags` by due)."""
    values = [lag for _, lag in lags]
    p50, p99, worst = percentile(values, 0.5), percentile(values, 0.99), max(values)
    # the last tenth of the window against the first: a beat falling behind shows a growing lag
    lags.sort()
    tenth = max(1, len(lags) // 10)
    first_tenth = percentile([lag for _, lag in lags[:tenth]], 0.99)
    last_tenth = percentile([lag for _, lag in lags[-tenth:]], 0.99)
    return p50, p99, worst, first_tenth, last_tenth


def rss_at_t0_after_one_period_last_and_peak(window: list[tuple[float, float]], t0: float) -> tuple[float, ...]:
    """Beat's RSS (MiB) in the window: at t0, at the first sample one PERIOD later, the last one, and the peak."""
    rss_cold = window[0][1]
    rss_first = next(mib for at, mib in window if at >= t0 + PERIOD)
    rss_last, rss_peak = window[-1][1], max(mib for _, mib in window)
    return rss_cold, rss_first, rss_last, rss_peak


@pytest.mark.exclusive
def test_beat_keeps_up_under_load_with_flat_memory(fresh_redis, tmp_path) -> None:
    schedule_url = f"redis://127.0.0.1:{fresh_redis.port}/0"
    broker_url = f"redis://127.0.0.1:{fresh_redis.port}/1"
    (tmp_path / "loadapp.py").write_text(APP)
    store = redis.Redis.from_url(schedule_url)
    log = (tmp_path / "beat.log").open("wb")
    beat = start_beat(tmp_path, schedule_url, broker_url, log)
    consumer = Consumer(broker_url)
    sampler = RssSampler(beat.pid)
    try:
        wait_until(lambda: store.exists("redbeat::lock") or beat.poll() is not None, timeout=30, message="beat to lead")
        assert beat.poll() is None, (tmp_path / "beat.log").read_text()[-3000:]
        consumer.start()
        seeding_started = time.time()
        t0 = seeding_started + 2.0 + ENTRIES / 5_000  # seeding writes ~15k entries/s here
        seed(store, t0)
        seeded_in = time.time() - seeding_started
        assert time.time() < t0 - 0.5, f"seeding took {seeded_in:.1f} s, past t0"
        wait_until(lambda: time.time() >= t0, timeout=30, interval=0.01, message="t0")
        sampler.start()
        end = t0 + SECONDS
        watch_beat_until(beat, end + GRACE, tmp_path / "beat.log")
    finally:
        sampler.stopping.set()
        stop_beat(beat)
        log.close()
        consumer.stopping.set()
        for thread in (consumer, sampler):
            if thread.ident is not None:
                thread.join(timeout=30)
    assert consumer.error is None, consumer.error
    record = consumer.record
    beat_log = (tmp_path / "beat.log").read_text(errors="replace")

    end = t0 + SECONDS
    in_window, misses, early, duplicates, lags = match_arrivals_to_slots(record, t0)
    stray = sorted(i for i in record.arrivals if i >= ACTIVE)  # entries not due in the run
    p50, p99, worst, first_tenth, last_tenth = lag_percentiles(lags)
    window = [(at, mib) for at, mib in sampler.samples if at <= end]
    rss_cold, rss_first, rss_last, rss_peak = rss_at_t0_after_one_period_last_and_peak(window, t0)
    messages = sum(len(v) for v in record.arrivals.values())
    figures = (
        f"load: {ENTRIES} entries ({ACTIVE} every {PERIOD:g} s), {RATE}/s due for {SECONDS:g} s, seeded in "
        f"{seeded_in:.1f} s: {messages} messages for {in_window} slots due in the window: {misses} missed, "
        f"{early} early or duplicated (+{duplicates} beyond the last slot), {len(stray)} stray; "
        f"lag p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms (p99 first tenth {first_tenth * 1000:.0f} ms, "
        f"last tenth {last_tenth * 1000:.0f} ms); beat RSS at t0 {rss_cold:.1f} MiB, after one period "
        f"{rss_first:.1f} MiB, last {rss_last:.1f} MiB, peak {rss_peak:.1f} MiB ({len(window)} samples)"
    )
    print("\n" + figures)
    (tmp_path / "figures.txt").write_text(figures + "\n")
    context = f"{figures}\nbeat log tail:\n{beat_log[-2000:]}"
    assert record.malformed == 0, context
    assert duplicates == 0 and misses == 0 and early == 0 and stray == [], context
    assert p99 <= LAG_P99_BOUND and worst <= MAX_LAG_BOUND, context
    assert rss_last <= rss_first * (1 + RSS_GROWTH_BOUND), context
    assert "Traceback" not in beat_log, context
