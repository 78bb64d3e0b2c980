"""The web console with many entries: one schedules page and the 24 h timeline, rendered server-side.

    .venv/bin/python -m bench.console_bench                 # 10,000 entries
    .venv/bin/python -m bench.console_bench --entries 1000  # smaller

Writes ``--entries`` schedules (bench/validate_bench.py's mix: intervals of 1 s to 5 min, crons every two hours
on weekdays, daily crontabs, relative intervals) with ``redbeat-apply`` into a redis-server of its own, then
times, through Werkzeug's test client (the whole WSGI app: routing, page model, Jinja2, headers):

* the baseline, in the same run: the raw Redis read of the same entries (``sync.state.read_all``);
* the snapshot every page shares with every row built (status rows as ``status`` builds them + sync state +
  words), as the background refresh builds it;
* a schedules page (50 rows) from the shared snapshot: first, middle and last page, a text filter, a sort;
* the 24 h timeline of every entry (histogram + 50 lanes + busiest minutes), from the shared snapshot;
* a schedules page with no snapshot to share (the first after the console starts or after a minute without
  requests): the default view, which builds its 50 rows only, and a sort by next run, which builds every row.

Each figure is the median of ``--repeat`` runs.  Targets: a page < 300 ms (from the shared snapshot, and the
default view without one), the 24 h timeline < 1 s.  Exit 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.validate_bench import write_corpus  # noqa: E402
from tests.support.redis_proc import RedisProcess  # noqa: E402

PAGE_TARGET, TIMELINE_TARGET = 0.300, 1.0


def median_of(repeat: int, func: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    from werkzeug.test import Client

    from reconciler.console.app import make_app
    from reconciler.console.readers import ManifestFiles, read_snapshot
    from reconciler.sync.reconcile import connect, load, reconcile
    from reconciler.sync.state import read_all

    per_file = 100
    with tempfile.TemporaryDirectory(prefix="redbeat-console-bench-") as tmp, RedisProcess() as server:
        root = Path(tmp)
        total = write_corpus(root, max(1, args.entries // per_file), per_file)
        target = connect(server.url, "redbeat:", "bench")
        reconcile(load([root]), target)
        manifests = ManifestFiles([root], lambda paths: load(paths))
        manifests.desired()  # the console loads the manifests once, then only when a file changes

        baseline = median_of(args.repeat, lambda: read_all(target.client, target.keys))
        snapshot = median_of(args.repeat, lambda: read_snapshot(target, manifests).build_all())
        client = Client(make_app(target, manifests=manifests, max_age=3600, max_stale=3600))
        pages = total // 50

        def get(path: str) -> Callable[[], None]:
            def fetch() -> None:
                response = client.get(path)
                assert response.status_code == 200, response.get_data(as_text=True)[:300]
                response.get_data()

            return fetch

        get("/schedules")()  # builds the shared snapshot once
        page_paths = {
            "first page": "/schedules", "middle page": f"/schedules?page={pages // 2}",
            "last page": f"/schedules?page={pages}", "filtered (q=bench-09)": "/schedules?q=bench-09",
            "sorted by next run, desc": "/schedules?sort=next&order=desc&page=3",
        }
        page_times = {label: median_of(args.repeat, get(path)) for label, path in page_paths.items()}
        timeline = median_of(args.repeat, get("/timeline?window=24h"))
        cold_client = Client(make_app(target, manifests=manifests, max_age=0, max_stale=0))
        cold_page = median_of(args.repeat, lambda: cold_client.get("/schedules").get_data())
        cold_sorted = median_of(args.repeat, lambda: cold_client.get("/schedules?sort=next").get_data())

    print(f"entries: {total}")
    print(f"baseline: raw Redis read of every entry (read_all):   {baseline * 1000:8.1f} ms")
    print(f"shared snapshot, every row built (status+sync+words): {snapshot * 1000:8.1f} ms  "
          f"({snapshot / baseline:.1f}x the raw read)")
    for label, seconds in page_times.items():
        print(f"schedules page, {label + ':':<28} {seconds * 1000:8.1f} ms  ({seconds / baseline:.2f}x the raw read)")
    print(f"schedules page reading its own snapshot:              {cold_page * 1000:8.1f} ms  "
          f"({cold_page / baseline:.1f}x the raw read)")
    print(f"  the same, sorted by next run (builds every row):    {cold_sorted * 1000:8.1f} ms  "
          f"({cold_sorted / baseline:.1f}x the raw read)")
    print(f"timeline, 24 h, every entry:                          {timeline * 1000:8.1f} ms  "
          f"({timeline / baseline:.1f}x the raw read)")
    return _verdict(max(page_times.values()), timeline, cold_page)


def _verdict(worst_page: float, timeline: float, cold_page: float) -> int:
    """Print each target and whether it is met; 0 when all are."""
    said = {True: "met", False: "MISSED"}
    pages, line, cold = worst_page < PAGE_TARGET, timeline < TIMELINE_TARGET, cold_page < PAGE_TARGET
    print(f"targets: page < {PAGE_TARGET * 1000:.0f} ms: {said[pages]}; "
          f"24 h timeline < {TIMELINE_TARGET:.0f} s: {said[line]}; "
          f"page with no snapshot to share < {PAGE_TARGET * 1000:.0f} ms: {said[cold]}")
    return 0 if pages and line and cold else 1


if __name__ == "__main__":
    sys.exit(main())
