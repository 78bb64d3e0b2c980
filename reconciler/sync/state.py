"""What is in Redis: the entries an owner manages or the manifests name, and who owns them.

Ownership lives in reconciler keys, never inside an entry (celery-redbeat
builds ``Entry(**definition)`` and would crash on a field it does not know):

* ``<prefix>:owner:<owner>``: hash, entry name -> ownership record, JSON
  ``{"digest": <sha1 of definition + ext as last applied>, "protected": bool}``;
* ``<prefix>:owners``: set of owner names, so a conflict can say who owns an entry.

The digest lets a plan tell drift (the entry changed in Redis since we applied
it) from a change in the manifests, and makes every apply check that what it
read is still what is there.  Records change only when an entry does, so an
unchanged directory costs no write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from reconciler.core.errors import StateError
from redbeat.keys import KeySpace
from redbeat.store import EntryStore

ABSENT = "absent"
STATIC_OWNER = "beat_schedule"


def fingerprint(definition: str | None, ext: str | None) -> str:
    """sha1 of what an apply compares before it writes (the same bytes the Lua check hashes)."""
    if definition is None:
        return ABSENT
    return hashlib.sha1(f"{definition}\n{ext or ''}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class OwnershipRecord:
    digest: str
    protected: bool = False

    def to_json(self) -> str:
        # The bytes of json.dumps({...}, sort_keys=True, separators=(",", ":")), without a dict per entry.
        protected = "true" if self.protected else "false"
        return f'{{"digest":{encode_basestring_ascii(self.digest)},"protected":{protected}}}'

    @classmethod
    def from_json(cls, raw: str) -> OwnershipRecord:
        try:
            data = json.loads(raw)
            return cls(str(data["digest"]), bool(data.get("protected", False)))
        except (ValueError, KeyError, TypeError):
            # A damaged record still means "ours"; its digest matches nothing, so the entry shows as drifted.
            return cls("damaged", False)


@dataclass(frozen=True, slots=True)
class ActualEntry:
    name: str
    definition: str | None  # raw JSON as stored; None when the hash (or its definition) is absent
    ext: str | None
    meta: str | None
    score: float | None
    owner: str | None  # this owner, another owner, STATIC_OWNER (beat_schedule), or None (unmanaged)
    record_raw: str | None  # this owner's raw ownership record, if any
    #: the raw record of the other owner that holds the entry (``owner``), checked again by a take-over
    owner_record_raw: str | None = None

    @property
    def exists(self) -> bool:
        return self.definition is not None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.definition, self.ext)

    @property
    def meta_readable(self) -> bool:
        """False when ``meta`` exists but beat cannot decode it (and so skips the entry)."""
        if not self.meta:
            return True
        from redbeat.codec import CorruptEntryError, decode_meta

        try:
            decode_meta(self.meta)
        except CorruptEntryError:
            return False
        return True

    @property
    def record(self) -> OwnershipRecord | None:
        return OwnershipRecord.from_json(self.record_raw) if self.record_raw is not None else None

    def decoded_definition(self) -> dict[str, Any] | None:
        """The stored definition as plain JSON, or None when absent or not a JSON object."""
        if self.definition is None:
            return None
        try:
            value = json.loads(self.definition)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def decoded_ext(self) -> dict[str, Any] | None:
        if not self.ext:
            return None
        try:
            value = json.loads(self.ext)
        except ValueError:
            return None
        return value if isinstance(value, dict) and value else None


@dataclass(frozen=True, slots=True)
class ActualState:
    owner: str
    entries: dict[str, ActualEntry]  # every name this owner owns or the manifests name
    owned: frozenset[str]


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


Raw = tuple[str | None, str | None, str | None, float | None]

#: Bytes of a value that is not UTF-8 quoted in the error, and keys named, at most.
QUOTED_BYTES = 40
NAMED_KEYS = 3


@contextmanager
def _utf8_only(*keys: str) -> Iterator[None]:
    """Turn a name or record that is not UTF-8 in ``keys`` (the client decodes replies) into a StateError.

    Only other tools write such bytes there (redbeat and redbeat-apply write UTF-8), and a name that
    is not text can be neither planned for nor deleted safely, so the run stops before it writes.
    redis-py drops the connection whose reply failed to decode, so no half-read reply is reused.
    """
    try:
        yield
    except UnicodeDecodeError as exc:
        raw = bytes(exc.object[:QUOTED_BYTES])
        more = "..." if len(exc.object) > QUOTED_BYTES else ""
        named = " or ".join(repr(key) for key in keys[:NAMED_KEYS])
        if len(keys) > NAMED_KEYS:
            named += f" (or one of {len(keys) - NAMED_KEYS} more keys)"
        raise StateError(
            f"Redis key {named} holds bytes that are not UTF-8 ({raw!r}{more}); "
            "redbeat and redbeat-apply write only UTF-8 there: remove or fix that member; nothing was written"
        ) from None


def read_entries(client: Any, keys: KeySpace, names: list[str]) -> list[Raw]:
    """(definition, ext, meta, score) per name, a few round trips however many names."""
    return [(d, e, m, s) for d, m, e, s in EntryStore(client, keys).read_entries(names)]


def read_state(client: Any, keys: KeySpace, owner: str, names: Iterable[str]) -> ActualState:
    """Read every entry this owner owns or ``names`` mentions: one pipeline and one script per 20k entries."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.owner_index(owner))
    pipe.smembers(keys.owners)
    pipe.smembers(keys.statics)
    with _utf8_only(keys.owner_index(owner), keys.owners, keys.statics):
        records_raw, owners_raw, statics_raw = pipe.execute()
    records = {_s(k): _s(v) for k, v in records_raw.items()}
    statics = {_s(s) for s in statics_raw}
    wanted = sorted(set(names) | set(records))
    entries = _entries(client, keys, owner, wanted, records, [_s(o) for o in owners_raw], statics)
    return ActualState(owner=owner, entries=entries, owned=frozenset(records))


def read_named(client: Any, keys: KeySpace, owner: str, names: Iterable[str]) -> dict[str, ActualEntry]:
    """The entries ``names`` as :func:`read_state` would read them, without reading the whole owner index.

    For the incremental watch (sync.incremental): a few round trips for the
    names of one edited file, however many entries the owner has.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    pipe = client.pipeline(transaction=False)
    pipe.hmget(keys.owner_index(owner), wanted)
    pipe.smembers(keys.owners)
    for name in wanted:
        pipe.sismember(keys.statics, name)
    held, owners_raw, *is_static = pipe.execute()
    records = {name: _s(record) for name, record in zip(wanted, held, strict=True) if record is not None}
    statics = {name for name, flag in zip(wanted, is_static, strict=True) if flag}
    return _entries(client, keys, owner, wanted, records, [_s(o) for o in owners_raw], statics)


def _entries(
    client: Any,
    keys: KeySpace,
    owner: str,
    wanted: list[str],
    records: Mapping[str, str],
    owners: list[str],
    statics: set[str],
) -> dict[str, ActualEntry]:
    """The entries ``wanted``, with who holds each: this owner (``records``), another owner, beat, or nobody."""
    other_owners = sorted(o for o in owners if o != owner)
    stored = read_entries(client, keys, wanted)
    foreign: dict[str, tuple[str, str]] = {}  # name -> (other owner, its raw record)
    unowned = [name for name in wanted if name not in records]
    if unowned and other_owners:
        pipe = client.pipeline(transaction=False)
        for other in other_owners:
            pipe.hmget(keys.owner_index(other), unowned)
        with _utf8_only(*(keys.owner_index(other) for other in other_owners)):
            held_by_others = pipe.execute()
        for other, held in zip(other_owners, held_by_others, strict=False):
            for name, record in zip(unowned, held, strict=False):
                if record is not None and name not in foreign:
                    foreign[name] = (other, _s(record))

    entries = {}
    for name, (definition, ext, meta, score) in zip(wanted, stored, strict=False):
        foreign_record: str | None = None
        if name in records:
            entry_owner: str | None = owner
        elif name in foreign:
            entry_owner, foreign_record = foreign[name]
        elif name in statics:
            entry_owner = STATIC_OWNER
        else:
            entry_owner = None
        entries[name] = ActualEntry(
            name=name,
            definition=definition,
            ext=ext,
            meta=meta,
            score=score,
            owner=entry_owner,
            record_raw=records.get(name),
            owner_record_raw=foreign_record,
        )
    return entries


def read_all(client: Any, keys: KeySpace) -> dict[str, ActualEntry]:
    """Every entry in the schedule, with its owner (for export and status)."""
    with _utf8_only(keys.schedule):
        members = [_s(m) for m in client.zrange(keys.schedule, 0, -1)]
    names = sorted({keys.name_of(m) for m in members})
    with _utf8_only(keys.owners):
        owners = sorted(_s(o) for o in client.smembers(keys.owners))
    pipe = client.pipeline(transaction=False)
    for owner in owners:
        pipe.hgetall(keys.owner_index(owner))
    pipe.smembers(keys.statics)
    with _utf8_only(*(keys.owner_index(owner) for owner in owners), keys.statics):
        *indexes, statics_raw = pipe.execute()
    owner_of: dict[str, str] = {}
    for owner, index in zip(owners, indexes, strict=False):
        for name in index:
            owner_of.setdefault(_s(name), owner)
    statics = {_s(s) for s in statics_raw}
    out = {}
    for name, (definition, ext, meta, score) in zip(names, read_entries(client, keys, names), strict=False):
        owner = owner_of.get(name) or (STATIC_OWNER if name in statics else None)
        out[name] = ActualEntry(name, definition, ext, meta, score, owner, None)
    return out


def records_of(state: ActualState) -> Mapping[str, OwnershipRecord]:
    return {name: entry.record for name, entry in state.entries.items() if entry.record is not None}
