"""``redbeat-apply export``: the entries in Redis as manifests, so a deployment can be brought under Git.

Export then apply (same owner) is a no-op: the manifests are written with
the same converter the plan compares with.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from reconciler.core.errors import Inexpressible, RedbeatError
from reconciler.schedules.convert import entry_to_manifest
from reconciler.sync.state import STATIC_OWNER, OwnershipRecord, read_all


def _file_name(owner: str | None) -> str:
    if owner is None:
        return "unmanaged.yaml"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", owner) + ".yaml"


def export_entries(target: Any, directory: Path, *, everything: bool = False, force: bool = False) -> dict[Path, int]:
    """Write one manifest file per owner; returns {path: schedules written}.

    Refuses (writing nothing) when an entry cannot be exported, or when a file
    it would write exists and ``force`` is not set: an export must never
    silently replace manifests someone edited.
    """
    entries = read_all(target.client, target.keys)
    records = {
        name: OwnershipRecord.from_json(raw.decode() if isinstance(raw, bytes) else raw)
        for name, raw in target.client.hgetall(target.keys.owner_index(target.owner)).items()
    }
    groups: dict[str | None, list[dict[str, Any]]] = {}
    skipped: list[str] = []
    for name, entry in sorted(entries.items()):
        if not everything and entry.owner != target.owner:
            continue
        definition = entry.decoded_definition()
        if definition is None:
            skipped.append(f"{name} (no readable definition)")
            continue
        try:
            manifest = entry_to_manifest({**definition, "name": definition.get("name") or name}, entry.decoded_ext())
        except Inexpressible as exc:
            skipped.append(f"{name} ({exc})")
            continue
        record = records.get(name)
        if record is not None and record.protected and entry.owner == target.owner:
            manifest["protected"] = True
        groups.setdefault(entry.owner, []).append(manifest)
    if skipped:
        raise RedbeatError("cannot export: " + "; ".join(skipped) + "; nothing was written")
    existing = [str(directory / _file_name(owner)) for owner in sorted(groups, key=str)
                if (directory / _file_name(owner)).exists() or (directory / _file_name(owner)).is_symlink()]
    if existing and not force:
        raise RedbeatError(f"{', '.join(existing)} exist{'s' if len(existing) == 1 else ''}; "
                           "pass --force to overwrite, or export to a new directory; nothing was written")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RedbeatError(f"{directory}: cannot create the directory: {exc.strerror}") from None
    written: dict[Path, int] = {}
    for owner, schedules in sorted(groups.items(), key=lambda item: str(item[0])):
        path = directory / _file_name(owner)
        header = f"# Exported from Redis ({target.keys.prefix}*), owner: {owner or 'none'}"
        if owner == STATIC_OWNER:
            header += " (app.conf.beat_schedule: beat rewrites these at start-up)"
        header += "\n# Check with: redbeat-apply validate " + str(path)
        body = yaml.safe_dump({"schedules": schedules}, sort_keys=False, allow_unicode=True, width=100)
        path.write_text(header + "\n" + body, encoding="utf-8")
        written[path] = len(schedules)
    return written
