"""Settings, import paths and the injected-client hooks celery-redbeat users rely on (docs/design.md §2)."""

from __future__ import annotations

import logging
import ssl
import warnings
from datetime import datetime, timezone

import pytest
from celery import Celery
from celery.schedules import schedule

from redbeat.client import RetryingConnection

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def make_app(**conf) -> Celery:
    app = Celery("config-test", set_as_current=False)
    app.conf.update(broker_url="memory://", **conf)
    return app


def conf_of(app):
    from redbeat.schedulers import ensure_conf

    return ensure_conf(app)


def no_warnings(**conf):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return conf_of(make_app(**conf))


# -- import paths and aliases ------------------------------------------------------------------


def test_every_celery_redbeat_import_path_and_alias():
    import redbeat
    import redbeat.decoder
    import redbeat.schedulers
    import redbeat.schedules
    from redbeat import codec, entry, scheduler, schedules

    assert redbeat.RedBeatScheduler is scheduler.RedBeatScheduler
    assert redbeat.schedulers.RedBeatScheduler is scheduler.RedBeatScheduler
    assert redbeat.RedBeatSchedulerEntry is entry.RedBeatSchedulerEntry
    assert redbeat.schedulers.RedBeatSchedulerEntry is entry.RedBeatSchedulerEntry
    assert redbeat.Scheduler is scheduler.RedBeatScheduler  # celery beat -S redbeat.Scheduler
    assert redbeat.RedisBeatScheduler is scheduler.RedBeatScheduler  # the first releases' name
    assert redbeat.schedulers.RedBeatScheduler.Entry is entry.RedBeatSchedulerEntry
    assert callable(redbeat.schedulers.get_redis)
    assert callable(redbeat.schedulers.ensure_conf)
    assert redbeat.schedulers.RedBeatConfig.__name__ == "RedBeatConfig"
    assert "pexpire" in redbeat.schedulers.LUA_EXTEND_TO_SCRIPT.lower()
    assert redbeat.schedules.rrule is schedules.rrule
    assert redbeat.decoder.RedBeatJSONEncoder is codec.RedBeatJSONEncoder
    assert redbeat.decoder.RedBeatJSONDecoder is codec.RedBeatJSONDecoder
    assert redbeat.decoder.to_timestamp(NOW) == 1795608000


def test_celery_resolves_the_scheduler_names_users_type():
    from celery.utils.imports import symbol_by_name

    import redbeat

    for name in ("redbeat.Scheduler", "redbeat.RedBeatScheduler", "redbeat.RedisBeatScheduler",
                 "redbeat.schedulers.RedBeatScheduler", "redbeat.schedulers:RedBeatScheduler"):
        assert symbol_by_name(name) is redbeat.RedBeatScheduler


# -- settings ------------------------------------------------------------------------------------


def test_defaults():
    conf = no_warnings(redbeat_redis_url="redis://example:6379/3")
    assert conf.key_prefix == "redbeat:"
    assert conf.schedule_key == "redbeat::schedule"
    assert conf.statics_key == "redbeat::statics"
    assert conf.lock_key == "redbeat::lock"
    assert conf.lock_timeout is None
    assert conf.key_expiry_check == "error"
    assert conf.redis_url == "redis://example:6379/3"
    assert conf.redbeat_redis_options == {}


def test_every_lower_case_setting():
    conf = no_warnings(
        redbeat_redis_url="rediss://example:6380/1",
        redbeat_redis_options={"socket_timeout": 2.5, "retry_period": 10},
        redbeat_redis_use_ssl={"ssl_cert_reqs": ssl.CERT_NONE},
        redbeat_key_prefix="{beat}:",
        redbeat_lock_key="{beat}:leader",
        redbeat_lock_timeout=45,
        redbeat_key_expiry_check="warn",
    )
    assert conf.redis_url == "rediss://example:6380/1"
    assert conf.redbeat_redis_options == {"socket_timeout": 2.5, "retry_period": 10}
    assert conf.redis_options_explicit is True
    assert conf.redis_use_ssl == {"ssl_cert_reqs": ssl.CERT_NONE}
    assert (conf.key_prefix, conf.schedule_key, conf.statics_key) == ("{beat}:", "{beat}::schedule", "{beat}::statics")
    assert conf.lock_key == "{beat}:leader"
    assert conf.lock_timeout == 45
    assert conf.key_expiry_check == "warn"


@pytest.mark.parametrize(
    "upper, attribute, value",
    [
        ("REDBEAT_REDIS_URL", "redis_url", "redis://old:6379/0"),
        ("REDBEAT_KEY_PREFIX", "key_prefix", "old:"),
        ("REDBEAT_LOCK_KEY", "lock_key", "redbeat:old-lock"),
        ("REDBEAT_LOCK_TIMEOUT", "lock_timeout", 99),
        ("REDBEAT_REDIS_OPTIONS", "redbeat_redis_options", {"socket_timeout": 1}),
        ("REDBEAT_KEY_EXPIRY_CHECK", "key_expiry_check", "ignore"),
    ],
)
def test_upper_case_celery3_names_work_with_a_user_warning(upper, attribute, value):
    app = make_app(redbeat_redis_url="redis://new:6379/0") if upper != "REDBEAT_REDIS_URL" else make_app()
    app.conf.update({upper: value})
    with pytest.warns(UserWarning, match=f"Celery v3 configuration {upper}"):
        conf = conf_of(app)
    assert getattr(conf, attribute) == value


def test_lower_case_wins_over_upper_case_silently():
    conf = no_warnings(redbeat_key_prefix="new:", REDBEAT_KEY_PREFIX="old:", redbeat_redis_url="redis://x/0")
    assert conf.key_prefix == "new:"


def test_broker_url_fallback_logs_a_warning(caplog):
    app = make_app()
    app.conf.broker_url = "redis://:s3cret@broker:6379/4"
    with caplog.at_level(logging.WARNING, logger="celery.beat"), pytest.warns(DeprecationWarning) as caught:
        conf = conf_of(app)
    assert conf.redis_url == "redis://:s3cret@broker:6379/4"
    assert ["redbeat_redis_url" in str(w.message) and "s3cret" not in str(w.message) for w in caught] == [True]
    warning = [r for r in caplog.records if "redbeat_redis_url is not set" in r.getMessage()]
    assert len(warning) == 1 and warning[0].levelno == logging.WARNING
    assert "s3cret" not in warning[0].getMessage()


def test_broker_transport_options_are_inherited_but_not_forwarded_to_redis(fake_redis):
    """celery-redbeat #319: visibility_timeout from the broker options crashed beat."""
    from redbeat.schedulers import get_redis

    app = make_app(broker_transport_options={"visibility_timeout": 3600, "retry_period": 5})
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    with pytest.warns(DeprecationWarning):
        conf = conf_of(app)
    assert conf.redis_options_explicit is False
    client = get_redis(app)
    assert isinstance(client, RetryingConnection) and client.retry_period == 5
    assert "visibility_timeout" not in client.wrapped_connection.connection_pool.connection_kwargs


def test_either_or_with_a_celery3_name_warns_as_celery_redbeat_does():
    conf = no_warnings(redbeat_redis_url="redis://x/0")
    with pytest.warns(UserWarning, match="Celery v3 configuration BROKER_URL .use broker_url instead"):
        assert conf.either_or("BROKER_URL") == "memory://"
    with pytest.warns(UserWarning, match="REDBEAT_NOT_SET"):
        assert conf.either_or("REDBEAT_NOT_SET", 7) == 7


def deprecations(**conf) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conf_of(make_app(**conf))
    return [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]


@pytest.mark.parametrize(
    "conf, expected",
    [
        ({}, ["redbeat_redis_url"]),
        ({"broker_transport_options": {"visibility_timeout": 1}}, ["redbeat_redis_url", "redbeat_redis_options"]),
        ({"redbeat_redis_url": "redis://x/0", "broker_transport_options": {"visibility_timeout": 1}},
         ["redbeat_redis_options"]),
        ({"redbeat_redis_url": "redis://x/0", "broker_transport_options": {}}, []),  # nothing inherited
        ({"redbeat_redis_url": "redis://x/0", "redbeat_redis_options": {"socket_timeout": 1},
          "broker_transport_options": {"visibility_timeout": 1}}, []),
        ({"REDBEAT_REDIS_URL": "redis://x/0", "REDBEAT_REDIS_OPTIONS": {}}, []),  # Celery 3 names are set too
    ],
)
def test_a_broker_fallback_is_a_deprecation_naming_the_setting_to_set(conf, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the Celery 3 spellings' own warning
        messages = deprecations(**conf)
    assert [next(s for s in ("redbeat_redis_url", "redbeat_redis_options") if s in m) for m in messages] == expected


def test_celery3_broker_settings_win_over_celery5_ones_in_the_same_layer(caplog):
    """celery-redbeat reads app.conf['BROKER_URL']: in a config that sets both spellings, the Celery 3 one is used."""
    from redbeat.schedulers import get_redis

    sentinels = [("127.0.0.1", 1), ("127.0.0.1", 2)]
    app = Celery("celery3", set_as_current=False, config_source={
        "broker_url": "memory://", "BROKER_URL": "redis-sentinel://ignored:26379/0",
        "broker_transport_options": {}, "BROKER_TRANSPORT_OPTIONS": {"sentinels": sentinels},
    })
    assert app.conf.broker_url == "memory://"  # what Celery itself reads
    with pytest.warns(DeprecationWarning), caplog.at_level(logging.DEBUG, logger="celery.beat"):
        conf = conf_of(app)
        client = get_redis(app)
    assert conf.redis_url == "redis-sentinel://ignored:26379/0"
    assert "Sentinel" in str(client.connection_pool)
    assert client.connection_pool.connection_kwargs["decode_responses"] is True
    assert "reading broker_transport_options (sentinels)" in caplog.text


def test_inherited_broker_options_left_out_are_logged_by_name_only(caplog):
    from redbeat.schedulers import get_redis

    app = make_app(redbeat_redis_url="redis://127.0.0.1:1/0",
                   broker_transport_options={"visibility_timeout": 3600, "password": "s3cret", "retry_period": 1})
    with pytest.warns(DeprecationWarning), caplog.at_level(logging.DEBUG, logger="celery.beat"):
        get_redis(app)
    skipped = [r.getMessage() for r in caplog.records if "not forwarding" in r.getMessage()]
    assert len(skipped) == 1 and "password, visibility_timeout;" in skipped[0] and "s3cret" not in caplog.text


def test_explicit_options_log_no_skipped_ones(caplog):
    from redbeat.schedulers import get_redis

    app = make_app(redbeat_redis_url="redis://127.0.0.1:1/0", redbeat_redis_options={"socket_timeout": 1},
                   broker_transport_options={"visibility_timeout": 3600})
    with caplog.at_level(logging.DEBUG, logger="celery.beat"):
        get_redis(app)
    assert "not forwarding" not in caplog.text and "broker_transport_options" not in caplog.text


def test_a_mocked_redis_cluster_class_is_called_not_a_type_error():
    """Suites that patch redis.cluster.RedisCluster (celery-redbeat's, its users') get the mock's client."""
    from unittest import mock

    from redis.cluster import RedisCluster

    from redbeat.client import is_cluster
    from redbeat.schedulers import get_redis

    app = make_app(redbeat_redis_url="redis-cluster://node:30001/0",
                   redbeat_redis_options={"startup_nodes": [{"host": "10.0.0.1", "port": "30002"}], "retry_period": 1})
    with mock.patch("redis.cluster.RedisCluster") as mocked:
        client = get_redis(app)
        assert not is_cluster(client)
    assert client.wrapped_connection is mocked.return_value
    [node] = mocked.call_args.kwargs["startup_nodes"]
    assert (node.host, node.port) == ("10.0.0.1", 30002)
    assert is_cluster(RetryingConnection(1, RedisCluster.__new__(RedisCluster)))  # the real class still counts


def test_explicit_redis_options_are_forwarded(fake_redis):
    from redbeat.schedulers import get_redis

    app = make_app(redbeat_redis_url="redis://127.0.0.1:1/7",
                   redbeat_redis_options={"socket_timeout": 2.5, "password": "pw"})
    kwargs = get_redis(app).connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 1, 7)
    assert kwargs["socket_timeout"] == 2.5 and kwargs["password"] == "pw"
    assert kwargs["decode_responses"] is True


def test_rediss_requires_certificates_by_default():
    from redbeat.schedulers import get_redis

    kwargs = get_redis(make_app(redbeat_redis_url="rediss://127.0.0.1:1/0")).connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_unknown_key_expiry_check_logs_and_uses_error(caplog):
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        conf = conf_of(make_app(redbeat_redis_url="redis://x/0", redbeat_key_expiry_check="shout"))
    assert conf.key_expiry_check == "error"
    assert "redbeat_key_expiry_check='shout'" in caplog.text


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("mylock", "redbeat:mylock"),  # prefixed, as celery-redbeat does
        (":lock2", "redbeat::lock2"),
        ("redbeat:custom", "redbeat:custom"),  # already prefixed: kept
    ],
)
def test_lock_key_is_prefixed(setting, expected):
    assert no_warnings(redbeat_redis_url="redis://x/0", redbeat_lock_key=setting).lock_key == expected


def test_lock_key_none_disables_locking(fake_redis):
    from redbeat import RedBeatScheduler

    app = make_app(redbeat_redis_url="redis://x/0", redbeat_lock_key=None)
    app.redbeat_redis = fake_redis
    assert conf_of(app).lock_key is None
    scheduler = RedBeatScheduler(app=app, lazy=True)
    assert scheduler.lock_key is None
    assert scheduler.tick() > 0
    assert fake_redis.keys("*lock*") == []
    assert "lock -> disabled" in scheduler.info


def test_lock_timeout_from_setting_and_from_the_constructor(fake_redis):
    from redbeat import RedBeatScheduler

    app = make_app(redbeat_redis_url="redis://x/0", redbeat_lock_timeout=42)
    app.redbeat_redis = fake_redis
    assert RedBeatScheduler(app=app, lazy=True).lock_timeout == 42
    assert RedBeatScheduler(app=app, lazy=True, lock_timeout=7, lock_key="other").lock_timeout == 7
    assert RedBeatScheduler(app=app, lazy=True, lock_key="redbeat:other").lock_key == "redbeat:other"


# -- app.redbeat_redis and ensure_conf -----------------------------------------------------------


def test_ensure_conf_builds_app_redbeat_conf_once():
    from redbeat.schedulers import RedBeatConfig, ensure_conf

    app = make_app(redbeat_redis_url="redis://x/0", redbeat_key_prefix="p:")
    assert not hasattr(app, "redbeat_conf")
    conf = ensure_conf(app)
    assert isinstance(conf, RedBeatConfig)
    assert app.redbeat_conf is conf and ensure_conf(app) is conf
    assert (conf.key_prefix, conf.schedule_key, conf.statics_key, conf.lock_key) == \
        ("p:", "p::schedule", "p::statics", "p::lock")
    app.conf.beat_schedule = {"a": {"task": "t", "schedule": 1}}
    assert conf.schedule == {"a": {"task": "t", "schedule": 1}}


def test_get_redis_honours_an_injected_client(fake_redis):
    """Users' own tests set app.redbeat_redis = fakeredis.FakeRedis() and save entries through it."""
    from redbeat import RedBeatSchedulerEntry
    from redbeat.schedulers import get_redis

    app = make_app(redbeat_redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    app.redbeat_redis = fake_redis
    app.now = lambda: NOW
    assert get_redis(app) is fake_redis
    entry = RedBeatSchedulerEntry("fake", "tasks.fake", schedule(60), app=app).save()
    assert fake_redis.zscore(app.redbeat_conf.schedule_key, entry.key) == NOW.timestamp() + 60
    loaded = RedBeatSchedulerEntry.from_key("redbeat:fake", app=app)
    assert (loaded.task, loaded.last_run_at) == ("tasks.fake", NOW)


def test_get_redis_builds_one_client_per_app():
    from redbeat.schedulers import get_redis

    app = make_app(redbeat_redis_url="redis://127.0.0.1:1/0")
    client = get_redis(app)
    assert get_redis(app) is client and app.redbeat_redis is client
