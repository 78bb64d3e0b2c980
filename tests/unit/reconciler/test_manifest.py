"""Reading manifests: discovery, limits on hostile files, error positions, defaults and the content digest."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from reconciler.core.errors import Location, ManifestError, ManifestErrors
from reconciler.manifests.checks import check_manifests, load_desired
from reconciler.manifests.digest import content_digest
from reconciler.manifests.loader import MAX_FILE_BYTES, discover, load_manifests

JOB = "name: {name}\ntask: demo.tasks.job\nevery: 5s\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def messages(paths: list[Path]) -> list[str]:
    return [str(e) for e in check_manifests(paths)[1]]


def test_location_and_error_text() -> None:
    where = Location(Path("s/r.yaml"), 14, 7, "schedules[2].cron")
    assert str(where) == "s/r.yaml:14:7: schedules[2].cron"
    error = ManifestError(where, "bad", "did you mean x?")
    assert (error.where, error.message, error.hint, str(error)) == (
        where,
        "bad",
        "did you mean x?",
        "s/r.yaml:14:7: schedules[2].cron: bad",
    )
    assert str(Location(Path("d"), None, None, "")) == "d"


def test_discovery_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", JOB.format(name="b"))
    write(tmp_path / "sub" / "a.yml", JOB.format(name="a"))
    write(tmp_path / ".git" / "x.yaml", JOB.format(name="git"))
    write(tmp_path / ".hidden.yaml", JOB.format(name="hidden"))
    write(tmp_path / "notes.txt", "not a manifest")
    files, errors = discover([tmp_path])
    assert errors == []
    assert files == [tmp_path / "b.yaml", tmp_path / "sub" / "a.yml"]
    assert sorted(load_desired([tmp_path])) == ["a", "b"]


def test_kubernetes_configmap_layout(tmp_path: Path) -> None:
    real = tmp_path / "..2026_01_01_00_00_00.123"
    write(real / "jobs.yaml", JOB.format(name="from-configmap"))
    os.symlink(real.name, tmp_path / "..data")
    os.symlink("..data/jobs.yaml", tmp_path / "jobs.yaml")
    entries = load_desired([tmp_path])
    assert list(entries) == ["from-configmap"]
    assert entries["from-configmap"].source == Location(tmp_path / "jobs.yaml", 1, 1, "")


def test_symlinked_file_is_read_once(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", JOB.format(name="a"))
    os.symlink("a.yaml", tmp_path / "b.yaml")
    assert list(load_desired([tmp_path])) == ["a"]


def test_directory_symlink_loop_is_reported_not_followed(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", JOB.format(name="a"))
    os.symlink(".", tmp_path / "loop")
    assert messages([tmp_path]) == [f"{tmp_path / 'loop'}: symlink loop: this directory contains itself"]


def test_file_symlink_loop_and_broken_link(tmp_path: Path) -> None:
    write(tmp_path / "ok.yaml", JOB.format(name="ok"))
    os.symlink("y.yaml", tmp_path / "x.yaml")
    os.symlink("x.yaml", tmp_path / "y.yaml")
    os.symlink("missing.yaml", tmp_path / "z.yaml")
    assert messages([tmp_path]) == [
        f"{tmp_path / 'x.yaml'}: symlink loop",
        f"{tmp_path / 'y.yaml'}: symlink loop",
        f"{tmp_path / 'z.yaml'}: broken symlink (points to missing.yaml)",
    ]


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert messages([tmp_path / "nope", tmp_path / "empty"]) == [
        f"{tmp_path / 'empty'}: no manifests (*.yaml, *.yml) in this directory",
        f"{tmp_path / 'nope'}: cannot read: No such file or directory",
    ]


def test_file_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_FILE_BYTES + "\n" + JOB.format(name="big"), encoding="utf-8")
    assert messages([path]) == [
        f"{path}: file is {path.stat().st_size} bytes; manifests are limited to 5242880 bytes (5 MiB)"
    ]


def test_billion_laughs_fails_fast(tmp_path: Path) -> None:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 12):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    path = write(tmp_path / "lol.yaml", "\n".join(lines) + "\n")
    start = time.perf_counter()
    found = messages([path])
    assert time.perf_counter() - start < 1.0
    assert found == [
        f"{path}:1:1: anchors and aliases expand this document past 1000000 nodes (a 'billion laughs' document?)"
    ]


def test_all_errors_of_a_run_are_raised_together_sorted(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", "name: b\ntask: demo.tasks.b\nevery: 0\n")
    write(
        tmp_path / "a.yaml",
        "schedules:\n  - name: a\n    task: demo.tasks.a\n    every: 5s\n    kwarg: {}\n"
        "  - name: a2\n    task: demo.tasks.a\n    cron: '* * *'\n",
    )
    write(tmp_path / "c.yaml", JOB.format(name="fine"))
    with pytest.raises(ManifestErrors) as info:
        load_desired([tmp_path])
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path / 'a.yaml'}:5:5: schedules[0].kwarg: unknown field 'kwarg'",
        f"{tmp_path / 'a.yaml'}:8:11: schedules[1].cron: '* * *': "
        "expected 5 fields 'minute hour day-of-month month day-of-week', got 3",
        f"{tmp_path / 'b.yaml'}:3:8: every: 0: must be greater than 0",
    ]
    assert info.value.errors[0].hint == "did you mean 'kwargs'?"
    assert info.value.errors[0].source_line == "    kwarg: {}"


def test_error_in_defaults_points_at_defaults_once(tmp_path: Path) -> None:
    path = write(
        tmp_path / "g.yaml",
        "defaults:\n  task: demo.tasks.x\n  timezone: Europe/Berln\n"
        "schedules:\n  - {name: a, cron: '0 0 * * *'}\n  - {name: b, cron: '0 1 * * *'}\n",
    )
    errors = check_manifests([path])[1]
    assert [str(e) for e in errors] == [f"{path}:3:13: defaults.timezone: unknown time zone 'Europe/Berln'"]
    assert errors[0].hint == "did you mean 'Europe/Berlin'?"


def test_option_merged_from_defaults_points_at_its_origin(tmp_path: Path) -> None:
    path = write(
        tmp_path / "g.yaml",
        "defaults:\n  task: demo.tasks.x\n  options: {queue: q, headers: {1: x}}\n"
        "schedules:\n  - name: a\n    every: 5s\n    options: {priority: 1}\n",
    )
    assert messages([path]) == [
        f"{path}:3:32: defaults.options.headers: key 1 is not a string; JSON object keys must be strings (quote it)"
    ]


def test_multi_document_files_and_parsed_source_maps(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", JOB.format(name="one") + "---\n" + JOB.format(name="two") + "---\n")
    files, errors = load_manifests([path])
    assert errors == []
    (manifest,) = files
    assert [d.data["name"] for d in manifest.documents] == ["one", "two"]
    assert str(manifest.documents[1].location(("every",))) == f"{path}:7:8: every"


def test_content_digest_ignores_formatting_and_order(tmp_path: Path) -> None:
    a = write(
        tmp_path / "a" / "x.yaml",
        "schedules:\n  - {name: a, task: demo.tasks.a, every: 60, kwargs: {x: 1, y: 2}}\n"
        "  - {name: b, task: demo.tasks.b, cron: '*/15 * * * mon-fri'}\n",
    )
    b = write(
        tmp_path / "b" / "y.yaml",
        'name: b\ntask: demo.tasks.b\ncron: "*/15  *  * *   mon-fri "\n---\n'
        "task: demo.tasks.a\nkwargs:\n  y: 2\n  x: 1\nevery: 1m\nname: a\n",
    )
    c = write(
        tmp_path / "c" / "z.yaml",
        "name: a\ntask: demo.tasks.a\nevery: 61\n---\nname: b\ntask: demo.tasks.b\ncron: '*/15 * * * mon-fri'\n",
    )
    # a respelled crontab is stored as written, so it is a different content: the apply writes the new text once
    respelled = write(
        tmp_path / "d" / "w.yaml",
        "name: a\ntask: demo.tasks.a\nevery: 60\nkwargs: {x: 1, y: 2}\n---\n"
        "name: b\ntask: demo.tasks.b\ncron: '0,15,30,45 * * * 1-5'\n",
    )
    digest_a = content_digest(load_desired([a]))
    assert digest_a == content_digest(load_desired([b])) == content_digest(load_desired([a]))
    assert digest_a != content_digest(load_desired([c]))
    assert digest_a != content_digest(load_desired([respelled]))
    assert content_digest(load_desired([respelled])) == content_digest(load_desired([respelled]))
    assert len(digest_a) == 64


def test_validation_writes_nothing(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", JOB.format(name="a"))
    write(tmp_path / "bad.yaml", "name: [\n")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    check_manifests([tmp_path])
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_upper_case_suffixes_are_manifests_too(tmp_path: Path) -> None:
    write(tmp_path / "a.YAML", JOB.format(name="upper"))
    write(tmp_path / "b.Yml", JOB.format(name="mixed"))
    files, errors = discover([tmp_path])
    assert errors == []
    assert files == [tmp_path / "a.YAML", tmp_path / "b.Yml"]
    assert sorted(load_desired([tmp_path])) == ["mixed", "upper"]


def test_yaml_1_1_surprises_are_warnings_where_a_string_or_duration_is_expected(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.yaml",
        (
            "defaults:\n"
            "  task: app.tasks.t\n"
            "  jitter: 010\n"
            "schedules:\n"
            "  - name: report\n"
            "    every: 1:30\n"
            '    options: {expires: 1.0e300, countdown: 30, queue: "0777"}\n'
            "    kwargs: {at: 12:30:00, mode: 010}\n"
        ),
    )
    warnings: list[ManifestError] = []
    check_manifests([path], warnings=warnings)
    assert [f"{w.where.field}: {w.message}" for w in warnings] == [
        "defaults.jitter: unquoted 010 is the octal number 8 in YAML 1.1; quote it",
        "schedules[0].every: unquoted 1:30 is a base-60 number in YAML 1.1 (not a time or a duration); quote it",
        (
            "schedules[0].options.expires: unquoted 1.0e300 is a string in YAML 1.1, not a number; "
            "write the exponent with a sign, e.g. 1.0e+3"
        ),
    ]
    assert [(w.where.line, w.where.column) for w in warnings] == [(3, 11), (6, 12), (7, 24)]
