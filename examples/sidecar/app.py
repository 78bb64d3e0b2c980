"""A minimal Celery app for docker-compose.yaml and deploy/kubernetes (your own app replaces it).

redbeat reads its settings from ``app.conf`` only, never from the environment:
an app that takes them from the environment copies them into ``app.conf``, as
here: REDIS_URL; BEAT_METRICS_LISTEN to serve beat's /metrics; BEAT_METRICS_ENTRIES for
per-entry run metrics of up to that many schedules.
"""

from __future__ import annotations

import os

from celery import Celery

REDIS_URL = os.environ.get("REDIS_URL", "redis://redis:6379/0")

app = Celery("app", broker=REDIS_URL)
app.conf.update(
    redbeat_redis_url=REDIS_URL,
    redbeat_metrics_listen=os.environ.get("BEAT_METRICS_LISTEN"),
    redbeat_metrics_entries=os.environ.get("BEAT_METRICS_ENTRIES"),
    timezone="UTC",
    beat_scheduler="redbeat.Scheduler",
    task_ignore_result=True,
)


@app.task(name="app.heartbeat")
def heartbeat() -> str:
    return "ok"


@app.task(name="app.nightly_report")
def nightly_report(format: str = "pdf") -> str:  # noqa: A002
    return format
