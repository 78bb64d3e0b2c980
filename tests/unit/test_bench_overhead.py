"""bench: the overhead row (a tick beyond a bare send_task loop of the same messages) and its target."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.__main__ import OURS, THEIRS, overhead_met, overhead_row  # noqa: E402


def runs(overheads: list[float], floor: float = 0.4) -> list[dict]:
    return [{"overhead_seconds": o, "tick": {"seconds": floor + o}, "floor_seconds": floor,
             "overhead_cpu_seconds": o / 2, "own_seconds": o / 3} for o in overheads]


def test_met_when_ours_is_at_most_a_tenth_of_theirs():
    row = overhead_row({THEIRS: runs([0.9, 0.8, 1.0]), OURS: runs([0.05, 0.09, 0.06])}, 10000, 1000, target=True)
    assert (row.size, row.target, row.met) == ("N=10k K=1000", "≤ 1/10 of celery-redbeat's", True)
    assert row.ratio == "15.0× less"
    assert row.cell(row.ours).startswith("60 ms") and row.cell(row.theirs).startswith("900 ms")
    assert "bare send_task loop of the same messages 400 ms / 400 ms" in row.details
    assert "medians of 3 / 3 ticks" in row.details
    assert "CPU time of the beat process 450 ms / 30 ms" in row.details
    assert "its own send_task calls 300 ms / 20 ms" in row.details


def test_quartiles_need_four_samples():
    row = overhead_row({THEIRS: runs([0.9, 0.8, 1.0, 0.7, 1.1]), OURS: runs([0.05])}, 10000, 1000, target=True)
    assert "overhead quartiles 750 ms 900 ms 1.05 s / 50 ms;" in row.details


def test_missed_when_ours_is_more_than_a_tenth():
    row = overhead_row({THEIRS: runs([0.9]), OURS: runs([0.091])}, 10000, 1000, target=True)
    assert row.met is False and row.ratio == "9.9× less"


def test_a_negative_median_is_no_measurable_overhead():
    row = overhead_row({THEIRS: runs([0.9, 0.7]), OURS: runs([-0.01, -0.03])}, 10000, 1000, target=True)
    assert row.met is True and row.ratio == "none measurable"


@pytest.mark.parametrize("theirs, ours", [([], [0.05]), ([0.9], [])])
def test_no_samples_is_not_met(theirs, ours):
    row = overhead_row({THEIRS: runs(theirs), OURS: runs(ours)}, 1000, 100, target=True)
    assert row.met is False and row.ratio == "-"


def test_quick_runs_report_without_a_target():
    row = overhead_row({THEIRS: runs([0.09]), OURS: runs([0.05])}, 1000, 100, target=False)
    assert (row.target, row.met) == ("", None)


@pytest.mark.parametrize(
    "ours, ratio, met",
    [(-0.00003, None, True), (0.0, None, True), (0.00002, 12.0, True), (0.00002, 9.9, False), (None, None, False)],
)
def test_the_tick_rows_overhead_target_counts_no_measurable_overhead_as_met(ours, ratio, met):
    # a negative median (the tick beat its loop) made speedup() return no ratio, and the row read "missed"
    assert overhead_met({"median": ours}, ratio) is met
