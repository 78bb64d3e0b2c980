"""A redis-py client for ``redbeat_redis_url`` and ``redbeat_redis_options``; nothing else.

URL forms: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis-sentinel://``
(celery-redbeat's: hosts from the ``sentinels`` option), Celery's own
``sentinel://h1:26379;sentinel://h2:26379/0`` and ``redis+sentinel://``
spellings (celery-redbeat #199), and ``redis-cluster://`` (or the ``cluster``
option).  Clients always decode responses to str.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlparse

import redis
from redis.sentinel import MasterNotFoundError, Sentinel

logger = logging.getLogger("celery.beat")

#: Options redbeat consumes itself; never forwarded to redis-py.
REDBEAT_INTERNAL_OPTIONS = frozenset(
    {"retry_period", "cluster", "sentinels", "service_name", "master_name", "sentinel_kwargs", "startup_nodes"}
)
_SENTINEL_SCHEMES = ("redis-sentinel", "sentinel", "redis+sentinel", "rediss+sentinel", "sentinels")
_RETRYABLE = (redis.ConnectionError, redis.TimeoutError, MasterNotFoundError)


class RetryingConnection:
    """Proxy that retries a command on connection errors for up to ``retry_period`` seconds (-1: forever).

    celery-redbeat's ``retry_period`` option: beat rides out a Redis restart
    instead of crashing.  Back-off doubles from 0.5 s up to 30 s.
    """

    RETRY_MAX_WAIT = 30.0

    def __init__(self, retry_period: float, wrapped_connection: Any, *, sleep: Callable[[float], None] = time.sleep):
        self.retry_period = retry_period
        self.wrapped_connection = wrapped_connection
        self._sleep = sleep

    def __getattr__(self, item: str) -> Any:
        attribute = getattr(self.wrapped_connection, item)
        if not callable(attribute):
            return attribute

        def retrying(*args: Any, **kwargs: Any) -> Any:
            deadline = None if self.retry_period < 0 else time.monotonic() + self.retry_period
            wait = 0.5
            while True:
                try:
                    return attribute(*args, **kwargs)
                except _RETRYABLE as exc:
                    if deadline is not None and time.monotonic() + wait > deadline:
                        raise
                    logger.warning("redbeat: Redis unavailable (%s); retrying in %.1fs", exc, wait)
                    self._sleep(wait)
                    wait = min(wait * 2, self.RETRY_MAX_WAIT)

        return retrying


def _ssl_options(use_ssl: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    if isinstance(use_ssl, Mapping):
        options.update(use_ssl)
    return options


def _sentinel_hosts(url: str, options: Mapping[str, Any]) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """Sentinel addresses and connection kwargs from either URL style."""
    parts = [part for part in url.split(";") if part.strip()]
    scheme = urlparse(parts[0]).scheme
    extra: dict[str, Any] = {}
    if scheme == "redis-sentinel" and options.get("sentinels"):
        hosts = [(str(host), int(port)) for host, port in options["sentinels"]]
    else:
        hosts = []
        for part in parts:
            parsed = urlparse(part.strip())
            hosts.append((parsed.hostname or "localhost", parsed.port or 26379))
    first = urlparse(parts[0])
    if first.password:
        extra["password"] = unquote(first.password)
    if first.username:
        extra["username"] = unquote(first.username)
    path = first.path.strip("/")
    if path.isdigit():
        extra["db"] = int(path)
    if scheme in ("rediss+sentinel", "sentinels"):
        extra["ssl"] = True
    return hosts, extra


def build_client(url: str, options: Mapping[str, Any], *, forward_options: bool, use_ssl: Any = None) -> Any:
    """A redis-py client for ``url``.  ``forward_options``: pass non-internal options to redis-py."""
    options = dict(options)
    retry_period = options.get("retry_period")
    passthrough = {k: v for k, v in options.items() if k not in REDBEAT_INTERNAL_OPTIONS}
    forwarded = passthrough if forward_options else {}
    scheme = urlparse(url).scheme

    if options.get("cluster") or scheme == "redis-cluster":
        from redis.cluster import ClusterNode, RedisCluster

        kwargs = {"decode_responses": True, **passthrough}
        if scheme == "redis-cluster":
            parsed = urlparse(url)
            nodes = options.get("startup_nodes") or [{"host": parsed.hostname or "localhost", "port": parsed.port or 30001}]
            if parsed.password and "password" not in kwargs:
                kwargs["password"] = unquote(parsed.password)
            startup = [ClusterNode(str(node["host"]), int(node["port"])) for node in nodes]
            client: Any = RedisCluster(startup_nodes=startup, **kwargs)
        else:
            client = RedisCluster.from_url(url, **kwargs)
    elif scheme in _SENTINEL_SCHEMES:
        hosts, from_url = _sentinel_hosts(url, options)
        connection_kwargs: dict[str, Any] = {"decode_responses": True, **from_url}
        for key in ("password", "username", "db", "socket_timeout", "credential_provider"):
            if options.get(key) is not None:
                connection_kwargs[key] = options[key]
        if isinstance(use_ssl, Mapping):
            connection_kwargs["ssl"] = True
            connection_kwargs.update(use_ssl)
        sentinel = Sentinel(
            hosts,
            sentinel_kwargs=options.get("sentinel_kwargs"),
            **connection_kwargs,
        )
        service = options.get("service_name") or options.get("master_name") or "master"
        client = sentinel.master_for(service)
    else:
        kwargs = {"decode_responses": True, "health_check_interval": 30, **forwarded}
        if scheme == "rediss":
            kwargs = {**_ssl_options(use_ssl), **kwargs}
        client = redis.Redis.from_url(url, **kwargs)

    if retry_period is not None:
        return RetryingConnection(float(retry_period), client)
    return client


def unwrap(client: Any) -> Any:
    """The redis-py client behind a :class:`RetryingConnection`."""
    return getattr(client, "wrapped_connection", client)


def is_cluster(client: Any) -> bool:
    from redis.cluster import RedisCluster

    return isinstance(unwrap(client), RedisCluster)


def get_redis(app: Any = None) -> Any:
    """The app's redbeat client: ``app.redbeat_redis`` when set (tests inject fakeredis there), else built once."""
    from celery.app import app_or_default

    from .config import ensure_conf

    app = app_or_default(app)
    existing = getattr(app, "redbeat_redis", None)
    if existing is not None:
        return existing
    conf = ensure_conf(app)
    client = build_client(
        conf.redis_url,
        conf.redbeat_redis_options,
        forward_options=conf.redis_options_explicit,
        use_ssl=conf.redis_use_ssl,
    )
    app.redbeat_redis = client
    return client
