"""Watch-mode latency: from a manifest write to the change in Redis, and to beat dispatching under it.

    .venv/bin/python bench/watch_latency.py [--writes 30] [--beat-writes 10] [--entries 50]

Starts a redis-server of its own (free loopback port, temp dir) and the
installed ``redbeat-apply --watch`` with its defaults (debounce 300 ms,
inotify), then:

* **file -> Redis**: ``--writes`` times, replaces ``jobs.yaml`` (write a temp
  file, ``os.replace``, as editors and the kubelet do) with one entry's
  interval changed, and times until the apply's PUBLISH on ``<prefix>:wake``
  (sent inside the apply's script, so the change is committed) arrives, then
  checks the new definition is in Redis.  Writes are 0.4-0.6 s apart, so
  each is its own event.
* **file -> beat dispatch** (``--beat-writes``, 0 to skip): with
  ``celery beat -S redbeat.Scheduler`` running, an ``every: 1s`` entry is
  disabled, then enabled again by a file write; timed until beat's task
  message is in the broker queue (Redis list ``celery``).

Prints p50/p90/p99/max per figure, with the command and the machine.

``--scale 1000,10000,100000`` measures the incremental watch mode at scale
instead: N schedules in 100 files, one file edited ``--writes`` times; per N
the edit -> Redis latency (until the apply's PUBLISH), the watcher's CPU per
edit (from /proc, until it is idle again) against the CPU of one cold
``redbeat-apply`` of the same tree in the same run, no-op resyncs
(time, and bytes Redis sent: INFO ``total_net_output_bytes``) and the
watcher's RSS; each target is marked against the issue's figures.  Before the
resyncs every entry gets a run state as beat writes it (meta, score), which a
resync must not count as a change.  Resyncs are timed three ways, each the
median of 5 after a first: with the change feed when nothing was written
since the last resync, with it after beat ran 1 % of the entries, and by
fingerprints alone (no feed), with the longest script call in Redis (SLOWLOG):
how long one call blocks other clients.
``--only resync`` measures just that, after one cold ``redbeat-apply``.
``BENCH_BEAT_LOGLEVEL=DEBUG`` keeps beat's log and prints its tail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from tests.support.redis_proc import RedisProcess, free_port  # noqa: E402

BIN = Path(sys.executable).parent / "redbeat-apply"

BEAT_APP = """\
import os
from celery import Celery

app = Celery("latency")
app.conf.update(broker_url=os.environ["BENCH_REDIS_URL"], redbeat_redis_url=os.environ["BENCH_REDIS_URL"],
                broker_connection_retry_on_startup=True, timezone="UTC", task_ignore_result=True)
"""


def manifest(entries: int, every: float, probe_enabled: bool | None = None) -> str:
    lines = ["schedules:", f"  - {{name: target, task: bench.target, every: {every}}}"]
    lines += [f"  - {{name: filler-{i:03d}, task: bench.filler, every: {i + 60}}}" for i in range(entries - 1)]
    if probe_enabled is not None:
        lines.append(f"  - {{name: probe, task: bench.probe, every: 1, enabled: {str(probe_enabled).lower()}}}")
    return "\n".join(lines) + "\n"


def replace(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"{name:<28} n={len(ms):<3} p50={percentile(ms, .5):7.1f} ms  p90={percentile(ms, .9):7.1f} ms  "
            f"p99={percentile(ms, .99):7.1f} ms  max={max(ms):7.1f} ms  mean={statistics.fmean(ms):7.1f} ms")


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import urllib.request

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"redbeat-apply --watch exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    wait_for(ready, 120, "/readyz")  # after the first apply at 100k: the read-back, 100k log lines


def file_to_redis(client: redis.Redis, path: Path, writes: int, entries: int) -> list[float]:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("redbeat::wake")
    latencies = []
    for i in range(writes):
        every = 1000 + i
        time.sleep(random.uniform(0.4, 0.6))
        while pubsub.get_message(timeout=0):  # drop anything stale
            pass
        started = time.perf_counter()
        replace(path, manifest(entries, every))
        message = pubsub.get_message(timeout=10)
        elapsed = time.perf_counter() - started
        if message is None:
            raise RuntimeError(f"write {i}: no apply within 10 s")
        definition = json.loads(client.hget("redbeat:target", "definition") or "{}")
        if definition.get("schedule", {}).get("every") != float(every):
            raise RuntimeError(f"write {i}: Redis has {definition!r}, expected every={every}")
        latencies.append(elapsed)
    pubsub.close()
    return latencies


def file_to_dispatch(server: RedisProcess, client: redis.Redis, path: Path, workdir: Path, writes: int,
                     entries: int) -> list[float]:
    (workdir / "latency_app.py").write_text(BEAT_APP)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("REDBEAT_", "CELERY_"))},
           "BENCH_REDIS_URL": server.url, "PYTHONPATH": str(workdir)}
    beat_log = (workdir / "beat.log").open("wb")
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "latency_app",
            "beat",
            "-S",
            "redbeat.Scheduler",
            "--max-interval",
            "30",
            "--loglevel",
            os.environ.get("BENCH_BEAT_LOGLEVEL", "WARNING"),
        ],
        cwd=workdir,
        env=env,
        stdout=beat_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    latencies = []
    try:
        replace(path, manifest(entries, 5000, probe_enabled=True))
        wait_for(lambda: client.llen("celery") > 0, 30, "beat's first dispatch of the probe")
        for i in range(writes):
            replace(path, manifest(entries, 5000, probe_enabled=False))
            wait_for(lambda: '"enabled": false' in (client.hget("redbeat:probe", "definition") or ""), 10, "disable")
            time.sleep(random.uniform(1.2, 1.5))  # the probe is overdue when enabled again
            client.delete("celery")
            started = time.perf_counter()
            replace(path, manifest(entries, 5000, probe_enabled=True))
            if client.blpop(["celery"], timeout=15) is None:
                raise RuntimeError(
                    f"beat write {i}: no dispatch within 15 s; beat log:\n{(workdir / 'beat.log').read_text()[-2000:]}"
                )
            latencies.append(time.perf_counter() - started)
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        try:
            beat.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(beat.pid, signal.SIGKILL)
            beat.wait()
        beat_log.close()
        if os.environ.get("BENCH_BEAT_LOGLEVEL"):
            print((workdir / "beat.log").read_text()[-6000:])
    return latencies


FILES = 100


def scale_tree(directory: Path, total: int, edit: int = 0) -> None:
    per_file = total // FILES
    for f in range(FILES):
        lines = ["schedules:"] + [
            f"  - {{name: s-{f:03d}-{i:05d}, task: bench.t, every: {60 + i + (edit if f == 7 and i == 0 else 0)}}}"
            for i in range(per_file)
        ]
        replace(directory / f"jobs-{f:03d}.yaml", "\n".join(lines) + "\n")


def settle(pid: int, timeout: float = 120.0) -> float:
    """Wait until the watcher is idle (under 5 % of a core for 0.5 s); returns the seconds waited.

    After the first apply at 100k the watcher still reads the change feed's report of the 100k keys it wrote
    (about 4 us a key) and the first resync compares them: the start-up's tail, not an edit's cost.
    """
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = proc_cpu(pid)
        time.sleep(0.5)
        if proc_cpu(pid) - before < 0.025:
            break
    return time.perf_counter() - started


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cold_cpu(schedules: Path, url: str) -> float:
    """CPU seconds of one cold ``redbeat-apply`` (load, validate, read Redis, plan; nothing to write)."""
    before = os.times()
    subprocess.run([str(BIN), str(schedules), "--redis-url", url], check=True, stdout=subprocess.DEVNULL)
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


def beat_runs(client: redis.Redis, names: list[str]) -> None:
    """Give every entry a run state as beat leaves it after a run (meta and score): what a resync must skip."""
    from datetime import datetime, timedelta, timezone

    from redbeat.codec import encode_meta

    rng = random.Random(18)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    pipe = client.pipeline(transaction=False)
    for i, name in enumerate(names):
        ran = start + timedelta(seconds=rng.randrange(86400), microseconds=rng.randrange(1_000_000))
        pipe.hset(f"redbeat:{name}", "meta", encode_meta(ran, rng.randrange(1, 100_000)))
        pipe.zadd("redbeat::schedule", {f"redbeat:{name}": ran.timestamp() + 86400})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


RESYNCS = 5
#: The share of entries beat runs between two resyncs in the "some ran" figure (1,000 of 100,000).
RAN_SHARE = 0.01


def _median_resync(resync, info, overhead: int) -> tuple[float, float, int]:
    """(first, median of the next RESYNCS, bytes Redis sent for the last) of ``resync()``, which finds nothing."""
    times, sent = [], 0
    for _ in range(RESYNCS + 1):
        before = info()
        started = time.perf_counter()
        report = resync()
        times.append(time.perf_counter() - started)
        sent = info() - before - overhead
        assert report.differing == 0 and not report.full, report
    return times[0], statistics.median(times[1:]), sent


def noop_resync(url: str, schedules: Path) -> dict[str, float]:
    """Resyncs that find nothing, after a full read, with beat's run state on every entry.

    By fingerprints (no change feed: Redis Cluster, an ACL without tracking):
    ``resync_fp_first_s`` is the first (the held side's digests not yet
    computed), ``resync_fp_s`` the median of the next RESYNCS,
    ``resync_fp_bytes`` what Redis sent for one (INFO
    ``total_net_output_bytes``), ``resync_call_ms`` the longest script call
    in Redis (SLOWLOG).  With the change feed (the watch mode's default):
    ``resync_s``/``resync_bytes`` when nothing was written since the last
    resync, ``resync_ran_s`` after beat ran RAN_SHARE of the entries (each
    reported entry is compared by fingerprint).
    """
    from reconciler.sync.incremental import HeldState, Incremental
    from reconciler.sync.reconcile import PlanOptions, connect, load

    target = connect(url)
    client = target.client
    names = sorted(client.hkeys("redbeat::owner:default"))
    beat_runs(client, names)
    desired = load([schedules])
    held = HeldState(target, PlanOptions())
    held.replace_desired(desired)
    held.plan()
    info = lambda: client.info("stats")["total_net_output_bytes"]  # noqa: E731
    overhead = -info() + info()  # one INFO reply, measured
    client.config_set("slowlog-max-len", 100_000)
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    fp_first, fp, fp_sent = _median_resync(held.resync, info, overhead)
    calls = [entry["duration"] for entry in client.slowlog_get(100_000) if _is_script(entry["command"])]
    client.config_set("slowlog-log-slower-than", 10_000)
    watching = Incremental([], target, PlanOptions())
    watching.held.replace_desired(desired)
    watching.subscribe()
    assert watching.tracking, "no change feed"
    watching.reconcile()  # the full read a watch mode starts with
    _, quiet, sent = _median_resync(watching.held.resync, info, overhead)
    ran = []
    for round_ in range(RESYNCS):
        beat_runs(client, random.Random(round_).sample(names, max(1, int(len(names) * RAN_SHARE))))
        started = time.perf_counter()
        report = watching.held.resync()
        ran.append(time.perf_counter() - started)
        assert report.tracked and report.differing == 0 and not report.full, report
    watching.close()
    client.close()
    return {"resync_fp_first_s": fp_first, "resync_fp_s": fp, "resync_fp_bytes": fp_sent,
            "resync_call_ms": max(calls) / 1000, "resync_s": quiet, "resync_bytes": sent,
            "resync_ran_s": statistics.median(ran)}


def scale_run(total: int, writes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="redbeat-watch-scale-") as tmp, RedisProcess() as server:
        schedules = Path(tmp) / "schedules"
        schedules.mkdir()
        scale_tree(schedules, total)
        port = free_port()
        log = Path(tmp) / "watch.log"
        with log.open("wb") as out:
            watcher = subprocess.Popen([str(BIN), "--watch", str(schedules), "--redis-url", server.url,
                                        "--listen", f"127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT)
        client = server.client()
        try:
            wait_for(lambda: watcher.poll() is None and client.hlen("redbeat::owner:default") == total, 600,
                     "the first apply")
            wait_ready(port, watcher, log)
            settle(watcher.pid)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe("redbeat::wake")
            latencies, cpu = [], []
            for i in range(writes):
                time.sleep(random.uniform(0.4, 0.6))
                while pubsub.get_message(timeout=0):
                    pass
                cpu_before = proc_cpu(watcher.pid)
                started = time.perf_counter()
                scale_edit(schedules, i + 1)
                if pubsub.get_message(timeout=30) is None:
                    raise RuntimeError(f"write {i}: no apply within 30 s\n{log.read_text()[-3000:]}")
                latencies.append(time.perf_counter() - started)
                time.sleep(0.3)  # the read-back after the apply
                cpu.append(proc_cpu(watcher.pid) - cpu_before)
            rss = proc_rss_mb(watcher.pid)
            pubsub.close()
        finally:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(timeout=30)
        cold = cold_cpu(schedules, server.url)
        resync = noop_resync(server.url, schedules)
        client.close()
    return {"p50": percentile(latencies, .5), "p99": percentile(latencies, .99), "cpu_edit": statistics.fmean(cpu),
            "cpu_cold": cold, "rss_mb": rss, **resync}


def _is_script(command: str | bytes) -> bool:
    text = command.decode(errors="replace") if isinstance(command, bytes) else command
    return text.upper().startswith("EVAL")


def resync_run(total: int) -> dict[str, float]:
    """Only the no-op resync at N: the tree applied by one cold ``redbeat-apply``, no watcher."""
    with tempfile.TemporaryDirectory(prefix="redbeat-resync-scale-") as tmp, RedisProcess() as server:
        schedules = Path(tmp) / "schedules"
        schedules.mkdir()
        scale_tree(schedules, total)
        subprocess.run([str(BIN), str(schedules), "--redis-url", server.url], check=True, stdout=subprocess.DEVNULL)
        return noop_resync(server.url, schedules)


def scale_edit(schedules: Path, edit: int) -> None:
    """Rewrite one of the 100 files (jobs-007.yaml) with one entry's interval changed."""
    per_file = sum(1 for _ in (schedules / "jobs-000.yaml").open()) - 1
    lines = ["schedules:"] + [
        f"  - {{name: s-007-{i:05d}, task: bench.t, every: {60 + i + (edit if i == 0 else 0)}}}"
        for i in range(per_file)
    ]
    replace(schedules / "jobs-007.yaml", "\n".join(lines) + "\n")


def mark(ok: bool) -> str:
    return "\u2713" if ok else "\u2717"


RESYNC_HEAD = (f"{'resync s':>9} {'KB':>6} {'ran 1% s':>9} {'by fp s':>8} {'fp first':>8} {'fp KB':>6} "
               f"{'call ms':>8}")


def resync_cells(r: dict[str, float]) -> str:
    return (f"{r['resync_s']:9.3f} {r['resync_bytes'] / 1024:6.1f} {r['resync_ran_s']:9.3f} {r['resync_fp_s']:8.3f} "
            f"{r['resync_fp_first_s']:8.3f} {r['resync_fp_bytes'] / 1024:6.1f} {r['resync_call_ms']:8.1f}")


def resync_target(n: int, r: dict[str, float]) -> str:
    ok = r["resync_s"] <= 0.5 and r["resync_ran_s"] <= 0.5 and r["resync_bytes"] <= 1 << 20
    return (f"  {mark(ok)} no-op resync {r['resync_s'] * 1000:.1f} ms, {r['resync_bytes'] / 1024:.1f} KB read; "
            f"{r['resync_ran_s'] * 1000:.0f} ms after beat ran {RAN_SHARE:.0%} of the entries (<= 0.5 s, <= 1 MB)\n"
            f"    without the change feed (fingerprints): {r['resync_fp_s']:.3f} s, "
            f"{r['resync_fp_bytes'] / 1024:.0f} KB read; longest script call {r['resync_call_ms']:.1f} ms")


def scale_main(sizes: list[int], writes: int, argv: list[str], only_resync: bool) -> int:
    runs = resync_run if only_resync else (lambda n: scale_run(n, writes))
    results = {n: runs(n) for n in sizes}
    print("$ " + " ".join(["python", "bench/watch_latency.py", *argv]))
    what = "" if only_resync else f", one file edited {writes} times, --watch defaults"
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"N schedules in {FILES} files{what}; every entry has beat's run state; "
          f"resync: median of {RESYNCS} after the first; resync s/KB: with the change feed, nothing written since "
          f"the last; ran 1% s: after beat ran 1% of the entries; by fp: fingerprints, no change feed")
    big, small = results[max(sizes)], results[min(sizes)]
    if only_resync:
        print(f"{'N':>8} {RESYNC_HEAD}")
        for n, r in results.items():
            print(f"{n:>8} {resync_cells(r)}")
        print(f"target at N={max(sizes)}:")
        print(resync_target(max(sizes), big))
        return 0
    print(f"{'N':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU/edit s':>10} {'cold CPU s':>10} {'ratio':>7} "
          f"{RESYNC_HEAD} {'RSS MB':>7}")
    for n, r in results.items():
        print(f"{n:>8} {r['p50'] * 1000:8.1f} {r['p99'] * 1000:8.1f} {r['cpu_edit']:10.3f} {r['cpu_cold']:10.2f} "
              f"{r['cpu_edit'] / r['cpu_cold']:7.1%} {resync_cells(r)} {r['rss_mb']:7.0f}")
    print(f"targets at N={max(sizes)}:")
    print(f"  {mark(big['p99'] <= 0.25)} edit -> Redis p99 {big['p99'] * 1000:.0f} ms <= 250 ms")
    print(f"  {mark(big['p99'] <= 1.5 * small['p99'])} p99 {big['p99'] / small['p99']:.2f}x the N={min(sizes)} "
          "p99 (<= 1.5x)")
    print(f"  {mark(big['cpu_edit'] <= 0.05 * big['cpu_cold'])} CPU per edit {big['cpu_edit'] / big['cpu_cold']:.1%}"
          " of a cold run's (<= 5%)")
    print(resync_target(max(sizes), big))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--beat-writes", type=int, default=10)
    parser.add_argument("--entries", type=int, default=50, help="schedules in the manifest (default 50)")
    parser.add_argument("--scale", default="", help="comma-separated N: the incremental mode at scale (see above)")
    parser.add_argument("--only", choices=["resync"], help="with --scale: only the no-op resync (no watcher, no edits)")
    args = parser.parse_args(argv)
    if args.only and not args.scale:
        parser.error("--only needs --scale")
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 1
    if args.scale:
        sizes = [int(n) for n in args.scale.split(",")]
        return scale_main(sizes, args.writes, list(argv or sys.argv[1:]), only_resync=args.only == "resync")
    with tempfile.TemporaryDirectory(prefix="redbeat-watch-bench-") as tmp, RedisProcess() as server:
        workdir = Path(tmp)
        schedules = workdir / "schedules"
        schedules.mkdir()
        path = schedules / "jobs.yaml"
        replace(path, manifest(args.entries, 999))
        port = free_port()
        log = workdir / "watch.log"
        with log.open("wb") as out:
            watcher = subprocess.Popen(
                [str(BIN), "--watch", str(schedules), "--redis-url", server.url, "--listen", f"127.0.0.1:{port}"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        client = server.client()
        try:
            wait_ready(port, watcher, log)
            to_redis = file_to_redis(client, path, args.writes, args.entries)
            to_beat = (
                file_to_dispatch(server, client, path, workdir, args.beat_writes, args.entries)
                if args.beat_writes
                else []
            )
        finally:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(timeout=10)
            client.close()
    # The command, not the interpreter's path: the output is pasted into documents read on other machines.
    print("$ " + " ".join(["python", "bench/watch_latency.py", *(argv or sys.argv[1:])]))
    print(
        f"# {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{args.entries} schedules, redbeat-apply --watch defaults (debounce 300ms, inotify)"
    )
    print(summary("file write -> Redis", to_redis))
    if to_beat:
        print(summary("file write -> beat dispatch", to_beat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
