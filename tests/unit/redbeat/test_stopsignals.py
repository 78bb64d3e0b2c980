"""SIGTERM and SIGINT are held while a tick sends the runs it claimed, then act (redbeat.stopsignals).

Real signals to this process, with a handler like celery beat's (close, then SystemExit).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from redbeat.stopsignals import STOP_SIGNALS, stop_signals_held


@pytest.fixture
def beat_handler() -> Iterator[list[int]]:
    """celery beat's stop handler, recording each call: the signals it got, in order."""
    calls: list[int] = []

    def stop(signum, frame):
        calls.append(signum)
        raise SystemExit()

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield calls
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_a_signal_during_the_sends_acts_after_the_last_one(beat_handler: list[int]) -> None:
    sent = []
    with pytest.raises(SystemExit), stop_signals_held():
        for run in range(3):
            if run == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            sent.append(run)
        assert beat_handler == []  # held: the loop went on
    assert sent == [0, 1, 2] and beat_handler == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM).__name__ == "stop"  # put back


def test_a_second_signal_acts_at_once(beat_handler: list[int]) -> None:
    sent = []
    with pytest.raises(SystemExit), stop_signals_held():
        for run in range(3):
            if run == 1:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGTERM)
            sent.append(run)
    assert sent == [0] and beat_handler == [signal.SIGTERM]
    assert all(signal.getsignal(sig).__name__ == "stop" for sig in STOP_SIGNALS)


def test_no_signal_no_change(beat_handler: list[int]) -> None:
    with stop_signals_held():
        pass
    assert beat_handler == [] and all(signal.getsignal(sig).__name__ == "stop" for sig in STOP_SIGNALS)


def test_nothing_is_held_when_not_asked_or_off_the_main_thread(beat_handler: list[int]) -> None:
    with pytest.raises(SystemExit), stop_signals_held(hold=False):
        os.kill(os.getpid(), signal.SIGTERM)
        pytest.fail("not held: the handler raises at once")
    seen = []

    def in_a_thread() -> None:
        with stop_signals_held():
            seen.append(signal.getsignal(signal.SIGTERM).__name__)

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == ["stop"]
