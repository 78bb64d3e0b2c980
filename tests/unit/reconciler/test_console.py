"""The console's pure parts: URL query, words, timeline picture, sessions and CSRF, upcoming runs, sync state."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from reconciler.console import query as q
from reconciler.console import security, timeline, upcoming, views, words
from reconciler.core.errors import Location, TokenError
from reconciler.core.model import DesiredEntry
from reconciler.sync.state import ActualEntry

UTC = timezone.utc
NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def row(name: str, **fields: object) -> dict[str, object]:
    return {"name": name, "owner": "a", "task": "t", "states": ("enabled",), "sync": None, **fields}


# --- query --------------------------------------------------------------------------------------

def parse(**args: str) -> q.Query:
    return q.parse(args, states=views.STATES, syncs=tuple(views.SYNC_WORDS))


def test_bad_url_values_fall_back_to_defaults_with_a_note() -> None:
    query = parse(sort="drop table", page="-3", per_page="99999", state="<b>", window="1y", q="x" * 500 + "\x1b")
    assert (query.sort, query.page, query.per_page, query.state, query.window) == ("name", 1, 500, "", "24h")
    assert len(query.q) == q.TEXT_MAX and "\x1b" not in query.q
    assert {note.split(":")[0] for note in query.notes} == {"sort", "page", "per_page", "state", "window"}


def test_filters_match_text_owner_state_and_sync() -> None:
    rows = [row("nightly-report", owner="team-a", words="At 02:30"), row("heartbeat", owner="team-b", task="ping",
            states=("paused",), sync="drifted")]
    assert [r["name"] for r in q.select(rows, parse(q="NIGHTLY"))] == ["nightly-report"]
    assert [r["name"] for r in q.select(rows, parse(q="02:30"))] == ["nightly-report"]
    assert [r["name"] for r in q.select(rows, parse(owner="team-b"))] == ["heartbeat"]
    assert [r["name"] for r in q.select(rows, parse(state="paused"))] == ["heartbeat"]
    assert [r["name"] for r in q.select(rows, parse(sync="drifted"))] == ["heartbeat"]


def test_sorting_puts_unknown_values_last_in_either_order() -> None:
    rows = [row("a", next_run_at=3.0), row("b", next_run_at=None), row("c", next_run_at=1.0)]
    assert [r["name"] for r in q.select(rows, parse(sort="next"))] == ["c", "a", "b"]
    assert [r["name"] for r in q.select(rows, parse(sort="next", order="desc"))] == ["a", "c", "b"]


def test_pages_and_links() -> None:
    rows = [row(f"e{i:03d}") for i in range(120)]
    page = q.paginate(rows, parse(page="3", per_page="50"))
    assert (page.number, page.pages, len(page.items), page.first_index) == (3, 3, 20, 101)
    assert q.paginate(rows, parse(page="9")).number == 3  # past the end: the last page
    query = parse(q="a&b", sort="next")
    assert query.link(page=2) == "?q=a%26b&sort=next&page=2"
    assert query.sort_link("next") == "?q=a%26b&sort=next&order=desc"


# --- words --------------------------------------------------------------------------------------

def test_schedules_in_words() -> None:
    assert words.schedule_words({"cron": "30 2 * * 1-5", "timezone": "Europe/Berlin"}) == (
        "At 02:30, Monday through Friday, Europe/Berlin")
    assert words.schedule_words({"cron": "0 0 * * *"}) == f"At 00:00, {words.BEAT_ZONE}"
    assert words.schedule_words({"every": "30s"}) == "Every 30s"
    assert words.schedule_words({"at": "2026-12-03T14:00:00+00:00"}).startswith("Once, at 2026-12-03")
    assert words.cron_words("not a cron") == "cron not a cron"


def test_relative_times_and_durations() -> None:
    assert words.relative(NOW + timedelta(minutes=5), NOW) == "in 5 min"
    assert words.relative(NOW - timedelta(hours=3), NOW) == "3.0 h ago"
    assert words.relative(None, NOW) == "" and words.relative(NOW, NOW) == "now"
    assert (words.duration(None), words.duration(0.012), words.duration(4.2)) == ("-", "12 ms", "4.2 s")


# --- timeline -----------------------------------------------------------------------------------

def test_histogram_counts_runs_and_spreads_dense_entries() -> None:
    start, end = 0.0, 3600.0
    counts = timeline.histogram([upcoming.Runs([0.0, 60.0, 61.0]), upcoming.Runs([0.0, 1.0, 2.0], dense=True)],
                                start, end, 60)
    assert counts.sparse[:3] == [1.0, 2.0, 0.0]
    assert counts.dense[0] == pytest.approx(60) and counts.dense[59] == pytest.approx(60)


def test_three_hundred_jobs_at_midnight_are_a_collision_and_the_busiest_minute() -> None:
    midnight = 86400.0
    named = [(f"job-{i}", upcoming.Runs([midnight])) for i in range(300)]
    named += [(f"hourly-{i}", upcoming.Runs([3600.0 * h + 60 * i for h in range(24)])) for i in range(20)]
    counts = timeline.histogram([r for _, r in named], 0.0, 2 * 86400.0, 288)
    assert 144 in timeline.collisions(counts.sparse) and len(timeline.collisions(counts.sparse)) == 1
    [top, *_] = timeline.busiest(named)
    assert (top.at, top.count, len(top.names)) == (midnight, 300, 3)


def test_the_picture_escapes_names_and_is_valid_svg_without_script_or_style() -> None:
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    lanes = [timeline.Lane(evil, upcoming.Runs([10.0, 20.0])), timeline.Lane("dense & fast", upcoming.Runs(
        [0.0, 1.0], dense=True))]
    svg = str(timeline.render(timeline.Histogram([1.0, 0.0, 5.0], [0.0, 2.0, 2.0]), lanes, 0.0, 3600.0))
    root = ET.fromstring(svg)  # well-formed: every name escaped
    assert root.tag.endswith("svg")
    assert "<script" not in svg and "<img" not in svg and "style=" not in svg
    texts = [el.text for el in root.iter() if el.tag.endswith("title")]
    assert evil in texts


# --- security -----------------------------------------------------------------------------------

TOKEN = "t" * 20


def test_a_session_cookie_round_trips_and_cannot_be_forged_or_kept_forever() -> None:
    cookie = security.new_cookie(TOKEN, "alice <script>", 1000.0)
    session = security.read_cookie(TOKEN, cookie, 1000.0 + 60)
    assert session is not None and session.name == "alice <script>"
    assert security.read_cookie(TOKEN, cookie, 1000.0 + security.SESSION_SECONDS + 1) is None
    assert security.read_cookie("u" * 20, cookie, 1001.0) is None
    session_id, name, issued, mac = cookie.split(".")
    assert security.read_cookie(TOKEN, ".".join((session_id, "Ym9i", issued, mac)), 1001.0) is None
    for junk in ("", "a.b", "....", "x.y.z.w", "a.!!!.1." + mac):
        assert security.read_cookie(TOKEN, junk, 1001.0) is None


def test_csrf_tokens_belong_to_their_session() -> None:
    one = security.read_cookie(TOKEN, security.new_cookie(TOKEN, "a", 5.0), 5.0)
    two = security.read_cookie(TOKEN, security.new_cookie(TOKEN, "a", 5.0), 5.0)
    assert one and two
    assert security.csrf_matches(TOKEN, one, security.csrf_token(TOKEN, one))
    assert not security.csrf_matches(TOKEN, two, security.csrf_token(TOKEN, one))
    assert not security.csrf_matches(TOKEN, one, None)


def test_tokens_are_loaded_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "token"
    good.write_text(TOKEN + "\n")
    assert security.load_token(good, {}) == TOKEN
    assert security.load_token(None, {security.TOKEN_ENV: TOKEN}) == TOKEN
    assert security.load_token(None, {}) is None
    for content, words_ in ((b"short", "at least 16"), (b"\xff" * 20, "not UTF-8"), (b"a b" * 10, "without spaces")):
        good.write_bytes(content)
        with pytest.raises(TokenError, match=words_):
            security.load_token(good, {})
    with pytest.raises(TokenError, match="missing"):
        security.load_token(tmp_path / "missing", {})
    assert security.clean_name("\x1b[31m" + "x" * 100) == "[31m" + "x" * 60 and security.clean_name("") == "admin"


def test_same_origin() -> None:
    assert security.same_origin(None, "127.0.0.1:9186", "http")
    assert security.same_origin("http://127.0.0.1:9186", "127.0.0.1:9186", "http")
    assert not security.same_origin("http://evil.example", "127.0.0.1:9186", "http")


# --- upcoming runs ------------------------------------------------------------------------------

def interval(every: float) -> dict[str, object]:
    return {"name": "x", "task": "t", "schedule": {"__type__": "interval", "every": every, "relative": False}}


def cron(minute: str, hour: str) -> dict[str, object]:
    return {"name": "x", "task": "t", "schedule": {"__type__": "crontab", "minute": minute, "hour": hour,
                                                    "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}}


def test_window_runs_of_intervals_crons_and_dense_entries() -> None:
    calendars = upcoming.Calendars(NOW, NOW + timedelta(days=1), 288)
    hourly = upcoming.window_runs(NOW + timedelta(minutes=30), interval(3600), None, "a", calendars)
    assert len(hourly.times) == 24 and not hourly.dense
    daily = upcoming.window_runs(NOW + timedelta(hours=14), cron("0", "2"), None, "b", calendars)
    assert daily.times == [(NOW + timedelta(hours=14)).timestamp()]
    fast = upcoming.window_runs(NOW, interval(1), None, "c", calendars)
    assert fast.dense and fast.rate == pytest.approx(1.0)
    paused = upcoming.window_runs(NOW + timedelta(minutes=30), interval(3600), None, "d", calendars,
                                  not_before=(NOW + timedelta(hours=10)).timestamp())
    assert len(paused.times) == 14


def test_entries_with_one_schedule_share_its_calendar() -> None:
    calendars = upcoming.Calendars(NOW, NOW + timedelta(days=7), 336)
    for name in ("a", "b", "c"):
        upcoming.window_runs(NOW + timedelta(hours=12), cron("0", "0"), {"timezone": "Europe/Berlin"}, name,
                             calendars)
    assert len(calendars._slots) == 1


def test_next_runs_follow_the_zone_and_its_clock_change() -> None:
    definition = json.dumps(cron("30", "2"))
    runs = upcoming.next_runs(definition, {"timezone": "Europe/Berlin"}, None, "x", NOW, count=3)
    assert [run.strftime("%m-%d %H:%M %Z") for run in runs] == ["03-29 03:00 CEST", "03-30 02:30 CEST",
                                                                 "03-31 02:30 CEST"]


# --- sync state ---------------------------------------------------------------------------------

def desired(**definition: object) -> DesiredEntry:
    base = {"name": "x", "task": "t", "args": [], "kwargs": {}, "options": {},
            "schedule": {"__type__": "interval", "every": 60.0, "relative": False}, "enabled": True}
    return DesiredEntry("x", {**base, **definition}, None, False, Location(Path("a.yaml"), 3, 5, "name"))


def actual(definition: dict[str, object] | None) -> ActualEntry:
    return ActualEntry("x", None if definition is None else json.dumps(definition), None, None, 1.0, "o", None)


def test_sync_states() -> None:
    want = desired()
    assert views.sync_state(want, actual(want.definition)) == views.IN_SYNC
    assert views.sync_state(want, actual({**want.definition, "task": "other"})) == views.DRIFTED
    assert views.sync_state(want, None) == views.MISSING
    assert views.sync_state(None, actual(want.definition)) == views.NOT_IN_GIT
    assert views.sync_state(None, None) is None


# --- the hostile user's pass ----------------------------------------------------------------------

def test_text_search_ignores_unicode_normalisation_and_case() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    rows = [row(composed), row(decomposed), row("CAFÉ-report"), row("cafe")]
    for needle in (composed, decomposed, "CAFÉ"):
        found = {r["name"] for r in q.select(rows, parse(q=needle))}
        assert found == {composed, decomposed, "CAFÉ-report"}, needle
    # the precomputed search text is what matches, and a needle cannot span two fields
    rows = [views.schedule_row({"name": "nightly", "state": "active"}, None, protected=False, sync=None, now=NOW)]
    assert rows[0][q.SEARCH_FIELD] == "nightly"
    assert not q.select([row("ab", task="cd")], parse(q="bc"))


def test_look_alike_names_are_marked_and_spelled_with_escapes() -> None:
    rows = [row("caf\u00e9"), row("cafe\u0301"), row("Nightly"), row("nightly"), row("other")]
    views.mark_lookalikes(rows)
    assert [r["lookalike"] for r in rows] == [True, True, True, True, False]
    assert views.escaped_name("cafe\u0301") == "cafe\\u0301"
    assert views.escaped_name("caf\u00e9") == "caf\\xe9"
    assert views.escaped_name("plain-name") is None


def test_names_with_invisible_or_direction_changing_characters_are_marked() -> None:
    for name in ("rtl \u202eevil\u202c name", "zero\u200bwidth", "soft\u00adhyphen", "\u2066isolate\u2069"):
        assert views.hidden_characters(name), name
        assert views.schedule_row({"name": name, "state": "active"}, None, protected=False, sync=None,
                                  now=NOW)["hidden"]
    for name in ("caf\u00e9", "cafe\u0301", "日本語のジョブ", "emoji 🔥", "a&b <c>"):
        assert not views.hidden_characters(name), name


def test_compact_times_in_the_entry_zone() -> None:
    at = datetime(2026, 12, 3, 23, 0, tzinfo=UTC)
    now = datetime(2026, 12, 3, 14, 46, 7, tzinfo=UTC)
    assert words.compact_time(at, "Europe/Berlin", now) == "Dec 4, 00:00 CET"  # the next day there
    assert words.compact_time(at, "UTC", now) == "23:00 UTC"  # today: the time alone
    assert words.compact_time(at, None, now) == "23:00 UTC"
    assert words.compact_time(at + timedelta(seconds=5), "UTC", now) == "23:00:05 UTC"  # an every-second entry
    assert words.compact_time(at + timedelta(days=60), "UTC", now) == "Feb 1 2027, 23:00 UTC"
    assert words.compact_time(at, "Not/AZone<script>", now) == "23:00 UTC"  # an unknown zone: UTC, no error
    assert words.compact_time(datetime(2026, 7, 1, 12, tzinfo=UTC), "Europe/Berlin", now) == "Jul 1, 14:00 CEST"
    assert words.compact_time(None, "UTC", now) == ""


def test_a_token_file_readable_by_others_is_warned_about(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("abcdefghijklmnopqrstuvwxyz\n")
    token_file.chmod(0o600)
    assert security.token_file_warnings(token_file) == []
    token_file.chmod(0o644)
    [warning] = security.token_file_warnings(token_file)
    assert str(token_file) in warning and "mode 644" in warning and "chmod 600" in warning
    assert security.token_file_warnings(tmp_path / "missing") == []  # load_token says why it is unusable


def test_exposure_is_warned_about_for_the_console_command_and_the_sidecar_alike(tmp_path) -> None:
    from reconciler.console.server import exposure_warnings

    token_file = tmp_path / "token"
    token_file.write_text("abcdefghijklmnopqrstuvwxyz0123\n")
    token_file.chmod(0o600)
    assert exposure_warnings("127.0.0.1", 8080, True, token_file) == []
    assert exposure_warnings("localhost", 8080, False, None) == []
    [plain] = exposure_warnings("0.0.0.0", 8080, False, None)
    assert plain.startswith("--listen 0.0.0.0:8080 is not loopback") and "unencrypted" not in plain
    token_file.chmod(0o640)
    exposed, readable = exposure_warnings("10.0.0.7", 8080, True, token_file)
    assert "unencrypted (plain HTTP)" in exposed and "readable by other users (mode 640)" in readable
