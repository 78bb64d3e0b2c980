"""Property: the incremental watch path leaves Redis exactly as a cold run does, for random edit sequences.

Two databases of one real redis-server: db 0 is kept by one long-lived
incremental reconciler (manifest index + held Redis state, as the watch mode
runs them), db 1 gets a cold ``load_desired`` + ``reconcile`` after every
step.  Steps create, edit, rename and delete files, move entries between
files, duplicate names, write invalid YAML, change group defaults, and write
to Redis behind the reconciler's back as beat (run state), an operator
(``entry.save``-style, published) or a hand edit (unpublished, found by the
cheap resync through the change feed, or by fingerprints after the feed's
connection was cut).  After each step both report the same manifest errors, and
every key under the prefix (values, scores) is the same in both databases.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.redis_dump import every_key
from support.redis_proc import RedisProcess

from reconciler.core.errors import Location, ManifestErrors, PlanRefused, StoreError
from reconciler.core.model import DesiredEntry
from reconciler.sync.incremental import Incremental
from reconciler.sync.reconcile import PlanOptions, connect, load, reconcile
from redbeat.codec import encode_meta
from redbeat.keys import KeySpace

KEYS = KeySpace()
NAMES = [f"job-{i}" for i in range(8)] + ["odd [x]/<y>", "\u00e9t\u00e9"]
FILES = ["a.yaml", "b.yaml", "sub/c.yml", "d.yaml"]


def desired_of(intervals: dict[str, int]) -> dict[str, DesiredEntry]:
    """Desired entries with the given ``every`` seconds (what a manifest of them converts to)."""
    return {
        name: DesiredEntry(
            name,
            {"name": name, "task": "t.run", "args": [], "kwargs": {}, "options": {},
             "schedule": {"__type__": "interval", "every": float(every), "relative": False}, "enabled": True},
            None, False, Location(Path("x.yaml"), 1, 1, ""),
        )
        for name, every in intervals.items()
    }


def manifest(entries: list[tuple[str, int]], defaults: int | None) -> str:
    head = f"defaults: {{task: t.default, options: {{queue: q{defaults}}}}}\n" if defaults is not None else ""
    lines = [f"  - {{name: {n!r}, task: t.run, every: {every}s}}" for n, every in entries]
    return head + "schedules:\n" + ("\n".join(lines) if lines else "  []") + "\n"


write = st.tuples(st.just("write"), st.sampled_from(FILES),
                  st.lists(st.tuples(st.sampled_from(NAMES), st.integers(1, 4)), max_size=4),
                  st.one_of(st.none(), st.integers(1, 2)))
steps = st.one_of(
    write,
    st.tuples(st.just("delete"), st.sampled_from(FILES)),
    st.tuples(st.just("rename"), st.sampled_from(FILES), st.sampled_from(FILES)),
    st.tuples(st.just("invalid"), st.sampled_from(FILES)),
    st.tuples(st.just("beat"), st.sampled_from(NAMES)),
    st.tuples(st.just("operator"), st.sampled_from(NAMES)),
    st.tuples(st.just("hand"), st.sampled_from(NAMES)),
    st.tuples(st.just("foreign"), st.sampled_from(NAMES)),
    st.tuples(st.just("cut"), st.sampled_from(NAMES)),
)


def apply_step(step: tuple, root: Path, clients: list) -> bool:
    """Do one step to the tree or to both databases; True when the incremental side must resync to see it."""
    kind = step[0]
    if kind == "write":
        path = root / step[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(manifest(step[2], step[3]))
    elif kind == "delete":
        (root / step[1]).unlink(missing_ok=True)
    elif kind == "rename":
        if (root / step[1]).exists():
            (root / step[2]).parent.mkdir(parents=True, exist_ok=True)
            os.replace(root / step[1], root / step[2])
    elif kind == "invalid":
        (root / step[1]).parent.mkdir(parents=True, exist_ok=True)
        (root / step[1]).write_text("schedules: [\n")
    else:
        key = KEYS.entry(step[1])
        if kind == "cut":  # the change feed's connection dies, then a hand edit that only a fingerprint finds
            for feed in [c for c in clients[0].client_list() if c["redir"] == c["id"]]:
                clients[0].client_kill_filter(_id=feed["id"])
        for client in clients:
            if kind == "beat" and client.exists(key):  # a run: meta and score, no publish (as beat does)
                client.hset(key, "meta", encode_meta(__import__("datetime").datetime(2024, 1, 1), 3))
                client.zadd(KEYS.schedule, {key: 1.7e9})
            elif kind == "operator":  # entry.save(): definition rewritten, published
                client.hset(key, "definition", '{"name": "x", "task": "hand"}')
                client.publish(KEYS.wake_channel, key)
            elif kind in ("hand", "cut"):  # redis-cli: unpublished, only a resync finds it
                client.hset(key, "definition", '{"task": "by hand"}')
            elif kind == "foreign":  # another owner's apply takes a name: publishes its owner name
                client.hset(KEYS.owner_index("other"), step[1], '{"digest":"x","protected":false}')
                client.sadd(KEYS.owners, "other")
                client.publish(KEYS.wake_channel, "other")
        return kind in ("hand", "cut")
    return False




def outcome(run) -> str:
    try:
        result = run()
    except ManifestErrors as exc:
        return "invalid: " + " | ".join(str(e) for e in exc.errors)
    except PlanRefused as exc:
        return "refused: " + " | ".join(exc.plan.errors)
    except StoreError as exc:
        return f"store error: {exc}"
    return "ok " + str(sorted((k, v) for k, v in result.plan.counts().items() if k != "no-op" and v))


@pytest.fixture(scope="module")
def cold_server(tmp_path_factory):
    """A second redis-server for the cold runs: pub/sub is server-wide, so a second db would not do."""
    server = RedisProcess(workdir=tmp_path_factory.mktemp("cold-redis"))
    server.dir.mkdir(parents=True, exist_ok=True)
    server.start()
    yield server
    server.cleanup()


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequence=st.lists(steps, min_size=1, max_size=12))
def test_incremental_equals_cold(redis_server, cold_server, redis_client, tmp_path_factory, sequence):
    root = tmp_path_factory.mktemp("manifests")
    (root / "a.yaml").write_text(manifest([("job-0", 1)], None))
    incremental_db, cold_db = redis_server.client(), cold_server.client()
    for client in (incremental_db, cold_db):
        client.flushdb()
    options = PlanOptions(allow_mass_delete=True)
    # far-off clocks: no periodic full resync, and every file identity is trusted (the racy window is tested
    # in tests/unit/reconciler/test_manifest_index.py), so only the incremental paths are exercised
    engine = Incremental([root], connect(redis_server.url), options, clock=lambda: 0.0, file_clock=lambda: 4e9,
                         apply_clock=lambda: 1.7e9)
    cold_target = connect(cold_server.url)
    try:
        engine.subscribe()
        for step in [("start",), *sequence]:
            resync = apply_step(step, root, [incremental_db, cold_db]) if step[0] != "start" else False
            if step[0] in ("operator", "foreign"):
                engine.drain(expect=1)  # the notification is on its way: let it arrive, as time would
            fast = outcome(lambda resync=resync: engine.reconcile(resync=resync, events=True))
            cold = outcome(lambda: reconcile(load([root]), cold_target, options, clock=lambda: 1.7e9))
            assert fast == cold, step
            assert every_key(incremental_db, streams_by_length=True) == every_key(
                cold_db, streams_by_length=True
            ), step
    finally:
        engine.close()
        for client in (incremental_db, cold_db):
            client.close()
