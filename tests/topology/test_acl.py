"""ACL users with passwords that need URL quoting (celery-redbeat #202), and redbeat-apply's minimal rights."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from celery.schedules import schedule
from support.topologies import ACLRedis
from topology.helpers import MANIFEST_NAMES, Recording, apply_twice, beat_app, pinned_now, redbeat_apply

from redbeat import RedBeatSchedulerEntry as Entry

pytestmark = pytest.mark.topology

BEAT_PASSWORD = "p@ss:w/rd%"
DEPLOY_PASSWORD = "d3pl@y:/%?#&"

#: The smallest rights redbeat-apply needs (apply, prune, status, export): docs/topologies.md's ACL line.
APPLY_RULES = (
    "~redbeat:*", "&redbeat::wake", "-@all",
    "+evalsha", "+evalsha_ro", "+script|load",
    "+hgetall", "+hmget", "+hget", "+hexists", "+hlen", "+smembers", "+sismember", "+zscore", "+zrange",
    "+hset", "+hdel", "+del", "+zadd", "+zrem", "+sadd", "+srem", "+publish", "+xadd", "+xrange",
)


def secrets_in(text: str, password: str) -> list[str]:
    """The forms of ``password`` that appear in ``text`` (raw or percent-quoted)."""
    return [form for form in {password, quote(password, safe=""), quote(password)} if form in text]


@pytest.fixture(autouse=True)
def users(acl_redis: ACLRedis) -> None:
    admin = acl_redis.admin()
    admin.flushall()
    admin.script_flush()  # so redbeat-apply must load its script (SCRIPT LOAD is in the ACL line)
    acl_redis.add_user("beat", BEAT_PASSWORD, "~redbeat:*", "&redbeat::wake", "+@all")  # the docs/topologies.md line
    acl_redis.add_user("deployer", DEPLOY_PASSWORD, *APPLY_RULES)


def test_beat_as_an_acl_user_whose_quoted_password_is_in_the_url(acl_redis, caplog):
    url = acl_redis.url("beat", BEAT_PASSWORD)
    assert "p%40ss%3Aw%2Frd%25" in url
    with caplog.at_level(logging.DEBUG), beat_app(url, now=pinned_now()) as app:
        Entry("acl", "tasks.acl", schedule(10), app=app).save()
        scheduler = Recording(app=app)
        app.now.advance(10)
        scheduler.tick()
        assert scheduler.sent_names == ["acl"]
        banner = scheduler.info
        clients = acl_redis.admin().client_list()
        scheduler.close()
    assert any(c["user"] == "beat" for c in clients)
    assert "redis://beat:***@127.0.0.1" in banner  # the password itself never shows
    assert secrets_in(banner + caplog.text, BEAT_PASSWORD) == []


def test_beat_with_username_and_password_in_redbeat_redis_options(acl_redis):
    url = f"redis://127.0.0.1:{acl_redis.port}/0"
    with beat_app(url, now=pinned_now(), redbeat_redis_options={"username": "beat", "password": BEAT_PASSWORD}) as app:
        Entry("acl-options", "tasks.acl", schedule(10), app=app).save()
        scheduler = Recording(app=app)
        app.now.advance(10)
        scheduler.tick()
        assert scheduler.sent_names == ["acl-options"]
        scheduler.close()


def test_redbeat_apply_with_the_minimal_acl_applies_prunes_and_reads(acl_redis, manifests, tmp_path):
    url = acl_redis.url("deployer", DEPLOY_PASSWORD)
    first, second = apply_twice(url, manifests)
    admin = acl_redis.admin()
    assert sorted(admin.zrange("redbeat::schedule", 0, -1)) == [f"redbeat:{n}" for n in MANIFEST_NAMES]
    (manifests / "team.yaml").write_text("schedules:\n  - {name: ping, task: demo.tasks.ping, every: 30s}\n")
    pruned = redbeat_apply(url, str(manifests), check=True)
    assert "Plan: 0 to create, 0 to update, 1 to delete" in pruned.stdout
    assert admin.exists("redbeat:nightly") == 0
    status = redbeat_apply(url, command="status")
    exported = redbeat_apply(url, str(tmp_path / "exported"), command="export")
    assert (status.returncode, exported.returncode) == (0, 0), status.stderr + exported.stderr
    assert "ping" in status.stdout
    assert "demo.tasks.ping" in "".join(p.read_text() for p in (tmp_path / "exported").rglob("*.yaml"))
    output = "".join(r.stdout + r.stderr for r in (first, second, pruned, status, exported))
    assert secrets_in(output, DEPLOY_PASSWORD) == []


def test_adopt_and_take_over_with_the_minimal_acl(acl_redis, manifests):
    """--adopt and --take-over also take an entry out of beat's statics set (SREM)."""
    url = acl_redis.url("deployer", DEPLOY_PASSWORD)
    admin = acl_redis.admin()
    redbeat_apply(url, "--owner", "team-a", str(manifests), check=True)
    admin.sadd("redbeat::statics", "ping")
    taken = redbeat_apply(url, "--owner", "team-b", "--take-over", str(manifests), check=True)
    assert "adopt" in taken.stdout
    assert admin.hlen("redbeat::owner:team-a") == 0 and admin.smembers("redbeat::statics") == set()
    admin.hdel("redbeat::owner:team-b", "ping")
    redbeat_apply(url, "--owner", "team-b", "--adopt", str(manifests), check=True)
    assert "ping" in admin.hkeys("redbeat::owner:team-b")


def test_redbeat_apply_as_a_read_only_user_fails_clearly_and_writes_nothing(acl_redis, manifests):
    acl_redis.add_user(
        "reader", DEPLOY_PASSWORD, "~redbeat:*", "-@all", "+@read", "+evalsha", "+evalsha_ro", "+script|load"
    )
    result = redbeat_apply(acl_redis.url("reader", DEPLOY_PASSWORD), str(manifests))
    assert result.returncode == 1
    assert result.stderr.startswith("redbeat-apply: error: Redis at redis://reader:***@127.0.0.1:")
    assert "may not run every write" in result.stderr and "nothing was written" in result.stderr
    assert acl_redis.admin().dbsize() == 0
    assert secrets_in(result.stdout + result.stderr, DEPLOY_PASSWORD) == []


def test_redbeat_apply_missing_one_write_right_writes_nothing(acl_redis, manifests):
    acl_redis.add_user("no-publish", DEPLOY_PASSWORD, *[r for r in APPLY_RULES if r != "+publish"])
    result = redbeat_apply(acl_redis.url("no-publish", DEPLOY_PASSWORD), str(manifests))
    assert result.returncode == 1
    assert acl_redis.admin().dbsize() == 0


def test_a_wrong_password_is_refused_and_never_printed(acl_redis, manifests):
    result = redbeat_apply(acl_redis.url("deployer", "wr@ng:/%"), str(manifests))
    assert result.returncode == 1
    assert "invalid username-password pair" in result.stderr
    assert secrets_in(result.stdout + result.stderr, "wr@ng:/%") == []
    assert acl_redis.admin().dbsize() == 0


def test_a_user_without_the_wake_channel_still_saves_and_deletes(acl_redis, caplog):
    """The wake channel is a hint: writing an entry or deleting it must not fail after the write happened."""
    import redis

    from redbeat.keys import KeySpace
    from redbeat.store import EntryStore

    acl_redis.add_user("quiet", BEAT_PASSWORD, "~redbeat:*", "+@all")  # no &redbeat::wake
    client = redis.Redis.from_url(acl_redis.url("quiet", BEAT_PASSWORD))
    keys = KeySpace()
    store = EntryStore(client, keys)
    with caplog.at_level(logging.WARNING, logger="redbeat.store"):
        store.save(keys.entry("nightly"), definition="{}", ext=None, meta_if_absent="", score_for_meta=lambda m: 1.0)
        assert client.hexists(keys.entry("nightly"), "definition")
        store.delete(keys.entry("nightly"))
    assert not client.exists(keys.entry("nightly"))
    warned = [r.getMessage() for r in caplog.records if "could not publish" in r.getMessage()]
    assert len(warned) == 2 and all("redbeat::wake" in w and BEAT_PASSWORD not in w for w in warned)
    client.close()


#: docs/topologies.md: what the watch mode adds to APPLY_RULES (the wake channel, and Redis's change reports).
WATCH_RULES = ("+subscribe", "+ping", "+client|id", "+client|tracking", "&__redis__:invalidate")


@pytest.mark.parametrize("extra", [WATCH_RULES, ("+subscribe",)], ids=["documented", "subscribe-only"])
def test_the_watch_mode_with_the_documented_acl_gets_a_change_feed_and_without_finds_hand_edits(
    acl_redis, manifests, extra
):
    """With the documented line a quiet resync reads nothing; with `+subscribe` alone every resync compares
    fingerprints. Either way a hand edit nobody published is found."""
    from reconciler.sync.incremental import Incremental
    from reconciler.sync.reconcile import PlanOptions, connect, load

    acl_redis.add_user("watcher", DEPLOY_PASSWORD, *APPLY_RULES, *extra)
    incremental = Incremental([], connect(acl_redis.url("watcher", DEPLOY_PASSWORD)), PlanOptions())
    try:
        incremental.held.replace_desired(load([manifests]))
        incremental.subscribe()
        assert incremental.tracking is (extra == WATCH_RULES)
        incremental.reconcile()
        assert incremental.held.resync().tracked is incremental.tracking
        acl_redis.admin().hset(f"redbeat:{MANIFEST_NAMES[0]}", "definition", '{"task": "by hand"}')
        incremental.drain(timeout=0.0)
        report = incremental.held.resync()
        assert report.differing == 1 and report.tracked is incremental.tracking
        assert [c.name for c in incremental.reconcile().plan.changes] == [MANIFEST_NAMES[0]]
    finally:
        incremental.close()
