"""The ``rrule`` schedule type (RFC 5545 recurrence rules via dateutil).

Same constructor, attributes and JSON as celery-redbeat's
``redbeat.schedules.rrule``.  Two differences users notice: the occurrence at
``dtstart`` itself is a run (celery-redbeat's #74 skipped it), and a new entry
does not run at creation unless an occurrence falls due (#154).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
from typing import Any

from celery.schedules import BaseSchedule, schedstate
from dateutil.rrule import DAILY, HOURLY, MINUTELY, MONTHLY, SECONDLY, WEEKLY, YEARLY, weekday
from dateutil.rrule import rrule as dateutil_rrule

from .epoch import get_utcoffset_minutes, to_timestamp

#: celery-redbeat's name here for celery's BaseSchedule (code imports it from this module).
schedule = BaseSchedule

FREQ_MAP = {
    "YEARLY": YEARLY,
    "MONTHLY": MONTHLY,
    "WEEKLY": WEEKLY,
    "DAILY": DAILY,
    "HOURLY": HOURLY,
    "MINUTELY": MINUTELY,
    "SECONDLY": SECONDLY,
}

_RULE_FIELDS = (
    "interval", "wkst", "count", "bysetpos", "bymonth", "bymonthday", "byyearday",
    "byeaster", "byweekno", "byweekday", "byhour", "byminute", "bysecond",
)

#: The ``ext`` key of an rrule's weekdays in RFC 5545 form (``["MO", "-1FR"]``): celery-redbeat's
#: definition can only hold plain weekdays, so the numbered ones live beside it.
NTH_WEEKDAYS_EXT = "rrule_byweekday"
_DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
#: The most occurrences of one weekday in a month, and in a year.
_MOST_IN_MONTH, _MOST_IN_YEAR = 5, 53
_CODE = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)", re.ASCII)


def rule_weekdays(freq: int, bymonth: Any, codes: Any) -> list[weekday]:
    """The dateutil weekdays an rrule runs on, from RFC 5545 BYDAY codes (``"MO"``, ``"+1FR"``, ``"-1SU"``).

    dateutil *intersects* plain and numbered weekdays in a monthly or yearly
    rule (``BYDAY=MO,-1FR`` matches nothing) where RFC 5545 means their union,
    every Monday and the last Friday. So when both kinds are present, a plain
    weekday becomes all its numbered occurrences (1st..5th in a month,
    1st..53rd in a year), which dateutil unites. Raises ValueError for a code
    that is not a weekday.
    """
    if not isinstance(codes, list):
        raise ValueError(f"{NTH_WEEKDAYS_EXT} must be a list of weekday codes, not {codes!r}")
    days = [_day_code(code) for code in codes]
    if freq not in (YEARLY, MONTHLY) or all(day.n is None for day in days):
        return days
    most = _MOST_IN_MONTH if freq == MONTHLY or bymonth else _MOST_IN_YEAR
    expanded: list[weekday] = []
    for day in days:
        expanded.extend([day] if day.n is not None else [day(n) for n in range(1, most + 1)])
    return expanded


def _day_code(code: Any) -> weekday:
    match = _CODE.fullmatch(code.strip().upper()) if isinstance(code, str) else None
    if match is None:
        raise ValueError(f"{code!r} is not a weekday code such as MO, +1FR or -1SU")
    n = int(match.group(1)) if match.group(1) else None
    if n == 0 or (n is not None and abs(n) > _MOST_IN_YEAR):
        raise ValueError(f"{code!r}: the number of a weekday is 1..{_MOST_IN_YEAR} or -1..-{_MOST_IN_YEAR}")
    return weekday(_DAY_CODES.index(match.group(2)), n)


class rrule(BaseSchedule):  # type: ignore[misc]  # celery is untyped (BaseSchedule is Any)  # noqa: N801 - celery-redbeat's public name
    #: celery-redbeat's repr, field for field (Flower and logs show the same text as with celery-redbeat).
    RRULE_REPR = (
        "<rrule: freq: {0.freq}, dtstart: {0.dtstart}, interval: {0.interval}, "
        "wkst: {0.wkst}, count: {0.count}, until: {0.until}, bysetpos: {0.bysetpos}, "
        "bymonth: {0.bymonth}, bymonthday: {0.bymonthday}, byyearday: {0.byyearday}, "
        "byeaster: {0.byeaster}, byweekno: {0.byweekno}, byweekday: {0.byweekday}, "
        "byhour: {0.byhour}, byminute: {0.byminute}, bysecond: {0.bysecond}>"
    )
    #: The frequency names the constructor takes for ``freq`` (celery-redbeat's class attribute).
    FREQ_MAP = FREQ_MAP

    def __init__(
        self,
        freq: int | str,
        dtstart: datetime | None = None,
        interval: int = 1,
        wkst: int | weekday | None = None,
        count: int | None = None,
        until: datetime | None = None,
        bysetpos: Any = None,
        bymonth: Any = None,
        bymonthday: Any = None,
        byyearday: Any = None,
        byeaster: Any = None,
        byweekno: Any = None,
        byweekday: Any = None,
        byhour: Any = None,
        byminute: Any = None,
        bysecond: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(freq, str):
            try:
                freq = FREQ_MAP[freq.upper()]
            except KeyError:
                raise ValueError(f"unknown rrule freq {freq!r}; one of {', '.join(FREQ_MAP)}") from None
        self.freq = freq
        self.dtstart = self.maybe_make_aware(dtstart) if dtstart else self.maybe_make_aware(self.now())
        self.interval = interval
        self.wkst = wkst
        self.count = count
        self.until = self.maybe_make_aware(until) if until else None
        self.bysetpos = bysetpos
        self.bymonth = bymonth
        self.bymonthday = bymonthday
        self.byyearday = byyearday
        self.byeaster = byeaster
        self.byweekno = byweekno
        self.byweekday = byweekday
        self.byhour = byhour
        self.byminute = byminute
        self.bysecond = bysecond
        self.rrule = self._build(self.dtstart, self.byweekday)

    def _build(self, dtstart: datetime, byweekday: Any) -> dateutil_rrule:
        # The weekdays the rule runs on: with_weekdays() replaces them, the stored byweekday stays.
        self._rule_byweekday: Any = byweekday
        fields = {name: getattr(self, name) for name in _RULE_FIELDS}
        fields["byweekday"] = byweekday
        # types-python-dateutil wants the Literal 0-6; freq is an int (FREQ_MAP's, or one dateutil checks itself)
        return dateutil_rrule(self.freq, dtstart=dtstart, until=self.until, **fields)  # type: ignore[arg-type]

    def localised(self, tz: tzinfo | None, byweekday: Any = None) -> rrule:
        """This rule with wall-clock occurrences in ``tz`` (DST-aware) and/or nth-weekday forms.

        celery-redbeat stores dtstart as a fixed UTC offset, so its occurrences
        ignore daylight saving; the per-entry time zone extension re-anchors
        dtstart in the named zone so that ``byhour: [9]`` stays 09:00 local.
        """
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        dtstart = self.dtstart.astimezone(tz) if tz is not None else self.dtstart
        clone.rrule = clone._build(dtstart, self._rule_byweekday if byweekday is None else byweekday)
        return clone

    def with_weekdays(self, byweekday: Any) -> rrule:
        """This rule running on ``byweekday`` (nth weekdays, see :func:`rule_weekdays`), stored as before."""
        return self.localised(None, byweekday)

    def next_after(self, moment: datetime, *, inclusive: bool = False) -> datetime | None:
        return self.rrule.after(moment, inc=inclusive)

    def previous_before(self, moment: datetime, *, inclusive: bool = True) -> datetime | None:
        return self.rrule.before(moment, inc=inclusive)

    def remaining_estimate(self, last_run_at: datetime) -> timedelta | None:
        next_run = self.next_after(self.maybe_make_aware(last_run_at))
        if next_run is None:
            return None
        left: timedelta = self.maybe_make_aware(next_run) - self.maybe_make_aware(self.now())  # celery is untyped
        return left

    def is_due(self, last_run_at: datetime) -> schedstate:
        remaining = self.remaining_estimate(last_run_at)
        if remaining is None:
            return schedstate(False, None)
        if remaining.total_seconds() > 0:
            return schedstate(False, remaining.total_seconds())
        following = self.remaining_estimate(self.now())
        return schedstate(True, None if following is None else max(following.total_seconds(), 0))

    def to_json(self) -> dict[str, Any]:
        """celery-redbeat's JSON form, keys in its order; dtstart/until as UTC seconds + offset minutes."""
        out: dict[str, Any] = {"__type__": "rrule", "freq": self.freq}
        for name in _RULE_FIELDS:
            out[name] = getattr(self, name)
        if self.dtstart:
            out["dtstart"] = to_timestamp(self.dtstart)
            out["dtstart_tz"] = get_utcoffset_minutes(self.dtstart)
        if self.until:
            out["until"] = to_timestamp(self.until)
            out["until_tz"] = get_utcoffset_minutes(self.until)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, rrule):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return self.RRULE_REPR.format(self)

    def __reduce__(self) -> Any:
        state = {name: getattr(self, name) for name in _RULE_FIELDS}
        return (_rebuild_rrule, (self.freq, self.dtstart, self.until, state))


def _rebuild_rrule(freq: int, dtstart: datetime, until: datetime | None, state: dict[str, Any]) -> rrule:
    return rrule(freq, dtstart=dtstart, until=until, **state)
