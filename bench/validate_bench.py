"""Time load + validate of 10,000 schedules in 100 files against plain YAML parsing.

    python bench/validate_bench.py [--files 100] [--per-file 100] [--repeat 3]

Generates the manifests in a temporary directory, then times, in the same
run, (a) the baseline: ``yaml.load`` with the C safe loader of every file, and
(b) ``reconciler.manifests.loader.load_desired`` (discovery, safe YAML with source
map, JSON Schema, semantic checks, canonical definitions). Prints the best of
``--repeat`` runs of each and their ratio. Target: (b) under 2 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

from reconciler.manifests.loader import load_desired

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


def best_of(repeat: int, func) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--per-file", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        total = write_corpus(root, args.files, args.per_file)
        paths = sorted(root.glob("*.yaml"))

        def baseline() -> None:
            for path in paths:
                yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)

        def ours() -> None:
            entries = load_desired([root])
            assert len(entries) == total, len(entries)

        ours()  # warm up: schema compilation, imports
        base = best_of(args.repeat, baseline)
        full = best_of(args.repeat, ours)
    print(f"schedules: {total} in {args.files} files")
    print(f"baseline yaml.load (CSafeLoader): {base:.3f} s")
    print(f"load_desired (load + validate):   {full:.3f} s")
    print(f"ratio: {full / base:.2f}x")
    return 0 if full < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
