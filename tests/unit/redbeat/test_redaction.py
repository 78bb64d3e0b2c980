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
from redbeat.redaction import MASK, is_secret_key, is_secret_path, key_words, redact, redact_text, redact_url

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


# --- hostile input: never raises, never shows a secret ---------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("X-Auth-Token", ["x", "auth", "token"]),
        ("APIKey", ["api", "key"]),
        ("db_password2", ["db", "password", "2"]),
        ("<script>token</script>", ["script", "token", "script"]),
        ("pässwörd", ["p", "ssw", "rd"]),
        ("", []),
        ("[]/\"'\x00\n", []),
    ],
)
def test_key_words_split_on_anything_not_alphanumeric_and_on_camel_case(key: str, words: list[str]) -> None:
    assert key_words(key) == words


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        ("kwargs.db_password", True),
        ("options.headers.Authorization", True),
        ("kwargs.nested.apiKey", True),
        ("kwargs.author", False),
        ("password", False),  # a top-level manifest field is never a secret
        ("task.token", False),
        ("kwargs", False),
        ("", False),
    ],
)
def test_a_flattened_field_path_is_secret_under_kwargs_or_options_only(path: str, secret: bool) -> None:
    assert is_secret_path(path) is secret


def test_mapping_keys_that_are_not_strings_are_kept_and_judged_by_their_text() -> None:
    assert redact({1: "one", None: "none", ("a", "b"): "tuple", "token": 5}) == {
        1: "one",
        None: "none",
        ("a", "b"): "tuple",
        "token": MASK,
    }


def test_redaction_leaves_its_input_alone() -> None:
    value = {"password": "p", "list": [{"token": "t"}]}
    redact(value)
    assert value == {"password": "p", "list": [{"token": "t"}]}


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cr3t@",
        "redis://@@@s3cr3t@h",
        "://:s3cr3t@h",
        "redis://u:s3cr3t@h:1/0?password",
        "redis://u:s3cr3t\n@h:1/0",
        "redis://ü:s3cr3t@hôst:1/0?pässword=x",
        "redis://h/0?token=s3cr3t&token=s3cr3t",
        ";;redis://:s3cr3t@h;",
        "redis://:" + "s3cr3t" * 100_000 + "@h:1/0",
    ],
)
def test_malformed_urls_never_raise_and_never_show_the_password(url: str) -> None:
    assert "s3cr3t" not in redact_url(url)


def test_redact_url_and_text_take_anything_printable() -> None:
    assert redact_url(None) == "None"  # type: ignore[arg-type]
    assert redact_text(ValueError("redis://:s3cr3t@h")) == "redis://:***@h"  # type: ignore[arg-type]


def test_a_query_without_credentials_is_left_exactly_as_written() -> None:
    url = "redis://h:1/0?db=1&socket_timeout=2&ssl_cert_reqs=none&key_prefix=a%2Fb"
    assert redact_url(url) == url


def test_only_the_urls_in_a_text_change() -> None:
    text = "<script>alert('redis://:s3cr3t@h:1/0')</script> token=plain ünïcødé\x00"
    assert redact_text(text) == "<script>alert('redis://:***@h:1/0')</script> token=plain ünïcødé\x00"


def test_masking_a_huge_text_takes_linear_time() -> None:
    import time

    text = "redis://h/0?a=b&" * 50_000 + " x" * 200_000
    started = time.perf_counter()
    assert redact_text(text).endswith(" x")
    assert time.perf_counter() - started < 5
