"""RedBeatSchedulerEntry: celery-redbeat's entry API over EntryStore."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from celery.app import app_or_default
from celery.beat import ScheduleEntry

from . import codec, timing
from .client import get_redis
from .config import ensure_conf
from .schedules import NTH_WEEKDAYS_EXT, rrule, rule_weekdays
from .store import EntryStore

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def as_utc(moment: datetime | None) -> datetime | None:
    """``moment`` made aware: a naive datetime is UTC, as celery-redbeat stores and reads it."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def store_for(app: Any) -> EntryStore:
    """The app's EntryStore, rebuilt when the client behind ``app.redbeat_redis`` changes."""
    app = app_or_default(app)
    client = get_redis(app)
    store = getattr(app, "_redbeat_store", None)
    if store is None or store.client is not client or store.keys.prefix != ensure_conf(app).key_prefix:
        store = EntryStore(client, ensure_conf(app).keys)
        app._redbeat_store = store
    return store


def anchor_of(score: float | None) -> datetime | None:
    """The instant a never-run entry is anchored at (its stored score); 0 means "due now"."""
    if score is None or score < 0:
        return None
    return datetime.fromtimestamp(score, tz=timezone.utc) if score > 0 else _EPOCH


def entry_timezone(ext: dict[str, Any] | None) -> ZoneInfo | None:
    name = (ext or {}).get("timezone")
    return ZoneInfo(name) if name else None


def entry_schedule(schedule: Any, ext: dict[str, Any] | None) -> Any:
    """``schedule`` as beat times it: an rrule on the nth weekdays of its ``ext`` (celery-redbeat runs it on the
    plain weekdays of its definition, every Friday for the last one). Raises ValueError for a bad weekday code."""
    codes = (ext or {}).get(NTH_WEEKDAYS_EXT)
    if codes is None or not isinstance(schedule, rrule):
        return schedule
    return schedule.with_weekdays(rule_weekdays(schedule.freq, schedule.bymonth, codes))


class RedBeatSchedulerEntry(ScheduleEntry):  # type: ignore[misc]  # celery is untyped (ScheduleEntry is Any)
    """A schedule entry stored at ``<prefix><name>`` (see docs/design.md §2.4 for the JSON)."""

    _meta = None
    _last_run_at: datetime | None = None

    @property
    def last_run_at(self) -> datetime | None:
        """When the entry last ran; naive datetimes given to the API are taken as UTC."""
        return self._last_run_at

    @last_run_at.setter
    def last_run_at(self, value: datetime | None) -> None:
        self._last_run_at = as_utc(value)

    def __iter__(self) -> Any:
        """celery copies an entry as ``cls(**dict(entry))``: name the stored field as the argument."""
        for field, value in vars(self).items():
            yield ("last_run_at" if field == "_last_run_at" else field), value

    def __init__(
        self,
        name: Any = None,
        task: str | None = None,
        schedule: Any = None,
        args: Any = None,
        kwargs: Any = None,
        enabled: bool = True,
        options: Any = None,
        ext: dict[str, Any] | None = None,
        **clsargs: Any,
    ) -> None:
        defaulted = clsargs.get("last_run_at") is None
        super().__init__(
            name=str(name), task=task, schedule=schedule, args=args, kwargs=kwargs, options=options, **clsargs
        )
        if defaulted and self.last_run_at is not None:
            # A new entry starts on a whole second (celery takes "now" to the microsecond): its slots and
            # scores are then whole seconds, and entries saved within one second share a score, which
            # celery-redbeat's tick (it fetches scores up to the current whole second) needs to load them
            # together after a rollback or in a mixed fleet.  An explicit last_run_at is kept as given.
            self.last_run_at = self.last_run_at.replace(microsecond=0)
        self.enabled = enabled
        self.ext = dict(ext or {})
        self.schedule: Any = entry_schedule(self.schedule, self.ext)
        ensure_conf(self.app)

    def __reduce__(self) -> Any:
        """Pickle and ``copy`` by keyword: celery's positional ``__reduce__`` would hand ``last_run_at`` to the
        argument this class takes as ``schedule``.  The app is pickled by reference, as celery pickles apps."""
        return (_rebuild_entry, (type(self), dict(self)))

    def __deepcopy__(self, memo: dict[int, Any]) -> RedBeatSchedulerEntry:
        """A deep copy shares the app (a copy of the whole Celery app is never what a caller wants)."""
        fields = dict(self)
        app = fields.pop("app", None)
        return type(self)(app=app, **copy.deepcopy(fields, memo))

    # -- loading ------------------------------------------------------------------

    @staticmethod
    def load_definition(key: str, app: Any = None, definition: str | None = None) -> dict[str, Any]:
        if definition is None:
            definition = store_for(app).read(key)[0]
        if not definition:
            raise KeyError(key)
        return RedBeatSchedulerEntry.decode_definition(definition)

    @staticmethod
    def decode_definition(definition: str) -> dict[str, Any]:
        return codec.decode_definition(definition)

    @staticmethod
    def load_meta(key: str, app: Any = None) -> dict[str, Any]:
        return RedBeatSchedulerEntry.decode_meta(store_for(app).read(key)[1])

    @staticmethod
    def decode_meta(meta: str | None, app: Any = None) -> dict[str, Any]:
        return codec.decode_meta(meta)

    @staticmethod
    def generate_key(app: Any, name: str) -> str:
        return str(ensure_conf(app).key_prefix + name)

    @classmethod
    def from_stored(
        cls, key: str, definition: str | None, meta: str | None, ext: str | None, app: Any = None
    ) -> RedBeatSchedulerEntry:
        if not definition:
            raise KeyError(key)
        app = app_or_default(app)
        fields = codec.decode_definition(definition)
        if not fields.get("name"):
            fields["name"] = ensure_conf(app).keys.name_of(key)
        run_state = codec.decode_meta(meta)
        entry = cls(app=app, ext=codec.decode_ext(ext), **fields, **run_state)
        # celery's ScheduleEntry defaults last_run_at to now: a never-run entry must stay never-run.
        entry.last_run_at = run_state["last_run_at"]
        return entry

    @classmethod
    def from_key(cls, key: str, app: Any = None) -> RedBeatSchedulerEntry:
        ensure_conf(app)
        return cls.from_stored(key, *store_for(app).read(key), app=app)

    # -- where it stands ------------------------------------------------------------

    @property
    def key(self) -> str:
        return self.generate_key(app=self.app, name=self.name)

    @property
    def tz(self) -> ZoneInfo | None:
        return entry_timezone(self.ext)

    def _now(self) -> datetime:
        now: datetime = self.app.now()  # celery is untyped
        return now

    @property
    def policy(self) -> timing.Policy:
        return timing.Policy.from_ext(self.ext, self.name)

    def next_due_after(self, last_run_at: datetime | None, now: datetime | None = None) -> datetime | None:
        """When the entry is due after a run at ``last_run_at`` (None: never ran), seen at ``now``.

        ``now`` defaults to the app's clock.
        """
        return timing.next_due(self.schedule, last_run_at, now=now or self._now(), tz=self.tz, policy=self.policy)

    @property
    def due_at(self) -> datetime | None:
        """When the entry is next due (possibly past, i.e. overdue); None when its schedule is finished.

        Computed from ``last_run_at`` with the rule in :mod:`redbeat.timing`
        (celery-redbeat added a remaining time measured from *now* to
        last_run_at: its #307).
        """
        return self.next_due_after(self.last_run_at)

    @property
    def score(self) -> float:
        """UTC epoch seconds of ``due_at`` with the fraction kept (sub-second scores); -1 when never due again."""
        due = self.due_at
        return -1 if due is None else due.timestamp()

    @property
    def rank(self) -> int | None:
        return store_for(self.app).rank(self.key)

    def is_due(self) -> tuple[bool, float | None]:
        if not self.enabled:
            return False, 5.0  # celery-redbeat's answer: look again in 5 seconds
        now = self._now()
        decision = timing.decide(self.schedule, self.last_run_at, now=now, anchor=now, tz=self.tz, policy=self.policy)
        if decision.next_due is None:
            return decision.due, None
        return decision.due, max((decision.next_due - now).total_seconds(), 0.0)

    # -- writing --------------------------------------------------------------------

    def _definition_json(self) -> str:
        return codec.encode_definition(
            name=self.name,
            task=self.task,
            args=self.args,
            kwargs=self.kwargs,
            options=self.options,
            schedule=self.schedule,
            enabled=self.enabled,
        )

    def save(self) -> RedBeatSchedulerEntry:
        """Upsert: write the definition, keep any stored run state, and score from that run state.

        A new entry stores ``last_run_at`` as constructed (celery defaults it
        to now, so an interval entry first runs one interval later, as in
        celery-redbeat).  A disabled entry is not in the due index (score
        -1) until it is saved enabled again.
        """

        def score_for(meta_json: str) -> float:
            self.last_run_at = codec.decode_meta(meta_json)["last_run_at"]
            if not self.enabled:
                return -1
            return self.score

        stored = store_for(self.app).save(
            self.key,
            definition=self._definition_json(),
            ext=codec.encode_ext(self.ext),
            meta_if_absent=codec.encode_meta(self.last_run_at),
            score_for_meta=score_for,
        )
        run_state = codec.decode_meta(stored)
        self.last_run_at = run_state["last_run_at"]
        self.total_run_count = run_state["total_run_count"]
        return self

    def delete(self) -> None:
        store_for(self.app).delete(self.key)

    def _next_instance(
        self, last_run_at: datetime | None = None, only_update_last_run_at: bool = False
    ) -> RedBeatSchedulerEntry:
        entry: RedBeatSchedulerEntry = super()._next_instance(last_run_at=last_run_at)  # celery is untyped
        entry.ext = dict(self.ext)
        entry.enabled = self.enabled
        if only_update_last_run_at:
            entry.total_run_count = self.total_run_count
        store_for(self.app).write_run_state(
            entry.key,
            meta=codec.encode_meta(entry.last_run_at, entry.total_run_count),
            score=entry.score if entry.enabled else -1,
        )
        return entry

    __next__ = next = _next_instance

    def reschedule(self, last_run_at: datetime | None = None) -> None:
        """Record a run at ``last_run_at`` (default now) and re-score; the run count is kept."""
        self.last_run_at = last_run_at or self._default_now()
        store_for(self.app).write_run_state(
            self.key,
            meta=codec.encode_meta(self.last_run_at, self.total_run_count),
            score=self.score if self.enabled else -1,
        )

    def __repr__(self) -> str:
        return f"<RedBeatSchedulerEntry: {self.name} {self.task}(*{self.args}, **{self.kwargs}) {self.schedule}>"


def _rebuild_entry(cls: type[RedBeatSchedulerEntry], fields: dict[str, Any]) -> RedBeatSchedulerEntry:
    return cls(**fields)
