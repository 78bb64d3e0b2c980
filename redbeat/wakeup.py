"""Waiting for change notifications: writers PUBLISH on ``<prefix>:wake``, a sleeping beat wakes at once."""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

logger = logging.getLogger("celery.beat")


class ChangeListener:
    """A lazily opened subscription; :meth:`wait` returns early when a change is published."""

    def __init__(self, client: Callable[[], Any], channel: str) -> None:
        self._client = client
        self.channel = channel
        self._pubsub: Any = None

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds``; True when woken by a change.

        The wait is a ``select`` on the subscription's socket, outside
        redis-py, so the SystemExit that beat's SIGTERM handler raises
        interrupts it cleanly instead of surfacing from inside a socket read.
        When notifications are unavailable this just sleeps.
        """
        deadline = time.monotonic() + seconds
        for attempt in (1, 2):
            try:
                return self._wait_until(deadline)
            except (RedisError, OSError, ValueError) as exc:
                # A dropped subscription (idle timeout, failover) is opened again once at once.
                self.close()
                if attempt == 2:
                    logger.debug("beat: change notifications unavailable (%s); sleeping instead", exc)
        time.sleep(max(0.0, deadline - time.monotonic()))
        return False

    def _wait_until(self, deadline: float) -> bool:
        pubsub = self._subscription()
        while True:
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.0)
            if message is not None and message.get("type") == "message":
                logger.debug("beat: Woken by a change to %s", message.get("data"))
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if message is None:
                _wait_readable(pubsub, remaining)

    def _subscription(self) -> Any:
        if self._pubsub is None:
            from .client import unwrap

            pubsub = unwrap(self._client()).pubsub()
            pubsub.subscribe(self.channel)
            self._pubsub = pubsub
        return self._pubsub

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:  # closing a broken connection may itself fail
                logger.debug("beat: closing the change subscription failed", exc_info=True)
            self._pubsub = None


def _wait_readable(pubsub: Any, timeout: float) -> None:
    """Block until the subscription's socket has data or ``timeout`` passes."""
    connection = getattr(pubsub, "connection", None)
    sock = getattr(connection, "_sock", None)
    if sock is None:
        time.sleep(min(timeout, 0.05))
        return
    if getattr(sock, "pending", None) and sock.pending():
        return  # TLS already holds decrypted bytes
    select.select([sock], [], [], timeout)
