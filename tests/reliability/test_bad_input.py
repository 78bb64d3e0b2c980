"""Scenario 5: bad input through the real ``redbeat-apply`` process (RELIABILITY.md).

tests/unit/reconciler/test_corpus.py checks the *messages* of the committed
corpus in-process.  This file checks the *process* on input built here by code
(hostile files are generated, not committed): every case runs
``redbeat-apply --redis-url <test redis> good PATH...`` as a child process,
where ``good/`` holds one valid manifest that an apply would write, and must

* exit 3, with no traceback;
* name the right file in ``file:line`` form (``file:`` for whole-file
  problems) and report the expected number of errors (one, unless the case
  says otherwise);
* finish within :data:`TIME_BOUND` seconds and :data:`MEMORY_BOUND_MB` of
  resident memory (the child's own ``ru_maxrss`` from ``wait4``);
* send Redis zero writes: ``rdb_changes_since_last_save`` unchanged and no
  write command in ``INFO commandstats``.

The cases run concurrently (one child per CPU) against one redis-server; the
zero-write check covers the whole batch, and if it ever fails the batch is
re-run case by case to name the culprit.

Running as root (CI containers) ``chmod 000`` does not stop reads, so the
"unreadable" cases use what even root cannot read: ``/proc/self/mem``
(``EIO`` on read) for a file, ``/proc/1/map_files`` (``EACCES`` without
``CAP_SYS_ADMIN``) for a directory, and a FIFO nobody writes to.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import pickle
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.redis_proc import commandstats, dirty_count, env_without_redbeat, write_calls

pytestmark = pytest.mark.reliability

TIME_BOUND = 10.0  # seconds, per process
MEMORY_BOUND_MB = 300.0  # max RSS of the child
FIFO_TIME_BOUND = 20.0  # the FIFO case waits reconciler.manifests.loader.PIPE_TIMEOUT (10 s) by design
HEAD_BYTES = 256 * 1024  # stderr read for the checks (some reports quote multi-MB lines)

GOOD = "name: good-one\ntask: app.tasks.ok\nevery: 30s\n"
JOB = "name: {name}\ntask: app.tasks.job\nevery: 30s\n"


def cli() -> list[str]:
    script = Path(sys.executable).with_name("redbeat-apply")
    if script.exists():
        return [str(script)]
    found = shutil.which("redbeat-apply")
    return [found] if found else [sys.executable, "-m", "reconciler.cli.main"]


def is_root() -> bool:
    return os.geteuid() == 0


# --- building the cases --------------------------------------------------------------------------


def w(root: Path, rel: str, content: str | bytes) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return rel


def one(rel: str, content: str | bytes) -> Callable[[Path], list[str]]:
    """A case that is a single file, passed explicitly."""
    return lambda root: [w(root, rel, content)]


def in_dir(directory: str, files: dict[str, str | bytes]) -> Callable[[Path], list[str]]:
    def build(root: Path) -> list[str]:
        for rel, content in files.items():
            w(root, f"{directory}/{rel}", content)
        (root / directory).mkdir(parents=True, exist_ok=True)
        return [directory]

    return build


def billion_laughs(levels: int = 9, width: int = 10) -> str:
    lines = ['l0: &l0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int = 9, width: int = 10) -> str:
    lines = ["m0: &m0 {k0: 0, k1: 1, k2: 2}"]
    for i in range(1, levels + 1):
        lines.append(f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * width) + "]}")
    return "\n".join(lines) + "\n"


def fifo(rel: str) -> Callable[[Path], list[str]]:
    def build(root: Path) -> list[str]:
        os.mkfifo(root / rel)
        return [rel]

    return build


def unix_socket(rel: str, explicit: bool) -> Callable[[Path], list[str]]:
    def build(root: Path) -> list[str]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # AF_UNIX paths are limited to ~108 bytes: bind relative to the directory
        cwd = os.getcwd()
        os.chdir(path.parent)
        try:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(path.name)
            sock.close()  # the socket file stays; nothing listens on it
        finally:
            os.chdir(cwd)
        return [rel] if explicit else [str(Path(rel).parent)]

    return build


def symlink(rel: str, target: str, *, arg: str | None = None, extra: dict[str, str] | None = None):
    def build(root: Path) -> list[str]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for name, content in (extra or {}).items():
            w(root, name, content)
        os.symlink(target, path)
        return [arg or rel]

    return build


def symlink_loop(root: Path) -> list[str]:
    (root / "loop").mkdir()
    os.symlink("b.yaml", root / "loop" / "a.yaml")
    os.symlink("a.yaml", root / "loop" / "b.yaml")
    return ["loop"]


def directory_loop(root: Path) -> list[str]:
    w(root, "tree/sub/x.yaml", JOB.format(name="in-tree"))
    os.symlink("..", root / "tree" / "sub" / "up")
    return ["tree"]


def unreadable_file(root: Path) -> list[str]:
    if is_root():  # root reads through chmod 000; /proc/self/mem opens but every read at offset 0 is EIO
        os.symlink("/proc/self/mem", root / "locked.yaml")
    else:
        w(root, "locked.yaml", GOOD.replace("good-one", "locked"))
        (root / "locked.yaml").chmod(0)
    return ["locked.yaml"]


def unlistable_dir(root: Path) -> list[str]:
    if is_root():
        target = Path("/proc/1/map_files")
        try:
            os.listdir(target)
        except PermissionError:
            os.symlink(target, root / "locked")
            return ["locked"]
        pytest.skip("running as root with CAP_SYS_ADMIN: no directory here that root cannot list")
    w(root, "locked/x.yaml", GOOD.replace("good-one", "hidden"))
    (root / "locked").chmod(0)
    return ["locked"]


def big_file(root: Path) -> list[str]:
    block = ("# " + "x" * 1021 + "\n").encode()  # 1 KiB
    with (root / "huge.yaml").open("wb") as handle:
        handle.write(JOB.format(name="huge").encode())
        for _ in range(50 * 1024):
            handle.write(block)
    return ["huge.yaml"]


def dev_zero(root: Path) -> list[str]:
    os.symlink("/dev/zero", root / "zero.yaml")
    return ["zero.yaml"]


def empty_dir(root: Path) -> list[str]:
    (root / "empty").mkdir()
    return ["empty"]


def many_good_then_bad(root: Path) -> list[str]:
    items = [f"  - {{name: item-{i}, task: app.tasks.job, every: {i + 1}s}}" for i in range(50)]
    items[36] = "  - {name: item-36, task: app.tasks.job, every: -5s}"
    return [w(root, "many.yaml", "schedules:\n" + "\n".join(items) + "\n")]


# --- the table -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], list[str]]
    file: str  # the path the error must name, as the CLI was given it
    line: int | None  # None: a whole-file problem, reported as "file: message"
    text: str = ""  # a substring of that error's message
    errors: int = 1
    timeout: float = TIME_BOUND


C = Case
CASES: list[Case] = [
    # malformed YAML
    C(
        "yaml-unclosed-flow-mapping",
        one("a.yaml", "schedules:\n  - {name: a, task: app.t, every: 30s\n"),
        "a.yaml",
        3,
        "invalid YAML",
    ),
    C("yaml-unclosed-quote", one("a.yaml", 'name: "abc\ntask: app.t\nevery: 30s\n'), "a.yaml", 4, "invalid YAML"),
    C("yaml-bad-indentation", one("a.yaml", "name: a\n  task: app.t\nevery: 30s\n"), "a.yaml", 2, "invalid YAML"),
    C("yaml-tab-indentation", one("a.yaml", "schedules:\n\t- name: a\n"), "a.yaml", 2, "tab character"),
    C("yaml-duplicate-key", one("a.yaml", "name: a\ntask: app.t\nevery: 30s\nname: b\n"), "a.yaml", 4, "duplicate key"),
    C("yaml-undefined-alias", one("a.yaml", "name: *nope\ntask: app.t\nevery: 30s\n"), "a.yaml", 1, "invalid YAML"),
    C("yaml-stray-bracket", one("a.yaml", "name: a\nargs: [1, 2]]\n"), "a.yaml", 2, "invalid YAML"),
    C("yaml-unknown-version", one("a.yaml", "%YAML 2.0\n---\nname: a\n"), "a.yaml", 1, "invalid YAML"),
    C(
        "yaml-second-document-broken",
        one("a.yaml", JOB.format(name="first") + "---\nname: [x\n"),
        "a.yaml",
        6,
        "invalid YAML",
    ),
    C(
        "yaml-control-character",
        one("a.yaml", "name: a\x07b\ntask: app.t\nevery: 30s\n"),
        "a.yaml",
        None,
        "invalid YAML",
    ),
    C(
        "yaml-long-implicit-key",
        one("a.yaml", JOB.format(name="k") + "k" * 2000 + ": 1\n"),
        "a.yaml",
        4,
        "invalid YAML",
    ),
    C(
        "yaml-content-after-document-end",
        one("a.yaml", JOB.format(name="t") + "...\nplain words\n"),
        "a.yaml",
        5,
        "invalid YAML",
    ),
    # schema and semantic violations, seen from the process
    C("schema-missing-task", one("a.yaml", "name: a\nevery: 30s\n"), "a.yaml", 1, "missing required field 'task'"),
    C(
        "schema-unknown-field",
        one("a.yaml", JOB.format(name="a") + "retries: 3\n"),
        "a.yaml",
        4,
        "unknown field 'retries'",
    ),
    C("schema-two-kinds", one("a.yaml", JOB.format(name="a") + 'cron: "* * * * *"\n'), "a.yaml", 3, "only one of"),
    C(
        "schema-schedules-not-a-list",
        one("a.yaml", "schedules: {name: a, task: app.t, every: 30s}\n"),
        "a.yaml",
        1,
        "expected a list",
    ),
    C("schema-name-number", one("a.yaml", "name: 123\ntask: app.t\nevery: 30s\n"), "a.yaml", 1, "expected a string"),
    C(
        "schema-defaults-name",
        one("a.yaml", "defaults: {name: x}\nschedules:\n  - {name: a, task: app.t, every: 30s}\n"),
        "a.yaml",
        1,
        "cannot be set in defaults",
    ),
    C("schema-bad-item-37-of-50", many_good_then_bad, "many.yaml", 38, "schedules[36].every"),
    C("semantic-cron-minute-61", one("a.yaml", 'name: a\ntask: app.t\ncron: "61 * * * *"\n'), "a.yaml", 3),
    C(
        "semantic-unknown-timezone",
        one("a.yaml", 'name: a\ntask: app.t\ncron: "0 3 * * *"\ntimezone: Mars/Olympus_Mons\n'),
        "a.yaml",
        4,
    ),
    # hostile YAML
    C("hostile-billion-laughs", one("a.yaml", billion_laughs()), "a.yaml", 1, "billion laughs"),
    C("hostile-merge-key-bomb", one("a.yaml", merge_bomb()), "a.yaml", 1, "billion laughs"),
    C("hostile-alias-flood", one("a.yaml", "a: &x [1]\nb: [" + "*x, " * 300_000 + "]\n"), "a.yaml", 2, "YAML nodes"),
    C("hostile-recursive-alias", one("a.yaml", "name: &x [*x]\n"), "a.yaml", 1, "recursive alias"),
    C("hostile-10k-deep-flow-lists", one("a.yaml", "[" * 10_000 + "]" * 10_000 + "\n"), "a.yaml", 1, "nesting depth"),
    C(
        "hostile-10k-deep-flow-maps",
        one("a.yaml", "{a: " * 10_000 + "1" + "}" * 10_000 + "\n"),
        "a.yaml",
        1,
        "nesting depth",
    ),
    C(
        "hostile-2000-deep-block-maps",
        one("a.yaml", "".join("  " * i + "a:\n" for i in range(2000)) + "  " * 2000 + "1\n"),
        "a.yaml",
        1000,
        "nesting depth",
    ),
    C(
        "hostile-500-deep-kwargs",
        one("a.yaml", JOB.format(name="deep") + "kwargs: " + "{a: " * 500 + "1" + "}" * 500 + "\n"),
        "a.yaml",
        4,
        "nest deeper",
    ),
    C("hostile-500-deep-list", one("a.yaml", "schedules: " + "[" * 500 + "]" * 500 + "\n"), "a.yaml", 1, "nest deeper"),
    C("hostile-50MB-file", big_file, "huge.yaml", None, "limited to"),
    C("hostile-one-byte-over-5MiB", one("a.yaml", "#" * (5 * 1024 * 1024) + "\n"), "a.yaml", None, "limited to"),
    C("hostile-million-comment-lines", one("a.yaml", "# c\n" * 1_000_000), "a.yaml", None, "no YAML documents"),
    C("hostile-million-item-list", one("a.yaml", "- 1\n" * 1_000_000), "a.yaml", 200_000, "YAML nodes"),
    C("hostile-2.5M-flow-items", one("a.yaml", "[" + "1," * 2_500_000 + "1]\n"), "a.yaml", 1, "YAML nodes"),
    C("hostile-million-empty-documents", one("a.yaml", "---\n" * 1_000_000), "a.yaml", 200_002, "YAML nodes"),
    C(
        "hostile-150k-kwargs-keys",
        one("a.yaml", JOB.format(name="keys") + "kwargs:\n" + "".join(f"  k{i}: {i}\n" for i in range(150_000))),
        "a.yaml",
        100_000,
        "YAML nodes",
    ),
    C(
        "hostile-4MB-value-of-unknown-field",
        one("a.yaml", JOB.format(name="v") + "notes: '" + "x" * 4_000_000 + "'\n"),
        "a.yaml",
        4,
        "unknown field 'notes'",
    ),
    C(
        "hostile-3MB-explicit-key",
        one("a.yaml", JOB.format(name="k") + "? " + "k" * 3_000_000 + "\n: 1\n"),
        "a.yaml",
        4,
    ),  # message: see the report-size test
    # encodings
    C(
        "encoding-utf16-le-bom",
        one("a.yaml", "\ufeff".encode("utf-16-le") + GOOD.replace("good-one", "u16").encode("utf-16-le")),
        "a.yaml",
        None,
        "UTF-16",
    ),
    C(
        "encoding-utf16-no-bom",
        one("a.yaml", GOOD.replace("good-one", "u16").encode("utf-16-le")),
        "a.yaml",
        None,
        "NUL byte",
    ),
    C("encoding-utf32-bom", one("a.yaml", GOOD.replace("good-one", "u32").encode("utf-32")), "a.yaml", None),
    C(
        "encoding-latin1",
        one("a.yaml", "name: a\ntask: app.t\nevery: 30s\nkwargs: {city: 'Zürich'}\n".encode("latin-1")),
        "a.yaml",
        4,
        "not valid UTF-8",
    ),
    C("encoding-bom-then-tab", one("a.yaml", "\ufeffschedules:\n\t- name: a\n".encode()), "a.yaml", 2, "tab character"),
    C("encoding-nul-in-middle", one("a.yaml", b"name: a\ntask: app.t\x00\nevery: 30s\n"), "a.yaml", None, "NUL byte"),
    C("encoding-gzip", one("a.yaml", gzip.compress(GOOD.encode(), mtime=0)), "a.yaml", None),
    C(
        "encoding-random-bytes",
        one("a.yaml", bytes(random.Random(5).randrange(1, 256) for _ in range(4096))),
        "a.yaml",
        1,
        "not valid UTF-8",
    ),
    C(
        "encoding-overlong-utf8",
        one("a.yaml", b"name: a\xc0\xafb\ntask: app.t\nevery: 30s\n"),
        "a.yaml",
        1,
        "not valid UTF-8",
    ),
    C("encoding-truncated-utf8-at-eof", one("a.yaml", GOOD.encode() + b"# \xe2\x82"), "a.yaml", 4, "not valid UTF-8"),
    C(
        "encoding-utf8-surrogate",
        one("a.yaml", b"name: a\ntask: app.t\nevery: 30s\nargs: ['\xed\xa0\x80']\n"),
        "a.yaml",
        4,
        "not valid UTF-8",
    ),
    # the file system
    C("fs-symlink-loop", symlink_loop, "loop/a.yaml", None, "symlink loop", errors=2),  # a.yaml and b.yaml
    C("fs-symlink-to-itself", symlink("self.yaml", "self.yaml"), "self.yaml", None, "symlink loop"),
    C("fs-directory-contains-itself", directory_loop, "tree/sub/up", None, "contains itself"),
    C(
        "fs-broken-symlink",
        symlink(
            "dir/dangling.yaml", "nowhere.yaml", arg="dir", extra={"dir/ok.yaml": JOB.format(name="near-dangling")}
        ),
        "dir/dangling.yaml",
        None,
        "broken symlink",
    ),
    C("fs-missing-path", lambda root: ["does-not-exist.yaml"], "does-not-exist.yaml", None, "No such file"),
    C(
        "fs-path-through-a-file",
        lambda root: ["good/ok.yaml/sub.yaml"],
        "good/ok.yaml/sub.yaml",
        None,
        "Not a directory",
    ),
    C("fs-unreadable-file", unreadable_file, "locked.yaml", None, "cannot read"),
    C("fs-unlistable-directory", unlistable_dir, "locked", None, "cannot list directory"),
    C("fs-fifo-without-writer", fifo("pipe.yaml"), "pipe.yaml", None, "FIFO", timeout=FIFO_TIME_BOUND),
    C("fs-fifo-in-directory", in_dir("d", {"ok.yaml": JOB.format(name="beside-fifo")}), "d", None),  # replaced below
    C("fs-socket-given", unix_socket("s/sock.yaml", explicit=True), "s/sock.yaml", None, "cannot read"),
    C("fs-socket-in-directory", unix_socket("s/sock.yaml", explicit=False), "s/sock.yaml", None, "not a regular file"),
    C("fs-dev-zero", dev_zero, "zero.yaml", None, "larger than"),
    C("fs-empty-directory", empty_dir, "empty", None, "no manifests"),
    C(
        "fs-directory-of-non-yaml",
        in_dir(
            "docs", {"README.md": "# hi\n", "data.json": "{}", "x.yaml.bak": GOOD, "x.yml~": GOOD, "yaml": "name: a\n"}
        ),
        "docs",
        None,
        "no manifests",
    ),
    C(
        "fs-only-hidden-yaml",
        in_dir("hid", {".a.yaml": JOB.format(name="hidden"), ".git/b.yaml": JOB.format(name="git")}),
        "hid",
        None,
        "no manifests",
    ),
    C("fs-empty-file", one("a.yaml", b""), "a.yaml", None, "empty"),
    C("fs-only-comments", one("a.yaml", "# nothing\n# here\n"), "a.yaml", None, "no YAML documents"),
    C("fs-null-document", one("a.yaml", "~\n"), "a.yaml", None, "no YAML documents"),
    # names
    C(
        "name-leading-colon",
        one("a.yaml", "name: ':schedule'\ntask: app.t\nevery: 30s\n"),
        "a.yaml",
        1,
        "may not begin with ':'",
    ),
    C("name-empty", one("a.yaml", "name: ''\ntask: app.t\nevery: 30s\n"), "a.yaml", 1, "must not be empty"),
    C(
        "name-duplicate-across-files",
        in_dir("dup", {"a.yaml": JOB.format(name="twice"), "b.yaml": "# b\n" + JOB.format(name="twice")}),
        "dup/b.yaml",
        2,
        "duplicate name",
    ),
    C(
        "name-duplicate-across-subdirs",
        in_dir("dup", {"x/a.yaml": JOB.format(name="twice"), "y/z/b.yaml": JOB.format(name="twice")}),
        "dup/y/z/b.yaml",
        1,
        "duplicate name",
    ),
    C(
        "name-duplicate-in-two-documents",
        one("a.yaml", JOB.format(name="twice") + "---\n" + JOB.format(name="twice")),
        "a.yaml",
        5,
        "duplicate name",
    ),
    C("name-duplicate-with-good", one("a.yaml", JOB.format(name="good-one")), "a.yaml", 1, "duplicate name"),
]


def _fifo_in_directory(root: Path) -> list[str]:
    w(root, "d/ok.yaml", JOB.format(name="beside-fifo"))
    os.mkfifo(root / "d" / "pipe.yaml")
    return ["d"]


CASES = [
    C("fs-fifo-in-directory", _fifo_in_directory, "d/pipe.yaml", None, "not a regular file")
    if c.id == "fs-fifo-in-directory"
    else c
    for c in CASES
]

#: Names that are refused: control characters would reach the terminal raw in the text diff, and
#: django-celery-beat's own limit is 200 characters.
NAME_GAPS: list[Case] = [
    C("name-newline", one("a.yaml", 'name: "line1\\n+ create   forged"\ntask: app.t\nevery: 30s\n'), "a.yaml", 1),
    C("name-ansi-escape", one("a.yaml", 'name: "x\\e[2J\\e[31mred"\ntask: app.t\nevery: 30s\n'), "a.yaml", 1),
    C("name-nul-escape", one("a.yaml", 'name: "a\\0b"\ntask: app.t\nevery: 30s\n'), "a.yaml", 1),
    C("name-c1-control", one("a.yaml", 'name: "a\\x85b"\ntask: app.t\nevery: 30s\n'), "a.yaml", 1),
    C("name-10k-characters", one("a.yaml", f"name: {'n' * 10_000}\ntask: app.t\nevery: 30s\n"), "a.yaml", 1),
]


# --- running them ------------------------------------------------------------------------------------


@dataclass
class Result:
    args: list[str]
    returncode: int
    seconds: float
    max_rss_mb: float
    stderr: str  # the first HEAD_BYTES and the last 4 KiB
    stderr_bytes: int
    stdout: str


#: Runs argv[2:] as its child and writes that child's peak RSS (KiB) to the file argv[1].  Linux carries the
#: high-water mark of the memory a process had before exec into its ru_maxrss, so a child forked straight
#: from this (large, late in the suite) test process would report the test process's size; forked from
#: this small launcher, it reports its own.
RSS_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def run_measured(argv: list[str], cwd: Path, timeout: float) -> Result:
    """Run ``argv``; wall time, and the child's own peak RSS from wait4 (through :data:`RSS_LAUNCHER`)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        proc = subprocess.Popen(
            [sys.executable, "-c", RSS_LAUNCHER, rss.name, *argv],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env_without_redbeat(),
            start_new_session=True,
        )
        killer = threading.Timer(timeout + 10, lambda: os.killpg(proc.pid, signal.SIGKILL))
        started = time.monotonic()
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        size = err.seek(0, os.SEEK_END)
        err.seek(0)
        text = err.read(HEAD_BYTES)
        if size > HEAD_BYTES:
            err.seek(max(HEAD_BYTES, size - 4096))
            text += b"\n[...]\n" + err.read()
        out.seek(0)
        return Result(
            argv,
            proc.returncode,
            seconds,
            int(rss.read() or usage.ru_maxrss) / 1024.0,
            text.decode("utf-8", "replace"),
            size,
            out.read(HEAD_BYTES).decode("utf-8", "replace"),
        )


def prepare(case: Case, base: Path) -> tuple[Path, list[str]]:
    root = base / case.id
    root.mkdir(parents=True)
    w(root, "good/ok.yaml", GOOD)
    return root, ["good", *case.build(root)]


def run_case(case: Case, base: Path, redis_url: str) -> Result:
    root, paths = prepare(case, base)
    return run_measured([*cli(), "--redis-url", redis_url, *paths], root, case.timeout)


def check(case: Case, result: Result) -> None:
    where = f"{case.file}:{case.line}:" if case.line is not None else f"{case.file}: "
    context = (
        f"{case.id}: {' '.join(result.args[-3:])}\nexit {result.returncode}, {result.seconds:.2f} s, "
        f"{result.max_rss_mb:.0f} MB\nstderr ({result.stderr_bytes} bytes):\n{result.stderr[:3000]}"
    )
    assert "Traceback" not in result.stderr, context
    assert result.returncode == 3, context
    headlines = [line for line in result.stderr.splitlines() if line.startswith(where)]
    assert headlines, f"no error at {where!r}\n{context}"
    assert any(case.text in line for line in headlines), f"{case.text!r} not in {headlines}\n{context}"
    summary = f"{case.errors} error{'s' if case.errors != 1 else ''} in "
    assert any(line.startswith(summary) for line in result.stderr.splitlines()), context
    assert result.seconds < case.timeout, context
    assert result.max_rss_mb < MEMORY_BOUND_MB, context
    assert not result.stdout.strip(), context  # nothing planned, nothing applied


@dataclass
class Batch:
    results: dict[str, Result]
    skipped: dict[str, str]
    dirty_before: int
    dirty_after: int
    writes: dict[str, int]
    culprits: dict[str, dict[str, int]]
    seconds: float


def run_batch(redis_server, tmp_path_factory) -> Batch:
    """Every case of CASES, run concurrently against the session's redis-server, with the zero-write check."""
    base = tmp_path_factory.mktemp("bad-input")
    client = redis_server.client()
    client.flushall()
    dirty_before = dirty_count(client)
    client.config_resetstat()
    results: dict[str, Result] = {}
    skipped: dict[str, str] = {}

    def go(case: Case) -> None:
        try:
            results[case.id] = run_case(case, base, redis_server.url)
        except pytest.skip.Exception as exc:
            skipped[case.id] = str(exc)

    started = time.monotonic()
    try:
        # the heaviest first, so they do not end up alone at the tail
        heavy = sorted(CASES, key=lambda c: not c.id.startswith(("hostile", "fs-fifo")))
        with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
            list(pool.map(go, heavy))
        seconds = time.monotonic() - started
        dirty_after = dirty_count(client)
        writes = write_calls(commandstats(client))
        culprits: dict[str, dict[str, int]] = {}
        if writes or dirty_after != dirty_before:  # find out which case wrote: one at a time
            again = tmp_path_factory.mktemp("bad-input-again")
            for case in CASES:
                client.flushall()
                client.config_resetstat()
                try:
                    run_case(case, again, redis_server.url)
                except pytest.skip.Exception:
                    continue
                found = write_calls(commandstats(client))
                if found:
                    culprits[case.id] = found
        return Batch(results, skipped, dirty_before, dirty_after, writes, culprits, seconds)
    finally:
        for path in base.rglob("*"):  # chmod 000 leftovers would stop pytest's tmp cleanup as non-root
            if not path.is_symlink():
                with contextlib.suppress(OSError):
                    path.chmod(0o700)
        client.close()


@pytest.fixture(scope="module")
def batch(redis_server, tmp_path_factory) -> Batch:
    """The one run of every case (run_batch) that the tests below check.

    Under pytest-xdist the module's tests may be spread over several workers, each with this module fixture of its
    own; the first to need it runs the batch (~30 s of CPU) under a lock in the session's shared temp dir and the
    others read its result, so the cases run once a session, never concurrently with a second copy of themselves.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return run_batch(redis_server, tmp_path_factory)
    shared = tmp_path_factory.getbasetemp().parent  # <the session's basetemp>/popen-gwN's parent: every worker's
    with open(shared / "bad-input-batch.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            done = shared / "bad-input-batch.pickle"
            if done.exists():
                return pickle.loads(done.read_bytes())  # type: ignore[no-any-return]
            result = run_batch(redis_server, tmp_path_factory)
            done.write_bytes(pickle.dumps(result))
            return result
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def test_the_table_has_at_least_60_cases() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 60, len(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_exits_3_bounded_naming_file_line(case: Case, batch: Batch) -> None:
    if case.id in batch.skipped:
        pytest.skip(batch.skipped[case.id])
    check(case, batch.results[case.id])


@pytest.mark.slow
def test_bad_input_sent_redis_zero_writes(batch: Batch) -> None:
    assert batch.results, "no case ran"
    assert batch.dirty_after == batch.dirty_before, (batch.dirty_before, batch.dirty_after, batch.culprits)
    assert batch.writes == {}, batch.culprits


@pytest.mark.slow
def test_report_figures(batch: Batch, capsys: pytest.CaptureFixture[str]) -> None:
    """Print the figures RELIABILITY.md quotes (pytest -s shows them)."""
    slowest = max(batch.results.values(), key=lambda r: r.seconds)
    biggest = max(batch.results.values(), key=lambda r: r.max_rss_mb)
    name_of = {id(r): k for k, r in batch.results.items()}
    with capsys.disabled():
        total = sum(r.seconds for r in batch.results.values())
        print(
            f"\nbad input: {len(batch.results)} cases in {batch.seconds:.1f} s (sum {total:.1f} s); "
            f"slowest {name_of[id(slowest)]} "
            f"{slowest.seconds:.2f} s; largest RSS {name_of[id(biggest)]} {biggest.max_rss_mb:.0f} MB; "
            f"redis dirty delta {batch.dirty_after - batch.dirty_before}, writes {batch.writes}"
        )


#: Cases whose one error is quoted with a multi-megabyte source line (and as wide a caret line, and for a
#: key, the key again in the field path and the message).
LONG_LINE_CASES = ["hostile-4MB-value-of-unknown-field", "hostile-3MB-explicit-key", "hostile-10k-deep-flow-maps"]


@pytest.mark.slow
@pytest.mark.parametrize("case_id", LONG_LINE_CASES)
def test_error_report_stays_small_for_huge_lines(case_id: str, batch: Batch) -> None:
    result = batch.results[case_id]
    assert result.stderr_bytes < 64 * 1024, f"{case_id}: {result.stderr_bytes} bytes of stderr"


@pytest.mark.parametrize(
    "case",
    NAME_GAPS,
    ids=[c.id for c in NAME_GAPS],
)
def test_names_with_control_characters_or_unbounded_length_are_rejected(
    case: Case, tmp_path, redis_url, redis_client
) -> None:
    before = dirty_count(redis_client)
    result = run_case(case, tmp_path, redis_url)
    assert dirty_count(redis_client) == before and not write_calls(commandstats(redis_client)), result.stderr
    check(case, result)


def test_ordinary_odd_names_stay_valid(tmp_path) -> None:
    """Spaces, unicode and punctuation are real names (django-celery-beat's are free text): not bad input."""
    names = [
        "Import contacts every night",
        "rapport-mensuel-été",
        "报表",
        "a:b",
        "x/y.z",
        "emoji-\U0001f680",
        "Tab\u00a0nbsp",
    ]
    path = tmp_path / "odd.yaml"
    path.write_text(
        "schedules:\n" + "".join(f'  - {{name: "{n}", task: app.t, every: 30s}}\n' for n in names), encoding="utf-8"
    )
    result = run_measured([*cli(), "validate", str(path)], tmp_path, TIME_BOUND)
    assert result.returncode == 0, result.stderr
    assert f"ok: {len(names)} schedules" in result.stdout
