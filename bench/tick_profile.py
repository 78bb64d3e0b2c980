"""Where our tick's time goes: ``python -m bench.tick_profile [--n N] [--k K] [--repeat R] [--profile]``.

Runs our scheduler only (this interpreter's ``redbeat``) on a redis-server of
its own, Redis broker in db 15, the entries the bench writes (bench/worker.py),
and times R ticks of K due of N stored, each in a fresh warmed scheduler
beside a bare ``send_task`` loop of the same messages (the ``overhead``
scenario's measurement).  Each tick is split with timers wrapped around
the scheduler's steps:

* ``fetch``: ``EntryStore.fetch_due`` (one script; its time inside Redis from
  INFO commandstats is shown beside it);
* ``decide``: ``_settle_one`` for every due entry (decode, decide, build the
  entry to send);
* ``settle``: ``EntryStore.settle`` (one script; Redis time beside it);
* ``send_task``: time inside celery's ``Scheduler.send_task``, the same call
  the bare loop makes;
* ``apply path``: the rest of ``apply_entry`` (ours, around celery's
  ``Scheduler.apply_async``, which builds the message's arguments and options);
* ``rest``: everything else in the tick (the send loop itself, recording each
  outcome, the wake-up time).

Medians over the R ticks are printed.  ``--profile`` adds a cProfile of the
ticks with ``send_task`` left out (its own cost is celery's and kombu's).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import worker  # noqa: E402
from tests.support.redis_proc import RedisProcess  # noqa: E402

BROKER_DB, DB = 15, 1


class Split:
    """Wall time spent inside chosen methods, per tick; the profiler is paused inside ``opaque`` ones."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.profiler: cProfile.Profile | None = None

    def wrap(self, owner: Any, name: str, label: str, opaque: bool = False) -> None:
        original: Callable[..., Any] = getattr(owner, name)
        split = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            if opaque and split.profiler is not None:
                split.profiler.disable()
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                split.seconds[label] += time.perf_counter() - started
                if opaque and split.profiler is not None:
                    split.profiler.enable()

        setattr(owner, name, timed)


def script_usec(stats: worker.Stats) -> int:
    calls = stats.client.info("commandstats").get("cmdstat_evalsha", {})
    return int(calls.get("usec", 0))


def one_tick(app: Any, url: str, stats: worker.Stats, split: Split, n: int, k: int,
             profiler: cProfile.Profile | None) -> dict[str, float]:
    """One timed tick in a fresh warmed scheduler, between two bare send loops; its split in seconds."""
    from redbeat.schedulers import get_redis

    client = get_redis(app)
    drain = worker.queue_drainer(worker.broker_client(url, BROKER_DB), "redis")
    sched = worker.scheduler(app)
    worker.warm_scheduler(app, sched, client, n)
    drain()
    worker.make_due(app, range(k))
    before, _ = worker.bare_send_loop(app, range(k))
    drain()
    gc.collect()
    split.seconds.clear()
    usec = script_usec(stats)
    split.profiler = profiler
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    sched.tick()
    if profiler is not None:
        profiler.disable()
    tick = time.perf_counter() - started
    split.profiler = None
    scripts = (script_usec(stats) - usec) / 1e6
    sent = drain()
    after, _ = worker.bare_send_loop(app, range(k))
    drain()
    sched.close()
    if sent != k:
        raise RuntimeError(f"the tick sent {sent} messages, not {k}")
    s = split.seconds
    floor = (before + after) / 2
    apply_path = s["apply_entry"] - s["send_task"]
    return {
        "tick": tick, "bare send_task loop": floor, "overhead (tick - loop)": tick - floor,
        "fetch": s["fetch"], "decide": s["decide"], "settle": s["settle"], "scripts in Redis": scripts,
        "send_task (in the tick)": s["send_task"], "apply path": apply_path,
        "rest": tick - s["fetch"] - s["decide"] - s["settle"] - s["apply_entry"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tick_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="entries stored (default 10000)")
    parser.add_argument("--k", type=int, default=1000, help="entries due in the timed tick (default 1000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed ticks, each in a fresh scheduler (default 5)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of our part of the ticks")
    args = parser.parse_args(argv)
    if not 0 < args.k < args.n:
        parser.error("need 0 < K < N (entry N-1 warms the scheduler up)")

    from celery.beat import Scheduler

    from redbeat.scheduler import RedBeatScheduler
    from redbeat.store import EntryStore

    split = Split()
    split.wrap(EntryStore, "fetch_due", "fetch")
    split.wrap(EntryStore, "settle", "settle")
    split.wrap(RedBeatScheduler, "_settle_one", "decide")
    split.wrap(RedBeatScheduler, "apply_entry", "apply_entry")
    split.wrap(Scheduler, "send_task", "send_task", opaque=True)
    profiler = cProfile.Profile() if args.profile else None

    samples: list[dict[str, float]] = []
    with RedisProcess() as server:
        url = f"redis://127.0.0.1:{server.port}"
        app = worker.make_app(url, DB, "redis", BROKER_DB)
        from redbeat.schedulers import get_redis

        worker.ensure_seeded(app, get_redis(app), args.n)
        stats = worker.Stats(url)
        for _ in range(args.repeat):
            samples.append(one_tick(app, url, stats, split, args.n, args.k, profiler))

    print(f"our tick, K={args.k} due of N={args.n}, Redis broker; medians of {args.repeat} ticks")
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        median = statistics.median(values)
        print(f"  {key:24s} {median * 1000:8.1f} ms   ({median / args.k * 1e6:6.1f} us per due entry;"
              f" min {min(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms)")
    if profiler is not None:
        out = io.StringIO()
        # strip_dirs: no path of this machine in the output
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
