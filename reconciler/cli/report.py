"""Render manifest errors for people (text), machines (json), GitHub and code scanning.

Pure functions from errors to a string; :mod:`reconciler.cli.main` prints them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.core.errors import ManifestError

FORMATS = ("text", "json", "github", "sarif")
GITHUB_ANNOTATION_LIMIT = 10  # GitHub shows at most 10 error annotations per step and drops the rest
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

_RULES = {
    "file": "The manifest file cannot be read (missing, binary, not UTF-8, empty, too large).",
    "yaml": "The manifest is not safe, well-formed YAML (syntax, tabs, duplicate keys, tags, aliases).",
    "schema": "The manifest does not match schemas/redbeat-manifest.schema.json.",
    "semantic": "A value the schema allows but beat cannot run (cron range, time zone, duplicate name ...).",
    "compat": "An extension that celery-redbeat cannot read (validate --compat celery-redbeat).",
    "manifest": "Other manifest errors.",
}


#: A report quotes at most this much of a field path, a message or a source line: a hostile manifest
#: with a megabyte-long key must not produce megabytes of CI log.
CLIP = 200
#: Characters of the source line shown before the offending column when the line is long.
FRAME_LEAD = 40


def clip(text: str, limit: int = CLIP) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def headline(error: ManifestError) -> str:
    """``file:line:col: field: message`` (the first line of every text report), long parts shortened."""
    where = error.where
    position = str(where.file) + "".join(f":{n}" for n in (where.line, where.column) if n is not None)
    field = f": {clip(where.field)}" if where.field else ""
    return f"{position}{field}: {clip(error.message, 2 * CLIP)}"


def code_frame(error: ManifestError) -> list[str]:
    """The offending line with ``^^^`` under the value, when the line is known (a window of a long line)."""
    line, column, source = error.where.line, error.where.column, error.source_line
    if line is None or column is None or source is None:
        return []
    source = source.rstrip("\r\n")
    start = min(column - 1, len(source))
    end = error.end_column - 1 if error.end_column else len(source.rstrip())
    end = max(start + 1, min(end, len(source)))
    left = 0
    if len(source) > CLIP:
        left = max(0, start - FRAME_LEAD)
        source = ("…" if left else "") + source[left:left + CLIP] + ("…" if left + CLIP < len(source) else "")
        start, end = start - left + (1 if left else 0), min(end - left + (1 if left else 0), len(source))
    width = max(1, end - start)
    gutter = len(str(line))
    pad = "".join("\t" if ch == "\t" else " " for ch in source[:start])
    return [f" {line} | {source}", f" {' ' * gutter} | {pad}{'^' * width}"]


def render_text(errors: Sequence[ManifestError]) -> str:
    lines: list[str] = []
    for error in errors:
        lines.append(headline(error))
        frame = code_frame(error)
        lines.extend(frame)
        if error.hint:
            indent = " " * (len(str(error.where.line)) + 1) if frame else ""
            lines.append(f" {indent}= hint: {error.hint}")
    count = len(errors)
    files = len({str(e.where.file) for e in errors})
    lines.append(f"{count} error{'s' if count != 1 else ''} in {files} file{'s' if files != 1 else ''}")
    return "\n".join(lines)


def error_dict(error: ManifestError) -> dict[str, object]:
    return {
        "file": str(error.where.file),
        "line": error.where.line,
        "column": error.where.column,
        "field": error.where.field,
        "message": error.message,
        "hint": error.hint,
        "code": error.code,
    }


def render_json(errors: Sequence[ManifestError], *, schedules: int = 0) -> str:
    """``schedules``: how many schedules are valid; the total is unknown (``null``) when some are not."""
    payload = {
        "valid": not errors,
        "schedules": None if errors else schedules,
        "valid_schedules": schedules,
        "errors": [error_dict(e) for e in errors],
    }
    return json.dumps(payload, indent=2)


def _escape_data(text: str) -> str:
    # https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts (escapeData)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(errors: Sequence[ManifestError]) -> str:
    """``::error`` workflow commands for the first 10 errors, then the rest as plain lines and a count."""
    lines: list[str] = []
    for error in errors[:GITHUB_ANNOTATION_LIMIT]:
        props = [f"file={_escape_property(str(error.where.file))}"]
        if error.where.line is not None:
            props.append(f"line={error.where.line}")
        if error.where.column is not None:
            props.append(f"col={error.where.column}")
        if error.end_column is not None:
            props.append(f"endColumn={error.end_column}")
        title = f"redbeat-apply: {error.where.field}" if error.where.field else "redbeat-apply"
        props.append(f"title={_escape_property(title)}")
        message = error.message + (f" ({error.hint})" if error.hint else "")
        lines.append(f"::error {','.join(props)}::{_escape_data(message)}")
    rest = errors[GITHUB_ANNOTATION_LIMIT:]
    if rest:
        lines.extend(headline(e) for e in rest)
        lines.append(
            f"{len(rest)} more error{'s' if len(rest) != 1 else ''} not annotated "
            f"(GitHub shows at most {GITHUB_ANNOTATION_LIMIT} annotations per step); listed above"
        )
    return "\n".join(lines)


def render_sarif(errors: Sequence[ManifestError]) -> str:
    """A SARIF 2.1.0 log for GitHub code scanning and other tools."""
    codes = sorted({e.code for e in errors} | {"schema", "semantic", "yaml", "file", "compat"})
    rules = [
        {"id": f"redbeat/{code}", "shortDescription": {"text": _RULES.get(code, code)}}
        for code in codes
    ]
    results = []
    for error in errors:
        region: dict[str, int] = {}
        if error.where.line is not None:
            region["startLine"] = error.where.line
            if error.where.column is not None:
                region["startColumn"] = error.where.column
            if error.end_column is not None:
                region["endColumn"] = error.end_column
        location: dict[str, object] = {"artifactLocation": {"uri": error.where.file.as_posix()}}
        if region:
            location["region"] = region
        text = (f"{error.where.field}: " if error.where.field else "") + error.message
        if error.hint:
            text += f" ({error.hint})"
        results.append({
            "ruleId": f"redbeat/{error.code}",
            "level": "error",
            "message": {"text": text},
            "locations": [{"physicalLocation": location}],
        })  # fmt: skip
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "redbeat-apply", "rules": rules}}, "results": results}],
    }
    return json.dumps(log, indent=2)


def render_errors(errors: Sequence[ManifestError], fmt: str, *, schedules: int = 0) -> str:
    if fmt == "json":
        return render_json(errors, schedules=schedules)
    if fmt == "github":
        return render_github(errors)
    if fmt == "sarif":
        return render_sarif(errors)
    return render_text(errors)
