"""File events for watch mode: watchfiles in daemon threads, feeding one queue.

Only *whether* something changed matters: the loop re-reads the whole tree on
any event, so the events themselves (and their order) are dropped.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from reconciler.core.logs import log

logger = logging.getLogger("reconciler.sidecar.watch")


# --- file events -----------------------------------------------------------------------------


class EventSource(Protocol):
    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` s; True when files changed since the last call."""

    def interrupt(self) -> None:
        """Make a pending or the next :meth:`wait` return at once."""


def watch_roots(paths: Sequence[Path]) -> tuple[list[Path], dict[Path, set[str]]]:
    """(directories to watch recursively, parent directory -> file names) for ``paths``.

    A file is watched through its directory, so an editor's replace-by-rename
    is seen; the mount directory itself is watched, not the ``..data`` target,
    so a ConfigMap swap is seen.
    """
    directories: list[Path] = []
    files: dict[Path, set[str]] = {}
    for path in paths:
        if path.is_dir():
            directories.append(path)
        else:
            files.setdefault(path.absolute().parent, set()).add(path.name)
    return directories, files


class FileEvents:
    """watchfiles in daemon threads, feeding one queue: ``wait`` reports whether anything changed."""

    def __init__(self, paths: Sequence[Path], *, debounce: float, force_polling: bool) -> None:
        self._queue: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        directories, files = watch_roots(paths)
        debounce_ms = max(1, round(debounce * 1000))
        options: dict[str, Any] = {"debounce": debounce_ms, "step": min(50, debounce_ms), "stop_event": self._stop,
                                   "rust_timeout": 1000, "force_polling": force_polling or None,
                                   "poll_delay_ms": 200, "ignore_permission_denied": True}
        if directories:
            self._spawn(directories, {**options, "recursive": True, "watch_filter": None})
        if files:
            def in_files(change: Any, path: str) -> bool:
                return os.path.basename(path) in files.get(Path(path).parent, ())

            self._spawn(list(files), {**options, "recursive": False, "watch_filter": in_files})

    def _spawn(self, roots: list[Path], options: dict[str, Any]) -> None:
        thread = threading.Thread(target=self._run, args=(roots, options), name="redbeat-apply-files", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self, roots: list[Path], options: dict[str, Any]) -> None:
        import watchfiles

        while not self._stop.is_set():
            try:
                for _changes in watchfiles.watch(*roots, raise_interrupt=False, **options):
                    self._queue.put(True)
                return
            except (OSError, RuntimeError) as exc:  # a root vanished (unmounted): say so, look again soon
                log(
                    logger,
                    "file watch failed; retrying",
                    logging.WARNING,
                    error=str(exc),
                    paths=[str(r) for r in roots],
                )
                self._queue.put(True)
                self._stop.wait(1.0)

    def wait(self, timeout: float) -> bool:
        try:
            changed = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return False
        while True:  # one wake-up for everything queued
            try:
                changed = self._queue.get_nowait() or changed
            except queue.Empty:
                return changed

    def interrupt(self) -> None:
        self._queue.put(False)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=1)
