"""The published celery-redbeat, in a virtualenv of its own, for compatibility tests.

Both celery-redbeat and this project import as ``redbeat``, so the published package can never be
imported into the test process: compat scripts (tests/compat/cr_*.py) run as subprocesses of the
python returned by :func:`celery_redbeat_python`.

The venv lives at ``<repo>/.cache/celery-redbeat-venv`` (git-ignored). It is created on first use
with ``python -m venv`` + pip, installing ``celery-redbeat==2.4.2`` and the same celery version as
the running (project) interpreter has, and recreated when it is missing or broken. Creation is
guarded by an fcntl file lock so parallel test processes (xdist workers) don't race. Without
network access the install fails with a RuntimeError that says so: compat tests fail, they are not
skipped.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

CELERY_REDBEAT_VERSION = "2.4.2"

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / ".cache"
VENV_DIR = CACHE_DIR / "celery-redbeat-venv"
LOCK_FILE = CACHE_DIR / "celery-redbeat-venv.lock"

# What "working" means: both import, and the installed distribution is the pinned release.
_CHECK = (
    "import importlib.metadata as m, redbeat, celery, packaging, sys; "
    "v = m.version('celery-redbeat'); "
    "sys.exit(0 if v == sys.argv[1] and m.version('celery') == sys.argv[2] else 3)"
)


def _python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def subprocess_env() -> dict[str, str]:
    """Environment for the celery-redbeat python: nothing that could put our `redbeat` on its path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH"):
        env.pop(name, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def our_celery_version() -> str:
    return importlib.metadata.version("celery")


def _works(python: Path, celery_version: str) -> bool:
    if not python.exists():
        return False
    try:
        result = subprocess.run(
            [str(python), "-c", _CHECK, CELERY_REDBEAT_VERSION, celery_version],
            cwd=str(CACHE_DIR if CACHE_DIR.exists() else ROOT),
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _create(venv: Path, celery_version: str) -> None:
    if venv.exists():
        shutil.rmtree(venv)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [
            str(_python_of(venv)), "-m", "pip", "install", "--disable-pip-version-check",
            "--no-input", "--quiet",
            # packaging: kombu's redis transport imports it (the rollback e2e runs its beat on a redis broker).
            f"celery-redbeat=={CELERY_REDBEAT_VERSION}", f"celery=={celery_version}", "tzdata", "packaging",
        ],
    ]
    for cmd in steps:
        result = subprocess.run(
            cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=900,
        )
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise RuntimeError(
                f"could not build the celery-redbeat {CELERY_REDBEAT_VERSION} venv at {venv} "
                f"(needs network access to PyPI for pip; compat tests cannot run without it).\n"
                f"command: {' '.join(cmd)}\nexit {result.returncode}; output tail:\n"
                f"{result.stdout[-3000:]}"
            )


def celery_redbeat_python(venv: Path | None = None) -> Path:
    """Path of the python of a venv with celery-redbeat 2.4.2 (and our celery version) installed."""
    venv = Path(venv) if venv is not None else VENV_DIR
    python = _python_of(venv)
    celery_version = our_celery_version()
    if _works(python, celery_version):
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / (venv.name + ".lock")
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            # Another process may have built it while we waited for the lock.
            if not _works(python, celery_version):
                _create(venv, celery_version)
                if not _works(python, celery_version):
                    raise RuntimeError(
                        f"the celery-redbeat venv at {venv} was installed but "
                        f"`import redbeat, celery` (celery-redbeat=={CELERY_REDBEAT_VERSION}, "
                        f"celery=={celery_version}) still fails there"
                    )
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return python


def run_compat_script(script: str, *args: str, python: Path | None = None, timeout: float = 120) -> str:
    """Run tests/compat/<script> with the celery-redbeat python; return its stdout, raise on failure."""
    python = python or celery_redbeat_python()
    path = ROOT / "tests" / "compat" / script
    result = subprocess.run(
        [str(python), str(path), *args],
        cwd=str(path.parent),
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{script} {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-5000:]}"
        )
    return result.stdout
