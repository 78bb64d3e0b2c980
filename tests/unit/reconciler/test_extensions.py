"""Scheduling extensions in manifests: catch-up, deadlines, windows, one-off runs, jitter."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.core.errors import FieldError
from reconciler.manifests.checks import check_manifests
from reconciler.schedules.convert import entry_to_manifest, manifest_to_entry

BASE = {"name": "job", "task": "app.tasks.job"}


def test_extensions_are_stored_in_ext_and_never_in_the_definition():
    definition, ext = manifest_to_entry({
        **BASE, "cron": "*/5 * * * *", "catch_up": "all", "catch_up_limit": 3, "starting_deadline": "10m",
        "jitter": "30s", "start_at": "2026-12-01T00:00:00+01:00", "end_at": "2026-12-31T00:00:00+01:00",
    })
    assert set(definition) == {"name", "task", "args", "kwargs", "options", "schedule", "enabled"}
    assert ext == {
        "catch_up": "all", "catch_up_limit": 3, "end_at": "2026-12-31T00:00:00+01:00", "jitter": 30.0,
        "start_at": "2026-12-01T00:00:00+01:00", "starting_deadline": 600.0,
    }
    assert list(ext) == sorted(ext)


def test_default_catch_up_once_is_not_stored():
    assert manifest_to_entry({**BASE, "every": 5, "catch_up": "once"})[1] is None


def test_one_off_is_an_rrule_with_one_occurrence_that_celery_redbeat_can_run():
    definition, ext = manifest_to_entry({**BASE, "at": "2026-12-01T09:00:00+01:00"})
    assert ext is None
    assert definition["schedule"] == {
        "__type__": "rrule", "freq": 0, "interval": 1, "wkst": None, "count": 1, "bysetpos": None, "bymonth": None,
        "bymonthday": None, "byyearday": None, "byeaster": None, "byweekno": None, "byweekday": None,
        "byhour": None, "byminute": None, "bysecond": None, "dtstart": 1796112000, "dtstart_tz": 60.0,
    }
    assert entry_to_manifest(definition, ext) == {**BASE, "at": "2026-12-01T09:00:00+01:00"}


@pytest.mark.parametrize("manifest", [
    {**BASE, "every": "1m", "jitter": "10s", "catch_up": "skip", "starting_deadline": 90},
    {**BASE, "cron": "0 3 * * *", "timezone": "Europe/Berlin", "catch_up": "all", "catch_up_limit": 5},
    {**BASE, "at": "2027-01-01T00:00:00Z"},
    {**BASE, "every": 30, "start_at": "2026-12-01T00:00:00+00:00", "end_at": "2027-01-01T00:00:00+00:00"},
])
def test_round_trip_through_export_is_the_identity_on_definitions(manifest):
    definition, ext = manifest_to_entry(manifest)
    assert manifest_to_entry(entry_to_manifest(definition, ext)) == (definition, ext)


@pytest.mark.parametrize(
    "manifest, path, message",
    [
        ({**BASE, "every": 30, "jitter": "30s"}, ("jitter",), "shorter than the interval"),
        ({**BASE, "every": 30, "catch_up_limit": 3}, ("catch_up_limit",), "only applies with catch_up: all"),
        (
            {**BASE, "every": 30, "start_at": "2026-12-02T00:00:00Z", "end_at": "2026-12-01T00:00:00Z"},
            ("end_at",),
            "not after start_at",
        ),
        ({**BASE, "at": "2026-12-01T09:00:00+01:00", "timezone": "Europe/Berlin"}, ("timezone",), "one-off"),
    ],
)
def test_conflicting_extension_values_are_errors(manifest, path, message):
    with pytest.raises(FieldError) as error:
        manifest_to_entry(manifest)
    assert error.value.path == path
    assert message in error.value.message


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobs.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def job_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra_lines: str) -> Path:
    """``jobs.yaml`` (relative: errors name it so) of a 30 s job with ``extra_lines`` after its fields."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "\n".join(["name: job", "task: app.tasks.job", "every: 30s", *extra_lines]) + "\n")
    return Path("jobs.yaml")


def test_schema_rejects_an_unknown_catch_up_policy_with_a_hint(tmp_path, monkeypatch):
    _, errors = check_manifests([job_with(tmp_path, monkeypatch, "catch_up: onse")])
    assert [str(e) for e in errors] == ["jobs.yaml:4:11: catch_up: 'onse' is not one of skip, once, all"]
    assert errors[0].hint is not None and "once" in errors[0].hint


def test_compat_celery_redbeat_names_every_extension(tmp_path, monkeypatch):
    entries, errors = check_manifests([job_with(tmp_path, monkeypatch, "jitter: 5s", "catch_up: skip")],
                                      compat="celery-redbeat")
    assert sorted(str(e) for e in errors) == [
        "jobs.yaml:4:9: jitter: celery-redbeat ignores jitter (an extension): there the entry runs without it",
        "jobs.yaml:5:11: catch_up: celery-redbeat ignores catch_up (an extension): there the entry runs without it",
    ]
    assert check_manifests([Path("jobs.yaml")])[1] == []


def test_defaults_carry_extensions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path,
        """\
        defaults:
          task: app.tasks.job
          catch_up: skip
          jitter: 2s
        schedules:
          - name: a
            every: 10s
          - name: b
            cron: "0 * * * *"
            catch_up: all
    """,
    )
    entries, errors = check_manifests([Path("jobs.yaml")])
    assert errors == []
    assert entries["a"].ext == {"catch_up": "skip", "jitter": 2.0}
    assert entries["b"].ext == {"catch_up": "all", "jitter": 2.0}
