"""RedBeatScheduler: Celery's beat glue.  It asks the store, lets :mod:`timing` decide, and sends.

One tick (leader):
  1. ``fetch_due``: renew the lease and read every due entry (1 round trip);
  2. decide per entry, in Python, with no I/O;
  3. ``settle``: record every run and new score, fenced by the lock (1 round trip);
  4. send the claimed runs with Celery's own ``apply_entry``.
The run is recorded *before* it is sent: a crash between 3 and 4 loses those
sends (at most one slot per entry), but nothing is ever sent twice.  A SIGTERM
or Ctrl-C from 3 to the last send is held until then (:mod:`stopsignals`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from datetime import datetime
from typing import Any

from celery.beat import Scheduler
from celery.schedules import maybe_schedule
from celery.signals import before_task_publish
from celery.utils.time import humanize_seconds
from redis.exceptions import RedisError

from . import codec, timing
from .client import get_redis
from .config import DEFAULT_LOCK_TIMEOUT, ensure_conf
from .entry import RedBeatSchedulerEntry, anchor_of, entry_schedule, entry_timezone, store_for
from .history import Outcome, RunEvent, slot_text
from .lock import BeatLock
from .metrics import BeatMetrics, NullMetrics
from .operator import PauseError, active_pause, decode_trigger
from .redaction import redact_url
from .statics import FastStatic, fast_definition, statics_changes, statics_digest
from .stopsignals import stop_signals_held
from .store import EntryStore, Settlement, Step, StoredEntry
from .wakeup import ChangeListener

logger = logging.getLogger("celery.beat")

#: How many due entries one tick reads at most; more are taken by the next tick at once.
DUE_BATCH_LIMIT = 5000
#: A corrupt entry is looked at again (and logged again) after this long, not every tick.
CORRUPT_RETRY_SECONDS = 60.0
#: Decoded definitions kept between ticks, keyed by their JSON (decoding is most of a tick's CPU).
DEFINITION_CACHE_SIZE = 200_000


class RedBeatScheduler(Scheduler):  # type: ignore[misc]  # celery is untyped (Scheduler is Any)
    Entry = RedBeatSchedulerEntry

    lock: BeatLock | None = None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    max_interval: float  # set by celery's Scheduler.__init__ (beat_max_loop_interval or the scheduler's default)

    def __init__(self, app: Any, lock_key: str | None = None, lock_timeout: float | None = None, **kwargs: Any) -> None:
        conf = ensure_conf(app)
        self.lock_key = lock_key or conf.lock_key
        self.lock_timeout = float(lock_timeout or conf.lock_timeout or DEFAULT_LOCK_TIMEOUT)
        self.is_leader = False
        self.wait_for_changes = False
        self._statics_pending = False
        self._definitions: dict[str, dict[str, Any]] = {}
        self._schedules: dict[Any, Any] = {}  # interval and crontab objects shared by the definitions above
        self._unreadable: dict[str | bytes, str] = {}  # member -> why it was set aside (logged once per reason)
        self._wake_at: list[float] = []  # this tick's extra wake-up times (see _score_until_due)
        self._publishing = False
        before_task_publish.connect(self._publish_started)  # weak: goes with this scheduler
        self._outcomes: list[Outcome] = []  # sends of the last tick, recorded by the next fetch
        self._changes = ChangeListener(lambda: self.client, ensure_conf(app).keys.wake_channel)
        self._standby_logged = False
        self._closed = False  # close() ran: under beat's service, that is a shutdown (see tick)
        self.metrics: Any = BeatMetrics(entry_limit=conf.metrics_entries) if conf.metrics_listen else NullMetrics()
        self._metrics_server: Any = None
        super().__init__(app, **kwargs)

    # -- plumbing -----------------------------------------------------------------

    @property
    def client(self) -> Any:
        return get_redis(self.app)

    @property
    def store(self) -> EntryStore:
        return store_for(self.app)

    @property
    def renew_interval(self) -> float:
        """The leader ticks at least this often, renewing its lease each time."""
        return self.lock_timeout / 3.0

    def _beat_lock(self) -> BeatLock:
        if self.lock_key is None:  # callers check first: redbeat_lock_key=None runs without a lock
            raise RuntimeError("beat: no lock key (redbeat_lock_key=None disables the lock)")
        if self.lock is None or self.lock.client is not self.client:
            self.lock = BeatLock(self.client, self.lock_key, self.lock_timeout,
                                 token=self.lock.token if self.lock else None)
        return self.lock

    # -- start-up -----------------------------------------------------------------

    def setup_schedule(self) -> None:
        """Sync ``beat_schedule`` into Redis, but only as the leader (celery-redbeat #198).

        With locking on, this tries the lock once without waiting; a standby
        syncs when (and if) it becomes leader.
        """
        from .checks import check_key_expiry

        check_key_expiry(self.app)
        self._statics_pending = True
        if self._try_lead():
            self._sync_statics()

    def _sync_statics(self) -> None:
        self._statics_pending = False
        statics = dict(self.app.redbeat_conf.schedule or {})
        self.update_from_dict({**self._default_entries(statics), **statics}, record=statics)

    def _default_entries(self, data: dict[str, Any]) -> dict[str, Any]:
        """Celery's own periodic entries (``celery.backend_cleanup``), as its ``install_default_entries`` adds them."""
        from celery.schedules import crontab

        if "celery.backend_cleanup" in data or not self.app.conf.result_expires:
            return {}
        if self.app.backend.supports_autoexpire:
            return {}
        return {
            "celery.backend_cleanup": {
                "task": "celery.backend_cleanup",
                "schedule": crontab("0", "4", "*"),
                "options": {"expires": 12 * 3600},
            }
        }

    def install_default_entries(self, data: dict[str, Any]) -> None:
        self.update_from_dict(self._default_entries(data))

    def update_from_dict(self, dict_: dict[str, Any], record: dict[str, Any] | None = None) -> None:
        """Store entries given as ``beat_schedule`` items: only changed ones are written, run state kept.

        A few round trips whatever the size: one digest when nothing changed;
        else one read of every stored static and one atomic script with the
        changes (see :mod:`redbeat.statics` for the rule).
        ``record``: the names to keep in the statics set; names recorded
        there but gone from it are deleted.
        """
        store = self.store
        # Redis hashes what is stored while we encode what is configured (see _statics_unchanged).
        pending = store.start_statics_digest(sorted(dict_)) if record is not None and dict_ else None
        definitions = {}
        for name, item in dict_.items():
            fast = fast_definition(name, item)
            if fast is not None:
                definitions[name] = fast
        if pending is not None and self._statics_unchanged(dict_, record or {}, definitions, pending()):
            logger.debug("beat: beat_schedule unchanged (%d entries)", len(dict_))
            return
        now = self.app.now()
        entries: dict[str, Any] = {}
        for name, item in dict_.items():
            try:
                if name in definitions:
                    # A plain item: skip building a celery ScheduleEntry (most of a large first start).
                    schedule = maybe_schedule(item["schedule"], bool(item.get("relative", False)), app=self.app)
                    entries[name] = FastStatic(name, item, definitions[name][0], schedule, now)
                else:
                    entries[name] = self._maybe_entry(name, item)
            except Exception as exc:
                logger.error("beat: Couldn't add entry %r to redis schedule: %r. Contents: %r", name, exc, item)
        recorded, stored = store.read_statics(entries)
        changes = statics_changes(entries, stored, recorded, record, definitions=definitions, now=now)
        for name in changes.removed:
            logger.info("beat: Removing old static schedule entry %r.", name)
        if not changes.empty:
            store.write_statics(writes=changes.writes, removed=changes.removed, names=list(record or ()),
                                record_names=changes.record_names)
        if changes.writes or changes.removed:
            logger.info("beat: Synced beat_schedule: %d written, %d removed, %d unchanged",
                        len(changes.writes), len(changes.removed), len(entries) - len(changes.writes))

    def _statics_unchanged(
        self,
        dict_: dict[str, Any],
        record: dict[str, Any],
        definitions: dict[str, tuple[str, str | None]],
        stored: tuple[str, int, int],
    ) -> bool:
        """Every static is stored exactly as configured, and recorded as a static (one read-only script)."""
        if len(definitions) != len(dict_) or not set(record) <= set(dict_):
            return False
        digest, size, present = stored
        # Names beyond ``record`` (Celery's own default entries) are never recorded as statics.
        return digest == statics_digest(definitions) and size == present == len(record)

    # -- leadership -----------------------------------------------------------------

    def _try_lead(self) -> bool:
        if not self.lock_key:
            self.is_leader = True
            return True
        try:
            won = self._beat_lock().acquire()
        except RedisError as exc:
            logger.warning("beat: Cannot reach Redis to take the lock: %s", exc)
            won = False
        if won and not self.is_leader:
            logger.info("beat: Acquired lock %s as %s; this instance leads", self.lock_key, self.lock.token)  # type: ignore[union-attr]
            self._standby_logged = False
        elif not won and not self._standby_logged:
            holder = None
            with contextlib.suppress(RedisError):
                holder = self._beat_lock().holder()
            logger.info("beat: Standing by: lock %s is held by %s; retrying every %s",
                        self.lock_key, holder, humanize_seconds(self._standby_interval()))
            self._standby_logged = True
        self.is_leader = won
        self.metrics.leader.set(1 if won else 0)
        return won

    def _demote(self, reason: str) -> None:
        if self.is_leader:
            logger.warning("beat: Lost the lock %s (%s); standing by", self.lock_key, reason)
        self.is_leader = False
        self.metrics.leader.set(0)
        self._standby_logged = False

    def _standby_interval(self) -> float:
        return min(self.renew_interval, self.max_interval)

    # -- the tick -------------------------------------------------------------------

    def tick(self, min: Any = min, **kwargs: Any) -> float:
        if self._closed and self.wait_for_changes:
            # celery beat's SIGTERM/SIGINT handler closes us, then raises SystemExit wherever the main thread
            # is. Raised inside a send, a library can lose it (redis-py, reading the broker's reply, turns it
            # into "I/O operation on closed file", which the send path logs as a failed send), and the
            # service loop would tick on until SIGKILL. Whatever happened to it, a closed scheduler stops.
            raise SystemExit("beat: the scheduler was closed (SIGTERM or SIGINT); stopping")
        if not self.is_leader and not self._try_lead():
            return self._wait(self._standby_interval())
        if self._statics_pending:
            self._sync_statics()
        started = time.perf_counter()
        try:
            interval = self._run_due()
        except RedisError as exc:
            self.metrics.errors.labels(kind="redis").inc()
            logger.error("beat: Redis error during tick, retrying: %s", exc)
            return self._wait(min(1.0, self.renew_interval))
        self.metrics.tick.observe(time.perf_counter() - started)
        self.metrics.last_tick.set(time.time())
        return self._wait(interval)

    def _run_due(self) -> float:
        store = self.store
        lock = self.lock if self.lock_key else None
        now = self.app.now()
        now_ts = now.timestamp()
        fetched = time.perf_counter()
        lease_from = time.monotonic()  # the lease runs from (no earlier than) here
        batch = store.fetch_due(
            now_ts,
            limit=DUE_BATCH_LIMIT,
            lock_key=self.lock_key or None,
            token=lock.token if lock else "",
            lease_ms=lock.lease_ms if lock else 0,
            heartbeat=self._heartbeat(now_ts),
            outcomes=self._outcomes,
            history_maxlen=self.app.redbeat_conf.history_maxlen,
        )
        self._outcomes = []  # recorded by the script (whoever holds the lock)
        self.metrics.renew.observe(time.perf_counter() - fetched)
        if batch is None:
            self._demote("another instance holds it")
            return 0.0
        steps: list[Settlement] = []
        to_send: list[RedBeatSchedulerEntry | None] = []
        self._wake_at = []
        for stored in batch.entries:
            step, entry = self._settle_one(stored, now)
            if step is not None:
                steps.append(step)
                to_send.append(entry)
        # A SIGTERM from here to the last send would lose the runs claimed and not yet sent: held until then.
        with stop_signals_held(any(entry is not None for entry in to_send)):
            applied = self._record_claims(store, steps, to_send, lock)
            if applied is None:
                self._demote("lost while ticking")
                return 0.0
            self.metrics.entries_due.set(len(batch.entries))
            next_scores = [batch.next_score] if batch.next_score is not None else []
            next_scores += self._wake_at  # never-run entries waiting out their jitter, filed under the slot
            for step, ok in zip(steps, applied, strict=False):
                if ok and step.new_score >= 0 and (step.step is Step.CLAIM or step.new_score > now_ts):
                    next_scores.append(step.new_score)
            self._send_claimed(steps, to_send, applied, lease_from if lock is not None else None)
        if len(batch.entries) >= DUE_BATCH_LIMIT:
            return 0.0
        wake_at = min(next_scores) if next_scores else time.time() + self.max_interval
        clock: datetime = self.app.now()  # celery is untyped
        return max(0.0, min(wake_at - clock.timestamp(), self.max_interval, self.renew_interval))

    def _record_claims(
        self, store: EntryStore, steps: list[Settlement], to_send: list[RedBeatSchedulerEntry | None],
        lock: BeatLock | None,
    ) -> list[bool] | None:
        """Settle the tick's steps in one script: per step whether it applied; None when the lock is lost."""
        try:
            return store.settle(steps, lock_key=self.lock_key or None, token=lock.token if lock else "",
                                history_maxlen=self.app.redbeat_conf.history_maxlen, claimed_at=time.time())
        except RedisError:
            # The script may have run before the connection broke (Redis killed after writing its AOF):
            # then these runs are claimed and will not be sent.  Never sent twice; say which may be lost.
            for entry in to_send:
                if entry is not None:
                    logger.warning("beat: Redis failed while recording the run of %s (%s); "
                                   "if Redis recorded it, this run may be lost", entry.name, entry.task)
            raise

    def _send_claimed(
        self, steps: list[Settlement], to_send: list[RedBeatSchedulerEntry | None], applied: list[bool],
        lease_from: float | None,
    ) -> None:
        """Send every run the settle script applied, in order, through Celery's ``apply_entry``.

        ``lease_from``: when the lease was last renewed (None without a lock); once it has run out,
        the claimed runs left are lost, never sent late beside a new leader's work.
        Per send this does only what a send needs; metrics are skipped when they are off.
        """
        metered = not isinstance(self.metrics, NullMetrics)
        for step, entry, ok in zip(steps, to_send, applied, strict=False):
            if not ok or entry is None:
                continue
            if lease_from is not None and time.monotonic() - lease_from >= self.lock_timeout:
                # Paused or slow past our lease: another beat may lead now.  The claimed run is
                # lost (the rule allows it), never sent late beside the new leader's work.
                self.metrics.errors.labels(kind="send").inc()
                logger.warning("beat: Lease expired before sending %s (%s); this run is lost",
                               entry.name, entry.task)
                self._record_outcome(step, "lease expired between claim and send")
                self._uncount(step, entry)
                self._demote("lease expired between claim and send")
                continue
            # celery's cached producer: one connection for every send of every tick, made at the first send
            failure = self.apply_entry(entry, producer=self.producer)
            self._record_outcome(step, failure)
            if failure is not None:
                if not self._publishing:  # failed before the broker had it: certainly not a run
                    self._uncount(step, entry)
                continue
            if metered:
                self._count_sent(step, entry)

    def _count_sent(self, step: Settlement, entry: RedBeatSchedulerEntry) -> None:
        sent_at = time.time()
        self.metrics.dispatches.inc()
        self.metrics.entry_ran(entry.name, sent_at, step.new_score)
        if entry.last_run_at is not None and step.step is Step.CLAIM:  # a trigger has no slot to lag
            self.metrics.lag.observe(max(0.0, sent_at - entry.last_run_at.timestamp()))

    def _heartbeat(self, now_ts: float) -> str:
        holder = self.lock.token if self.lock is not None and self.lock_key else None
        return json.dumps({"holder": holder or _process_name(), "tick_at": round(now_ts, 3)})

    def _record_outcome(self, step: Settlement, failure: str | None) -> None:
        """Keep what became of a claimed run for the next tick's fetch to append to the run history."""
        event = RunEvent.SENT if failure is None else RunEvent.LOST
        self._outcomes.append(Outcome(event, step.name, step.slot, time.time(), failure or ""))

    def apply_entry(self, entry: Any, producer: Any = None) -> str | None:
        """Celery's own send path (signals, routing, task protocol); a failed send is counted and logged.

        Returns None when the broker took it (celery's own returns None too, so an override that does is a
        send), else why the run is lost (for the run history).  After a failure, ``self._publishing`` says
        whether celery had started handing the message to the broker (then it may have been delivered).
        """
        self._publishing = False  # set by _publish_started, on celery's before_task_publish signal
        try:
            result = self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:  # the run is claimed: log it as lost, never retry (never twice)
            self.metrics.errors.labels(kind="send").inc()
            logger.error("beat: Sending due task %s (%s) failed; unless the broker got it, this run is lost: %s",
                         entry.name, entry.task, exc, exc_info=True)
            # A failure while publishing may follow delivery (the reply was lost): only one before it is sure.
            return f"send failed: {exc}"
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        if result is not None and hasattr(result, "id"):
            logger.debug("%s sent. id->%s", entry.task, result.id)
        return None

    def _publish_started(self, **_: Any) -> None:
        self._publishing = True

    def _uncount(self, step: Settlement, entry: RedBeatSchedulerEntry) -> None:
        """A claimed run that certainly never left beat is not a run: put its ``total_run_count`` back.

        The slot stays used (``last_run_at``): never sent twice.

        Best effort, one round trip, only after a failure; the claim's meta must still be in Redis.
        """
        if step.step is not Step.CLAIM:
            return  # a trigger's run is not counted in the run state
        restored = codec.encode_meta(entry.last_run_at, max(0, int(entry.total_run_count) - 1))
        try:
            self.store.uncount(step.member if isinstance(step.member, str) else "", claimed_meta=step.meta,
                               meta=restored)
        except RedisError as exc:
            logger.warning("beat: Could not take back the run count of %s after a failed send: %s", entry.name, exc)

    def _decoded(self, definition: str) -> dict[str, Any]:
        cached = self._definitions.get(definition)
        if cached is None:
            cached = codec.decode_definition(definition, schedules=self._schedules)
            if len(self._definitions) >= DEFINITION_CACHE_SIZE:
                self._definitions.clear()
                self._schedules.clear()
            self._definitions[definition] = cached
        return cached

    def _settle_one(self, stored: Any, now: datetime) -> tuple[Settlement | None, RedBeatSchedulerEntry | None]:
        """What to write for one due member, and the entry to send if it runs now."""
        if isinstance(stored.member, bytes) or stored.not_utf8:
            where = ", ".join(stored.not_utf8) or "its name"
            return self._set_aside(stored, now, f"{where} holds bytes that are not UTF-8"), None
        if stored.definition is None:
            logger.error("beat: %s is in the schedule but its hash or definition is gone; removing it from the "
                         "schedule", self.app.redbeat_conf.keys.entry_key_of(stored.member))
            return Settlement(Step.DROP, stored.member, stored.score), None
        now_ts = now.timestamp()
        try:
            fields = self._decoded(stored.definition)
            run_state = codec.decode_meta(stored.meta)
            ext = codec.decode_ext(stored.ext)
            if stored.trigger is not None:
                return self._take_trigger(stored, fields, ext, run_state, now)
            if not fields["enabled"]:
                # Out of the due index until saved enabled again (celery-redbeat re-read it every tick).
                return Settlement(Step.RESCORE, stored.member, stored.score, -1.0), None
            name = fields.get("name") or self.app.redbeat_conf.keys.name_of(stored.member)
            pause = active_pause(stored.pause, now_ts)
            if pause is not None:
                # Not run while paused; looked at again when the pause ends (catch_up decides then).
                return Settlement(Step.RESCORE, stored.member, stored.score, pause.recheck_score(now_ts)), None
            filed_at = anchor_of(float(stored.score))
            decision = timing.decide(
                entry_schedule(fields["schedule"], ext),
                run_state["last_run_at"],
                now=now,
                anchor=filed_at,
                tz=entry_timezone(ext),
                policy=timing.Policy.from_ext(ext, name),
                floor=filed_at if run_state["last_run_at"] is not None else None,
            )
        except Exception as exc:  # one bad entry must never stop the others
            return self._set_aside(stored, now, f"{type(exc).__name__}: {exc}"), None
        self._readable(stored.member)
        if not decision.due:
            score = self._score_until_due(decision, run_state)
            return Settlement(Step.RESCORE, stored.member, stored.score, score), None
        slot = decision.slot.astimezone(now.tzinfo) if decision.slot and now.tzinfo else decision.slot
        total = run_state["total_run_count"] + 1
        entry = self._entry_to_send(name, fields, ext, slot, total)
        meta = codec.encode_meta(slot, total)
        step = Settlement(Step.CLAIM, stored.member, stored.score, decision.next_score, meta, name, slot_text(slot))
        return step, entry

    def _entry_to_send(
        self, name: str, fields: dict[str, Any], ext: Any, last_run_at: datetime | None, total: int
    ) -> RedBeatSchedulerEntry:
        return RedBeatSchedulerEntry(
            app=self.app,
            name=name,
            task=fields["task"],
            schedule=fields["schedule"],
            args=fields["args"],
            kwargs=fields["kwargs"],
            options=fields["options"],
            enabled=True,
            ext=ext,
            last_run_at=last_run_at,
            total_run_count=total,
        )

    def _take_trigger(
        self, stored: Any, fields: dict[str, Any], ext: Any, run_state: dict[str, Any], now: datetime
    ) -> tuple[Settlement, RedBeatSchedulerEntry | None]:
        """A "run now" request: sent once with the entry's own task and options; its run state and phase untouched.

        An expired, unreadable or disabled entry's request is dropped unrun (the score goes back).
        """
        name = fields.get("name") or self.app.redbeat_conf.keys.name_of(stored.member)
        try:
            trigger = decode_trigger(stored.trigger)
        except PauseError as exc:
            logger.error("beat: Dropping the run-now request of %s: %s", name, exc)
            return Settlement(Step.TRIGGER, stored.member, stored.score, now.timestamp(), stored.trigger), None
        if trigger.expired(now.timestamp()) or not fields["enabled"]:
            logger.warning(
                "beat: Dropping the run-now request of %s by %s (%s)",
                name,
                trigger.by,
                "disabled" if not fields["enabled"] else "expired",
            )
            return Settlement(Step.TRIGGER, stored.member, stored.score, trigger.score, stored.trigger), None
        entry = self._entry_to_send(name, fields, ext, run_state["last_run_at"], run_state["total_run_count"])
        step = Settlement(
            Step.TRIGGER,
            stored.member,
            stored.score,
            trigger.score,
            stored.trigger,
            name,
            slot_text(now),
            note=trigger.history_note(),
        )
        return step, entry

    def _score_until_due(self, decision: timing.Decision, run_state: dict[str, Any]) -> float:
        """The score to file an entry that is not due yet under.

        An entry that has run: its next run time.  A never-run entry's score is its anchor, so it is
        filed under the slot itself, jitter excluded (filed under the jittered time, the anchor, and
        so the slot, would move on at every look and it would never run); beat wakes at the run time.
        """
        if run_state["last_run_at"] is not None or decision.next_slot is None or decision.next_due is None:
            return decision.next_score
        self._wake_at.append(decision.next_due.timestamp())
        return decision.next_slot.timestamp()

    def _set_aside(self, stored: StoredEntry, now: datetime, reason: str) -> Settlement:
        """An entry beat cannot read or schedule: logged once, counted, recorded for ``status``, looked at later.

        It is filed ``CORRUPT_RETRY_SECONDS`` ahead, out of the due window, so every other entry runs on
        time; once it reads fine again it runs as usual and its record is cleared.
        """
        self.metrics.errors.labels(kind="entry").inc()
        member = stored.member
        keys = self.app.redbeat_conf.keys
        label = keys.entry_key_of(member) if isinstance(member, str) else f"{member!r} (a name that is not UTF-8)"
        if self._unreadable.get(member) != reason:
            logger.error(
                "beat: Skipping %s: %s; the other entries run. Fix or delete it "
                "(looked at again every %ss, logged again only if the problem changes)",
                label,
                reason,
                int(CORRUPT_RETRY_SECONDS),
            )
            self._unreadable[member] = reason
        self.metrics.unreadable.set(len(self._unreadable))
        record = json.dumps({"reason": reason, "seen_at": round(now.timestamp(), 3)})
        return Settlement(Step.SET_ASIDE, member, stored.score, now.timestamp() + CORRUPT_RETRY_SECONDS, record)

    def _readable(self, member: str) -> None:
        if self._unreadable.pop(member, None) is not None:
            logger.info("beat: %s reads fine again; scheduling it as usual", member)
            self.metrics.unreadable.set(len(self._unreadable))

    # -- waiting --------------------------------------------------------------------

    def _wait(self, interval: float) -> float:
        """Sleep until ``interval`` passes or a writer publishes a change; then tick again.

        Only when beat's service loop runs us (``wait_for_changes``); called
        directly, ``tick()`` returns the interval as any Celery scheduler does.
        """
        if not self.wait_for_changes or interval <= 0:
            return interval
        self._changes.wait(interval)
        return 0.0

    # -- inspection and shutdown ----------------------------------------------------

    @property
    def schedule(self) -> dict[str, RedBeatSchedulerEntry]:
        """Every entry in Redis by name (celery-redbeat returned only a tick's window: its #155).

        Entries that cannot be loaded are logged and left out.
        """
        store = self.store
        members = [member for member, _ in store.members()]
        keys = [self.app.redbeat_conf.keys.entry_key_of(m) for m in members]
        out: dict[str, RedBeatSchedulerEntry] = {}
        for key, (definition, meta, ext, _score) in zip(keys, store.read_many(keys), strict=False):
            try:
                entry = self.Entry.from_stored(key, definition, meta, ext, app=self.app)
            except (KeyError, codec.CorruptEntryError) as exc:
                logger.warning("beat: Cannot load %s: %s", key, exc)
                continue
            out[entry.name] = entry
        return out

    @schedule.setter
    def schedule(self, value: Any) -> None:
        """Celery's base class assigns ``schedule``; Redis is the schedule here, so ignore it."""

    def reserve(self, entry: RedBeatSchedulerEntry) -> RedBeatSchedulerEntry:
        return next(entry)

    def start_metrics(self) -> None:
        """Serve /metrics when ``redbeat_metrics_listen`` is set (called once beat starts)."""
        listen = self.app.redbeat_conf.metrics_listen
        if listen and self._metrics_server is None:
            self._metrics_server = self.metrics.serve(listen)

    def close(self) -> None:
        self._closed = True
        if self._metrics_server is not None:
            server, thread = self._metrics_server
            server.shutdown()
            server.server_close()
            thread.join(5)
            self._metrics_server = None
        self._changes.close()
        self._flush_outcomes()
        if self.lock is not None and self.lock_key:
            try:
                if self.lock.release():
                    logger.info("beat: Released lock %s", self.lock_key)
            except RedisError as exc:
                logger.warning("beat: Could not release lock %s: %s", self.lock_key, exc)
        self.is_leader = False
        super().close()

    def _flush_outcomes(self) -> None:
        """At shutdown, record the last tick's sends now (there is no next fetch to carry them)."""
        outcomes, self._outcomes = self._outcomes, []
        if not outcomes or not self.app.redbeat_conf.history_maxlen:
            return
        try:
            self.store.append_history(outcomes, self.app.redbeat_conf.history_maxlen)
        except RedisError as exc:
            logger.warning("beat: Could not record the last %d sends in the run history: %s", len(outcomes), exc)

    @property
    def info(self) -> str:
        """Beat's banner lines.  Celery builds the banner from a lazy instance, so the lock's holder is read live."""
        conf = self.app.redbeat_conf
        lines = [f"       . redis -> {redact_url(conf.redis_url)}"]
        if self.lock_key:
            try:
                holder = self._beat_lock().holder()
            except RedisError as exc:
                holder = f"unknown ({exc})"
            state = f"held by {holder}" if holder else "free: this instance takes it"
            if self.lock is not None and holder:
                state += " (this instance: leader)" if holder == self.lock.token else " (this instance: standby)"
            lines.append(
                f"       . lock -> `{self.lock_key}` lease {humanize_seconds(self.lock_timeout)}, "
                f"renewed every {humanize_seconds(self.renew_interval)}; {state}"
            )
        else:
            lines.append("       . lock -> disabled (redbeat_lock_key=None): run only one beat")
        if conf.metrics_listen:
            lines.append(f"       . metrics -> http://{conf.metrics_listen}/metrics")
        return "\n".join(lines)


def _process_name() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"
