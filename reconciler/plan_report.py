"""Render a Plan as a terminal diff, Markdown for pull requests, or JSON for machines.

Values of kwargs/options keys that look like secrets are masked everywhere.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.plan import _MISSING, Change, Op, Plan
from reconciler.redaction import MASK, is_secret_path, redact

FORMAT_VERSION = 1
#: GitHub refuses comments longer than this.
GITHUB_COMMENT_LIMIT = 65_536

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
    if counts["adopt"]:
        parts[1] += f" ({counts['adopt']} adopted)"
    if counts["conflict"]:
        parts.append(f"{counts['conflict']} conflict{'s' if counts['conflict'] != 1 else ''}")
    return "Plan: " + ", ".join(parts) + "."


def _printable(name: str) -> str:
    """A name as is, or JSON-quoted when it holds control characters (never raw escapes on a terminal)."""
    return json.dumps(name) if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in name) else name


def render_text(plan: Plan, *, color: bool = False) -> str:
    def paint(op: Op, text: str) -> str:
        return f"\033[{_COLOR[op]}m{text}\033[0m" if color and op in _COLOR else text

    lines: list[str] = []
    for change in plan.changes:
        if change.op is Op.NOOP:
            continue
        head = f"{_SYMBOL[change.op]} {change.op.value:<8} {_printable(change.name)}"
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
            lines.append(f"  {change.name}: " + "; ".join(f"{d.new}" for d in change.drift))
    if lines:
        lines.append("")
    lines.append(summary(plan))
    for error in plan.errors:
        lines.append(paint(Op.CONFLICT, f"error: {error}"))
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Plan, *, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """Summary, a table of changes and the diff folded in <details>, kept under ``limit`` characters.

    Per-entry diffs are cut when needed; the summary, the delete banner and the table never are.
    """
    head: list[str] = [f"### redbeat-apply plan for owner `{plan.owner}`", "", f"**{summary(plan)}**", ""]
    deletes = plan.of(Op.DELETE)
    if deletes:
        head += [
            "> [!WARNING]",
            f"> **This plan deletes {len(deletes)} schedule{'s' if len(deletes) != 1 else ''}:** "
            + ", ".join(f"`{c.name}`" for c in deletes),
            "",
        ]
    for error in plan.errors:
        head += ["> [!CAUTION]", f"> {error}", ""]
    shown = [c for c in plan.changes if c.op is not Op.NOOP]
    if shown:
        head += ["| | schedule | change | fields |", "|---|---|---|---|"]
        for change in shown:
            fields = ", ".join(f"`{f.path}`" for f in change.fields[:6]) + (" …" if len(change.fields) > 6 else "")
            if change.op is Op.CONFLICT:
                fields = change.reason
            head.append(f"| {_SYMBOL[change.op]} | `{_md_cell(change.name)}` | {change.op.value} | {_md_cell(fields)} |")
        head.append("")
    if plan.drifted:
        head += ["Drift since the last apply (restored by this apply): " + ", ".join(f"`{c.name}`" for c in plan.drifted), ""]
    text = "\n".join(head)
    blocks = []
    for change in shown:
        body = "\n".join(
            [f"{_SYMBOL[change.op]} {change.op.value} {change.name}"]
            + [f"{_SYMBOL[change.op]}     {line}" for line in field_lines(change)]
        )
        blocks.append(body)
    if not blocks:
        return text + "\n"
    opening, closing = "<details><summary>Full diff</summary>\n\n```diff\n", "\n```\n\n</details>\n"
    budget = limit - len(text) - len(opening) - len(closing) - 200
    kept: list[str] = []
    used = 0
    for index, block in enumerate(blocks):
        if used + len(block) + 1 > budget:
            kept.append(f"… {len(blocks) - index} more change(s) not shown (comment size limit); run with --output text")
            break
        kept.append(block)
        used += len(block) + 1
    return text + "\n" + opening + "\n".join(kept) + closing


def change_json(change: Change) -> dict[str, Any]:
    return {
        "op": change.op.value,
        "name": change.name,
        "fields": [
            {"path": f.path, "old": _json_value(f.path, f.old), "new": _json_value(f.path, f.new)}
            for f in change.fields
        ],
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

