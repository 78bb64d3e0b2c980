"""The watch loop in-process against a real redis-server: real load, plan and apply; fake clock and events."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from support.redis_proc import commandstats, write_calls

from reconciler.sidecar import watch
from reconciler.sidecar.health import Status
from reconciler.sidecar.metrics import WatchMetrics
from reconciler.sync.reconcile import PlanOptions, connect, load, reconcile
from redbeat.keys import KeySpace

JOBS = "schedules:\n  - {name: a, task: t.a, every: 30s}\n  - {name: b, task: t.b, cron: '0 3 * * *'}\n"


class FakeTime:
    """wait() advances the clock instead of sleeping; the loop stops at ``until``."""

    def __init__(self, until: float) -> None:
        self.now, self.until, self.stop = 0.0, until, threading.Event()

    def wait(self, timeout: float) -> bool:
        self.now += timeout
        if self.now >= self.until:
            self.stop.set()
        return False

    def interrupt(self) -> None:
        self.stop.set()


def run_loop(directory: Path, url: str, until: float) -> watch.Applier:
    fake = FakeTime(until)
    applier = watch.Applier([directory], connect(url), PlanOptions(), WatchMetrics(), Status(clock=lambda: fake.now),
                            load, reconcile)
    watch.loop(applier, fake, fake.stop, resync_interval=60, clock=lambda: fake.now, random=lambda: 0.5)
    return applier


def test_resyncs_of_an_unchanged_directory_write_nothing(tmp_path, redis_url, redis_client):
    (tmp_path / "jobs.yaml").write_text(JOBS)
    run_loop(tmp_path, redis_url, until=1)
    assert sorted(redis_client.zrange("redbeat::schedule", 0, -1)) == ["redbeat:a", "redbeat:b"]
    redis_client.config_resetstat()
    applier = run_loop(tmp_path, redis_url, until=200)  # start + resyncs at 60, 120, 180
    stats = commandstats(redis_client)
    assert write_calls(stats) == {}
    assert stats["hgetall"] == 4  # each one read the owner index
    assert applier.status.ready() == (True, "ok")


def test_a_redis_that_refuses_connections_is_an_error_with_back_off_not_a_crash(tmp_path):
    from support.redis_proc import free_port

    (tmp_path / "jobs.yaml").write_text(JOBS)
    url = f"redis://127.0.0.1:{free_port()}/0"
    applier = run_loop(tmp_path, url, until=4)
    ready, reason = applier.status.ready()
    assert not ready and reason.startswith(f"apply failed: Redis at {url} failed while reading the current state")
    text = applier.metrics.render().decode()
    assert 'redbeat_apply_applies_total{result="error"} 4.0' in text  # at 0, 0.5, 1.5, 3.5
    assert "redbeat_apply_last_success_timestamp_seconds 0.0" in text


def test_drift_is_corrected_by_the_resync_of_the_last_good_state(tmp_path, redis_url, redis_client):
    (tmp_path / "jobs.yaml").write_text(JOBS)
    run_loop(tmp_path, redis_url, until=1)
    redis_client.hset("redbeat:a", "definition", redis_client.hget("redbeat:a", "definition").replace("30.0", "1.0"))
    (tmp_path / "jobs.yaml").write_text("schedules: [")  # invalid from now on
    applier = run_loop(tmp_path, redis_url, until=1)
    assert applier.desired is None and '"every": 1.0' in redis_client.hget(
        "redbeat:a", "definition"
    )  # nothing valid yet
    (tmp_path / "jobs.yaml").write_text(JOBS)
    applier = run_loop(tmp_path, redis_url, until=1)
    assert '"every": 30.0' in redis_client.hget("redbeat:a", "definition")
    assert "redbeat_apply_drift_corrections_total 1.0" in applier.metrics.render().decode()
    assert redis_client.hlen(KeySpace().owner_index("default")) == 2


def run_incremental(directory: Path, url: str, until: float, edits: dict[float, str] | None = None) -> watch.Applier:
    """The loop as ``--watch`` runs it: the incremental engine; ``edits`` rewrite jobs.yaml at those times."""
    from reconciler.sync.incremental import Incremental

    fake = FakeTime(until)
    pending = dict(edits or {})

    def wait(timeout: float) -> bool:
        due = [at for at in pending if at <= fake.now + timeout]
        if due:
            fake.now = max(fake.now, min(due))
            (directory / "jobs.yaml").write_text(pending.pop(min(due)))
            return True
        return FakeTime.wait(fake, timeout)

    fake.wait = wait  # type: ignore[method-assign]
    target = connect(url)
    engine = Incremental([directory], target, PlanOptions(), clock=lambda: fake.now, file_clock=lambda: 4e9)
    applier = watch.Applier([directory], target, PlanOptions(), WatchMetrics(), Status(clock=lambda: fake.now),
                            load, reconcile, incremental=engine)
    engine.subscribe()
    try:
        watch.loop(applier, fake, fake.stop, resync_interval=60, clock=lambda: fake.now, random=lambda: 0.5)
    finally:
        engine.close()
    return applier


@pytest.mark.parametrize("feed", [True, False], ids=["change-feed", "fingerprints"])
def test_incremental_resyncs_read_only_digests_or_nothing_and_still_undo_hand_edits(tmp_path, redis_url, redis_client,
                                                                                      monkeypatch, feed):
    if not feed:  # as on Redis Cluster or under an ACL without tracking: the wake channel alone
        from reconciler.sync import changefeed, incremental

        monkeypatch.setattr(incremental, "open_feed", lambda client, url, keys: changefeed._wake_feed(client, keys))
    (tmp_path / "jobs.yaml").write_text(JOBS)
    run_incremental(tmp_path, redis_url, until=1)
    redis_client.config_resetstat()
    applier = run_incremental(tmp_path, redis_url, until=200)  # start + resyncs at 60, 120, 180
    stats = commandstats(redis_client)
    if feed:
        # no write and no script: Redis reported no change, so each resync was a PING on the feed and an HLEN
        assert write_calls(stats) == {} and "evalsha" not in stats and stats["ping"] >= 4
    else:
        # no write: only the read-only fingerprint script ran, at the 3 resyncs (and at most once more if the
        # subscription's confirmation came late, which asks for one resync to be safe)
        assert set(write_calls(stats)) == {"evalsha"} and 3 <= stats["evalsha"] <= 4
    assert stats["hgetall"] == 1  # only the start read the owner index
    assert applier.status.ready() == (True, "ok")
    redis_client.hset("redbeat:a", "definition", redis_client.hget("redbeat:a", "definition").replace("30.0", "1.0"))
    edited = JOBS.replace("30s", "45s")
    applier = run_incremental(tmp_path, redis_url, until=200, edits={10: edited})
    assert '"every": 45.0' in redis_client.hget("redbeat:a", "definition")
