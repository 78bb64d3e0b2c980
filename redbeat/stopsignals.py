"""Holds beat's stop signals (SIGTERM, SIGINT) while the runs a tick claimed are sent, then acts on them.

celery beat's handler for both closes the scheduler and raises SystemExit wherever the main thread
is.  Raised between the settle script (which records the runs, slots and counts) and the last send,
it would lose every run claimed and not yet sent, silently: their slots are recorded as run, so no
beat (ours or celery-redbeat after a rollback) sends them.  Held, the signal stops beat right after
the sends, as if it had come a moment later.  The hold is short: the send loop gives up on the runs
left once the lease has run out.  A second signal while one is held acts at once.

Only in the main thread (where Python runs signal handlers) and only over handlers set from Python;
otherwise nothing is held.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: What ``signal.getsignal`` returns: a Python handler, SIG_DFL / SIG_IGN, or None (set from C).
Handler = Callable[[int, FrameType | None], Any] | int | None


@contextlib.contextmanager
def stop_signals_held(hold: bool = True) -> Iterator[None]:
    """Hold SIGTERM and SIGINT inside the block (when ``hold``); deliver the first one held after it."""
    if not hold or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Handler] = {int(sig): signal.getsignal(sig) for sig in STOP_SIGNALS}
    if any(handler is None for handler in previous.values()):  # set from C: cannot be put back
        yield
        return
    held: list[int] = []
    delivered: list[bool] = []

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def restore_and_deliver(signum: int, frame: FrameType | None) -> None:
        restore()
        if not delivered:
            delivered.append(True)
            _deliver(previous[signum], signum, frame)

    def hold_signal(signum: int, frame: FrameType | None) -> None:
        if held:  # asked twice: stop now
            restore_and_deliver(signum, frame)
        held.append(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, hold_signal)
    try:
        yield
    finally:
        if held:
            restore_and_deliver(held[0], None)
        else:
            restore()


def _deliver(handler: Handler, signum: int, frame: FrameType | None) -> None:
    """Do what ``signum`` would have done with ``handler`` in place (already put back)."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)
