"""Secret masking: whole words of keys, at any depth, in every plan format; every credential form in URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.core.errors import Location
from reconciler.core.model import DesiredEntry
from reconciler.schedules.convert import manifest_to_entry
from reconciler.sync.plan import Plan, plan
from reconciler.sync.plan_report import render
from reconciler.sync.state import ActualState
from redbeat.redaction import MASK, is_secret_key, redact, redact_text, redact_url

SECRET_KEYS = [
    "password",
    "db_password",
    "DB_PASSWORD",
    "passwd",
    "passphrase",
    "db_pass",
    "secret",
    "client_secret",
    "token",
    "api_token",
    "apiToken",
    "X-Auth-Token",
    "Authorization",
    "auth",
    "api_key",
    "apiKey",
    "X-Api-Key",
    "APIKey",
    "access_key",
    "aws_secret_access_key",
    "private_key",
    "signing-key",
    "secret_key",
    "credentials",
    "cookie",
    "session_id",
    "sessionId",
    "dsn",
    "key",
    "sentinel_password",
]
ORDINARY_KEYS = [
    "author",
    "token_count",
    "tokenizer",
    "max_tokens",
    "compass",
    "bypass_cache",
    "passenger_id",
    "oauth_scope",
    "secretary",
    "routing_key",
    "key_prefix",
    "cache_key",
    "keyboard",
    "passage",
    "authority",
    "author_email",
    "monkey",
    "tokens",
    "password_policy_url",
    "",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys_are_masked(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ORDINARY_KEYS)
def test_ordinary_keys_are_shown(key: str) -> None:
    assert not is_secret_key(key)


def test_masking_keeps_going_at_any_depth() -> None:
    value = {"author": "ann", "nested": [{"db": {"password": "p", "max_tokens": 5}}], "apiKey": {"deep": 1}}
    assert redact(value) == {"author": "ann", "nested": [{"db": {"password": MASK, "max_tokens": 5}}], "apiKey": MASK}


def _plan_with(kwargs: dict[str, object]) -> Plan:
    definition, ext = manifest_to_entry({"name": "job", "task": "app.t", "every": 60, "kwargs": kwargs})
    entry = DesiredEntry("job", definition, ext, False, Location(Path("x.yaml"), 1, 1, ""))
    return plan({"job": entry}, ActualState("default", {}, frozenset()))


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_plans_show_ordinary_fields_and_mask_secrets(fmt: str) -> None:
    kwargs: dict[str, object] = {key: f"visible-{i}" for i, key in enumerate(ORDINARY_KEYS) if key}
    kwargs.update({key: f"hidden-{i}" for i, key in enumerate(SECRET_KEYS)})
    kwargs["nested"] = {"inner": {"password": "hidden-deep", "author": "visible-deep"}}
    text = render(_plan_with(kwargs), fmt)
    for i, key in enumerate(ORDINARY_KEYS):
        if key:
            assert f"visible-{i}" in text, (fmt, key)
    assert "visible-deep" in text
    assert "hidden-" not in text
    if fmt == "json":
        json.loads(text)


URLS = [
    ("redis://:s3cr3t@host:6379/0", "redis://:***@host:6379/0"),
    ("redis://user:s3cr3t@host:6379/0", "redis://user:***@host:6379/0"),
    ("rediss://s3cr3t@host:6379/0", "rediss://***@host:6379/0"),
    ("redis://host:6379/0?password=s3cr3t", "redis://host:6379/0?password=***"),
    (
        "redis://host:6379/0?db=1&password=s3cr3t&socket_timeout=2",
        "redis://host:6379/0?db=1&password=***&socket_timeout=2",
    ),
    (
        "redis-sentinel://:s3cr3t@s1:26379/0?service_name=m&sentinel_password=s3cr3t",
        "redis-sentinel://:***@s1:26379/0?service_name=m&sentinel_password=***",
    ),
    (
        "sentinel://:s3cr3t@h1:26379;sentinel://:s3cr3t@h2:26379/0",
        "sentinel://:***@h1:26379;sentinel://:***@h2:26379/0",
    ),
    ("redis-cluster://:s3cr3t@h1:7000,h2:7001/0", "redis-cluster://:***@h1:7000,h2:7001/0"),
    ("redis://:pa/ss@w#rd@host:6379/0", "redis://:***@host:6379/0"),
    ("postgresql://app:s3cr3t@db/beat", "postgresql://app:***@db/beat"),
    ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ("unix:///run/redis.sock?db=2", "unix:///run/redis.sock?db=2"),
    ("sqlite:///x.db", "sqlite:///x.db"),
]


@pytest.mark.parametrize(("url", "shown"), URLS)
def test_every_credential_form_in_urls_is_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cr3t" not in redact_text(f"error: cannot reach {url}: refused")


def test_urls_inside_messages_are_masked() -> None:
    text = redact_text("Redis at redis://h:1/0?password=s3cr3t failed; try 'redis://:s3cr3t@h:2/0'")
    assert text == "Redis at redis://h:1/0?password=*** failed; try 'redis://:***@h:2/0'"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_lines_mask_url_credentials(fmt: str) -> None:
    import io
    import logging

    from reconciler.core.logs import configure, log

    stream = io.StringIO()
    configure(fmt, stream)  # type: ignore[arg-type]
    logger = logging.getLogger("reconciler.test")
    log(logger, "apply failed", error="Redis at redis://h:1/0?password=s3cr3t failed", redis="redis://:s3cr3t@h:1/0")
    try:
        raise ConnectionError("cannot reach redis://u:s3cr3t@h:1/0")
    except ConnectionError:
        logger.exception("boom")
    assert "s3cr3t" not in stream.getvalue()
    assert "password=***" in stream.getvalue()


# --- beat prints URLs too ---------------------------------------------------------------------------


def test_beat_banner_masks_a_password_in_the_query() -> None:
    from celery import Celery

    from redbeat import RedBeatScheduler
    from redbeat.config import ensure_conf

    app = Celery("banner", set_as_current=False)
    app.conf.redbeat_redis_url = "redis://127.0.0.1:1/0?password=s3cr3t"
    app.conf.redbeat_lock_key = None
    ensure_conf(app)
    scheduler = RedBeatScheduler.__new__(RedBeatScheduler)  # the banner needs no connection
    scheduler.app, scheduler.lock_key = app, None
    banner = scheduler.info
    assert "s3cr3t" not in banner and "password=***" in banner


def test_broker_url_fallback_warning_masks_every_credential(caplog) -> None:
    from celery import Celery

    from redbeat.config import ensure_conf

    app = Celery("fallback", set_as_current=False)
    app.conf.broker_url = "redis://user:hunter2@127.0.0.1:1/0?password=s3cr3t"
    with caplog.at_level("WARNING", logger="redbeat"), pytest.warns(DeprecationWarning, match="redbeat_redis_url"):
        ensure_conf(app)
    text = caplog.text
    assert "using broker_url" in text and "hunter2" not in text and "s3cr3t" not in text
