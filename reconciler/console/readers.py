"""What the console reads: one snapshot of every entry (Redis, and the manifests when it knows them), the
leader lock, the run history and the audit stream.  Reads only; nothing here writes.

The snapshot is shared by the requests of a couple of seconds (``max_age``): a page of 10,000 entries is
then a filter and a slice of rows already built, and a refresh shows what changed since.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from redis.exceptions import RedisClusterException, RedisError

from reconciler.console import views
from reconciler.core.errors import ManifestErrors
from reconciler.core.model import DesiredEntry
from reconciler.operating import audit
from reconciler.operating.operate import full_status
from reconciler.sync.state import ActualEntry, OwnershipRecord, read_all
from redbeat.keys import KeySpace
from redbeat.redaction import redact_text

#: How long one snapshot serves requests before a background read replaces it (seconds).
SNAPSHOT_MAX_AGE = 2.0
#: How old a snapshot may be served while that read runs (seconds); older, a request reads itself.
SNAPSHOT_MAX_STALE = 60.0


class Manifests(Protocol):
    """Where the desired entries come from: files (``console PATH``) or the sidecar's last good load."""

    paths: tuple[Path, ...]  # the PATHs given, to show manifest sources relative to them

    def desired(self) -> tuple[Mapping[str, DesiredEntry] | None, str | None]:
        """The desired entries (None: never valid) and the current problem with the manifests (None: valid)."""


class ManifestFiles:
    """``console PATH...``: the manifests under the paths, re-read when a file changes (by name, size, mtime)."""

    def __init__(self, paths: Sequence[Path], load: Callable[[Sequence[Path]], Mapping[str, DesiredEntry]]) -> None:
        self.paths = tuple(paths)
        self._load = load
        self._lock = threading.Lock()
        self._signature: tuple[Any, ...] | None = None
        self._desired: Mapping[str, DesiredEntry] | None = None
        self._problem: str | None = None

    def _current_signature(self) -> tuple[Any, ...]:
        from reconciler.manifests.loader import discover

        files, errors = discover(self.paths, allow_empty=True)
        stats = []
        for path in files:
            try:
                st = path.stat()
                stats.append((str(path), st.st_size, st.st_mtime_ns))
            except OSError:
                stats.append((str(path), -1, -1))
        return (tuple(stats), tuple(str(error) for error in errors))

    def desired(self) -> tuple[Mapping[str, DesiredEntry] | None, str | None]:
        with self._lock:
            signature = self._current_signature()
            if signature != self._signature:
                self._signature = signature
                try:
                    self._desired, self._problem = self._load(self.paths), None
                except ManifestErrors as exc:
                    count = len(exc.errors)
                    first = str(exc.errors[0]) if exc.errors else "?"
                    kept = "the last valid state is shown" if self._desired is not None else "sync state unknown"
                    self._problem = f"{count} manifest error{'s' if count != 1 else ''} ({kept}); first: {first}"
            return self._desired, self._problem


@dataclass(frozen=True)
class Snapshot:
    """Every entry at one moment: status rows (the CLI's), the entries they came from, the manifests."""

    read_at: float
    entries: Mapping[str, ActualEntry]
    status: list[dict[str, Any]]
    protected: frozenset[str]
    desired: Mapping[str, DesiredEntry] | None
    manifest_problem: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)


def protected_names(client: Any, keys: KeySpace) -> frozenset[str]:
    """Entries an owner's record marks protected (never pruned), from every owner's index."""
    owners = sorted(o.decode() if isinstance(o, bytes) else str(o) for o in client.smembers(keys.owners))
    pipe = client.pipeline(transaction=False)
    for owner in owners:
        pipe.hgetall(keys.owner_index(owner))
    names = set()
    for index in pipe.execute():
        for name, raw in index.items():
            if OwnershipRecord.from_json(raw).protected:
                names.add(name.decode() if isinstance(name, bytes) else str(name))
    return frozenset(names)


def read_snapshot(target: Any, manifests: Manifests | None) -> Snapshot:
    """One consistent-enough read of everything the schedules and timeline pages show."""
    now = datetime.now(timezone.utc)
    entries = read_all(target.client, target.keys)
    status = full_status(target, entries)
    protected = protected_names(target.client, target.keys)
    pause_ends = _pause_ends(target.client, target.keys, [row["name"] for row in status if row.get("paused")])
    desired, problem = manifests.desired() if manifests is not None else (None, None)
    rows = []
    for row in status:
        name = row["name"]
        actual = entries.get(name)
        wanted = desired.get(name) if desired is not None else None
        sync = views.sync_state(wanted, actual) if desired is not None else None
        rows.append(views.schedule_row(row, actual, protected=name in protected, sync=sync, now=now))
        views.hold_for_pause(rows[-1], actual, pause_ends.get(name), now)
    if desired is not None:
        rows += [views.missing_row(want) for name, want in sorted(desired.items()) if name not in entries]
    views.mark_lookalikes(rows)
    return Snapshot(time.time(), entries, status, protected, desired, problem, rows)


def _pause_ends(client: Any, keys: KeySpace, names: list[str]) -> dict[str, float | None]:
    """When each paused entry's pause ends (None: until resumed); one pipeline over the paused ones only."""
    from redbeat.operator import PAUSE_FIELD, active_pause

    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hget(keys.entry(name), PAUSE_FIELD)
    now = time.time()
    ends: dict[str, float | None] = {}
    for name, raw in zip(names, pipe.execute() if names else [], strict=True):
        pause = active_pause(raw, now)
        ends[name] = None if pause is None else pause.until
    return ends


class SnapshotCache:
    """The last snapshot: served as is for ``max_age`` seconds, then served while a background thread reads
    the next one (so a page of 10,000 entries never waits for the full read), until ``max_stale`` seconds,
    after which a request reads anew itself.  ``max_stale`` 0: every request reads anew."""

    def __init__(self, target: Any, manifests: Manifests | None, max_age: float = SNAPSHOT_MAX_AGE,
                 max_stale: float = SNAPSHOT_MAX_STALE) -> None:
        self.target, self.manifests = target, manifests
        self.max_age, self.max_stale = max_age, max_stale
        self._lock = threading.Lock()  # one reader at a time
        self._snapshot: Snapshot | None = None
        self._refreshing = False

    def get(self) -> Snapshot:
        snapshot = self._snapshot
        age = None if snapshot is None else time.time() - snapshot.read_at
        if snapshot is None or age is None or age > self.max_stale:
            return self._read()
        if age > self.max_age and not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._refresh, name="redbeat-console-snapshot", daemon=True).start()
        return snapshot

    def _read(self) -> Snapshot:
        with self._lock:
            self._snapshot = read_snapshot(self.target, self.manifests)
            return self._snapshot

    def _refresh(self) -> None:
        log = logging.getLogger("reconciler.console")
        try:
            self._read()
        except (RedisError, RedisClusterException) as exc:  # Redis went away: one line, not a traceback a minute
            log.warning("console: background read failed: %s", redact_text(f"Redis: {exc}"))
            self._snapshot = None  # the next request reads itself and answers 503 with the same words
        except Exception:  # not Redis: a bug, whose traceback the log needs
            log.warning("console: background read failed", exc_info=True)
            self._snapshot = None
        finally:
            self._refreshing = False

    def forget(self) -> None:
        """The next page reads anew."""
        self._snapshot = None

    def update(self, name: str) -> None:
        """After an action on ``name``: its rows read anew into the snapshot, so the next page shows the
        action without reading every entry again (at 10,000 entries a full read takes seconds)."""
        snapshot = self._snapshot
        if snapshot is None:
            return
        try:
            found = read_entry_state(self.target, self.manifests, name)
        except Exception:  # Redis went away: the next page reads anew and reports it
            self._snapshot = None
            return
        row, actual, status = found if found is not None else (None, None, None)
        if row is None or actual is None or status is None or name not in snapshot.entries:
            self._snapshot = None  # gone or new: the rows around it change too
            return
        old_row = next((r for r in snapshot.rows if r["name"] == name), None)
        row["lookalike"] = bool(old_row and old_row.get("lookalike"))
        self._snapshot = replace(
            snapshot,
            entries={**snapshot.entries, name: actual},
            status=[status if r["name"] == name else r for r in snapshot.status],
            rows=[row if r["name"] == name else r for r in snapshot.rows],
        )


def read_entry_row(target: Any, manifests: Manifests | None, name: str) -> tuple[dict[str, Any], ActualEntry] | None:
    """One entry's schedules row and stored entry, read on its own (the entry page); None when nobody knows it."""
    found = read_entry_state(target, manifests, name)
    return None if found is None else (found[0], found[1])


def read_entry_state(
    target: Any, manifests: Manifests | None, name: str
) -> tuple[dict[str, Any], ActualEntry, dict[str, Any] | None] | None:
    """:func:`read_entry_row`, and the entry's ``status`` row (None when only the manifests know it)."""
    from reconciler.operating.operate import status_history, status_pauses
    from reconciler.operating.status import status_row
    from reconciler.sync.state import STATIC_OWNER, read_entries

    now = datetime.now(timezone.utc)
    desired, _ = manifests.desired() if manifests is not None else (None, None)
    wanted = desired.get(name) if desired is not None else None
    [(definition, ext, meta, score)] = read_entries(target.client, target.keys, [name])
    if definition is None:
        missing = ActualEntry(name, None, None, None, None, None, None)
        return (views.missing_row(wanted), missing, None) if wanted else None
    owner = _owner_of(target.client, target.keys, name)
    if owner is None and target.client.sismember(target.keys.statics, name):
        owner = STATIC_OWNER
    actual = ActualEntry(name, definition, ext, meta, score, owner, None)
    rows = [status_row(name, actual, now)]
    status_history(rows, target.client, target.keys)
    status_pauses(rows, target.client, target.keys, time.time())
    protected = name in protected_names(target.client, target.keys)
    sync = views.sync_state(wanted, actual) if desired is not None else None
    row = views.schedule_row(rows[0], actual, protected=protected, sync=sync, now=now)
    until = _pause_ends(target.client, target.keys, [name] if rows[0].get("paused") else []).get(name)
    views.hold_for_pause(row, actual, until, now)
    return row, actual, rows[0]


def _owner_of(client: Any, keys: KeySpace, name: str) -> str | None:
    owners = sorted(o.decode() if isinstance(o, bytes) else str(o) for o in client.smembers(keys.owners))
    pipe = client.pipeline(transaction=False)
    for owner in owners:
        pipe.hexists(keys.owner_index(owner), name)
    return next((owner for owner, held in zip(owners, pipe.execute(), strict=True) if held), None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_leader(client: Any, keys: KeySpace) -> views.Leader:
    """The leader lock's holder and time left, and the leader's last heartbeat."""
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.lock)
    pipe.pttl(keys.lock)
    pipe.get(keys.heartbeat)
    holder, pttl, heartbeat = pipe.execute()
    beat_holder, tick_at = None, None
    try:
        data = json.loads(heartbeat) if heartbeat else None
        if isinstance(data, dict):
            beat_holder = _text(data.get("holder"))
            tick_at = float(data["tick_at"])
    except (ValueError, TypeError, KeyError):
        pass  # an unreadable heartbeat shows as "never"
    lease = int(pttl) if holder is not None and int(pttl) >= 0 else None
    return views.Leader(_text(holder), lease, beat_holder, tick_at)


def last_apply(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest apply record of the audit stream (records oldest first)."""
    return next((r for r in reversed(records) if r.get("action") == audit.Action.APPLY.value), None)


def read_audit(client: Any, keys: KeySpace, limit: int | None) -> list[dict[str, Any]]:
    return audit.read(client, keys, limit)


def actor_host() -> str:
    """The host the console runs on, named in the actor of its actions."""
    import socket

    return os.environ.get("HOSTNAME") or socket.gethostname()
