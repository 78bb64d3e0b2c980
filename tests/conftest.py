"""Fixtures every test directory shares (redis-server, clients, fakeredis) and the suite's ordering under xdist."""

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
# takeover within the lease, a pause that ends by itself), which the load of the other workers' tests would
# decide. It never runs beside an ordinary test, only beside another exclusive one (they mostly wait too):
# - an ordinary test holds `ordinary.lock` shared while it runs, and starts only once it could take
#   `exclusive.lock` exclusively, i.e. when no exclusive test runs;
# - an exclusive test holds `exclusive.lock` shared (so no ordinary test starts), then takes `ordinary.lock`
#   exclusively for a moment: the ordinary tests running then have ended.
# An exclusive test keeps its lock when the next test of its worker is exclusive too. The exclusive tests are
# put in two runs, at the start of the first two workers' shares of the collection (worksteal hands each worker
# an equal, contiguous share first), so they run at the start, two at a time, as one phase. The locks are
# taken outside pytest-timeout's timer. Without xdist (one process) none of this runs.

EXCLUSIVE_AT_ONCE = 2


class _MachineLock:
    def __init__(self, directory: Path) -> None:
        self.ordinary = open(directory / "ordinary.lock", "a+")  # noqa: SIM115 - held for the session
        self.exclusive = open(directory / "exclusive.lock", "a+")  # noqa: SIM115
        self.holding_exclusive = False

    def enter(self, exclusive: bool) -> None:
        if exclusive:
            if not self.holding_exclusive:
                fcntl.flock(self.exclusive, fcntl.LOCK_SH)
                fcntl.flock(self.ordinary, fcntl.LOCK_EX)
                fcntl.flock(self.ordinary, fcntl.LOCK_UN)
                self.holding_exclusive = True
        else:
            fcntl.flock(self.exclusive, fcntl.LOCK_EX)
            fcntl.flock(self.ordinary, fcntl.LOCK_SH)
            fcntl.flock(self.exclusive, fcntl.LOCK_UN)

    def leave(self, next_is_exclusive: bool) -> None:
        if self.holding_exclusive:
            if not next_is_exclusive:
                fcntl.flock(self.exclusive, fcntl.LOCK_UN)
                self.holding_exclusive = False
        else:
            fcntl.flock(self.ordinary, fcntl.LOCK_UN)

    def close(self) -> None:
        self.ordinary.close()
        self.exclusive.close()


_machine_lock: _MachineLock | None = None


def _is_exclusive(item: pytest.Item | None) -> bool:
    return item is not None and item.get_closest_marker("exclusive") is not None


def pytest_configure(config: pytest.Config) -> None:
    global _machine_lock
    if os.environ.get("PYTEST_XDIST_WORKER") and config.option.basetemp:
        # an xdist worker's basetemp is <the session's basetemp>/popen-gwN: the parent is shared by all workers
        _machine_lock = _MachineLock(Path(config.option.basetemp).parent)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _machine_lock
    if _machine_lock is not None:
        _machine_lock.close()  # closing the files also drops any lock still held
        _machine_lock = None


def _split_at_modules(items: list[pytest.Item], parts: int) -> list[list[pytest.Item]]:
    """``items`` cut into ``parts`` contiguous runs of about equal length, each cut between two modules."""
    modules = [getattr(item, "module", None) for item in items]
    bounds = [0] + [k for k in range(1, len(items)) if modules[k] is not modules[k - 1]] + [len(items)]
    cuts = sorted({min(bounds, key=lambda b, k=k: abs(b - k * len(items) / parts)) for k in range(1, parts)})
    edges = [0, *cuts, len(items)]
    return [items[a:b] for a, b in zip(edges, edges[1:], strict=False) if a < b]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the exclusive tests in EXCLUSIVE_AT_ONCE runs, each at the start of one worker's share.

    Every worker orders alike, as xdist requires. A module stays in one run (the demo's two tests share one run
    of the demo). With another first split than worksteal's even one they still run correctly, only later.
    """
    if _machine_lock is None:
        return
    exclusive = [item for item in items if _is_exclusive(item)]
    if not exclusive:
        return
    ordinary = [item for item in items if not _is_exclusive(item)]
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    share = len(items) // max(1, workers)
    ordered: list[pytest.Item] = []
    for index, run in enumerate(_split_at_modules(exclusive, max(1, min(EXCLUSIVE_AT_ONCE, workers)))):
        fill = max(0, index * share - len(ordered))  # ordinary tests up to this worker's share
        ordered += ordinary[:fill] + run
        del ordinary[:fill]
    items[:] = ordered + ordinary


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    if _machine_lock is None:
        return (yield)
    _machine_lock.enter(_is_exclusive(item))
    try:
        return (yield)
    finally:
        _machine_lock.leave(next_is_exclusive=_is_exclusive(nextitem))
