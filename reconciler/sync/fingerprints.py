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
script's ``meta_class`` implement the same rule, and a test runs both on
generated inputs.

Scripts run one batch of at most :data:`BATCH` names each (a few ms of
Redis time), never the whole owner index in one call.  On Redis Cluster the
prefix carries a hash tag (docs/design.md §2.3), so every key is in one slot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.sync.state import STATIC_OWNER, ActualEntry
from redbeat.keys import KeySpace

#: Names per group: one digest (40 bytes) stands for this many entries.
GROUP_SIZE = 256
#: Names per script call, a multiple of GROUP_SIZE.
BATCH = 4096

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


def _field(value: str | None) -> bytes:
    if value is None:
        return b"~"
    data = value.encode("utf-8", "surrogateescape")
    return str(len(data)).encode() + b":" + data


def describe(name: str, entry: ActualEntry | None, owner: str) -> bytes:
    """The bytes the script writes for ``name``; ``entry`` None means absent and held by nobody."""
    if entry is None:
        return _field(name) + b"~~~" + b"~~-" + _field("-")
    head = _field(name) + _field(entry.definition) + _field(entry.ext) + _field(entry.record_raw)
    if entry.record_raw is None:
        foreign = entry.owner if entry.owner not in (None, owner, STATIC_OWNER) else None
        static = b"S" if entry.owner == STATIC_OWNER else b"-"
        head += _field(foreign) + _field(entry.owner_record_raw if foreign else None) + static
    return head + _field(meta_class(entry.meta))


def group_digest(names: Sequence[str], held: dict[str, ActualEntry], owner: str) -> str:
    return hashlib.sha1(b"".join(describe(n, held.get(n), owner) for n in names)).hexdigest()


FINGERPRINT_SCRIPT = r"""
local prefix, owner, owner_prefix, group_size = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local function field(value)
  if not value then return '~' end
  return #value .. ':' .. value
end
local days = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
local function number(text)
  if #text > 9 or (#text > 1 and string.sub(text, 1, 1) == '0') then return nil end
  return tonumber(text)
end
local function meta_class(meta)
  if not meta or meta == '' then return '-' end
  local y, mo, d, h, mi, s, us, rest = string.match(meta,
    '^{"last_run_at": {"__type__": "datetime", "year": (%d+), "month": (%d+), "day": (%d+), "hour": (%d+), ' ..
    '"minute": (%d+), "second": (%d+), "microsecond": (%d+), "timezone": (.*)$')
  if not y then return 'R' .. meta end
  local zone, tail = string.match(rest, '^("[%w_/%+%-]+")}(.*)$')
  if not zone then
    zone, tail = string.match(rest, '^(%-?%d+%.%d+)}(.*)$')
    if not zone then zone, tail = string.match(rest, '^(%-?%d+)}(.*)$') end
    if zone then
      local digits = string.match(zone, '^%-?(%d+)')
      if #digits > 1 and string.sub(digits, 1, 1) == '0' then zone = nil end
    end
  end
  if not zone then return 'R' .. meta end
  if tail ~= '}' then
    local count = string.match(tail, '^, "total_run_count": (%d+)}$')
    if not count or (#count > 1 and string.sub(count, 1, 1) == '0') then return 'R' .. meta end
  end
  local n = {number(y), number(mo), number(d), number(h), number(mi), number(s), number(us)}
  for i = 1, 7 do
    if not n[i] then return 'R' .. meta end
  end
  local ok = n[1] >= 1 and n[1] <= 9999 and n[2] >= 1 and n[2] <= 12 and n[4] <= 23 and n[5] <= 59
    and n[6] <= 59 and n[7] <= 999999
  if ok then
    local limit = days[n[2]]
    if n[2] == 2 and n[1] % 4 == 0 and (n[1] % 100 ~= 0 or n[1] % 400 == 0) then limit = 29 end
    ok = n[3] >= 1 and n[3] <= limit
  end
  return (ok and 'T1' or 'T0') .. zone
end
local others = {}
for _, other in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if other ~= owner then others[#others + 1] = other end
end
table.sort(others)
local names = {}
for i = 5, #ARGV do names[#names + 1] = ARGV[i] end
local records = redis.call('HMGET', KEYS[1], unpack(names))
local digests, parts, k, count = {}, {}, 0, #names
local fmt = string.format
-- The hot loop: one HMGET an entry, one string.format; the rare cases (no record of ours, a run state) apart.
for i, name in ipairs(names) do
  local stored = redis.call('HMGET', prefix .. name, 'definition', 'ext', 'meta')
  local d, e, m, r = stored[1], stored[2], stored[3], records[i]
  local text = fmt('%d:%s%s%s%s', #name, name, d and (#d .. ':' .. d) or '~', e and (#e .. ':' .. e) or '~',
    r and (#r .. ':' .. r) or '~')
  if not r then
    local holder, held = false, false
    for _, other in ipairs(others) do
      held = redis.call('HGET', owner_prefix .. other, name)
      if held then holder = other break end
    end
    local static = '-'
    if not holder and redis.call('SISMEMBER', KEYS[3], name) == 1 then static = 'S' end
    text = text .. field(holder) .. field(held) .. static
  end
  local class = '-'
  if m and m ~= '' then class = meta_class(m) end
  k = k + 1
  parts[k] = text .. #class .. ':' .. class
  if k == group_size or i == count then
    digests[#digests + 1] = redis.sha1hex(table.concat(parts))
    parts, k = {}, 0
  end
end
digests[#digests + 1] = redis.call('HLEN', KEYS[1])
return digests
"""


@dataclass(frozen=True, slots=True)
class Fingerprints:
    """The script's answer: one digest per group of the names asked, and how many records the owner has."""

    groups: list[str]
    owned: int


def fingerprints(client: Any, keys: KeySpace, owner: str, names: Sequence[str]) -> Fingerprints:
    """Group digests of ``names`` (in the order given, GROUP_SIZE a group), computed in Redis, BATCH a call."""
    script = client.register_script(FINGERPRINT_SCRIPT)
    routing = [keys.owner_index(owner), keys.owners, keys.statics]
    groups: list[str] = []
    owned = 0
    for start in range(0, len(names), BATCH):
        batch = list(names[start:start + BATCH])
        reply = script(keys=routing, args=[keys.prefix, owner, keys.owner_index(""), GROUP_SIZE, *batch])
        groups += [_text(d) for d in reply[:-1]]
        owned = int(reply[-1])
    if not names:
        owned = int(client.hlen(keys.owner_index(owner)))
    return Fingerprints(groups, owned)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
