"""Fixtures of the reliability scenarios; the checks live in rel_support.py (a unique module name)."""

from __future__ import annotations

import pytest
from support.redis_proc import RedisProcess
from support.rig_app import writer_app


@pytest.fixture
def aof_redis(tmp_path):
    """A redis-server of the test's own with AOF on, so it can be killed -9 and restarted with its data."""
    server = RedisProcess("--appendonly", "yes", "--appendfsync", "everysec", workdir=tmp_path / "redis")
    server.dir.mkdir(parents=True, exist_ok=True)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def writer(aof_redis):
    """An in-process app writing entries to the test's redis, as users' code does."""
    with writer_app("rel-writer", aof_redis.url) as app:
        yield app



