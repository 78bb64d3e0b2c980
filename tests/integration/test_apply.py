"""apply against a real redis-server: minimal writes, meta kept, atomic, fenced by fingerprints."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import pytest
from support.redis_proc import RedisProcess, commandstats, write_calls

from reconciler.core.errors import Location, PlanRefused, StalePlanError
from reconciler.core.model import DesiredEntry
from reconciler.schedules.convert import manifest_to_entry
from reconciler.sync.apply import apply_plan
from reconciler.sync.plan import Op
from reconciler.sync.reconcile import PlanOptions, connect, make_plan, reconcile

HERE = Location(Path("x.yaml"), 1, 1, "")
NOW = 1_800_000_000.0


def entry(name: str, **manifest) -> DesiredEntry:
    definition, ext = manifest_to_entry({"name": name, "task": "app.tasks.t", **({"every": 60} | manifest)})
    return DesiredEntry(name, definition, ext, bool(manifest.pop("protected", False)), HERE)


def entries(*items: DesiredEntry) -> dict[str, DesiredEntry]:
    return {e.name: e for e in items}


def clock() -> float:
    return NOW


@pytest.fixture
def target(redis_url):
    return connect(redis_url)


def test_first_apply_writes_definition_score_and_ownership_but_no_meta(target, redis_client):
    every = entry("every-minute")
    definition, ext = manifest_to_entry(
        {"name": "nightly", "task": "app.tasks.t", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}
    )
    nightly = DesiredEntry("nightly", definition, ext, False, HERE)
    outcome = reconcile(entries(every, nightly), target, clock=clock)
    assert [c.op for c in outcome.plan.changes] == [Op.CREATE, Op.CREATE]
    stored = redis_client.hgetall("redbeat:every-minute")
    assert stored == {"definition": json.dumps(every.definition)}
    assert redis_client.hgetall("redbeat:nightly") == {
        "definition": json.dumps(nightly.definition),
        "ext": '{"timezone":"Europe/Berlin"}',
    }
    # never-run interval: first run one interval after creation; calendar: beat files it at once
    assert redis_client.zscore("redbeat::schedule", "redbeat:every-minute") == NOW + 60
    assert redis_client.zscore("redbeat::schedule", "redbeat:nightly") == NOW
    records = redis_client.hgetall("redbeat::owner:default")
    assert sorted(records) == ["every-minute", "nightly"]
    assert json.loads(records["nightly"])["protected"] is False
    assert redis_client.smembers("redbeat::owners") == {"default"}


def test_unchanged_directory_costs_zero_writes(target, redis_client):
    desired = entries(*(entry(f"e{i}", every=i + 1) for i in range(200)))
    reconcile(desired, target, clock=clock)
    redis_client.config_resetstat()
    outcome = reconcile(desired, target, clock=clock)
    assert outcome.result is None and not outcome.plan.has_changes
    assert write_calls(commandstats(redis_client)) == {}


def test_update_keeps_meta_and_rescores_only_when_the_schedule_changes(target, redis_client):
    reconcile(entries(entry("a", kwargs={"x": 1})), target, clock=clock)
    meta = '{"last_run_at": null, "total_run_count": 7}'
    redis_client.hset("redbeat:a", "meta", meta)
    redis_client.zadd("redbeat::schedule", {"redbeat:a": 123.0})
    reconcile(entries(entry("a", kwargs={"x": 2})), target, clock=lambda: NOW + 5)
    assert redis_client.hget("redbeat:a", "meta") == meta
    assert redis_client.zscore("redbeat::schedule", "redbeat:a") == 123.0
    assert json.loads(redis_client.hget("redbeat:a", "definition"))["kwargs"] == {"x": 2}
    reconcile(entries(entry("a", kwargs={"x": 2}, every=30)), target, clock=lambda: NOW + 9)
    assert redis_client.hget("redbeat:a", "meta") == meta
    # it has run: score "now", and beat files it under its exact due time from meta
    assert redis_client.zscore("redbeat::schedule", "redbeat:a") == NOW + 9


def test_disable_leaves_the_due_index_and_enable_returns(target, redis_client):
    reconcile(entries(entry("a")), target, clock=clock)
    reconcile(entries(entry("a", enabled=False)), target, clock=clock)
    assert redis_client.zscore("redbeat::schedule", "redbeat:a") == -1
    reconcile(entries(entry("a")), target, clock=lambda: NOW + 1)
    assert redis_client.zscore("redbeat::schedule", "redbeat:a") == NOW + 61


def test_delete_removes_hash_member_and_record_only_for_the_owner(target, redis_client, redis_url):
    reconcile(entries(entry("keep"), entry("drop")), target, clock=clock)
    other = connect(redis_url, owner="other-team")
    reconcile(entries(entry("theirs")), other, clock=clock)
    reconcile(entries(entry("keep")), target, clock=clock)
    assert not redis_client.exists("redbeat:drop")
    assert redis_client.zscore("redbeat::schedule", "redbeat:drop") is None
    assert redis_client.hkeys("redbeat::owner:default") == ["keep"]
    assert redis_client.exists("redbeat:theirs")


def test_conflict_writes_nothing_and_names_the_remedy(target, redis_client):
    redis_client.hset("redbeat:legacy", "definition", json.dumps(entry("legacy").definition))
    redis_client.config_resetstat()
    with pytest.raises(PlanRefused) as refused:
        reconcile(entries(entry("legacy"), entry("fresh")), target, clock=clock)
    assert "legacy: exists in Redis, owned by nobody" in str(refused.value)
    assert "--adopt" in str(refused.value)
    assert write_calls(commandstats(redis_client)) == {}
    assert not redis_client.exists("redbeat:fresh")


def test_adopt_keeps_run_state(target, redis_client):
    redis_client.hset(
        "redbeat:legacy",
        mapping={"definition": json.dumps(entry("legacy").definition), "meta": '{"total_run_count": 3}'},
    )
    reconcile(entries(entry("legacy", every=120)), target, PlanOptions(adopt=True), clock=clock)
    assert redis_client.hget("redbeat:legacy", "meta") == '{"total_run_count": 3}'
    assert json.loads(redis_client.hget("redbeat:legacy", "definition"))["schedule"]["every"] == 120.0
    assert "legacy" in redis_client.hkeys("redbeat::owner:default")


def test_taking_over_a_beat_schedule_entry_takes_it_out_of_beats_statics(target, redis_client):
    redis_client.hset("redbeat:static", "definition", json.dumps(entry("static").definition))
    redis_client.sadd("redbeat::statics", "static", "other")
    with pytest.raises(PlanRefused, match="owned by beat_schedule"):
        reconcile(entries(entry("static")), target, clock=clock)
    with pytest.raises(PlanRefused, match="--adopt takes only unowned entries"):
        reconcile(entries(entry("static")), target, PlanOptions(adopt=True), clock=clock)
    reconcile(entries(entry("static")), target, PlanOptions(take_over=True), clock=clock)
    assert redis_client.smembers("redbeat::statics") == {"other"}
    assert "static" in redis_client.hkeys("redbeat::owner:default")


def test_adopt_never_takes_another_owners_entry(redis_url, redis_client):
    team_a, team_b = connect(redis_url, owner="team-a"), connect(redis_url, owner="team-b")
    reconcile(entries(entry("e1")), team_a, clock=clock)
    redis_client.config_resetstat()
    with pytest.raises(PlanRefused, match="owned by owner 'team-a'; --adopt takes only unowned entries"):
        reconcile(entries(entry("e1", every=120)), team_b, PlanOptions(adopt=True), clock=clock)
    assert write_calls(commandstats(redis_client)) == {}
    assert redis_client.hkeys("redbeat::owner:team-a") == ["e1"]


def test_take_over_moves_the_entry_out_of_the_old_owners_index(redis_url, redis_client):
    team_a, team_b = connect(redis_url, owner="team-a"), connect(redis_url, owner="team-b")
    reconcile(entries(entry("e1"), entry("a2")), team_a, clock=clock)
    reconcile(entries(entry("e1", every=120)), team_b, PlanOptions(take_over=True), clock=clock)
    assert redis_client.hkeys("redbeat::owner:team-a") == ["a2"]
    assert redis_client.hkeys("redbeat::owner:team-b") == ["e1"]
    # team-a's next apply without e1 no longer sees it as its own: nothing is pruned from under team-b
    outcome = reconcile(entries(entry("a2")), team_a, clock=clock)
    assert outcome.plan.has_changes is False
    assert json.loads(redis_client.hget("redbeat:e1", "definition"))["schedule"]["every"] == 120.0


def test_take_over_also_clears_an_entry_two_owners_hold(redis_url, redis_client):
    """Older releases let --adopt take another owner's entry, leaving it in two indexes."""
    team_a, team_b = connect(redis_url, owner="team-a"), connect(redis_url, owner="team-b")
    reconcile(entries(entry("e1")), team_a, clock=clock)
    redis_client.hset("redbeat::owner:team-c", "e1", redis_client.hget("redbeat::owner:team-a", "e1"))
    redis_client.sadd("redbeat::owners", "team-c")
    reconcile(entries(entry("e1")), team_b, PlanOptions(take_over=True), clock=clock)
    assert [redis_client.hkeys(f"redbeat::owner:{o}") for o in ("team-a", "team-b", "team-c")] == [[], ["e1"], []]


@pytest.mark.parametrize("claim", ["owner", "static"])
def test_adopt_planned_on_an_unowned_entry_is_stale_once_someone_claims_it(target, redis_client, redis_url, claim):
    redis_client.hset("redbeat:legacy", "definition", json.dumps(entry("legacy").definition))
    planned = make_plan(entries(entry("legacy")), target, PlanOptions(adopt=True))
    assert [c.op for c in planned.changes] == [Op.ADOPT]
    if claim == "owner":  # the same definition, so only the ownership check can notice
        redis_client.hset("redbeat::owner:team-a", "legacy", '{"digest":"x","protected":false}')
        redis_client.sadd("redbeat::owners", "team-a")
    else:
        redis_client.sadd("redbeat::statics", "legacy")
    with pytest.raises(StalePlanError, match="legacy: its owner changed"):
        apply_plan(planned, target.client, target.keys, clock=clock)
    assert "legacy" not in redis_client.hkeys("redbeat::owner:default")


def test_take_over_is_stale_when_the_old_owner_changed_its_record(redis_url, redis_client):
    team_a, team_b = connect(redis_url, owner="team-a"), connect(redis_url, owner="team-b")
    reconcile(entries(entry("e1")), team_a, clock=clock)
    planned = make_plan(entries(entry("e1")), team_b, PlanOptions(take_over=True))
    redis_client.hset("redbeat::owner:team-a", "e1", '{"digest":"other","protected":true}')
    with pytest.raises(StalePlanError):
        apply_plan(planned, team_b.client, team_b.keys, clock=clock)
    assert redis_client.hkeys("redbeat::owner:team-b") == []


def test_owned_entry_with_unreadable_run_state_is_reset(target, redis_client):
    reconcile(entries(entry("a")), target, clock=clock)
    redis_client.hset("redbeat:a", "meta", '{"last_run_at": "yesterday", "total_run_count": "x"}')
    redis_client.zadd("redbeat::schedule", {"redbeat:a": NOW + 3600})
    outcome = reconcile(entries(entry("a")), target, clock=clock)
    assert [(c.op, [d.path for d in c.drift]) for c in outcome.plan.changes] == [(Op.UPDATE, ["(run state)"])]
    assert redis_client.hget("redbeat:a", "meta") is None
    assert redis_client.zscore("redbeat::schedule", "redbeat:a") == NOW + 60  # never run: one interval on
    assert not make_plan(entries(entry("a")), target, PlanOptions()).has_changes


def test_stale_plan_is_refused_whole(target, redis_client):
    reconcile(entries(entry("a"), entry("b")), target, clock=clock)
    desired = entries(entry("a", every=5), entry("b", every=6), entry("c"))
    stale = make_plan(desired, target, PlanOptions())
    redis_client.hset("redbeat:b", "definition", json.dumps(entry("b", every=7).definition))
    before = {k: redis_client.hgetall(k) for k in ("redbeat:a", "redbeat:b")}
    with pytest.raises(StalePlanError, match="b: its entry changed"):
        apply_plan(stale, target.client, target.keys, clock=clock)
    assert {k: redis_client.hgetall(k) for k in ("redbeat:a", "redbeat:b")} == before
    assert not redis_client.exists("redbeat:c")
    # the direct form re-plans and lands
    outcome = reconcile(desired, target, clock=clock)
    assert outcome.result is not None
    assert json.loads(redis_client.hget("redbeat:b", "definition"))["schedule"]["every"] == 6.0


def test_apply_wakes_a_sleeping_beat(target, redis_client):
    pubsub = redis_client.pubsub()
    pubsub.subscribe("redbeat::wake")
    pubsub.get_message(timeout=1)
    reconcile(entries(entry("a")), target, clock=clock)
    message = pubsub.get_message(timeout=2)
    assert message is not None and message["type"] == "message"
    pubsub.close()


def test_concurrent_applies_never_interleave(target, redis_url, redis_client):
    names = [f"e{i}" for i in range(1500)]
    reconcile(entries(*(entry(n) for n in names)), target, clock=clock)
    variants = [entries(*(entry(n, kwargs={"v": v}) for n in names)) for v in (1, 2)]
    errors: list[BaseException] = []

    def run(desired):
        try:
            for _ in range(3):
                reconcile(desired, connect(redis_url), clock=clock)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in variants]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    values = {json.loads(redis_client.hget(f"redbeat:{n}", "definition"))["kwargs"]["v"] for n in names}
    assert len(values) == 1
    # the records describe exactly what is stored: a follow-up plan of the winner is a no-op
    winner = variants[values.pop() - 1]
    assert not make_plan(winner, target, PlanOptions()).has_changes


def test_beat_at_full_speed_during_a_large_apply_loses_no_meta(redis_url, redis_client):
    """A real scheduler ticking every-0.1s entries while apply rewrites them all: every recorded run survives."""
    from celery import Celery

    from redbeat import RedBeatScheduler

    names = [f"fast{i}" for i in range(300)]
    target = connect(redis_url)
    reconcile(entries(*(entry(n, every=0.1) for n in names)), target, clock=time.time)
    app = Celery(broker="memory://", set_as_current=False)
    app.conf.redbeat_redis_url = redis_url
    app.conf.redbeat_lock_key = None
    sent: dict[str, int] = {}

    class Recording(RedBeatScheduler):
        def apply_entry(self, entry, producer=None):
            sent[entry.name] = sent.get(entry.name, 0) + 1

    scheduler = Recording(app=app)
    stop = threading.Event()

    def beat():
        while not stop.is_set():
            scheduler.tick()

    thread = threading.Thread(target=beat)
    thread.start()
    try:
        time.sleep(0.5)
        for round_ in range(5):
            reconcile(entries(*(entry(n, every=0.1, kwargs={"round": round_}) for n in names)), target, clock=time.time)
        time.sleep(1.5)  # applies file entries at the next whole second: let beat run them after the last one
    finally:
        stop.set()
        thread.join(30)
    scheduler.close()
    assert sum(sent.values()) > len(names)
    for name in names:
        meta = json.loads(redis_client.hget(f"redbeat:{name}", "meta") or "{}")
        assert meta.get("total_run_count", 0) == sent.get(name, 0), name


@pytest.mark.slow
def test_redis_killed_mid_apply_leaves_old_or_new_never_a_mix(tmp_path):
    server = RedisProcess("--appendonly", "yes", "--appendfsync", "always", workdir=tmp_path / "r")
    server.dir.mkdir(parents=True)
    server.start()
    try:
        target = connect(server.url)
        old = [f"old{i}" for i in range(1000)]
        reconcile(entries(*(entry(n, kwargs={"v": 1}) for n in old)), target, clock=clock)
        desired = entries(*(entry(n, kwargs={"v": 2}) for n in old), *(entry(f"new{i}") for i in range(40_000)))
        big = make_plan(desired, target, PlanOptions())
        thread = threading.Thread(
            target=lambda: _swallow(lambda: apply_plan(big, target.client, target.keys, clock=clock))
        )
        thread.start()
        time.sleep(0.3)  # the script takes seconds with appendfsync always: kill inside it
        server.kill()
        thread.join(60)
        server.start()
        client = server.client()
        versions = {json.loads(client.hget(f"redbeat:{n}", "definition"))["kwargs"]["v"] for n in old}
        state = (client.zcard("redbeat::schedule"), client.hlen("redbeat::owner:default"), versions)
        assert state in ((1000, 1000, {1}), (41_000, 41_000, {2}))
    finally:
        server.cleanup()


def _swallow(fn):
    with contextlib.suppress(Exception):
        fn()


def test_scores_are_whole_seconds_so_entries_applied_in_one_second_share_one(target, redis_client):
    """celery-redbeat's tick fetches scores up to the whole second: a fraction would split a batch after a rollback."""
    reconcile(entries(entry("a"), entry("b")), target, clock=lambda: NOW + 0.75)
    scores = {redis_client.zscore("redbeat::schedule", f"redbeat:{name}") for name in "ab"}
    assert scores == {NOW + 1 + 60}  # rounded up: never filed before the apply (a re-enable runs no past slot)
