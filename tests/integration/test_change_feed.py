"""The change feed against a real redis-server: a quiet resync reads nothing, and nothing is ever missed.

Every test changes Redis behind the watch mode's back (a raw write by another
client, nobody publishing), then checks that the next resync finds it: through
the feed when it still vouches for everything, by comparing every fingerprint
when it cannot (a killed connection, FLUSHALL, a change it cannot place).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from test_incremental_property import desired_of  # noqa: I001 - the tests directory is on sys.path

from reconciler.sync.changefeed import WakeFeed, open_feed
from reconciler.sync.incremental import Incremental
from reconciler.sync.plan import plan
from reconciler.sync.reconcile import PlanOptions, connect, reconcile
from reconciler.sync.state import read_state
from redbeat.codec import encode_meta
from redbeat.keys import KeySpace

KEYS = KeySpace()
SIZE = 1200


@pytest.fixture
def watching(redis_url):
    """An Incremental holding SIZE applied entries, its feed open, its first full read done."""
    target = connect(redis_url)
    desired = desired_of({f"e{i:04d}": i + 1 for i in range(SIZE)})
    reconcile(desired, target)
    incremental = Incremental([], target, PlanOptions())
    incremental.held.replace_desired(desired)
    incremental.subscribe()
    assert incremental.tracking
    assert not incremental.reconcile(resync=True).plan.has_changes
    assert incremental.held.tracked
    yield incremental
    incremental.close()


def equals_a_full_read(incremental: Incremental) -> None:
    held = incremental.held
    incremental.drain(timeout=0.0)
    incremental_plan = held.plan(resync=True)
    desired = held.desired
    full = plan(desired, read_state(connect(held.target.url).client, KEYS, "default", desired))
    assert incremental_plan.changes == tuple(c for c in full.changes if c.op.value != "no-op")


def test_a_quiet_resync_compares_nothing_and_reads_a_few_bytes(watching, redis_client):
    before = redis_client.info("stats")["total_net_output_bytes"]
    report = watching.held.resync()
    sent = redis_client.info("stats")["total_net_output_bytes"] - before
    assert report.tracked and (report.groups, report.names) == (0, 0)
    assert sent < 1500  # CLIENT TRACKINGINFO, the PING's reply, HLEN, and this INFO reply itself


def test_a_hand_edit_nobody_publishes_is_compared_and_read(watching, redis_client):
    redis_client.hset("redbeat:e0007", "definition", "{}")
    watching.drain(timeout=0.0)
    report = watching.held.resync()
    assert report.tracked and (report.groups, report.differing) == (1, 1)
    assert [(c.op.value, c.name) for c in watching.held.plan().changes] == [("update", "e0007")]


def beat_runs(redis_client, when) -> None:
    """Every third entry ran at ``when``: its run state and score as beat writes them, and beat's heartbeat."""
    meta = encode_meta(when)
    with redis_client.pipeline() as pipe:
        for i in range(0, SIZE, 3):
            pipe.hset(f"redbeat:e{i:04d}", "meta", meta)
            pipe.zadd(KEYS.schedule, {f"redbeat:e{i:04d}": when.timestamp() + i})
        pipe.set(KEYS.heartbeat, json.dumps({"at": when.timestamp()}))
        pipe.execute()


def test_beats_runs_are_compared_but_read_only_once(watching, redis_client):
    beat_runs(redis_client, datetime(2026, 12, 3, 4, 5, 6, tzinfo=UTC))
    first = watching.held.resync()  # a first run state: the plan reads whether meta is readable
    beat_runs(redis_client, datetime(2026, 12, 3, 4, 6, 6, tzinfo=UTC))
    report = watching.held.resync()
    assert first.tracked and first.groups == 2 and first.names == 400
    assert report.tracked and report.groups == 2 and report.differing == 0 and not report.full


def test_the_watch_modes_own_apply_is_compared_by_entry_only(watching):
    held = watching.held
    held.set_desired(["e0001", "new"], desired_of({"e0001": 999, "new": 5}))
    outcome = watching.reconcile()
    assert outcome.result is not None and outcome.result.commands_written > 0
    watching.drain(timeout=0.5)
    assert held.touched == {"e0001", "new"} and not held.compare_all  # its own owner index is not a reason
    report = held.resync()
    assert report.tracked and (report.groups, report.differing) == (1, 0)


def test_a_change_to_an_owner_index_compares_everything(watching, redis_client):
    redis_client.hdel(KEYS.owner_index("default"), "e1199")
    watching.drain(timeout=0.0)
    report = watching.held.resync()
    assert not report.tracked and report.groups == SIZE // 256 + 1 and report.differing == 1
    assert watching.held.tracked  # and the feed vouches again from there
    equals_a_full_read(watching)


def test_a_lost_connection_falls_back_to_fingerprints_and_misses_nothing(watching, redis_client):
    [feed] = [c for c in redis_client.client_list() if c["redir"] == c["id"]]  # the feed tracks for itself
    redis_client.client_kill_filter(_id=feed["id"])
    redis_client.hset("redbeat:e0100", "definition", "{}")  # not reported: the feed is gone
    report = watching.held.resync()
    assert not report.tracked and report.differing == 1
    assert not watching.tracking  # closed; the next drain opens a new feed
    watching.drain(timeout=0.0)
    assert watching.tracking
    equals_a_full_read(watching)


def test_a_feed_that_stops_answering_is_not_trusted(watching, redis_client):
    redis_client.client_pause(1500)  # Redis answers no client for 1.5 s: the PING times out
    feed = watching._feed
    assert feed is not None and not feed.confirm(timeout=0.3)
    assert not watching.held.resync().tracked


def test_flushall_makes_the_next_plan_read_everything(watching, redis_client):
    redis_client.flushall()
    watching.drain(timeout=0.5)  # Redis 7.0 sends RESP2 clients a RESP3 null here: the feed breaks
    assert watching.held.stale or watching.held.resync_wanted
    changes = watching.reconcile().plan.changes
    assert len(changes) == SIZE and {c.op.value for c in changes} == {"create"}


def test_without_the_right_to_track_the_feed_carries_the_wake_channel_only(redis_server, redis_client):
    redis_client.acl_setuser("nocache", enabled=True, passwords=["+pw"], keys=["redbeat:*"], channels=["*"],
                             commands=["+@all", "-client"])
    url = redis_server.url.replace("redis://", "redis://nocache:pw@")
    target = connect(url)
    feed = open_feed(target.client, url, KEYS)
    try:
        assert isinstance(feed, WakeFeed) and not feed.confirm()
        redis_client.publish(KEYS.wake_channel, "redbeat:x")
        notice = feed.poll(2.0)
        assert notice is not None and getattr(notice, "text", None) == "redbeat:x"
    finally:
        feed.close()
        redis_client.acl_deluser("nocache")
