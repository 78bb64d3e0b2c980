"""The error classes: one hierarchy under RedbeatError, all of it in reconciler.core.errors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import reconciler
from reconciler.core import errors
from reconciler.core.errors import (
    CronError,
    DurationError,
    FieldError,
    InvalidValue,
    ManifestError,
    ManifestErrors,
    MigrateError,
    PlanRefused,
    RedbeatError,
    StalePlanError,
)


def reconciler_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(reconciler.__path__, "reconciler."))


def exception_classes(module_name: str) -> list[type[BaseException]]:
    """The exception classes a module defines (not those it imports)."""
    module = importlib.import_module(module_name)
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module_name
    ]


def test_the_modules_are_found() -> None:
    assert {"reconciler.core.errors", "reconciler.cli.main", "reconciler.migrate.from_django"} <= set(
        reconciler_modules()
    )


@pytest.mark.parametrize("module_name", reconciler_modules())
def test_no_module_but_core_errors_defines_a_public_error_class(module_name: str) -> None:
    if module_name == errors.__name__:
        return
    public = [cls.__name__ for cls in exception_classes(module_name) if not cls.__name__.startswith("_")]
    assert public == [], f"{module_name} defines {public}: error classes belong in reconciler.core.errors"


def test_every_error_class_is_a_redbeat_error() -> None:
    defined = exception_classes(errors.__name__)
    assert len(defined) >= 15
    assert [cls.__name__ for cls in defined if not issubclass(cls, RedbeatError)] == []


def test_value_errors_stay_value_errors_and_keep_their_details() -> None:
    """Code that caught ValueError from a cron or duration parser still does; the CLI's handler catches them too."""
    for cls in (CronError, DurationError, FieldError):
        assert issubclass(cls, InvalidValue) and issubclass(cls, ValueError) and issubclass(cls, RedbeatError)
    problem = FieldError(("crontab", "hour"), "25 is out of range", "use 0-23")
    assert (problem.path, problem.message, problem.hint, str(problem)) == (
        ("crontab", "hour"), "25 is out of range", "use 0-23", "25 is out of range",
    )
    assert not issubclass(ManifestErrors, ValueError) and issubclass(ManifestError, RedbeatError)
    assert issubclass(MigrateError, RedbeatError)  # was outside the hierarchy: the CLI's handler missed it


def test_a_refusal_carries_its_plan_and_a_stale_plan_its_entry() -> None:
    class Refused:
        errors = ("a: conflict", "b: protected")

    plan = Refused()
    refusal = PlanRefused(plan)
    assert refusal.plan is plan and str(refusal) == "a: conflict; b: protected"
    stale = StalePlanError("a", "definition")
    assert (stale.name, stale.what) == ("a", "definition")
    assert str(stale) == "a: its definition changed in Redis since the plan was made; nothing was written"
