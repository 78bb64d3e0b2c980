"""Fixtures for tests against real Redis topologies (TLS, ACL, Sentinel, Cluster, restarts).

Every server is started here by the tests themselves (tests/support/topologies.py),
on free loopback ports, and stopped when its scope ends.  Mark every test
``@pytest.mark.topology``; ``pytest -m topology`` runs them alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.topologies import ACLRedis, RedisClusterSet, SentinelSet, TLSRedis
from topology.helpers import MANIFEST


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[TLSRedis]:
    with TLSRedis() as server:
        yield server


@pytest.fixture(scope="module")
def acl_redis() -> Iterator[ACLRedis]:
    with ACLRedis() as server:
        yield server


@pytest.fixture(scope="module")
def sentinel_set() -> Iterator[SentinelSet]:
    with SentinelSet() as topology:
        yield topology


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisClusterSet]:
    with RedisClusterSet() as cluster:
        yield cluster


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    directory = tmp_path / "schedules"
    directory.mkdir()
    (directory / "team.yaml").write_text(MANIFEST)
    return directory
