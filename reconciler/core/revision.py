"""The revision an apply is of: the manifests' git commit when they are a clean checkout, else their digest.

Shared by the watch mode (its info metric and logs) and the audit trail, so both name a revision alike.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path


def revision_of(paths: Sequence[Path], digest: str, git: Callable[[Path, Sequence[str]], str | None]) -> str:
    """The git commit when the first path is a clean checkout, else ``sha256:`` and the content digest."""
    first = paths[0] if paths else None
    if first is not None and first.is_dir():
        head = git(first, ["rev-parse", "HEAD"])
        if head and git(first, ["status", "--porcelain", "--", "."]) == "":
            return head
    return f"sha256:{digest[:16]}"


def run_git(directory: Path, args: Sequence[str]) -> str | None:
    """``git -C directory args`` output, stripped; None when git is missing or fails."""
    if shutil.which("git") is None:
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=5,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
