"""Dump and restore every key under a key prefix, exactly, with plain redis-py.

Used for golden data (tests/data/celery_redbeat_2.4.2/golden.json) and by tests that compare what
two writers left in Redis. The format (JSON-able, all strings are the raw stored values)::

    {
      "prefix":  "redbeat:",
      "hashes":  {key: {field: raw_str}},          # entry hashes (definition, meta, ...)
      "zset":    {member: score},                  # the P:schedule sorted set
      "zsets":   {key: {member: score}},           # any other sorted set under the prefix
      "sets":    {key: [sorted members]},          # P:statics, ...
      "strings": {key: raw_str},                   # P:lock, ...
      "ttl_ms":  {key: pttl}                        # only keys that have an expiry
    }

Scores are floats as Redis returns them, written as ints when integral (celery-redbeat writes
whole seconds). Keys of other types (lists, streams) raise ValueError rather than being lost.
Other top-level keys (e.g. "_meta") are ignored by :func:`restore`.
"""

from __future__ import annotations

from typing import Any

import redis


def _s(value: Any) -> Any:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _score(value: float) -> float | int:
    value = float(value)
    return int(value) if value.is_integer() else value


def schedule_key(prefix: str) -> str:
    return prefix + ":schedule"


def dump(client: redis.Redis, prefix: str) -> dict:
    """Everything under `prefix`, keyed and sorted so that json.dumps(sort_keys=True) is stable."""
    out: dict[str, Any] = {
        "prefix": prefix, "hashes": {}, "zset": {}, "zsets": {}, "sets": {}, "strings": {}, "ttl_ms": {},
    }
    sched = schedule_key(prefix)
    keys = sorted({_s(k) for k in client.scan_iter(match=_glob_escape(prefix) + "*", count=1000)})
    for key in keys:
        kind = _s(client.type(key))
        if kind == "hash":
            out["hashes"][key] = {_s(f): _s(v) for f, v in sorted(client.hgetall(key).items())}
        elif kind == "zset":
            members = {_s(m): _score(s) for m, s in client.zrange(key, 0, -1, withscores=True)}
            if key == sched:
                out["zset"] = members
            else:
                out["zsets"][key] = members
        elif kind == "set":
            out["sets"][key] = sorted(_s(m) for m in client.smembers(key))
        elif kind == "string":
            out["strings"][key] = _s(client.get(key))
        elif kind == "none":  # vanished between SCAN and TYPE
            continue
        else:
            raise ValueError(f"dump: key {key!r} has unsupported type {kind!r}")
        pttl = client.pttl(key)
        if pttl is not None and pttl >= 0:
            out["ttl_ms"][key] = pttl
    return out


def restore(client: redis.Redis, data: dict) -> None:
    """Make the keys under data["prefix"] exactly what `data` holds (others under it are deleted).

    One MULTI/EXEC transaction.
    """
    prefix = data["prefix"]
    existing = list(client.scan_iter(match=_glob_escape(prefix) + "*", count=1000))
    with client.pipeline(transaction=True) as pipe:
        if existing:
            pipe.delete(*existing)
        for key, fields in data.get("hashes", {}).items():
            if fields:
                pipe.hset(key, mapping=fields)
        if data.get("zset"):
            pipe.zadd(schedule_key(prefix), data["zset"])
        for key, members in data.get("zsets", {}).items():
            if members:
                pipe.zadd(key, members)
        for key, members in data.get("sets", {}).items():
            if members:
                pipe.sadd(key, *members)
        for key, value in data.get("strings", {}).items():
            pipe.set(key, value)
        for key, ttl in data.get("ttl_ms", {}).items():
            pipe.pexpire(key, max(int(ttl), 1))
        pipe.execute()


def every_key(client: redis.Redis, *, streams_by_length: bool = False) -> dict[Any, Any]:
    """Every key of the client's db, for before/after and side-by-side comparisons (not for restore).

    Hashes, sorted sets (with scores), sets and strings by value; anything else by its ``DUMP`` bytes,
    except that ``streams_by_length`` compares a stream by its length (entry ids and times differ between
    two runs of the same steps).
    """
    out: dict[Any, Any] = {}
    for key in sorted(client.keys("*")):
        kind = _s(client.type(key))
        if kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            out[key] = sorted(client.smembers(key))
        elif kind == "string":
            out[key] = client.get(key)
        elif kind == "stream" and streams_by_length:
            out[key] = client.xlen(key)
        else:
            out[key] = client.dump(key)
    return out
