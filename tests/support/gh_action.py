"""Run action.yml's composite steps as the GitHub runner does, on this machine.

Each step's ``run:`` goes to ``bash --noprofile --norc -eo pipefail`` with the
env the runner gives it: ``${{ }}`` expressions in ``env:`` evaluated
(inputs with their defaults, the ``github`` context), ``GITHUB_ACTION_PATH``,
``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``, ``GITHUB_PATH``, ``RUNNER_TEMP``,
``GITHUB_EVENT_PATH`` and ``GITHUB_API_URL`` (a local stand-in for the API).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
BIN = Path(sys.executable).parent
#: A valid manifest directory's one file, and an invalid file (line 3, column 7: minute 61).
GOOD = """\
schedules:
  - name: heartbeat
    task: ops.tasks.ping
    every: 30s
  - name: nightly-report
    task: reports.tasks.nightly
    cron: "30 2 * * mon-fri"
    kwargs: {format: pdf}
"""
BAD = 'name: broken\ntask: ops.tasks.ping\ncron: "61 * * * *"\n'


def make_checkout(repo: Path) -> Path:
    """What actions/checkout (or a GitLab runner) leaves: a repository with schedules/jobs.yaml = GOOD."""
    (repo / "schedules").mkdir(parents=True)
    (repo / "schedules" / "jobs.yaml").write_text(GOOD)
    return repo


_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_CONDITION = re.compile(r"^inputs\.([\w-]+) == '([^']*)'$")


def evaluate(text: Any, context: dict[str, Any]) -> str:
    """``${{ a.b.c }}`` lookups, as GitHub does them in ``env:`` and ``with:`` (a missing value is "")."""

    def lookup(match: re.Match[str]) -> str:
        parts = match.group(1).split(".")
        assert parts[0] in context, f"the test does not model the context of {match.group(0)}"
        value: Any = context
        for part in parts:
            value = value.get(part, "") if isinstance(value, dict) else ""
        return str(value)

    return _EXPRESSION.sub(lookup, str(text))


def read_outputs(path: Path) -> dict[str, str]:
    """A ``GITHUB_OUTPUT`` file: ``name=value`` lines and ``name<<DELIMITER`` blocks."""
    outputs: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, index + 1)
            outputs[name] = "\n".join(lines[index + 1:end])
            index = end + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
        index += 1
    return outputs


@dataclass
class ActionRun:
    returncode: int
    stdout: str
    stderr: str
    summary: str
    outputs: dict[str, str] = field(default_factory=dict)
    steps_run: list[str] = field(default_factory=list)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDBEAT_", "GITHUB_", "INPUT_", "CI_"))}
    env.pop("NO_COLOR", None)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Runner:
    """One job's runner: its temp dir, summary file and PATH additions, shared by the steps it runs."""

    workspace: Path
    temp: Path
    repository: str = "acme/schedules"
    event: dict[str, Any] = field(default_factory=dict)
    api_url: str = "http://127.0.0.1:1"
    action_path: Path = ROOT

    def __post_init__(self) -> None:
        self.temp.mkdir(parents=True, exist_ok=True)
        self.summary = self.temp / "step_summary.md"
        self.summary.touch()
        self.path_file = self.temp / "github_path"
        self.path_file.touch()
        self.event_file = self.temp / "event.json"
        self.event_file.write_text(json.dumps(self.event))
        self.count = 0

    def context(self, inputs: dict[str, str]) -> dict[str, Any]:
        github = {"repository": self.repository, "token": "ghs_test_token", "action_path": str(self.action_path)}
        return {"inputs": inputs, "github": github}

    def env(self, output: Path) -> dict[str, str]:
        env = base_env()
        extra = [line for line in self.path_file.read_text().splitlines() if line]
        env["PATH"] = os.pathsep.join([*reversed(extra), env["PATH"]])
        env.update(
            GITHUB_ACTIONS="true", CI="true", GITHUB_WORKSPACE=str(self.workspace), GITHUB_REPOSITORY=self.repository,
            GITHUB_ACTION_PATH=str(self.action_path), GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(self.summary),
            GITHUB_PATH=str(self.path_file), RUNNER_TEMP=str(self.temp), GITHUB_EVENT_PATH=str(self.event_file),
            GITHUB_API_URL=self.api_url,
        )
        return env

    def run_action(self, given: dict[str, str]) -> ActionRun:
        """The action with ``with: given``: its steps in order until one fails, as the runner runs them."""
        action = yaml.safe_load((self.action_path / "action.yml").read_text())
        unknown = set(given) - set(action["inputs"])
        assert not unknown, f"the action has no inputs {unknown}"
        context = self.context({})
        inputs = {name: given.get(name, evaluate(spec.get("default", ""), context))
                  for name, spec in action["inputs"].items()}
        context = self.context(inputs)
        before = self.summary.read_text()
        result = ActionRun(0, "", "", "")
        for step in action["runs"]["steps"]:
            if "if" in step:
                condition = _CONDITION.match(step["if"])
                assert condition, f"the test does not model the condition {step['if']!r}"
                if inputs[condition.group(1)] != condition.group(2):
                    continue
            assert step["shell"] == "bash" and "${{" not in step["run"], "expressions belong in env:, not in run:"
            self.count += 1
            output = self.temp / f"output-{self.count}"
            output.touch()
            env = self.env(output)
            env.update({k: evaluate(v, context) for k, v in step.get("env", {}).items()})
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                  cwd=self.workspace, env=env, capture_output=True, text=True, timeout=600)
            result.steps_run.append(step["name"])
            result.stdout += proc.stdout
            result.stderr += proc.stderr
            if step.get("id") == "run":
                result.outputs = read_outputs(output)
            if proc.returncode != 0:
                result.returncode = proc.returncode
                break
        result.summary = self.summary.read_text()[len(before):]
        return result


class FakeGitHub:
    """The issue-comment endpoints of GitHub's REST API on 127.0.0.1, recording every call."""

    def __init__(self, repository: str, number: int) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.comments: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []
        self.tokens: set[str] = set()
        self.status = 200  # set to 403 to act as a fork's read-only token
        issue = f"/repos/{repository}/issues/{number}/comments"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> bool:
                fake.calls.append((self.command, self.path))
                fake.tokens.add(self.headers.get("Authorization", ""))
                if fake.status != 200:
                    self._reply(fake.status, {"message": "Resource not accessible by integration"})
                    return False
                return True

            def _body(self) -> str:
                return str(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["body"])

            def do_GET(self) -> None:  # noqa: N802
                if self._record():
                    path, _, query = self.path.partition("?")
                    params = dict(p.split("=", 1) for p in query.split("&") if p)
                    assert path == issue, path
                    size, page = int(params["per_page"]), int(params.get("page", "1"))
                    self._reply(200, fake.comments[(page - 1) * size:page * size])

            def do_POST(self) -> None:  # noqa: N802
                if self._record():
                    assert self.path == issue, self.path
                    comment = {"id": 1000 + len(fake.comments), "body": self._body()}
                    comment["html_url"] = f"https://github.example/{repository}/pull/{number}#c{comment['id']}"
                    fake.comments.append(comment)
                    self._reply(201, comment)

            def do_PATCH(self) -> None:  # noqa: N802
                if self._record():
                    comment_id = int(self.path.rsplit("/", 1)[1])
                    assert self.path == f"/repos/{repository}/issues/comments/{comment_id}", self.path
                    comment = next(c for c in fake.comments if c["id"] == comment_id)
                    comment["body"] = self._body()
                    self._reply(200, comment)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeGitHub:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
