"""celery-redbeat 2.4.2's own published test suite passes against our package, but for the listed differences."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from support.celery_redbeat_suite import run_suite

pytestmark = [pytest.mark.compat, pytest.mark.slow]


def _expected_differences() -> dict[str, str]:
    path = Path(__file__).with_name("conformance_plugin.py")
    spec = importlib.util.spec_from_file_location("conformance_plugin", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.EXPECTED_DIFFERENCES)


def test_their_suite_passes_but_for_the_reviewed_differences() -> None:
    expected = _expected_differences()
    result = run_suite(python=sys.executable)
    summary = {o: result.count(o) for o in ("passed", "xfailed", "skipped", "failed", "error")}
    print(f"celery-redbeat 2.4.2 suite against ours: {summary}")
    assert result.with_outcome("failed") + result.with_outcome("error") == [], result.output[-8000:]
    assert sorted(result.with_outcome("xfailed")) == sorted(expected), "an expected difference no longer runs"
    assert summary["passed"] >= 50, f"too few of their tests ran: {summary}"
    # Their two skips are their own @unittest.skip (timezone cases they call unsure), nothing of ours.
    assert summary["skipped"] <= 2


def table_rows() -> list[str]:
    """The first cell of each row of docs/switching.md's "Differences from celery-redbeat" table."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "switching.md").read_text()
    section = text.split("### Differences from celery-redbeat", 1)[1].split("\n### ", 1)[0]
    cells = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")]
    return [cell for cell in cells if cell not in ("Row", "---")]


#: The differences issue 14 names, each of which must be a row of the table (a deviation not in it is a bug).
NAMED_BY_THE_ISSUE = (
    "Lease default", "due_at exact", "Overdue due_at is the missed slot", "scheduler.schedule lists every entry",
    "Redis down at start means standby, not crash", "Disabled entries leave the due index",
    "Sleep capped at a third of the lease", "Sub-second scores",
)


def test_the_table_has_a_row_for_each_difference_the_issue_names() -> None:
    rows = table_rows()
    assert [row for row in NAMED_BY_THE_ISSUE if row not in rows] == []
    assert "#210" in _row_text("due_at exact") and "#307" in _row_text("due_at exact")
    assert "raw `HSET` of `enabled`" in _row_text("Disabled entries leave the due index")


def _row_text(row: str) -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "switching.md").read_text()
    return next(line for line in text.splitlines() if line.startswith(f"| {row} |"))


def test_every_expected_difference_names_a_row_of_the_table() -> None:
    rows = table_rows()
    assert "Lease default" in rows and len(rows) == len(set(rows)), rows
    for node, reason in _expected_differences().items():
        assert reason.startswith("row '"), f"{node}: its reason does not start with the row it names: {reason!r}"
        row = reason.split("'")[1]
        assert row in rows, f"{node}: its reason names row {row!r}, which is not a row of docs/switching.md's table"
