"""The index's conversion memo: an edit converts only the schedules that changed, and every position stays true."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.errors import ManifestError
from reconciler.manifests import semantic
from reconciler.manifests.checks import check_manifests
from reconciler.manifests.digest import content_digest
from reconciler.manifests.index import ManifestIndex
from reconciler.manifests.loader import Marks, parse_file
from reconciler.manifests.memo import freeze


def settled_index(paths: list[Path]) -> ManifestIndex:
    return ManifestIndex(paths, clock=lambda: 4e9)  # every identity it reads is trusted (no racy window)


def full_error(error: ManifestError) -> tuple[Any, ...]:
    return (str(error), error.code, error.end_column, error.source_line, error.hint)


def assert_equals_cold(index: ManifestIndex) -> None:
    """Entries (with their sources) and errors (every field of their position) as a cold check gives them."""
    entries, errors = check_manifests(index.paths, compat=index.compat, allow_empty=index.allow_empty)
    assert index.entries == entries
    assert {n: e.source for n, e in index.entries.items()} == {n: e.source for n, e in entries.items()}
    assert [full_error(e) for e in index.errors] == [full_error(e) for e in errors]
    assert index.digest == content_digest(entries)


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every schedule converted from now on."""
    names: list[str] = []
    real = semantic.manifest_to_entry

    def counting(data: dict[str, Any]) -> Any:
        names.append(str(data.get("name")))
        return real(data)

    monkeypatch.setattr(semantic, "manifest_to_entry", counting)
    return names


GROUP = "defaults: {task: t.a, timezone: UTC}\nschedules:\n  - {name: a, cron: '0 * * * *'}\n  - {name: b, every: 5s}\n"
OTHER = "---\nschedules:\n  - {name: c, task: t.c, cron: '5 * * * *'}\n"


def test_an_edit_converts_only_the_schedule_that_changed(tmp_path: Path, conversions: list[str]) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(GROUP + OTHER)
    index = settled_index([tmp_path])
    index.refresh()
    assert sorted(conversions) == ["a", "b", "c"]
    conversions.clear()
    path.write_text(GROUP.replace("every: 5s", "every: 6s") + OTHER)
    assert index.refresh().names == {"b"}
    assert conversions == ["b"]
    assert_equals_cold(index)


def test_a_changed_default_converts_every_schedule_of_its_document_again(
    tmp_path: Path, conversions: list[str]
) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(GROUP + OTHER)
    index = settled_index([tmp_path])
    index.refresh()
    conversions.clear()
    path.write_text(GROUP.replace("timezone: UTC", "timezone: Europe/Paris") + OTHER)
    assert index.refresh().names == {"a"}  # b is an `every`: a default time zone means nothing to it
    assert sorted(conversions) == ["a", "b"]  # both converted again; c (another document) is not
    assert index.entries["a"].ext == {"timezone": "Europe/Paris"}
    assert_equals_cold(index)


def test_a_moved_schedule_keeps_its_entry_and_reports_its_new_line(tmp_path: Path, conversions: list[str]) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(GROUP + OTHER)
    index = settled_index([tmp_path])
    index.refresh()
    before = index.entries["b"]
    conversions.clear()
    moved = GROUP.replace("schedules:\n", "schedules:\n  # a comment\n\n  - {name: z, task: t.z, every: 1m}\n")
    path.write_text(moved + OTHER)
    refresh = index.refresh()
    assert conversions == ["z"]
    after = index.entries["b"]
    assert after.definition == before.definition and after.source.line == before.source.line + 3
    assert after.source.field == "schedules[2]"  # and its index in the list
    assert {"a", "b", "c", "z"} <= refresh.names  # every entry whose source moved is handed on
    assert_equals_cold(index)


def test_errors_are_found_again_where_they_are_now(tmp_path: Path, conversions: list[str]) -> None:
    path = tmp_path / "jobs.yaml"
    bad = (
        "schedules:\n  - {name: a, task: t, every: 5s}\n"
        "  - {name: bad, task: t, cron: '0 * * * *', timezone: Mars/Base}\n"
    )
    path.write_text(bad)
    index = settled_index([tmp_path])
    index.refresh()
    (error,) = index.errors
    assert error.where.line == 3
    conversions.clear()
    path.write_text(bad.replace("schedules:\n", "schedules:\n\n\n"))
    index.refresh()
    assert conversions == ["bad"]  # a schedule with an error is never taken from the memo
    (error,) = index.errors
    assert error.where.line == 5 and error.source_line is not None and "Mars/Base" in error.source_line
    assert_equals_cold(index)


def test_a_duplicate_name_error_points_at_the_moved_definition(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("schedules:\n  - {name: x, task: t, every: 5s}\n")
    second.write_text("schedules:\n  - {name: y, task: t, every: 5s}\n  - name: x\n    task: t\n    every: 9s\n")
    index = settled_index([tmp_path])
    index.refresh()
    assert_equals_cold(index)
    second.write_text("schedules:\n  - name:   x\n    task: t\n    every: 9s\n  - {name: y, task: t, every: 5s}\n")
    index.refresh()
    (error,) = index.errors
    assert (error.where.file, error.where.line, error.where.column, error.end_column) == (second, 2, 13, 14)
    assert_equals_cold(index)


def test_compat_errors_are_never_memoised(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    text = "schedules:\n  - {name: a, task: t, cron: '0 * * * *', timezone: UTC}\n"
    path.write_text(text)
    index = ManifestIndex([tmp_path], compat="celery-redbeat", clock=lambda: 4e9)
    index.refresh()
    assert [e.where.line for e in index.errors] == [2]
    path.write_text("# moved\n" + text)
    index.refresh()
    assert [e.where.line for e in index.errors] == [3]
    assert_equals_cold(index)


def test_the_memo_holds_only_the_schedules_of_the_files_in_the_index(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(GROUP + OTHER)
    (tmp_path / "keep.yaml").write_text("schedules:\n  - {name: k, task: t, every: 1m}\n")
    index = settled_index([tmp_path])
    index.refresh()
    held = index._files[path].conversions
    assert len(held) == 3
    path.write_text(GROUP.replace("every: 5s", "every: 6s") + OTHER)
    index.refresh()
    assert len(index._files[path].conversions) == 3  # the old `b` is gone with the old check
    path.unlink()
    index.refresh()
    assert path not in index._files and sum(len(f.conversions) for f in index._files.values()) == 1


@pytest.mark.parametrize(
    ("one", "other"),
    [(1, 1.0), (1, True), (1, "1"), (0.0, -0.0), ({"a": 1, "b": 2}, {"b": 2, "a": 1}), ([1], (1,)), (None, "null")],
)
def test_values_that_may_convert_differently_never_share_a_key(one: Any, other: Any) -> None:
    assert freeze({"every": one}) != freeze({"every": other})


NAMES = (
    "schedules:\n"
    "  - {name: flow, task: t, every: 5s}\n"
    "  -   name: 'quoted'\n"
    "      task: t\n"
    "      every: 5s\n"
    "  - name: &n anchored\n"
    "    task: t\n"
    "    every: 5s\n"
    "  - {<<: {name: merged, task: t}, every: 5s}\n"
    "  - name: |\n"
    "      multi\n"
    "    task: t\n"
    "    every: 5s\n"
    "  - {task: t, every: 5s}\n"
)


def test_name_positions_recorded_while_parsing_equal_those_of_a_composed_tree(tmp_path: Path) -> None:
    path = tmp_path / "names.yaml"
    path.write_text(NAMES)
    (document,) = parse_file(path).documents
    composed = dataclasses.replace(document, marks=Marks(document.marks.root))  # nothing recorded: composes
    for i in range(6):
        fast, slow = document.error(("schedules", i, "name"), "m"), composed.error(("schedules", i, "name"), "m")
        assert full_error(fast) == full_error(slow)
