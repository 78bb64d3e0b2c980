"""redbeat-apply's surfaces against a real redis-server: one CLI grammar, saved plans, status, secrets in URLs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from reconciler.cli.main import main

BIN = Path(sys.executable).parent / "redbeat-apply"
JOBS = """\
schedules:
  - {name: heartbeat, task: ops.tasks.ping, every: 30s}
  - {name: "report[daily]", task: reports.tasks.daily, cron: "0 9 * * *", timezone: Europe/Berlin,
     kwargs: {author: ann, db_password: hunter2}}
  - {name: new-year, task: ops.tasks.party, at: "2099-12-31T23:00:00+01:00"}
"""


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    directory = tmp_path / "schedules"
    directory.mkdir()
    (directory / "jobs.yaml").write_text(JOBS, encoding="utf-8")
    return directory


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("REDBEAT_") or name == "NO_COLOR":
            monkeypatch.delenv(name)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# --- one grammar: -o FORMAT everywhere, --out FILE for saved plans ----------------------


@pytest.mark.parametrize("command", ["plan", "status"])
def test_dash_o_is_the_format_in_every_command(
    command: str,
    manifests: Path,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [command, "-o", "json", "--redis-url", redis_url] + ([str(manifests)] if command == "plan" else [])
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    assert json.loads(out)["format_version"] == 1
    assert not (tmp_path / "json").exists()  # `plan -o json` once wrote a file named json


def test_validate_and_apply_form_take_dash_o(
    manifests: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert json.loads(cli(capsys, "validate", "-o", "json", str(manifests))[1])["valid"] is True
    code, out, _ = cli(capsys, "--dry-run", "-o", "markdown", "--redis-url", redis_url, str(manifests))
    assert code == 0 and out.startswith("### redbeat-apply plan for owner `default`")


def test_a_file_name_as_format_points_to_out(
    manifests: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "plan", "-o", "plan.json", "--redis-url", redis_url, str(manifests))
    assert code == 1
    assert "'plan.json' is not an output format" in err and "--out FILE" in err


def test_saved_plan_is_private_and_a_bad_path_is_one_line(
    manifests: Path, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.umask(0o022)
    saved = tmp_path / "plan.json"
    code, out, err = cli(capsys, "plan", "--out", str(saved), "--redis-url", redis_url, str(manifests))
    assert code == 0, err
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert "hunter2" in saved.read_text() and "hunter2" not in out
    code, out, err = cli(capsys, "plan", "--out", "/nonexistent/dir/p.json", "--redis-url", redis_url, str(manifests))
    assert code == 1
    assert err.strip().splitlines() == [
        "redbeat-apply: error: /nonexistent/dir/p.json: cannot write the plan file: No such file or directory"
    ]


def test_apply_file_refuses_flags_that_contradict_the_plan(
    manifests: Path,
    redis_url: str,
    redis_client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved = tmp_path / "plan.json"
    assert cli(capsys, "plan", "--out", str(saved), "--redis-url", redis_url, str(manifests))[0] == 0
    code, _, err = cli(
        capsys, "apply", str(saved), "--owner", "zzz", "--key-prefix", "other:", "--redis-url", redis_url
    )
    assert code == 1
    assert "planned for --owner 'default', but --owner is 'zzz'; nothing was written" in err
    code, _, err = cli(capsys, "apply", str(saved), "--key-prefix", "other:", "--redis-url", redis_url)
    assert code == 1 and "--key-prefix 'redbeat:', but --key-prefix is 'other:'" in err
    monkeypatch.setenv("REDBEAT_OWNER", "team-b")
    code, _, err = cli(capsys, "apply", str(saved), "--redis-url", redis_url)
    assert code == 1 and "but REDBEAT_OWNER is 'team-b'" in err
    assert redis_client.zcard("redbeat::schedule") == 0
    monkeypatch.delenv("REDBEAT_OWNER")
    code, out, err = cli(capsys, "apply", str(saved), "--owner", "default", "--redis-url", redis_url)
    assert code == 0, err
    assert redis_client.zcard("redbeat::schedule") == 3


def test_version_quiet_verbose_and_top_level_help(
    manifests: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from importlib.metadata import version

    assert cli(capsys, "--version") == (0, f"redbeat-apply {version('redbeat-gitops')}\n", "")
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    for word in ("--dry-run", "--watch", "validate", "migrate-django", "-o FORMAT", "--version", "-q, --quiet"):
        assert word in out, word
    assert cli(capsys, "validate", "-q", str(manifests)) == (0, "", "")
    assert cli(capsys, "-q", "validate", str(manifests)) == (0, "", "")
    code, out, err = cli(capsys, "-q", "--redis-url", redis_url, str(manifests))
    assert code == 0 and "Applied" not in out and "Plan: 3 to create" in out
    code, out, err = cli(capsys, "-v", "--redis-url", redis_url, str(manifests))
    assert code == 0 and "Timings: load_and_validate" in err


def test_output_into_a_closed_pipe_ends_quietly(manifests: Path, redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    big = manifests / "many.yaml"
    big.write_text("schedules:\n" + "".join(f"  - {{name: job-{i}, task: t.t, every: 5s}}\n" for i in range(3000)))
    pipeline = f"'{BIN}' --dry-run --redis-url {redis_url} {manifests} | head -1; echo \"rc=${{PIPESTATUS[0]}}\""
    result = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=120, env=env)
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1] == "rc=0"


def test_share_wording(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "--max-delete-share", "abc", "x")
    assert code == 1
    assert "argument --max-delete-share: 'abc' is not a number; give a share such as 0.5" in err
    assert "_share" not in err


# --- secrets in URLs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0?password=s3cr3t",
        "redis://:s3cr3t@127.0.0.1:1/0",
        "redis://127.0.0.1:1/0?socket_timeout=abc&password=s3cr3t",
        "redis-sentinel://:s3cr3t@127.0.0.1:1/0?service_name=m&sentinel_password=s3cr3t",
        "redis-cluster://:s3cr3t@127.0.0.1:1/0",
    ],
)
def test_url_credentials_never_reach_errors(url: str, manifests: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["status", "--redis-url", url], ["--dry-run", "--redis-url", url, str(manifests)]):
        code, out, err = cli(capsys, *args)
        assert code == 1
        assert "s3cr3t" not in out + err
        assert err.startswith("redbeat-apply: error:")


# --- status tells the truth ------------------------------------------------------------------


def test_status_shows_the_next_real_run_in_the_entry_zone(
    manifests: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "--redis-url", redis_url, str(manifests))[0] == 0
    rows = {
        r["name"]: r
        for r in json.loads(cli(capsys, "status", "--output", "json", "--redis-url", redis_url)[1])["entries"]
    }
    # The one-off at 2099 is filed under "now" until beat's first tick; its next run is 2099, in its zone.
    assert rows["new-year"]["next_run"] == "2099-12-31T22:00:00+00:00"
    assert rows["new-year"]["timezone"] == "UTC"
    assert datetime.fromisoformat(rows["new-year"]["next_due"]).year < 2099
    daily = datetime.fromisoformat(rows["report[daily]"]["next_run"])
    assert (daily.hour, daily.minute, rows["report[daily]"]["timezone"]) == (9, 0, "Europe/Berlin")
    assert daily.utcoffset() is not None and daily.utcoffset().total_seconds() in (3600, 7200)
    table = cli(capsys, "status", "--redis-url", redis_url)[1]
    assert "2099-12-31T22:00:00+00:00 (UTC)" in table
    assert f"{rows['report[daily]']['next_run']} (Europe/Berlin)" in table
    assert "report[daily]" in table  # literal, not rich markup


@pytest.mark.parametrize("score", [1e300, -1e300, float("inf"), float("-inf"), 2**63, 253402300800.0])
def test_status_survives_any_score(
    score: float, manifests: Path, redis_url: str, redis_client, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "--redis-url", redis_url, str(manifests))[0] == 0
    redis_client.zadd("redbeat::schedule", {"redbeat:heartbeat": score})
    for fmt in ("text", "json"):
        code, out, err = cli(capsys, "status", "--output", fmt, "--redis-url", redis_url)
        assert code == 0, err
        assert "new-year" in out and "report[daily]" in out


def test_status_survives_a_huge_interval(
    tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str], redis_client
) -> None:
    # validate refuses such an interval now; any other client can still write one, and status must show it.
    (tmp_path / "x.yaml").write_text(
        "schedules:\n  - {name: far, task: t.t, every: 3000d}\n  - {name: near, task: t.t, every: 1m}\n"
    )
    assert cli(capsys, "--redis-url", redis_url, str(tmp_path))[0] == 0
    definition = json.loads(redis_client.hget("redbeat:far", "definition"))
    definition["schedule"]["every"] = 3_000_000 * 86_400.0
    redis_client.hset("redbeat:far", "definition", json.dumps(definition))
    redis_client.hset(
        "redbeat:far",
        "meta",
        json.dumps(
            {
                "last_run_at": {
                    "__type__": "datetime",
                    "year": 2026,
                    "month": 1,
                    "day": 2,
                    "hour": 3,
                    "minute": 4,
                    "second": 5,
                    "microsecond": 0,
                    "timezone": "UTC",
                },
                "total_run_count": 1,
            }
        ),
    )
    code, out, err = cli(capsys, "status", "--redis-url", redis_url)
    assert code == 0, err
    assert "near" in out and "far" in out


def test_status_marks_a_corrupt_entry_in_the_table(
    manifests: Path, redis_url: str, redis_client, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "--redis-url", redis_url, str(manifests))[0] == 0
    redis_client.hset("redbeat:heartbeat", "definition", "{not json")
    redis_client.hset("redbeat:new-year", "meta", "[1,2")
    table = cli(capsys, "status", "--redis-url", redis_url)[1]
    lines = {line.split("│")[1].strip(): line for line in table.splitlines() if line.count("│") > 3}
    assert "corrupt" in lines["heartbeat"] and "[no readable definition]" in lines["heartbeat"]
    assert "corrupt" in lines["new-year"] and "meta:" in lines["new-year"]
    assert "corrupt" not in lines["report[daily]"]


def test_status_names_the_prefix_that_has_entries(
    manifests: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "--redis-url", redis_url, str(manifests))[0] == 0
    code, out, _ = cli(capsys, "status", "--key-prefix", "rebdeat:", "--redis-url", redis_url)
    assert code == 0
    assert "0 schedules under 'rebdeat:'; found 3 under 'redbeat:'" in out
    document = json.loads(
        cli(capsys, "status", "--output", "json", "--key-prefix", "rebdeat:", "--redis-url", redis_url)[1]
    )
    assert document["other_prefixes"] == {"redbeat:": 3}


def test_validate_json_counts_only_what_it_knows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text(
        "schedules:\n  - {name: a, task: t.a, every: 5s}\n  - {name: b, task: t.b, cron: '61 * * * *'}\n"
    )
    document = json.loads(cli(capsys, "validate", "-o", "json", str(tmp_path))[1])
    assert (document["valid"], document["schedules"], document["valid_schedules"]) == (False, None, 1)


@pytest.mark.parametrize("command", [[], ["plan"], ["status"], ["export"]], ids=["apply", "plan", "status", "export"])
def test_a_name_that_is_not_utf8_in_redis_is_one_line_that_names_the_key(
    capsys: pytest.CaptureFixture[str], manifests: Path, redis_url: str, tmp_path: Path, command: list[str]
) -> None:
    import redis

    raw = redis.Redis.from_url(redis_url)
    raw.sadd("redbeat::owners", b"team-\xff")  # another tool wrote it; redbeat writes only UTF-8
    raw.zadd("redbeat::schedule", {b"redbeat:bad-\xfe": 1})
    before = {key: raw.dump(key) for key in raw.keys("*")}
    target = [str(tmp_path / "out")] if command == ["export"] else [] if command == ["status"] else [str(manifests)]
    code, out, err = cli(capsys, *command, *target, "--redis-url", redis_url)
    assert code == 1 and out == "", (out, err)
    assert err.count("\n") == 1 and "not UTF-8" in err and "nothing was written" in err, err
    assert "'redbeat::owners'" in err or "'redbeat::schedule'" in err, err
    assert "Traceback" not in err
    assert {key: raw.dump(key) for key in raw.keys("*")} == before
    raw.close()
