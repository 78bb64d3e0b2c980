"""Reconciler benchmarks, in our interpreter only; prints one JSON line.

    python -m bench.reconcile_bench '<json spec>'

Every figure has a baseline measured in the same process on the same
redis-server:

* validate: ``load_desired`` (discovery, YAML with source positions, JSON
  Schema, semantic checks) of ``validate`` schedules (1,000 a file) vs
  ``yaml.load`` with the C safe loader of the same files
  (bench/validate_bench.py's corpus and baseline);
* first apply of ``apply`` new schedules, no-op apply, apply of 1% changes:
  the phases of ``reconciler.sync.reconcile.reconcile`` (what ``redbeat-apply``
  runs after loading; the first apply also with the load before it: the whole
  cold run) vs one redis-py pipeline writing the same keys
  (HSET definition [+ ext], ZADD, HSET ownership record per entry); for the
  no-op apply the baseline is one pipeline reading them (HMGET + ZSCORE +
  HGET per entry), the least a no-op can do.  Writes are counted from INFO
  commandstats and ``rdb_changes_since_last_save``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import redis
import yaml

from bench.validate_bench import write_corpus
from reconciler.manifests.checks import load_desired
from reconciler.sync.apply import encode_definition
from reconciler.sync.reconcile import PlanOptions, Target, reconcile
from reconciler.sync.state import OwnershipRecord, fingerprint
from redbeat.codec import encode_ext
from redbeat.keys import KeySpace

WRITE_COMMANDS = frozenset(
    {
        "set", "setnx", "setex", "psetex", "del", "unlink", "hset", "hsetnx", "hdel", "hmset",
        "zadd", "zrem", "zincrby", "sadd", "srem", "expire", "pexpire", "rename", "incr", "incrby",
        "lpush", "rpush", "lpop", "rpop", "publish", "xadd", "getset", "hincrby", "persist", "copy", "restore",
    }
)
OWNER = "bench"
SCRIPT_TIMEOUT = 300.0  # seconds; the bench measures speed, a hung server still ends the run


def commandstats(client: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()}


def dirty(client: redis.Redis) -> int:
    return int(client.info("persistence")["rdb_changes_since_last_save"])


def writes_during(control: redis.Redis, func):  # type: ignore[no-untyped-def]
    before, dirty_before = commandstats(control), dirty(control)
    result = func()
    after, dirty_after = commandstats(control), dirty(control)
    writes = {k: after[k] - before.get(k, 0) for k in after if k in WRITE_COMMANDS and after[k] - before.get(k, 0)}
    return result, writes, dirty_after - dirty_before


def stored_bytes(desired) -> list[tuple[str, str, str | None, str]]:  # type: ignore[no-untyped-def]
    """(name, definition, ext, ownership record) exactly as an apply writes them."""
    out = []
    for name, entry in desired.items():
        definition = encode_definition(entry.definition)
        ext = encode_ext(entry.ext)
        record = OwnershipRecord(fingerprint(definition, ext), entry.protected).to_json()
        out.append((name, definition, ext, record))
    return out


def raw_write(client: redis.Redis, keys: KeySpace, rows) -> float:  # type: ignore[no-untyped-def]
    now = time.time()
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    index = keys.owner_index(OWNER)
    for name, definition, ext, record in rows:
        key = keys.entry(name)
        pipe.hset(key, "definition", definition)
        if ext is not None:
            pipe.hset(key, "ext", ext)
        pipe.zadd(keys.schedule, {key: now})
        pipe.hset(index, name, record)
    pipe.execute()
    return time.perf_counter() - started


def raw_read(client: redis.Redis, keys: KeySpace, rows) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    index = keys.owner_index(OWNER)
    for name, *_ in rows:
        key = keys.entry(name)
        pipe.hmget(key, "definition", "ext", "meta")
        pipe.zscore(keys.schedule, key)
        pipe.hget(index, name)
    pipe.execute()
    return time.perf_counter() - started


def changed(desired, share: float):  # type: ignore[no-untyped-def]
    """The same manifests with every (1/share)-th schedule's kwargs edited."""
    step = max(1, round(1 / share))
    out = dict(desired)
    names = sorted(desired)
    for name in names[::step]:
        entry = desired[name]
        definition = dict(entry.definition)
        definition["kwargs"] = {**(definition.get("kwargs") or {}), "edited": True}
        out[name] = dataclasses.replace(entry, definition=definition)
    return out, len(names[::step])


def timed_reconcile(desired, target: Target):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    outcome = reconcile(desired, target, PlanOptions())
    total = time.perf_counter() - started
    timings = dict(outcome.timings or {})
    return {
        "plan": timings.get("plan", 0.0),
        "apply": timings.get("apply", 0.0),
        "total": total,
        "changes": outcome.result.changes if outcome.result else 0,
    }


def cold_apply(root: Path, repeat: int) -> tuple[float, float]:
    """(raw pipeline, whole cold apply) of the manifests under ``root``, best of ``repeat`` each, run alternately.

    The whole cold apply is what ``redbeat-apply`` does for entries Redis has
    never seen: ``load_desired`` + ``reconcile`` into an empty db. The raw
    pipeline writes the same bytes, encoded beforehand. Both on one
    redis-server of its own, each in its own db.
    """
    from tests.support.redis_proc import RedisProcess

    server = RedisProcess().start()
    try:
        url = server.url.rsplit("/", 1)[0]
        # One script writes all 100,000 entries: longer than redis-py's default 5 s read timeout on a busy machine.
        client = redis.Redis.from_url(f"{url}/1", decode_responses=True, socket_timeout=SCRIPT_TIMEOUT)
        base_client = redis.Redis.from_url(f"{url}/2", decode_responses=True, socket_timeout=SCRIPT_TIMEOUT)
        keys = KeySpace("redbeat:")
        target = Target(client, keys, OWNER, f"{url}/1")
        rows = stored_bytes(load_desired([root]))
        raws, wholes = [], []
        for _ in range(repeat):
            client.flushdb()
            base_client.flushdb()
            raws.append(raw_write(base_client, keys, rows))
            started = time.perf_counter()
            outcome = reconcile(load_desired([root]), target, PlanOptions())
            wholes.append(time.perf_counter() - started)
            assert outcome.result is not None and outcome.result.changes == len(rows), outcome.result
        return min(raws), min(wholes)
    finally:
        server.stop()


def run(spec: dict) -> dict:
    url = spec["redis_url"]
    db, base_db = spec["db"], spec["baseline_db"]
    control = redis.Redis.from_url(url + "/0", decode_responses=True)
    client = redis.Redis.from_url(f"{url}/{db}", decode_responses=True, socket_timeout=SCRIPT_TIMEOUT)
    base_client = redis.Redis.from_url(f"{url}/{base_db}", decode_responses=True, socket_timeout=SCRIPT_TIMEOUT)
    keys = KeySpace("redbeat:")
    target = Target(client, keys, OWNER, f"{url}/{db}")
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="redbeat-bench-") as tmp:
        root = Path(tmp)
        # validate: load_desired vs yaml.load (CSafeLoader) of the same files
        vdir = root / "validate"
        vdir.mkdir()
        per_file = min(1000, spec["validate"])
        vcount = write_corpus(vdir, max(1, spec["validate"] // per_file), per_file)
        vpaths = sorted(vdir.glob("*.yaml"))
        load_desired([vdir])  # warm: schema compilation, imports
        started = time.perf_counter()
        for path in vpaths:
            yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        yaml_seconds = time.perf_counter() - started
        started = time.perf_counter()
        entries = load_desired([vdir])
        validate_seconds = time.perf_counter() - started
        assert len(entries) == vcount
        out["validate"] = {"n": vcount, "ours": validate_seconds, "baseline": yaml_seconds}

        # the apply corpus
        adir = root / "apply"
        adir.mkdir()
        n = spec["apply"]
        files = max(1, n // 1000)
        write_corpus(adir, files, n // files)
        started = time.perf_counter()
        desired = load_desired([adir])
        out["load_and_validate"] = {"n": len(desired), "seconds": time.perf_counter() - started}
        rows = stored_bytes(desired)
        edited, n_changed = changed(desired, 0.01)
        edited_rows = [r for r in stored_bytes(edited) if edited[r[0]] is not desired[r[0]]]

        client.flushdb()
        base_client.flushdb()
        first, first_writes, _ = writes_during(control, lambda: timed_reconcile(desired, target))
        out["first"] = {**first, "baseline": raw_write(base_client, keys, rows), "writes": first_writes,
                        "load": out["load_and_validate"]["seconds"]}
        noop, noop_writes, noop_dirty = writes_during(control, lambda: timed_reconcile(desired, target))
        out["noop"] = {**noop, "baseline": raw_read(base_client, keys, rows), "writes": noop_writes,
                       "dirty": noop_dirty}
        change, change_writes, _ = writes_during(control, lambda: timed_reconcile(edited, target))
        out["change"] = {**change, "n_changed": n_changed, "baseline": raw_write(base_client, keys, edited_rows),
                         "writes": change_writes}
        out["stored"] = client.zcard(keys.schedule)
    client.flushdb()
    base_client.flushdb()
    return out


def main() -> int:
    spec = json.loads(sys.argv[1])
    print(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
