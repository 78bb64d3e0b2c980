"""What apply reads from Redis (reconciler.sync.state): fingerprints, ownership records, entries and owners.

Against fakeredis (its Lua runs the entry-reading script); hostile names,
damaged records, values that are not UTF-8 and huge values included.
"""

from __future__ import annotations

import json

import fakeredis
import pytest

import redbeat.store
from reconciler.core.errors import StateError
from reconciler.sync.state import (
    ABSENT,
    STATIC_OWNER,
    ActualEntry,
    ActualState,
    OwnershipRecord,
    fingerprint,
    read_all,
    read_state,
    records_of,
)
from redbeat.keys import KeySpace

KEYS = KeySpace("test:")
OWNER = "team-a"
HOSTILE_NAMES = [
    "plain",
    "with[brackets]/and/slashes",
    "<script>alert(1)</script>",
    "quotes '\" and \\ backslash",
    "unicode-ünïcødé-名前-🙂",
    "control\tchars\x01\x7f",
    "x" * 2000,
]
DEFINITION = json.dumps({"name": "n", "task": "app.t", "schedule": {"__type__": "interval", "every": 60}})


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def client(server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    """Decodes replies, as redbeat's clients do (decode_responses=True)."""
    return fakeredis.FakeRedis(server=server, decode_responses=True)


@pytest.fixture
def raw(server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    """The same server without decoding, to write bytes that are not UTF-8."""
    return fakeredis.FakeRedis(server=server)


def store(client: fakeredis.FakeRedis, name: str, score: float = 100.0, **fields: str | bytes) -> None:
    client.hset(KEYS.entry(name), mapping={"definition": DEFINITION, **fields})
    client.zadd(KEYS.schedule, {KEYS.entry(name): score})


def own(client: fakeredis.FakeRedis, owner: str, name: str, record: str | bytes | None = None) -> None:
    client.hset(KEYS.owner_index(owner), name, record if record is not None else OwnershipRecord("d1").to_json())
    client.sadd(KEYS.owners, owner)


# -- fingerprints and records ----------------------------------------------------------------------------


def test_fingerprint_is_absent_without_a_definition_and_covers_definition_and_ext() -> None:
    assert fingerprint(None, "{}") == ABSENT
    assert fingerprint("{}", None) == fingerprint("{}", "")
    assert fingerprint("{}", None) != fingerprint("{}", '{"jitter":5}')
    assert fingerprint('{"a":1}', None) != fingerprint('{"a":2}', None)
    assert len(fingerprint("ü\x00" * 100_000, "<script>")) == 40


def test_an_ownership_record_round_trips_compactly() -> None:
    record = OwnershipRecord("abc", protected=True)
    assert record.to_json() == '{"digest":"abc","protected":true}'
    assert OwnershipRecord.from_json(record.to_json()) == record
    assert OwnershipRecord.from_json('{"digest": "abc"}') == OwnershipRecord("abc", False)


@pytest.mark.parametrize(
    "damaged",
    ["", "not json", "[1, 2]", '"digest"', "{}", '{"protected": true}', "null", "{" * 10_000, '{"digest": "x"'],
)
def test_a_damaged_record_still_means_ours_but_matches_no_fingerprint(damaged: str) -> None:
    record = OwnershipRecord.from_json(damaged)
    assert record == OwnershipRecord("damaged", False)
    assert record.digest not in (fingerprint(DEFINITION, None), ABSENT)


def test_a_hostile_digest_is_kept_as_text() -> None:
    hostile = "<script>\"'\x00ü" + "9" * 5000
    assert OwnershipRecord.from_json(json.dumps({"digest": hostile})).digest == hostile
    assert OwnershipRecord.from_json('{"digest": 12345678901234567890123}').digest == "12345678901234567890123"


# -- one entry as read ----------------------------------------------------------------------------------------


def entry(**fields: object) -> ActualEntry:
    base: dict[str, object] = dict(
        name="n", definition=DEFINITION, ext=None, meta=None, score=1.0, owner=None, record_raw=None
    )
    base.update(fields)
    return ActualEntry(**base)  # type: ignore[arg-type]


def test_an_entry_without_a_definition_does_not_exist_and_fingerprints_as_absent() -> None:
    gone = entry(definition=None)
    assert not gone.exists and gone.fingerprint == ABSENT and gone.decoded_definition() is None
    assert entry().exists and entry().fingerprint == fingerprint(DEFINITION, None)


@pytest.mark.parametrize("definition", ["not json", "[1]", '"text"', "12", "{", "\udcff"])
def test_a_definition_that_is_not_a_json_object_decodes_to_none(definition: str) -> None:
    assert entry(definition=definition).decoded_definition() is None


@pytest.mark.parametrize(
    ("ext", "decoded"),
    [(None, None), ("", None), ("{}", None), ("[1]", None), ("nope", None), ('{"jitter": 5}', {"jitter": 5})],
)
def test_ext_decodes_only_to_a_non_empty_object(ext: str | None, decoded: object) -> None:
    assert entry(ext=ext).decoded_ext() == decoded


@pytest.mark.parametrize(
    ("meta", "readable"),
    [
        (None, True),
        ("", True),
        ('{"last_run_at": null, "total_run_count": 3}', True),
        ("not json", False),
        ("[]", False),
        ('{"total_run_count": "many"}', False),
        ('{"last_run_at": "<script>"}', False),
    ],
)
def test_meta_is_readable_only_when_beat_can_decode_it(meta: str | None, readable: bool) -> None:
    assert entry(meta=meta).meta_readable is readable


def test_the_record_is_parsed_from_the_raw_one() -> None:
    assert entry().record is None
    assert entry(record_raw='{"digest":"d","protected":true}').record == OwnershipRecord("d", True)
    assert entry(record_raw="garbage").record == OwnershipRecord("damaged")


# -- read_state -------------------------------------------------------------------------------------------------


def test_read_state_sorts_every_named_or_owned_entry_by_who_owns_it(client: fakeredis.FakeRedis) -> None:
    for name in ("mine", "theirs", "static", "unmanaged", "owned-but-unnamed"):
        store(client, name)
    own(client, OWNER, "mine", OwnershipRecord("d-mine", True).to_json())
    own(client, OWNER, "owned-but-unnamed")
    own(client, "team-b", "theirs", '{"digest":"d-b"}')
    own(client, "team-c", "theirs", '{"digest":"d-c"}')  # a conflict: the first other owner (sorted) is named
    client.sadd(KEYS.statics, "static")

    state = read_state(client, KEYS, OWNER, ["mine", "theirs", "static", "unmanaged", "missing"])

    assert state.owner == OWNER
    assert state.owned == {"mine", "owned-but-unnamed"}
    assert sorted(state.entries) == ["mine", "missing", "owned-but-unnamed", "static", "theirs", "unmanaged"]
    owners = {name: e.owner for name, e in state.entries.items()}
    assert owners == {
        "mine": OWNER,
        "owned-but-unnamed": OWNER,
        "theirs": "team-b",
        "static": STATIC_OWNER,
        "unmanaged": None,
        "missing": None,
    }
    assert state.entries["theirs"].owner_record_raw == '{"digest":"d-b"}'
    assert state.entries["theirs"].record_raw is None
    assert state.entries["mine"].record == OwnershipRecord("d-mine", True)
    assert not state.entries["missing"].exists and state.entries["missing"].score is None
    assert state.entries["mine"].definition == DEFINITION and state.entries["mine"].score == 100.0
    assert records_of(state) == {"mine": OwnershipRecord("d-mine", True), "owned-but-unnamed": OwnershipRecord("d1")}


def test_read_state_of_an_empty_redis_is_empty(client: fakeredis.FakeRedis) -> None:
    assert read_state(client, KEYS, OWNER, []) == ActualState(OWNER, {}, frozenset())


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_read_back_exactly(client: fakeredis.FakeRedis, name: str) -> None:
    store(client, name, score=-1.5, ext='{"jitter": 5}', meta='{"total_run_count": 2}')
    own(client, OWNER, name)
    state = read_state(client, KEYS, OWNER, [name])
    [(read_name, read)] = state.entries.items()
    assert read_name == name == read.name
    assert (read.definition, read.ext, read.meta, read.score) == (
        DEFINITION,
        '{"jitter": 5}',
        '{"total_run_count": 2}',
        -1.5,
    )
    assert read.owner == OWNER and state.owned == {name}


def test_a_huge_definition_is_read_back_intact(client: fakeredis.FakeRedis) -> None:
    huge = json.dumps({"name": "big", "kwargs": {"blob": "ü" * 2_000_000}})
    store(client, "big", definition=huge)
    read = read_state(client, KEYS, OWNER, ["big"]).entries["big"]
    assert read.definition == huge
    assert read.fingerprint == fingerprint(huge, None)


def test_entries_are_read_in_batches_without_losing_or_mixing_one(
    client: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redbeat.store, "READ_BATCH", 3)
    names = [f"job-{i:02d}" for i in range(10)]
    for i, name in enumerate(names):
        store(client, name, score=float(i), definition=json.dumps({"name": name}))
    state = read_state(client, KEYS, OWNER, names)
    assert [(n, e.score, json.loads(e.definition or "")["name"]) for n, e in state.entries.items()] == [
        (name, float(i), name) for i, name in enumerate(names)
    ]


def test_fields_that_are_not_utf8_read_as_absent(client: fakeredis.FakeRedis, raw: fakeredis.FakeRedis) -> None:
    raw.hset(KEYS.entry("bad"), mapping={"definition": b"\xff\xfe{", "meta": b"\xc3(", "ext": b"\x80"})
    raw.zadd(KEYS.schedule, {KEYS.entry("bad"): 7})
    read = read_state(client, KEYS, OWNER, ["bad"]).entries["bad"]
    assert (read.definition, read.meta, read.ext, read.score) == (None, None, None, 7.0)
    assert not read.exists


@pytest.mark.parametrize("where", ["record", "owned-name", "other-owner", "owners-set", "statics"])
def test_a_name_or_record_that_is_not_utf8_is_a_clear_error_naming_the_key(
    client: fakeredis.FakeRedis, raw: fakeredis.FakeRedis, where: str
) -> None:
    store(client, "job")
    if where == "record":
        raw.hset(KEYS.owner_index(OWNER), "job", b"\xff\xfe" + b"x" * 100)
        key = KEYS.owner_index(OWNER)
    elif where == "owned-name":
        raw.hset(KEYS.owner_index(OWNER), b"job\xff", b"{}")
        key = KEYS.owner_index(OWNER)
    elif where == "other-owner":
        own(client, "team-b", "elsewhere")
        raw.hset(KEYS.owner_index("team-b"), "job", b"\xc3(")
        key = KEYS.owner_index("team-b")
    elif where == "owners-set":
        raw.sadd(KEYS.owners, b"team-\xff")
        key = KEYS.owners
    else:
        raw.sadd(KEYS.statics, b"static-\xff")
        key = KEYS.statics
    with pytest.raises(StateError) as error:
        read_state(client, KEYS, OWNER, ["job"])
    message = str(error.value)
    assert repr(key) in message and "not UTF-8" in message and "nothing was written" in message
    assert len(message) < 600


# -- read_all -----------------------------------------------------------------------------------------------------


def test_read_all_lists_every_scheduled_entry_with_its_owner(client: fakeredis.FakeRedis) -> None:
    for name in HOSTILE_NAMES:
        store(client, name)
    client.zadd(KEYS.schedule, {"bare-member": 5})  # a bare name, as the first releases allowed
    client.hset(KEYS.entry("bare-member"), "definition", DEFINITION)
    own(client, "team-b", HOSTILE_NAMES[0])
    own(client, "team-a", HOSTILE_NAMES[0])  # two owners: the first sorted wins
    own(client, "team-a", HOSTILE_NAMES[1])
    client.sadd(KEYS.statics, HOSTILE_NAMES[2], HOSTILE_NAMES[1])  # owned beats static

    entries = read_all(client, KEYS)

    assert sorted(entries) == sorted([*HOSTILE_NAMES, "bare-member"])
    assert entries[HOSTILE_NAMES[0]].owner == "team-a"
    assert entries[HOSTILE_NAMES[1]].owner == "team-a"
    assert entries[HOSTILE_NAMES[2]].owner == STATIC_OWNER
    assert entries[HOSTILE_NAMES[3]].owner is None
    assert entries["bare-member"].definition == DEFINITION
    assert all(e.record_raw is None for e in entries.values())


def test_read_all_of_an_empty_redis_is_empty(client: fakeredis.FakeRedis) -> None:
    assert read_all(client, KEYS) == {}


def test_read_all_names_a_schedule_member_that_is_not_utf8(
    client: fakeredis.FakeRedis, raw: fakeredis.FakeRedis
) -> None:
    store(client, "fine")
    raw.zadd(KEYS.schedule, {KEYS.entry("fine").encode() + b"\xff": 1})
    with pytest.raises(StateError, match=r"'test::schedule' holds bytes that are not UTF-8 \(b'test:fine\\xff'\)"):
        read_all(client, KEYS)


def test_many_owner_indexes_are_not_all_named(client: fakeredis.FakeRedis, raw: fakeredis.FakeRedis) -> None:
    for i in range(50):
        own(client, f"owner-{i:02d}", "job")
    raw.hset(KEYS.owner_index("owner-49"), b"\xff", b"{}")
    with pytest.raises(StateError, match=r"or one of 48 more keys") as error:
        read_all(client, KEYS)
    assert "owner-49" not in str(error.value)
