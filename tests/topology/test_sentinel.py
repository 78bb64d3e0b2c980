"""Sentinel: every URL form users write (celery-redbeat's and Celery's, #199), and a real failover mid-run."""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import nullcontext
from typing import Any

import pytest
import redis
from celery.schedules import schedule
from support.topologies import MASTER_NAME, SentinelSet
from topology import helpers
from topology.helpers import MANIFEST_NAMES, Recording, apply_twice, beat_app, pinned_now, redbeat_apply

from redbeat import RedBeatSchedulerEntry as Entry

pytestmark = pytest.mark.topology


def sentinel_forms(topology: SentinelSet) -> dict[str, tuple[str, dict[str, Any]]]:
    """URL and settings per spelling, all naming the same three Sentinels."""
    ports = [port for _, port in topology.addresses]
    return {
        # celery-redbeat: the URL's host is ignored, the sentinels option lists them
        "redis-sentinel+sentinels": (
            "redis-sentinel://localhost:26379/0",
            {"redbeat_redis_options": {"sentinels": topology.addresses, "service_name": MASTER_NAME}},
        ),
        # Celery's broker spelling; master_name inherited from broker_transport_options
        "sentinel;sentinel": (
            ";".join(f"sentinel://127.0.0.1:{port}/0" for port in ports),
            {"broker_transport_options": {"master_name": MASTER_NAME}},
        ),
        "redis+sentinel;redis+sentinel": (
            ";".join(f"redis+sentinel://127.0.0.1:{port}/0" for port in ports),
            {"redbeat_redis_options": {"master_name": MASTER_NAME}},
        ),
    }


@pytest.fixture(autouse=True)
def flushed(request) -> None:
    if "sentinel_set" in request.fixturenames:
        request.getfixturevalue("sentinel_set").master().client().flushall()


@pytest.mark.parametrize("form", ["redis-sentinel+sentinels", "sentinel;sentinel", "redis+sentinel;redis+sentinel"])
def test_beat_through_sentinel(sentinel_set, form):
    url, conf = sentinel_forms(sentinel_set)[form]
    # Inheriting broker_transport_options is deprecated (as in celery-redbeat 2.4.2), not refused.
    inherits = "broker_transport_options" in conf
    deprecation = pytest.warns(DeprecationWarning, match="redbeat_redis_options") if inherits else nullcontext()
    with deprecation, beat_app(url, now=pinned_now(), **conf) as app:
        Entry("via-sentinel", "tasks.sentinel", schedule(10), app=app).save()
        scheduler = Recording(app=app)
        assert scheduler.is_leader
        app.now.advance(10)
        scheduler.tick()
        assert scheduler.sent_names == ["via-sentinel"]
        scheduler.close()
    master = sentinel_set.master().client()
    assert master.zscore("redbeat::schedule", "redbeat:via-sentinel") == app.now.value.timestamp() + 10
    assert json.loads(master.hget("redbeat:via-sentinel", "meta"))["total_run_count"] == 1


def test_redbeat_apply_through_sentinel_urls(sentinel_set, manifests):
    first_port = sentinel_set.addresses[0][1]
    single = f"redis-sentinel://127.0.0.1:{first_port}/0?service_name={MASTER_NAME}"
    apply_twice(single, manifests)
    every = ";".join(f"sentinel://127.0.0.1:{p}" for _, p in sentinel_set.addresses) + f"?master_name={MASTER_NAME}"
    assert redbeat_apply(every, str(manifests), check=True).stdout.strip() == "No changes. 2 unchanged."
    master = sentinel_set.master().client()
    assert sorted(master.zrange("redbeat::schedule", 0, -1)) == [f"redbeat:{n}" for n in MANIFEST_NAMES]


def test_redbeat_apply_with_an_unknown_service_name_fails_clearly(sentinel_set, manifests):
    port = sentinel_set.addresses[0][1]
    result = redbeat_apply(f"redis-sentinel://127.0.0.1:{port}/0?service_name=nope", str(manifests))
    assert result.returncode == 1
    assert "No master found for 'nope'" in result.stderr
    assert sentinel_set.master().client().dbsize() == 0


@pytest.mark.parametrize(
    "how, replicas",
    [
        ("kill", 2),  # the master crashes; Sentinel promotes one replica, re-points the other
        ("sentinel-failover", 1),  # SENTINEL FAILOVER: the old master stays up until Sentinel demotes it
    ],
)
@pytest.mark.exclusive
def test_beat_keeps_ticking_through_a_failover_and_sends_no_slot_twice(tmp_path, caplog, how, replicas):
    """A real failover while beat runs in real time, with ``min-replicas-to-write 1`` as docs/topologies.md advises.

    Errors during the switch are logged and the tick goes on; beat finds the
    new master through Sentinel.  A replaced master that is still up refuses
    writes (NOREPLICAS: its only replica left it) instead of taking ones the
    new master would never see.  What Redis ends with is exactly what was
    sent: each entry's total_run_count equals its sends, and no slot was sent twice.
    """
    data_args = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")
    with SentinelSet(tmp_path / "sentinel", data_args=data_args, replicas=replicas) as topology:
        url = ";".join(f"sentinel://127.0.0.1:{p}" for _, p in topology.addresses)
        with caplog.at_level(logging.INFO, logger="celery.beat"), \
                beat_app(url, redbeat_redis_options={"master_name": MASTER_NAME}, redbeat_lock_timeout=10) as app:
            for name, every in (("half", 0.5), ("whole", 1.0)):
                Entry(name, f"tasks.{name}", schedule(every), app=app).save()
            scheduler = Recording(app=app)
            sent_at: list[float] = []
            switch: dict[str, float] = {}

            def fail_over() -> None:
                time.sleep(2.0)
                switch["started"] = time.monotonic()
                if how == "kill":
                    old = topology.master_port()
                    topology.master().kill()
                else:
                    old = topology.start_failover()
                switch["new_port"] = topology.wait_switched(old)
                switch["done"] = time.monotonic()

            thread = threading.Thread(target=fail_over, daemon=True)
            thread.start()
            deadline = time.monotonic() + 30

            def resumed() -> bool:
                return "done" in switch and sum(1 for t in sent_at if t > switch["done"]) >= 4

            while time.monotonic() < deadline and not resumed():
                before = len(scheduler.sent)
                interval = scheduler.tick()
                sent_at += [time.monotonic()] * (len(scheduler.sent) - before)
                time.sleep(min(interval, 0.2))
            thread.join(timeout=5)
            assert resumed(), f"beat did not resume after the failover; {switch}\n{caplog.text[-3000:]}"
            scheduler.close()

        slots = [(s.name, s.last_run_at) for s in scheduler.sent]
        assert len(slots) == len(set(slots)), f"a slot was sent twice: {slots}"
        assert sum(1 for t in sent_at if t < switch["started"]) >= 3
        new_master = topology.master()
        assert new_master.port == switch["new_port"]
        for name in ("half", "whole"):
            stored = json.loads(new_master.client().hget(f"redbeat:{name}", "meta"))["total_run_count"]
            assert stored == [s.name for s in scheduler.sent].count(name), name
        assert "Redis error during tick" in caplog.text  # the switch was seen, logged, and survived
        assert "Traceback" not in caplog.text


def test_a_master_that_refuses_writes_makes_the_client_ask_sentinel_again(tmp_path):
    """NOREPLICAS from the master is a connection error: the next command asks Sentinel where the master is.

    A master Sentinel has replaced but not yet demoted answers NOREPLICAS when
    min-replicas-to-write is set; treating that as "ask again" moves beat to the
    new master as soon as Sentinel names it, not when the old one is demoted.
    """
    from redbeat.client import build_client

    with SentinelSet(tmp_path / "sentinel", data_args=("--min-replicas-to-write", "1"), replicas=0) as topology:
        url = f"redis-sentinel://127.0.0.1:{topology.addresses[0][1]}/0?service_name={MASTER_NAME}"
        client = build_client(url, {}, forward_options=False)
        assert client.get("anything") is None  # reads are fine
        with pytest.raises(redis.ConnectionError, match=r"refuses writes \(NOREPLICAS.*asking Sentinel"):
            client.set("k", "v")
        pool = client.connection_pool
        assert all(c._sock is None for c in pool._available_connections)  # dropped: the next one reconnects
        client.close()


def test_the_watch_mode_through_sentinel_has_a_change_feed(sentinel_set, manifests):
    """The feed's RESP2 connection is found through the Sentinels like every other one."""
    first_port = sentinel_set.addresses[0][1]
    url = f"redis-sentinel://127.0.0.1:{first_port}/0?service_name={MASTER_NAME}"
    assert helpers.watch_finds_a_hand_edit(url, manifests, sentinel_set.master().client())
