"""The entry API takes time values as celery-redbeat does: naive = UTC, any last_run_at from datetime.min on.

Property tests over naive, aware (any offset) and extreme datetimes, on fakeredis: saving, scoring,
rescheduling and advancing an entry never raise, store the instant given, and a last run before
1970 means "due now" (an overdue score from the epoch on, which every tick fetches), not a negative
score no tick reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import fakeredis
import pytest
from celery import Celery
from celery.schedules import crontab, schedule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redbeat import RedBeatSchedulerEntry

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCHEDULE_KEY = "redbeat::schedule"

# Far enough from datetime.max that a slot after the last run still exists.
naive_times = st.datetimes(min_value=datetime.min, max_value=datetime(9000, 1, 1))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware_times = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9000, 1, 1)),
    offsets,
)
schedules = st.one_of(
    st.integers(min_value=1, max_value=10**7).map(lambda s: schedule(timedelta(seconds=s))),
    st.sampled_from([crontab(), crontab(minute="*/5"), crontab(minute=0, hour=7, day_of_week="sat,sun"),
                     crontab(minute=0, hour=0, day_of_month=1, month_of_year="1,7")]),
)


@pytest.fixture(scope="module")
def app() -> Celery:
    app = Celery("datetimes", set_as_current=False)
    app.conf.update(redbeat_redis_url="redis://127.0.0.1:1/0", timezone="UTC", redbeat_key_expiry_check="ignore")
    app.redbeat_redis = fakeredis.FakeRedis(decode_responses=True)
    return app


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(last_run_at=st.one_of(naive_times, aware_times), sched=schedules)
def test_save_scores_and_stores_the_instant_given(app: Celery, last_run_at: datetime, sched: schedule) -> None:
    entry = RedBeatSchedulerEntry("p", "t", sched, app=app, last_run_at=last_run_at)
    entry.delete()
    entry.save()
    loaded = RedBeatSchedulerEntry.from_key(entry.key, app=app)
    assert loaded.last_run_at == as_utc(last_run_at)
    score = app.redbeat_redis.zscore(SCHEDULE_KEY, entry.key)
    assert score == entry.score and score >= 0
    if as_utc(last_run_at) < EPOCH:
        # Overdue: a slot soon after the epoch (the epoch itself for an interval), which every tick fetches.
        assert score <= datetime.now(UTC).timestamp() and loaded.is_due()[0], "a pre-1970 last run is due now"
    else:
        assert entry.due_at is not None and entry.due_at > as_utc(last_run_at)


@PROPERTY
@given(moment=naive_times, sched=schedules)
def test_naive_is_utc_everywhere(app: Celery, moment: datetime, sched: schedule) -> None:
    naive = RedBeatSchedulerEntry("n", "t", sched, app=app, last_run_at=moment)
    aware = RedBeatSchedulerEntry("a", "t", sched, app=app, last_run_at=moment.replace(tzinfo=UTC))
    assert naive.due_at == aware.due_at and naive.score == aware.score
    assert naive.is_due()[0] == aware.is_due()[0]
    naive.save().reschedule(moment)
    assert app.redbeat_redis.zscore(SCHEDULE_KEY, naive.key) == aware.score
    advanced = naive.next(last_run_at=moment)
    assert advanced.last_run_at == moment.replace(tzinfo=UTC)
    assert RedBeatSchedulerEntry.from_key(naive.key, app=app).total_run_count == advanced.total_run_count


def utcnow_naive() -> datetime:
    """What ``datetime.utcnow()`` returns (deprecated in Python 3.12)."""
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.mark.parametrize("sched", [schedule(timedelta(seconds=60)), crontab(minute="*/5")], ids=["every", "cron"])
@pytest.mark.parametrize(
    "last_run_at", [datetime.min, datetime(1960, 1, 1), utcnow_naive()], ids=["min", "1960", "now"]
)
def test_celery_redbeat_calls_with_naive_datetimes(app: Celery, sched: schedule, last_run_at: datetime) -> None:
    """The calls that raised "can't compare offset-naive and offset-aware datetimes" (or OverflowError)."""
    entry = RedBeatSchedulerEntry("c", "t", sched, app=app, last_run_at=last_run_at)
    assert entry.due_at is not None
    entry.is_due()
    entry.save().reschedule()
    entry.reschedule(utcnow_naive())
    assert entry.next(last_run_at=utcnow_naive()).last_run_at.tzinfo is UTC


def test_a_new_entry_starts_on_a_whole_second_and_an_explicit_last_run_keeps_its_fraction(app: Celery) -> None:
    """Entries saved within one second share their score (celery-redbeat's tick fetches up to the whole second)."""
    every = schedule(timedelta(seconds=60))
    first = RedBeatSchedulerEntry("w1", "t", every, app=app).save()
    second = RedBeatSchedulerEntry("w2", "t", every, app=app).save()
    assert first.last_run_at is not None and first.last_run_at.microsecond == 0
    if first.last_run_at == second.last_run_at:
        assert first.score == second.score == first.last_run_at.timestamp() + 60
    explicit = datetime(2026, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    kept = RedBeatSchedulerEntry("w3", "t", every, app=app, last_run_at=explicit)
    assert kept.last_run_at == explicit and kept.score == explicit.timestamp() + 60
