"""The semantic checks (reconciler.manifests.semantic): defaults merged, names unique, errors at their origin.

Documents are parsed from real files (reconciler.manifests.loader.parse_file)
and handed to the two semantic halves directly (``document_candidates`` per
document, then ``merge_candidates`` across them, as ``checks.check_manifests``
runs them), so these tests see what they do without the schema check in front.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.core.errors import ManifestError
from reconciler.core.model import DesiredEntry
from reconciler.manifests.loader import Document, parse_file
from reconciler.manifests.semantic import COMPAT_TARGETS, document_candidates, merge_candidates


def documents(
    tmp_path: Path, text: str, name: str = "jobs.yaml", skip: set[int] | None = None
) -> list[tuple[Document, set[int]]]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return [(document, set(skip or ())) for document in parse_file(path).documents]


def build_entries(
    documents: list[tuple[Document, set[int]]], *, compat: str | None = None
) -> tuple[dict[str, DesiredEntry], list[ManifestError]]:
    """Every document's candidates, then the names merged across them: the semantic part of a whole run."""
    candidates = []
    errors: list[ManifestError] = []
    for document, skip in documents:
        found, problems = document_candidates(document, skip, compat=compat)
        candidates += found
        errors += problems
    entries, problems = merge_candidates(candidates)
    return entries, errors + problems


def texts(errors: list[ManifestError], tmp_path: Path) -> list[str]:
    return [str(error).replace(f"{tmp_path}/", "") for error in errors]


GROUP = """\
    defaults:
      task: app.tasks.report
      timezone: Europe/Berlin
      jitter: 10s
      options: {queue: reports, priority: 3}
    schedules:
      - name: nightly
        cron: "0 2 * * *"
        options: {priority: 9}
      - name: every-minute
        every: 60s
      - name: once
        at: "2030-01-01T00:00:00Z"
        jitter: 0s
      - name: own-task
        task: app.tasks.other
        cron: "*/5 * * * *"
        timezone: UTC
        jitter: null
    """


def test_defaults_are_merged_into_every_schedule_of_the_group(tmp_path: Path) -> None:
    entries, errors = build_entries(documents(tmp_path, GROUP))
    assert errors == []
    assert list(entries) == ["nightly", "every-minute", "once", "own-task"]
    nightly = entries["nightly"]
    assert nightly.definition["task"] == "app.tasks.report"
    assert nightly.definition["options"] == {"queue": "reports", "priority": 9}  # merged key by key, own wins
    assert nightly.ext == {"jitter": 10.0, "timezone": "Europe/Berlin"}
    assert entries["own-task"].definition["task"] == "app.tasks.other"
    assert entries["own-task"].ext is None or "jitter" not in entries["own-task"].ext  # null turns the default off


def test_a_default_timezone_is_not_applied_to_every_or_at_schedules(tmp_path: Path) -> None:
    entries, errors = build_entries(documents(tmp_path, GROUP))
    assert errors == []
    assert "timezone" not in (entries["every-minute"].ext or {})
    assert not (entries["once"].ext or {}).get("timezone")
    assert "jitter" not in (entries["once"].ext or {})  # jitter: 0s turns the default off


def test_each_entry_points_at_its_schedule_in_the_file(tmp_path: Path) -> None:
    entries, _ = build_entries(documents(tmp_path, GROUP))
    source = entries["once"].source
    assert (source.file.name, source.line, source.field) == ("jobs.yaml", 12, "schedules[2]")


def test_a_bad_default_points_at_the_defaults_and_a_bad_own_value_at_the_schedule(tmp_path: Path) -> None:
    text = """\
        defaults:
          task: app.tasks.report
          timezone: Mars/Olympus
        schedules:
          - name: a
            cron: "0 2 * * *"
          - name: b
            cron: "0 99 * * *"
            timezone: UTC
        """
    _, errors = build_entries(documents(tmp_path, text))
    assert [(e.where.line, e.where.field, e.code) for e in errors] == [
        (3, "defaults.timezone", "semantic"),
        (8, "schedules[1].cron", "semantic"),
    ]
    assert "Mars/Olympus" in errors[0].message


def test_a_merged_option_error_points_at_the_default_that_set_it(tmp_path: Path) -> None:
    text = """\
        defaults:
          task: app.tasks.report
          options: {queue: q, headers: {1: x}}
        schedules:
          - name: a
            every: 30s
            options: {queue: mine}
        """
    _, errors = build_entries(documents(tmp_path, text))
    assert [(e.where.line, e.where.field) for e in errors] == [(3, "defaults.options.headers")]
    assert "not a string" in errors[0].message


HOSTILE_NAMES = [
    "with[brackets]/and/slashes",
    "<script>alert(1)</script>",
    "quotes ' and \" and \\ too",
    "unicode-名前-🙂",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_duplicate_name_is_reported_at_the_second_with_the_first_location(tmp_path: Path, name: str) -> None:
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    first = documents(tmp_path, f"name: {quoted}\ntask: app.t\nevery: 30s\n", "a.yaml")
    second = documents(tmp_path, f"schedules:\n  - name: {quoted}\n    task: app.u\n    every: 1m\n", "b.yaml")
    entries, errors = build_entries(first + second)
    assert list(entries) == [name]
    assert entries[name].definition["task"] == "app.t"  # the first one stays
    [error] = errors
    assert (error.where.file.name, error.where.line, error.where.field) == ("b.yaml", 2, "schedules[0].name")
    assert f"also defined at {tmp_path / 'a.yaml'}:1:1" in error.message
    assert "unique across all manifests" in (error.hint or "")


def test_schedules_that_failed_the_schema_are_skipped(tmp_path: Path) -> None:
    text = """\
        schedules:
          - name: kept
            task: app.t
            every: 30s
          - name: broken
            task: app.t
            every: -5s
        """
    entries, errors = build_entries(documents(tmp_path, text, skip={1}))
    assert (list(entries), errors) == (["kept"], [])


def test_one_bad_schedule_does_not_hide_the_others(tmp_path: Path) -> None:
    text = """\
        schedules:
          - {name: a, task: app.t, cron: "61 * * * *"}
          - {name: b, task: app.t, every: 30s}
          - {name: c, task: app.t, cron: "0 0 31 2 *"}
        """
    entries, errors = build_entries(documents(tmp_path, text))
    assert list(entries) == ["b"]
    assert [e.where.field for e in errors] == ["schedules[0].cron", "schedules[2].cron"]


def test_protected_is_carried_over_and_not_part_of_the_definition(tmp_path: Path) -> None:
    entries, errors = build_entries(documents(tmp_path, "name: p\ntask: app.t\nevery: 30s\nprotected: true\n"))
    assert errors == [] and entries["p"].protected
    assert "protected" not in entries["p"].definition


def test_compat_names_every_extension_at_its_field(tmp_path: Path) -> None:
    text = """\
        name: job
        task: app.t
        cron: "0 9 * * *"
        timezone: Europe/Berlin
        jitter: 5s
        catch_up: skip
        """
    entries, errors = build_entries(documents(tmp_path, text), compat="celery-redbeat")
    assert {e.where.field: e.code for e in errors} == {"timezone": "compat", "jitter": "compat", "catch_up": "compat"}
    assert all("celery-redbeat" in e.message for e in errors)
    assert "job" in entries  # the entries are still built: compat errors are reported, not fatal to the rest


def test_compat_names_nth_weekdays_of_an_rrule(tmp_path: Path) -> None:
    text = """\
        name: last-friday
        task: app.t
        rrule: {freq: monthly, byweekday: ["-1fr"], dtstart: "2026-01-01T09:00:00Z"}
        """
    _, errors = build_entries(documents(tmp_path, text), compat="celery-redbeat")
    [error] = errors
    assert error.where.field == "rrule.byweekday" and "(-1FR, an extension)" in error.message


def test_without_compat_extensions_are_no_error(tmp_path: Path) -> None:
    _, errors = build_entries(documents(tmp_path, "name: j\ntask: app.t\nevery: 30s\njitter: 5s\n"))
    assert errors == []


@pytest.mark.parametrize("target", ["celery-redbeat-3", "", "<script>", "CELERY-REDBEAT"])
def test_an_unknown_compat_target_is_refused(tmp_path: Path, target: str) -> None:
    assert target not in COMPAT_TARGETS
    with pytest.raises(ValueError, match="unknown compatibility target"):
        build_entries(documents(tmp_path, "name: j\ntask: app.t\nevery: 30s\n"), compat=target)


def test_huge_and_unicode_values_survive_the_merge(tmp_path: Path) -> None:
    blob = "ü\u202e<script>" * 20_000
    text = f'defaults:\n  task: app.t\n  kwargs: {{blob: "{blob}"}}\nschedules:\n  - name: big\n    every: 30s\n'
    entries, errors = build_entries(documents(tmp_path, text))
    assert errors == []
    assert entries["big"].definition["kwargs"] == {"blob": blob}
