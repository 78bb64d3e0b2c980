"""The run log: one JSON line per task run, appended by the worker, read by the demo's dashboard."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_VAR = "DEMO_RUN_LOG"


@dataclass(frozen=True, slots=True)
class Run:
    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    at: float  # epoch seconds when the task body ran
    worker_pid: int


def record(task: str, args: tuple[Any, ...], kwargs: dict[str, Any], *, path: str | None = None) -> Run:
    """Append one run to the log named by ``path`` or ``$DEMO_RUN_LOG`` (no log configured: nothing written).

    One ``write()`` of one line on an O_APPEND file, so concurrent workers never interleave lines.
    """
    run = Run(task=task, args=tuple(args), kwargs=dict(kwargs), at=time.time(), worker_pid=os.getpid())
    target = path or os.environ.get(ENV_VAR)
    if target:
        line = json.dumps(
            {"task": run.task, "args": list(run.args), "kwargs": run.kwargs, "at": run.at, "pid": run.worker_pid}
        )
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    return run


class RunLogReader:
    """Reads the runs appended since the last call (a partial last line waits for the next call)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def new_runs(self) -> list[Run]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        if b"\n" not in data:
            return []
        complete, _, _ = data.rpartition(b"\n")
        self._offset += len(complete) + 1
        runs = []
        for line in complete.decode().splitlines():
            fields = json.loads(line)
            runs.append(Run(fields["task"], tuple(fields["args"]), fields["kwargs"], fields["at"], fields["pid"]))
        return runs
