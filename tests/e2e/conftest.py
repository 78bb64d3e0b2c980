"""e2e fixtures: a real Celery worker and real ``celery beat -S redbeat.Scheduler`` processes.

Every process runs in its own process group against the test's own
redis-server (``fresh_redis``), and the group is killed when the test ends,
whatever happened.
"""

from __future__ import annotations

import pytest
from celery import Celery
from support.celery_rig import CeleryRig, Proc  # noqa: F401  (the rig lives in tests/support, shared with tests/reliability)


@pytest.fixture
def celery_rig(fresh_redis, tmp_path):
    rig = CeleryRig(fresh_redis.url, tmp_path)
    try:
        yield rig
    finally:
        rig.stop_all()


@pytest.fixture
def writer_app(fresh_redis):
    """An in-process app that writes entries to the test's redis (as a user's code would)."""
    app = Celery("e2e-writer", set_as_current=False)
    app.conf.update(redbeat_redis_url=fresh_redis.url, timezone="UTC", broker_url=fresh_redis.url)
    yield app
    client = getattr(app, "redbeat_redis", None)
    if client is not None:
        client.close()
