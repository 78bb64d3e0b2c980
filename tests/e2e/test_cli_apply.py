"""The installed redbeat-apply, run as CI/CD runs it, against a real redis-server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.redis_proc import RedisProcess, commandstats, dirty_count, free_port, write_calls

BIN = Path(sys.executable).parent / "redbeat-apply"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_") and k != "NO_COLOR"}
    full_env.update(env or {})
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120, env=full_env)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def schedules(tmp_path) -> Path:
    directory = tmp_path / "schedules"
    write(directory, "jobs.yaml", """\
        schedules:
          - name: heartbeat
            task: ops.tasks.ping
            every: 30s
          - name: nightly
            task: reports.tasks.nightly
            cron: "30 2 * * mon-fri"
            timezone: Europe/Berlin
            kwargs: {format: pdf, api_token: hunter2}
    """)
    return directory


def test_dry_run_shows_the_diff_and_writes_nothing(schedules, redis_url, redis_client):
    result = run("--redis-url", redis_url, "--dry-run", str(schedules))
    assert result.returncode == 0, result.stderr
    assert "+ create   heartbeat" in result.stdout
    assert 'every: "30s"' in result.stdout
    assert "Plan: 2 to create, 0 to update, 0 to delete, 0 unchanged." in result.stdout
    assert "Dry run: nothing was written." in result.stdout
    assert "hunter2" not in result.stdout and "kwargs.api_token: ***" in result.stdout
    assert write_calls(commandstats(redis_client)) == {}
    assert run("--redis-url", redis_url, "--dry-run", "--detailed-exitcode", str(schedules)).returncode == 2


def test_apply_then_no_changes_with_zero_writes(schedules, redis_url, redis_client):
    first = run("--redis-url", redis_url, "--detailed-exitcode", str(schedules))
    assert first.returncode == 2, first.stderr
    assert "Applied 2 changes to redbeat:* for owner 'default'." in first.stdout
    assert redis_client.exists("redbeat:heartbeat", "redbeat:nightly") == 2
    redis_client.config_resetstat()
    second = run("--redis-url", redis_url, "--detailed-exitcode", str(schedules))
    assert second.returncode == 0, second.stderr
    assert second.stdout == "No changes. 2 unchanged.\n"
    assert write_calls(commandstats(redis_client)) == {}


def test_environment_variables_choose_redis_prefix_and_owner(schedules, redis_url, redis_client):
    result = run(
        str(schedules), env={"REDBEAT_REDIS_URL": redis_url, "REDBEAT_KEY_PREFIX": "{jobs}:", "REDBEAT_OWNER": "team-a"}
    )
    assert result.returncode == 0, result.stderr
    assert redis_client.exists("{jobs}:heartbeat")
    assert redis_client.hkeys("{jobs}::owner:team-a") == ["heartbeat", "nightly"] or sorted(
        redis_client.hkeys("{jobs}::owner:team-a")
    ) == ["heartbeat", "nightly"]


def test_invalid_manifests_exit_3_and_write_nothing(tmp_path, redis_url, redis_client):
    write(tmp_path, "bad.yaml", "name: x\ntask: t\nevery: -5\n")
    result = run("--redis-url", redis_url, str(tmp_path))
    assert result.returncode == 3
    assert "bad.yaml:3" in result.stderr
    assert write_calls(commandstats(redis_client)) == {}


def test_empty_directory_is_invalid(tmp_path, redis_url):
    (tmp_path / "empty").mkdir()
    assert run("--redis-url", redis_url, str(tmp_path / "empty")).returncode == 3


@pytest.mark.parametrize("layout", ["empty-list", "empty-directory"])
def test_an_owner_deletes_all_its_entries_only_with_allow_mass_delete(
    schedules, tmp_path, redis_url, redis_client, layout
):
    assert run("--redis-url", redis_url, str(schedules)).returncode == 0
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    if layout == "empty-list":
        write(nothing, "jobs.yaml", "schedules: []\n")
    redis_client.config_resetstat()
    for args in (["--dry-run"], ["plan"], []):
        refused = run(*args, "--redis-url", redis_url, str(nothing))
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "--allow-mass-delete" in refused.stdout + refused.stderr
    assert write_calls(commandstats(redis_client)) == {}
    dry = run("--dry-run", "--allow-mass-delete", "--redis-url", redis_url, str(nothing))
    assert "Plan: 0 to create, 0 to update, 2 to delete, 0 unchanged." in dry.stdout, dry.stdout + dry.stderr
    deleted = run("--allow-mass-delete", "--redis-url", redis_url, str(nothing))
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert not redis_client.exists("redbeat:heartbeat", "redbeat:nightly")
    assert redis_client.hlen("redbeat::owner:default") == 0


def test_conflict_exits_1_names_the_entry_and_the_remedy(schedules, redis_url, redis_client):
    redis_client.hset("redbeat:heartbeat", "definition", json.dumps(
        {"name": "heartbeat", "task": "ops.tasks.ping", "args": [], "kwargs": {}, "options": {},
         "schedule": {"__type__": "interval", "every": 10.0, "relative": False}, "enabled": True}))
    redis_client.config_resetstat()
    result = run("--redis-url", redis_url, str(schedules))
    assert result.returncode == 1
    assert "! conflict heartbeat" in result.stdout
    assert "--adopt" in result.stdout
    assert "nothing was written" in result.stderr
    assert write_calls(commandstats(redis_client)) == {}
    adopted = run("--redis-url", redis_url, "--adopt", str(schedules))
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert "~ adopt    heartbeat" in adopted.stdout


def test_take_over_from_another_owner_needs_its_own_flag(schedules, redis_url, redis_client):
    assert run("--redis-url", redis_url, "--owner", "team-a", str(schedules)).returncode == 0
    adopt = run("--redis-url", redis_url, "--owner", "team-b", "--adopt", str(schedules))
    assert adopt.returncode == 1, adopt.stdout + adopt.stderr
    assert "owned by owner 'team-a'; --adopt takes only unowned entries" in adopt.stdout
    taken = run("--redis-url", redis_url, "--owner", "team-b", "--take-over", str(schedules))
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert redis_client.hlen("redbeat::owner:team-a") == 0
    assert sorted(redis_client.hkeys("redbeat::owner:team-b")) == ["heartbeat", "nightly"]


def test_markdown_and_json_outputs(schedules, redis_url, redis_client):
    run("--redis-url", redis_url, str(schedules))
    (schedules / "jobs.yaml").write_text("name: heartbeat\ntask: ops.tasks.ping\nevery: 1m\n")
    markdown = run("--redis-url", redis_url, "--dry-run", "--output", "markdown", str(schedules))
    assert markdown.returncode == 0, markdown.stderr
    out = markdown.stdout
    assert "**Plan: 0 to create, 1 to update, 1 to delete, 0 unchanged.**" in out
    assert "> **This plan deletes 1 schedule:** `nightly`" in out
    assert "| ~ | `heartbeat` | update | `every` |" in out
    assert "<details><summary>Full diff</summary>" in out and "hunter2" not in out
    document = json.loads(run("--redis-url", redis_url, "--dry-run", "--output", "json", str(schedules)).stdout)
    assert document["format_version"] == 1
    assert document["summary"] == {"create": 0, "update": 1, "delete": 1, "adopt": 0, "no-op": 0, "conflict": 0}
    assert document["changes"][0] == {
        "op": "update",
        "name": "heartbeat",
        "fields": [{"path": "every", "old": "30s", "new": "1m"}],
        "respelled": [],
        "reschedule": True,
        "drift": [],
        "reason": None,
    }
    assert document["applied"] is False and document["dry_run"] is True


def test_saved_plan_applies_once_and_a_stale_one_is_refused(schedules, redis_url, redis_client, tmp_path):
    plan_path = tmp_path / "plan.json"
    planned = run("plan", "--redis-url", redis_url, str(schedules), "--out", str(plan_path))
    assert planned.returncode == 0, planned.stderr
    assert "Saved the plan" in planned.stdout
    applied = run("apply", "--redis-url", redis_url, str(plan_path))
    assert applied.returncode == 0, applied.stderr
    assert redis_client.exists("redbeat:heartbeat")
    again = run("apply", "--redis-url", redis_url, str(plan_path))
    assert again.returncode == 1 and "stale" in again.stderr
    # a plan made against an empty Redis is stale once the entry exists: per entry, not a global serial
    (schedules / "more.yaml").write_text("name: extra\ntask: t.x\nevery: 5\n")
    run("plan", "--redis-url", redis_url, str(schedules), "--out", str(plan_path))
    redis_client.hset("redbeat:extra", "definition", "{}")
    before = dirty_count(redis_client)
    stale = run("apply", "--redis-url", redis_url, str(plan_path))
    assert stale.returncode == 1
    assert "extra's entry changed" in stale.stderr
    assert dirty_count(redis_client) == before


def test_export_then_apply_is_a_noop(schedules, redis_url, redis_client, tmp_path):
    run("--redis-url", redis_url, str(schedules))
    out = tmp_path / "exported"
    exported = run("export", "--redis-url", redis_url, str(out))
    assert exported.returncode == 0, exported.stderr
    assert (out / "default.yaml").exists()
    assert run("validate", str(out)).returncode == 0
    redis_client.config_resetstat()
    result = run("--redis-url", redis_url, str(out))
    assert result.stdout == "No changes. 2 unchanged.\n", result.stdout + result.stderr
    assert write_calls(commandstats(redis_client)) == {}


def test_export_refuses_to_overwrite_without_force(schedules, redis_url, tmp_path):
    run("--redis-url", redis_url, str(schedules))
    out = tmp_path / "exported"
    out.mkdir()
    (out / "default.yaml").write_text("# edited by hand\n", encoding="utf-8")
    refused = run("export", "--redis-url", redis_url, str(out))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"{out / 'default.yaml'} exists; pass --force to overwrite" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (out / "default.yaml").read_text(encoding="utf-8") == "# edited by hand\n"
    forced = run("export", "--force", "--redis-url", redis_url, str(out))
    assert forced.returncode == 0, forced.stderr
    assert run("validate", str(out)).returncode == 0


def test_export_all_brings_celery_redbeat_entries_under_git(redis_url, redis_client, tmp_path):
    legacy = {
        "name": "legacy",
        "task": "t.legacy",
        "args": None,
        "kwargs": {},
        "options": {},
        "schedule": {
            "__type__": "crontab",
            "minute": 0,
            "hour": [3, 9],
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
        },
        "enabled": True,
    }
    redis_client.hset("redbeat:legacy", "definition", json.dumps(legacy))
    redis_client.zadd("redbeat::schedule", {"redbeat:legacy": 1})
    out = tmp_path / "exported"
    exported = run("export", "--all", "--redis-url", redis_url, str(out))
    assert exported.returncode == 0, exported.stderr
    assert (out / "unmanaged.yaml").exists()
    adopted = run("--adopt", "--redis-url", redis_url, str(out))
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert run("--redis-url", redis_url, str(out)).stdout == "No changes. 1 unchanged.\n"


def test_status_lists_every_entry(schedules, redis_url, redis_client):
    run("--redis-url", redis_url, str(schedules))
    redis_client.hset("redbeat:heartbeat", "meta", json.dumps(
        {"last_run_at": {"__type__": "datetime", "year": 2026, "month": 1, "day": 2, "hour": 3, "minute": 4,
                         "second": 5, "microsecond": 0, "timezone": "UTC"}, "total_run_count": 7}))
    table = run("status", "--redis-url", redis_url)
    assert table.returncode == 0, table.stderr
    assert (
        "heartbeat" in table.stdout
        and "every 30s" in table.stdout
        and "cron 30 2 * * mon-fri (Europe/Berlin)" in table.stdout  # as the manifest spells it
    )
    rows = json.loads(run("status", "--redis-url", redis_url, "--output", "json").stdout)["entries"]
    assert rows[0] == {
        "name": "heartbeat",
        "owner": "default",
        "schedule": "every 30s",
        "enabled": True,
        "state": "active",
        "next_due": rows[0]["next_due"],
        "next_run": rows[0]["next_run"],
        "timezone": "UTC",
        "last_run_at": "2026-01-02T03:04:05+00:00",
        "total_run_count": 7,
        "problem": None,
        "recent_runs": [],
        "dispatch_lag_seconds": None,
        "paused": None,  # no run in the history, no pause
    }
    assert rows[0]["next_due"] is not None


def test_status_shows_extensions_and_states(tmp_path, redis_url, redis_client):
    write(
        tmp_path,
        "x.yaml",
        """\
        defaults: {task: app.tasks.job}
        schedules:
          - {name: spread, every: 1m, jitter: 20s, catch_up: skip}
          - {name: later, every: 1m, start_at: "2099-01-01T00:00:00Z"}
          - {name: paused, every: 1m, enabled: false}
          - {name: once, at: "2020-01-01T00:00:00Z"}
    """,
    )
    assert run("--redis-url", redis_url, str(tmp_path)).returncode == 0
    redis_client.zadd("redbeat::schedule", {"redbeat:once": -1})  # what beat files a past one-off under
    rows = {
        r["name"]: r for r in json.loads(run("status", "--redis-url", redis_url, "--output", "json").stdout)["entries"]
    }
    assert rows["spread"]["schedule"] == "every 1m, catch up skip, jitter 20s"
    assert {name: row["state"] for name, row in rows.items()} == {
        "spread": "active",
        "later": "dormant",
        "paused": "suspended",
        "once": "finished",
    }
    assert rows["once"]["schedule"] == "once at 2020-01-01T00:00:00+00:00"


def test_passwords_in_urls_are_never_printed(tmp_path, schedules):
    with RedisProcess(password="s3cr@t:pw") as server:
        url = f"redis://:s3cr%40t%3Apw@127.0.0.1:{server.port}/0"
        ok = run("--redis-url", url, str(schedules))
        assert ok.returncode == 0, ok.stderr
        wrong = run("--redis-url", f"redis://:wr0ng%40pw@127.0.0.1:{server.port}/0", str(schedules))
        assert wrong.returncode == 1
        for result in (ok, wrong):
            assert "s3cr" not in result.stdout + result.stderr
            assert "wr0ng" not in result.stdout + result.stderr


@pytest.mark.slow
def test_noop_apply_of_10000_schedules_issues_zero_writes(tmp_path, redis_url, redis_client):
    directory = tmp_path / "many"
    directory.mkdir()
    for f in range(20):
        lines = ["schedules:"]
        for i in range(500):
            lines += [
                f"  - name: job-{f}-{i}",
                "    task: app.tasks.work",
                f"    every: {1 + i % 90}s",
                f"    kwargs: {{shard: {i}}}",
            ]
        (directory / f"part{f}.yaml").write_text("\n".join(lines) + "\n")
    first = run("--redis-url", redis_url, str(directory))
    assert first.returncode == 0, first.stderr
    assert redis_client.zcard("redbeat::schedule") == 10_000
    redis_client.config_resetstat()
    second = run("--redis-url", redis_url, str(directory))
    assert second.stdout == "No changes. 10000 unchanged.\n"
    assert write_calls(commandstats(redis_client)) == {}


def test_ctrl_c_exits_130_with_one_line_not_a_traceback():
    """A command waiting on Redis (a server that accepts and never answers) is interrupted by SIGINT, as Ctrl-C does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()
        listener.settimeout(60)
        port = listener.getsockname()[1]
        proc = subprocess.Popen([str(BIN), "status", "--redis-url", f"redis://127.0.0.1:{port}/0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            connection, _ = listener.accept()  # connected: it now waits for a reply that never comes
            with connection:
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert (proc.returncode, out, err) == (130, "", "redbeat-apply: interrupted\n")
