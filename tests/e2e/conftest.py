"""e2e fixtures: a real Celery worker and real ``celery beat -S redbeat.Scheduler`` processes.

Every process runs in its own process group against the test's own
redis-server (``fresh_redis``), and the group is killed when the test ends,
whatever happened.
"""

from __future__ import annotations

import pytest
from support.celery_rig import CeleryRig, Proc  # noqa: F401  (the rig lives in tests/support, shared with tests/reliability)
from support.rig_app import writer_app as make_writer_app


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
    with make_writer_app("e2e-writer", fresh_redis.url) as app:
        yield app
