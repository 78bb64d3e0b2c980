"""Error reports (reconciler.cli.report): text with code frames, JSON, GitHub annotations and SARIF.

Hostile parts everywhere: file names with ``,`` ``:`` ``[`` ``]``, messages
with newlines, ``%`` and ``<script>``, tabs, unicode and megabyte-long lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli.report import (
    CLIP,
    FORMATS,
    GITHUB_ANNOTATION_LIMIT,
    SARIF_SCHEMA,
    clip,
    code_frame,
    headline,
    render_errors,
    render_github,
    render_json,
    render_sarif,
    render_text,
)
from reconciler.core.errors import Location, ManifestError


def error(
    message: str = "bad value",
    *,
    file: str = "jobs.yaml",
    line: int | None = 3,
    column: int | None = 7,
    field: str = "schedules[0].cron",
    hint: str | None = None,
    code: str = "semantic",
    end_column: int | None = None,
    source_line: str | None = None,
) -> ManifestError:
    where = Location(Path(file), line, column, field)
    return ManifestError(where, message, hint, code=code, end_column=end_column, source_line=source_line)


# -- text ------------------------------------------------------------------------------------------------------


def test_clip_keeps_short_text_and_says_how_long_a_clipped_one_was() -> None:
    assert clip("short") == "short"
    assert clip("x" * CLIP) == "x" * CLIP
    assert clip("ü" * 1_000_000) == "ü" * CLIP + "… (1000000 characters)"
    assert clip("abcdef", 3) == "abc… (6 characters)"


@pytest.mark.parametrize(
    ("made", "shown"),
    [
        (error(), "jobs.yaml:3:7: schedules[0].cron: bad value"),
        (error(line=None, column=None, field=""), "jobs.yaml: bad value"),
        (error(column=None), "jobs.yaml:3: schedules[0].cron: bad value"),
        (
            error(file="dir [x]/a,b:c.yaml", field='kwargs["<script>"]'),
            'dir [x]/a,b:c.yaml:3:7: kwargs["<script>"]: bad value',
        ),
    ],
)
def test_headline_is_file_line_column_field_message(made: ManifestError, shown: str) -> None:
    assert headline(made) == shown


def test_headline_clips_a_huge_field_and_message() -> None:
    text = headline(error("m" * 100_000, field="f" * 100_000))
    assert len(text) < 1000
    assert "(100000 characters)" in text


def test_code_frame_underlines_the_value() -> None:
    frame = code_frame(error(source_line="cron: 61 * * * *\n", line=3, column=7, end_column=17))
    assert frame == [" 3 | cron: 61 * * * *", "   |       ^^^^^^^^^^"]


def test_code_frame_without_an_end_underlines_to_the_end_of_the_line_and_keeps_tabs() -> None:
    frame = code_frame(error(source_line="\tkey:\tvalue   ", line=12, column=7))
    assert frame == [" 12 | \tkey:\tvalue   ", "    | \t    \t^^^^^"]


def test_no_code_frame_without_a_known_line_column_or_source() -> None:
    assert code_frame(error(source_line=None)) == []
    assert code_frame(error(line=None, source_line="x")) == []
    assert code_frame(error(column=None, source_line="x")) == []


def test_a_long_source_line_is_shown_as_a_window_around_the_column() -> None:
    source = "a" * 5000 + "BAD" + "z" * 5000
    frame = code_frame(error(source_line=source, line=1, column=5001, end_column=5004))
    line, carets = frame
    assert len(line) < CLIP + 20
    assert line.startswith(" 1 | …") and line.endswith("…")
    shown = line[len(" 1 | ") :]
    start = carets.index("^") - len(" 1 | ")
    assert shown[start : start + 3] == "BAD" and carets.endswith("^^^")


def test_a_column_past_the_end_of_the_line_still_frames() -> None:
    assert code_frame(error(source_line="ab", line=1, column=50)) == [" 1 | ab", "   |   ^"]


def test_text_report_lists_each_error_with_its_hint_and_counts_errors_and_files() -> None:
    errors = [
        error("first", hint="do this", source_line="cron: x", line=1, column=7),
        error("second", file="other.yaml", line=None, column=None, field="", hint="and that"),
    ]
    assert render_text(errors).splitlines() == [
        "jobs.yaml:1:7: schedules[0].cron: first",
        " 1 | cron: x",
        "   |       ^",
        "   = hint: do this",
        "other.yaml: second",
        " = hint: and that",
        "2 errors in 2 files",
    ]
    assert render_text([error()]).endswith("1 error in 1 file")


# -- json ------------------------------------------------------------------------------------------------------


def test_json_report_is_valid_and_says_every_field() -> None:
    hostile = error("line one\nline two <script>\x00", hint="ünïcødé", field='a["]"]')
    payload = json.loads(render_json([hostile], schedules=4))
    assert payload == {
        "valid": False,
        "schedules": None,
        "valid_schedules": 4,
        "errors": [
            {
                "file": "jobs.yaml",
                "line": 3,
                "column": 7,
                "field": 'a["]"]',
                "message": "line one\nline two <script>\x00",
                "hint": "ünïcødé",
                "code": "semantic",
            }
        ],
    }
    assert json.loads(render_json([], schedules=4)) == {
        "valid": True,
        "schedules": 4,
        "valid_schedules": 4,
        "errors": [],
    }


# -- GitHub ----------------------------------------------------------------------------------------------------


def test_github_annotations_escape_messages_and_properties() -> None:
    made = error("100% wrong\r\nnext line", file="a,b:c.yaml", field="x:y,z", hint="fix", end_column=9)
    [line] = render_github([made]).splitlines()
    assert line == (
        "::error file=a%2Cb%3Ac.yaml,line=3,col=7,endColumn=9,title=redbeat-apply%3A x%3Ay%2Cz"
        "::100%25 wrong%0D%0Anext line (fix)"
    )


def test_github_annotation_without_a_position_or_field() -> None:
    made = error(line=None, column=None, field="")
    assert render_github([made]) == "::error file=jobs.yaml,title=redbeat-apply::bad value"


def test_github_annotates_the_first_ten_and_lists_the_rest() -> None:
    errors = [error(f"problem {i}", line=i + 1) for i in range(GITHUB_ANNOTATION_LIMIT + 3)]
    lines = render_github(errors).splitlines()
    assert sum(line.startswith("::error ") for line in lines) == GITHUB_ANNOTATION_LIMIT
    assert lines[GITHUB_ANNOTATION_LIMIT : GITHUB_ANNOTATION_LIMIT + 3] == [
        f"jobs.yaml:{i + 1}:7: schedules[0].cron: problem {i}" for i in range(10, 13)
    ]
    assert lines[-1].startswith("3 more errors not annotated")
    assert render_github(errors[: GITHUB_ANNOTATION_LIMIT + 1]).splitlines()[-1].startswith("1 more error not")


def test_a_newline_in_a_file_name_cannot_start_a_second_workflow_command() -> None:
    made = error(file="evil\n::set-output name=x::y.yaml", field="")
    [line] = render_github([made]).splitlines()
    assert line.startswith("::error file=evil%0A%3A%3Aset-output name=x%3A%3Ay.yaml,")


# -- SARIF -----------------------------------------------------------------------------------------------------


def test_sarif_log_has_a_rule_per_code_and_a_located_result_per_error() -> None:
    errors = [
        error("semantic <script>", hint="h", end_column=12),
        error("not utf-8", file="dir/bin ü.yaml", line=None, column=None, field="", code="file"),
        error("other", code="custom-code", column=None),
    ]
    log = json.loads(render_sarif(errors))
    assert log["$schema"] == SARIF_SCHEMA and log["version"] == "2.1.0"
    [run] = log["runs"]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rules == sorted(rules) and {"redbeat/custom-code", "redbeat/schema", "redbeat/file"} <= set(rules)
    first, second, third = run["results"]
    assert first["ruleId"] == "redbeat/semantic" and first["level"] == "error"
    assert first["message"]["text"] == "schedules[0].cron: semantic <script> (h)"
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "jobs.yaml"},
        "region": {"startLine": 3, "startColumn": 7, "endColumn": 12},
    }
    assert second["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "dir/bin ü.yaml"}}
    assert third["locations"][0]["physicalLocation"]["region"] == {"startLine": 3}


def test_an_empty_sarif_log_still_lists_the_rules() -> None:
    log = json.loads(render_sarif([]))
    assert log["runs"][0]["results"] == []
    assert len(log["runs"][0]["tool"]["driver"]["rules"]) == 5


# -- dispatch ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_render_errors_picks_the_format(fmt: str) -> None:
    errors = [error()]
    expected = {
        "text": render_text(errors),
        "json": render_json(errors, schedules=2),
        "github": render_github(errors),
        "sarif": render_sarif(errors),
    }[fmt]
    assert render_errors(errors, fmt, schedules=2) == expected
