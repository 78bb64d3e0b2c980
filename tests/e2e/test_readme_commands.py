"""Every shell command of the documentation is run by a test, or listed with the test that covers it.

The documentation is README.md, CONTRIBUTING.md, RELIABILITY.md,
bench/README.md and every ``docs/**/*.md`` (:func:`documents`; a new file under
``docs/`` is picked up without a change here). A *shell command* is
(:func:`doc_commands`):

* every line of an ``sh``/``shell``/``bash``/``console`` fenced block, but a
  comment line (in a block whose first line starts with ``$ ``, only the
  ``$ `` lines: the others are output);
* in a ``text`` or bare fenced block, a ``$ `` line, and a line whose first
  word (after ``NAME=value`` assignments) is a program (:data:`PROGRAMS`, or a
  path with ``/bin/`` in it); the other lines of such blocks (output, file
  layouts, Redis ``ACL`` lines) are not commands.

Each command is covered in exactly one way (:func:`coverage`):

* ``redbeat-apply ...`` runs here, against a real redis-server. The commands
  of one section (the ``#`` heading they are under, per document) run in
  order, in one workspace and a flushed Redis, from the state the section
  describes (``SECTION_STATES``, by heading; by default ``schedules/`` is a
  copy of ``examples/schedules/`` and Redis is empty), with
  ``REDBEAT_REDIS_URL`` set to the test's redis-server. Each must exit with
  the code the document gives (0 unless ``EXIT_CODES`` says otherwise), print
  what ``CLAIMS`` and the double-quoted strings of its comment
  (``# from now on: "No changes."``) say it prints, and leave the files and
  entries it is said to write. A block that starts with ``$ redbeat-apply``
  shows that command's output: it runs from the state ``SHOWN_STATES``
  prepares, and the real output must equal the shown one. Those that cannot
  run here are picked out by ``SKIP_RULES`` and must be exactly ``SKIPPED``.
* A test command (``bash scripts/test.sh ARGS``, ``... -m pytest ARGS``) runs
  here with ``--collect-only``: its arguments must be valid and select at
  least one test (running the selected tests is what CI does).
* Any other command must be in ``COVERED_ELSEWHERE`` with the test that runs
  it (checked to exist) and how, or in ``NOT_RUN`` with why no test can.

So a new command is run or explicitly listed, never silently skipped, and a
listing whose command left the documentation fails too: drop it.
"""

from __future__ import annotations

import ast
import enum
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "schedules"
BIN = Path(sys.executable).parent / "redbeat-apply"
SHELL_LANGUAGES = {"sh", "shell", "bash", "console"}
TEXT_LANGUAGES = {"text", ""}
#: Words that start a command in a ``text`` or bare block (a path containing ``/bin/`` does too).
PROGRAMS = frozenset({
    "redbeat-apply", "python", "python3", "bash", "sh", "celery", "pip", "pip3", "docker", "kubectl",
    "redis-cli", "redis-server", "git", "curl",
})


def documents() -> list[Path]:
    """The documentation whose commands are tested: the top-level guides, bench/README.md, every docs/**/*.md."""
    fixed = [ROOT / name for name in ("README.md", "CONTRIBUTING.md", "RELIABILITY.md", "bench/README.md")]
    return [path for path in fixed if path.is_file()] + sorted((ROOT / "docs").rglob("*.md"))


#: What makes a redbeat-apply command impossible to run here (a substring of the command, the reason).
SKIP_RULES: tuple[tuple[str, str], ...] = (
    ("--watch", "runs until it is stopped (a sidecar loop): no exit code to check"),
    ("redbeat-apply console", "serves the web console until it is stopped: no exit code to check"),
    ("redis-cluster://", "needs a real Redis Cluster"),
    ("sentinel://", "needs real Redis Sentinels"),
    ("rediss://", "needs a Redis with TLS"),
)
#: The redbeat-apply commands skipped, with the reason; must equal what SKIP_RULES selects.
SKIPPED: dict[str, str] = {
    "redbeat-apply --watch /schedules --redis-url redis://redis:6379/0 --listen 0.0.0.0:9185 --log-format json": (
        "the sidecar: runs until it is stopped, in a container (/schedules, host redis); "
        "the watch loop has its own tests"
    ),
    "redbeat-apply --watch /schedules --console --listen 127.0.0.1:9185": (
        "the sidecar with the console: runs until stopped; tests/e2e/test_console_processes.py runs it"
    ),
    "redbeat-apply console ./schedules/": (
        "a web server: runs until stopped; tests/e2e/test_console_processes.py runs the command, "
        "tests/integration/test_console_http.py the pages with manifests"
    ),
    "redbeat-apply console": "a web server: runs until stopped; tests/e2e/test_console_processes.py runs it",
    "redbeat-apply console --console-token-file /run/secrets/console-token ./schedules/": (
        "a web server: runs until stopped; tests/e2e/test_console_processes.py runs it with a token file"
    ),
}
#: Exit codes the documentation gives for a redbeat-apply command, when not 0.
EXIT_CODES: dict[str, int] = {}


@dataclass(frozen=True)
class Elsewhere:
    """A documented command that another test runs: ``test`` is its node id, ``how`` what it runs of it."""

    test: str
    how: str


#: Commands other tests run (as written, or as said in ``how``), by command text.
COVERED_ELSEWHERE: dict[str, Elsewhere] = {
    "bash scripts/check.sh": Elsewhere(
        "tests/unit/test_check_config.py::test_check_sh_fails_on_any_finding_and_still_runs_every_check",
        "scripts/check.sh with stand-in tools; scripts/test.sh runs it with the real ones before every test run",
    ),
    "bash scripts/demo.sh": Elsewhere(
        "tests/e2e/test_demo.py::test_demo_shows_the_edit_diff_apply_loop_and_the_new_timing_without_restarting_beat",
        "examples/demo/run.py, what scripts/demo.sh runs after installing",
    ),
    "celery -A proj beat -S redbeat.Scheduler": Elsewhere(
        "tests/e2e/test_beat_worker.py::test_beat_runs_a_saved_entry_on_time_once_per_slot",
        "celery beat -S redbeat.Scheduler with the test's app instead of proj",
    ),
    "celery -A proj beat -S redbeat.RedBeatScheduler": Elsewhere(
        "tests/unit/redbeat/test_config.py::test_celery_resolves_the_scheduler_names_users_type",
        "celery resolves -S redbeat.RedBeatScheduler (and redbeat.Scheduler) to this scheduler",
    ),
    "pip install celery-redbeat==2.4.2": Elsewhere(
        "tests/e2e/test_rollback.py::test_rollback_to_celery_redbeat_runs_every_entry_on_time",
        "celery-redbeat 2.4.2 installed with pip into its own venv (tests/support/celery_redbeat_venv.py), then run",
    ),
    ".venv/bin/python -m bench --quick": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_bench_runs_both_implementations_and_records_the_command",
        "python -m bench --quick with two scenarios and one round",
    ),
    ".venv/bin/python -m bench": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_bench_runs_both_implementations_and_records_the_command",
        "the same code at --quick sizes (the full run takes 10-15 minutes)",
    ),
    ".venv/bin/python -m bench --only tick,idle --rounds 5": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_bench_runs_both_implementations_and_records_the_command",
        "--only and --rounds, at --quick sizes with other scenarios",
    ),
    ".venv/bin/python -m bench --only overhead --rounds 3": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_bench_runs_both_implementations_and_records_the_command",
        "the overhead scenario at --quick sizes, one round",
    ),
    ".venv/bin/python -m bench.tick_profile --profile": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_tick_profile_splits_our_tick_beside_a_bare_send_loop",
        "the same module with --profile at N=300, K=30, 2 ticks",
    ),
    ".venv/bin/python -m bench --strict": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_bench_runs_both_implementations_and_records_the_command",
        "--strict at --quick sizes: exit 1 exactly when the results show a missed target",
    ),
    ".venv/bin/python bench/validate_bench.py": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_validate_bench",
        "the same script on 100 schedules",
    ),
    ".venv/bin/python -m bench.console_bench": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_console_bench",
        "the same module with 300 entries and one repeat",
    ),
    ".venv/bin/python bench/watch_latency.py": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_watch_latency",
        "the same script with 3 writes, 1 beat write and 5 schedules",
    ),
    ".venv/bin/python bench/watch_latency.py --scale 1000,10000,100000": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_watch_latency_at_scale",
        "the same script at N=200 and 400 with 2 writes",
    ),
    ".venv/bin/python bench/watch_latency.py --scale 1000,100000 --only resync": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_watch_latency_resync_only",
        "the same script at N=300 and 600",
    ),
    "python bench/watch_latency.py --scale 1000,100000 --only resync": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_watch_latency_resync_only",
        "the same script at N=300 and 600 (the figures' command, as the bench prints it)",
    ),
    "python bench/watch_latency.py --scale 1000,100000 --writes 20": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_watch_latency_at_scale",
        "the same script at N=200 and 400 with 2 writes (the figures' command, as the bench prints it)",
    ),
    ".venv/bin/python bench/watch_latency.py --scale 1000,100000 --writes 20": Elsewhere(
        "tests/e2e/test_bench_commands.py::test_watch_latency_at_scale",
        "the same script at N=200 and 400 with 2 writes (the figures' command, as the bench prints it)",
    ),
}
#: Commands no test can run, and why.
NOT_RUN: dict[str, str] = {
    "pip uninstall -y celery-redbeat": "changes the interpreter the tests run in",
    "pip install redbeat-gitops": "installs from PyPI; the tests run the package installed from the clone",
    "pip uninstall -y redbeat-gitops": "changes the interpreter the tests run in",
}
#: Documents whose every shell command (in ``sh`` blocks) a test of their own runs as written, in order, from
#: the state the document describes (history beat recorded, a django-celery-beat database, a kustomize tree):
#: their commands are not run here. The test is checked to exist and to read the document.
DOCUMENT_TESTS: dict[str, Elsewhere] = {
    "docs/operating.md": Elsewhere(
        "tests/e2e/test_operating_doc.py::test_every_command_in_the_doc_runs_as_written",
        "every redbeat-apply and celery command, after a beat recorded a run of the entry the commands name",
    ),
    "docs/deploy.md": Elsewhere(
        "tests/e2e/test_deploy_docs.py::test_every_shell_command_runs",
        "every line of its sh blocks in a directory with deploy/ (kubectl apply -k rendered with kustomize)",
    ),
    "docs/migrate-django.md": Elsewhere(
        "tests/e2e/test_migrate_django.py::test_the_documented_commands_run",
        "every command against a django-celery-beat SQLite database and a PostgreSQL one",
    ),
}


# -- reading the documentation -------------------------------------------------------


@dataclass(frozen=True)
class Command:
    text: str  # as written, without the "$ " and the trailing comment
    line: int  # in its document
    heading: str  # of the section it is in
    shown_output: str | None = None  # the output the document shows for it, for "$ ..." blocks
    comment: str = ""  # its trailing "# ..." comment
    doc: str = ""  # its document, relative to the repository

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    def words(self) -> list[str]:
        """The command's words without leading ``NAME=value`` assignments."""
        words = shlex.split(self.text)
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words.pop(0)
        return words

    def assignments(self) -> dict[str, str]:
        words = shlex.split(self.text)
        return dict(word.split("=", 1) for word in words[:len(words) - len(self.words())])

    def quoted_claims(self) -> list[str]:
        """The double-quoted strings of its comment: what the document says it prints (``# ... "No changes."``)."""
        return re.findall(r'"([^"]+)"', self.comment)

    def argv(self) -> tuple[list[str], str | None]:
        """The arguments after ``redbeat-apply`` and the file a ``> FILE`` redirects stdout to."""
        words = shlex.split(self.text)
        assert words[0] == "redbeat-apply", self
        stdout_to = None
        if ">" in words:
            at = words.index(">")
            assert at == len(words) - 2, f"{self.where}: only a final '> FILE' is supported: {self.text}"
            stdout_to = words[at + 1]
            words = words[:at]
        unsupported = {"|", "&&", ";", "||", "<", "2>", "&"} & set(words)
        assert not unsupported, f"{self.where}: shell syntax {unsupported} is not supported: {self.text}"
        return words[1:], stdout_to


@dataclass(frozen=True)
class Block:
    """A fenced block of a document: its language, the heading above it, its lines and where they start."""

    doc: str
    language: str
    heading: str
    first_line: int
    lines: tuple[str, ...]


def _split_comment(line: str) -> tuple[str, str]:
    """The command as written and its trailing ``# comment`` (a quoted '#' is not one)."""
    words = shlex.split(line, comments=True)
    for match in re.finditer(r"\s#", line):
        if shlex.split(line[:match.start()]) == words:
            return line[:match.start()].strip(), line[match.start():].strip().removeprefix("#").strip()
    return line.strip(), ""


def fenced_blocks(doc: str, text: str) -> Iterator[Block]:
    """The fenced blocks of a Markdown text, each with the heading it is under."""
    heading, fence, language, block_start = "", "", "", 0
    block: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not fence:
            opening = re.match(r"(`{3,})([\w-]*)", line)
            if opening:
                fence, language, block, block_start = opening[1], opening[2], [], number + 1
            elif re.match(r"#{1,6} ", line):
                heading = line.lstrip("#").strip()
        elif re.fullmatch(rf"{fence}`*\s*", line):
            yield Block(doc, language, heading, block_start, tuple(block))
            fence = ""
        else:
            block.append(line)


def _is_program_line(line: str) -> bool:
    """Whether a line of a text block starts with a program (after ``NAME=value`` assignments)."""
    words = re.sub(r"^(\s*[A-Za-z_][A-Za-z0-9_]*=\S*\s+)+", "", line).split()
    return bool(words) and (words[0] in PROGRAMS or "/bin/" in words[0])


def _block_commands(block: Block) -> list[Command]:
    joined: list[tuple[int, str]] = []  # (line, text) with "\" continuations joined
    for offset, line in enumerate(block.lines):
        if joined and joined[-1][1].endswith("\\"):
            joined[-1] = (joined[-1][0], joined[-1][1][:-1].rstrip() + " " + line.strip())
        else:
            joined.append((block.first_line + offset, line))
    transcript = bool(joined) and joined[0][1].startswith("$ ")
    commands = []
    for index, (number, line) in enumerate(joined):
        if transcript and line.startswith("$ "):
            output = []
            for _, following in joined[index + 1:]:
                if following.startswith("$ "):
                    break
                output.append(following)
            shown = "\n".join(output).rstrip("\n") + "\n"
            commands.append(Command(_split_comment(line[2:])[0], number, block.heading, shown, doc=block.doc))
        elif transcript or not line.strip() or line.lstrip().startswith("#"):
            continue
        elif block.language in SHELL_LANGUAGES or _is_program_line(line):
            text, comment = _split_comment(line)
            commands.append(Command(text, number, block.heading, comment=comment, doc=block.doc))
    return commands


def doc_commands(doc: str, text: str) -> list[Command]:
    """The shell commands of a document's fenced blocks, in order, each with the heading it is under."""
    return [
        command
        for block in fenced_blocks(doc, text)
        if block.language in SHELL_LANGUAGES | TEXT_LANGUAGES
        for command in _block_commands(block)
    ]


ALL_COMMANDS = [
    command for path in documents() for command in doc_commands(path.relative_to(ROOT).as_posix(), path.read_text())
]
#: The redbeat-apply commands, which this module runs (those of DOCUMENT_TESTS' documents run there).
COMMANDS = [c for c in ALL_COMMANDS if c.words()[:1] == ["redbeat-apply"] and c.doc not in DOCUMENT_TESTS]


def _skip_reason(command: Command) -> str | None:
    for needle, reason in SKIP_RULES:
        if needle in command.text:
            return reason
    return None


class Coverage(enum.Enum):
    RUN_HERE = "run by this module against a real redis-server"
    COLLECTED = "a test command: run here with --collect-only"
    ELSEWHERE = "run by the test COVERED_ELSEWHERE names"
    NOT_RUN = "listed in SKIPPED or NOT_RUN with the reason"


def _pytest_arguments(command: Command) -> list[str] | None:
    """The pytest arguments of a test command (``bash scripts/test.sh ARGS``, ``python -m pytest ARGS``)."""
    words = command.words()
    if words[:2] == ["bash", "scripts/test.sh"]:
        return words[2:]
    if len(words) >= 3 and Path(words[0]).name.startswith("python") and words[1:3] == ["-m", "pytest"]:
        return words[3:]
    return None


def coverage(command: Command) -> Coverage | None:
    """How a documented command is covered; None when it is not (the test fails on it)."""
    if command.doc in DOCUMENT_TESTS:
        return Coverage.ELSEWHERE
    if command in COMMANDS:
        return Coverage.NOT_RUN if _skip_reason(command) else Coverage.RUN_HERE
    if _pytest_arguments(command) is not None:
        return Coverage.COLLECTED
    if command.text in COVERED_ELSEWHERE:
        return Coverage.ELSEWHERE
    if command.text in NOT_RUN:
        return Coverage.NOT_RUN
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


def _ready_to_roll_back(workspace: Path, redis_url: str) -> None:
    """docs/switching.md "Rolling back": the examples without reports.yaml, whose per-schedule time zone is
    an extension celery-redbeat cannot run (the --compat check exists to find such files)."""
    _examples(workspace, redis_url)
    (workspace / "schedules" / "reports.yaml").unlink()


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


def _examples_applied(workspace: Path, redis_url: str) -> None:
    """README "Operating schedules": the examples applied (nightly-report among them), no runs yet."""
    _examples(workspace, redis_url)
    apply_cli(workspace, redis_url, "schedules/")


#: The state a document section's commands start from, when it is not _examples (by heading).
SECTION_STATES: dict[str, Callable[[Path, str], None]] = {
    "Operating schedules": _examples_applied,
    "From celery-redbeat": _celery_redbeat_deployment,
    "Rolling back to celery-redbeat": _ready_to_roll_back,
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

#: The sections with redbeat-apply commands to run (not shown with their output, not skipped), as
#: (document, heading), in document order.
SECTIONS = list(dict.fromkeys(
    (c.doc, c.heading) for c in COMMANDS if c.shown_output is None and c.text not in SKIPPED
))
#: The distinct test commands of the documentation (the first place each is shown).
TEST_COMMANDS = list({c.text: c for c in reversed(ALL_COMMANDS) if coverage(c) is Coverage.COLLECTED}.values())[::-1]


# -- the tests -----------------------------------------------------------------------


def test_the_readme_and_contributing_show_their_main_commands() -> None:
    texts = [c.text for c in COMMANDS]
    # The main forms; if one goes away on purpose, drop it here.
    for expected in ("redbeat-apply --dry-run ./schedules/", "redbeat-apply ./schedules/", "redbeat-apply status"):
        assert expected in texts, texts
    assert any(c.shown_output for c in COMMANDS), "no '$ redbeat-apply' block with its output found"
    assert {"README.md", "CONTRIBUTING.md"} <= {c.doc for c in ALL_COMMANDS}
    assert any(c.doc == "CONTRIBUTING.md" and c.text.startswith("bash scripts/test.sh -m") for c in TEST_COMMANDS)
    stale: list[object] = [key for key in CLAIMS if not any((c.heading, c.text) == key for c in COMMANDS)]
    stale += [heading for heading in SECTION_STATES if heading not in {h for _, h in SECTIONS}]
    assert not stale, f"no longer in the documentation, drop them here: {stale}"


def test_the_skipped_commands_are_exactly_the_documented_list() -> None:
    selected = {c.text: _skip_reason(c) for c in COMMANDS if _skip_reason(c) is not None}
    assert set(selected) == set(SKIPPED), (
        "redbeat-apply commands that cannot run here must be listed in SKIPPED with the reason, "
        f"and SKIPPED may list only such commands: selected by SKIP_RULES {selected}, SKIPPED {SKIPPED}"
    )
    for text, reason in SKIPPED.items():
        assert reason, text


def test_every_shell_command_of_the_documentation_is_run_or_listed() -> None:
    uncovered = [f"{c.where}: {c.text}" for c in ALL_COMMANDS if coverage(c) is None]
    assert not uncovered, (
        "shell commands no test runs: run them in a test and list them in COVERED_ELSEWHERE with that test, "
        "or say in NOT_RUN why no test can:\n  " + "\n  ".join(uncovered)
    )
    texts = {c.text for c in ALL_COMMANDS}
    stale = sorted((set(COVERED_ELSEWHERE) | set(NOT_RUN)) - texts)
    assert not stale, f"listed but in no document any more, drop them here: {stale}"
    assert not set(COVERED_ELSEWHERE) & set(NOT_RUN)
    assert all(NOT_RUN.values()) and all(e.how for e in COVERED_ELSEWHERE.values())


def _defines_test(node_id: str) -> bool:
    """Whether the node id (``path::function`` or ``path::Class::function``) names a test in that file."""
    path, *names = node_id.split("::")
    file = ROOT / path
    if not file.is_file() or not names:
        return False
    scope: list[ast.stmt] = ast.parse(file.read_text()).body
    for name in names:
        found = [n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name]
        if not found:
            return False
        scope = found[0].body
    return names[-1].startswith("test")


def test_the_tests_named_as_covering_commands_exist() -> None:
    missing = {text: e.test for text, e in COVERED_ELSEWHERE.items() if not _defines_test(e.test)}
    assert not missing, f"COVERED_ELSEWHERE names tests that do not exist: {missing}"
    documents_now = {path.relative_to(ROOT).as_posix() for path in documents()}
    missing = {doc: e.test for doc, e in DOCUMENT_TESTS.items()
               if doc not in documents_now or not _defines_test(e.test)}
    assert not missing, f"DOCUMENT_TESTS names documents or tests that do not exist: {missing}"
    unread = [doc for doc, e in DOCUMENT_TESTS.items()
              if f'"{Path(doc).name}"' not in (ROOT / e.test.split("::")[0]).read_text()]
    assert not unread, f"the tests DOCUMENT_TESTS names do not read these documents: {unread}"


def test_the_rules_find_commands_and_only_commands() -> None:
    """A text block's output, layouts and ACL lines are not commands; its program lines and $ lines are."""
    doc = textwrap.dedent("""\
        ```
        schedules/reports.yaml:14:11: schedules[2].cron: out of range
        ACL SETUSER beat on >PASSWORD ~redbeat:* +@all
        tests/
          unit/     pure code
        .venv/bin/python bench/validate_bench.py
        REDBEAT_X=1 redbeat-apply status   # a comment
        ```

        ```sh
        # a comment line
        bash scripts/test.sh -m "not slow" \\
          -x
        ```

        ```text
        $ python bench/watch_latency.py
        # Linux
        p50= 89 ms
        ```

        ```yaml
        redbeat-apply: not a command in YAML
        ```
    """)
    found = [(c.text, c.line, c.comment, c.shown_output) for c in doc_commands("x.md", doc)]
    assert found == [
        (".venv/bin/python bench/validate_bench.py", 6, "", None),
        ("REDBEAT_X=1 redbeat-apply status", 7, "a comment", None),
        ('bash scripts/test.sh -m "not slow" -x', 12, "", None),
        ("python bench/watch_latency.py", 17, "", "# Linux\np50= 89 ms\n"),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("command", TEST_COMMANDS, ids=lambda c: c.where)
def test_every_test_command_selects_tests(command: Command) -> None:
    """A documented test command's arguments are valid and select at least one test (CI runs them all)."""
    arguments = _pytest_arguments(command)
    assert arguments is not None
    env = {**os.environ, **command.assignments()}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *arguments, "--collect-only", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    selected = re.search(r"(\d+)(?:/\d+)? tests? collected", output)
    assert result.returncode == 0 and selected and int(selected[1]) > 0, (
        f"{command.where}: {command.text}\n{output[-3000:]}"
    )


@pytest.mark.parametrize("section", SECTIONS, ids=lambda section: f"{section[0]}:{section[1]}")
def test_every_redbeat_apply_command_exits_as_documented(
    section: tuple[str, str], tmp_path: Path, redis_url: str, redis_client: redis.Redis,
) -> None:
    """The section's commands, in order, in one workspace and Redis, from the state the section describes."""
    doc, heading = section
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    SECTION_STATES.get(heading, _examples)(workspace, redis_url)
    ran, failures = [], []
    for command in COMMANDS:
        if (command.doc, command.heading) != section or command.shown_output is not None or command.text in SKIPPED:
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
                f"{command.where}: {command.text}\n  " + "; ".join(problems) + "\n"
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


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.shown_output is not None], ids=lambda c: c.where)
def test_shown_output_is_the_real_output(
    command: Command, tmp_path: Path, redis_url: str, redis_client: redis.Redis,
) -> None:
    assert command.text in SHOWN_STATES, (
        f"{command.where} shows the output of '{command.text}': "
        "add to SHOWN_STATES how to prepare the state it describes"
    )
    workspace = tmp_path / "workspace"
    (workspace / "schedules").mkdir(parents=True)
    SHOWN_STATES[command.text](workspace, redis_url)
    result = run(command, workspace, redis_url)
    assert result.returncode == EXIT_CODES.get(command.text, 0), result.stdout + result.stderr
    assert result.stdout + result.stderr == command.shown_output
