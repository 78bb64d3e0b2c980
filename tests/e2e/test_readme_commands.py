"""Every ``redbeat-apply`` command shown in README.md, run as written against a real redis-server.

A command is a line starting with ``redbeat-apply`` (or ``$ redbeat-apply``)
in a fenced ``sh``/``text`` block (and the other shell-ish fences: ``console``,
``shell``, ``bash`` and a bare fence, which the README uses for ``validate``).
The commands of one README section (``###`` heading) run in README order, in
one workspace and a flushed Redis, from the state the section describes
(``SECTION_STATES``; by default ``schedules/`` is a copy of
``examples/schedules/``, so ``./schedules/`` and ``schedules/`` mean it, and
Redis is empty), with ``REDBEAT_REDIS_URL`` set to the test's redis-server.
Each must exit with the code the README documents (0 unless ``EXIT_CODES``
says otherwise), print what ``CLAIMS`` and the double-quoted strings of its
comment (``# from now on: "No changes."``) say it prints, and leave the files
and entries it is said to write.

A block that starts with ``$ redbeat-apply ...`` shows that command's output.
It runs in a fresh Redis and workspace prepared by ``SHOWN_STATES`` to be the
state the README describes, and the real output must equal the shown one. So
this test fails when the README's output and the code's disagree: fix the one
that is wrong.

Commands that cannot run here are listed in ``SKIPPED`` with the reason; the
test asserts that the commands the rules in ``SKIP_RULES`` pick out of the
README are exactly those, so a new README command is run or explicitly
skipped, never silently.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples" / "schedules"
BIN = Path(sys.executable).parent / "redbeat-apply"
SHELL_FENCES = {"sh", "shell", "bash", "console", "text", ""}

#: What makes a README command impossible to run here (a substring of the command, the reason).
SKIP_RULES: tuple[tuple[str, str], ...] = (
    ("--watch", "runs until it is stopped (a sidecar loop): no exit code to check"),
    ("redis-cluster://", "needs a real Redis Cluster"),
    ("sentinel://", "needs real Redis Sentinels"),
    ("rediss://", "needs a Redis with TLS"),
)
#: The README commands skipped, with the reason; must equal what SKIP_RULES selects from the README.
SKIPPED: dict[str, str] = {
    "redbeat-apply --watch /schedules --redis-url redis://redis:6379/0 --listen 0.0.0.0:9185 --log-format json": (
        "the sidecar: runs until it is stopped, in a container (/schedules, host redis); "
        "the watch loop has its own tests"
    ),
}
#: Exit codes the README documents for a command, when not 0.
EXIT_CODES: dict[str, int] = {}


# -- reading the README --------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    text: str  # as written, without the "$ " and the trailing comment
    line: int  # in README.md
    heading: str  # of the README section it is in
    shown_output: str | None = None  # the output the README shows for it, for "$ redbeat-apply ..." blocks
    comment: str = ""  # its trailing "# ..." comment

    def quoted_claims(self) -> list[str]:
        """The double-quoted strings of its comment: what the README says it prints (``# ... "No changes."``)."""
        return re.findall(r'"([^"]+)"', self.comment)

    def argv(self) -> tuple[list[str], str | None]:
        """The arguments after ``redbeat-apply`` and the file a ``> FILE`` redirects stdout to."""
        words = shlex.split(self.text)
        assert words[0] == "redbeat-apply", self
        stdout_to = None
        if ">" in words:
            at = words.index(">")
            assert at == len(words) - 2, f"README.md:{self.line}: only a final '> FILE' is supported: {self.text}"
            stdout_to = words[at + 1]
            words = words[:at]
        unsupported = {"|", "&&", ";", "||", "<", "2>", "&"} & set(words)
        assert not unsupported, f"README.md:{self.line}: shell syntax {unsupported} is not supported: {self.text}"
        return words[1:], stdout_to


def _split_comment(line: str) -> tuple[str, str]:
    """The command as written and its trailing ``# comment`` (a quoted '#' is not one)."""
    words = shlex.split(line, comments=True)
    for match in re.finditer(r"\s#", line):
        if shlex.split(line[:match.start()]) == words:
            return line[:match.start()].strip(), line[match.start():].strip().removeprefix("#").strip()
    return line.strip(), ""


def _block_commands(lines: list[str], first_line: int, heading: str) -> list[Command]:
    joined: list[tuple[int, str]] = []  # (README line, text) with "\" continuations joined
    for offset, line in enumerate(lines):
        if joined and joined[-1][1].endswith("\\"):
            joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + line.strip())
        else:
            joined.append((first_line + offset, line))
    transcript = bool(joined) and joined[0][1].startswith("$ redbeat-apply")
    commands = []
    for index, (number, line) in enumerate(joined):
        if transcript and line.startswith("$ redbeat-apply"):
            output = []
            for _, following in joined[index + 1:]:
                if following.startswith("$ "):
                    break
                output.append(following)
            shown = "\n".join(output).rstrip("\n") + "\n"
            commands.append(Command(_split_comment(line[2:])[0], number, heading, shown))
        elif line.startswith("redbeat-apply"):
            text, comment = _split_comment(line)
            commands.append(Command(text, number, heading, comment=comment))
    return commands


def readme_commands(text: str) -> list[Command]:
    """The commands of the README's shell-ish fenced blocks, each with the heading it is under."""
    commands: list[Command] = []
    heading, fence, language, block, block_start = "", "", "", [], 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not fence:
            opening = re.match(r"(`{3,})([\w-]*)", line)
            if opening:
                fence, language, block, block_start = opening[1], opening[2], [], number + 1
            elif re.match(r"#{1,6} ", line):
                heading = line.lstrip("#").strip()
        elif re.fullmatch(rf"{fence}`*\s*", line):
            if language in SHELL_FENCES:
                commands += _block_commands(block, block_start, heading)
            fence = ""
        else:
            block.append(line)
    return commands


COMMANDS = readme_commands(README.read_text())


def _skip_reason(command: Command) -> str | None:
    for needle, reason in SKIP_RULES:
        if needle in command.text:
            return reason
    return None


# -- running them --------------------------------------------------------------------


def run(command: Command, cwd: Path, redis_url: str) -> subprocess.CompletedProcess[str]:
    args, stdout_to = command.argv()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_") and k not in ("NO_COLOR", "COLUMNS")}
    env.update(REDBEAT_REDIS_URL=redis_url, NO_COLOR="1", COLUMNS="200")
    result = subprocess.run([str(BIN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if stdout_to is not None:
        (cwd / stdout_to).write_text(result.stdout)
    return result


def apply_cli(cwd: Path, redis_url: str, *args: str) -> None:
    result = run(Command(shlex.join(["redbeat-apply", *args]), 0, ""), cwd, redis_url)
    assert result.returncode == 0, result.stdout + result.stderr


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def _examples(workspace: Path, redis_url: str) -> None:
    """The default: schedules/ is a copy of examples/schedules/, Redis is empty."""
    shutil.copytree(EXAMPLES, workspace / "schedules")


def _celery_redbeat_deployment(workspace: Path, redis_url: str) -> None:
    """README "From celery-redbeat": entries saved by code with RedBeatSchedulerEntry(...).save(), some already
    run; no manifests yet."""
    from datetime import datetime, timedelta, timezone

    from celery import Celery
    from celery.schedules import crontab, schedule

    from redbeat import RedBeatSchedulerEntry

    app = Celery("readme", set_as_current=False)
    app.conf.update(redbeat_redis_url=redis_url, broker_url=redis_url, timezone="UTC")
    last = datetime.now(timezone.utc) - timedelta(seconds=10)
    RedBeatSchedulerEntry("ping", "ops.tasks.ping", schedule(timedelta(seconds=30)), app=app, last_run_at=last).save()
    RedBeatSchedulerEntry(
        "daily-report", "reports.tasks.daily", crontab(minute=0, hour=7), kwargs={"fmt": "pdf"}, app=app,
    ).save()
    app.redbeat_redis.close()


def _jobs_heartbeat_edited(workspace: Path, redis_url: str) -> None:
    """README "Applying schedules": jobs.yaml applied with heartbeat every 30 s and nightly-report; then
    the heartbeat changed to every 1m and a cleanup added."""
    jobs = workspace / "schedules" / "jobs.yaml"
    write(jobs, """\
        schedules:
          - name: heartbeat
            task: ops.tasks.ping
            every: 30s
          - name: nightly-report
            task: reports.tasks.build
            cron: "30 2 * * mon-fri"
    """)
    apply_cli(workspace, redis_url, "schedules/")
    write(jobs, """\
        schedules:
          - name: heartbeat
            task: ops.tasks.ping
            every: 1m
          - name: nightly-report
            task: reports.tasks.build
            cron: "30 2 * * mon-fri"
          - name: cleanup
            task: ops.tasks.cleanup
            every: 1h
    """)


#: The state a README section's commands start from, when it is not _examples (by heading).
SECTION_STATES: dict[str, Callable[[Path, str], None]] = {
    "From celery-redbeat": _celery_redbeat_deployment,
}
#: For each command shown with its output: how to prepare the state the README describes.
SHOWN_STATES: dict[str, Callable[[Path, str], None]] = {
    "redbeat-apply --dry-run schedules/": _jobs_heartbeat_edited,
}
#: What the README's text says a command prints, checked on the real output (by heading and command).
#: Besides these, every double-quoted string in a command's comment must be in its output.
CLAIMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Validating", "redbeat-apply validate schedules/"): ("ok: ",),
    ("Applying schedules (`redbeat-apply`)", "redbeat-apply --dry-run ./schedules/"): (
        "+ create   demo-heartbeat", "Dry run: nothing was written."),
    ("Applying schedules (`redbeat-apply`)", "redbeat-apply ./schedules/"): ("Applied ",),
}

#: The README sections with commands to run (not shown with their output, not skipped), in README order.
SECTIONS = list(dict.fromkeys(c.heading for c in COMMANDS if c.shown_output is None and c.text not in SKIPPED))


# -- the tests -----------------------------------------------------------------------


def test_the_readme_shows_redbeat_apply_commands():
    texts = [c.text for c in COMMANDS]
    # The README's main forms; if one goes away on purpose, drop it here.
    for expected in ("redbeat-apply --dry-run ./schedules/", "redbeat-apply ./schedules/", "redbeat-apply status"):
        assert expected in texts, texts
    assert any(c.shown_output for c in COMMANDS), "no '$ redbeat-apply' block with its output found"
    stale = {key for key in CLAIMS if not any((c.heading, c.text) == key for c in COMMANDS)}
    stale |= {heading for heading in SECTION_STATES if heading not in SECTIONS}
    assert not stale, f"no longer in the README, drop them here: {stale}"


def test_the_skipped_commands_are_exactly_the_documented_list():
    selected = {c.text: _skip_reason(c) for c in COMMANDS if _skip_reason(c) is not None}
    assert set(selected) == set(SKIPPED), (
        "README commands that cannot run here must be listed in SKIPPED with the reason, "
        f"and SKIPPED may list only such README commands: selected by SKIP_RULES {selected}, SKIPPED {SKIPPED}"
    )
    for text, reason in SKIPPED.items():
        assert reason, text


@pytest.mark.parametrize("heading", SECTIONS)
def test_every_readme_command_exits_as_documented(heading, tmp_path, redis_url, redis_client):
    """The section's commands, in order, in one workspace and Redis, from the state the section describes."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    SECTION_STATES.get(heading, _examples)(workspace, redis_url)
    ran, failures = [], []
    for command in COMMANDS:
        if command.heading != heading or command.shown_output is not None or command.text in SKIPPED:
            continue
        result = run(command, workspace, redis_url)
        output = result.stdout + result.stderr
        expected = EXIT_CODES.get(command.text, 0)
        ran.append(command)
        problems = [f"exit {result.returncode}, documented {expected}"] if result.returncode != expected else []
        claims = [*CLAIMS.get((heading, command.text), ()), *command.quoted_claims()]
        problems += [f"no {claim!r} in the output" for claim in claims if claim not in output]
        if problems:
            failures.append(
                f"README.md:{command.line}: {command.text}\n  " + "; ".join(problems) + "\n"
                + textwrap.indent(output[-2000:], "  | ")
            )
    assert not failures, "\n".join(failures)
    assert ran

    # What the commands wrote, where it can be seen.
    for command in ran:
        args, stdout_to = command.argv()
        if stdout_to and "sarif" in args:
            assert json.loads((workspace / stdout_to).read_text())["version"] == "2.1.0", command
        if "--out" in args:
            assert (workspace / args[args.index("--out") + 1]).is_file(), command
        if args[:1] == ["export"] and "--all" in args:
            assert list((workspace / args[-1]).glob("*.yaml")), command
        if args == ["./schedules/"]:
            assert redis_client.exists("redbeat:demo-heartbeat", "redbeat:weekly-digest") == 2, command


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if c.shown_output is not None], ids=lambda c: f"README.md:{c.line}",
)
def test_shown_output_is_the_real_output(command, tmp_path, redis_url, redis_client):
    assert command.text in SHOWN_STATES, (
        f"README.md:{command.line} shows the output of '{command.text}': "
        "add to SHOWN_STATES how to prepare the state it describes"
    )
    workspace = tmp_path / "workspace"
    (workspace / "schedules").mkdir(parents=True)
    SHOWN_STATES[command.text](workspace, redis_url)
    result = run(command, workspace, redis_url)
    assert result.returncode == EXIT_CODES.get(command.text, 0), result.stdout + result.stderr
    assert result.stdout + result.stderr == command.shown_output
