"""rediss:// against a TLS-only redis-server whose certificate a trustme CA signed."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
import redis
from celery.schedules import schedule
from support.topologies import TLSRedis
from topology import helpers
from topology.helpers import MANIFEST_NAMES, Recording, apply_twice, beat_app, pinned_now, redbeat_apply

from redbeat import RedBeatSchedulerEntry as Entry

pytestmark = pytest.mark.topology


@pytest.fixture(autouse=True)
def flushed(tls_redis: TLSRedis) -> None:
    tls_redis.client().flushall()


def test_beat_saves_and_sends_over_tls_with_the_ca_from_redbeat_redis_use_ssl(tls_redis):
    with beat_app(tls_redis.server.url, now=pinned_now(),
                  redbeat_redis_use_ssl={"ssl_ca_certs": str(tls_redis.ca_file)}) as app:
        Entry("over-tls", "tasks.tls", schedule(10), app=app).save()
        scheduler = Recording(app=app)
        assert scheduler.is_leader
        app.now.advance(10)
        scheduler.tick()
        assert scheduler.sent_names == ["over-tls"]
        scheduler.close()
    stored = tls_redis.client()
    assert stored.zscore("redbeat::schedule", "redbeat:over-tls") == app.now.value.timestamp() + 10


@pytest.mark.parametrize("trust", ["other-ca", "system-store"])
def test_beat_never_falls_back_to_an_unverified_connection(tls_redis, caplog, trust):
    use_ssl = {"ssl_ca_certs": str(tls_redis.other_ca_file)} if trust == "other-ca" else None
    with beat_app(tls_redis.server.url, now=pinned_now(), redbeat_redis_use_ssl=use_ssl) as app:
        with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            Entry("never", "tasks.never", schedule(10), app=app).save()
        with caplog.at_level(logging.WARNING, logger="celery.beat"):
            scheduler = Recording(app=app)
            app.now.advance(60)
            scheduler.tick()
        assert not scheduler.is_leader and scheduler.sent == []
        assert "certificate verify failed" in caplog.text
    assert tls_redis.client().dbsize() == 0


def test_redbeat_apply_takes_the_ca_in_the_url_query(tls_redis, manifests):
    url = f"{tls_redis.server.url}?ssl_ca_certs={quote(str(tls_redis.ca_file))}"
    apply_twice(url, manifests)
    client = tls_redis.client()
    assert sorted(client.zrange("redbeat::schedule", 0, -1)) == [f"redbeat:{n}" for n in MANIFEST_NAMES]
    # Celery's spelling of the same thing (ssl_cert_reqs=CERT_REQUIRED) is read too
    celery_style = f"{tls_redis.server.url}?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs={tls_redis.ca_file}"
    assert redbeat_apply(celery_style, str(manifests), check=True).stdout.strip() == "No changes. 2 unchanged."


@pytest.mark.parametrize("query", ["?ssl_ca_certs={other}", ""])
def test_redbeat_apply_with_a_wrong_or_no_ca_fails_clearly_and_writes_nothing(tls_redis, manifests, query):
    url = tls_redis.server.url + query.format(other=tls_redis.other_ca_file)
    result = redbeat_apply(url, str(manifests))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "certificate verify failed" in result.stderr
    assert result.stderr.startswith("redbeat-apply: error: ")
    assert tls_redis.client().dbsize() == 0


def test_a_plain_redis_url_against_the_tls_port_fails_and_writes_nothing(tls_redis, manifests):
    result = redbeat_apply(f"redis://127.0.0.1:{tls_redis.port}/0", str(manifests))
    assert result.returncode == 1
    assert "redbeat-apply: error: " in result.stderr
    assert tls_redis.client().dbsize() == 0


def test_the_watch_mode_over_tls_has_a_change_feed(tls_redis, manifests):
    """The feed's own RESP2 connection takes the URL's TLS settings like every other connection."""
    url = f"{tls_redis.server.url}?ssl_ca_certs={quote(str(tls_redis.ca_file))}"
    assert helpers.watch_finds_a_hand_edit(url, manifests, tls_redis.client())
