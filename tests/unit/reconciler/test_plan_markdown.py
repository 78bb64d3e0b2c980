"""Markdown plans: bounded under GitHub's comment limit, and names that cannot break the table."""

from __future__ import annotations

import re
from pathlib import Path

from reconciler.core.errors import Location
from reconciler.core.model import DesiredEntry
from reconciler.schedules.convert import manifest_to_entry
from reconciler.sync.plan import Plan, plan
from reconciler.sync.plan_report import GITHUB_COMMENT_LIMIT, render_markdown
from reconciler.sync.state import ActualState


def creates(names: list[str]) -> Plan:
    desired = {}
    for name in names:
        definition, ext = manifest_to_entry({"name": name, "task": "app.tasks.t", "every": 60, "kwargs": {"n": name}})
        desired[name] = DesiredEntry(name, definition, ext, False, Location(Path("x.yaml"), 1, 1, ""))
    return plan(desired, ActualState("default", {}, frozenset()))


def test_ten_thousand_long_named_changes_fit_a_comment() -> None:
    names = [(f"team-{i:05d}-" + "very-long-schedule-name-" * 10)[:200] for i in range(10_000)]
    text = render_markdown(creates(names))
    assert len(text) < GITHUB_COMMENT_LIMIT
    assert text.index("**Plan: 10000 to create, 0 to update, 0 to delete, 0 unchanged.**") < 200
    listed = re.search(r"… (\d+) more change\(s\) not listed", text)
    assert listed is not None
    rows = [line for line in text.splitlines() if line.startswith("| + |")]
    assert len(rows) + int(listed[1]) == 10_000
    shown = re.search(r"… (\d+) more change\(s\) not shown", text)
    assert shown is not None
    assert text.count("\n+ create ") + int(shown[1]) == 10_000
    assert text.rstrip().endswith("</details>")


def test_1300_creates_fit_a_comment() -> None:
    assert len(render_markdown(creates([f"job-{i}" for i in range(1300)]))) < GITHUB_COMMENT_LIMIT


def test_backticks_and_pipes_do_not_break_the_table() -> None:
    names = ["a|b", "tick`tock", "``fence``", "<script>x</script>", "```", "x | y | z"]
    text = render_markdown(creates(names))
    rows = [line for line in text.splitlines() if line.startswith("| + |")]
    assert len(rows) == len(names)
    for row in rows:
        # four cells: the only unescaped pipes are the cell borders
        assert len(re.findall(r"(?<!\\)\|", row)) == 5, row
        code = re.match(r"\| \+ \| (`+)(.*?)\1 \| create \|", row)
        assert code is not None, row
        assert len(code[1]) > max(map(len, re.findall("`+", code[2])), default=0), row
        assert code[2].strip().replace("\\|", "|") in names
    fence = re.search(r"^(`{3,})diff$", text, re.MULTILINE)
    assert fence is not None
    body = text.split(fence[0], 1)[1]
    assert body.count(fence[1]) == 1  # no name closes the fence early
