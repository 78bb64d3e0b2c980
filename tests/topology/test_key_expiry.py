"""redbeat_key_expiry_check at beat start-up against a real server's maxmemory-policy (celery-redbeat #291)."""

from __future__ import annotations

import logging

import pytest
from support.topologies import ACLRedis
from topology.helpers import beat_app, pinned_now

from redbeat import RedBeatKeyExpiryError, RedBeatScheduler

pytestmark = pytest.mark.topology

BEAT_PASSWORD = "b3at-pw"


@pytest.fixture(autouse=True)
def policy(acl_redis: ACLRedis):
    admin = acl_redis.admin()
    admin.flushall()
    acl_redis.add_user("beat", BEAT_PASSWORD, "~redbeat:*", "&redbeat::wake", "+@all")  # the docs/topologies.md line
    acl_redis.add_user("no-config", BEAT_PASSWORD, "~redbeat:*", "&*", "+@all", "-config")
    yield admin.config_set
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 0)


def start_beat(acl_redis: ACLRedis, check: str | None, user: str = "beat") -> None:
    conf = {} if check is None else {"redbeat_key_expiry_check": check}
    with beat_app(acl_redis.url(user, BEAT_PASSWORD), now=pinned_now(), **conf) as app:
        RedBeatScheduler(app=app).close()


def beat_records(caplog) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records
            if r.name == "celery.beat" and "maxmemory-policy" in r.getMessage()]


@pytest.mark.parametrize("check, level", [(None, logging.ERROR), ("error", logging.ERROR),
                                          ("warn", logging.WARNING), ("ignore", None)])
def test_an_allkeys_policy_is_reported_as_configured(acl_redis, policy, caplog, check, level):
    policy("maxmemory-policy", "allkeys-lru")
    policy("maxmemory", 100 * 1024 * 1024)
    with caplog.at_level(logging.DEBUG):
        start_beat(acl_redis, check)
    records = beat_records(caplog)
    if level is None:
        assert records == []
    else:
        assert len(records) == 1
        assert records[0][0] == level
        assert "'allkeys-lru' (maxmemory 104857600 bytes)" in records[0][1]


def test_raise_refuses_to_start(acl_redis, policy):
    policy("maxmemory-policy", "allkeys-random")
    with pytest.raises(RedBeatKeyExpiryError, match="'allkeys-random'.*Use 'noeviction' or a 'volatile-\\*' policy"):
        start_beat(acl_redis, "raise")
    assert acl_redis.admin().dbsize() == 0  # refused before writing anything


@pytest.mark.parametrize("setting", ["noeviction", "volatile-lru"])
def test_policies_that_keep_keys_without_ttl_are_silent(acl_redis, policy, caplog, setting):
    policy("maxmemory-policy", setting)
    with caplog.at_level(logging.DEBUG):
        start_beat(acl_redis, "raise")
    assert beat_records(caplog) == []


def test_without_config_rights_the_check_is_skipped_quietly(acl_redis, policy, caplog):
    policy("maxmemory-policy", "allkeys-lru")
    with caplog.at_level(logging.INFO, logger="celery.beat"):
        start_beat(acl_redis, "raise", user="no-config")  # managed Redis often forbids CONFIG
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
