"""The web console over HTTP (Werkzeug's test client) against a real redis-server: pages, filters, JSON, actions,
escaping and the security headers."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from werkzeug.test import Client

from reconciler.console import security
from reconciler.console.app import make_app
from reconciler.console.readers import ManifestFiles
from reconciler.operating import audit
from reconciler.sync.reconcile import connect, load, reconcile

TOKEN = "s3cret-token-for-tests-0123456789"
XSS = '"><img src=x onerror=alert(1)>'
SCRIPT = "<script>alert('x')</script>"

MANIFEST = f"""\
defaults:
  task: app.tasks.report
schedules:
  - name: nightly-report
    cron: "30 2 * * mon-fri"
    timezone: Europe/Berlin
  - name: heartbeat
    task: ops.ping
    every: 30s
  - name: '{XSS}'
    every: 1h
  - name: "{SCRIPT}"
    cron: "0 0 * * *"
    protected: true
  - name: "a&b <c> 'd' [e]/f"
    every: 5m
"""


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    folder = tmp_path / "schedules"
    folder.mkdir()
    (folder / "jobs.yaml").write_text(MANIFEST, encoding="utf-8")
    return folder


@pytest.fixture
def target(redis_url, manifests):
    target = connect(redis_url, "redbeat:", "team-a")
    reconcile(load([manifests]), target)
    audit.record(target.client, target.keys, audit.apply_record("ci", "team-a", "abc123", {"create": 5}), 1.0e9)
    return target


def _client(target, manifests=None, token=None) -> Client:
    files = ManifestFiles([manifests], lambda paths: load(paths, allow_empty=True)) if manifests else None
    return Client(make_app(target, manifests=files, token=token, max_age=0, max_stale=0))


def _sign_in(client: Client, name: str = "alice") -> str:
    response = client.post("/login", data={"token": TOKEN, "name": name})
    assert response.status_code == 303
    page = client.get("/entry", query_string={"name": "heartbeat"}).get_data(as_text=True)
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def test_every_page_renders_with_the_security_headers(target, manifests):
    client = _client(target, manifests)
    for path in ("/schedules", "/timeline", "/timeline?window=1h", "/timeline?window=7d", "/activity", "/health",
                 "/entry?name=heartbeat", "/static/console.css"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:500])
        csp = response.headers["Content-Security-Policy"]
        assert "script-src" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    assert client.get("/").status_code == 303


def test_no_page_has_script_inline_style_or_external_asset(target, manifests):
    client = _client(target, manifests)
    for path in ("/schedules", "/timeline", "/activity", "/health", "/entry?name=heartbeat", "/login"):
        html = client.get(path).get_data(as_text=True)
        assert "<script" not in html.replace("&lt;script", "")
        assert " style=" not in html and "<style" not in html
        assert not re.search(r'(src|href)="(https?:)?//', html), path


def test_schedules_show_words_sync_and_states(target, manifests, redis_client):
    redis_client.hset("redbeat:heartbeat", "definition", redis_client.hget("redbeat:heartbeat", "definition")
                      .replace('"ops.ping"', '"ops.changed"'))  # drift by hand
    html = _client(target, manifests).get("/schedules").get_data(as_text=True)
    assert "At 02:30, Monday through Friday, Europe/Berlin" in html
    assert "Every 30s" in html
    assert "drifted" in html and "in sync" in html
    assert 'class="badge protected"' in html


def test_hostile_names_are_escaped_everywhere(target, manifests):
    client = _client(target, manifests)
    for path in ("/schedules", "/timeline"):
        html = client.get(path).get_data(as_text=True)
        assert SCRIPT not in html and XSS not in html and "<img" not in html
        assert "&lt;script&gt;" in html and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    searched = client.get("/schedules?q=%3Cscript%3E").get_data(as_text=True)
    assert "<script>" not in searched and 'value="&lt;script&gt;"' in searched
    for name in (SCRIPT, XSS, "a&b <c> 'd' [e]/f"):
        html = client.get("/entry", query_string={"name": name}).get_data(as_text=True)
        assert "<img" not in html and "<script>" not in html and "<c>" not in html


def test_filters_sort_and_pages_are_url_parameters(target, manifests):
    client = _client(target, manifests)
    document = client.get("/schedules?o=json&q=nightly").get_json()
    assert [row["name"] for row in document["entries"]] == ["nightly-report"]
    assert set(document) == {"format_version", "key_prefix", "entries", "other_prefixes"}
    assert [r["name"] for r in client.get("/api/status?state=protected").get_json()["entries"]] == [SCRIPT]
    html = client.get("/schedules?per_page=2&page=2&sort=name&order=desc").get_data(as_text=True)
    assert "page 2 of 3" in html
    noted = client.get("/schedules?per_page=zero&sort=nope&page=-4").get_data(as_text=True)
    assert "sort: unknown value ignored" in noted and "per_page: not a number" in noted


def test_the_manifest_source_is_shown_relative_to_the_path_given(target, manifests):
    html = _client(target, manifests).get("/entry?name=heartbeat").get_data(as_text=True)
    assert "schedules/jobs.yaml:7:5: schedules[1]" in html and str(manifests.parent) not in html


def test_without_manifests_there_is_no_sync_column(target):
    html = _client(target).get("/schedules").get_data(as_text=True)
    assert "Redis only" in html and "drifted" not in html


def test_an_entry_missing_in_redis_is_listed(target, manifests, redis_client):
    redis_client.delete("redbeat:heartbeat")
    redis_client.zrem("redbeat::schedule", "redbeat:heartbeat")
    document = _client(target, manifests).get("/schedules?sync=missing-in-redis").get_data(as_text=True)
    assert "heartbeat" in document and "missing in Redis" in document


def test_json_endpoints_have_the_cli_shapes(target, manifests):
    from reconciler.operating.operate import full_status
    from reconciler.operating.status import status_document

    client = _client(target, manifests)
    served = client.get("/api/status").get_json()
    expected = json.loads(json.dumps(status_document("redbeat:", full_status(target), {})))
    for row in (*served["entries"], *expected["entries"]):
        row.pop("next_run")  # computed at a slightly different moment
    assert served == expected
    assert client.get("/api/audit").get_json()["records"][0]["revision"] == "abc123"
    assert client.get("/api/history?name=heartbeat").get_json() == {"format_version": 1, "runs": []}
    assert client.get("/api/history?name=nope").status_code == 400


def _contents(client) -> dict[str, object]:
    """Every key's value (DUMP bytes may differ after a read: Redis rehashes incrementally on lookups)."""
    read = {"hash": client.hgetall, "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            "set": client.smembers, "string": client.get, "stream": client.xrange,
            "list": lambda k: client.lrange(k, 0, -1)}
    return {key: read[client.type(key)](key) for key in client.keys("*")}


def test_read_endpoints_refuse_writes_and_change_nothing(target, manifests, redis_client):
    before = _contents(redis_client)
    client = _client(target, manifests, TOKEN)
    for path in ("/schedules", "/entry?name=heartbeat", "/api/status", "/health", "/timeline"):
        assert client.post(path).status_code == 405
        client.get(path)
    assert _contents(redis_client) == before


def test_actions_are_off_without_a_token(target, manifests, redis_client):
    client = _client(target, manifests, token=None)
    assert "read-only" in client.get("/schedules").get_data(as_text=True)
    for action in ("trigger", "pause", "resume"):
        response = client.post(f"/actions/{action}", data={"name": "heartbeat"})
        assert response.status_code == 403
    response = client.post("/actions/trigger", data={"name": "heartbeat"}, headers={"Authorization": "Bearer x" * 3})
    assert response.status_code == 403
    assert not redis_client.hexists("redbeat:heartbeat", "trigger")
    assert [r["action"] for r in audit.read(redis_client, target.keys)] == ["apply"]


def test_actions_need_the_session_and_its_csrf_token(target, manifests, redis_client):
    client = _client(target, manifests, TOKEN)
    assert client.post("/actions/trigger", data={"name": "heartbeat"}).status_code == 403  # not signed in
    assert client.post("/login", data={"token": "wrong-token-wrong-token"}).status_code == 403
    csrf = _sign_in(client)
    assert client.post("/actions/trigger", data={"name": "heartbeat", "csrf": "0" * 64}).status_code == 403
    cross = client.post("/actions/trigger", data={"name": "heartbeat", "csrf": csrf},
                        headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert not redis_client.hexists("redbeat:heartbeat", "trigger")

    done = client.post("/actions/trigger", data={"name": "heartbeat", "csrf": csrf, "note": "rerun <b>"})
    assert done.status_code == 303 and "done=trigger" in done.headers["Location"]
    assert redis_client.hexists("redbeat:heartbeat", "trigger")
    paused = client.post("/actions/pause", data={"name": "heartbeat", "csrf": csrf, "until": "2h", "note": "inc 7"})
    assert paused.status_code == 303
    html = client.get("/entry", query_string={"name": "heartbeat", "done": "pause"}).get_data(as_text=True)
    assert "Paused." in html and "paused by alice via console@" in html and "Resume" in html
    assert client.post("/actions/resume", data={"name": "heartbeat", "csrf": csrf}).status_code == 303
    records = audit.read(redis_client, target.keys)
    assert [r["action"] for r in records] == ["apply", "trigger", "pause", "resume"]
    assert all(r["actor"].startswith("alice via console@") for r in records[1:])
    assert records[1]["detail"] == "rerun <b>"


def test_refused_actions_say_why_and_write_nothing(target, manifests, redis_client):
    client = _client(target, manifests, TOKEN)
    csrf = _sign_in(client)
    for data, words in (({"name": "nope"}, "no entry named nope"),
                        ({"name": "heartbeat", "until": "yesterday"}, "neither a time"),
                        ({"name": "heartbeat", "note": "x" * 501}, "longer than 500")):
        response = client.post("/actions/pause", data={**data, "csrf": csrf})
        assert response.status_code == 400 and words in response.get_data(as_text=True)
    assert client.post("/actions/resume", data={"name": "heartbeat", "csrf": csrf}).status_code == 400
    assert client.post("/actions/explode", data={"name": "heartbeat", "csrf": csrf}).status_code == 404
    assert [r["action"] for r in audit.read(redis_client, target.keys)] == ["apply"]


def test_scripts_act_with_a_bearer_token(target, manifests, redis_client):
    client = _client(target, manifests, TOKEN)
    response = client.post("/actions/trigger", data={"name": "heartbeat"},
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.get_json()["ok"] is True
    assert audit.read(redis_client, target.keys)[-1]["actor"].startswith("api via console@")


def test_a_forged_or_expired_cookie_is_no_session(target, manifests):
    client = _client(target, manifests, TOKEN)
    client.set_cookie(security.COOKIE_NAME, "a.YWxpY2U.1.deadbeef")
    assert "Sign in for actions" in client.get("/schedules").get_data(as_text=True)


def test_redis_down_is_a_clear_503(manifests):
    target = connect("redis://127.0.0.1:1/0", "redbeat:", "x")
    response = _client(target, manifests).get("/schedules")
    assert response.status_code == 503
    assert "Redis" in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)
    assert _client(target).get("/api/status").get_json()["error"].startswith("Redis")


def test_invalid_manifests_are_reported_not_fatal(target, manifests):
    (manifests / "broken.yaml").write_text("schedules:\n  - name: x\n    every: nope\n", encoding="utf-8")
    html = _client(target, manifests).get("/schedules").get_data(as_text=True)
    assert "manifest error" in html and "broken.yaml" in html


def test_unknown_entry_is_404(target):
    response = _client(target).get("/entry", query_string={"name": "<nope>"})
    assert response.status_code == 404 and "&lt;nope&gt;" in response.get_data(as_text=True)


def test_a_corrupt_entry_is_a_row_with_its_problem(target, manifests, redis_client):
    redis_client.hset("redbeat:broken", mapping={"definition": "{not json", "meta": "[]"})
    redis_client.zadd("redbeat::schedule", {"redbeat:broken": 1.0})
    redis_client.hset("redbeat:odd", mapping={"definition": json.dumps(
        {"name": "odd", "task": "t", "schedule": {"__type__": "solar?"}, "args": [], "kwargs": {}, "options": {}})})
    redis_client.zadd("redbeat::schedule", {"redbeat:odd": 1e300})
    client = _client(target, manifests)
    for path in ("/schedules", "/timeline", "/timeline?window=7d", "/entry?name=broken", "/entry?name=odd"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[-800:])
    assert "no readable definition" in client.get("/entry?name=broken").get_data(as_text=True)


def test_bytes_that_are_not_utf8_are_a_clear_error_not_a_traceback(target, redis_url):
    import redis

    raw = redis.Redis.from_url(redis_url)
    raw.zadd("redbeat::schedule", {b"redbeat:\xff\xfe": 1.0})
    raw.hset(b"redbeat:\xff\xfe", "definition", b"{}")
    response = _client(target).get("/schedules")
    text = response.get_data(as_text=True)
    assert response.status_code == 502 and "not UTF-8" in text and "Traceback" not in text
    assert "redbeat:\\xff\\xfe" in text  # names the member, as the CLI does


def test_a_redis_that_refuses_writes_refuses_the_action_cleanly(fresh_redis, manifests):
    target = connect(fresh_redis.url, "redbeat:", "team-a")
    reconcile(load([manifests]), target)
    target.client.config_set("min-replicas-to-write", 1)  # every write now fails with NOREPLICAS
    client = _client(target, manifests, TOKEN)
    response = client.post("/actions/pause", data={"name": "heartbeat"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503 and "Redis" in response.get_json()["error"]
    assert not target.client.hexists("redbeat:heartbeat", "pause")
    assert client.get("/schedules").status_code == 200  # reading still works


def test_a_huge_name_is_not_echoed_whole(target):
    response = _client(target).get("/entry", query_string={"name": "x" * 100_000})
    assert response.status_code == 404 and len(response.get_data()) < 20_000


def test_a_loopback_console_refuses_other_host_names(target):
    client = Client(make_app(target, loopback_only=True, max_stale=0))
    for host in ("127.0.0.1:9186", "localhost:9186", "[::1]:9186", "LOCALHOST"):
        assert client.get("/schedules", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:9186", "127.0.0.1.evil.example:9186", ""):
        refused = client.get("/schedules", headers={"Host": host})
        assert refused.status_code == 403 and "loopback only" in refused.get_data(as_text=True), host


# --- the hostile user's pass ----------------------------------------------------------------------

LOOKALIKES = """\
schedules:
  - name: "caf\\u00e9"
    task: app.tasks.report
    every: 1h
  - name: "cafe\\u0301"
    task: app.tasks.report
    every: 1h
"""


def test_names_differing_only_by_normalisation_are_both_found_and_told_apart(redis_url, tmp_path):
    (tmp_path / "jobs.yaml").write_text(LOOKALIKES, encoding="utf-8")
    target = connect(redis_url, "redbeat:", "team-a")
    reconcile(load([tmp_path]), target)
    client = _client(target)
    page = client.get("/schedules", query_string={"q": "CAFE\u0301"}).get_data(as_text=True)
    assert "2 of 2 entries" in page and page.count("look-alike</span>") == 2
    assert 'href="/entry?name=caf%C3%A9"' in page and 'href="/entry?name=cafe%CC%81"' in page
    for name, spelled in (("caf\u00e9", "caf\\xe9"), ("cafe\u0301", "cafe\\u0301")):
        entry = client.get("/entry", query_string={"name": name}).get_data(as_text=True)
        assert "class=\"rel codepoints\"" in entry and spelled in entry


def test_the_bearer_scheme_is_case_insensitive_and_a_token_in_the_url_is_not_accepted(target):
    client = _client(target, token=TOKEN)
    response = client.post("/actions/trigger", data={"name": "heartbeat"}, headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200 and response.get_json()["ok"] is True
    for query in ({"token": TOKEN}, {"access_token": TOKEN}):
        refused = client.post("/actions/pause", query_string=query, data={"name": "heartbeat", "token": TOKEN})
        assert refused.status_code == 403 and "sign in" in refused.get_data(as_text=True)


def test_a_huge_request_body_is_a_413_and_nothing_is_written(target, redis_client):
    client = _client(target, token=TOKEN)
    before = redis_client.hgetall("redbeat:heartbeat")
    response = client.post("/actions/pause", data={"name": "heartbeat", "note": "x" * 200_000},
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 413 and "error" in response.get_json()
    assert redis_client.hgetall("redbeat:heartbeat") == before


def test_a_read_only_replica_shows_pages_and_refuses_actions_clearly(target, redis_client):
    client = _client(target, token=TOKEN)
    redis_client.replicaof("127.0.0.1", "1")  # a replica of nothing: keeps its data, refuses writes (READONLY)
    try:
        assert client.get("/schedules").status_code == 200
        response = client.post("/actions/pause", data={"name": "heartbeat", "until": "1h"},
                               headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 503
        error = response.get_json()["error"]
        assert "read-only replica" in error and "primary" in error and "script" not in error
    finally:
        redis_client.replicaof("no", "one")
    assert redis_client.hget("redbeat:heartbeat", "pause") is None


def test_times_are_compact_in_the_entry_zone_with_iso_in_the_title(target):
    page = _client(target).get("/schedules", query_string={"q": "nightly"}).get_data(as_text=True)
    cell = re.search(r'<td class="when"><time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', page)
    assert cell is not None, page
    iso, title, shown = cell.groups()
    assert title == f"{iso} (Europe/Berlin)" and iso not in shown and "+" not in shown
    assert re.search(r"\d\d:\d\d CES?T$", shown)


def test_an_action_updates_its_row_in_the_shared_snapshot_without_reading_everything(target, manifests, monkeypatch):
    from reconciler.console import readers

    files = ManifestFiles([manifests], lambda paths: load(paths, allow_empty=True))
    client = Client(make_app(target, manifests=files, token=TOKEN, max_age=3600, max_stale=3600))
    reads: list[int] = []
    real = readers.read_snapshot
    monkeypatch.setattr(readers, "read_snapshot", lambda *args: reads.append(1) or real(*args))
    assert "heartbeat" not in client.get("/schedules?state=paused").get_data(as_text=True)
    assert len(reads) == 1
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    done = client.post("/actions/pause", data={"name": "heartbeat", "note": "db migration"}, headers=bearer)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "heartbeat" in client.get("/schedules?state=paused").get_data(as_text=True)
    assert "nightly-report" in client.get("/schedules").get_data(as_text=True)
    assert len(reads) == 1  # the paused row was read again, not every entry
    client.post("/actions/resume", data={"name": "heartbeat"}, headers=bearer)
    assert "heartbeat" not in client.get("/schedules?state=paused").get_data(as_text=True)
    assert len(reads) == 1


def test_the_status_json_lists_entries_in_the_page_order(target, manifests):
    client = _client(target, manifests)
    page = client.get("/schedules?sort=task&order=desc").get_data(as_text=True)
    shown = re.findall(r'<td class="name"><a href="[^"]+">([^<]+)</a>', page)
    served = [row["name"] for row in client.get("/api/status?sort=task&order=desc").get_json()["entries"]]
    assert served == [html.unescape(name) for name in shown]
    assert served[0] == "heartbeat"  # ops.ping after app.tasks.report, descending
    by_name = [row["name"] for row in client.get("/schedules?o=json&order=desc").get_json()["entries"]]
    assert by_name == sorted(by_name, key=str.casefold, reverse=True)


def test_a_bad_audit_limit_is_a_400_not_a_redis_error(target):
    client = _client(target)
    for value in ("0", "-1", "ten", "9999999"):
        response = client.get("/api/audit", query_string={"limit": value})
        assert response.status_code == 400, (value, response.get_json())
        assert "limit" in response.get_json()["error"] and "Redis" not in response.get_json()["error"]
    assert len(client.get("/api/audit?limit=1").get_json()["records"]) == 1
    assert client.get("/activity?o=json&limit=0").status_code == 400


def test_a_paused_entry_runs_next_when_its_pause_ends_or_not_at_all(target, manifests):
    from datetime import datetime, timezone

    client = _client(target, manifests, TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/actions/pause", data={"name": "heartbeat", "until": "2h"}, headers=bearer).status_code == 200
    end = json.loads(target.client.hget("redbeat:heartbeat", "pause"))["until"]
    assert client.post("/actions/pause", data={"name": "nightly-report"}, headers=bearer).status_code == 200

    rows = {row["name"]: row for row in _rows(client, "/schedules?state=paused")}
    assert set(rows) == {"heartbeat", "nightly-report"}
    # every 30s, last run never: beat runs it once when the pause ends (catch_up once), not "now"
    assert rows["heartbeat"]["datetime"] == datetime.fromtimestamp(int(end), timezone.utc).isoformat()
    assert rows["nightly-report"]["datetime"] is None  # paused until resumed: no next run
    page = client.get("/entry?name=heartbeat").get_data(as_text=True)
    runs = re.findall(r'<li><time datetime="([^"]+)"', page)
    assert len(runs) == 10 and runs[0] == rows["heartbeat"]["datetime"]
    assert all(datetime.fromisoformat(at).timestamp() >= int(end) for at in runs)
    assert "None while paused." in client.get("/entry?name=nightly-report").get_data(as_text=True)


def _rows(client, path):
    """Name and next-run time (the datetime attribute, None for '-') of each row of a schedules page."""
    page = client.get(path).get_data(as_text=True)
    out = []
    for row in re.findall(r"<tr class=\"state-.*?</tr>", page, re.S):
        name = html.unescape(re.search(r'<td class="name"><a href="[^"]+">([^<]+)</a>', row).group(1))
        when = re.search(r'<td class="when">(?:<time datetime="([^"]+)"|-)', row)
        out.append({"name": name, "datetime": when.group(1) if when else None})
    return out


def test_a_background_read_that_finds_redis_down_logs_one_line_not_a_traceback(caplog):
    from reconciler.console import readers

    target = connect("redis://127.0.0.1:1/0", "redbeat:", "x")
    cache = readers.SnapshotCache(target, None)
    with caplog.at_level("WARNING", logger="reconciler.console"):
        cache._refresh()
    [record] = caplog.records
    assert record.exc_info is None and "Traceback" not in caplog.text
    assert "background read failed: Redis: Error" in record.getMessage()
    assert cache._snapshot is None and not cache._refreshing


def test_a_name_with_a_direction_override_is_marked_and_cannot_reorder_the_page(redis_url, tmp_path):
    (tmp_path / "jobs.yaml").write_text(
        'schedules:\n  - name: "rtl \\u202eevil"\n    task: t.a\n    every: 1h\n'
        '  - name: "plain"\n    task: t.b\n    every: 1h\n', encoding="utf-8")
    target = connect(redis_url, "redbeat:", "team-a")
    reconcile(load([tmp_path]), target)
    client = _client(target)
    page = client.get("/schedules").get_data(as_text=True)
    assert page.count('<span class="badge hidden"') == 1 and "rtl \u202eevil</a> <span class=\"badge hidden\"" in page
    entry = client.get("/entry", query_string={"name": "rtl \u202eevil"}).get_data(as_text=True)
    assert 'class="badge hidden"' in entry and "rtl \\u202eevil" in entry  # spelled with escapes
    css = client.get("/static/console.css").get_data(as_text=True)
    assert re.search(r"td\.name a[^{]*\{ unicode-bidi: isolate; \}", css)


def test_every_state_is_a_badge_and_a_filter(target, manifests, redis_client):
    redis_client.zadd("redbeat::schedule", {"redbeat:heartbeat": -1})  # how beat files an entry past its end_at
    definition = json.loads(redis_client.hget("redbeat:nightly-report", "definition"))
    redis_client.hset("redbeat:nightly-report", "definition", json.dumps({**definition, "enabled": False}))
    client = _client(target, manifests)
    for state, name in (("finished", "heartbeat"), ("disabled", "nightly-report"), ("protected", SCRIPT),
                        ("enabled", "a&b <c> 'd' [e]/f")):
        rows = [row["name"] for row in _rows(client, f"/schedules?state={state}")]
        assert name in rows, (state, rows)
        page = client.get("/schedules", query_string={"state": state, "q": name}).get_data(as_text=True)
        assert f'<span class="badge {state}">' in page, state
    assert "heartbeat" not in [row["name"] for row in _rows(client, "/schedules?state=enabled")]


def test_a_refused_action_form_links_back_to_its_entry(target, manifests):
    client = _client(target, manifests, TOKEN)
    csrf = _sign_in(client)
    page = client.post("/actions/pause", data={"name": XSS, "until": "yesterday", "csrf": csrf})
    text = page.get_data(as_text=True)
    assert page.status_code == 400 and "neither a time" in text
    assert '<a href="/entry?name=%22%3E%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E">Back to &#34;&gt;&lt;img' in text
    long = client.post("/actions/pause", data={"name": "n" * 5000, "csrf": csrf}).get_data(as_text=True)
    assert "Back to " + "n" * 77 + "...</a>" in long and "n" * 5000 not in long.split("Back to")[1]
    huge = client.post("/actions/pause", data={"name": "heartbeat", "note": "x" * 200_000, "csrf": csrf})
    assert huge.status_code == 413 and "Back to the schedules" in huge.get_data(as_text=True)


TEAM_B = """\
schedules:
  - name: "caf\\u00e9"
    task: b.one
    every: 10m
  - name: "cafe\\u0301"
    task: b.two
    cron: "15 4 * * *"
    timezone: America/New_York
  - name: later
    task: b.three
    every: 2h
    start_at: "2999-01-01T00:00:00Z"
  - name: switched-off
    task: b.four
    every: 1m
    enabled: false
"""


def _every_kind_of_row(target, manifests, redis_client, redis_url, tmp_path):
    """Rows of every state, sync state and owner: paused (until a time, until resumed), protected, disabled,
    dormant, finished, corrupt, look-alike names, drifted, not in git, missing in Redis, with runs and lag."""
    import time as clock
    from datetime import datetime, timezone

    from redbeat.codec import encode_meta

    other = tmp_path / "team-b"
    other.mkdir()
    (other / "jobs.yaml").write_text(TEAM_B, encoding="utf-8")
    reconcile(load([other]), connect(redis_url, "redbeat:", "team-b"))
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    actions = _client(target, manifests, TOKEN)
    for form in ({"name": "heartbeat", "until": "2h"}, {"name": "nightly-report"}):
        assert actions.post("/actions/pause", data=form, headers=bearer).status_code == 200
    redis_client.hset("redbeat:broken", mapping={"definition": "{not json", "meta": "[]"})
    redis_client.zadd("redbeat::schedule", {"redbeat:broken": 1.0, "redbeat:a&b <c> 'd' [e]/f": -1})
    now = clock.time()
    redis_client.hset(f"redbeat:{XSS}", "meta", encode_meta(datetime.fromtimestamp(now - 600, timezone.utc), 7))
    for event, at in (("claimed", now - 600.0), ("sent", now - 598.75)):
        redis_client.xadd("redbeat::history", {"event": event, "entry": XSS, "slot": repr(now - 600.0),
                                                "at": repr(at)})
    jobs = manifests / "jobs.yaml"  # heartbeat drifts from git; "ghost" is in git only
    jobs.write_text(jobs.read_text(encoding="utf-8").replace("task: ops.ping", "task: ops.pong")
                    + "  - name: ghost\n    every: 1d\n", encoding="utf-8")


def test_a_page_with_no_snapshot_shows_the_rows_a_full_snapshot_shows(target, manifests, redis_client, redis_url,
                                                                      tmp_path, monkeypatch):
    """The first page after a while builds only its own rows when the query needs no other (names and owners):
    for every sort, order and filter its page is the page served from the same read with every row built."""
    from reconciler.console import query as q
    from reconciler.console import readers, views

    _every_kind_of_row(target, manifests, redis_client, redis_url, tmp_path)
    files = ManifestFiles([manifests], lambda paths: load(paths, allow_empty=True))
    queries = [{"sort": sort, "order": order, "per_page": "3", "page": page}
               for sort in q.SORTS for order in q.ORDERS for page in ("1", "3")]
    queries += [{"state": state} for state in views.STATES] + [{"sync": sync} for sync in views.SYNC_WORDS]
    queries += [{"owner": "team-b", "sort": "owner", "order": "desc"}, {"owner": "team-a", "per_page": "2"},
                {"q": "cafe"}, {"q": "CAFÉ", "sort": "next"}, {"q": "every", "state": "paused"}, {}]
    lazy = 0
    for args in queries:
        cold_app = make_app(target, manifests=files, max_age=3600, max_stale=3600)
        cold = Client(cold_app).get("/schedules", query_string=args).get_data(as_text=True)
        read = cold_app.ctx.cache.get()
        query = q.parse(args, states=views.STATES, syncs=tuple(views.SYNC_WORDS))
        if q.by_name_and_owner(query) and query.per_page < len(read.stubs):
            assert not read.complete, args  # only the page's rows were built
            lazy += 1
        full = readers.Snapshot(target, read.now, read.entries, read.desired, read.manifest_problem,
                                read_at=read.read_at)
        full.build_all()
        warm_app = make_app(target, manifests=files, max_age=3600, max_stale=3600)
        monkeypatch.setattr(warm_app.ctx.cache, "get", lambda full=full: full)
        assert cold == Client(warm_app).get("/schedules", query_string=args).get_data(as_text=True), args
    assert lazy >= 9
    # the rows are of every kind the filters offer
    assert {state for row in full.rows for state in row["states"]} == set(views.STATES)
    assert {row["sync"] for row in full.rows} == set(views.SYNC_WORDS)
    assert any(row["lookalike"] for row in full.rows) and any(row["dispatch_lag_seconds"] for row in full.rows)


def test_an_action_on_a_snapshot_not_yet_built_updates_its_row_and_keeps_its_age(target, manifests):
    files = ManifestFiles([manifests], lambda paths: load(paths, allow_empty=True))
    app = make_app(target, manifests=files, token=TOKEN, max_age=3600, max_stale=3600)
    client = Client(app)
    assert "heartbeat" in client.get("/schedules?per_page=2&page=2").get_data(as_text=True)
    read = app.ctx.cache.get()
    assert not read.complete
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/actions/pause", data={"name": "heartbeat"}, headers=bearer).status_code == 200
    after = app.ctx.cache.get()
    assert after is not read and after.read_at == read.read_at and after.now == read.now
    assert [row["name"] for row in _rows(client, "/schedules?state=paused")] == ["heartbeat"]
    assert after.complete and after.entries.keys() == read.entries.keys()
