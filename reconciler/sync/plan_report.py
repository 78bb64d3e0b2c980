"""Render a Plan as a terminal diff, Markdown for pull requests, or JSON for machines.

Values of kwargs/options keys that look like secrets are masked everywhere.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.sync.plan import _MISSING, Change, Op, Plan
from redbeat.redaction import MASK, is_secret_path, redact

FORMAT_VERSION = 1
#: GitHub refuses comments longer than this.
GITHUB_COMMENT_LIMIT = 65_536
#: Room kept free under the limit for what a workflow wraps around the comment (a header, a link).
MD_MARGIN = 1_000

_SYMBOL = {Op.CREATE: "+", Op.UPDATE: "~", Op.ADOPT: "~", Op.DELETE: "-", Op.CONFLICT: "!", Op.NOOP: " "}
_COLOR = {Op.CREATE: "32", Op.UPDATE: "33", Op.ADOPT: "36", Op.DELETE: "31", Op.CONFLICT: "1;31"}


def _value(path: str, value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    if is_secret_path(path):
        return MASK
    return json.dumps(_json_value(path, value), sort_keys=True, ensure_ascii=False)


def _json_value(path: str, value: Any) -> Any:
    """The value as shown: masked whole when its path is a secret, else with any secret keys inside masked."""
    if value is _MISSING:
        return None
    if is_secret_path(path):
        return MASK
    return redact(value) if path.split(".")[0] in ("kwargs", "options", "args") else value


def field_lines(change: Change) -> list[str]:
    lines = []
    for field in change.fields:
        if change.op is Op.CREATE:
            lines.append(f"{field.path}: {_value(field.path, field.new)}")
        elif change.op is Op.DELETE:
            lines.append(f"{field.path}: {_value(field.path, field.old)}")
        else:
            lines.append(f"{field.path}: {_value(field.path, field.old)} -> {_value(field.path, field.new)}")
    for field in change.respelled:
        lines.append(f"respelled {field.path}: {_value(field.path, field.old)} -> {_value(field.path, field.new)} "
                     "(same times)")
    return lines


def summary(plan: Plan) -> str:
    counts = plan.counts()
    if not plan.has_changes and not counts["conflict"]:
        return "No changes." + (f" {counts['no-op']} unchanged." if counts["no-op"] else "")
    parts = [
        f"{counts['create']} to create",
        f"{counts['update'] + counts['adopt']} to update",
        f"{counts['delete']} to delete",
        f"{counts['no-op']} unchanged",
    ]
    notes = []
    if counts["adopt"]:
        notes.append(f"{counts['adopt']} adopted")
    respelled = len(plan.respelled_only)
    if respelled:
        notes.append(f"{respelled} only respelled")
    if notes:
        parts[1] += f" ({', '.join(notes)})"
    if counts["conflict"]:
        parts.append(f"{counts['conflict']} conflict{'s' if counts['conflict'] != 1 else ''}")
    return "Plan: " + ", ".join(parts) + "."


def printable(name: str) -> str:
    """A name as is, or JSON-quoted when it holds control characters (never raw escapes on a terminal)."""
    return json.dumps(name) if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in name) else name


def render_text(plan: Plan, *, color: bool = False) -> str:
    def paint(op: Op, text: str) -> str:
        return f"\033[{_COLOR[op]}m{text}\033[0m" if color and op in _COLOR else text

    lines: list[str] = []
    for change in plan.changes:
        if change.op is Op.NOOP:
            continue
        head = f"{_SYMBOL[change.op]} {change.op.value:<8} {printable(change.name)}"
        lines.append(paint(change.op, head))
        if change.op is Op.CONFLICT:
            lines.append(f"      {change.reason}")
        for line in field_lines(change):
            lines.append(paint(change.op, f"      {line}"))
    drifted = plan.drifted
    if drifted:
        lines.append("")
        lines.append("Drift (changed in Redis since the last apply; apply restores the manifests):")
        for change in drifted:
            lines.append(f"  {printable(change.name)}: " + "; ".join(f"{d.new}" for d in change.drift))
    if lines:
        lines.append("")
    lines.append(summary(plan))
    for error in plan.errors:
        lines.append(paint(Op.CONFLICT, f"error: {error}"))
    return "\n".join(lines) + "\n"


def md_code(text: str) -> str:
    """``text`` as an inline code span that survives backticks, pipes and HTML in it, inside a table cell too."""
    text = printable(text).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest or text.startswith(" ") or text.endswith(" ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_text(text: str) -> str:
    """Plain text for a table cell or a quote: no pipe, newline or HTML can change the layout."""
    return printable(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


class _Budget:
    """Characters left of a Markdown comment; parts that do not fit are counted, not half-written."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, text: str) -> bool:
        if len(text) + 1 > self.left:
            return False
        self.left -= len(text) + 1
        return True


def _md_lines(items: list[str], budget: _Budget, reserve: int, left_out: str) -> list[str]:
    """As many of ``items`` as fit in ``budget`` minus ``reserve``; then one line counting the rest."""
    kept: list[str] = []
    for index, item in enumerate(items):
        if len(item) + 1 > budget.left - reserve:
            rest = len(items) - index
            note = left_out.format(count=rest)
            budget.take(note)
            return [*kept, note]
        budget.take(item)
        kept.append(item)
    return kept


def _md_row(change: Change) -> str:
    paths = [md_code(f.path) for f in change.fields] + [f"{md_code(f.path)} (respelled)" for f in change.respelled]
    fields = ", ".join(paths[:6]) + (" …" if len(paths) > 6 else "")
    if change.op is Op.CONFLICT:
        fields = md_text(change.reason)
    return f"| {_SYMBOL[change.op]} | {md_code(change.name)} | {change.op.value} | {fields} |"


def _md_head(plan: Plan, budget: _Budget) -> list[str]:
    """Title, summary, the delete banner and the errors: always shown, long lists cut with a count."""
    head = [f"### redbeat-apply plan for owner {md_code(plan.owner)}", "", f"**{summary(plan)}**", ""]
    for line in head:
        budget.take(line)
    deletes = plan.of(Op.DELETE)
    if deletes:
        banner = f"> **This plan deletes {len(deletes)} schedule{'s' if len(deletes) != 1 else ''}:** "
        names = _md_lines([md_code(c.name) for c in deletes], budget, budget.left * 3 // 4 - len(banner),
                          "and {count} more")
        head += ["> [!WARNING]", banner + ", ".join(names), ""]
    errors = _md_lines([f"> {md_text(str(e))}" for e in plan.errors], budget, budget.left // 2,
                       "> … and {count} more error(s)")
    if errors:
        head += ["> [!CAUTION]", *errors, ""]
    return head


def render_markdown(plan: Plan, *, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """Summary, a table of changes and the diff folded in <details>, never longer than ``limit`` characters.

    The summary comes first and is never cut; the delete list, the table and
    the diff are cut to fit, each with a count of what was left out.
    """
    budget = _Budget(limit - MD_MARGIN)
    lines = _md_head(plan, budget)
    shown = [c for c in plan.changes if c.op is not Op.NOOP]
    if shown:
        header = ["| | schedule | change | fields |", "|---|---|---|---|"]
        for line in header:
            budget.take(line)
        rows = _md_lines([_md_row(c) for c in shown], budget, budget.left // 3,
                         "\n… {count} more change(s) not listed (comment size limit); run with --output text or json")
        lines += [*header, *rows, ""]
    if plan.drifted:
        drift = _md_lines([md_code(c.name) for c in plan.drifted], budget, budget.left // 2, "and {count} more")
        lines += ["Drift since the last apply (restored by this apply): " + ", ".join(drift), ""]
    if not shown:
        return "\n".join(lines) + "\n"
    blocks = ["\n".join([f"{_SYMBOL[c.op]} {c.op.value} {printable(c.name)}"]
                        + [f"{_SYMBOL[c.op]}     {line}" for line in field_lines(c)]) for c in shown]
    longest = max((len(run) for block in blocks for run in re.findall(r"`+", block)), default=0)
    fence = "`" * max(3, longest + 1)
    opening, closing = f"<details><summary>Full diff</summary>\n\n{fence}diff", f"{fence}\n\n</details>"
    budget.take(opening + closing)
    kept = _md_lines(blocks, budget, 0,
                     "… {count} more change(s) not shown (comment size limit); run with --output text")
    return "\n".join([*lines, opening, *kept, closing]) + "\n"


def change_json(change: Change) -> dict[str, Any]:
    return {
        "op": change.op.value,
        "name": change.name,
        "fields": [
            {"path": f.path, "old": _json_value(f.path, f.old), "new": _json_value(f.path, f.new)}
            for f in change.fields
        ],
        "respelled": [{"path": f.path, "old": f.old, "new": f.new} for f in change.respelled],
        "reschedule": change.reschedule,
        "drift": [f.new for f in change.drift],
        "reason": change.reason or None,
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    """The documented, stable JSON form of a plan (``format_version`` 1)."""
    return {
        "format_version": FORMAT_VERSION,
        "owner": plan.owner,
        "summary": plan.counts(),
        "has_changes": plan.has_changes,
        "changes": [change_json(c) for c in plan.changes if c.op is not Op.NOOP],
        "unchanged": [c.name for c in plan.changes if c.op is Op.NOOP],
        "errors": list(plan.errors),
    }


def render_json(plan: Plan) -> str:
    return json.dumps(plan_json(plan), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def render(plan: Plan, fmt: str, *, color: bool = False) -> str:
    if fmt == "markdown":
        return render_markdown(plan)
    if fmt == "json":
        return render_json(plan)
    return render_text(plan, color=color)

