"""What each mode does: run redbeat-apply, then report to the log, the job summary, outputs and the PR."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from . import command
from .comments import CommentClient, GitHubError, PullRequest, fit, marker
from .inputs import ActionInputs
from .markdown import code, fence
from .runner import Runner, error, warning

NO_URL = "no plan: the redis-url input is empty (pull requests from forks get no secrets)."


def _with_stderr(markdown: str, stderr: str) -> str:
    return markdown + ("\n" + fence(stderr) if stderr.strip() else "")


def _error_lines(report: Any) -> list[str]:
    """The json report's errors as markdown list items (every value shown literally)."""
    lines = []
    for item in report.get("errors", []) if isinstance(report, dict) else []:
        where = f"{item.get('file')}:{item.get('line')}:{item.get('column')}"
        lines.append(f"- {code(where)} {code(str(item.get('field') or '(file)'))}: {code(str(item.get('message')))}")
    return lines


def validate(inputs: ActionInputs, env: Mapping[str, str], runner: Runner, log: TextIO = sys.stdout) -> int:
    """Annotations in the log, an optional SARIF file, the errors in the summary; exit 3 when invalid."""
    run_env = command.connection_env(inputs, env)
    annotated = command.run(command.validate_argv(inputs.paths, "github"), run_env)
    log.write(annotated.stdout)
    sys.stderr.write(annotated.stderr)
    if inputs.sarif_file is not None:
        sarif = command.run(command.validate_argv(inputs.paths, "sarif"), run_env)
        inputs.sarif_file.parent.mkdir(parents=True, exist_ok=True)
        inputs.sarif_file.write_text(sarif.stdout, encoding="utf-8")
        runner.set_output("sarif-file", str(inputs.sarif_file))
    report = command.run(command.validate_argv(inputs.paths, "json"), run_env)
    try:
        parsed = json.loads(report.stdout)
    except ValueError:
        parsed = None
    heading = "### redbeat-apply validate\n\n"
    if annotated.exit_code == command.ExitCode.OK and isinstance(parsed, dict):
        runner.add_summary(f"{heading}All {parsed.get('schedules', 0)} schedules are valid.\n")
    elif parsed is not None:
        runner.add_summary(heading + "\n".join(["Invalid manifests:", "", *_error_lines(parsed)]) + "\n")
    else:
        runner.add_summary(_with_stderr(heading + "redbeat-apply validate failed.\n", report.stderr))
    runner.set_output("exitcode", str(annotated.exit_code))
    return annotated.exit_code


def pull_request(env: Mapping[str, str], token: str) -> PullRequest | None:
    """The pull request this run is for (from the event payload), or None on other events."""
    try:
        event = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text(encoding="utf-8"))
        number = int(event["pull_request"]["number"])
    except (KeyError, OSError, ValueError, TypeError):
        return None
    api = env.get("GITHUB_API_URL", "https://api.github.com")
    return PullRequest(api_url=api, repository=env.get("GITHUB_REPOSITORY", ""), number=number, token=token)


def _comment(inputs: ActionInputs, env: Mapping[str, str], runner: Runner, body: str, log: TextIO) -> None:
    pr = pull_request(env, inputs.github_token)
    if pr is None:
        log.write("redbeat-apply: not a pull request event; no comment posted\n")
        return
    try:
        url = CommentClient(pr).upsert(marker(inputs.owner, inputs.key_prefix), body)
    except GitHubError as exc:
        # A fork's read-only token cannot comment: the plan is still in the job summary.
        log.write(warning(f"redbeat-apply: could not post the plan comment: {exc}") + "\n")
        return
    runner.set_output("comment-url", url)


#: How redbeat-apply's remark about a saved plan starts (stderr with a non-text output format).
SAVED_REMARK = "Saved the plan to "


def plan(inputs: ActionInputs, env: Mapping[str, str], runner: Runner, log: TextIO = sys.stdout) -> int:
    """The dry-run plan: saved, in the summary and in one PR comment; fails on errors, not on changes."""
    if not inputs.redis_url:
        exit_code, markdown = int(command.ExitCode.OK), f"redbeat-apply: {NO_URL}\n"
    else:
        plan_file = Path(env.get("RUNNER_TEMP") or ".") / "redbeat-plan.json"
        result = command.run(command.plan_argv(inputs.paths, plan_file), command.connection_env(inputs, env))
        # The plan file's path is the action's output (plan-file), not news for reviewers in the comment.
        stderr = "".join(line for line in result.stderr.splitlines(keepends=True)
                         if not line.startswith(SAVED_REMARK))
        exit_code, markdown = result.exit_code, _with_stderr(result.stdout, stderr)
        if plan_file.is_file():
            runner.set_output("plan-file", str(plan_file))
    log.write(markdown)
    body = marker(inputs.owner, inputs.key_prefix) + "\n" + markdown
    runner.add_summary(body)
    runner.set_output("exitcode", str(exit_code))
    runner.set_output("changes", "true" if exit_code == command.ExitCode.CHANGES else "false")
    if inputs.comment:
        _comment(inputs, env, runner, fit(body, "cut to fit a comment; the whole plan is in the job summary"), log)
    if exit_code in (command.ExitCode.OK, command.ExitCode.CHANGES):
        return 0
    log.write(error(f"redbeat-apply plan failed (exit {exit_code}); see the plan in the job summary") + "\n")
    return exit_code


def apply(inputs: ActionInputs, env: Mapping[str, str], runner: Runner, log: TextIO = sys.stdout) -> int:
    """Apply the manifests; the diff in the summary; any refusal or error fails the step."""
    if not inputs.redis_url:
        log.write(error("input redis-url is empty: apply needs the Redis URL (from a secret)") + "\n")
        runner.set_output("exitcode", str(int(command.ExitCode.ERROR)))
        return command.ExitCode.ERROR
    result = command.run(command.apply_argv(inputs.paths), command.connection_env(inputs, env))
    log.write(result.stdout)
    sys.stderr.write(result.stderr)
    runner.add_summary(_with_stderr("## Applied schedules\n" + result.stdout, result.stderr))
    runner.set_output("exitcode", str(result.exit_code))
    if result.exit_code != command.ExitCode.OK:
        first = next((line for line in result.stderr.splitlines() if line.strip()), "see the log")
        log.write(error(f"redbeat-apply refused or failed (exit {result.exit_code}): {first}") + "\n")
    return result.exit_code
