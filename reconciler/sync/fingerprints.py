"""Group fingerprints of what a plan reads, computed in Redis by one script, so a resync transfers only digests.

A plan of one name reads the entry's ``definition`` and ``ext``, whether its
``meta`` is readable, this owner's ownership record, and, when this owner has
none, who else holds it (another owner's record, or beat's statics set); see
:func:`reconciler.sync.state.read_state`.  :func:`describe` writes exactly
that as bytes, for an :class:`ActualEntry` the reconciler holds, and the
script writes the same bytes from Redis.  The caller splits its sorted names
into groups; the script answers with one sha1 per group (40 bytes for
:data:`GROUP_SIZE` names) plus the size of the owner index, so a resync that
finds nothing reads about 0.2 bytes an entry.  A group whose digest differs
is then read in full (:func:`reconciler.sync.state.read_named`).

``meta`` changes at every run (beat records it), so it is not hashed as is:
a run state in exactly the shape beat writes stands as ``T`` + whether its
date is in range + its time-zone token, which decides readability with the
zone; anything else is included raw.  :func:`meta_class` (Python) and the
script's ``full_class`` implement the same rule; the script decides beat's
usual run state first from one pattern with the numbers' ranges in it
(``usual_class``, no strings made) and leaves everything else to the full
rule.  Tests run both sides on generated inputs and on every field's limits.

Cost (issue 18): the script's time is about one ``HMGET`` an entry, which
no Redis command batches across keys; everything else is kept near that
floor (values pushed as they are, lengths packed by ``struct``, one sha1 a
group).  The caller's side is kept between resyncs by :class:`GroupDigests`,
so a resync that finds nothing neither sorts, packs nor hashes anything.
Scripts run one batch of at most :data:`BATCH` names each (a few ms of
Redis time), never the whole owner index in one call, one call at a time so
other clients run between them.  On Redis Cluster the prefix carries a hash
tag (docs/design.md §2.3), so every key is in one slot.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from reconciler.sync.state import STATIC_OWNER, ActualEntry
from redbeat.keys import KeySpace

#: Names per group: one digest (40 bytes) stands for this many entries.
GROUP_SIZE = 256
#: Names per script call, a multiple of GROUP_SIZE: a few ms of Redis time (~10-25 ms on a loaded 2-core
#: machine; bench/watch_latency.py reports the longest call). Smaller batches cost no more in all: a call's
#: fixed part (owners, records, HLEN, a round trip) is small beside its entries.
BATCH = 1024

_NUMBER = r"(0|[1-9][0-9]*)"
_META = re.compile(
    r'\{"last_run_at": \{"__type__": "datetime", "year": ' + _NUMBER + r', "month": ' + _NUMBER
    + r', "day": ' + _NUMBER + r', "hour": ' + _NUMBER + r', "minute": ' + _NUMBER + r', "second": ' + _NUMBER
    + r', "microsecond": ' + _NUMBER + r', "timezone": ("[A-Za-z0-9_/+-]+"|-?' + _NUMBER + r"(\.[0-9]+)?)\}"
    r'(, "total_run_count": ' + _NUMBER + r")?\}",
    re.ASCII,
)
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _in_range(year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int) -> bool:
    if not (1 <= year <= 9999 and 1 <= month <= 12 and hour <= 23 and minute <= 59 and second <= 59):
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= day <= _DAYS[month - 1] + (1 if month == 2 and leap else 0) and micro <= 999999


def meta_class(meta: str | None) -> str:
    """What of ``meta`` decides its readability: ``-`` none, ``T<0|1><zone>`` beat's shape, else ``R`` + raw."""
    if not meta:
        return "-"
    match = _META.fullmatch(meta)
    if match is None:
        return "R" + meta
    parts = [int(match.group(i)) for i in range(1, 8)]
    if max(len(match.group(i)) for i in range(1, 8)) > 9:  # the script's numbers are doubles: no long digit runs
        return "R" + meta
    return ("T1" if _in_range(*parts) else "T0") + match.group(8)


#: The length written for an absent value (a Redis string is at most 512 MB, so no real length is this).
ABSENT = 0xFFFFFFFF
_ENTRY_HEAD = struct.Struct(">IIIII")  # lengths of name, definition, ext, record, meta detail
_HOLDER_HEAD = struct.Struct(">II")  # lengths of the other holder's name and its record
_NAME_HEAD = struct.Struct(">I")


def _bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def _optional(value: str | None) -> bytes | None:
    return None if value is None else _bytes(value)


def _meta_parts(meta: str | None) -> tuple[bytes, bytes]:
    """(class, detail) of ``meta`` as the script writes them: ``-``/``T1``/``T0``/``R``, then zone or raw meta."""
    found = meta_class(meta)
    cut = 2 if found[0] == "T" else 1
    return found[:cut].encode(), _bytes(found[cut:])


def _entry_bytes(name: bytes, definition: bytes | None, ext: bytes | None, record: bytes | None,
                 meta: tuple[bytes, bytes]) -> bytes:
    klass, detail = meta
    head = _ENTRY_HEAD.pack(len(name), ABSENT if definition is None else len(definition),
                            ABSENT if ext is None else len(ext), ABSENT if record is None else len(record), len(detail))
    return b"".join((head, name, definition or b"", ext or b"", record or b"", klass, detail))


def _holder_bytes(holder: str | None, record: str | None, static: bool) -> bytes:
    who, held = _optional(holder), _optional(record)
    head = _HOLDER_HEAD.pack(ABSENT if who is None else len(who), ABSENT if held is None else len(held))
    return b"".join((head, who or b"", held or b"", b"S" if static else b"-"))


def describe(name: str, entry: ActualEntry | None, owner: str) -> bytes:
    """The bytes the script writes for ``name``; ``entry`` None means absent and held by nobody.

    Lengths first (4 bytes each, big-endian; :data:`ABSENT` for no value),
    then the values, so no two states write the same bytes; the meta class's
    own length follows from its first byte (``T``: 2, else 1).  Without a
    record of this owner, who else holds the name follows.
    """
    if entry is None:
        return _entry_bytes(_bytes(name), None, None, None, (b"-", b"")) + _holder_bytes(None, None, False)
    text = _entry_bytes(_bytes(name), _optional(entry.definition), _optional(entry.ext),
                        _optional(entry.record_raw), _meta_parts(entry.meta))
    if entry.record_raw is None:
        foreign = entry.owner if entry.owner not in (None, owner, STATIC_OWNER) else None
        text += _holder_bytes(foreign, entry.owner_record_raw if foreign else None, entry.owner == STATIC_OWNER)
    return text


def group_digest(names: Sequence[str], held: Mapping[str, ActualEntry], owner: str) -> str:
    return hashlib.sha1(b"".join(describe(n, held.get(n), owner) for n in names)).hexdigest()


def pack_names(names: Iterable[str]) -> bytes:
    """The script's one argument for a batch of names: each as its length (4 bytes, big-endian) and its bytes."""
    return b"".join(_NAME_HEAD.pack(len(data)) + data for data in map(_bytes, names))


FINGERPRINT_SCRIPT = r"""
local prefix, owner, owner_prefix, group_size, packed = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local call, sha1hex, concat = redis.call, redis.sha1hex, table.concat
local find, match, byte, sub = string.find, string.match, string.byte, string.sub
local pack, unpack_struct = struct.pack, struct.unpack
local ABSENT = 4294967295
local days = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
local SHAPE = '^{"last_run_at": {"__type__": "datetime", "year": (%d+), "month": (%d+), "day": (%d+), "hour": (%d+), '
  .. '"minute": (%d+), "second": (%d+), "microsecond": (%d+), "timezone": ([^}]*)}(.*)$'
-- Beat's usual run state, with each number's range where a Lua pattern can say it; position captures only
-- (no strings made). What the pattern leaves open is checked below; anything else goes to the full rule.
local USUAL = '^{"last_run_at": {"__type__": "datetime", "year": [1-9]%d?%d?%d?, "month": ()1?%d, '
  .. '"day": ()[1-3]?%d, "hour": ()[1-2]?%d, "minute": [1-5]?%d, "second": [1-5]?%d, "microsecond": ()%d+(), '
  .. '"timezone": ()[^}]*()}'
local function zone_ok(zone)
  if find(zone, '^"[%w_/%+%-]+"$') then return true end
  local digits = match(zone, '^%-?(%d+)$') or match(zone, '^%-?(%d+)%.%d+$')
  return digits ~= nil and (#digits == 1 or byte(digits) ~= 48)
end
local function plain(digits) -- a date number as the Python pattern takes it: no leading zero, at most 9 digits
  return #digits <= 9 and (#digits == 1 or byte(digits) ~= 48)
end
local function in_range(y, mo, d, h, mi, s, us)
  if not (y >= 1 and y <= 9999 and mo >= 1 and mo <= 12 and h <= 23 and mi <= 59 and s <= 59 and us <= 999999) then
    return false
  end
  local limit = days[mo]
  if mo == 2 and y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) then limit = 29 end
  return d >= 1 and d <= limit
end
-- The rule itself (meta_class in Python): class and detail.
local function full_class(meta)
  local y, mo, d, h, mi, s, us, zone, tail = match(meta, SHAPE)
  if not y or not zone_ok(zone) then return 'R', meta end
  if tail ~= '}' then
    local count = match(tail, '^, "total_run_count": (%d+)}$')
    if not count or (#count > 1 and byte(count) == 48) then return 'R', meta end
  end
  if not (plain(y) and plain(mo) and plain(d) and plain(h) and plain(mi) and plain(s) and plain(us)) then
    return 'R', meta
  end
  local ok = in_range(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(s), tonumber(us))
  return ok and 'T1' or 'T0', zone
end
local function small_number(meta, at) -- the one or two digits at `at`, which USUAL matched
  local first, second = byte(meta, at, at + 1)
  if second >= 48 and second <= 57 then return (first - 48) * 10 + second - 48 end
  return first - 48
end
-- The same answer for beat's usual run state, from positions; nil leaves it to the full rule. It answers only
-- 'T1' with the zone, and only when every check the full rule makes passes (Feb 29 included: the full rule).
local function usual_class(meta)
  local _, last, month_at, day_at, hour_at, us_at, us_end, zone_at, zone_end = find(meta, USUAL)
  if not last or not (last + 1 == #meta and byte(meta, #meta) == 125
      or find(meta, '^, "total_run_count": [1-9]%d*}$', last + 1)) then
    return nil
  end
  local month, day, digits = small_number(meta, month_at), small_number(meta, day_at), us_end - us_at
  if month < 1 or month > 12 or day < 1 or day > days[month] or small_number(meta, hour_at) > 23
      or digits > 6 or (digits > 1 and byte(meta, us_at) == 48) then
    return nil
  end
  local zone = sub(meta, zone_at, zone_end - 1)
  if not zone_ok(zone) then return nil end
  return 'T1', zone
end
local others = {}
for _, other in ipairs(call('SMEMBERS', KEYS[2])) do
  if other ~= owner then others[#others + 1] = other end
end
table.sort(others)
local names, at, size, count = {}, 1, #packed, 0
while at <= size do
  count = count + 1
  names[count], at = unpack_struct('>I4c0', packed, at)
end
local records = count > 0 and call('HMGET', KEYS[1], unpack(names)) or {}
local digests, parts, k, in_group = {}, {}, 0, 0
-- The hot loop: one HMGET an entry, its values pushed as they are (one concat and sha1 a group); the rare
-- cases (no record of ours, a run state not in beat's usual shape) apart.
for i = 1, count do
  local name = names[i]
  local stored = call('HMGET', prefix .. name, 'definition', 'ext', 'meta')
  local d, e, m, r = stored[1], stored[2], stored[3], records[i]
  local class, detail = '-', ''
  if m and m ~= '' then
    class, detail = usual_class(m)
    if not class then class, detail = full_class(m) end
  end
  parts[k + 1] = pack('>I4I4I4I4I4', #name, d and #d or ABSENT, e and #e or ABSENT, r and #r or ABSENT, #detail)
  parts[k + 2] = name
  parts[k + 3] = d or ''
  parts[k + 4] = e or ''
  parts[k + 5] = r or ''
  parts[k + 6] = class
  parts[k + 7] = detail
  k = k + 7
  if not r then
    local holder, held = nil, nil
    for _, other in ipairs(others) do
      held = call('HGET', owner_prefix .. other, name)
      if held then holder = other break end
    end
    local static = '-'
    if not holder and call('SISMEMBER', KEYS[3], name) == 1 then static = 'S' end
    parts[k + 1] = pack('>I4I4', holder and #holder or ABSENT, held and #held or ABSENT)
    parts[k + 2] = holder or ''
    parts[k + 3] = held or ''
    parts[k + 4] = static
    k = k + 4
  end
  in_group = in_group + 1
  if in_group == group_size or i == count then
    digests[#digests + 1] = sha1hex(concat(parts, '', 1, k))
    k, in_group = 0, 0
  end
end
digests[#digests + 1] = call('HLEN', KEYS[1])
return digests
"""


@dataclass(frozen=True, slots=True)
class Fingerprints:
    """The script's answer: one digest per group of the names asked, and how many records the owner has."""

    groups: list[str]
    owned: int


def _run(client: Any, keys: KeySpace, owner: str, batches: Sequence[bytes]) -> Fingerprints:
    """The script over each packed batch in turn: one call (a few ms of Redis time) a batch."""
    script = client.register_script(FINGERPRINT_SCRIPT)
    routing = [keys.owner_index(owner), keys.owners, keys.statics]
    groups: list[str] = []
    owned = 0
    for batch in batches:
        reply = script(keys=routing, args=[keys.prefix, owner, keys.owner_index(""), GROUP_SIZE, batch])
        groups += [_text(d) for d in reply[:-1]]
        owned = int(reply[-1])
    if not batches:
        owned = int(client.hlen(keys.owner_index(owner)))
    return Fingerprints(groups, owned)


def fingerprints(client: Any, keys: KeySpace, owner: str, names: Sequence[str]) -> Fingerprints:
    """Group digests of ``names`` (in the order given, GROUP_SIZE a group), computed in Redis, BATCH a call."""
    return _run(client, keys, owner, [pack_names(names[i:i + BATCH]) for i in range(0, len(names), BATCH)])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class GroupDigests:
    """One owner's resync bookkeeping, kept between resyncs: the groups of its names, and each group's digest.

    The names are sorted, split and packed for the script only when the set
    of names changed; a group's digest is hashed again only when its names or
    one of its entries did (an :class:`ActualEntry` is immutable, so a read
    that changed nothing still compares equal).  A resync that finds nothing
    then spends its time in Redis, not here.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._names: frozenset[str] = frozenset()
        self._groups: list[tuple[str, ...]] = []
        self._batches: list[bytes] = []
        self._digests: dict[tuple[str, ...], tuple[tuple[ActualEntry | None, ...], str]] = {}

    def groups(self, names: Set[str]) -> list[tuple[str, ...]]:
        """``names`` sorted, GROUP_SIZE a group (the order the script is given them)."""
        if names != self._names:
            ordered = sorted(names)
            self._names = frozenset(names)
            self._groups = [tuple(ordered[i:i + GROUP_SIZE]) for i in range(0, len(ordered), GROUP_SIZE)]
            self._batches = [pack_names(ordered[i:i + BATCH]) for i in range(0, len(ordered), BATCH)]
            kept = set(self._groups)
            self._digests = {group: held for group, held in self._digests.items() if group in kept}
        return self._groups

    def remote(self, client: Any, keys: KeySpace) -> Fingerprints:
        """The script's digests of the groups last returned by :meth:`groups`."""
        return _run(client, keys, self.owner, self._batches)

    def local(self, group: tuple[str, ...], entries: Mapping[str, ActualEntry]) -> str:
        """The digest of ``group`` over ``entries``, what the script answers when Redis holds them."""
        current = tuple(map(entries.get, group))
        cached = self._digests.get(group)
        if cached is not None and cached[0] == current:
            return cached[1]
        digest = hashlib.sha1(b"".join(describe(n, e, self.owner) for n, e in zip(group, current, strict=True)))
        self._digests[group] = (current, digest.hexdigest())
        return digest.hexdigest()
