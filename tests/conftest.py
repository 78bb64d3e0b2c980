from __future__ import annotations

import fcntl
import os
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


# --- Tests that need the machine to themselves ------------------------------------------------------------
# scripts/test.sh runs the suite on 4 pytest-xdist workers (2 cores): most tests wait on the processes they
# start. A test marked `exclusive` asserts how soon real processes act (a slot sent within half a second, a
# takeover within the lease, a pause that ends by itself), which the other workers' load would decide; it runs
# with no other test at the same time. Every other test holds a shared lock on the session's `machine.lock`
# while it runs, an exclusive one the exclusive lock, kept from one exclusive test to the next; `gate.lock`
# stops new tests from starting while an exclusive one waits, so it is not starved. The exclusive tests are
# moved to the front of the collection, so they land together on one worker and run one after the other at
# the start: one serial phase instead of a wait for the other workers before each of them. The locks are
# taken outside pytest-timeout's timer. Without xdist (one process) none of this is needed and nothing runs.


class _MachineLock:
    def __init__(self, directory: Path) -> None:
        self.gate = open(directory / "gate.lock", "a+")  # noqa: SIM115 - held for the session
        self.machine = open(directory / "machine.lock", "a+")  # noqa: SIM115
        self.exclusive = False

    def enter(self, exclusive: bool) -> None:
        if exclusive and self.exclusive:
            return  # kept from the previous exclusive test
        fcntl.flock(self.gate, fcntl.LOCK_EX)
        if exclusive:
            fcntl.flock(self.machine, fcntl.LOCK_EX)  # waits for the tests running now; the gate stays closed
            self.exclusive = True
        else:
            fcntl.flock(self.machine, fcntl.LOCK_SH)
            fcntl.flock(self.gate, fcntl.LOCK_UN)

    def leave(self, keep_exclusive: bool) -> None:
        if self.exclusive and keep_exclusive:
            return
        fcntl.flock(self.machine, fcntl.LOCK_UN)
        if self.exclusive:
            fcntl.flock(self.gate, fcntl.LOCK_UN)
            self.exclusive = False


_machine_lock: _MachineLock | None = None


def _is_exclusive(item: pytest.Item | None) -> bool:
    return item is not None and item.get_closest_marker("exclusive") is not None


def pytest_configure(config: pytest.Config) -> None:
    global _machine_lock
    if os.environ.get("PYTEST_XDIST_WORKER") and config.option.basetemp:
        # an xdist worker's basetemp is <the session's basetemp>/popen-gwN: the parent is shared by all workers
        _machine_lock = _MachineLock(Path(config.option.basetemp).parent)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _machine_lock is not None:  # every worker reorders alike, as xdist requires
        items.sort(key=lambda item: not _is_exclusive(item))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    if _machine_lock is None:
        return (yield)
    _machine_lock.enter(_is_exclusive(item))
    try:
        return (yield)
    finally:
        _machine_lock.leave(keep_exclusive=_is_exclusive(nextitem))
