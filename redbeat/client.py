"""A redis-py client for ``redbeat_redis_url`` and ``redbeat_redis_options``; nothing else.

URL forms: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis-sentinel://``
(celery-redbeat's: hosts from the ``sentinels`` option), Celery's own
``sentinel://h1:26379;sentinel://h2:26379/0`` and ``redis+sentinel://``
spellings (celery-redbeat #199), and ``redis-cluster://`` (or the ``cluster``
option).  Clients always decode responses to str.

Options that a URL alone must be able to carry (``redbeat-apply --redis-url``
has no options dict): ``?ssl_ca_certs=/ca.pem`` (and redis-py's other ``ssl_*``
query arguments) on ``rediss://``; ``?service_name=`` (or ``master_name=``)
on every Sentinel form.  Explicit options win over the URL.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlparse, urlunparse

import redis
from celery.exceptions import ImproperlyConfigured
from redis.cluster import RedisCluster
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelManagedConnection, SentinelManagedSSLConnection

logger = logging.getLogger("celery.beat")

#: Options redbeat consumes itself; never forwarded to redis-py.
REDBEAT_INTERNAL_OPTIONS = frozenset(
    {"retry_period", "cluster", "sentinels", "service_name", "master_name", "sentinel_kwargs", "startup_nodes"}
)
_SENTINEL_SCHEMES = ("redis-sentinel", "sentinel", "redis+sentinel", "rediss+sentinel", "sentinels")
_RETRYABLE = (redis.ConnectionError, redis.TimeoutError, MasterNotFoundError)


class ClusterKeyPrefixError(ImproperlyConfigured):  # type: ignore[misc]  # celery is untyped (the base is Any)
    """On Redis Cluster the key prefix has no hash tag, so redbeat's keys would live in different slots."""


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
            return self._call(attribute, *args, **kwargs)

        return retrying

    def register_script(self, script: str) -> _RetryingScript:
        """A script whose calls retry too: the tick and the lock are scripts, so this is what keeps beat up."""
        return _RetryingScript(self, self.wrapped_connection.register_script(script))

    def _call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        deadline = None if self.retry_period < 0 else time.monotonic() + self.retry_period
        wait = 0.5
        while True:
            try:
                return function(*args, **kwargs)
            except _RETRYABLE as exc:
                if deadline is not None and time.monotonic() + wait > deadline:
                    logger.error("redbeat: Redis still unavailable after retry_period=%ss: %s", self.retry_period, exc)
                    raise
                logger.warning("redbeat: Redis unavailable (%s); retrying in %.1fs", exc, wait)
                self._sleep(wait)
                wait = min(wait * 2, self.RETRY_MAX_WAIT)


class _RetryingScript:
    """A redis-py ``Script`` whose calls go through :meth:`RetryingConnection._call`.

    Retrying a tick script after a lost reply is safe: every write in them is
    fenced (lock token, expected score), so a repeat changes nothing.
    """

    def __init__(self, retrying: RetryingConnection, script: Any) -> None:
        self._retrying = retrying
        self._script = script

    def __getattr__(self, item: str) -> Any:
        return getattr(self._script, item)

    def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        return self._retrying._call(self._script, keys=keys, args=args, client=client)


#: ``ssl_cert_reqs`` in a URL: Celery's spelling (``CERT_REQUIRED``) and redis-py's (``required``).
_CERT_REQS = {
    "cert_required": "required", "required": "required",
    "cert_optional": "optional", "optional": "optional",
    "cert_none": "none", "none": "none",
}


def _ssl_options(use_ssl: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    if isinstance(use_ssl, Mapping):
        options.update(use_ssl)
    return options


def _normalise_query(url: str) -> str:
    """``url`` with ``ssl_cert_reqs=CERT_REQUIRED`` (as Celery's docs write it) in redis-py's spelling.

    redis-py reads ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
    ``ssl_cert_reqs`` ... from the query itself; an unknown ``ssl_cert_reqs``
    is refused here rather than guessed.
    """
    parsed = urlparse(url)
    if "ssl_cert_reqs" not in parsed.query:
        return url
    query = []
    for name, value in parse_qsl(parsed.query, keep_blank_values=True):
        if name == "ssl_cert_reqs":
            normal = _CERT_REQS.get(value.lower())
            if normal is None:
                raise ValueError(f"ssl_cert_reqs={value!r} in the Redis URL: use required, optional or none")
            value = normal
        query.append((name, value))
    return urlunparse(parsed._replace(query=urlencode(query)))


def _sentinel_hosts(
    url: str, options: Mapping[str, Any]
) -> tuple[list[tuple[str, int]], dict[str, Any], dict[str, str]]:
    """Sentinel addresses, connection kwargs and query arguments from either URL style.

    ``redis-sentinel://`` with the ``sentinels`` option is celery-redbeat's
    form (the URL's host is ignored); otherwise every ``;``-separated part
    names one Sentinel (Celery's ``sentinel://h1:26379;sentinel://h2:26379``).
    Credentials and the db number come from the first part, as kombu reads them.
    """
    parts = [part.strip() for part in url.split(";") if part.strip()]
    scheme = urlparse(parts[0]).scheme
    extra: dict[str, Any] = {}
    query: dict[str, str] = {}
    for part in parts:
        query.update(parse_qsl(urlparse(part).query))
    if scheme == "redis-sentinel" and options.get("sentinels"):
        hosts = [(str(host), int(port)) for host, port in options["sentinels"]]
    else:
        hosts = []
        for part in parts:
            parsed = urlparse(part)
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
    for name, value in query.items():
        if name.startswith("ssl_"):
            extra[name] = _CERT_REQS.get(value.lower(), value) if name == "ssl_cert_reqs" else value
        elif name in ("socket_timeout", "socket_connect_timeout"):
            extra[name] = float(value)
        elif name == "db":
            extra["db"] = int(value)
    return hosts, extra, query


class _RefusedWritesMixin:
    """A master that answers ``NOREPLICAS`` is treated like a demoted one: reconnect via Sentinel.

    redis-py already drops a connection whose master turned read-only.  With
    ``min-replicas-to-write`` (what we recommend), a master that Sentinel has
    replaced answers ``NOREPLICAS`` instead, for as long as it takes Sentinel
    to demote it (~10 s); without this, beat would keep failing against it
    instead of asking Sentinel where the new master is.
    """

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)  # type: ignore[misc]
        except redis.ResponseError as exc:
            if self.connection_pool.is_master and str(exc).startswith("NOREPLICAS"):  # type: ignore[attr-defined]
                address = f"{self.host}:{self.port}"  # type: ignore[attr-defined]
                self.disconnect()  # type: ignore[attr-defined]
                raise redis.ConnectionError(
                    f"master {address} refuses writes ({exc}); asking Sentinel for the current master"
                ) from None
            raise


class _MasterConnection(_RefusedWritesMixin, SentinelManagedConnection):
    pass


class _MasterSSLConnection(_RefusedWritesMixin, SentinelManagedSSLConnection):
    pass


def _sentinel_client(url: str, options: Mapping[str, Any], use_ssl: Any) -> Any:
    hosts, from_url, query = _sentinel_hosts(url, options)
    connection_kwargs: dict[str, Any] = {"decode_responses": True, "health_check_interval": 30, **from_url}
    for key in ("password", "username", "db", "socket_timeout", "credential_provider", "protocol", "decode_responses",
                "health_check_interval"):
        if options.get(key) is not None:
            connection_kwargs[key] = options[key]
    if isinstance(use_ssl, Mapping):
        connection_kwargs["ssl"] = True
        connection_kwargs.update(use_ssl)
    tls = bool(connection_kwargs.pop("ssl", False))
    if tls:
        connection_kwargs.setdefault("ssl_cert_reqs", ssl.CERT_REQUIRED)
    # redis-py leaves Sentinel, master_for and ClusterNode unannotated
    sentinel = Sentinel(hosts, sentinel_kwargs=options.get("sentinel_kwargs"), **connection_kwargs)  # type: ignore[no-untyped-call]
    service = (
        options.get("service_name")
        or options.get("master_name")
        or query.get("service_name")
        or query.get("master_name")
        or "master"
    )
    connection_class = _MasterSSLConnection if tls else _MasterConnection
    return sentinel.master_for(service, connection_class=connection_class)  # type: ignore[no-untyped-call]


def _cluster_client(url: str, options: Mapping[str, Any], passthrough: Mapping[str, Any]) -> Any:
    # Looked up per call, not bound at import as is_cluster's class: a test that mocks
    # redis.cluster.RedisCluster sees this call.
    from redis.cluster import ClusterNode, RedisCluster

    kwargs = {"decode_responses": True, **passthrough}
    parsed = urlparse(url)
    if parsed.scheme != "redis-cluster":
        return RedisCluster.from_url(url, **kwargs)
    if parsed.password and "password" not in kwargs:
        kwargs["password"] = unquote(parsed.password)
    if parsed.username and "username" not in kwargs:
        kwargs["username"] = unquote(parsed.username)
    nodes = options.get("startup_nodes") or [{"host": parsed.hostname or "localhost", "port": parsed.port or 30001}]
    startup = [ClusterNode(str(node["host"]), int(node["port"])) for node in nodes]  # type: ignore[no-untyped-call]
    return RedisCluster(startup_nodes=startup, **kwargs)


def build_client(url: str, options: Mapping[str, Any], *, forward_options: bool, use_ssl: Any = None) -> Any:
    """A redis-py client for ``url``.  ``forward_options``: pass non-internal options to redis-py."""
    options = dict(options)
    retry_period = options.get("retry_period")
    passthrough = {k: v for k, v in options.items() if k not in REDBEAT_INTERNAL_OPTIONS}
    forwarded = passthrough if forward_options else {}
    scheme = urlparse(url).scheme

    if options.get("cluster") or scheme == "redis-cluster":
        client: Any = _cluster_client(url, options, passthrough)
    elif scheme in _SENTINEL_SCHEMES:
        client = _sentinel_client(url, options, use_ssl)
    else:
        if not forward_options:
            _log_unforwarded(passthrough)
        kwargs = {"decode_responses": True, "health_check_interval": 30, **forwarded}
        if scheme == "rediss":
            kwargs = {**_ssl_options(use_ssl), **kwargs}
        client = redis.Redis.from_url(_normalise_query(url), **kwargs)

    if retry_period is not None:
        return RetryingConnection(float(retry_period), client)
    return client


def _log_unforwarded(options: Mapping[str, Any]) -> None:
    """Say which inherited broker options a plain Redis client leaves out (names only: values may be secrets)."""
    if options:
        logger.debug(
            "redbeat: not forwarding broker_transport_options to Redis: %s; "
            "set redbeat_redis_options to pass options to the redis client",
            ", ".join(sorted(map(str, options))),
        )


def unwrap(client: Any) -> Any:
    """The redis-py client behind a :class:`RetryingConnection`."""
    return getattr(client, "wrapped_connection", client)


def is_cluster(client: Any) -> bool:
    """True for a redis-py cluster client.

    Checked against the class imported with this module, not looked up at call
    time: a test that patches ``redis.cluster.RedisCluster`` with a mock (as
    celery-redbeat's suite and its users' suites do) gets a mock client, which is
    no cluster, instead of a TypeError from ``isinstance``.
    """
    return isinstance(unwrap(client), RedisCluster)


def cluster_hash_tag(prefix: str) -> str | None:
    """The hash tag that every key under ``prefix`` shares, or None when the prefix alone fixes none.

    Redis Cluster hashes only what is between the first ``{`` and the next
    ``}`` when that is not empty.  ``{redbeat}:`` -> ``redbeat``;
    ``redbeat:`` -> None; ``{redbeat:`` -> None (each name would close the
    tag differently); ``{}redbeat:`` -> None (an empty tag hashes the whole key).
    """
    start = prefix.find("{")
    if start < 0:
        return None
    end = prefix.find("}", start + 1)
    if end <= start + 1:
        return None
    return prefix[start + 1 : end]


def check_cluster_prefix(client: Any, prefix: str) -> None:
    """Refuse a Redis Cluster client when ``prefix`` has no hash tag (celery-redbeat #296).

    The tick's scripts touch the schedule, the lock and the entries in one
    call, and ``save()`` writes an entry and the schedule in one MULTI; Redis
    Cluster runs either only when every key hashes to one slot, which a hash
    tag in the prefix guarantees.  Raises :class:`ClusterKeyPrefixError`.
    """
    if not is_cluster(client) or cluster_hash_tag(prefix) is not None:
        return
    suggestion = "{" + (prefix.rstrip(":") or "redbeat") + "}:"
    raise ClusterKeyPrefixError(
        f"Redis Cluster: redbeat_key_prefix {prefix!r} has no hash tag, so the schedule, the lock and the "
        f"entries hash to different slots and redbeat's scripts and transactions cannot run there "
        f"(celery-redbeat #296). Set redbeat_key_prefix = {suggestion!r} (and redbeat-apply "
        f"--key-prefix {suggestion!r}); entries stored under the old prefix are not moved."
    )


def get_redis(app: Any = None) -> Any:
    """The app's redbeat client: ``app.redbeat_redis`` when set (tests inject fakeredis there), else built once.

    A Redis Cluster client is refused here (:func:`check_cluster_prefix`)
    when the key prefix has no hash tag, so beat stops at start-up with
    that message instead of failing every tick.
    """
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
    check_cluster_prefix(client, conf.key_prefix)
    app.redbeat_redis = client
    return client
