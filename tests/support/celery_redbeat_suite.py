"""celery-redbeat 2.4.2's own test suite, fetched from PyPI and run against this package.

The sdist (``celery_redbeat-2.4.2.tar.gz``) ships ``tests/``; it is downloaded with pip into the
git-ignored ``.cache/`` and its ``tests/`` extracted there, never copied into the repository.  The
suite runs in a subprocess pytest whose ``redbeat`` is ours (the project venv) and whose ``tests``
package is theirs; ``tests/compat/conformance_plugin.py`` marks the reviewed expected differences.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .celery_redbeat_venv import CACHE_DIR, CELERY_REDBEAT_VERSION, ROOT

SDIST_NAME = f"celery_redbeat-{CELERY_REDBEAT_VERSION}"
SUITE_DIR = CACHE_DIR / f"{SDIST_NAME}-suite"
PLUGIN = ROOT / "tests" / "compat" / "conformance_plugin.py"


@dataclass(frozen=True)
class SuiteOutcome:
    """Per-test outcome of one run: node id -> passed / failed / error / skipped / xfailed."""

    outcomes: dict[str, str]
    output: str

    def count(self, outcome: str) -> int:
        return sum(1 for value in self.outcomes.values() if value == outcome)

    def with_outcome(self, outcome: str) -> list[str]:
        return sorted(node for node, value in self.outcomes.items() if value == outcome)


def _download_sdist() -> Path:
    target = CACHE_DIR / "sdist"
    archive = target / f"{SDIST_NAME}.tar.gz"
    if archive.exists():
        return archive
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
         "--no-binary", ":all:", f"celery-redbeat=={CELERY_REDBEAT_VERSION}", "-d", str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
    )
    if result.returncode != 0 or not archive.exists():
        raise RuntimeError(f"could not download the {SDIST_NAME} sdist (needs PyPI):\n{result.stdout[-3000:]}")
    return archive


def suite_dir() -> Path:
    """``.cache/<sdist>-suite`` holding their ``tests/`` (extracted once, under a file lock)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / "celery-redbeat-suite.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if not (SUITE_DIR / "tests" / "basecase.py").exists():
                archive = _download_sdist()
                shutil.rmtree(SUITE_DIR, ignore_errors=True)
                SUITE_DIR.mkdir(parents=True)
                prefix = f"{SDIST_NAME}/tests/"
                with tarfile.open(archive) as tar:
                    members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
                    for member in members:
                        member.name = "tests/" + member.name[len(prefix):]
                    tar.extractall(SUITE_DIR, members=members, filter="data")
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return SUITE_DIR


def _outcome(case: ET.Element) -> str:
    for child, outcome in (("failure", "failed"), ("error", "error")):
        if case.find(child) is not None:
            return outcome
    skipped = case.find("skipped")
    if skipped is not None:
        return "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
    return "passed"


def run_suite(python: str = sys.executable, timeout: float = 300) -> SuiteOutcome:
    """Run their suite with ``python`` (ours importable as ``redbeat``), the expected differences marked."""
    where = suite_dir()
    shutil.copyfile(PLUGIN, where / "conftest.py")
    (where / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    report = where / "report.xml"
    report.unlink(missing_ok=True)
    result = subprocess.run(
        [python, "-m", "pytest", "-q", "-rfEX", f"--junitxml={report}", "tests"],
        cwd=str(where), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )
    if not report.exists():
        raise RuntimeError(f"their suite did not run (exit {result.returncode}):\n{result.stdout[-5000:]}")
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)
        node = f"{module[0].replace('.', '/')}.py::{module[1]}::{case.get('name')}" if len(module) == 2 else ""
        outcomes[node] = _outcome(case)
    return SuiteOutcome(outcomes, result.stdout)
