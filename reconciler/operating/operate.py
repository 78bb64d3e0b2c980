"""Operating commands' logic: reading the run history for ``history`` and ``status``, rendering it safely."""

from __future__ import annotations

import json
import os
import socket
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from reconciler.core.errors import DurationError, RedbeatError
from reconciler.operating import audit
from reconciler.schedules.duration import parse_duration
from reconciler.sync.apply import ACL_ALLOWED_LUA
from redbeat.history import Run, last_runs, read_runs
from redbeat.keys import KeySpace
from redbeat.operator import PAUSE_FIELD, Pause, Trigger, active_pause

#: What the pause and resume scripts return when the Redis user lacks a right they need (checked first).
NO_RIGHTS = -2
#: Runs per entry that ``status`` shows.
STATUS_RUNS = 3


def parse_moment(text: str, now: datetime, *, ago: bool) -> datetime:
    """An ISO 8601 time (UTC unless it says otherwise) or a duration (``90m``): ``ago`` counts it back from now."""
    try:
        seconds = parse_duration(text)
    except DurationError:
        pass
    else:
        return now - timedelta(seconds=seconds) if ago else now + timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise RedbeatError(f"'{printable(text)}' is neither a time (ISO 8601: 2026-12-03T14:00, UTC unless it says) "
                           "nor a duration (90m, 2h)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def entry_exists(client: Any, keys: KeySpace, name: str) -> bool:
    return bool(client.hexists(keys.entry(name), "definition"))


def history_runs(client: Any, keys: KeySpace, name: str | None, since: datetime | None) -> list[Run]:
    """The recorded runs (of ``name``), oldest first; an unknown name with no history is an error."""
    runs = read_runs(client, keys, entry=name, since=since)
    if name is not None and not runs and not entry_exists(client, keys, name):
        raise RedbeatError(f"no entry named {printable(name)} under {printable(keys.prefix)}*")
    return runs


def history_document(runs: Sequence[Run]) -> dict[str, Any]:
    """``history -o json``: the document the CLI prints and the console serves."""
    return {"format_version": 1, "runs": [run.as_json() for run in runs]}


def history_json(runs: Sequence[Run]) -> str:
    return json.dumps(history_document(runs), indent=2, ensure_ascii=False)


def render_history(runs: Sequence[Run]) -> str:
    """A plain-text table, oldest first; names are shown with control characters escaped."""
    from reconciler.operating.status import lag_text  # lazily, as full_status: `celery redbeat` imports this module

    if not runs:
        return "no runs recorded\n"
    header = ("entry", "slot (UTC)", "claimed at", "state", "sent at", "lag")
    rows = [header] + [
        (printable(run.entry), _clock(run.slot), _clock(run.claimed_at), run.state.value + _reason(run),
         _clock(run.sent_at), lag_text(run.lag))
        for run in runs
    ]
    return _table(rows)


def full_status(target: Any, entries: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``status`` rows with each entry's last runs, dispatch lag and pause (the CLI's and ``celery redbeat``'s).

    ``entries``: the entries as :func:`reconciler.sync.state.read_all` returned them, when the caller read them.
    """
    import time

    from reconciler.operating.status import status_rows

    rows = status_rows(target, entries=entries)
    status_history(rows, target.client, target.keys)
    status_pauses(rows, target.client, target.keys, time.time())
    return rows


def status_history(rows: list[dict[str, Any]], client: Any, keys: KeySpace) -> None:
    """Add each status row's last runs and its dispatch lag (of the last sent run), from one history read."""
    recent = last_runs(read_runs(client, keys), STATUS_RUNS)
    for row in rows:
        runs = recent.get(row["name"], [])
        row["recent_runs"] = [run.as_json() for run in runs]
        lags = [run.lag for run in runs if run.lag is not None]
        row["dispatch_lag_seconds"] = round(lags[-1], 3) if lags else None


def render_audit(records: Sequence[Mapping[str, Any]]) -> str:
    """One line per record, oldest first: when, action, actor, then the action's own fields."""
    if not records:
        return "no audit records\n"
    rows = [("at (UTC)", "action", "actor", "what")]
    for item in records:
        if item.get("action") == audit.Action.APPLY.value:
            counts = item.get("counts")
            words = ", ".join(f"{n} {k}" for k, n in counts.items()) if isinstance(counts, dict) else str(counts)
            what = f"owner {item.get('owner', '?')} at {item.get('revision', '?')}: {words or 'nothing'}"
        else:
            what = f"{item.get('entry', '?')}" + (f": {item['detail']}" if item.get("detail") else "")
        rows.append((_clock(_float_or_none(item.get("at"))), printable(str(item.get("action", "?"))),
                     printable(str(item.get("actor", "?"))), printable(what)))
    return _table(rows)


def _float_or_none(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def printable(text: str) -> str:
    """``text`` with control and format characters escaped, so a name cannot rewrite the terminal."""
    return "".join(
        char if unicodedata.category(char)[0] != "C" else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _reason(run: Run) -> str:
    notes = [text for text in (run.note, run.lost_reason) if text]
    return f" ({printable('; '.join(notes))})" if notes else ""


def _clock(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


# --- pause and resume ----------------------------------------------------------------------

#: Appends the audit record (ARGV[2] maxlen, ARGV[3] at, ARGV[4..] field, value ...) to KEYS[2].
AUDIT_LUA = ACL_ALLOWED_LUA + """
local function audit()
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'at', ARGV[3], unpack(ARGV, 4))
end
"""

#: KEYS: entry hash, audit stream.  ARGV: pause JSON, audit maxlen, at, audit fields ...
#: 0 when the entry has no definition, -2 without the rights (checked first: nothing written).
PAUSE_SCRIPT = AUDIT_LUA + """
if not (allowed('HSET', KEYS[1], 'pause', 'v') and allowed('XADD', KEYS[2], '*', 'f', 'v')) then
  return -2
end
if redis.call('HEXISTS', KEYS[1], 'definition') == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'pause', ARGV[1])
audit()
return 1
"""

#: KEYS: entry hash, audit stream, schedule zset.  ARGV: now, audit maxlen, at, audit fields ...
#: -1: no such entry; 0: not paused (nothing written); 1: resumed, and due now (a scheduled entry),
#: so beat decides at once what the missed slots get (its catch_up).
RESUME_SCRIPT = AUDIT_LUA + """
if not (allowed('HDEL', KEYS[1], 'pause') and allowed('ZADD', KEYS[3], '0', KEYS[1])
    and allowed('XADD', KEYS[2], '*', 'f', 'v')) then
  return -2
end
if redis.call('HEXISTS', KEYS[1], 'definition') == 0 then
  return -1
end
if redis.call('HDEL', KEYS[1], 'pause') == 0 then
  return 0
end
local score = redis.call('ZSCORE', KEYS[3], KEYS[1])
if score and tonumber(score) > tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[3], ARGV[1], KEYS[1])
end
audit()
return 1
"""


def actor(environ: Mapping[str, str]) -> str:
    """Who acts: the CI's identity from its standard variables, else ``$USER@host``."""
    if environ.get("GITHUB_ACTOR"):
        return f"{environ['GITHUB_ACTOR']} (GitHub Actions {environ.get('GITHUB_REPOSITORY', '?')})"
    if environ.get("GITLAB_USER_LOGIN"):
        return f"{environ['GITLAB_USER_LOGIN']} (GitLab CI {environ.get('CI_PROJECT_PATH', '?')})"
    if environ.get("BUILDKITE_BUILD_CREATOR"):
        return f"{environ['BUILDKITE_BUILD_CREATOR']} (Buildkite {environ.get('BUILDKITE_PIPELINE_SLUG', '?')})"
    user = environ.get("USER") or environ.get("LOGNAME") or "unknown"
    return f"{user}@{socket.gethostname()}"


def pause_entry(client: Any, keys: KeySpace, name: str, pause: Pause) -> None:
    """Store ``pause`` on the entry and audit it; RedbeatError (nothing written) when there is no such entry."""
    fields = audit.operator_record(audit.Action.PAUSE, pause.by, name, pause.words())
    done = int(client.eval(PAUSE_SCRIPT, 2, keys.entry(name), keys.audit, pause.encode(), audit.AUDIT_MAXLEN,
                           repr(round(pause.at, 3)), *fields))
    _refuse_without_rights(done, keys)
    if not done:
        raise RedbeatError(f"no entry named {printable(name)} under {printable(keys.prefix)}*; nothing was written")


def resume_entry(client: Any, keys: KeySpace, name: str, now: float, by: str = "") -> None:
    """Lift the entry's pause, audit it and wake beat; RedbeatError (nothing written) when unknown or not paused."""
    fields = audit.operator_record(audit.Action.RESUME, by or actor(os.environ), name, "")
    done = int(client.eval(RESUME_SCRIPT, 3, keys.entry(name), keys.audit, keys.schedule, repr(now),
                           audit.AUDIT_MAXLEN, repr(round(now, 3)), *fields))
    _refuse_without_rights(done, keys)
    if done < 0:
        raise RedbeatError(f"no entry named {printable(name)} under {printable(keys.prefix)}*; nothing was written")
    if done == 0:
        raise RedbeatError(f"{printable(name)} is not paused; nothing was written")
    client.publish(keys.wake_channel, keys.entry(name))


#: KEYS: entry hash, audit stream, schedule zset.  ARGV: trigger JSON template, audit maxlen, at,
#: audit fields ...  The entry's score goes into the request (put back when beat takes it) and the
#: entry is made due now.  -1: no such entry; -3: disabled; -4: a request is pending; -5: no score.
TRIGGER_SCRIPT = AUDIT_LUA + """
if not (allowed('HSET', KEYS[1], 'trigger', 'v') and allowed('ZADD', KEYS[3], '0', KEYS[1])
    and allowed('XADD', KEYS[2], '*', 'f', 'v')) then
  return -2
end
local definition = redis.call('HGET', KEYS[1], 'definition')
if not definition then
  return -1
end
local ok, decoded = pcall(cjson.decode, definition)
if ok and type(decoded) == 'table' and decoded['enabled'] == false then
  return -3
end
if redis.call('HEXISTS', KEYS[1], 'trigger') == 1 then
  return -4
end
local score = redis.call('ZSCORE', KEYS[3], KEYS[1])
if not score or tonumber(score) < 0 then
  return -5
end
local request = cjson.decode(ARGV[1])
request['score'] = score  -- as stored, not through cjson's 14 digits
redis.call('HSET', KEYS[1], 'trigger', cjson.encode(request))
redis.call('ZADD', KEYS[3], 0, KEYS[1])
audit()
return 1
"""

_TRIGGER_REFUSALS = {
    -1: "no entry named {name} under {prefix}*",
    -3: "{name} is disabled: enable it to run it",
    -4: "a run-now request of {name} is already pending",
    -5: "{name} is not in the schedule (finished, or never scheduled)",
}


def trigger_entry(client: Any, keys: KeySpace, name: str, trigger: Trigger) -> None:
    """Ask the leading beat to run the entry once now and wake it; RedbeatError (nothing written) when refused."""
    fields = audit.operator_record(audit.Action.TRIGGER, trigger.by, name, trigger.note)
    done = int(client.eval(TRIGGER_SCRIPT, 3, keys.entry(name), keys.audit, keys.schedule, trigger.encode(),
                           audit.AUDIT_MAXLEN, repr(round(trigger.at, 3)), *fields))
    _refuse_without_rights(done, keys)
    if done in _TRIGGER_REFUSALS:
        message = _TRIGGER_REFUSALS[done].format(name=printable(name), prefix=printable(keys.prefix))
        raise RedbeatError(f"{message}; nothing was written")
    client.publish(keys.wake_channel, keys.entry(name))


#: A beat whose heartbeat is older than this is taken as not running.
BEAT_SEEN_WITHIN = 30.0


def request_pause(target: Any, name: str, until: str | None, note: str, environ: Mapping[str, str]) -> str:
    """Hold ``name`` until resumed or ``until`` (a time, or a duration from now); the line that says so."""
    from redbeat.operator import PauseError, new_pause

    now = datetime.now(timezone.utc)
    end = parse_moment(until, now, ago=False).timestamp() if until else None
    try:
        held = new_pause(actor(environ), now.timestamp(), end, note)
    except PauseError as exc:
        raise RedbeatError(f"{exc}; nothing was written") from None
    pause_entry(target.client, target.keys, name, held)
    return f"{printable(name)}: {printable(held.words())}"


def request_run(target: Any, name: str, note: str, environ: Mapping[str, str]) -> str:
    """Store a run-now request (``trigger``) and say whether a beat is there to take it."""
    import time

    from redbeat.operator import NOTE_MAX, TRIGGER_TTL_SECONDS

    if len(note) > NOTE_MAX:
        raise RedbeatError(f"--note is longer than {NOTE_MAX} characters; nothing was written")
    now = time.time()
    trigger_entry(target.client, target.keys, name, Trigger(actor(environ), now, 0.0, note))
    seen = beat_seen(target.client, target.keys, now, BEAT_SEEN_WITHIN)
    if seen is None:
        return (f"{printable(name)}: run requested, but no beat has ticked in the last {BEAT_SEEN_WITHIN:.0f}s; "
                f"the request stays pending for {TRIGGER_TTL_SECONDS / 60:.0f} minutes")
    return f"{printable(name)}: run requested; the leading beat sends it once (see: redbeat-apply history)"


def beat_seen(client: Any, keys: KeySpace, now: float, within: float) -> float | None:
    """When a leading beat last ticked, if within ``within`` seconds of ``now``; else None."""
    raw = client.get(keys.heartbeat)
    try:
        tick_at = float(json.loads(raw)["tick_at"])
    except (TypeError, ValueError, KeyError):
        return None
    return tick_at if now - tick_at <= within else None


def _refuse_without_rights(done: int, keys: KeySpace) -> None:
    if done == NO_RIGHTS:
        raise RedbeatError(f"this Redis user may not write the entry and {printable(keys.audit)} "
                           "(HSET/HDEL, ZADD, XADD); nothing was written")


def pauses_of(client: Any, keys: KeySpace, names: Sequence[str], now: float) -> dict[str, str]:
    """The pause in force of each of ``names`` that has one, as words (one pipeline; plan and apply show them)."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hget(keys.entry(name), PAUSE_FIELD)
    out = {}
    for name, raw in zip(names, pipe.execute(), strict=True):
        pause = active_pause(raw, now)
        if pause is not None:
            out[name] = printable(pause.words())
    return out


def pause_lines(pauses: Mapping[str, str]) -> str:
    """``note: NAME is paused by ...; kept (not drift)`` per paused entry, for the text plan."""
    return "".join(f"note: {printable(name)} is {words}; kept (not drift)\n" for name, words in sorted(pauses.items()))


def status_pauses(rows: list[dict[str, Any]], client: Any, keys: KeySpace, now: float) -> None:
    """Mark each status row's pause in force (``paused by alice until ...: note``), one pipeline."""
    pipe = client.pipeline(transaction=False)
    for row in rows:
        pipe.hget(keys.entry(row["name"]), PAUSE_FIELD)
    for row, raw in zip(rows, pipe.execute(), strict=True):
        pause = active_pause(raw, now)
        row["paused"] = None if pause is None else printable(pause.words())
        if pause is not None:
            row["state"] = "paused"
