"""The held state and the group fingerprints against a real redis-server: equal to a full read, cheap when idle."""

from __future__ import annotations

import hashlib
import itertools
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_incremental_property import desired_of  # noqa: I001 - the tests directory is on sys.path

from reconciler.sync.fingerprints import (
    FINGERPRINT_SCRIPT,
    GROUP_SIZE,
    GroupDigests,
    describe,
    fingerprints,
    group_digest,
    meta_class,
)
from reconciler.sync.incremental import HeldState
from reconciler.sync.plan import plan
from reconciler.sync.reconcile import PlanOptions, connect, reconcile
from reconciler.sync.state import read_state
from redbeat.codec import encode_meta
from redbeat.keys import KeySpace

KEYS = KeySpace()


def test_lua_and_python_describe_every_kind_of_entry_alike(redis_url, redis_client):
    target = connect(redis_url)
    desired = desired_of({f"e{i}": i + 1 for i in range(600)})
    reconcile(desired, target)
    # every holder kind: another owner's record, beat's statics, nobody, absent, odd run states
    redis_client.hset(KEYS.owner_index("other"), "foreign", '{"digest":"x","protected":false}')
    redis_client.sadd(KEYS.owners, "other")
    redis_client.hset("redbeat:foreign", "definition", "{}")
    redis_client.sadd(KEYS.statics, "static")
    redis_client.hset("redbeat:static", mapping={"definition": "{}", "meta": "not json"})
    redis_client.hset("redbeat:loose", "definition", "\u00e9\u2603")
    redis_client.hset("redbeat:e1", "meta", encode_meta(__import__("datetime").datetime(2024, 2, 29, 1, 2, 3)))
    redis_client.hset("redbeat:e2", "meta", '{"last_run_at": null}')
    redis_client.hset(KEYS.owner_index("default"), "e3", "")
    names = sorted([*desired, "foreign", "static", "loose", "absent"])
    state = read_state(target.client, KEYS, "default", names)
    found = fingerprints(target.client, KEYS, "default", names)
    groups = [names[i:i + GROUP_SIZE] for i in range(0, len(names), GROUP_SIZE)]
    assert found.groups == [group_digest(g, state.entries, "default") for g in groups]
    assert found.owned == len(state.owned)


metas = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda y, mo, d, h, mi, s, us, tz, count: (
            f'{{"last_run_at": {{"__type__": "datetime", "year": {y}, "month": {mo}, "day": {d}, "hour": {h}, '
            f'"minute": {mi}, "second": {s}, "microsecond": {us}, "timezone": {tz}}}{count}}}'
        ),
        *[st.sampled_from(["0", "1", "07", "9", "12", "13", "23", "24", "28", "29", "30", "31", "59", "60", "2024",
                           "1900", "2000", "9999", "10000", "999999", "1000000", "1234567890"])] * 7,
        st.sampled_from(['"UTC"', '"Europe/Berlin"', '"No/Such"', "3600", "3600.0", "-0", "01", "1e3", '"a\\"b"',
                         "86400", "null"]),
        st.sampled_from(["", ', "total_run_count": 3', ', "total_run_count": 03', ', "total_run_count": -1']),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=metas)
def test_the_meta_class_is_the_same_in_lua_and_python_and_decides_readability(redis_client, meta):
    from reconciler.sync.state import ActualEntry

    redis_client.delete("redbeat:m")
    redis_client.hset("redbeat:m", mapping={"definition": "{}", "meta": meta})
    script = redis_client.register_script(
        "return redis.sha1hex(ARGV[1])"
    )
    entry = ActualEntry("m", "{}", None, meta, None, None, None)
    expected = script(args=[describe("m", entry, "default")])
    assert fingerprints(redis_client, KEYS, "default", ["m"]).groups == [expected]
    if meta_class(meta).startswith("T"):  # beat's shape: readability follows from the class alone
        zone = json.loads(meta_class(meta)[2:])
        probe = ActualEntry("p", "{}", None, encode_meta(None).replace("null", json.dumps(
            {"__type__": "datetime", "year": 2000, "month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0,
             "microsecond": 0, "timezone": zone})), None, None, None)
        assert entry.meta_readable == (meta_class(meta)[1] == "1" and probe.meta_readable)


def _run_state(year="2024", month="5", day="17", hour="13", minute="7", second="42", microsecond="123456",
               zone="0.0", tail=', "total_run_count": 7'):
    return (f'{{"last_run_at": {{"__type__": "datetime", "year": {year}, "month": {month}, "day": {day}, '
            f'"hour": {hour}, "minute": {minute}, "second": {second}, "microsecond": {microsecond}, '
            f'"timezone": {zone}}}{tail}}}')


#: Each field of beat's run state at and around its limits (the script decides beat's usual shape from a
#: pattern with ranges in it and falls back to the full rule: both sides of every limit must agree with Python).
_EDGES = {
    "year": ["0", "1", "9", "10", "999", "1000", "1900", "2000", "2023", "2024", "9999", "10000", "02024",
             "123456789", "1234567890"],
    "month": ["0", "1", "2", "9", "10", "11", "12", "13", "19", "20", "01", "012"],
    "day": ["0", "1", "9", "10", "28", "29", "30", "31", "32", "39", "40", "01"],
    "hour": ["0", "1", "9", "10", "19", "20", "23", "24", "29", "30", "00", "09"],
    "minute": ["0", "9", "10", "59", "60", "99", "00", "05"],
    "second": ["0", "9", "10", "59", "60", "00"],
    "microsecond": ["0", "1", "10", "99999", "999999", "1000000", "0123", "00", "0999999"],
    "zone": ['"UTC"', '"Europe/Berlin"', '"America/Argentina/Buenos_Aires"', '"Etc/GMT+5"', '"No/Such"', '""',
             '"a b"', "0", "0.0", "-0", "-0.0", "3600", "3600.0", "-3600.5", "01", "00.0", "1e3", "null", "",
             '"UTC}', "+1"],
    "tail": ["", ', "total_run_count": 0', ', "total_run_count": 1', ', "total_run_count": 10',
             ', "total_run_count": 01', ', "total_run_count": -1', ', "total_run_count": 1, "x": 1', " "],
}


def _edge_metas() -> list[str]:
    metas = [_run_state(**{field: value}) for field, values in _EDGES.items() for value in values]
    # month x day x year: month lengths and leap years (Feb 29 is the full rule's in the script)
    metas += [_run_state(year=y, month=m, day=d) for y, m, d in itertools.product(
        ["1900", "2000", "2023", "2024"], ["1", "2", "4", "9", "11", "12"], ["28", "29", "30", "31"])]
    metas += [_run_state(tail=""), _run_state()[:-1], _run_state() + " ", " " + _run_state(), _run_state() + "}",
              _run_state().replace(": ", ":"), "", "{}", "\u00e9", "null"]
    return metas


def test_every_edge_of_beats_run_state_is_classed_alike_in_lua_and_python(redis_client):
    metas = _edge_metas()
    names = [f"m{i:04d}" for i in range(len(metas))]
    for name, meta in zip(names, metas, strict=True):
        redis_client.hset(f"redbeat:{name}", mapping={"definition": "{}", "meta": meta})
    script = redis_client.register_script(FINGERPRINT_SCRIPT)
    from reconciler.sync.fingerprints import pack_names
    from reconciler.sync.state import ActualEntry

    routing = [KEYS.owner_index("default"), KEYS.owners, KEYS.statics]
    reply = script(keys=routing, args=[KEYS.prefix, "default", KEYS.owner_index(""), 1, pack_names(names)])
    for name, meta, digest in zip(names, metas, reply[:-1], strict=True):  # one digest a name: group size 1
        entry = ActualEntry(name, "{}", None, meta, None, None, None)
        assert digest == hashlib.sha1(describe(name, entry, "default")).hexdigest(), (meta, meta_class(meta))
    classes = {meta_class(m)[:2] for m in metas}
    assert {"T1", "T0"} <= classes and any(c.startswith("R") for c in classes)  # every kind was exercised


def test_group_digests_are_hashed_again_only_when_a_name_or_an_entry_changed(redis_url, redis_client):
    target = connect(redis_url)
    desired = desired_of({f"e{i:04d}": i + 1 for i in range(600)})
    reconcile(desired, target)
    state = read_state(target.client, KEYS, "default", desired)
    entries = dict(state.entries)
    digests = GroupDigests("default")
    groups = digests.groups(set(entries))
    assert [len(g) for g in groups] == [256, 256, 88] and list(itertools.chain(*groups)) == sorted(entries)
    assert digests.groups(set(entries)) is groups  # same names: the same groups, not sorted again
    remote = digests.remote(target.client, KEYS)
    assert remote.groups == [digests.local(g, entries) for g in groups] == [
        group_digest(g, entries, "default") for g in groups]
    redis_client.hset("redbeat:e0300", "definition", "{}")  # a hand edit in the second group
    entries["e0300"] = read_state(target.client, KEYS, "default", ["e0300"]).entries["e0300"]
    remote = digests.remote(target.client, KEYS)
    assert [digests.local(g, entries) == d for g, d in zip(groups, remote.groups, strict=True)] == [True] * 3
    assert digests.local(groups[1], entries) == group_digest(groups[1], entries, "default")
    new_names = set(entries) | {"zz"}
    regrouped = digests.groups(new_names)
    assert regrouped[-1][-1] == "zz" and digests.remote(target.client, KEYS).groups[-1] == group_digest(
        regrouped[-1], entries, "default")


def test_held_state_plans_equal_a_full_read_and_a_no_op_resync_reads_only_digests(redis_url, redis_client):
    target = connect(redis_url)
    desired = desired_of({f"e{i:04d}": i + 1 for i in range(3000)})
    reconcile(desired, target)
    held = HeldState(target, PlanOptions())
    held.replace_desired(desired)
    assert not held.plan().has_changes
    before = redis_client.info("stats")["total_net_output_bytes"]
    report = held.resync()
    sent = redis_client.info("stats")["total_net_output_bytes"] - before
    assert (report.groups, report.differing, report.full) == (12, 0, False)
    assert sent < 3000 * 2  # well under a byte an entry... plus the INFO reply itself
    # a hand edit nobody publishes: found by the resync, planned like a full read would
    redis_client.hset("redbeat:e0007", "definition", "{}")
    redis_client.hdel(KEYS.owner_index("default"), "e2999")
    report = held.resync()
    assert report.differing == 2 and not report.full
    incremental = held.plan()
    full = plan(desired, read_state(target.client, KEYS, "default", desired))
    assert incremental.changes == tuple(c for c in full.changes if c.op.value != "no-op")
    assert incremental.counts() == full.counts() and incremental.errors == full.errors


def test_a_delete_through_the_python_api_is_published_and_recreated_without_a_resync(redis_url, redis_client):
    """``entry.delete()`` publishes on the wake channel as ``save()`` does, so the watch mode's held state
    learns of it at its next plan instead of at the next resync."""
    from reconciler.sync.incremental import Incremental
    from redbeat.store import EntryStore

    target = connect(redis_url)
    desired = desired_of({"keep": 10, "gone": 20})
    reconcile(desired, target)
    incremental = Incremental([], target, PlanOptions())
    incremental.held.replace_desired(desired)
    incremental.subscribe()
    assert not incremental.reconcile(resync=True).plan.has_changes
    EntryStore(redis_client, KEYS).delete(KEYS.entry("gone"))
    assert incremental.drain(expect=1, timeout=2.0) == 1
    assert [(c.op.value, c.name) for c in incremental.held.plan().changes] == [("create", "gone")]
