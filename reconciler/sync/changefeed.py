"""The change feed: what changes under the key prefix, told by Redis, so a quiet resync reads nothing.

Redis's server-assisted client-side caching in broadcast mode (``CLIENT
TRACKING ON BCAST PREFIX <prefix>``, Redis 6 and later) reports the name of
every key under the prefix that changes (a write, a delete, an expiry, an
eviction, by any client) as a message on ``__redis__:invalidate``.  A
:class:`TrackedFeed` is one RESP2 connection of its own that turned tracking
on, redirected to itself, and subscribed to the wake channel and to
``__redis__:invalidate``.  In RESP2 both arrive as plain pub/sub messages
whatever protocol the rest of the process speaks (in RESP3 redis-py would drop
invalidations unless a handler of its internals were set).  The connection is
redis-py's bare ``Connection``, which never reconnects behind the caller's
back: a reconnected connection would have neither tracking nor subscriptions.

Redis sends a turn's invalidations when the turn ends (``beforeSleep``), all
keys changed in that turn in one message, after any message published during
the turn.  So the first invalidation after a PUBLISH on the wake channel
covers the turn that PUBLISH was made in.

The promise, checked by :meth:`TrackedFeed.confirm`: while it answers True,
every key under the prefix that changed since the feed opened has been read
from the connection, except keys changed in the turn Redis answered the check
in, which arrive with the next poll.  The check is one round trip: a PING,
which Redis answers after everything it queued for the connection before.
An error, a timeout or FLUSHALL (which Redis 7.0 reports to a RESP2 client
in a form redis-py cannot parse) breaks the feed for good; the caller then
compares fingerprints, as without a feed, and opens a new one.

Where tracking is not available (Redis Cluster, where tracking is per node; an
ACL without ``client|id``, ``client|tracking``, ``ping`` or the
``__redis__:invalidate`` channel; Redis before 6), :func:`open_feed` returns a
:class:`WakeFeed`, which carries the wake channel only and never confirms.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError

from reconciler.core.errors import FeedBroken
from reconciler.core.logs import log
from redbeat.client import build_client, is_cluster, unwrap
from redbeat.keys import KeySpace

logger = logging.getLogger("reconciler.sync.changefeed")

#: The channel Redis sends a redirected client's invalidations on (RESP2).
INVALIDATE_CHANNEL = "__redis__:invalidate"
#: How long :meth:`TrackedFeed.confirm` waits for its PING to come back.
CONFIRM_TIMEOUT = 2.0
_BARRIER = b"redbeat-change-feed"
#: The subscriber's client options: RESP2, bytes (a key need not be UTF-8), no health-check PING of redis-py's
#: own (it cannot read a PING's reply in subscribed mode).
_SUBSCRIBER_OPTIONS: Mapping[str, Any] = {"protocol": 2, "decode_responses": False, "health_check_interval": 0}


@dataclass(frozen=True, slots=True)
class Wake:
    """A message on the wake channel."""

    text: str


@dataclass(frozen=True, slots=True)
class Changed:
    """Keys under the prefix that another client changed."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Flushed:
    """Redis dropped every key it tracked (FLUSHALL, FLUSHDB): anything may have changed."""


Notice = Wake | Changed | Flushed


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _notice(message: Any, wake_channel: str) -> Notice | None:
    """What one RESP2 pub/sub message says; None for replies that say nothing (subscribe confirmations)."""
    if not isinstance(message, list) or len(message) < 3 or _text(message[0]) != "message":
        return None
    channel, data = _text(message[1]), message[2]
    if channel == INVALIDATE_CHANNEL:
        return Flushed() if data is None else Changed(tuple(_text(key) for key in data))
    return Wake(_text(data)) if channel == wake_channel else None


class TrackedFeed:
    """The wake channel and Redis's reports of changed keys, on a connection of its own; see the module."""

    tracking = True

    def __init__(self, connection: Any, keys: KeySpace) -> None:
        self._connection = connection
        self._keys = keys
        self._queued: collections.deque[Notice] = collections.deque()
        self._broken: str | None = None

    def poll(self, timeout: float) -> Notice | None:
        """The next notice, waiting up to ``timeout`` seconds; None when there is none yet."""
        if self._queued:
            return self._queued.popleft()
        if self._broken is not None:
            raise FeedBroken(self._broken)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(max(0.0, deadline - time.monotonic()))
            if message is None:
                return None
            notice = _notice(message, self._keys.wake_channel)
            if notice is not None:
                return notice

    def confirm(self, timeout: float = CONFIRM_TIMEOUT) -> bool:
        """Whether every change so far is read (queued for :meth:`poll`); False breaks the feed."""
        if self._broken is not None:
            return False
        try:
            self._barrier(timeout)
        except FeedBroken:
            return False
        return True

    def close(self) -> None:
        self._broken = self._broken or "closed"
        with contextlib.suppress(Exception):  # closing a broken connection may fail too
            self._connection.disconnect()

    def _fail(self, why: str) -> FeedBroken:
        self._broken = why
        log(logger, "change feed lost; the next resync compares fingerprints", logging.WARNING, reason=why)
        self.close()
        return FeedBroken(why)

    def _read(self, timeout: float) -> Any:
        """One reply within ``timeout`` seconds, or None."""
        try:
            if not self._connection.can_read(timeout=timeout):
                return None
            return self._connection.read_response()
        except (RedisError, OSError, ValueError) as exc:  # a protocol error too (FLUSHALL on Redis 7.0)
            raise self._fail(f"the connection failed: {exc}") from None

    def _barrier(self, timeout: float) -> None:
        """PING and queue every notice that arrives before the reply."""
        try:
            self._connection.send_command("PING", _BARRIER)
        except (RedisError, OSError) as exc:
            raise self._fail(f"the connection failed: {exc}") from None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            message = self._read(left) if left > 0 else None
            if message is None:
                raise self._fail(f"no reply to PING within {timeout:g} s")
            if isinstance(message, list) and message and _text(message[0]) == "pong":
                return
            notice = _notice(message, self._keys.wake_channel)
            if notice is not None:
                self._queued.append(notice)


class WakeFeed:
    """The wake channel alone (redis-py's pub/sub), where Redis cannot report changed keys: never confirms."""

    tracking = False

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    def poll(self, timeout: float) -> Notice | None:
        try:
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        except (RedisError, OSError, ValueError) as exc:
            raise FeedBroken(str(exc)) from None
        data = message.get("data") if isinstance(message, dict) else None
        return Wake(_text(data)) if isinstance(data, bytes | str) else None

    def confirm(self, timeout: float = CONFIRM_TIMEOUT) -> bool:
        return False

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection may fail too
            self._pubsub.close()


ChangeFeed = TrackedFeed | WakeFeed


def _wake_feed(client: Any, keys: KeySpace) -> WakeFeed:
    pubsub = client.pubsub()
    pubsub.subscribe(keys.wake_channel)
    pubsub.get_message(timeout=1.0)  # the subscribe confirmation: from now on nothing is missed
    return WakeFeed(pubsub)


def _subscribe(connection: Any, channels: Sequence[str]) -> None:
    connection.send_command("SUBSCRIBE", *channels)
    for _ in channels:
        reply = connection.read_response()
        if not (isinstance(reply, list) and _text(reply[0]) == "subscribe"):
            raise redis.ResponseError(f"unexpected reply to SUBSCRIBE: {reply!r}")


def _tracked_feed(url: str, keys: KeySpace) -> TrackedFeed:
    """The connection, tracking on; raises RedisError (or OSError) where Redis or the ACL refuses a step."""
    connection = build_client(url, _SUBSCRIBER_OPTIONS, forward_options=True).connection_pool.make_connection()
    try:
        connection.connect()
        if str(getattr(connection, "protocol", 2)) != "2":
            raise redis.ResponseError("the connection does not speak RESP2")
        connection.send_command("CLIENT", "ID")
        own_id = int(connection.read_response())
        connection.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", "PREFIX", keys.prefix)
        connection.read_response()
        _subscribe(connection, [keys.wake_channel])
        _subscribe(connection, [INVALIDATE_CHANNEL])  # apart: an ACL may allow the wake channel only
        feed = TrackedFeed(connection, keys)
        if not feed.confirm():
            raise redis.ResponseError("no reply to PING on the new change feed")
        return feed
    except BaseException:
        with contextlib.suppress(Exception):
            connection.disconnect()
        raise


def open_feed(client: Any, url: str, keys: KeySpace) -> ChangeFeed:
    """A tracked feed where Redis can report changed keys, else the wake channel alone (logged once, why).

    Raises RedisError or OSError when not even the wake channel can be subscribed to.
    """
    if not is_cluster(unwrap(client)):
        try:
            return _tracked_feed(url, keys)
        except (RedisError, OSError) as exc:
            log(logger, "Redis cannot report changed keys; resyncs compare fingerprints", logging.INFO,
                reason=str(exc))
    return _wake_feed(client, keys)
