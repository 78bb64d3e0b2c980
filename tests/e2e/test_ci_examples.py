"""The CI/CD examples run as written: examples/ci/*.yml and the pre-commit hook.

The workflow files are parsed and every job that runs redbeat-apply is
executed in a checkout-like temp directory, against a real redis-server,
with the environment the CI system would give it. On GitHub that is this
repository's action (action.yml) with the job's ``with:`` (secrets
evaluated), run by tests/support/gh_action.py as the runner runs composite
steps, its comment going to a stand-in for the GitHub API; on GitLab the
job's script with ``variables:`` and the predefined variables. The install
lines are checked against this release and run in a fresh virtualenv by the
slow tests (here and in test_action.py). The pre-commit hook runs through
``pre-commit try-repo`` on a throwaway git repository, installing this
project into pre-commit's own virtualenv as a user's machine would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.gh_action import BAD, GOOD, ActionRun, FakeGitHub, base_env, evaluate, make_checkout
from support.gh_action import Runner as ActionRunner
from support.snapshot import PACKAGE_FILES, copy_tree

import redbeat

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
GITHUB = CI / "github-actions.yml"
GITLAB = CI / "gitlab-ci.yml"
BIN = Path(sys.executable).parent
VERSION = redbeat.__version__
# Until redbeat-gitops is on an index: the repository at the release's tag (test_gitlab_install_line_installs).
GIT_URL = "https://git.example.com/your-org/redbeat.git"
INSTALL = f'python -m pip install "redbeat-gitops @ git+{GIT_URL}@v{VERSION}"'
REPOSITORY = "acme/schedules"


@pytest.fixture
def checkout(tmp_path) -> Path:
    return make_checkout(tmp_path / "checkout")


# --- GitHub Actions ------------------------------------------------------------------------

ACTION_REF = re.compile(r"^[\w.-]+/redbeat@v(?P<version>[\w.]+)$")


def load_github() -> dict[str, Any]:
    workflow = yaml.safe_load(GITHUB.read_text())
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def action_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if ACTION_REF.match(s.get("uses", ""))]


@dataclass
class GithubJob:
    runs: list[ActionRun] = field(default_factory=list)

    @property
    def failed(self) -> ActionRun | None:
        return next((r for r in self.runs if r.returncode != 0), None)

    @property
    def summary(self) -> str:
        return "".join(r.summary for r in self.runs)


def run_github_job(job_name: str, workdir: Path, *, secrets: dict[str, str], event: str,
                   api_url: str = "http://127.0.0.1:1") -> GithubJob:
    """The job's steps in order until one fails: checkout is the workdir; this repository's action runs
    from this working tree with its install step skipped (the test venv has redbeat-apply; the install
    step itself is tests/e2e/test_action.py's)."""
    job = load_github()["jobs"][job_name]
    context: dict[str, Any] = {"secrets": secrets, "github": {"repository": REPOSITORY, "event_name": event}}
    payload = {"pull_request": {"number": 7}} if event == "pull_request" else {"ref": "refs/heads/main"}
    runner = ActionRunner(workdir, workdir.parent / f"runner-{job_name}", REPOSITORY, payload, api_url)
    result = GithubJob()
    for step in job["steps"]:
        uses = step.get("uses", "")
        if not ACTION_REF.match(uses):
            assert uses.startswith("actions/"), f"the test does not model the step {step}"
            continue
        given = {name: evaluate(value, context) for name, value in step.get("with", {}).items()}
        assert "install" not in given, "the examples install from the action's checkout (the default)"
        run = runner.run_action({**given, "install": "false"})
        result.runs.append(run)
        if run.returncode != 0:
            break
    return result


def test_github_workflow_triggers_jobs_and_secrets():
    workflow = load_github()
    assert set(workflow["on"]) == {"push", "pull_request"}
    jobs = workflow["jobs"]
    assert set(jobs) == {"validate", "plan", "apply"}
    assert "if" not in jobs["validate"], "validate runs on every push and pull request"
    assert jobs["plan"]["if"] == "github.event_name == 'pull_request'"
    assert jobs["plan"]["permissions"]["pull-requests"] == "write"
    assert jobs["apply"]["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert jobs["apply"]["concurrency"]["cancel-in-progress"] is False
    assert jobs["apply"]["concurrency"]["group"]
    assert jobs["plan"]["needs"] == jobs["apply"]["needs"] == "validate"
    # Each job is a checkout and the action in one mode; the Redis URL only where Redis is needed.
    for name, job in jobs.items():
        (step,) = action_steps(job)
        assert step["with"]["mode"] == name
        assert ("redis-url" in step["with"]) == (name != "validate")
    assert GITHUB.read_text().count("${{ secrets.REDBEAT_REDIS_URL }}") == 2
    assert not any("run" in s for job in jobs.values() for s in job["steps"]), "the action does the work"


def test_github_examples_use_this_release_of_the_action():
    """Until redbeat-gitops is on an index, the action installs it from its own checkout at the tag used."""
    refs = {s["uses"] for job in load_github()["jobs"].values() for s in action_steps(job)}
    assert {ACTION_REF.match(r).group("version") for r in refs} == {VERSION}  # type: ignore[union-attr]
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["inputs"]["install"]["default"] == "true"
    assert "redbeat-gitops==" not in GITHUB.read_text(), "no index serves it yet"


def test_github_validate_annotates_errors(checkout):
    ok = run_github_job("validate", checkout, secrets={}, event="push")
    assert ok.failed is None and len(ok.runs) == 1, ok.runs
    assert "All 2 schedules are valid." in ok.summary

    (checkout / "schedules" / "bad.yaml").write_text(BAD)
    bad = run_github_job("validate", checkout, secrets={}, event="push")
    assert bad.failed is not None and bad.failed.returncode == 3
    assert "::error file=schedules/bad.yaml,line=3,col=7" in bad.failed.stdout
    assert "minute 61 is out of range 0-59" in bad.failed.stdout


@pytest.fixture
def github_api():
    with FakeGitHub(REPOSITORY, 7) as fake:
        yield fake


def test_github_pull_request_posts_the_dry_run(checkout, redis_url, redis_client, github_api):
    job = run_github_job("plan", checkout, secrets={"REDBEAT_REDIS_URL": redis_url}, event="pull_request",
                         api_url=github_api.url)
    assert job.failed is None, job.runs
    (comment,) = github_api.comments
    marker, plan = comment["body"].split("\n", 1)
    assert marker.startswith("<!-- redbeat-apply-plan ") and marker.endswith(" -->")
    assert plan.startswith("### redbeat-apply plan for owner `acme/schedules`")
    assert "**Plan: 2 to create, 0 to update, 0 to delete, 0 unchanged.**" in plan
    assert "| + | `heartbeat` | create |" in plan and "| + | `nightly-report` | create |" in plan
    assert job.summary == comment["body"]
    assert job.runs[0].outputs["exitcode"] == "2"
    assert redis_client.keys("*") == [], "a dry run writes nothing"


def test_docs_pr_comment_example_is_what_the_plan_job_posts(checkout, redis_url, redis_client, github_api):
    ci_doc = (ROOT / "docs" / "ci.md").read_text()
    match = re.search(r"<!-- example: pr-plan -->\n````markdown\n(.*?)````\n<!-- /example: pr-plan -->", ci_doc, re.S)
    assert match, "docs/ci.md: the PR plan example block is missing"
    secrets = {"REDBEAT_REDIS_URL": redis_url}
    assert run_github_job("apply", checkout, secrets=secrets, event="push").failed is None
    (checkout / "schedules" / "jobs.yaml").write_text(textwrap.dedent("""\
        schedules:
          - name: heartbeat
            task: ops.tasks.ping
            every: 1m
          - name: weekly-digest
            task: reports.tasks.digest
            cron: "0 8 * * mon"
    """))
    job = run_github_job("plan", checkout, secrets=secrets, event="pull_request", api_url=github_api.url)
    assert job.failed is None and job.runs[0].outputs["exitcode"] == "2"
    assert github_api.comments[-1]["body"].split("\n", 1)[1] == match.group(1)


def test_github_pull_request_with_a_conflict_fails_and_still_reports(checkout, redis_url, redis_client, github_api):
    other = subprocess.run(
        [str(BIN / "redbeat-apply"), "--redis-url", redis_url, "--owner", "someone-else", str(checkout / "schedules")],
        capture_output=True, text=True, env=base_env(), timeout=60,
    )
    assert other.returncode == 0, other.stderr
    job = run_github_job("plan", checkout, secrets={"REDBEAT_REDIS_URL": redis_url}, event="pull_request",
                         api_url=github_api.url)
    assert job.failed is not None and job.failed.outputs["exitcode"] == "1"
    assert "::error::redbeat-apply plan failed (exit 1)" in job.failed.stdout
    body = github_api.comments[-1]["body"]
    assert "conflict" in body and "someone-else" in body
    assert job.summary == body


def test_github_pull_request_from_a_fork_has_no_secret(checkout, github_api):
    github_api.status = 403  # a fork's token is read-only
    job = run_github_job("plan", checkout, secrets={}, event="pull_request", api_url=github_api.url)
    assert job.failed is None, job.runs
    assert "no plan: the redis-url input is empty" in job.summary
    assert job.runs[0].outputs["exitcode"] == "0"


def test_github_merge_to_main_applies_once(checkout, redis_url, redis_client):
    secrets = {"REDBEAT_REDIS_URL": redis_url}
    first = run_github_job("apply", checkout, secrets=secrets, event="push")
    assert first.failed is None, first.runs
    assert redis_client.exists("redbeat:heartbeat", "redbeat:nightly-report") == 2
    assert sorted(redis_client.hkeys(f"redbeat::owner:{REPOSITORY}")) == ["heartbeat", "nightly-report"]
    assert first.summary.startswith("## Applied schedules\n### redbeat-apply plan for owner `acme/schedules`")
    assert "2 to create" in first.summary

    second = run_github_job("apply", checkout, secrets=secrets, event="push")
    assert second.failed is None
    assert "**No changes. 2 unchanged.**" in second.summary

    (checkout / "schedules" / "jobs.yaml").write_text(GOOD.replace("every: 30s", "every: 1m"))
    third = run_github_job("apply", checkout, secrets=secrets, event="push")
    assert "1 to update" in third.summary and "`every`" in third.summary


def test_github_apply_fails_the_job_on_a_conflict(checkout, redis_url, redis_client):
    redis_client.hset(
        "redbeat:heartbeat",
        "definition",
        json.dumps(
            {
                "name": "heartbeat",
                "task": "ops.tasks.ping",
                "schedule": {"__type__": "interval", "every": 10.0, "relative": False},
                "args": [],
                "kwargs": {},
                "options": {},
                "enabled": True,
            }
        ),
    )
    job = run_github_job("apply", checkout, secrets={"REDBEAT_REDIS_URL": redis_url}, event="push")
    assert job.failed is not None and job.failed.returncode == 1
    assert "nothing was written" in job.failed.stderr
    assert not redis_client.exists("redbeat:nightly-report")


# --- GitLab CI -------------------------------------------------------------------------------


def load_gitlab() -> dict[str, Any]:
    return yaml.safe_load(GITLAB.read_text())


def expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), str(value))


def run_gitlab_job(job_name: str, workdir: Path, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    pipeline = load_gitlab()
    job = pipeline[job_name]
    before = job.get("before_script", pipeline["default"]["before_script"])
    assert before == [INSTALL], "the pipeline installs another version than pyproject.toml's"
    env = base_env()
    env.update(
        CI="true",
        GITLAB_CI="true",
        CI_PROJECT_DIR=str(workdir),
        CI_PROJECT_PATH=REPOSITORY,
        CI_PROJECT_ID="42",
        CI_DEFAULT_BRANCH="main",
        CI_API_V4_URL="http://127.0.0.1:1/api/v4",
    )
    env.update(variables)
    for name, value in {**pipeline.get("variables", {}), **job.get("variables", {})}.items():
        env[name] = expand(value, env)
    # The runner's bash runs the script lines in one shell with `set -eo pipefail`.
    script = "\n".join(job["script"])
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_gitlab_pipeline_rules():
    pipeline = load_gitlab()
    assert pipeline["stages"] == ["validate", "plan", "apply"]
    assert "rules" not in pipeline["validate"]
    assert pipeline["plan"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert pipeline["apply"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'}
    ]
    assert pipeline["apply"]["resource_group"], "applies must not run concurrently"
    assert "REDBEAT_REDIS_URL" not in pipeline["variables"], "the URL is a masked CI/CD variable, not in the file"


def test_gitlab_validate(checkout):
    assert run_gitlab_job("validate", checkout, {}).returncode == 0
    (checkout / "schedules" / "bad.yaml").write_text(BAD)
    bad = run_gitlab_job("validate", checkout, {})
    assert bad.returncode == 3
    assert "schedules/bad.yaml:3:7: cron: '61 * * * *': minute 61 is out of range 0-59" in bad.stderr + bad.stdout


class FakeGitLab(BaseHTTPRequestHandler):
    """The three notes endpoints the plan job calls, recording what it did."""

    notes: list[dict[str, Any]] = []
    calls: list[tuple[str, str, str]] = []

    def _reply(self, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:  # noqa: N802
        self.calls.append(("GET", self.path, self.headers["PRIVATE-TOKEN"]))
        self._reply(self.notes)

    def do_POST(self) -> None:  # noqa: N802
        self.calls.append(("POST", self.path, self.headers["PRIVATE-TOKEN"]))
        note = {"id": len(self.notes) + 100, "body": self._body()["body"]}
        self.notes.append(note)
        self._reply(note)

    def do_PUT(self) -> None:  # noqa: N802
        self.calls.append(("PUT", self.path, self.headers["PRIVATE-TOKEN"]))
        note_id = int(self.path.rsplit("/", 1)[1])
        note = next(n for n in self.notes if n["id"] == note_id)
        note["body"] = self._body()["body"]
        self._reply(note)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_gitlab():
    FakeGitLab.notes = [{"id": 1, "body": "LGTM"}]
    FakeGitLab.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitLab)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    server.shutdown()
    server.server_close()


def test_gitlab_merge_request_plan_is_one_updated_comment(checkout, redis_url, redis_client, fake_gitlab):
    variables = {
        "REDBEAT_REDIS_URL": redis_url,
        "REDBEAT_GITLAB_TOKEN": "glpat-test",
        "CI_API_V4_URL": fake_gitlab,
        "CI_MERGE_REQUEST_IID": "7",
        "CI_PIPELINE_SOURCE": "merge_request_event",
    }
    first = run_gitlab_job("plan", checkout, variables)
    assert first.returncode == 0, first.stderr
    notes_path = "/api/v4/projects/42/merge_requests/7/notes"
    assert [c[:2] for c in FakeGitLab.calls] == [("GET", notes_path + "?per_page=100&sort=desc"), ("POST", notes_path)]
    assert {c[2] for c in FakeGitLab.calls} == {"glpat-test"}
    posted = FakeGitLab.notes[-1]["body"]
    assert posted == (checkout / "plan.md").read_text()
    assert "### redbeat-apply plan for owner `acme/schedules`" in posted and "2 to create" in posted
    assert redis_client.keys("*") == []

    (checkout / "schedules" / "jobs.yaml").write_text(GOOD.replace("every: 30s", "every: 1m"))
    FakeGitLab.calls = []
    second = run_gitlab_job("plan", checkout, variables)
    assert second.returncode == 0, second.stderr
    assert [c[0] for c in FakeGitLab.calls] == ["GET", "PUT"]
    assert len(FakeGitLab.notes) == 2 and FakeGitLab.notes[0]["body"] == "LGTM"
    assert FakeGitLab.notes[1]["body"] == (checkout / "plan.md").read_text()


def test_gitlab_plan_without_token_or_url(checkout, redis_url):
    no_url = run_gitlab_job("plan", checkout, {"CI_PIPELINE_SOURCE": "merge_request_event"})
    assert no_url.returncode == 0, no_url.stderr
    assert "REDBEAT_REDIS_URL variable is not available" in (checkout / "plan.md").read_text()
    no_token = run_gitlab_job("plan", checkout, {"REDBEAT_REDIS_URL": redis_url})
    assert no_token.returncode == 0, no_token.stderr
    assert "2 to create" in (checkout / "plan.md").read_text() and "2 to create" in no_token.stdout


def test_gitlab_apply(checkout, redis_url, redis_client):
    variables = {"REDBEAT_REDIS_URL": redis_url, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}
    first = run_gitlab_job("apply", checkout, variables)
    assert first.returncode == 0, first.stderr
    assert sorted(redis_client.hkeys(f"redbeat::owner:{REPOSITORY}")) == ["heartbeat", "nightly-report"]
    assert "2 to create" in (checkout / "apply.md").read_text()
    second = run_gitlab_job("apply", checkout, variables)
    assert second.returncode == 0 and "No changes. 2 unchanged." in (checkout / "apply.md").read_text()

    redis_client.delete(f"redbeat::owner:{REPOSITORY}")  # now nobody owns them: a conflict
    third = run_gitlab_job("apply", checkout, variables)
    assert third.returncode == 1, "pipefail: the tee must not hide the failure"


# --- pre-commit ------------------------------------------------------------------------------


HOOK_REPO_FILES = (".pre-commit-hooks.yaml", *PACKAGE_FILES)


def git(cwd: Path, *args: str) -> None:
    env = {
        **base_env(),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def hook_repo(tmp_path) -> Path:
    """A committed snapshot of this project's working tree (what a `rev:` of it would hold)."""
    repo = copy_tree(tmp_path / "hook-repo", HOOK_REPO_FILES)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "snapshot")
    return repo


def pre_commit(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args, "--color", "never"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )


def assert_the_hook_is_python_redbeat_validate() -> None:
    """.pre-commit-hooks.yaml offers one hook, redbeat-validate, in a python environment."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["redbeat-validate"]
    assert hooks[0]["language"] == "python"


def committed_project(tmp_path: Path) -> Path:
    """A git project with a valid manifest under schedules/ and a workflow YAML outside it, committed."""
    project = tmp_path / "project"
    (project / "schedules").mkdir(parents=True)
    (project / "schedules" / "good.yaml").write_text(GOOD)
    (project / ".github" / "workflows").mkdir(parents=True)
    (project / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")  # YAML, not a manifest
    git(project, "init", "-q")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "init")
    return project


def add_example_config_and_bad_manifest(project: Path, hook_repo: Path, rev: str) -> None:
    """Stage the example config (checked equal to docs/ci.md's) pointed at the snapshot, and an invalid manifest."""
    config = yaml.safe_load((CI / "pre-commit-config.yaml").read_text())
    assert [h["id"] for h in config["repos"][0]["hooks"]] == ["redbeat-validate"]
    shown = re.search(r"^```yml\n(repos:\n.*?)^```", (ROOT / "docs" / "ci.md").read_text(), re.S | re.M)
    assert shown and yaml.safe_load(shown.group(1)) == config, "docs/ci.md's pre-commit config is the example's"
    config["repos"][0].update(repo=str(hook_repo), rev=rev)
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    (project / "schedules" / "bad.yaml").write_text(BAD)
    git(project, "add", ".pre-commit-config.yaml", "schedules/bad.yaml")


def assert_pre_commit_run_validates_schedules_only(project: Path, env: dict[str, str]) -> None:
    """`pre-commit run` with the example config: fails on the bad manifest, skips YAML outside schedules/."""
    bad = pre_commit(project, env, "run", "--verbose", "--files", "schedules/bad.yaml")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(r"redbeat-apply validate\.+Failed", bad.stdout), bad.stdout
    assert "exit code: 3" in bad.stdout
    assert "schedules/bad.yaml:3:7: cron: '61 * * * *': minute 61 is out of range 0-59" in bad.stdout

    # A commit touching only the good file still validates the whole directory.
    whole = pre_commit(project, env, "run", "--verbose", "--files", "schedules/good.yaml")
    assert whole.returncode == 1 and "minute 61 is out of range" in whole.stdout

    # YAML outside schedules/ does not trigger the hook.
    other = pre_commit(project, env, "run", "--verbose", "--files", ".github/workflows/ci.yml")
    assert other.returncode == 0, other.stdout + other.stderr
    assert re.search(r"redbeat-apply validate\.+\(no files to check\)Skipped", other.stdout), other.stdout


def assert_pre_commit_run_all_files_fails_until_the_bad_manifest_goes(project: Path, env: dict[str, str]) -> None:
    """`pre-commit run --all-files` in the project, as a developer runs it: fails, then passes once bad.yaml is gone."""
    run = pre_commit(project, env, "run", "--all-files")
    assert run.returncode == 1 and "minute 61 is out of range" in run.stdout, run.stdout + run.stderr
    (project / "schedules" / "bad.yaml").unlink()
    git(project, "add", "-A")
    run = pre_commit(project, env, "run", "--all-files")
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.slow
def test_pre_commit_hook_via_try_repo(tmp_path, hook_repo):
    """The hook as docs/ci.md offers it: `pre-commit try-repo`, then the example config's `pre-commit run`.

    try-repo builds the hook's environment (a pip install of this project) in a throwaway store of its own on
    every call, whatever PRE_COMMIT_HOME says; so it runs once, and the hook's other cases run through the
    example config pointed at the same snapshot and rev: the same hook, its environment built once in
    PRE_COMMIT_HOME (try-repo itself is that config run by `pre-commit run`).
    """
    assert_the_hook_is_python_redbeat_validate()
    project = committed_project(tmp_path)
    env = {**base_env(), "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1"}
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=hook_repo, capture_output=True, text=True, check=True)

    good = pre_commit(project, env, "try-repo", str(hook_repo), "redbeat-validate", "--ref", "HEAD",
                      "--verbose", "--files", "schedules/good.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert re.search(r"redbeat-apply validate\.+Passed", good.stdout), good.stdout
    assert "ok: 2 schedules in 1 file" in good.stdout

    # The example .pre-commit-config.yaml, pointed at the snapshot, as `pre-commit run` reads it.
    add_example_config_and_bad_manifest(project, hook_repo, head.stdout.strip())
    assert_pre_commit_run_validates_schedules_only(project, env)
    assert_pre_commit_run_all_files_fails_until_the_bad_manifest_goes(project, env)


@pytest.mark.slow
def test_gitlab_install_line_installs(tmp_path, hook_repo):
    """The pipeline's install line, with the repository URL pointed at a snapshot tagged as this release."""
    git(hook_repo, "tag", f"v{VERSION}")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # file://localhost/...: the pip of python3 -m venv here (23.x) refuses an empty file:/// authority.
    line = INSTALL.replace(GIT_URL, f"file://localhost{hook_repo}")
    assert line.startswith("python -m pip install ")
    env = {**base_env(), "PATH": f"{venv / 'bin'}{os.pathsep}{base_env()['PATH']}"}
    installed = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    shown = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "show", "redbeat-gitops"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert f"Version: {VERSION}" in shown.stdout
    validated = subprocess.run(
        [str(venv / "bin" / "redbeat-apply"), "validate", str(ROOT / "examples" / "schedules")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
