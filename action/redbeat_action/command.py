"""The redbeat-apply command lines the action runs: every flag spelling is here, nowhere else."""

from __future__ import annotations

import enum
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .inputs import ActionInputs

PROGRAM = "redbeat-apply"


class ExitCode(enum.IntEnum):
    """redbeat-apply's exit codes."""

    OK = 0
    ERROR = 1  # a conflict, a refused plan, Redis unreachable: nothing was written
    CHANGES = 2  # --detailed-exitcode: there are changes
    INVALID = 3  # invalid manifests


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str


def validate_argv(paths: Sequence[Path], fmt: str) -> list[str]:
    return [PROGRAM, "validate", "--output", fmt, *map(str, paths)]


def plan_argv(paths: Sequence[Path], plan_file: Path) -> list[str]:
    return [PROGRAM, "plan", "--out", str(plan_file), "--output", "markdown", "--detailed-exitcode", *map(str, paths)]


def apply_argv(paths: Sequence[Path]) -> list[str]:
    return [PROGRAM, "--output", "markdown", *map(str, paths)]


def connection_env(inputs: ActionInputs, base: Mapping[str, str]) -> dict[str, str]:
    """The environment for redbeat-apply: the URL travels in it, never in argv (process lists are readable)."""
    env = {k: v for k, v in base.items() if not k.startswith(("INPUT_", "REDBEAT_"))}
    env["NO_COLOR"] = "1"
    if inputs.redis_url:
        env["REDBEAT_REDIS_URL"] = inputs.redis_url
    if inputs.owner:
        env["REDBEAT_OWNER"] = inputs.owner
    if inputs.key_prefix:
        env["REDBEAT_KEY_PREFIX"] = inputs.key_prefix
    return env


def run(argv: Sequence[str], env: Mapping[str, str]) -> Result:
    """Run redbeat-apply; a missing program is exit 1 with a message saying how to install it."""
    try:
        proc = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, errors="replace", check=False)
    except FileNotFoundError:
        path = env.get("PATH", os.defpath)
        return Result(ExitCode.ERROR, "", f"{PROGRAM} is not on PATH ({path}); leave the input install at 'true'\n")
    return Result(proc.returncode, proc.stdout, proc.stderr)
