"""An entry survives pickle, copy and deepcopy with every field, its app and its schedule type.

celery's ``ScheduleEntry.__reduce__`` passes its fields positionally in the order of celery's own
``__init__`` (name, task, last_run_at, ...), which puts ``last_run_at`` where this class takes the
schedule; before ``RedBeatSchedulerEntry.__reduce__`` every pickle or copy raised AttributeError.
"""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, timezone

import fakeredis
import pytest
from celery import Celery
from celery.schedules import crontab, schedule

from redbeat import RedBeatSchedulerEntry
from redbeat.schedules import rrule

LAST_RUN = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def app() -> Celery:
    app = Celery("copying", set_as_current=False)
    app.conf.update(redbeat_redis_url="redis://127.0.0.1:1/0", timezone="UTC")
    app.redbeat_redis = fakeredis.FakeRedis(decode_responses=True)
    return app


def _entry(app: Celery, sched: object) -> RedBeatSchedulerEntry:
    return RedBeatSchedulerEntry(
        "report [eu]/<b>", "tasks.report", sched, args=[1, "x"], kwargs={"k": "ü"}, options={"queue": "q"},
        enabled=False, last_run_at=LAST_RUN, total_run_count=7, app=app,
    )


def _fields(entry: RedBeatSchedulerEntry) -> dict[str, object]:
    return {k: v for k, v in dict(entry).items() if k != "app"}


SCHEDULES = [schedule(30), crontab(minute="5", day_of_week="sat,sun"), rrule("MINUTELY", interval=5,
                                                                            dtstart=LAST_RUN)]


@pytest.mark.parametrize("sched", SCHEDULES, ids=["interval", "crontab", "rrule"])
@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_a_copy_keeps_every_field(app: Celery, sched: object, how: str) -> None:
    original = _entry(app, sched)
    if how == "copy":
        copied = copy.copy(original)
    elif how == "deepcopy":
        copied = copy.deepcopy(original)
    else:
        copied = pickle.loads(pickle.dumps(original))
    assert type(copied) is RedBeatSchedulerEntry
    assert copied is not original
    assert _fields(copied) == _fields(original)
    assert copied.last_run_at == LAST_RUN and copied.total_run_count == 7 and copied.enabled is False
    assert type(copied.schedule) is type(original.schedule)


def test_a_deep_copy_shares_the_app_and_owns_its_arguments(app: Celery) -> None:
    original = _entry(app, schedule(30))
    copied = copy.deepcopy(original)
    assert copied.app is app
    copied.kwargs["k"] = "changed"
    assert original.kwargs == {"k": "ü"}
