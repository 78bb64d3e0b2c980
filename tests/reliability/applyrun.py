"""Run the installed ``redbeat-apply`` as CI does; write the manifests the scenarios apply."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "redbeat-apply"


def run_apply(
    redis_url: str, *paths: Path, timeout: float = 120, args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_") and k != "NO_COLOR"}
    return subprocess.run(
        [str(BIN), "--redis-url", redis_url, "--no-color", *args, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def start_apply(redis_url: str, *paths: Path, args: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_") and k != "NO_COLOR"}
    return subprocess.Popen(
        [str(BIN), "--redis-url", redis_url, "--no-color", *args, *map(str, paths)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def write_manifest(path: Path, entries: list[dict]) -> Path:
    """A manifest of rel.record entries: [{'name', 'every', 'kwargs'?}] (JSON is YAML)."""
    schedules = []
    for entry in entries:
        item = {"name": entry["name"], "task": "rel.record", "every": entry["every"], "args": [entry["name"]]}
        if entry.get("kwargs"):
            item["kwargs"] = entry["kwargs"]
        schedules.append(item)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"schedules": schedules}, indent=1))
    tmp.replace(path)
    return path
