"""Operating schedules end to end: a real beat and worker, the installed redbeat-apply reading what they did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_beat_worker import save_every_second

from redbeat import RedBeatSchedulerEntry

BIN = Path(sys.executable).parent / "redbeat-apply"


def redbeat_apply(redis_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("REDBEAT_", "GITHUB_", "GITLAB_"))},
           **(env or {})}
    return subprocess.run([str(BIN), *args, "--redis-url", redis_url], capture_output=True, text=True, timeout=60,
                          env=env)


@pytest.mark.exclusive
@pytest.mark.slow
@pytest.mark.timeout(60)
def test_history_and_status_show_every_run_the_worker_executed(celery_rig, writer_app, fresh_redis):
    leading_beat(celery_rig)
    save_every_second(writer_app)
    time.sleep(4)
    entry = RedBeatSchedulerEntry.from_key("redbeat:tick", app=writer_app)
    entry.enabled = False
    entry.save()  # no further runs; beat's next tick records the last run's outcome
    time.sleep(2)
    executed = len(celery_rig.runs())

    shown = redbeat_apply(fresh_redis.url, "history", "tick", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    runs = json.loads(shown.stdout)["runs"]
    assert executed >= 3 and [run["state"] for run in runs] == ["sent"] * executed
    assert len({run["slot"] for run in runs}) == executed  # one run per slot
    assert all(0 <= run["lag_seconds"] < 1.5 for run in runs), runs

    text = redbeat_apply(fresh_redis.url, "history", "--since", "5m")
    lines = text.stdout.splitlines()
    assert text.returncode == 0 and lines[0].split()[:3] == ["entry", "slot", "(UTC)"], text.stdout
    assert [line.split()[5] for line in lines[1:]] == ["sent"] * executed, text.stdout
    status = redbeat_apply(fresh_redis.url, "status", "--output", "json")
    [row] = json.loads(status.stdout)["entries"]
    assert [run["state"] for run in row["recent_runs"]] == ["sent"] * min(3, executed)
    assert 0 <= row["dispatch_lag_seconds"] < 1.5

    unknown = redbeat_apply(fresh_redis.url, "history", "no-such-entry")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.strip() == "redbeat-apply: error: no entry named no-such-entry under redbeat:*"


MANIFEST = """\
schedules:
  - name: pulse
    task: e2e.record
    every: 1s
    args: [pulse]
"""


def applied(redis_url: str, directory: Path, manifest: str = MANIFEST, *args: str) -> Path:
    """``directory`` holding ``manifest`` as jobs.yaml, applied with ``args``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "jobs.yaml").write_text(manifest)
    done = redbeat_apply(redis_url, str(directory), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return directory


#: Seconds the pause test pauses for: long enough for an apply and a plan to see it on a loaded 2-core machine
#: (three redbeat-apply processes start meanwhile), short enough to watch it end by itself.
PAUSE = 12


def leading_beat(celery_rig) -> None:
    """A worker and one beat, once the beat leads."""
    celery_rig.worker()
    celery_rig.wait_for(celery_rig.beat(), "this instance leads", timeout=20)


@pytest.mark.exclusive
@pytest.mark.slow
@pytest.mark.timeout(90)
def test_pause_holds_through_an_apply_and_ends_by_itself(celery_rig, fresh_redis, tmp_path):
    manifests = applied(fresh_redis.url, tmp_path / "schedules")
    leading_beat(celery_rig)
    time.sleep(2)
    env = {"USER": "alice"}
    asked_at = time.time()  # the pause ends PAUSE s after the command's own clock, so after asked_at + PAUSE
    paused = redbeat_apply(fresh_redis.url, "pause", "pulse", "--until", f"{PAUSE}s", "--note", "incident 4711",
                           env=env)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith("pulse: paused by alice@") and paused.stdout.rstrip().endswith(": incident 4711")
    paused_at = time.time()
    time.sleep(1.2)  # a run already sent before the pause may still execute
    held_from = time.time()

    # an apply (and the watch mode's resync, which is the same apply) keeps the pause: no drift, no change
    again = redbeat_apply(fresh_redis.url, str(manifests), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "note: pulse is paused by alice@" in again.stdout and ": incident 4711; kept (not drift)" in again.stdout
    planned = json.loads(redbeat_apply(fresh_redis.url, "plan", str(manifests), "--output", "json").stdout)
    assert list(planned["paused"]) == ["pulse"] and planned["paused"]["pulse"].endswith(": incident 4711")
    status = json.loads(redbeat_apply(fresh_redis.url, "status", "--output", "json").stdout)["entries"]
    assert status[0]["state"] == "paused"
    assert status[0]["paused"].startswith("paused by alice@") and status[0]["paused"].endswith(": incident 4711")

    time.sleep(max(0.0, asked_at + PAUSE - time.time()))
    held = [run for run in celery_rig.runs() if held_from <= float(run["at"]) < asked_at + PAUSE]
    assert held == []
    time.sleep(3)
    assert [run for run in celery_rig.runs() if float(run["at"]) >= paused_at + PAUSE], "did not resume by itself"


def test_bad_operator_requests_are_one_line_errors_that_write_nothing(fresh_redis, tmp_path):
    applied(fresh_redis.url, tmp_path / "schedules")
    client = fresh_redis.client()
    before = {key: client.dump(key) for key in client.keys("*")}
    cases = {
        ("pause", "nope"): "no entry named nope under redbeat:*; nothing was written",
        ("pause", "pulse", "--until", "2020-01-01T00:00"): "--until is in the past; nothing was written",
        ("pause", "pulse", "--until", "someday"): "'someday' is neither a time",
        ("resume", "pulse"): "pulse is not paused; nothing was written",
        ("resume", "<script>\x07"): "no entry named <script>\\x07 under redbeat:*; nothing was written",
        ("history", "[nope]"): "no entry named [nope] under redbeat:*",
    }
    for args, message in cases.items():
        done = redbeat_apply(fresh_redis.url, *args)
        assert done.returncode == 1 and done.stdout == "", (args, done.stdout)
        assert done.stderr.count("\n") == 1 and message in done.stderr, (args, done.stderr)
    assert {key: client.dump(key) for key in client.keys("*")} == before


def test_audit_shows_each_apply_and_operator_action_with_its_actor_and_revision(fresh_redis, tmp_path):
    repo = tmp_path / "repo"
    manifests = repo / "schedules"
    manifests.mkdir(parents=True)
    (manifests / "jobs.yaml").write_text(MANIFEST)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "jobs"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    ci = {"GITHUB_ACTOR": "octocat", "GITHUB_REPOSITORY": "acme/schedules", "GITHUB_SHA": head}

    assert redbeat_apply(fresh_redis.url, str(manifests), env=ci).returncode == 0
    assert redbeat_apply(fresh_redis.url, str(manifests), env=ci).returncode == 0  # no change: not recorded
    (manifests / "jobs.yaml").write_text(MANIFEST.replace("every: 1s", "every: 2s"))  # uncommitted edit
    assert redbeat_apply(fresh_redis.url, str(manifests), env={"USER": "bob"}).returncode == 0
    assert redbeat_apply(fresh_redis.url, "pause", "pulse", "--note", "incident 4711", env={"USER": "alice"}
                         ).returncode == 0
    assert redbeat_apply(fresh_redis.url, "resume", "pulse", env={"USER": "alice"}).returncode == 0

    shown = redbeat_apply(fresh_redis.url, "audit", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    records = json.loads(shown.stdout)["records"]
    assert [(r["action"], r["actor"].split("@")[0]) for r in records] == [
        ("apply", "octocat (GitHub Actions acme/schedules)"), ("apply", "bob"), ("pause", "alice"),
        ("resume", "alice")]
    assert records[0]["revision"] == head and records[0]["counts"] == {"create": 1}
    assert records[1]["revision"].startswith("sha256:") and records[1]["counts"] == {"update": 1}
    assert records[2]["entry"] == "pulse" and records[2]["detail"].endswith(": incident 4711")
    text = redbeat_apply(fresh_redis.url, "audit", "--limit", "2").stdout.splitlines()
    assert len(text) == 3 and text[0].split()[:4] == ["at", "(UTC)", "action", "actor"]
    assert text[1].split()[2:4] == ["pause", records[2]["actor"]] and text[2].split()[2] == "resume"


def celery_redbeat(tmp_path: Path, redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``celery -A proj redbeat ...`` with an app whose config names the Redis URL and a custom prefix."""
    (tmp_path / "proj.py").write_text(
        "import os\nfrom celery import Celery\n\napp = Celery('proj')\n"
        "app.conf.update(redbeat_redis_url=os.environ['PROJ_REDIS_URL'], redbeat_key_prefix='ops:',"
        " broker_url='memory://')\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("REDBEAT_", "CELERY_"))},
           "PROJ_REDIS_URL": redis_url, "PYTHONPATH": str(tmp_path), "USER": "carol"}
    return subprocess.run([sys.executable, "-m", "celery", "-A", "proj", "redbeat", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=tmp_path)


def test_celery_redbeat_commands_take_redis_and_prefix_from_the_app(fresh_redis, tmp_path):
    applied(fresh_redis.url, tmp_path / "schedules", MANIFEST, "--key-prefix", "ops:")

    paused = celery_redbeat(tmp_path, fresh_redis.url, "pause", "pulse", "--until", "1h", "--note", "db upgrade")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith("pulse: paused by carol@") and paused.stdout.rstrip().endswith(": db upgrade")
    assert fresh_redis.client().hexists("ops:pulse", "pause")
    rows = json.loads(celery_redbeat(tmp_path, fresh_redis.url, "status", "-o", "json").stdout)["entries"]
    assert [(row["name"], row["state"]) for row in rows] == [("pulse", "paused")]
    assert "paused by carol@" in celery_redbeat(tmp_path, fresh_redis.url, "status").stdout
    assert celery_redbeat(tmp_path, fresh_redis.url, "resume", "pulse").returncode == 0
    assert not fresh_redis.client().hexists("ops:pulse", "pause")
    shown = celery_redbeat(tmp_path, fresh_redis.url, "history", "-o", "json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["runs"] == []
    unknown = celery_redbeat(tmp_path, fresh_redis.url, "pause", "nope")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr == "celery redbeat: error: no entry named nope under ops:*; nothing was written\n"
    audit = json.loads(redbeat_apply(fresh_redis.url, "audit", "-o", "json", "--key-prefix", "ops:").stdout)
    assert [(r["action"], r["actor"].split("@")[0]) for r in audit["records"]][-2:] == [("pause", "carol"),
                                                                                        ("resume", "carol")]


HOURLY = """\
schedules:
  - name: rebuild
    task: e2e.record
    every: 1h
    args: [rebuild]
"""


@pytest.mark.exclusive
@pytest.mark.slow
@pytest.mark.timeout(90)
def test_trigger_runs_once_with_two_beats_and_waits_for_a_beat_when_none_runs(celery_rig, fresh_redis, tmp_path):
    applied(fresh_redis.url, tmp_path / "schedules", HOURLY)
    score = fresh_redis.client().zscore("redbeat::schedule", "redbeat:rebuild")

    # no beat yet: said so, and the request waits
    pending = redbeat_apply(fresh_redis.url, "trigger", "rebuild", "--note", "hotfix", env={"USER": "dave"})
    assert pending.returncode == 0, pending.stderr
    assert "no beat has ticked" in pending.stdout and "pending for 10 minutes" in pending.stdout
    celery_rig.worker()
    beats = [celery_rig.beat("beat-1"), celery_rig.beat("beat-2")]
    for beat in beats:
        celery_rig.wait_for(beat, "beat: Starting...", timeout=20)
    wait = time.time() + 10
    while time.time() < wait and not celery_rig.runs():
        time.sleep(0.2)
    time.sleep(2)
    assert [run["label"] for run in celery_rig.runs()] == ["rebuild"]

    again = redbeat_apply(fresh_redis.url, "trigger", "rebuild", env={"USER": "dave"})
    assert "the leading beat sends it once" in again.stdout, again.stdout
    time.sleep(3)
    assert [run["label"] for run in celery_rig.runs()] == ["rebuild", "rebuild"]
    sends = sum(beat.output().count("Sending due task rebuild") for beat in beats)
    assert sends == 2
    assert fresh_redis.client().zscore("redbeat::schedule", "redbeat:rebuild") == score  # phase kept
    runs = json.loads(redbeat_apply(fresh_redis.url, "history", "rebuild", "-o", "json").stdout)["runs"]
    assert [run["state"] for run in runs] == ["sent", "sent"]
    assert runs[0]["note"].startswith("triggered by dave@") and runs[0]["note"].endswith(": hotfix")
    assert runs[1]["note"].startswith("triggered by dave@") and ": " not in runs[1]["note"]
    audit = json.loads(redbeat_apply(fresh_redis.url, "audit", "-o", "json").stdout)["records"]
    assert [r["action"] for r in audit] == ["apply", "trigger", "trigger"]
