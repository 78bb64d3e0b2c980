"""Incremental reconcile: plan only the names that changed, against the Redis state already held.

:class:`HeldState` keeps, for every name the manifests want or this owner
owns, the :class:`ActualEntry` a full read would return, and the plan's
:class:`Change` for it.  A plan's change for one name depends only on that
name's desired and actual entry (``plan.change_of``); its refusals only on
the changes that are not no-ops and the number of entries owned
(``plan.refusals``).  So after an edit only the edited names are read again
from Redis (``state.read_named``) and planned, and the plan equals the one
a full read would make, provided the held state is current.  It is kept so:

* the names of every write this process makes are read back after it;
* a name published on ``<prefix>:wake`` (``entry.save()``, beat's statics
  sync, ``redbeat-apply`` operator actions) is read again before the next plan;
* any other message on the channel (another apply publishes its owner name),
  a dropped subscription or a Redis error makes the next plan :meth:`resync`
  (group fingerprints computed in Redis, :mod:`reconciler.sync.fingerprints`,
  and a read of the groups that differ) or read everything again;
* a full read happens at start and every ``--full-resync-interval``, as a
  cold run does.

The cheap resync compares what the plan reads, not run state: beat's runs
(``meta`` in beat's shape, scores) never make it read anything.  Where Redis
reports the keys other clients change (:mod:`reconciler.sync.changefeed`), a
resync compares only the entries reported since the last one, after
checking that the report is complete (``confirm_feed``); while nothing was
reported it reads nothing.  It compares everything when the feed could not
vouch for the whole time since the last comparison, or reported a change it
cannot place by name (an owner index, the owners set, beat's statics).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from redis.exceptions import RedisError, ResponseError

from reconciler.core.errors import (
    ApplyPermissionError,
    FeedBroken,
    ManifestErrors,
    PlanRefused,
    StalePlanError,
    StoreError,
)
from reconciler.core.logs import log
from reconciler.core.model import DesiredEntry
from reconciler.manifests.index import ManifestIndex
from reconciler.sync.apply import apply_plan
from reconciler.sync.changefeed import Changed, ChangeFeed, Flushed, Wake, open_feed
from reconciler.sync.fingerprints import GROUP_SIZE, Fingerprints, GroupDigests, fingerprints, group_digest
from reconciler.sync.plan import Change, Op, Plan, Takeover, change_of, refusals
from reconciler.sync.reconcile import REPLAN_ATTEMPTS, Outcome, PlanOptions, Target
from reconciler.sync.state import ActualEntry, read_named, read_state
from redbeat.redaction import redact_url

logger = logging.getLogger("reconciler.sync.incremental")


@dataclass
class ResyncReport:
    """What a cheap resync did: groups compared, groups that differed, names read again.

    ``tracked``: only the names the change feed reported were compared.
    """

    groups: int = 0
    differing: int = 0
    names: int = 0
    full: bool = False
    reason: str = ""
    tracked: bool = False


def _never() -> bool:
    return False


@dataclass
class HeldState:
    """The Redis state one owner's plan reads, for the names it needs, and the plan's change per name."""

    target: Target
    options: PlanOptions
    desired: dict[str, DesiredEntry] = field(default_factory=dict)
    entries: dict[str, ActualEntry] = field(default_factory=dict)
    owned: set[str] = field(default_factory=set)
    changes: dict[str, Change] = field(default_factory=dict)  # the names whose change is not a no-op
    noops: set[str] = field(default_factory=set)  # the names whose change is a no-op
    stale: bool = True  # nothing trustworthy held: the next plan reads everything
    suspect: set[str] = field(default_factory=set)  # names to read again before the next plan
    dirty: set[str] = field(default_factory=set)  # names to plan again
    resync_wanted: bool = False
    last_resync: ResyncReport | None = None
    #: whether the change feed has reported every change since the held state was last compared in full; the
    #: hook checks the feed and hands over what it read (:meth:`Incremental.confirm_feed`)
    confirm_feed: Callable[[], bool] = _never
    tracked: bool = False
    touched: set[str] = field(default_factory=set)  # names the change feed reported since the last resync
    compare_all: bool = False  # the feed reported a change it cannot place by name
    clock: Callable[[], float] = time.time  # the apply's clock (scores)
    #: the resync's groups and the held side's digests, kept between resyncs
    digests: GroupDigests = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.digests = GroupDigests(self.target.owner)

    # --- what changed ----------------------------------------------------------------------------

    def set_desired(self, names: Iterable[str], source: Mapping[str, DesiredEntry]) -> None:
        """Take the desired entries of ``names`` from ``source`` (absent there: no longer desired)."""
        for name in names:
            entry = source.get(name)
            if entry is None:
                self.desired.pop(name, None)
            else:
                self.desired[name] = entry
            self.suspect.add(name)  # an edited name is read fresh before it is planned

    def replace_desired(self, source: Mapping[str, DesiredEntry]) -> None:
        self.desired = dict(source)
        self.stale = True

    def notified(self, message: str) -> None:
        """A message on the wake channel: an entry key names one entry; anything else asks for a resync."""
        keys = self.target.keys
        if keys.is_entry_key(message):
            self.suspect.add(keys.name_of(message))
        else:
            self.resync_wanted = True

    def changed(self, keys: Iterable[str], *, own_turn: bool = False) -> None:
        """Keys Redis reported changed (the change feed): compared at the next resync, not read at once.

        ``own_turn``: they were changed in the turn of this process's own apply, whose writes to this owner's
        index and the owners set it knows; the entries are compared anyway (another client may have written
        one in that turn too).
        """
        space = self.target.keys
        ignored = {space.schedule, space.lock, space.heartbeat, space.unreadable, space.history, space.audit}
        if own_turn:
            ignored |= {space.owner_index(self.target.owner), space.owners}
        for key in keys:
            if space.is_entry_key(key):
                self.touched.add(space.name_of(key))
            elif key not in ignored:  # beat's and the operators' own keys, which no plan reads, are ignored
                self.compare_all = True

    def lost(self) -> None:
        """Something may have been missed (Redis error, dropped subscription): read everything next time."""
        self.stale = True
        self.tracked = False

    # --- reading -----------------------------------------------------------------------------------

    def _names(self) -> set[str]:
        return set(self.desired) | self.owned

    def _read_full(self) -> None:
        tracked = self.confirm_feed()  # before the read: what changes during it is reported
        actual = read_state(self.target.client, self.target.keys, self.target.owner, self.desired)
        self.entries = dict(actual.entries)
        self.owned = set(actual.owned)
        self.changes, self.noops = {}, set()
        self.dirty = set(self.entries) | set(self.desired)
        self.stale, self.suspect, self.resync_wanted = False, set(), False
        self.tracked, self.touched, self.compare_all = tracked, set(), False

    def _read(self, names: Iterable[str]) -> None:
        fresh = read_named(self.target.client, self.target.keys, self.target.owner, names)
        for name, entry in fresh.items():
            self.entries[name] = entry
            if entry.record_raw is not None:
                self.owned.add(name)
            else:
                self.owned.discard(name)
            self.dirty.add(name)

    def resync(self) -> ResyncReport:
        """Compare fingerprints computed in Redis with the held state; read the groups that differ.

        Only the names the change feed reported, when it vouches for the whole time since the last comparison.
        """
        tracked = self.confirm_feed()  # before the comparison: what changes during it is reported
        reported_only = tracked and self.tracked and not self.compare_all
        report = self._resync_reported() if reported_only else self._resync_all()
        if not report.full:  # a full read has set it itself
            self.tracked = tracked
        self.resync_wanted = False
        return report

    def _resync_reported(self) -> ResyncReport:
        names = sorted(name for name in self.touched if name in self.desired or name in self.owned)
        self.touched = set()
        target, owner = self.target, self.target.owner
        return self._compare(
            [tuple(names[i:i + GROUP_SIZE]) for i in range(0, len(names), GROUP_SIZE)],
            lambda: fingerprints(target.client, target.keys, owner, names),
            lambda group: group_digest(group, self.entries, owner),
            tracked=True,
        )

    def _resync_all(self) -> ResyncReport:
        self.touched, self.compare_all = set(), False
        return self._compare(
            self.digests.groups(self._names()),
            lambda: self.digests.remote(self.target.client, self.target.keys),
            lambda group: self.digests.local(group, self.entries),
            tracked=False,
        )

    def _compare(self, groups: Sequence[tuple[str, ...]], remote: Callable[[], Fingerprints],
                 local: Callable[[tuple[str, ...]], str], *, tracked: bool) -> ResyncReport:
        """Read the ``groups`` whose digest in Redis (``remote``) differs from the held one (``local``)."""
        try:
            found = remote()
        except ResponseError as exc:  # no EVAL right (ACL) or a script error: a full read is always right
            log(logger, "cheap resync unavailable; reading everything", logging.WARNING, error=str(exc))
            self._read_full()
            return ResyncReport(full=True, reason=f"fingerprint script unavailable: {exc}")
        differing = [group for group, digest in zip(groups, found.groups, strict=True) if local(group) != digest]
        report = ResyncReport(len(groups), len(differing), sum(len(g) for g in differing), tracked=tracked)
        self._read([name for group in differing for name in group])
        if found.owned != len(self.owned):  # records for names this process does not hold: read them all
            report.full, report.reason = True, "the owner index holds names not seen before"
            self._read_full()
        return report

    # --- planning ----------------------------------------------------------------------------------

    def plan(self, *, resync: bool = False) -> Plan:
        """The plan a full read would make now; reads only what may have changed."""
        if self.stale:
            self._read_full()
        else:
            if resync or self.resync_wanted:
                self.last_resync = self.resync()
            if self.suspect:
                suspect, self.suspect = self.suspect, set()
                self._read(suspect)
        self._replan(self.dirty)
        self.dirty = set()
        ordered = [self.changes[name] for name in sorted(self.changes)]
        options = self.options
        errors = refusals(ordered, len(self.owned), self.target.owner, options.max_delete_share,
                          options.allow_mass_delete)
        return Plan(self.target.owner, tuple(ordered), errors, len(self.noops))

    def _replan(self, names: Iterable[str]) -> None:
        takeover = Takeover.of(self.options.adopt, self.options.take_over)
        owner, prune = self.target.owner, self.options.prune
        for name in names:
            self.changes.pop(name, None)
            self.noops.discard(name)
            if name not in self.desired and name not in self.owned:
                self.entries.pop(name, None)  # a full read would not read it: nothing plans it
            change = change_of(name, self.desired.get(name), self.entries.get(name), owner, prune, takeover)
            if change is not None and change.op is Op.NOOP:
                self.noops.add(name)
            elif change is not None:
                self.changes[name] = change

    def _settle(self, written: list[str]) -> None:
        """Read back what the apply wrote, so the held state is current before the next event."""
        try:
            self._read(written)
        except RedisError:
            self.lost()
            return
        self._replan(self.dirty)
        self.dirty = set()

    # --- writing -----------------------------------------------------------------------------------

    def reconcile(self, *, dry_run: bool = False, resync: bool = False) -> Outcome:
        """Plan and apply like :func:`reconcile.reconcile`, from the held state; reads back what it wrote."""
        target = self.target
        for attempt in range(REPLAN_ATTEMPTS):
            try:
                current = self.plan(resync=resync and attempt == 0)
            except RedisError as exc:
                self.lost()
                raise StoreError(f"{_failed(target, 'reading the current state')}: {exc}") from None
            if current.errors:
                raise PlanRefused(current)
            if dry_run or not current.has_changes:
                return Outcome(current, None, attempt)
            written = [change.name for change in current.writes]
            try:
                result = apply_plan(current, target.client, target.keys, clock=self.clock)
            except StalePlanError:
                self.suspect.update(written)  # Redis moved on: read them again and re-plan
                continue
            except ApplyPermissionError as exc:
                raise StoreError(f"{_failed(target, 'applying')}: {exc}; nothing was written") from None
            except RedisError as exc:
                self.lost()
                raise StoreError(
                    f"{_failed(target, 'applying')}: {exc}; the apply is atomic, so nothing was written"
                ) from None
            self._settle(written)
            return Outcome(current, result, attempt)
        self.lost()
        raise StoreError(f"Redis kept changing under the plan ({REPLAN_ATTEMPTS} attempts); nothing was written")


def _failed(target: Target, what: str) -> str:
    return f"Redis at {redact_url(target.url)} failed while {what}"


class Incremental:
    """The watch mode's reconciler: a manifest index, the held Redis state, and the wake-channel subscription.

    :meth:`load` refreshes the index (only changed files are read) and hands
    the edited names to the held state; :meth:`reconcile` plans and applies
    only what changed.  Every ``full_resync_interval`` seconds (``clock``) the
    next load re-reads every file and the next plan reads all of Redis, as a
    cold run does.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        target: Target,
        options: PlanOptions,
        *,
        full_resync_interval: float = 3600.0,
        allow_empty: bool = False,
        clock: Callable[[], float] = time.monotonic,
        file_clock: Callable[[], float] = time.time,
        apply_clock: Callable[[], float] = time.time,
    ) -> None:
        self.index = ManifestIndex(paths, allow_empty=allow_empty, clock=file_clock)
        self.held = HeldState(target, options, clock=apply_clock)
        self.full_resync_interval = full_resync_interval
        self._clock = clock
        self._full_at = clock()  # the first load is full anyway (the index is empty)
        self._pending: set[str] = set()  # edited names not yet handed over (the manifests were invalid)
        self._own_messages = 0  # our applies' PUBLISHes still to come on the channel
        self._feed: ChangeFeed | None = None
        self._own_turn = False  # our apply's PUBLISH came: the next reported keys include its writes
        self.held.confirm_feed = self.confirm_feed
        self.digest: str | None = None

    # --- notifications -----------------------------------------------------------------------------

    @property
    def tracking(self) -> bool:
        """Whether Redis reports the keys other clients change (a resync then reads only those)."""
        return self._feed is not None and self._feed.tracking

    def subscribe(self) -> None:
        """Open the change feed; until it works, every plan resyncs (nothing may be missed)."""
        self.close()
        try:
            target = self.held.target
            feed = open_feed(target.client, target.url, target.keys)
        except (RedisError, OSError) as exc:
            log(logger, "change notifications unavailable; resyncing instead", logging.WARNING, error=str(exc))
            self.held.resync_wanted = True
            return
        self._feed = feed
        if feed.tracking:
            log(logger, "change feed open: Redis reports what changes, a quiet resync reads nothing")
        self.held.resync_wanted = True  # whatever was published before the subscription: look once

    def drain(self, *, expect: int = 0, timeout: float = 1.0) -> int:
        """Hand every queued notification to the held state; wait up to ``timeout`` for ``expect`` wake messages."""
        if self._feed is None:
            self.subscribe()
            if self._feed is None:
                return 0
        seen = 0
        try:
            while (notice := self._feed.poll(timeout if seen < expect else 0.0)) is not None:
                if isinstance(notice, Wake):
                    seen += 1
                    self._woken(notice.text)
                elif isinstance(notice, Changed):
                    self.held.changed(notice.keys, own_turn=self._own_turn)
                    self._own_turn = False
                elif isinstance(notice, Flushed):
                    self.held.lost()
        except FeedBroken as exc:
            log(logger, "change notifications lost; resyncing", logging.WARNING, error=str(exc))
            self.close()
            self.held.resync_wanted = True
        return seen

    def keep_up(self) -> None:
        """Between applies: take what the open feed has queued, so Redis never holds much for it (a busy beat
        reports every run); a closed feed is reopened by the next apply, not here."""
        if self._feed is not None:
            self.drain(timeout=0.0)

    def _woken(self, text: str) -> None:
        if text == self.held.target.owner and self._own_messages > 0:
            self._own_messages -= 1  # our own apply's PUBLISH: its names were read back already
            self._own_turn = True
        else:
            self.held.notified(text)

    def confirm_feed(self) -> bool:
        """Whether the feed has reported every change so far; what it read on the way is handed over first."""
        if self._feed is None or not self._feed.tracking:
            return False
        confirmed = self._feed.confirm()
        self.drain(timeout=0.0)
        return confirmed and self.tracking

    def close(self) -> None:
        if self._feed is not None:
            self._feed.close()
            self._feed = None
        self.held.tracked = False
        self._own_turn = False

    # --- the two steps the watch loop takes ------------------------------------------------------------

    def load(self, paths: Sequence[Path] = ()) -> Mapping[str, DesiredEntry]:
        """Refresh the index; the last good desired entries, or ManifestErrors (they stay in force)."""
        full = self._clock() >= self._full_at
        if full:
            self._full_at = self._clock() + self.full_resync_interval
        refresh = self.index.refresh(full=full)
        self._pending |= refresh.names
        if full:
            self.held.lost()  # and read all of Redis at the next plan
        if self.index.errors:
            raise ManifestErrors(self.index.errors)
        if self.held.stale:
            self.held.replace_desired(self.index.entries)
        else:
            self.held.set_desired(self._pending, self.index.entries)
        self._pending = set()
        self.digest = self.index.digest
        return self.held.desired

    def reconcile(self, *, dry_run: bool = False, resync: bool = False, events: bool = False) -> Outcome:
        """Drain notifications, then plan and apply from the held state (``events``: load first).

        A resync asked for while the manifests are invalid is kept for the first plan after.
        """
        self.held.resync_wanted |= resync
        if events:
            self.load()
        self.drain(timeout=0.0)
        full = self.held.stale
        if full:
            gc.unfreeze()  # what the last full read held may be garbage now
        outcome = self.held.reconcile(dry_run=dry_run)
        if full:
            # The index and the held state are hundreds of thousands of long-lived objects at 100k entries: a
            # full collection walking them took up to a second in the middle of an edit.  Frozen, they are
            # never scanned; objects made by later edits are collected as usual.
            gc.collect()
            gc.freeze()
        if outcome.result is not None and outcome.result.commands_written > 0:
            self._own_messages += 1
        return outcome
