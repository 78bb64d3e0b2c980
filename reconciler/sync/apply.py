"""apply_plan(plan, client, keys) -> ApplyResult: one atomic script writes exactly what the plan lists.

All or nothing: every change is checked first (the entry still has the
fingerprint the plan read, the ownership record is still the one the plan
read) and only then is anything written, in one Lua script, which Redis runs
atomically and logs to the AOF as one unit.  A beat that records runs
meanwhile only touches ``meta`` and scores, which the check ignores and the
writes keep, so its work is never lost.  Two applies of one owner serialise
on the same check: the later one finds the records changed and re-plans (or,
for a saved plan, refuses).  An empty plan sends nothing at all.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.core.errors import ApplyPermissionError, StalePlanError
from reconciler.sync.plan import WRITE_OPS, Change, Op, Plan
from reconciler.sync.state import OwnershipRecord, fingerprint
from redbeat.codec import encode_ext
from redbeat.keys import KeySpace

#: ``allowed(command, key, ...)``: whether this connection's ACL user may run it (Redis 7's
#: redis.acl_check_cmd; older servers have no ACLs to check).  Scripts check before their first write,
#: so a user without a right gets an error and Redis stays unchanged.
ACL_ALLOWED_LUA = """
local function allowed(...)
  if not redis.acl_check_cmd then
    return true
  end
  return redis.acl_check_cmd(...)
end
"""

#: KEYS: schedule zset, owner index hash, owners set, beat's statics set.
#: ARGV: prefix, owner, wake channel, then one JSON array of steps (one
#: argument, not ten per change: redis-py packs each argument in Python),
#: each [op, name, expected fingerprint, expected record ('' = none),
#: definition, ext ('' = none), record, reschedule ('1' rescore, '2' also drop
#: unreadable meta, '0' keep), score if it has run, score if never run,
#: previous owner ('' = none), its expected record, '1' if the entry was
#: unowned], then the owner-index key prefix.
#: Phase 1 checks every change, and that the user may run every write it
#: needs (Redis 7 ACLs), and returns {0, name, what} at the first mismatch,
#: having written nothing.  An adopt also checks who holds the entry now: an
#: unowned one must still be unowned (in no owner's index, not a
#: beat_schedule static), a taken-over one still held by the owner the plan
#: read, with the record it read; phase 2 then removes it from every other
#: owner's index, so no two owners ever hold one entry.  Phase 2 writes only bytes that differ, so
#: re-applying the same plan changes nothing; it compares with what phase 1 read (a step writes only its
#: own entry and its own index field, so no earlier step can have changed them).  Returns {1, commands
#: written}.
APPLY_SCRIPT = """
local prefix, owner, channel = ARGV[1], ARGV[2], ARGV[3]
local steps = cjson.decode(ARGV[4])
local owner_index = ARGV[5]
-- The other owners whose index holds name.
local function holders(name)
  local found = {}
  for _, other in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if other ~= owner and redis.call('HEXISTS', owner_index .. other, name) == 1 then
      found[#found + 1] = other
    end
  end
  return found
end
-- An adopt of an unowned entry: nobody may hold it now.  A take-over: the
-- previous owner still holds it with the record the plan read (any further
-- holder, left by an older release that let two owners adopt one entry, is
-- handed over too).
local function holder_changed(name, previous, previous_record, unowned)
  if unowned == '1' then
    return #holders(name) > 0 or redis.call('SISMEMBER', KEYS[4], name) == 1
  end
  return previous ~= '' and redis.call('HGET', owner_index .. previous, name) ~= previous_record
end
ACL_ALLOWED_LUA
if not (allowed('PUBLISH', channel, 'm') and allowed('SADD', KEYS[3], 'o')) then
  return {0, '', 'permission'}
end
local read = {}  -- per step, phase 1's {definition, ext} and record: phase 2 writes only other steps' keys
for i, step in ipairs(steps) do
  local op, name, expected_fp, expected_record = step[1], step[2], step[3], step[4]
  local key = prefix .. name
  local ok
  if op == 'delete' then
    ok = allowed('DEL', key) and allowed('ZREM', KEYS[1], key) and allowed('HDEL', KEYS[2], name)
  else
    ok = allowed('HSET', key, 'f', 'v') and allowed('HDEL', key, 'f') and allowed('ZADD', KEYS[1], '0', key)
      and allowed('HSET', KEYS[2], name, 'v') and (op ~= 'adopt' or allowed('SREM', KEYS[4], name))
  end
  if ok and op == 'adopt' and step[13] == '0' then
    for _, other in ipairs(holders(name)) do
      ok = ok and allowed('HDEL', owner_index .. other, name)
    end
  end
  if not ok then
    return {0, name, 'permission'}
  end
  local fields = redis.call('HMGET', key, 'definition', 'ext')
  local fp = 'absent'
  if fields[1] then
    fp = redis.sha1hex(fields[1] .. '\\n' .. (fields[2] or ''))
  end
  if fp ~= expected_fp then
    return {0, name, 'entry'}
  end
  local record = redis.call('HGET', KEYS[2], name) or ''
  if record ~= expected_record then
    return {0, name, 'ownership record'}
  end
  read[i] = {fields, record}
  if op == 'adopt' and holder_changed(name, step[11], step[12], step[13]) then
    return {0, name, 'owner'}
  end
end
local written = 0
for i, step in ipairs(steps) do
  local op, name = step[1], step[2]
  local definition, ext, record = step[5], step[6], step[7]
  local reschedule, score_run, score_never = step[8], step[9], step[10]
  local key = prefix .. name
  if op == 'delete' then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], key)
    redis.call('HDEL', KEYS[2], name)
    written = written + 3
  else
    local current, current_record = read[i][1], read[i][2]
    if current[1] ~= definition then
      redis.call('HSET', key, 'definition', definition)
      written = written + 1
    end
    if ext == '' then
      if current[2] then
        redis.call('HDEL', key, 'ext')
        written = written + 1
      end
    elseif current[2] ~= ext then
      redis.call('HSET', key, 'ext', ext)
      written = written + 1
    end
    if reschedule == '2' then
      redis.call('HDEL', key, 'meta')
      written = written + 1
    end
    if reschedule ~= '0' or not redis.call('ZSCORE', KEYS[1], key) then
      local score = score_never
      if redis.call('HEXISTS', key, 'meta') == 1 then
        score = score_run
      end
      redis.call('ZADD', KEYS[1], score, key)
      written = written + 1
    end
    if current_record ~= record then
      redis.call('HSET', KEYS[2], name, record)
      written = written + 1
    end
    -- An adopted beat_schedule entry is ours now: beat must not prune it at its next start.
    if op == 'adopt' and redis.call('SREM', KEYS[4], name) == 1 then
      written = written + 1
    end
    -- A handover: the old owner no longer holds it, so its next prune cannot delete it from under us.
    if op == 'adopt' and step[13] == '0' then
      for _, other in ipairs(holders(name)) do
        redis.call('HDEL', owner_index .. other, name)
        written = written + 1
      end
    end
  end
end
if written > 0 then
  if redis.call('SISMEMBER', KEYS[3], owner) == 0 and redis.call('HLEN', KEYS[2]) > 0 then
    redis.call('SADD', KEYS[3], owner)
  end
  redis.call('PUBLISH', channel, owner)
end
return {1, written}
"""
APPLY_SCRIPT = APPLY_SCRIPT.replace("ACL_ALLOWED_LUA", ACL_ALLOWED_LUA)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    changes: int
    commands_written: int


def encode_definition(definition: dict[str, Any]) -> str:
    """The bytes stored for a definition: celery-redbeat's json.dumps (default separators, key order kept)."""
    return json.dumps(definition)


def scores_for(definition: dict[str, Any], now: float) -> tuple[float, float]:
    """(score if the entry has run, score if it never ran) for an entry written now.

    A score is only when beat looks again; beat decides from ``meta``.  So
    "now" is always safe for an entry that has run: beat re-reads it at once
    and files it under its exact next due time, in its own time zone.  A
    never-run interval entry is due at its score (celery semantics: first run
    one interval after creation); a never-run crontab or rrule waits for its
    first real occurrence at or after its score.  A disabled entry is not in
    the due index at all.
    """
    if not definition.get("enabled", True):
        return -1.0, -1.0
    schedule = definition.get("schedule") or {}
    if schedule.get("__type__") == "interval":
        return now, now + float(schedule["every"])
    return now, now


@dataclass(frozen=True, slots=True)
class WriteStep:
    """One change as the apply script takes it; also what a saved plan file stores."""

    op: Op  # a write: CREATE, UPDATE, ADOPT or DELETE
    name: str
    expected_fingerprint: str
    expected_record: str  # '' when there was none
    definition: str = ""
    ext: str = ""
    record: str = ""
    reschedule: bool = False
    score_if_run_offset: float = 0.0  # seconds after apply time
    score_if_never_offset: float = 0.0
    disabled: bool = False
    reset_meta: bool = False  # unreadable run state: drop it, the entry runs as new
    previous_owner: str = ""  # adopt: the owner that held it ('' = none), whose index loses it
    previous_record: str = ""  # that owner's record as the plan read it
    unowned: bool = False  # adopt: nobody held it when planned, and nobody may hold it when written

    def arguments(self, now: float) -> list[str]:
        run = -1.0 if self.disabled else now + self.score_if_run_offset
        never = -1.0 if self.disabled else now + self.score_if_never_offset
        return [
            self.op.value, self.name, self.expected_fingerprint, self.expected_record, self.definition, self.ext,
            self.record, ("2" if self.reset_meta else "1") if self.reschedule or self.reset_meta else "0",
            repr(run), repr(never), self.previous_owner, self.previous_record, "1" if self.unowned else "0",
        ]

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__} | {"op": self.op.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WriteStep:
        """The step a saved plan holds; raises ValueError for an op that is not a write."""
        op = Op(data["op"])
        if op not in WRITE_OPS:
            raise ValueError(f"{op.value!r} is not a write")
        # Plans saved before the handover fields existed lack them: their defaults mean "no previous owner".
        return cls(**{name: data[name] for name in cls.__slots__ if name in data} | {"op": op})


def write_step(change: Change) -> WriteStep:
    expected_fp, expected_record = change.expected_fingerprint, change.expected_record or ""
    if change.op is Op.DELETE:
        return WriteStep(Op.DELETE, change.name, expected_fp, expected_record)
    desired = change.desired
    assert desired is not None
    definition = encode_definition(desired.definition)
    ext = encode_ext(desired.ext) or ""
    record = OwnershipRecord(fingerprint(definition, ext or None), desired.protected).to_json()
    run_offset, never_offset = scores_for(desired.definition, 0.0)
    held = change.actual if change.op is Op.ADOPT else None
    # owner_record_raw is set only when another owner's index holds it (not for a beat_schedule static).
    previous_owner, previous_record = "", ""
    if held is not None and held.owner is not None and held.owner_record_raw is not None:
        previous_owner, previous_record = held.owner, held.owner_record_raw
    return WriteStep(
        change.op, change.name, expected_fp, expected_record, definition, ext, record,
        change.reschedule, run_offset, never_offset, not desired.definition.get("enabled", True),
        change.reset_run_state,
        previous_owner, previous_record, held is not None and held.owner is None,
    )


def apply_steps(
    steps: list[WriteStep], owner: str, client: Any, keys: KeySpace, *, clock: Callable[[], float] = time.time
) -> ApplyResult:
    """Write the steps atomically; raise StalePlanError (nothing written) if Redis moved on."""
    if not steps:
        return ApplyResult(0, 0)
    # Whole seconds: a never-run interval entry's slots are anchored at its score, and celery-redbeat's tick
    # fetches scores up to the current whole second, so entries due in one second must share it.  Rounded
    # up: an entry re-enabled (or changed) now is filed no earlier than now, so it never runs a slot that
    # fell before the apply.
    now = float(math.ceil(clock()))
    payload = json.dumps([step.arguments(now) for step in steps], separators=(",", ":"))
    script = client.register_script(APPLY_SCRIPT)
    reply = script(keys=[keys.schedule, keys.owner_index(owner), keys.owners, keys.statics],
                   args=[keys.prefix, owner, keys.wake_channel, payload, keys.owner_index("")])
    if int(reply[0]) != 1:
        name, what = _text(reply[1]), _text(reply[2])
        if what == "permission":
            raise ApplyPermissionError(
                f"the Redis user may not run every write needed for {name or 'the schedule'} (ACL); "
                "see 'Redis topologies' in the README for the ACL line redbeat-apply needs"
            )
        raise StalePlanError(name, what)
    return ApplyResult(len(steps), int(reply[1]))


def apply_plan(plan: Plan, client: Any, keys: KeySpace, *, clock: Callable[[], float] = time.time) -> ApplyResult:
    return apply_steps([write_step(c) for c in plan.writes], plan.owner, client, keys, clock=clock)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
