"""The demo Celery app: ``celery -A demo worker`` / ``celery -A demo beat -S redbeat.Scheduler``.

Settings come from :mod:`demo.celeryconfig` (environment variables); the
tasks, in :mod:`demo.tasks`, append one JSON line per run to ``$DEMO_RUN_LOG``.
"""

from __future__ import annotations

from celery import Celery

app = Celery("demo", include=["demo.tasks"])
app.config_from_object("demo.celeryconfig")

__all__ = ["app"]
