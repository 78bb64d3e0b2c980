"""A real 3-master Redis Cluster: a hash-tagged prefix keeps every redbeat key in one slot (celery-redbeat #296)."""

from __future__ import annotations

import json
import subprocess

import pytest
from celery.schedules import schedule
from redis.exceptions import RedisClusterException
from support.celery_redbeat_venv import celery_redbeat_python, subprocess_env
from support.topologies import RedisClusterSet
from topology import helpers
from topology.helpers import MANIFEST_NAMES, Recording, apply_twice, beat_app, pinned_now, redbeat_apply

from redbeat import RedBeatScheduler
from redbeat import RedBeatSchedulerEntry as Entry
from redbeat.client import ClusterKeyPrefixError, check_cluster_prefix, cluster_hash_tag

pytestmark = pytest.mark.topology

TAGGED = "{redbeat}:"


@pytest.fixture(autouse=True)
def flushed(redis_cluster: RedisClusterSet) -> None:
    for node in redis_cluster.nodes:
        node.client().flushall()


def cluster_keys(cluster: RedisClusterSet) -> dict[int, list[str]]:
    """Every key in the cluster, by the port of the node that holds it."""
    return {node.port: sorted(node.client().keys("*")) for node in cluster.nodes}


@pytest.mark.parametrize("form", ["redis-cluster://", "cluster option"])
def test_beat_on_a_cluster_with_a_hash_tagged_prefix(redis_cluster, form):
    if form == "redis-cluster://":
        url, conf = redis_cluster.url, {}
    else:
        url, conf = f"redis://127.0.0.1:{redis_cluster.nodes[1].port}/0", {"redbeat_redis_options": {"cluster": True}}
    statics = {"static": {"task": "tasks.static", "schedule": 10.0},
               "other": {"task": "tasks.other", "schedule": 20.0}}
    with beat_app(url, now=pinned_now(), redbeat_key_prefix=TAGGED, beat_schedule=statics, **conf) as app:
        scheduler = Recording(app=app)
        assert scheduler.is_leader
        app.now.advance(10)
        scheduler.tick()
        assert scheduler.sent_names == ["static"]
        assert {"static", "other"} <= set(scheduler.schedule)
        scheduler.close()
    owner = redis_cluster.node_of(TAGGED)
    keys = cluster_keys(redis_cluster)
    assert {port for port, held in keys.items() if held} == {owner.port}
    assert set(keys[owner.port]) >= {"{redbeat}:static", "{redbeat}:other", "{redbeat}::schedule",
                                     "{redbeat}::statics"}
    client = owner.client()
    assert json.loads(client.hget("{redbeat}:static", "meta"))["total_run_count"] == 1
    assert client.zscore("{redbeat}::schedule", "{redbeat}:static") == app.now.value.timestamp() + 10


def test_entry_save_on_a_cluster_with_a_hash_tagged_prefix(redis_cluster):
    with beat_app(redis_cluster.url, now=pinned_now(), redbeat_key_prefix=TAGGED) as app:
        Entry("dynamic", "tasks.dynamic", schedule(10), app=app).save()
        scheduler = Recording(app=app)
        app.now.advance(10)
        scheduler.tick()
        assert scheduler.sent_names == ["dynamic"]
        scheduler.close()
    client = redis_cluster.node_of(TAGGED).client()
    assert json.loads(client.hget("{redbeat}:dynamic", "meta"))["total_run_count"] == 1


def test_startup_nodes_option_as_celery_redbeat_documents_it(redis_cluster):
    """Row 'Cluster startup nodes are ClusterNode objects': dicts with string ports, the URL's node unused."""
    nodes = [{"host": node["host"], "port": str(node["port"])} for node in redis_cluster.startup_nodes]
    options = {"redbeat_redis_options": {"startup_nodes": nodes}}
    with beat_app("redis-cluster://127.0.0.1:1", now=pinned_now(), redbeat_key_prefix=TAGGED, **options) as app:
        Entry("via-nodes", "tasks.nodes", schedule(10), app=app).save()
    client = redis_cluster.node_of(TAGGED).client()
    assert client.zscore("{redbeat}::schedule", "{redbeat}:via-nodes") == app.now.value.timestamp() + 10


@pytest.mark.compat
def test_celery_redbeat_cannot_start_on_a_cluster_with_startup_nodes(redis_cluster, tmp_path):
    """The other side of that row: celery-redbeat 2.4.2 hands redis-py dicts, which RedisCluster refuses."""
    nodes = [{"host": node["host"], "port": str(node["port"])} for node in redis_cluster.startup_nodes]
    code = (
        "import sys, json\n"
        "from celery import Celery\n"
        "from redbeat.schedulers import get_redis\n"
        "app = Celery(set_as_current=False)\n"
        "app.conf.update(redbeat_redis_url='redis-cluster://127.0.0.1:1', redbeat_key_prefix='{redbeat}:',\n"
        "                redbeat_redis_options={'startup_nodes': json.loads(sys.argv[1])})\n"
        "try:\n    get_redis(app)\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    # cwd away from the worktree: `python -c` puts the cwd first on sys.path, where our `redbeat` would win.
    result = subprocess.run([str(celery_redbeat_python()), "-W", "ignore", "-c", code, json.dumps(nodes)],
                            cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "AttributeError 'dict' object has no attribute 'name'", result.stderr


def test_beat_refuses_to_start_on_a_cluster_with_an_untagged_prefix(redis_cluster):
    with beat_app(redis_cluster.url, now=pinned_now()) as app:
        with pytest.raises(ClusterKeyPrefixError) as refused:
            RedBeatScheduler(app=app)
        message = str(refused.value)
        assert "redbeat_key_prefix 'redbeat:' has no hash tag" in message
        assert "redbeat_key_prefix = '{redbeat}:'" in message and "--key-prefix '{redbeat}:'" in message
        with pytest.raises(ClusterKeyPrefixError):
            Entry("untagged", "tasks.untagged", schedule(10), app=app).save()
    assert cluster_keys(redis_cluster) == {node.port: [] for node in redis_cluster.nodes}


def test_without_the_check_an_untagged_prefix_cannot_run_on_a_cluster(redis_cluster):
    """What the start-up check prevents: the tick's scripts span slots (#296)."""
    from redbeat.keys import KeySpace
    from redbeat.store import EntryStore

    client = redis_cluster.client()
    store = EntryStore(client, KeySpace("redbeat:"))
    with pytest.raises(RedisClusterException, match="same key slot"):
        store.fetch_due(0.0, limit=10, lock_key="redbeat::lock", token="t", lease_ms=1000)
    client.close()


@pytest.mark.parametrize(
    "prefix, tag",
    [("{redbeat}:", "redbeat"), ("app:{beat}:", "beat"), ("redbeat:", None), ("{redbeat:", None),
     ("{}redbeat:", None), ("}{x}:", "x")],
)
def test_cluster_hash_tag_follows_redis_rules(redis_cluster, prefix, tag):
    """Whatever follows the prefix, every key hashes to the prefix's slot exactly when a tag is found."""
    assert cluster_hash_tag(prefix) == tag
    node = redis_cluster.nodes[0].client()
    slots = {node.execute_command("CLUSTER", "KEYSLOT", prefix + suffix) for suffix in (":schedule", "a", "b}c", "zz")}
    assert (len(slots) == 1) == (tag is not None)
    client = redis_cluster.client()
    if tag is None:
        with pytest.raises(ClusterKeyPrefixError):
            check_cluster_prefix(client, prefix)
    else:
        check_cluster_prefix(client, prefix)
    client.close()


def test_redbeat_apply_on_a_cluster_and_beat_runs_what_it_applied(redis_cluster, manifests):
    apply_twice(redis_cluster.url, manifests, "--key-prefix", TAGGED)
    owner = redis_cluster.node_of(TAGGED).client()
    assert sorted(owner.zrange("{redbeat}::schedule", 0, -1)) == [f"{{redbeat}}:{n}" for n in MANIFEST_NAMES]
    with beat_app(redis_cluster.url, now=pinned_now(), redbeat_key_prefix=TAGGED) as app:
        scheduler = Recording(app=app)
        scheduler.tick()  # a minute later: the 30 s entry is due
        assert scheduler.sent_names == ["ping"]
        scheduler.close()


def test_redbeat_apply_refuses_an_untagged_prefix_on_a_cluster(redis_cluster, manifests):
    result = redbeat_apply(redis_cluster.url, str(manifests))
    assert result.returncode == 1
    assert "Redis Cluster needs a hash tag in the key prefix" in result.stderr
    assert "--key-prefix '{redbeat}:'" in result.stderr
    assert cluster_keys(redis_cluster) == {node.port: [] for node in redis_cluster.nodes}


def test_the_watch_mode_on_a_cluster_compares_fingerprints(redis_cluster, manifests):
    """Tracking is per node on a cluster: no change feed, and a hand edit is still found."""
    owner = redis_cluster.node_of(TAGGED).client()
    assert not helpers.watch_finds_a_hand_edit(redis_cluster.url, manifests, owner, TAGGED)
