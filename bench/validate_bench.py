"""Time the cold path at 100,000 schedules (100 files of 1,000) against its baselines, in one run.

    python bench/validate_bench.py [--files 100] [--per-file 1000] [--repeat 3] [--no-apply] [--strict]

Generates the manifests in a temporary directory, then measures, alternately
and ``--repeat`` times each (the best of each is kept):

* **validate**: ``reconciler.manifests.checks.load_desired`` (discovery, safe
  YAML with source positions, JSON Schema, semantic checks, canonical
  definitions) against the baseline, a bare ``yaml.load`` with the C safe
  loader of every file. Target: at most 2x the baseline.
* **cold apply** (unless ``--no-apply``): what ``redbeat-apply`` does for
  schedules Redis has never seen (``load_desired`` +
  ``reconciler.sync.reconcile.reconcile``: read state, plan, one atomic
  apply) against the baseline, one raw redis-py pipeline writing the same keys
  (HSET definition [+ ext], ZADD, HSET ownership record per entry), on a
  throwaway redis-server of its own. Target: at most 3x the baseline.

Prints each figure, the ratio and whether the target is met, and the peak
resident memory after the validate runs; exits 1 when one
is missed only with ``--strict`` (small sizes are dominated by fixed costs).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # bench.reconcile_bench and tests.support, when run as a script

from reconciler.manifests.checks import load_desired  # noqa: E402

VALIDATE_TARGET = 2.0
APPLY_TARGET = 3.0

KINDS = (
    '    every: {n}s\n',
    '    cron: "{m} */2 * * mon-fri"\n',
    '    crontab: {{minute: "{m}", hour: "3"}}\n',
    '    every: 1h{m}m\n    relative: true\n',
)


def write_corpus(root: Path, files: int, per_file: int) -> int:
    count = 0
    for f in range(files):
        lines = [
            "# yaml-language-server: $schema=../schemas/redbeat-manifest.schema.json\n",
            "defaults:\n  task: demo.tasks.report\n  options: {queue: bench, expires: 300}\n",
            "schedules:\n",
        ]
        for i in range(per_file):
            n = f * per_file + i
            lines.append(f"  - name: bench-{n:05d}\n")
            if i % 3 == 0:
                lines.append("    task: demo.tasks.heartbeat\n")
            lines.append(KINDS[n % len(KINDS)].format(n=n % 300 + 1, m=n % 60))
            if i % 2 == 0:
                lines.append(f"    args: [{n}, \"x\"]\n    kwargs: {{id: {n}, tag: bench}}\n")
            if i % 5 == 0:
                lines.append("    options: {priority: 5}\n")
        (root / f"file-{f:03d}.yaml").write_text("".join(lines), encoding="utf-8")
        count += per_file
    return count


def best_pair(repeat: int, baseline: Callable[[], float], ours: Callable[[], float]) -> tuple[float, float]:
    """The best of ``repeat`` timings of each, run alternately so that machine noise hits both alike."""
    base, mine = [], []
    for _ in range(repeat):
        base.append(baseline())
        mine.append(ours())
    return min(base), min(mine)


def timed(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def verdict(name: str, base: float, ours: float, target: float) -> tuple[str, bool]:
    ratio = ours / base
    met = ratio <= target
    line = f"{name}: ratio {ratio:.2f}x baseline (target <= {target:g}x) {'✓' if met else '✗ missed'}"
    return line, met


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--per-file", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-apply", action="store_true", help="skip the cold apply (it needs redis-server)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    results: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="redbeat-bench-") as tmp:
        root = Path(tmp)
        total = write_corpus(root, args.files, args.per_file)
        paths = sorted(root.glob("*.yaml"))
        print(f"schedules: {total} in {args.files} files")

        def baseline() -> None:
            for path in paths:
                yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)

        def ours() -> None:
            entries = load_desired([root])
            assert len(entries) == total, len(entries)

        ours()  # warm up: schema compilation, imports
        base, full = best_pair(args.repeat, lambda: timed(baseline), lambda: timed(ours))
        print(f"baseline yaml.load (CSafeLoader): {base:.3f} s")
        print(f"load_desired (load + validate):   {full:.3f} s")
        line, met = verdict("validate", base, full, VALIDATE_TARGET)
        print(line)
        # The validate runs hold the most memory of the process so far: every entry at once.
        print(f"peak RSS after the validate runs: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")
        results.append(met)
        if not args.no_apply:
            from bench.reconcile_bench import cold_apply

            raw, whole = cold_apply(root, args.repeat)
            print(f"baseline raw pipeline (same keys):  {raw:.3f} s")
            print(f"cold apply (load + validate + plan + apply): {whole:.3f} s")
            line, met = verdict("cold apply", raw, whole, APPLY_TARGET)
            print(line)
            results.append(met)
    return 1 if args.strict and not all(results) else 0


if __name__ == "__main__":
    sys.exit(main())
