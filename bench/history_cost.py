"""What the run history costs a tick: the same tick with and without it, alternately, in one run.

    python -m bench.history_cost [--k 1000] [--n 10000] [--rounds 9] [--broker redis|memory] [--strict]

Two schedulers over one seeded db (``bench.worker``'s steady-state daily
entries), one with ``redbeat_history_size=0`` (no history), one with the
default; each round makes K entries due and times one tick of each, in
alternating order.  Prints the median tick of each, the ratio
(with - without) / without, both ticks' round trips (must stay 2) and the
XADDs Redis ran, and the time Redis spent in the tick's scripts (the
history's XADDs run there: a figure the machine's load hardly moves).
``--strict``: exit 1 when the ratio is over 5 % or a tick took more than 2
round trips.  Results also go to ``bench/results/history_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import worker  # noqa: E402
from tests.support.redis_proc import RedisProcess  # noqa: E402

TARGET_RATIO = 0.05
SCHED_DB, BROKER_DB = 1, 15
RESULTS = ROOT / "bench" / "results" / "history_cost.json"


def _shown(path: Path) -> str:
    """A results path as recorded: relative to the clone, never a path of the machine it ran on."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.name


def tick_pair(url: str, n: int, k: int, broker: str, rounds: int) -> dict[str, Any]:
    """Per variant ("without", "with"): each round's tick (seconds, round trips, commands)."""
    from redbeat.schedulers import get_redis

    apps = {
        "without": worker.make_app(url, SCHED_DB, broker, BROKER_DB, redbeat_history_size=0),
        "with": worker.make_app(url, SCHED_DB, broker, BROKER_DB),
    }
    stats = worker.Stats(url)
    bclient = worker.broker_client(url, BROKER_DB)
    first = apps["without"]
    worker.ensure_seeded(first, get_redis(first), n)
    scheds = {name: worker.scheduler(app) for name, app in apps.items()}  # type: ignore[no-untyped-call]
    for name, sched in scheds.items():
        worker.warm_scheduler(apps[name], sched, get_redis(apps[name]), n)
    out: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    for r in range(rounds):
        order = ["without", "with"] if r % 2 == 0 else ["with", "without"]
        for name in order:
            apps[name].set_current()
            apps[name].set_default()
            worker.make_due(apps[name], range(k))
            bclient.delete("celery")
            before = script_usec(stats)
            tick = worker.timed_tick(scheds[name], stats, SCHED_DB, BROKER_DB)
            tick["script_seconds"] = (script_usec(stats) - before) / 1e6
            out[name].append(tick)
    bclient.delete("celery")
    for sched in scheds.values():
        sched.close()
    return out


def script_usec(stats: worker.Stats) -> int:
    """Microseconds Redis has spent running scripts (the tick's two scripts: where the XADDs run)."""
    info = stats.client.info("commandstats")
    return sum(int(info.get(f"cmdstat_{name}", {}).get("usec", 0)) for name in ("evalsha", "eval"))


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    medians = {name: statistics.median(t["seconds"] for t in ticks) for name, ticks in runs.items()}
    return {
        "median_seconds": medians,
        "ratio": (medians["with"] - medians["without"]) / medians["without"],
        "median_script_seconds": {name: statistics.median(t["script_seconds"] for t in ticks)
                                  for name, ticks in runs.items()},
        "round_trips": {name: max(t["round_trips"] for t in ticks) for name, ticks in runs.items()},
        "xadd_per_tick": {name: max(t["command_breakdown"].get("xadd", 0) for t in ticks)
                          for name, ticks in runs.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=1000, help="entries due per tick (default 1000)")
    parser.add_argument("--n", type=int, default=10_000, help="entries stored (default 10000)")
    parser.add_argument("--rounds", type=int, default=9, help="ticks of each variant (default 9)")
    parser.add_argument("--broker", choices=("redis", "memory"), default="redis")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"where to write the JSON (default {RESULTS})")
    args = parser.parse_args(argv)
    with RedisProcess() as server:
        runs = tick_pair(f"redis://127.0.0.1:{server.port}", args.n, args.k, args.broker, args.rounds)
    summary = summarize(runs)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        json.dumps({"args": {**vars(args), "results": _shown(args.results)}, **summary, "runs": runs}, indent=2) + "\n"
    )
    medians, trips = summary["median_seconds"], summary["round_trips"]
    print(
        f"tick with K={args.k} due of N={args.n} ({args.broker} broker, median of {args.rounds}): "
        f"without history {medians['without'] * 1000:.1f} ms, with history {medians['with'] * 1000:.1f} ms; "
        f"history costs {summary['ratio'] * 100:+.1f}% (target <= {TARGET_RATIO * 100:.0f}%); "
        f"round trips {trips['without']} / {trips['with']} (target 2); "
        f"XADD per tick {summary['xadd_per_tick']['without']} / {summary['xadd_per_tick']['with']}"
    )
    scripts = summary["median_script_seconds"]
    extra = scripts["with"] - scripts["without"]
    print(
        f"inside Redis: the tick's scripts took {scripts['without'] * 1000:.1f} ms / "
        f"{scripts['with'] * 1000:.1f} ms; "
        f"the history's share of the tick without it: {extra / medians['without'] * 100:.1f}%"
    )
    missed = summary["ratio"] > TARGET_RATIO or max(trips.values()) > 2
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
