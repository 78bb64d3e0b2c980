"""EntryStore: the only module that sends entry commands to Redis.

The tick costs two round trips however many entries exist or are due:
``fetch_due`` (renew the lock + read every due entry, one script) and
``settle`` (record the runs and new scores, one script).  Both scripts check
the lock token first, which is the fencing: a beat that lost its lease
cannot read work or write run state any more.  An idle tick is one round
trip.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import redis
from redis.exceptions import NoScriptError, ResponseError, WatchError

from .history import HISTORY_LUA, Outcome
from .keys import KeySpace

logger = logging.getLogger(__name__)

#: Lua helpers shared by the tick's scripts.  ``as_text``: a value whose bytes
#: are UTF-8 as is (false stays false), any other as {hex of its bytes};
#: ``from_text`` undoes it for a member sent back.  Only a value with a byte
#: >= 0x80 is walked byte by byte (string.find is C): ASCII costs one call.
LUA_TEXT_FUNCTIONS = r"""
local function is_utf8(s)
  if not string.find(s, '[\128-\255]') then
    return true
  end
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local size, low, high = 1, 0x80, 0xBF
    if c < 0x80 then
      size = 1
    elseif c >= 0xC2 and c <= 0xDF then
      size = 2
    elseif c >= 0xE0 and c <= 0xEF then
      size = 3
      if c == 0xE0 then low = 0xA0 elseif c == 0xED then high = 0x9F end
    elseif c >= 0xF0 and c <= 0xF4 then
      size = 4
      if c == 0xF0 then low = 0x90 elseif c == 0xF4 then high = 0x8F end
    else
      return false
    end
    if i + size - 1 > n then
      return false
    end
    for j = i + 1, i + size - 1 do
      local d = string.byte(s, j)
      if j == i + 1 then
        if d < low or d > high then return false end
      elseif d < 0x80 or d > 0xBF then
        return false
      end
    end
    i = i + size
  end
  return true
end
local function as_text(value)
  if not value or is_utf8(value) then
    return value
  end
  return {(string.gsub(value, '.', function(c) return string.format('%02x', string.byte(c)) end))}
end
local function from_text(value)
  if type(value) == 'table' then
    return (string.gsub(value[1], '..', function(h) return string.char(tonumber(h, 16)) end))
  end
  return value
end
"""

#: KEYS: schedule zset, heartbeat, history stream [, lock]
#: ARGV: now, limit, prefix, heartbeat, history JSON, history maxlen [, token, lease_ms]
#: Returns {1, next_score|nil, JSON [member, score, definition, meta, ext, pause, trigger, ...]}
#: (absent fields are null), or {0} when a lock is named and this token does
#: not hold it (nothing read, nothing renewed, no heartbeat).  The entries come
#: back as one JSON string: parsing thousands of bulk replies in redis-py cost
#: more than the tick's own work.  The leader's heartbeat (who, when) is
#: written on every tick, so a beat that hangs is visible from outside.
#: A member that is a bare name (the first releases' "zadd PREFIX::schedule
#: 0 name") is read at prefix .. name.
#: The history JSON holds the outcomes (sent, lost) of the previous tick's
#: runs, appended to the run history first: they are facts whoever leads now.
#: Members and fields go out as they are stored, whatever their bytes: the
#: reply is read undecoded and checked for UTF-8 in Python (a C loop, where a
#: Lua pattern over every byte cost more than the rest of the script), and a
#: member or field that is not UTF-8 sets aside only its entry, never the tick
#: (:func:`_due_values`).
FETCH_DUE_SCRIPT = """
""" + HISTORY_LUA + """
append_history(KEYS[3], ARGV[6], cjson.decode(ARGV[5]))
if KEYS[4] then
  if redis.call('GET', KEYS[4]) ~= ARGV[7] then
    return {0}
  end
  redis.call('PEXPIRE', KEYS[4], ARGV[8])
end
redis.call('SET', KEYS[2], ARGV[4])
local prefix = ARGV[3]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local following = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local items = {}
for i = 1, #due, 2 do
  local member = due[i]
  local key = member
  if string.sub(member, 1, #prefix) ~= prefix then
    key = prefix .. member
  end
  local fields = redis.call('HMGET', key, 'definition', 'meta', 'ext', 'pause', 'trigger')
  items[#items + 1] = member
  items[#items + 1] = due[i + 1]
  for f = 1, 5 do
    items[#items + 1] = fields[f] or cjson.null
  end
end
if #items == 0 then
  return {1, following[2] or false, '[]'}
end
return {1, following[2] or false, cjson.encode(items)}
"""

#: KEYS: schedule zset, history stream [, lock]
#: ARGV: prefix, token|'', JSON of the steps, history maxlen, claimed at,
#: unreadable-entries hash;
#: each step [op, member, expected score, new score, meta, entry name, slot].
#: op 'c' (claim a run): iff the member still has the score we read, write
#: meta and the new score; 't' (take a trigger) likewise, iff the entry's
#: trigger field still holds the request (in place of meta): drop it, put the
#: entry's own score back, and record the run with the request's note (step
#: [8]), none for an expired request; 'r' (rescore) the same without meta; 'x' drop the
#: member iff its hash (or the hash's definition) is still missing; 'q'
#: (set aside an entry beat cannot read) rescore it and record why in the
#: unreadable-entries hash (meta holds the reason), which 'c' and 'r' clear,
#: so ``redbeat-apply status`` can show it.  Checking
#: the score makes a claim idempotent per slot: whoever moves the score first
#: owns the slot, so two writers can never dispatch it twice.  A member that
#: is not UTF-8 is sent as {hex of its bytes}.
#: Each applied claim is appended to the run history in the same script, so
#: the history holds a claim exactly when the run state does.
#: Returns {1, flags} with flags one character per step, '1' applied, '0' not
#: (one bulk string: a thousand integer replies cost redis-py more to read),
#: or {0} when the lock is not ours.
SETTLE_SCRIPT = """
LUA_TEXT_FUNCTIONS
if KEYS[3] then
  if redis.call('GET', KEYS[3]) ~= ARGV[2] then
    return {0}
  end
end
""" + HISTORY_LUA + """
local prefix = ARGV[1]
local unreadable = ARGV[6]
local any_unreadable = redis.call('EXISTS', unreadable) == 1
local out = {}
local claimed = {}
for _, step in ipairs(cjson.decode(ARGV[3])) do
  local op, member, expected, score, meta = step[1], from_text(step[2]), step[3], step[4], step[5]
  local key = member
  if string.sub(member, 1, #prefix) ~= prefix then
    key = prefix .. member
  end
  local current = redis.call('ZSCORE', KEYS[1], member)
  local applied = 0
  if op == 'x' then
    if current and redis.call('HEXISTS', key, 'definition') == 0 then
      redis.call('ZREM', KEYS[1], member)
      applied = 1
    end
  elseif current and tonumber(current) == tonumber(expected) then
    if op == 'c' then
      if redis.call('HEXISTS', key, 'definition') == 1 then
        redis.call('HSET', key, 'meta', meta)
        redis.call('ZADD', KEYS[1], score, member)
        applied = 1
      end
    elseif op == 't' then
      -- a trigger (meta: the request as stored): taken once, the entry's own score put back
      if redis.call('HGET', key, 'trigger') == meta then
        redis.call('HDEL', key, 'trigger')
        redis.call('ZADD', KEYS[1], score, member)
        applied = 1
      end
    else
      redis.call('ZADD', KEYS[1], score, member)
      applied = 1
    end
    if op == 'q' then
      redis.call('HSET', unreadable, member, meta)
      any_unreadable = true
    elseif applied == 1 and any_unreadable then
      redis.call('HDEL', unreadable, member)
    end
  end
  out[#out + 1] = applied
  if applied == 1 and op == 'c' then
    claimed[#claimed + 1] = {'claimed', step[6], step[7], ARGV[5], ''}
  elseif applied == 1 and op == 't' and step[8] then
    claimed[#claimed + 1] = {'claimed', step[6], step[7], ARGV[5], step[8]}
  end
end
append_history(KEYS[2], ARGV[4], claimed)
return {1, table.concat(out)}
"""
SETTLE_SCRIPT = SETTLE_SCRIPT.replace("LUA_TEXT_FUNCTIONS", LUA_TEXT_FUNCTIONS)

#: KEYS: the entry hash.  ARGV: the meta a claim wrote, the meta to put back.
#: A claimed run whose send failed is not a run: put ``total_run_count`` back,
#: iff nothing wrote ``meta`` since (``last_run_at`` keeps the slot: never twice).
UNCOUNT_SCRIPT = """
if redis.call('HGET', KEYS[1], 'meta') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'meta', ARGV[2])
  return 1
end
return 0
"""


@dataclass(slots=True)  # not frozen: a tick builds thousands, and a frozen __init__ costs twice as much
class StoredEntry:
    """One due sorted-set member with the raw hash fields read with it (None when absent); never changed.

    ``member`` is bytes when it is not UTF-8; a field that is not is None here and named in ``not_utf8``.
    """

    member: str | bytes
    score: str
    definition: str | None
    meta: str | None
    ext: str | None
    pause: str | None = None  # operator state (redbeat.operator)
    trigger: str | None = None  # a pending "run now" request (redbeat.operator)
    not_utf8: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DueBatch:
    entries: list[StoredEntry]
    next_score: float | None  # the earliest score after now, if any


class Step(Enum):
    CLAIM = "c"
    RESCORE = "r"
    TRIGGER = "t"
    DROP = "x"
    SET_ASIDE = "q"  # an entry beat cannot read: rescore it, record why (meta holds the reason)


@dataclass(slots=True)  # not frozen: one per due entry per tick (see StoredEntry); never changed
class Settlement:
    step: Step
    member: str | bytes
    expected_score: str
    new_score: float = -1.0
    meta: str = ""
    name: str = ""  # a claim's entry name and slot, for the run history
    slot: str = ""
    note: str | None = None  # a trigger's run-history note; None: record no run (an expired trigger)


def _fmt_score(score: float) -> str:
    return repr(float(score))


class EntryStore:
    def __init__(self, client: Any, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys
        self._fetch = client.register_script(FETCH_DUE_SCRIPT)
        self._settle = client.register_script(SETTLE_SCRIPT)
        self._uncount = client.register_script(UNCOUNT_SCRIPT)
        self._read_entries = read_only_script(client, READ_ENTRIES_SCRIPT)
        self._write_statics = client.register_script(WRITE_STATICS_SCRIPT)
        self._statics_digest = read_only_script(client, STATICS_DIGEST_SCRIPT)
        self._statics_digest_sha = client.register_script(STATICS_DIGEST_SCRIPT).sha

    # -- the tick ---------------------------------------------------------------

    def fetch_due(
        self,
        now: float,
        *,
        limit: int,
        lock_key: str | None = None,
        token: str = "",
        lease_ms: int = 0,
        heartbeat: str = "",
        outcomes: Sequence[Outcome] = (),
        history_maxlen: int = 0,
    ) -> DueBatch | None:
        """Every member due at ``now`` (at most ``limit``) with its hash fields; None if the lock is not ours.

        ``outcomes`` (the previous tick's sends) go to the run history first, whoever holds the lock.
        """
        keys = [self.keys.schedule, self.keys.heartbeat, self.keys.history] + ([lock_key] if lock_key else [])
        records = json.dumps([outcome.as_record() for outcome in outcomes] if history_maxlen else [])
        args: list[Any] = [_fmt_score(now), limit, self.keys.prefix, heartbeat, records, history_maxlen]
        if lock_key:
            args += [token, lease_ms]
        reply = _undecoded(self.client, self._fetch, keys, args)
        if not reply or int(reply[0]) != 1:
            return None
        next_score = float(reply[1]) if reply[1] is not None else None
        return DueBatch(_stored_entries(_due_values(reply[2])), next_score)

    def settle(
        self,
        steps: Sequence[Settlement],
        *,
        lock_key: str | None = None,
        token: str = "",
        history_maxlen: int = 0,
        claimed_at: float = 0.0,
    ) -> list[bool] | None:
        """Apply the tick's claims and rescores atomically; per step whether it applied; None if not leader.

        With ``history_maxlen`` each applied claim is appended to the run history, claimed at ``claimed_at``.
        """
        if not steps:
            return []
        keys = [self.keys.schedule, self.keys.history] + ([lock_key] if lock_key else [])
        payload = json.dumps(
            [[step.step.value, _member_arg(step.member), step.expected_score, _fmt_score(step.new_score), step.meta,
              step.name, step.slot, step.note or False] for step in steps],
            separators=(",", ":"),
        )
        args = [self.keys.prefix, token, payload, history_maxlen, repr(claimed_at), self.keys.unreadable]
        reply = self._settle(keys=keys, args=args)
        if not reply or int(reply[0]) != 1:
            return None
        return [flag == "1" for flag in _s(reply[1])]

    def uncount(self, member: str, *, claimed_meta: str, meta: str) -> bool:
        """Put back ``meta`` for a claimed run that was never sent, iff the claim's meta is still there."""
        return bool(self._uncount(keys=[self.keys.entry_key_of(member)], args=[claimed_meta, meta]))

    def unreadable(self) -> dict[str, dict[str, Any]]:
        """The entries beat set aside as unreadable: member -> {"reason", "seen_at"} (as beat recorded them)."""
        out: dict[str, dict[str, Any]] = {}
        for member, raw in self.client.hgetall(self.keys.unreadable).items():
            try:
                out[_s(member)] = json.loads(_s(raw))
            except (ValueError, UnicodeDecodeError):
                out[_s(member)] = {"reason": "unreadable record", "seen_at": None}
        return out

    def append_history(self, outcomes: Sequence[Outcome], maxlen: int) -> None:
        """Append outcomes to the run history outside a tick (beat's shutdown), one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        for outcome in outcomes:
            event, entry, slot, at, reason = outcome.as_record()
            fields = {"event": event, "entry": entry, "slot": slot, "at": at, **({"reason": reason} if reason else {})}
            pipe.xadd(self.keys.history, fields, maxlen=maxlen, approximate=True)
        pipe.execute()

    # -- single entries (Entry API, statics) --------------------------------------

    def read(self, key: str) -> tuple[str | None, str | None, str | None]:
        definition, meta, ext = self.client.hmget(key, "definition", "meta", "ext")
        return _s(definition), _s(meta), _s(ext)

    def read_many(self, keys: Sequence[str]) -> list[tuple[str | None, str | None, str | None, float | None]]:
        """(definition, meta, ext, score) per key, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, "definition", "meta", "ext")
            pipe.zscore(self.keys.schedule, key)
        replies = pipe.execute()
        out = []
        for i in range(0, len(replies), 2):
            definition, meta, ext = replies[i]
            out.append((_s(definition), _s(meta), _s(ext), replies[i + 1]))
        return out

    def save(
        self,
        key: str,
        *,
        definition: str,
        ext: str | None,
        meta_if_absent: str,
        score_for_meta: Any,
        retries: int = 10,
    ) -> str:
        """Write a definition; keep stored run state; score from the run state that ends up stored.

        ``score_for_meta(meta_json) -> float`` computes the score from the meta
        that will be in Redis after the write (the stored one when there is
        one, else ``meta_if_absent``), so re-saving an entry never resets its
        run state or its due time (celery-redbeat #313) and a changed
        schedule takes effect at once (#221, #232).  WATCH/MULTI: a beat
        that records a run meanwhile makes us retry, never lose its meta.
        Returns the meta now stored.
        """
        for _ in range(retries):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)
                    stored_meta = _s(pipe.hget(key, "meta"))
                    meta = stored_meta or meta_if_absent
                    score = score_for_meta(meta)
                    pipe.multi()
                    pipe.hset(key, "definition", definition)
                    if ext is None:
                        pipe.hdel(key, "ext")
                    else:
                        pipe.hset(key, "ext", ext)
                    if stored_meta is None:
                        pipe.hset(key, "meta", meta)
                    self._file(pipe, key, score)
                    pipe.execute()
                    self._announce(key)
                    return meta
                except WatchError:
                    continue
        raise RuntimeError(f"{key}: saving gave up after {retries} concurrent modifications")

    def write_run_state(self, key: str, *, meta: str, score: float) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, "meta", meta)
            self._file(pipe, key, score)
            pipe.execute()
        self._announce(key)

    def _announce(self, key: str) -> None:
        """Publish ``key`` on the wake channel after a write: a sleeping beat and a watching redbeat-apply
        learn of it at once.  Only a hint (beat re-reads at its next tick anyway): a user without the
        channel's right, or a connection lost just now, does not turn a write that happened into an error."""
        try:
            self.client.publish(self.keys.wake_channel, key)
        except redis.RedisError as exc:
            logger.warning("redbeat: wrote %s but could not publish it on %s: %s", key, self.keys.wake_channel, exc)

    def _file(self, pipe: Any, key: str, score: float) -> None:
        """Queue the entry under ``score``, replacing a first-releases bare-name member of it."""
        pipe.zadd(self.keys.schedule, {key: score})
        bare = self._bare_member(key)
        if bare is not None:
            pipe.zrem(self.keys.schedule, bare)

    def _bare_member(self, key: str) -> str | None:
        """The first releases' bare-name member that stands for ``key`` ("zadd P:schedule 0 name"), if any can."""
        name = self.keys.name_of(key)
        if name == key or name.startswith(self.keys.prefix):
            return None
        return name

    def delete(self, key: str) -> None:
        bare = self._bare_member(key)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(self.keys.schedule, key, *([bare] if bare else []))
            pipe.delete(key)
            pipe.execute()
        self._announce(key)  # as save does: readers of the channel learn of it

    def members(self) -> list[tuple[str, float]]:
        return [(_s(m) or "", float(s)) for m, s in self.client.zrange(self.keys.schedule, 0, -1, withscores=True)]

    def score(self, member: str) -> float | None:
        value = self.client.zscore(self.keys.schedule, member)
        return None if value is None else float(value)

    def rank(self, member: str) -> int | None:
        rank: int | None = self.client.zrank(self.keys.schedule, member)  # redis-py types replies loosely
        return rank

    # -- beat_schedule (statics) ------------------------------------------------

    def read_entries(self, names: Sequence[str]) -> list[tuple[str | None, str | None, str | None, float | None]]:
        """(definition, meta, ext, score) per entry name, one read-only script per 20k names."""
        out: list[tuple[str | None, str | None, str | None, float | None]] = []
        for start in range(0, len(names), READ_BATCH):
            batch = list(names[start:start + READ_BATCH])
            reply = json.loads(_s(self._read_entries([self.keys.schedule], [self.keys.prefix, json.dumps(batch)])))
            # A field that is not UTF-8 (a list: its hex bytes) reads as unreadable, like an absent one.
            values = [None if value is False or isinstance(value, list) else value for value in reply]
            for i in range(0, len(values), 4):
                score = values[i + 3]
                out.append((values[i], values[i + 1], values[i + 2], None if score is None else float(score)))
        return out

    def read_statics(
        self, names: Iterable[str]
    ) -> tuple[set[str], dict[str, tuple[str | None, str | None, str | None, float | None]]]:
        """The recorded static names and, per name, its stored (definition, meta, ext, score)."""
        names = list(names)
        recorded = {_s(m) for m in self.client.smembers(self.keys.statics)}
        return recorded, dict(zip(names, self.read_entries(names), strict=False))

    def start_statics_digest(self, names: list[str]) -> Callable[[], tuple[str, int, int]]:
        """Send the digest script now and return a function that reads its answer.

        Redis hashes the stored statics while Python encodes the configured
        ones (the two halves of an unchanged restart take about as long).
        Only on a plain redis-py client; otherwise the script runs at once.
        """
        client = self.client
        if type(client) is not redis.Redis:
            answer = self.statics_digest(names)
            return lambda: answer
        pool = client.connection_pool
        connection = pool.get_connection()
        # redis-py leaves Connection.send_command and disconnect unannotated
        try:
            connection.send_command(  # type: ignore[no-untyped-call]
                "EVALSHA_RO", self._statics_digest_sha, 2, self.keys.schedule, self.keys.statics, self.keys.prefix,
                *names,
            )
        except BaseException:
            connection.disconnect()  # type: ignore[no-untyped-call]
            pool.release(connection)
            raise

        def collect() -> tuple[str, int, int]:
            try:
                digest, size, present = connection.read_response()
            except (NoScriptError, ResponseError):
                pool.release(connection)  # the error was read in full: the connection is clean
                return self.statics_digest(names)  # loads the script, or runs it on Redis 6
            except BaseException:
                connection.disconnect()  # type: ignore[no-untyped-call]
                pool.release(connection)
                raise
            pool.release(connection)
            return _s(digest), int(size), int(present)

        return collect

    def statics_digest(self, names: list[str]) -> tuple[str, int, int]:
        """(digest of the named entries as stored, size of the statics set, how many of ``names`` are in it)."""
        keys, args = [self.keys.schedule, self.keys.statics], [self.keys.prefix, *names]
        digest, size, present = self._statics_digest(keys, args)
        return _s(digest), int(size), int(present)

    def write_statics(
        self,
        *,
        writes: Mapping[str, tuple[str, str | None, str | None, float]],
        removed: Iterable[str],
        names: Iterable[str],
        record_names: bool,
    ) -> None:
        """One atomic script: definitions, removals, the statics set.

        A definition is name -> (definition, ext, meta-if-absent, score).
        """
        removed = list(removed)
        if not writes and not removed and not record_names:
            return
        payload = json.dumps(
            {
                "w": [
                    [name, definition, ext or "", meta or "", _fmt_score(score)]
                    for name, (definition, ext, meta, score) in writes.items()
                ],
                "r": removed,
                "n": list(names) if record_names else [],
            },
            separators=(",", ":"),
        )
        self._write_statics(keys=[self.keys.schedule, self.keys.statics], args=[self.keys.prefix, payload])


#: KEYS: schedule zset.  ARGV: prefix, JSON list of entry names.  Returns one
#: JSON list of 4 values per name: definition, meta, ext, score (false when
#: absent; a field that is not UTF-8 as {hex}).  One script and one JSON value instead of a pipeline of two
#: commands per entry: redis-py's per-command and per-element cost dominated
#: reading thousands of entries.  Read-only.
READ_ENTRIES_SCRIPT = """
LUA_TEXT_FUNCTIONS
local out = {}
for _, name in ipairs(cjson.decode(ARGV[2])) do
  local key = ARGV[1] .. name
  local fields = redis.call('HMGET', key, 'definition', 'meta', 'ext')
  out[#out + 1] = as_text(fields[1])
  out[#out + 1] = as_text(fields[2])
  out[#out + 1] = as_text(fields[3])
  out[#out + 1] = redis.call('ZSCORE', KEYS[1], key)
end
if #out == 0 then
  return '[]'
end
return cjson.encode(out)
"""
READ_ENTRIES_SCRIPT = READ_ENTRIES_SCRIPT.replace("LUA_TEXT_FUNCTIONS", LUA_TEXT_FUNCTIONS)
#: Names per read script call, so one call never blocks Redis for long.
READ_BATCH = 20_000

#: KEYS: schedule zset, statics set.  ARGV: prefix, then the entry names (sorted).
#: Returns {sha1 of "definition\next\nin-schedule\n" per name, size of the
#: statics set, how many of the names are in it}: a restart with an
#: unchanged beat_schedule compares one digest instead of reading every
#: entry, yet notices a deleted or evicted entry.  Read-only.
STATICS_DIGEST_SCRIPT = """
local prefix = ARGV[1]
local parts, present = {}, 0
for first = 2, #ARGV, 4000 do
  -- unpack() is bounded by Lua's stack: batch ZMSCORE and SMISMEMBER
  local last = math.min(first + 3999, #ARGV)
  local keys = {}
  for i = first, last do
    keys[#keys + 1] = prefix .. ARGV[i]
  end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(keys))
  local members = redis.call('SMISMEMBER', KEYS[2], unpack(ARGV, first, last))
  for j = 1, #keys do
    local values = redis.call('HMGET', keys[j], 'definition', 'ext')
    if not values[1] then
      -- a static is missing (a first start, an eviction): the digest cannot match, stop reading
      return {'', redis.call('SCARD', KEYS[2]), 0}
    end
    parts[#parts + 1] = values[1]
    parts[#parts + 1] = values[2] or ''
    parts[#parts + 1] = scores[j] and '1' or '0'
    present = present + members[j]
  end
end
parts[#parts + 1] = ''
return {redis.sha1hex(table.concat(parts, '\\n')), redis.call('SCARD', KEYS[2]), present}
"""

#: KEYS: schedule zset, statics set.  ARGV: prefix, then one JSON object
#: {"w": [[name, definition, ext|'', meta-if-absent|'', score], ...],
#:  "r": [removed names], "n": [names to record in the statics set]}.
#: Atomic, like the MULTI it replaces, in one command (and one argument:
#: redis-py packs every argument in Python) instead of four per entry.
WRITE_STATICS_SCRIPT = """
local prefix = ARGV[1]
local changes = cjson.decode(ARGV[2])
for _, write in ipairs(changes['w']) do
  local name, definition, ext, meta, score = write[1], write[2], write[3], write[4], write[5]
  local key = prefix .. name
  if ext == '' then
    redis.call('HDEL', key, 'ext')
    redis.call('HSET', key, 'definition', definition)
  else
    redis.call('HSET', key, 'definition', definition, 'ext', ext)
  end
  if meta ~= '' then
    redis.call('HSETNX', key, 'meta', meta)
  end
  redis.call('ZADD', KEYS[1], score, key)
end
for _, name in ipairs(changes['r']) do
  local key = prefix .. name
  redis.call('ZREM', KEYS[1], key)
  redis.call('DEL', key)
  redis.call('SREM', KEYS[2], name)
end
local names = changes['n']
for first = 1, #names, 1000 do
  -- unpack() is bounded by Lua's stack: add the names in chunks
  redis.call('SADD', KEYS[2], unpack(names, first, math.min(first + 999, #names)))
end
return 1
"""


def read_only_script(client: Any, source: str) -> Any:
    """``call(keys, args)`` running ``source`` with EVALSHA_RO (Redis 7 refuses any write), else plain EVALSHA."""
    script = client.register_script(source)

    def call(keys: list[str], args: list[Any]) -> Any:
        try:
            return client.evalsha_ro(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(source)
            return client.evalsha_ro(script.sha, len(keys), *keys, *args)
        except ResponseError as exc:
            if "unknown command" not in str(exc).lower():
                raise
            return script(keys=keys, args=args)  # Redis 6

    return call


def _undecoded(client: Any, script: Any, keys: list[str], args: list[Any]) -> Any:
    """Run a registered script with its reply left as bytes (redis-py's NEVER_DECODE), loading it if needed."""
    command = ("EVALSHA", script.sha, len(keys), *keys, *args)
    try:
        return client.execute_command(*command, NEVER_DECODE=True)
    except NoScriptError:
        client.script_load(script.script)
        return client.execute_command(*command, NEVER_DECODE=True)


def _due_values(raw: bytes | str) -> list[Any]:
    """The fetch script's JSON list; a value whose bytes are not UTF-8 becomes [its bytes in hex].

    The whole reply is decoded at once (it is UTF-8 unless some member or field is not); only when it
    is not is each value looked at: its undecodable bytes were kept as surrogates, which give them back.
    """
    if isinstance(raw, str):
        return list(json.loads(raw))
    try:
        return list(json.loads(raw.decode("utf-8")))
    except UnicodeDecodeError:
        return [_text_or_hex(value) for value in json.loads(raw.decode("utf-8", "surrogateescape"))]


def _text_or_hex(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8
        return [value.encode("utf-8", "surrogateescape").hex()]
    return value


def _stored_entries(values: list[Any]) -> list[StoredEntry]:
    """The fetch script's flat list, seven values per due entry, as StoredEntry objects.

    Thousands per tick: a row of plain text (no value is a list, i.e. every byte was UTF-8) is built
    directly; any other row goes through :func:`_stored_entry`.
    """
    entries = []
    row = iter(values)
    for member, score, definition, meta, ext, pause, trigger in zip(row, row, row, row, row, row, row, strict=True):
        if list in (type(member), type(definition), type(meta), type(ext), type(pause), type(trigger)):
            entries.append(_stored_entry([member, score, definition, meta, ext, pause, trigger]))
        else:
            entries.append(StoredEntry(member, score, definition, meta, ext, pause, trigger))
    return entries


def _stored_entry(values: list[Any]) -> StoredEntry:
    """A due entry from the fetch script's seven values; a value that is a list was not UTF-8 (its hex bytes)."""
    member, score, *fields = values
    names = ("definition", "meta", "ext", "pause", "trigger")
    bad = tuple(name for name, value in zip(names, fields, strict=True) if isinstance(value, list))
    if isinstance(member, list):
        member = bytes.fromhex(member[0])
    definition, meta, ext, pause, trigger = (None if isinstance(value, list) else value for value in fields)
    return StoredEntry(member, score, definition, meta, ext, pause, trigger, bad)


def _member_arg(member: str | bytes) -> Any:
    """A member as the settle script takes it: text as is, bytes that are not UTF-8 as [hex]."""
    return [member.hex()] if isinstance(member, bytes) else member


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value
