"""redbeat: a Celery beat scheduler that keeps schedules and run state in Redis.

``celery beat -S redbeat.Scheduler``.  Drop-in for celery-redbeat 2.x.
"""

from __future__ import annotations

from . import decoder, schedulers, schedules  # noqa: F401 - celery-redbeat's submodules, reachable as attributes
from ._version import __version__
from .checks import RedBeatKeyExpiryError
from .schedulers import RedBeatScheduler, RedBeatSchedulerEntry

#: The name users type: ``celery beat -S redbeat.Scheduler``.
Scheduler = RedBeatScheduler
#: The first releases' name.
RedisBeatScheduler = RedBeatScheduler

__all__ = [
    "RedBeatKeyExpiryError",
    "RedBeatScheduler",
    "RedBeatSchedulerEntry",
    "RedisBeatScheduler",
    "Scheduler",
    "__version__",
]
