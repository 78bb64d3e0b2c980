"""The run-chain checks of the rollback test (tests/support/run_chain.py) on made-up records.

Each fault the rollback e2e test exists to catch, written as the record it would leave, must be
reported; the record of a correct hand-over (celery-redbeat's runs offset from our grid) must not.
"""

from __future__ import annotations

from datetime import datetime, timezone

from support.run_chain import Run, chain_problems, handover_problems, runs_by_name

EVERY = 2.0
SAVED = 1000.0
OURS, THEIRS = 11, 22
LEADS = {OURS: SAVED + 0.5, THEIRS: SAVED + 8.6}


def ours(count: int, lag: float = 0.004) -> Run:
    """Our run ``count``: the grid slot SAVED + count * EVERY, sent ``lag`` after it."""
    slot = SAVED + count * EVERY
    return Run("e", count, slot, slot + lag, OURS)


def theirs(count: int, sent_at: float) -> Run:
    """celery-redbeat's run: it records the moment it sent as the slot."""
    return Run("e", count, sent_at - 0.003, sent_at, THEIRS)


def problems(runs: list[Run], until: float = SAVED + 17.0) -> list[str]:
    return chain_problems(runs, every=EVERY, saved_at=SAVED, until=until, on_time=1.0, leading_since=LEADS)


# Ours for +2, +4, +6; celery-redbeat starts at +8.6 and sends the missed +8 at once, then every 2 s from it.
HANDOVER = [ours(1), ours(2), ours(3), theirs(4, SAVED + 8.61), theirs(5, SAVED + 10.612), theirs(6, SAVED + 12.615),
            theirs(7, SAVED + 14.62)]


def test_a_correct_hand_over_passes_though_celery_redbeat_is_off_our_grid() -> None:
    assert problems(HANDOVER) == []
    # the reported flake: celery-redbeat starts at +7.9, sends the missed +6 at +7.955 (1.955 s past that grid
    # slot, 45 ms "early" for +8), then every 2 s from that send: each run is due 2 s after the one before
    offset = [ours(1), ours(2), theirs(3, SAVED + 7.955), theirs(4, SAVED + 9.96), theirs(5, SAVED + 11.96)]
    assert chain_problems(offset, every=EVERY, saved_at=SAVED, until=SAVED + 13.0, on_time=1.0,
                          leading_since={OURS: SAVED, THEIRS: SAVED + 7.9}) == []


def test_a_slot_sent_twice_at_the_hand_over_is_reported() -> None:
    # celery-redbeat read a run state one slot behind: it sends run 3's slot again, as run 4, before +8
    early = [ours(1), ours(2), ours(3), theirs(4, SAVED + 7.3), theirs(5, SAVED + 9.3)]
    assert any("before it was due" in p for p in problems(early, until=SAVED + 10.0))
    # or it read the old count too: run 3 again
    repeated = [ours(1), ours(2), ours(3), theirs(3, SAVED + 8.61), theirs(4, SAVED + 10.612)]
    assert any("run counts" in p for p in problems(repeated, until=SAVED + 11.0))


def test_a_run_claimed_and_never_sent_is_reported() -> None:
    skipped = [ours(1), ours(2), theirs(4, SAVED + 8.61), theirs(5, SAVED + 10.612)]
    assert any("run counts [1, 2, 4, 5]" in p for p in problems(skipped, until=SAVED + 11.0))


def test_a_late_run_and_a_slot_never_sent_are_reported() -> None:
    late = [*HANDOVER[:4], theirs(5, SAVED + 12.0)]
    assert any("1.393 s late" in p for p in problems(late, until=SAVED + 12.5))
    assert any("never sent" in p for p in problems(HANDOVER[:5], until=SAVED + 17.0))
    stranger = [ours(1), Run("e", 2, SAVED + 4.0, SAVED + 4.01, 99)]
    assert any("not a beat of this test" in p for p in problems(stranger, until=SAVED + 5.0))


def test_the_hand_over_state_must_be_the_last_send() -> None:
    last = ours(3)
    at = datetime.fromtimestamp(last.slot, timezone.utc)
    assert handover_problems(last, at, 3) == []
    assert handover_problems(last, datetime.fromtimestamp(last.slot - EVERY, timezone.utc), 3) != []
    assert handover_problems(last, at, 2) != []
    assert handover_problems(last, None, 0) != []


def test_the_record_is_read_per_entry_in_the_order_sent() -> None:
    record = [{"name": "b", "count": 2, "slot": 4.0, "sent_at": 4.1, "beat_pid": 1},
              {"name": "b", "count": 1, "slot": 2.0, "sent_at": 2.1, "beat_pid": 1},
              {"name": "a", "count": 1, "slot": 2.0, "sent_at": 2.2, "beat_pid": 2}]
    runs = runs_by_name(record)
    assert [run.count for run in runs["b"]] == [1, 2] and runs["a"] == [Run("a", 1, 2.0, 2.2, 2)]
