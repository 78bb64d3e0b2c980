"""RedBeatConfig: every redbeat setting, read from ``app.conf`` in this one place.

Settings are Celery's lower-case names; the Celery 3 upper-case ``REDBEAT_*``
spellings are read too, with a UserWarning.  ``redbeat_redis_url`` falls
back to ``broker_url`` and ``redbeat_redis_options`` to
``broker_transport_options``, each with a logged warning and a
DeprecationWarning, as celery-redbeat 2.4.2 does.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from celery.app import app_or_default

from .keys import DEFAULT_PREFIX, KeySpace

logger = logging.getLogger("celery.beat")

#: Lease of the beat lock when neither ``redbeat_lock_timeout`` nor the
#: scheduler's ``lock_timeout=`` says otherwise.  The leader renews it every
#: third of it, so a standby takes over within seconds of the leader's death
#: (celery-redbeat's default, 5 x beat_max_loop_interval, is 25 minutes).
DEFAULT_LOCK_TIMEOUT = 10.0

KEY_EXPIRY_CHECKS = ("ignore", "warn", "error", "raise")
_UNSET = object()


class RedBeatConfig:
    """celery-redbeat's ``RedBeatConfig``: same attribute names, plus ``keys`` (a :class:`KeySpace`)."""

    def __init__(self, app: Any = None) -> None:
        self.app = app_or_default(app)
        self.key_prefix: str = self.either_or("redbeat_key_prefix", DEFAULT_PREFIX)
        self.keys = KeySpace(self.key_prefix)
        self.schedule_key = self.keys.schedule
        self.statics_key = self.keys.statics

        redis_url = self.either_or("redbeat_redis_url", None)
        if not redis_url:
            redis_url = _broker_setting(self.app.conf, "broker_url")
            logger.warning(
                "redbeat: redbeat_redis_url is not set, using broker_url (%s); "
                "set redbeat_redis_url explicitly",
                _sanitize(redis_url),
            )
            _warn_inherited("redbeat_redis_url", "broker_url")
        self.redis_url: str = redis_url or "redis://localhost:6379/0"
        self.redis_use_ssl = self.either_or("redbeat_redis_use_ssl", _broker_setting(self.app.conf, "broker_use_ssl"))
        self.redis_options_explicit = self.is_key_in_conf("redbeat_redis_options")
        options = self.either_or("redbeat_redis_options", None)
        if options is None:
            # Inherited options belong to the broker: only redbeat's own keys
            # (sentinels, service_name ...) are read from them (celery-redbeat #319).
            options = _broker_setting(self.app.conf, "broker_transport_options") or {}
            if options:
                logger.warning(
                    "redbeat: redbeat_redis_options is not set, reading broker_transport_options (%s); "
                    "set redbeat_redis_options explicitly",
                    ", ".join(sorted(map(str, options))),
                )
                _warn_inherited("redbeat_redis_options", "broker_transport_options")
        self.redbeat_redis_options: dict[str, Any] = dict(options)

        lock_key = self.either_or("redbeat_lock_key", _UNSET)
        if lock_key is _UNSET:
            lock_key = self.keys.lock
        elif lock_key and not lock_key.startswith(self.key_prefix):
            lock_key = self.key_prefix + lock_key
        self.lock_key: str | None = lock_key or None
        self.lock_timeout = self.either_or("redbeat_lock_timeout", None)
        from .metrics import parse_entry_limit, parse_listen

        self.metrics_listen: str | None = parse_listen(self.either_or("redbeat_metrics_listen", None))
        self.metrics_entries: int = parse_entry_limit(self.either_or("redbeat_metrics_entries", 0))
        from .history import DEFAULT_HISTORY_SIZE, history_maxlen

        self.history_size: int = _history_size(self.either_or("redbeat_history_size", DEFAULT_HISTORY_SIZE))
        self.history_maxlen: int = history_maxlen(self.history_size)
        check = self.either_or("redbeat_key_expiry_check", "error")
        if check not in KEY_EXPIRY_CHECKS:
            logger.warning(
                "redbeat: redbeat_key_expiry_check=%r is not one of %s; using 'error'",
                check, ", ".join(KEY_EXPIRY_CHECKS),
            )
            check = "error"
        self.key_expiry_check: str = check

    @property
    def schedule(self) -> dict[str, Any]:
        schedule: dict[str, Any] = self.app.conf.beat_schedule  # celery is untyped
        return schedule

    @schedule.setter
    def schedule(self, value: dict[str, Any]) -> None:
        self.app.conf.beat_schedule = value

    def either_or(self, name: str, default: Any = None) -> Any:
        """The setting ``name`` (lower case) or its Celery 3 upper-case spelling, else ``default``.

        A UserWarning names the Celery 3 spelling when one is used: read from the
        configuration, or asked for by the caller (``either_or("BROKER_URL")``), as
        celery-redbeat warns for either.
        """
        conf = self.app.conf
        lower, upper = name.lower(), name.upper()
        found_lower = _has(conf, lower)
        if name.isupper() or (not found_lower and _has(conf, upper)):
            warnings.warn(
                f"Celery v4 installed, but detected Celery v3 configuration {upper} (use {lower} instead).",
                UserWarning,
                stacklevel=2,
            )
        if found_lower:
            return conf.get(lower)
        if _has(conf, upper):
            return conf.get(upper)
        return default

    def is_key_in_conf(self, name: str) -> bool:
        return _has(self.app.conf, name.lower()) or _has(self.app.conf, name.upper())


def _has(conf: Any, key: str) -> bool:
    """True when the user set ``key`` (None included: ``redbeat_lock_key=None`` disables locking).

    ``conf.keys()``, not ``in conf``: on Celery's settings ``'BROKER_URL' in conf`` is also true when only
    ``broker_url`` is set, which would hide which spelling the user wrote.
    """
    return key in conf.keys()  # noqa: SIM118 - see the docstring


def _broker_setting(conf: Any, name: str) -> Any:
    """Celery's broker setting ``name`` read as celery-redbeat reads it: by its Celery 3 spelling.

    Celery resolves ``BROKER_URL`` to ``broker_url`` when only that is set, so
    this differs from ``conf.get(name)`` only when one configuration layer (a
    config module or dict) sets both spellings: then the Celery 3 value wins,
    as in celery-redbeat's ``app.conf["BROKER_URL"]``.
    """
    return conf.get(name.upper())


def _warn_inherited(setting: str, broker_setting: str) -> None:
    """The DeprecationWarning celery-redbeat 2.4.2 gives when ``setting`` falls back to a broker one.

    Python hides DeprecationWarnings outside ``__main__``, so the caller also logs
    a warning, which a daemonised beat does show.
    """
    warnings.warn(
        f"redbeat: {setting} is not set, so {broker_setting} is used; this fallback is deprecated "
        f"(celery-redbeat 2.4.2 announces its end in 2.5.0): set {setting} explicitly",
        DeprecationWarning,
        stacklevel=3,  # _warn_inherited <- RedBeatConfig.__init__ <- whoever built the config
    )


def _history_size(value: Any) -> int:
    """``redbeat_history_size``: runs kept in the run history; 0 turns it off; a bad value keeps the default."""
    from .history import DEFAULT_HISTORY_SIZE

    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    logger.warning("redbeat: redbeat_history_size=%r is not a whole number >= 0; using %d",
                   value, DEFAULT_HISTORY_SIZE)
    return DEFAULT_HISTORY_SIZE


def _sanitize(url: str | None) -> str:
    from .redaction import redact_url

    return redact_url(url) if url else "<unset>"


def ensure_conf(app: Any) -> RedBeatConfig:
    """``app.redbeat_conf``, built once per app (as celery-redbeat's ``ensure_conf``)."""
    app = app_or_default(app)
    try:
        return app.redbeat_conf  # type: ignore[no-any-return]
    except AttributeError:
        config = RedBeatConfig(app)
        app.redbeat_conf = config
        return config
