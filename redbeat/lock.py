"""The beat leader lock: one string key, value = the holder's token, PX = the lease.

The token names the holder (``host:pid:random``) so operators can see who
leads with ``GET <prefix>:lock``.  Every script below compares the token
before it touches the key, so an instance whose lease expired can never
extend, release or write on behalf of the instance that took over.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

#: Take the lock, or keep it when this token already holds it.  Renewing in
#: the same step means a leader never loses its lease between check and set.
ACQUIRE_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

#: Extend *to* the full lease (not by it), only while the token holds the
#: lock: celery-redbeat's LUA_EXTEND_TO_SCRIPT contract.
EXTEND_TO_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

#: Delete only our own lock: a deposed leader never frees its successor's.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
"""


def holder_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class BeatLock:
    """Non-blocking leader lock; ``acquire`` and ``extend`` say whether this instance leads."""

    def __init__(self, client: Any, key: str, timeout: float, token: str | None = None) -> None:
        self.client = client
        self.name = key
        self.timeout = float(timeout)
        self.token = token or holder_token()
        self._acquire = client.register_script(ACQUIRE_SCRIPT)
        self._extend = client.register_script(EXTEND_TO_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)

    @property
    def lease_ms(self) -> int:
        return max(1, int(self.timeout * 1000))

    def acquire(self) -> bool:
        return bool(self._acquire(keys=[self.name], args=[self.token, self.lease_ms]))

    def extend(self, additional_time: float | None = None) -> bool:
        """Renew the lease to ``additional_time`` seconds (default: the full timeout); False if not ours."""
        lease = self.lease_ms if additional_time is None else max(1, int(float(additional_time) * 1000))
        return bool(self._extend(keys=[self.name], args=[self.token, lease]))

    def release(self) -> bool:
        return bool(self._release(keys=[self.name], args=[self.token]))

    def holder(self) -> str | None:
        value = self.client.get(self.name)
        return value if value is None or isinstance(value, str) else value.decode()

    def owned(self) -> bool:
        return self.holder() == self.token
