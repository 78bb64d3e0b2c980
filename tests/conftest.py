from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from support.redis_proc import RedisProcess  # noqa: E402


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server per test session (per xdist worker); tests flush it via `redis_client`."""
    with RedisProcess() as server:
        yield server


@pytest.fixture
def redis_client(redis_server):
    client = redis_server.client()
    client.flushall()
    client.config_resetstat()
    yield client
    client.close()


@pytest.fixture
def redis_url(redis_server, redis_client) -> str:
    return redis_server.url


@pytest.fixture
def fresh_redis(tmp_path):
    """A redis-server of the test's own, for tests that kill or restart it."""
    server = RedisProcess(workdir=tmp_path / "redis")
    server.dir.mkdir(parents=True, exist_ok=True)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def fake_redis():
    import fakeredis

    client = fakeredis.FakeRedis(decode_responses=True)
    yield client
    client.flushall()
