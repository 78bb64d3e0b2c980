"""action.yml, run the way the runner runs its steps, against a real redis-server and a local GitHub API.

The inputs go through the composite step's ``env:`` mapping into ``INPUT_*``;
outputs, the job summary and PATH additions are the runner's files; the pull
request comment goes to a stand-in for api.github.com on 127.0.0.1
(``GITHUB_API_URL``, which the runner sets).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.gh_action import BAD, GOOD, FakeGitHub, Runner, base_env, make_checkout
from support.snapshot import PACKAGE_FILES, copy_tree

REPOSITORY = "acme/schedules"
PR = 7
OWNER_KEY = f"redbeat::owner:{REPOSITORY}"


@pytest.fixture
def workspace(tmp_path) -> Path:
    return make_checkout(tmp_path / "workspace")


@pytest.fixture
def github():
    with FakeGitHub(REPOSITORY, PR) as fake:
        yield fake


def runner(workspace: Path, github: FakeGitHub | None = None, event: dict | None = None) -> Runner:
    return Runner(workspace, workspace.parent / "runner", REPOSITORY,
                  event if event is not None else {"pull_request": {"number": PR}},
                  github.url if github else "http://127.0.0.1:1")


def test_validate_passes_and_summarises(workspace):
    run = runner(workspace).run_action({"mode": "validate", "install": "false"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.steps_run == ["redbeat-apply"], "install: false skips the install step"
    assert run.outputs["exitcode"] == "0"
    assert run.summary == "### redbeat-apply validate\n\nAll 2 schedules are valid.\n"


def test_validate_annotates_lines_and_writes_sarif(workspace):
    (workspace / "schedules" / "bad `x` | y.yaml").write_text(BAD)
    run = runner(workspace).run_action({"mode": "validate", "install": "false", "sarif-file": "out/redbeat.sarif"})
    assert run.returncode == 3
    assert "::error file=schedules/bad `x` | y.yaml,line=3,col=7" in run.stdout
    sarif = json.loads((workspace / "out" / "redbeat.sarif").read_text())
    (result,) = sarif["runs"][0]["results"]
    location = result["locations"][0]["physicalLocation"]
    assert location["region"]["startLine"] == 3 and location["artifactLocation"]["uri"].endswith(".yaml")
    assert run.outputs["sarif-file"] == "out/redbeat.sarif" and run.outputs["exitcode"] == "3"
    # The file name is shown literally: its backtick and pipe do not break the markdown.
    assert "- ``schedules/bad `x` \\| y.yaml:3:7`` `cron`: " in run.summary
    assert "minute 61 is out of range 0-59" in run.summary


def test_plan_posts_one_comment_and_updates_it(workspace, redis_url, redis_client, github):
    github.comments.append({"id": 1, "body": "LGTM"})
    first = runner(workspace, github).run_action({"mode": "plan", "install": "false", "redis-url": redis_url})
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.outputs["exitcode"] == "2" and first.outputs["changes"] == "true"
    assert [c[0] for c in github.calls] == ["GET", "POST"] and github.tokens == {"Bearer ghs_test_token"}
    posted = github.comments[-1]["body"]
    assert posted.startswith("<!-- redbeat-apply-plan ") and "2 to create" in posted
    assert first.summary.rstrip("\n") == posted.rstrip("\n")
    assert first.outputs["comment-url"].endswith(f"#c{github.comments[-1]['id']}")
    assert redis_client.keys("*") == [], "plan writes nothing"

    # The saved plan is what `redbeat-apply apply FILE` takes.
    plan_file = Path(first.outputs["plan-file"])
    applied = subprocess.run([str(Path(sys.executable).parent / "redbeat-apply"), "apply", str(plan_file),
                              "--redis-url", redis_url], capture_output=True, text=True, env=base_env())
    assert applied.returncode == 0, applied.stderr
    assert sorted(redis_client.hkeys(OWNER_KEY)) == ["heartbeat", "nightly-report"]

    (workspace / "schedules" / "jobs.yaml").write_text(GOOD.replace("every: 30s", "every: 1m"))
    github.calls.clear()
    second = runner(workspace, github).run_action({"mode": "plan", "install": "false", "redis-url": redis_url})
    assert second.returncode == 0 and second.outputs["exitcode"] == "2"
    assert [c[0] for c in github.calls] == ["GET", "PATCH"]
    assert len(github.comments) == 2 and github.comments[0]["body"] == "LGTM"
    assert "1 to update" in github.comments[1]["body"]


def test_plan_finds_its_comment_on_a_later_page(workspace, redis_url, github):
    other_owner = runner(workspace, github).run_action(
        {"mode": "plan", "install": "false", "redis-url": redis_url, "owner": "someone/else"})
    assert other_owner.returncode == 0
    github.comments[0:0] = [{"id": i, "body": f"comment {i}"} for i in range(1, 151)]
    mine = runner(workspace, github).run_action({"mode": "plan", "install": "false", "redis-url": redis_url})
    assert mine.returncode == 0
    created = [c for c in github.comments if c["body"].startswith("<!-- redbeat-apply-plan")]
    assert len(created) == 2, "another owner's plan is another comment"
    github.calls.clear()
    again = runner(workspace, github).run_action({"mode": "plan", "install": "false", "redis-url": redis_url})
    assert again.returncode == 0
    assert [c[0] for c in github.calls] == ["GET", "GET", "PATCH"], github.calls
    assert len(github.comments) == 152


def test_plan_on_a_fork_without_secret_or_write_token_still_summarises(workspace, github):
    github.status = 403
    run = runner(workspace, github).run_action({"mode": "plan", "install": "false", "redis-url": ""})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no plan: the redis-url input is empty" in run.summary
    assert "::warning::redbeat-apply: could not post the plan comment: GET " in run.stdout
    assert "HTTP 403" in run.stdout and run.outputs["exitcode"] == "0"


def test_plan_outside_a_pull_request_posts_nothing(workspace, redis_url, github):
    run = runner(workspace, github, event={"ref": "refs/heads/main"}).run_action(
        {"mode": "plan", "install": "false", "redis-url": redis_url})
    assert run.returncode == 0 and github.calls == []
    assert "not a pull request event" in run.stdout


def test_plan_with_a_conflict_fails_after_reporting(workspace, redis_url, redis_client, github):
    taken = runner(workspace).run_action(
        {"mode": "apply", "install": "false", "redis-url": redis_url, "owner": "someone-else"})
    assert taken.returncode == 0, taken.stdout + taken.stderr
    run = runner(workspace, github).run_action({"mode": "plan", "install": "false", "redis-url": redis_url})
    assert run.returncode == 1 and run.outputs["exitcode"] == "1"
    assert "::error::redbeat-apply plan failed (exit 1)" in run.stdout
    body = github.comments[-1]["body"]
    assert "someone-else" in body and "conflict" in body and "no plan file was written" in body
    assert sorted(redis_client.hkeys("redbeat::owner:someone-else")) == ["heartbeat", "nightly-report"]


def test_apply_writes_summarises_and_fails_on_refusal(workspace, redis_url, redis_client):
    inputs = {"mode": "apply", "install": "false", "redis-url": redis_url}
    first = runner(workspace).run_action(inputs)
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(redis_client.hkeys(OWNER_KEY)) == ["heartbeat", "nightly-report"]
    assert first.summary.startswith("## Applied schedules\n") and "2 to create" in first.summary
    second = runner(workspace).run_action(inputs)
    assert second.returncode == 0 and "No changes. 2 unchanged." in second.summary

    # Both owned entries gone from the manifests: the mass-delete valve refuses.
    (workspace / "schedules" / "jobs.yaml").write_text("name: other\ntask: t.other\nevery: 1m\n")
    refused = runner(workspace).run_action(inputs)
    assert refused.returncode == 1 and refused.outputs["exitcode"] == "1"
    assert "::error::redbeat-apply refused or failed (exit 1): " in refused.stdout
    assert sorted(redis_client.hkeys(OWNER_KEY)) == ["heartbeat", "nightly-report"], "a refusal writes nothing"


def test_apply_without_a_url_fails_clearly(workspace):
    run = runner(workspace).run_action({"mode": "apply", "install": "false"})
    assert run.returncode == 1
    assert "::error::input redis-url is empty" in run.stdout


@pytest.mark.parametrize(("given", "message"), [
    ({"mode": "destroy"}, "input mode: 'destroy' is not one of validate, plan, apply"),
    ({"mode": "plan", "comment": "yes"}, "input comment: 'yes' is not 'true' or 'false'"),
    ({"mode": "validate", "path": "  \n "}, "input path: give the manifest file(s) or directory"),
])
def test_bad_inputs_are_one_line_errors(workspace, given, message):
    run = runner(workspace).run_action({**given, "install": "false"})
    assert run.returncode == 1
    assert f"::error::redbeat-apply action: {message}" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def action_snapshot(tmp_path: Path) -> Path:
    """What ``uses: OWNER/redbeat@REF`` checks out: the repository's files at that ref."""
    return copy_tree(tmp_path / "action-checkout", ("action.yml", "action", *PACKAGE_FILES))


@pytest.mark.slow
def test_the_install_step_installs_from_the_action_checkout(tmp_path, workspace):
    """The default install: a venv under RUNNER_TEMP from the action's own files, then the run step uses it."""
    run_with = runner(workspace)
    run_with.action_path = action_snapshot(tmp_path)
    run = run_with.run_action({"mode": "validate"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.steps_run == ["Install redbeat-apply", "redbeat-apply"]
    venv_bin = run_with.temp / "redbeat-apply-venv" / "bin"
    assert run_with.path_file.read_text().splitlines() == [str(venv_bin)]
    shown = subprocess.run([str(venv_bin / "python"), "-c", "import reconciler, redbeat; print(redbeat.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert shown.stdout.startswith(str(venv_bin.parent)), "installed into the venv, not used from a checkout"
