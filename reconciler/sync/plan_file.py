"""Saved plans (``redbeat-apply plan --out FILE`` / ``redbeat-apply apply FILE``), as Terraform has them.

The file holds the exact writes and, per entry, the fingerprint and
ownership record the plan read (an entry that did not exist is recorded as
absent, so an empty Redis is a state too).  ``apply`` sends them in one
atomic script that refuses, writing nothing, if any entry moved on.  Plan
files contain the schedules' argument values, secrets included, as they
must to apply them: keep them with the same care as the manifests.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reconciler.core.errors import RedbeatError, StalePlanError
from reconciler.sync.apply import ApplyResult, WriteStep, apply_steps, write_step
from reconciler.sync.plan import Plan
from reconciler.sync.plan_report import plan_json

KIND = "redbeat-apply-plan"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class SavedPlan:
    owner: str
    key_prefix: str
    steps: list[WriteStep]
    summary: dict[str, Any]


def save(path: Path, plan: Plan, target: Any) -> None:
    document = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "owner": plan.owner,
        "key_prefix": target.keys.prefix,
        "plan": plan_json(plan),
        "steps": [write_step(change).to_json() for change in plan.writes],
    }
    _write_private(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (it may hold secrets), atomically; a bad path is a RedbeatError."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)  # the umask may not loosen 0600, but a pre-set ACL default could: be explicit
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise RedbeatError(f"{path}: cannot write the plan file: {exc.strerror or exc}") from None


def load(path: Path) -> SavedPlan:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RedbeatError(f"{path}: cannot read the plan file: {exc.strerror}") from None
    except ValueError as exc:
        raise RedbeatError(f"{path}: not a plan file (invalid JSON: {exc})") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise RedbeatError(f"{path}: not a plan file written by 'redbeat-apply plan --out FILE'")
    if document.get("format_version") != FORMAT_VERSION:
        raise RedbeatError(f"{path}: plan format_version {document.get('format_version')!r} is not {FORMAT_VERSION}")
    try:
        steps = [WriteStep.from_json(step) for step in document["steps"]]
        return SavedPlan(str(document["owner"]), str(document["key_prefix"]), steps, dict(document["plan"]["summary"]))
    except (KeyError, TypeError) as exc:
        raise RedbeatError(f"{path}: damaged plan file (missing {exc})") from None
    except ValueError as exc:  # a step whose op is not a write
        raise RedbeatError(f"{path}: damaged plan file ({exc})") from None


def apply(saved: SavedPlan, target: Any) -> ApplyResult:
    try:
        return apply_steps(saved.steps, saved.owner, target.client, target.keys)
    except StalePlanError as stale:
        raise RedbeatError(
            f"the saved plan is stale: {stale.name}'s {stale.what} changed in Redis since it was made; "
            "nothing was written. Run 'redbeat-apply plan --out FILE' again."
        ) from None
