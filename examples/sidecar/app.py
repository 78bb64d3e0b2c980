"""A minimal Celery app for docker-compose.yaml's beat and worker (your own app replaces it)."""

from __future__ import annotations

import os

from celery import Celery

app = Celery("app", broker=os.environ.get("REDIS_URL", "redis://redis:6379/0"))
app.conf.update(redbeat_redis_url=os.environ.get("REDIS_URL", "redis://redis:6379/0"), timezone="UTC",
                beat_scheduler="redbeat.Scheduler", task_ignore_result=True)


@app.task(name="app.heartbeat")
def heartbeat() -> str:
    return "ok"


@app.task(name="app.nightly_report")
def nightly_report(format: str = "pdf") -> str:  # noqa: A002
    return format
