"""Start-up checks: refuse or warn when Redis may evict our keys.

redbeat keeps no TTL on its keys; under an ``allkeys-*`` maxmemory policy
Redis may evict schedules silently (celery-redbeat #291).
``redbeat_key_expiry_check``: ignore | warn | error (log, the default) | raise.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError, ResponseError

from .client import get_redis
from .config import ensure_conf

logger = logging.getLogger("celery.beat")


class RedBeatKeyExpiryError(RuntimeError):
    """Redis' eviction policy can drop redbeat's keys, and ``redbeat_key_expiry_check`` is ``raise``."""


def eviction_risk(client: Any) -> str | None:
    """A sentence describing the risk, or None when keys without TTL are safe (or it cannot be told)."""
    try:
        config = client.config_get("maxmemory*")
    except ResponseError as exc:
        # CONFIG is often disabled on managed Redis, or not granted to an ACL user: nothing to check then.
        logger.debug("redbeat: key expiry check skipped: CONFIG GET refused (%s)", exc)
        return None
    policy = str(config.get("maxmemory-policy", "noeviction"))
    maxmemory = int(config.get("maxmemory", 0) or 0)
    if policy.startswith("allkeys-"):
        limit = f"maxmemory {maxmemory} bytes" if maxmemory else "no maxmemory set yet"
        return (
            f"Redis maxmemory-policy is {policy!r} ({limit}): it may evict redbeat's schedule keys. "
            "Use 'noeviction' or a 'volatile-*' policy."
        )
    return None


def check_key_expiry(app: Any) -> None:
    mode = ensure_conf(app).key_expiry_check
    if mode == "ignore":
        return
    try:
        risk = eviction_risk(get_redis(app))
    except RedisError as exc:
        logger.debug("redbeat: key expiry check skipped: %s", exc)
        return
    if risk is None:
        return
    if mode == "raise":
        raise RedBeatKeyExpiryError(risk)
    (logger.warning if mode == "warn" else logger.error)("redbeat: %s", risk)
