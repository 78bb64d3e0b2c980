"""The audit trail: one capped Redis stream (``<prefix>:audit``) of every apply that wrote and every operator action.

A record is flat strings: ``action`` (apply, pause, resume, trigger), ``actor`` (the
CI's identity or ``$USER@host``), ``at`` (epoch seconds) and per action:
an apply's ``owner``, ``revision`` (the manifests' git commit, else a
content hash) and ``counts`` (JSON, per change kind); an operator action's
``entry`` and ``detail``.  Applies that change nothing are not recorded (a
watch-mode resync every minute would drown the rest).
"""

from __future__ import annotations

import contextlib
import enum
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from redbeat.keys import KeySpace

#: Audit records kept (MAXLEN ~).
AUDIT_MAXLEN = 10_000


class Action(enum.Enum):
    APPLY = "apply"
    PAUSE = "pause"
    RESUME = "resume"
    TRIGGER = "trigger"


def revision(paths: Sequence[Path], desired: Mapping[str, Any]) -> str:
    """The apply's revision: the manifests' git commit when a clean checkout, else their content digest.

    The watch mode's own rule (:func:`reconciler.core.revision.revision_of`), so both name a revision alike.
    """
    from reconciler.core.revision import revision_of, run_git
    from reconciler.manifests.digest import content_digest

    return revision_of(paths, content_digest(desired), run_git)


def apply_record(actor: str, owner: str, revision: str, counts: Mapping[str, int]) -> dict[str, str]:
    written = {kind: count for kind, count in counts.items() if count}
    return {"action": Action.APPLY.value, "actor": actor, "owner": owner, "revision": revision,
            "counts": json.dumps(written, sort_keys=True)}


def operator_record(action: Action, actor: str, entry: str, detail: str) -> list[str]:
    """An operator action's fields as alternating name, value (for the action's own script to XADD)."""
    return ["action", action.value, "actor", actor, "entry", entry, "detail", detail]


def record(client: Any, keys: KeySpace, fields: Mapping[str, str], at: float) -> None:
    """Append one record (an apply: after it wrote; operator actions append in their own script)."""
    client.xadd(keys.audit, {**fields, "at": repr(round(at, 3))}, maxlen=AUDIT_MAXLEN, approximate=True)


def read(client: Any, keys: KeySpace, limit: int | None = None) -> list[dict[str, Any]]:
    """The records, oldest first (the last ``limit``), each with its stream id and ``counts`` decoded."""
    raw = list(reversed(client.xrevrange(keys.audit, count=limit))) if limit is not None else client.xrange(keys.audit)
    out = []
    for record_id, fields in raw:
        item: dict[str, Any] = {"id": _text(record_id), **{_text(k): _text(v) for k, v in fields.items()}}
        if "counts" in item:
            with contextlib.suppress(ValueError):
                item["counts"] = json.loads(item["counts"])
        out.append(item)
    return out


def document(records: list[dict[str, Any]]) -> dict[str, Any]:
    """``audit -o json``: the document the CLI prints and the console serves."""
    return {"format_version": 1, "records": records}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
