"""Every shell command in docs/operating.md, run as written against a real redis-server with real history."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.beat import current, make_app, recording_scheduler_class

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operating.md"
BIN_DIR = Path(sys.executable).parent
MANIFEST = """\
schedules:
  - name: nightly-report
    task: reports.nightly
    cron: "30 2 * * *"
    catch_up: skip
"""


def doc_commands() -> list[tuple[str, str]]:
    """(command, its trailing comment) of each ``redbeat-apply`` line in the doc's ``sh`` blocks, in order."""
    commands, in_sh = [], False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            in_sh = line.strip() == "```sh"
            continue
        if in_sh and line.startswith(("redbeat-apply ", "celery -A proj redbeat ")):
            command, _, comment = line.partition("  #")
            commands.append((command.strip(), comment.strip()))
    return commands


def test_the_doc_shows_each_operating_command():
    shown = {shlex.split(command)[1] for command, _ in doc_commands() if command.startswith("redbeat-apply")}
    assert shown == {"history", "status", "trigger", "pause", "resume", "audit"}
    in_celery = {shlex.split(command)[4] for command, _ in doc_commands() if command.startswith("celery")}
    assert in_celery == {"history", "status", "trigger", "pause", "resume"}


@pytest.mark.slow
def test_every_command_in_the_doc_runs_as_written(fresh_redis, tmp_path):
    manifests = tmp_path / "schedules"
    manifests.mkdir()
    (manifests / "jobs.yaml").write_text(MANIFEST)
    # redbeat-apply and celery of this venv first on PATH
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("REDBEAT_", "GITHUB_", "GITLAB_"))},
           "REDBEAT_REDIS_URL": fresh_redis.url, "USER": "alice", "PATH": f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}"}
    (tmp_path / "proj.py").write_text("import os\nfrom celery import Celery\n\napp = Celery('proj')\n"
                                      "app.conf.redbeat_redis_url = os.environ['REDBEAT_REDIS_URL']\n")
    env["PYTHONPATH"] = str(tmp_path)
    applied = subprocess.run(["redbeat-apply", str(manifests)], env=env, capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    # a run in the history: beat ticks once at the entry's slot
    slot = datetime.now(timezone.utc).replace(hour=2, minute=30, second=0, microsecond=0)
    app = make_app(fresh_redis.url, now=slot + timedelta(seconds=1 if slot < datetime.now(timezone.utc) else -86399),
                   result_expires=None)  # no celery.backend_cleanup entry: only the doc's entry runs
    with current(app):
        fresh_redis.client().zadd("redbeat::schedule", {"redbeat:nightly-report": 0})
        scheduler = recording_scheduler_class()(app=app)
        scheduler.tick()
        scheduler.close()
        assert scheduler.sent_names == ["nightly-report"]
    for command, comment in doc_commands():
        done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 0, f"{command}: {done.stderr}"
        assert "Traceback" not in done.stderr
        if command.startswith(("redbeat-apply history nightly-report --since 24h",
                               "celery -A proj redbeat history nightly-report --since 24h")):
            assert re.search(r"nightly-report .* sent |\"state\": \"sent\"", done.stdout), done.stdout
        if " trigger " in command:  # no beat runs here: one tick takes the request, as the leader would
            assert "run requested" in done.stdout
            live = make_app(fresh_redis.url, result_expires=None)
            with current(live):
                beat = recording_scheduler_class()(app=live)
                beat.tick()
                beat.close()
            assert beat.sent_names == ["nightly-report"]
        if "paused by alice" in comment:
            assert "paused by alice@" in done.stdout and "incident 4711" in done.stdout, done.stdout
