"""The action's inputs, read from the environment the composite step maps them into (``INPUT_*``)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class Mode(enum.Enum):
    VALIDATE = "validate"
    PLAN = "plan"
    APPLY = "apply"


class InputError(ValueError):
    """An input the action cannot run with; the message is one line naming the input."""


@dataclass(frozen=True)
class ActionInputs:
    mode: Mode
    paths: tuple[Path, ...]
    owner: str
    key_prefix: str
    redis_url: str
    sarif_file: Path | None
    comment: bool
    github_token: str


def _get(env: Mapping[str, str], name: str) -> str:
    return env.get("INPUT_" + name.upper().replace("-", "_"), "").strip()


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = _get(env, name).lower()
    if not value:
        return default
    if value not in ("true", "false"):
        raise InputError(f"input {name}: {value!r} is not 'true' or 'false'")
    return value == "true"


def read_inputs(env: Mapping[str, str]) -> ActionInputs:
    """Parse and check every input; an :class:`InputError` names the first bad one."""
    mode_text = _get(env, "mode")
    try:
        mode = Mode(mode_text)
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise InputError(f"input mode: {mode_text!r} is not one of {choices}") from None
    # One path per line (a YAML block scalar in `with:`); spaces stay part of a name.
    paths = tuple(Path(line.strip()) for line in _get(env, "path").splitlines() if line.strip())
    if not paths:
        raise InputError("input path: give the manifest file(s) or directory, one per line")
    sarif = _get(env, "sarif-file")
    return ActionInputs(
        mode=mode,
        paths=paths,
        owner=_get(env, "owner"),
        key_prefix=env.get("INPUT_KEY_PREFIX", ""),  # not stripped: a prefix may end in a space on purpose
        redis_url=_get(env, "redis-url"),
        sarif_file=Path(sarif) if sarif else None,
        comment=_flag(env, "comment", True),
        github_token=_get(env, "github-token"),
    )
