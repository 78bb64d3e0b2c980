"""celery-redbeat's module path: ``redbeat.schedulers`` re-exports the public API.

Besides our own names it offers, unused, every top-level name of celery-redbeat 2.4.2's
``schedulers`` module that real projects import from it (``redis``, ``Redis``, ``to_timestamp``,
the JSON codec...); tests/compat/test_public_names.py keeps the two lists equal.
"""

from __future__ import annotations

import json  # noqa: F401
import ssl  # noqa: F401
import warnings  # noqa: F401
from datetime import MINYEAR, datetime  # noqa: F401
from typing import Any

import redis  # noqa: F401
import redis.exceptions  # noqa: F401
from celery.app import app_or_default  # noqa: F401
from celery.beat import DEFAULT_MAX_INTERVAL, ScheduleEntry, Scheduler  # noqa: F401
from celery.signals import beat_init
from celery.utils.log import get_logger  # noqa: F401
from celery.utils.time import humanize_seconds  # noqa: F401
from kombu.utils.objects import cached_property  # noqa: F401
from kombu.utils.url import maybe_sanitize_url  # noqa: F401
from redis import Redis  # noqa: F401
from redis.sentinel import MasterNotFoundError, Sentinel  # noqa: F401

from .client import REDBEAT_INTERNAL_OPTIONS, RetryingConnection, get_redis
from .codec import RedBeatJSONDecoder, RedBeatJSONEncoder  # noqa: F401
from .config import RedBeatConfig, ensure_conf
from .entry import RedBeatSchedulerEntry
from .epoch import to_timestamp  # noqa: F401
from .lock import EXTEND_TO_SCRIPT as LUA_EXTEND_TO_SCRIPT
from .scheduler import RedBeatScheduler, logger

#: Attributes of the Celery app that hold the client (celery-redbeat's names; ``app.redbeat_redis`` is read).
REDBEAT_REDIS_KEY = "redbeat_redis"
REDBEAT_SENTINEL_KEY = "redbeat_sentinel"
#: celery-redbeat's message when an entry cannot be added (kept for code that formats it).
ADD_ENTRY_ERROR = """\

Couldn't add entry %r to redis schedule: %r. Contents: %r
"""

__all__ = [
    "LUA_EXTEND_TO_SCRIPT",
    "REDBEAT_INTERNAL_OPTIONS",
    "RedBeatConfig",
    "RedBeatScheduler",
    "RedBeatSchedulerEntry",
    "RetryingConnection",
    "acquire_distributed_beat_lock",
    "ensure_conf",
    "get_redis",
]


@beat_init.connect  # type: ignore[untyped-decorator]  # celery is untyped
def acquire_distributed_beat_lock(sender: Any = None, **kwargs: Any) -> None:
    """On ``celery beat`` start: try the lock once and let the tick wait on change notifications.

    celery-redbeat blocked here until it got the lock, and Celery swallowed any
    error raised, leaving ``scheduler.lock`` None (its #285).  Ours never
    blocks or raises: an instance that does not lead is a standby and
    competes for the lock on every tick.
    """
    scheduler = getattr(sender, "scheduler", None)
    if not isinstance(scheduler, RedBeatScheduler):
        return
    scheduler.wait_for_changes = True
    scheduler.start_metrics()
    try:
        scheduler._try_lead()
    except Exception:
        logger.exception("beat: taking the lock at start-up failed; will retry on the next tick")
