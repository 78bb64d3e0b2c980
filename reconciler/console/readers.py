"""What the console reads: one snapshot of every entry (Redis, and the manifests when it knows them), the
leader lock, the run history and the audit stream.  Reads only; nothing here writes.

The snapshot is shared by the requests of a couple of seconds (``max_age``): a page of 10,000 entries is
then a filter and a slice of rows already built, and a refresh shows what changed since.  A page with no
snapshot to share reads the entries and builds only the rows it shows, when its filters and sort need no
other row's next run (see :class:`Snapshot`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from redis.exceptions import RedisClusterException, RedisError

from reconciler.console import views
from reconciler.core.errors import ManifestErrors
from reconciler.core.model import DesiredEntry
from reconciler.operating import audit
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


#: A built row: the schedules row and the ``status`` row it came from (None for an entry only the manifests know).
Built = tuple[dict[str, Any], dict[str, Any] | None]


class Snapshot:
    """Every entry at one moment: the entries and manifests as read, and their rows, built on demand.

    Reading is cheap (the raw read of every entry); a row costs its next-run computation, ~0.2 ms.  So rows are
    built when asked for and kept: a page that needs only names and owners (the default view) builds its own 50
    rows (:meth:`rows_of`), a filter or sort on anything else builds every row (:attr:`rows`), as the
    background refresh does before it publishes a snapshot.  Every row is built with the snapshot's ``now``.
    """

    def __init__(self, target: Any, now: datetime, entries: Mapping[str, ActualEntry],
                 desired: Mapping[str, DesiredEntry] | None, manifest_problem: str | None,
                 stubs: list[dict[str, Any]] | None = None, built: Mapping[str, Built] | None = None,
                 read_at: float | None = None) -> None:
        self.target, self.now, self.read_at = target, now, time.time() if read_at is None else read_at
        self.entries, self.desired, self.manifest_problem = entries, desired, manifest_problem
        #: name, owner and look-alike flag of every row, in row order (Redis's by name, then the manifests' own)
        self.stubs = stubs if stubs is not None else _stubs(entries, desired)
        self._built: dict[str, Built] = dict(built or {})
        self._all: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @property
    def complete(self) -> bool:
        """Whether every row is built (a page may then filter and sort on any field at no further cost)."""
        return len(self._built) == len(self.stubs)

    def rows_of(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """The rows of ``names`` (names of :attr:`stubs`), building those not built yet."""
        todo = [name for name in dict.fromkeys(names) if name not in self._built]
        if todo:
            fresh = build_rows(self, todo)
            with self._lock:  # two requests may build the same row: the first one kept is everyone's
                for name, built in fresh.items():
                    self._built.setdefault(name, built)
        return [self._built[name][0] for name in names]

    def build_all(self) -> list[dict[str, Any]]:
        """Every row, in row order, building those not built yet."""
        if self._all is None:
            self._all = self.rows_of([stub["name"] for stub in self.stubs])
        return self._all

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row, in row order (built now when some are not yet)."""
        return self.build_all()

    @property
    def status(self) -> list[dict[str, Any]]:
        """Every entry's ``status`` row (the CLI's), by name."""
        self.build_all()
        found = (self._built[stub["name"]][1] for stub in self.stubs)
        return [row for row in found if row is not None]

    def with_entry(self, name: str, actual: ActualEntry, row: dict[str, Any], status: dict[str, Any]) -> Snapshot:
        """This snapshot with ``name`` (an entry it holds) read anew: its entry, row and status row replaced."""
        row["lookalike"] = self._lookalike(name)
        with self._lock:
            built = {**self._built, name: (row, status)}
        return Snapshot(self.target, self.now, {**self.entries, name: actual}, self.desired,
                        self.manifest_problem, self.stubs, built, self.read_at)

    def _lookalike(self, name: str) -> bool:
        return next((bool(stub["lookalike"]) for stub in self.stubs if stub["name"] == name), False)


def _stubs(entries: Mapping[str, ActualEntry], desired: Mapping[str, DesiredEntry] | None) -> list[dict[str, Any]]:
    stubs = [{"name": name, "owner": entries[name].owner} for name in sorted(entries)]
    if desired is not None:
        stubs += [{"name": name, "owner": None} for name in sorted(desired) if name not in entries]
    views.mark_lookalikes(stubs)
    return stubs


def protected_names(client: Any, keys: KeySpace, names: Sequence[str] | None = None) -> frozenset[str]:
    """Entries an owner's record marks protected (never pruned), from every owner's index; of ``names`` only,
    when given (one field per owner and name rather than every owner's whole index)."""
    owners = sorted(o.decode() if isinstance(o, bytes) else str(o) for o in client.smembers(keys.owners))
    if names is not None and not names:
        return frozenset()
    pipe = client.pipeline(transaction=False)
    for owner in owners:
        if names is None:
            pipe.hgetall(keys.owner_index(owner))
        else:
            pipe.hmget(keys.owner_index(owner), list(names))
    found = set()
    for index in pipe.execute():
        for name, raw in index.items() if names is None else zip(names, index, strict=True):
            if raw is not None and OwnershipRecord.from_json(raw).protected:
                found.add(name.decode() if isinstance(name, bytes) else str(name))
    return frozenset(found)


def read_snapshot(target: Any, manifests: Manifests | None) -> Snapshot:
    """One consistent-enough read of everything the schedules and timeline pages show; rows built on demand."""
    now = datetime.now(timezone.utc)
    entries = read_all(target.client, target.keys)
    desired, problem = manifests.desired() if manifests is not None else (None, None)
    return Snapshot(target, now, entries, desired, problem)


def build_rows(snapshot: Snapshot, names: Sequence[str]) -> dict[str, Built]:
    """The rows of ``names``, as of the snapshot: status rows (with their last runs, lag and pause), protected
    flag, sync state, words; an entry only the manifests know gets its "missing in Redis" row."""
    from reconciler.operating.operate import status_history, status_pauses
    from reconciler.operating.status import status_rows

    client, keys, now, desired = snapshot.target.client, snapshot.target.keys, snapshot.now, snapshot.desired
    present = {name: snapshot.entries[name] for name in names if name in snapshot.entries}
    status = status_rows(snapshot.target, now=now, entries=present)
    status_history(status, client, keys)
    status_pauses(status, client, keys, time.time())
    protected = protected_names(client, keys, list(present))
    pause_ends = _pause_ends(client, keys, [row["name"] for row in status if row.get("paused")])
    lookalike = {stub["name"]: stub["lookalike"] for stub in snapshot.stubs} if len(names) > 1 else None
    out: dict[str, Built] = {}
    for row in status:
        name, actual = row["name"], present[row["name"]]
        sync = views.sync_state(desired.get(name), actual) if desired is not None else None
        out[name] = (views.schedule_row(row, actual, protected=name in protected, sync=sync, now=now), row)
        views.hold_for_pause(out[name][0], actual, pause_ends.get(name), now)
    for name in names:
        if name not in present and desired is not None and name in desired:
            out[name] = (views.missing_row(desired[name]), None)
    for name, (row, _) in out.items():
        row["lookalike"] = lookalike[name] if lookalike is not None else snapshot._lookalike(name)
    return out


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
    the next one and builds its every row (so a page of 10,000 entries never waits for that), until
    ``max_stale`` seconds, after which a request reads anew itself, building the rows it needs only.
    ``max_stale`` 0: every request reads anew."""

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

    def _read(self, *, complete: bool = False) -> Snapshot:
        with self._lock:
            snapshot = read_snapshot(self.target, self.manifests)
            if complete:  # the background refresh: every row built before any page sees it
                snapshot.build_all()
            self._snapshot = snapshot
            return snapshot

    def _refresh(self) -> None:
        log = logging.getLogger("reconciler.console")
        try:
            self._read(complete=True)
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
        self._snapshot = snapshot.with_entry(name, actual, row, status)


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
