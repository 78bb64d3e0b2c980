"""Every error redbeat-apply raises on purpose: one hierarchy under :class:`RedbeatError`, defined here only.

``redbeat-apply``'s error handler turns a :class:`RedbeatError` into a message
and an exit code (:class:`ManifestErrors`: 3, any other: 1), so a new error
class belongs here, below the one whose handling it shares:

* :class:`InvalidValue` (also a ``ValueError``): one value is not what its
  place needs (a cron field, a duration, a schedule field, a console token);
  the manifest checks turn these into :class:`ManifestError` at the value.
* :class:`ManifestError` names the file, the 1-based line and column and the
  field path (``schedules[2].cron``); a run collects them all into one
  :class:`ManifestErrors`, sorted by file, line and column, so one bad file
  never hides another.
* Redis and the plan: :class:`StoreError`, :class:`StateError`,
  :class:`PlanRefused`, :class:`StalePlanError`, :class:`ApplyPermissionError`:
  nothing was written.
* :class:`MigrateError`: ``migrate-django`` stopped before writing anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class RedbeatError(Exception):
    """Base for every error raised on purpose (pre-commit's FatalError)."""


# --- one value ----------------------------------------------------------------------------------------------


class InvalidValue(RedbeatError, ValueError):
    """One value that is not what its place needs; the message says why (a ValueError too)."""


class CronError(InvalidValue):
    """A cron expression or crontab field that cannot be parsed."""


class DurationError(InvalidValue):
    """A value that is not a duration, or not a positive one."""


class Unrunnable(InvalidValue):
    """A value beat or Celery cannot run or send; ``key`` is the option it is in, if any."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.message, self.key = message, key


class FieldError(InvalidValue):
    """A value that the schema allows but that cannot be a schedule; ``path`` is relative to the schedule."""

    def __init__(self, path: Sequence[str | int], message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.path, self.message, self.hint = tuple(path), message, hint


class Inexpressible(InvalidValue):
    """A definition read from Redis that the manifest format cannot express (hand-made, foreign, corrupt)."""


class TokenError(InvalidValue):
    """The console's admin token cannot be used; the message says where it came from and why."""


class NodeError(RedbeatError):
    """A problem at one node of a manifest's YAML tree (``node`` is the ``yaml.Node``)."""

    def __init__(self, node: Any, message: str) -> None:
        super().__init__(message)
        self.node, self.message = node, message


@dataclass(frozen=True)
class Location:
    """Where something is in a manifest: ``file:line:col: field``.

    ``line`` and ``column`` are 1-based, or None when unknown (a whole file or
    directory). ``field`` is a path such as ``schedules[2].cron``; empty for a
    whole file or document.
    """

    file: Path
    line: int | None
    column: int | None
    field: str

    def __str__(self) -> str:
        text = str(self.file)
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return f"{text}: {self.field}" if self.field else text

    def sort_key(self) -> tuple[str, int, int, str]:
        return (str(self.file), self.line or 0, self.column or 0, self.field)


class ManifestError(RedbeatError):
    """One problem in one manifest.

    ``code`` groups errors for reports (``file``, ``yaml``, ``schema``,
    ``semantic``, ``compat``); ``end_column`` (exclusive, 1-based) and
    ``source_line`` let a report underline the offending value.
    """

    def __init__(
        self,
        where: Location,
        message: str,
        hint: str | None = None,
        *,
        code: str = "manifest",
        end_column: int | None = None,
        source_line: str | None = None,
    ) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message
        self.hint = hint
        self.code = code
        self.end_column = end_column
        self.source_line = source_line

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (*self.where.sort_key(), self.message)

    def __repr__(self) -> str:
        return f"ManifestError({str(self)!r})"


class StateError(RedbeatError):
    """What is in Redis cannot be read as redbeat wrote it (a name or record that is not UTF-8); nothing was written."""


class ManifestErrors(RedbeatError):
    """All the manifest errors of one run, sorted by file, line and column."""

    def __init__(self, errors: Iterable[ManifestError]) -> None:
        self.errors: list[ManifestError] = sorted(errors, key=ManifestError.sort_key)
        count = len(self.errors)
        first = f": {self.errors[0]}" if self.errors else ""
        super().__init__(f"{count} manifest error{'s' if count != 1 else ''}{first}")


# --- Redis, the plan and the apply: nothing was written -------------------------------------------------------


class StoreError(RedbeatError):
    """Redis failed; says which operation and where.  Nothing was half-written (applies are atomic)."""


class _RefusedPlan(Protocol):
    """What a refusal needs of a plan (``reconciler.sync.plan.Plan``): the reasons."""

    @property
    def errors(self) -> tuple[str, ...]: ...


class PlanRefused(RedbeatError):
    """The plan has conflicts or trips a safety valve; nothing was written.  ``plan`` is the refused plan."""

    def __init__(self, plan: _RefusedPlan) -> None:
        super().__init__("; ".join(plan.errors))
        self.plan: Any = plan


class ApplyPermissionError(RedbeatError):
    """The Redis user may not run a write the apply needs; checked before any write, so nothing was written."""


class StalePlanError(RedbeatError):
    """Redis changed since the plan was made; nothing was written."""

    def __init__(self, name: str, what: str) -> None:
        super().__init__(f"{name}: its {what} changed in Redis since the plan was made; nothing was written")
        self.name, self.what = name, what


class FeedBroken(RedbeatError):
    """The watch mode's change feed can no longer vouch for what it reported; it is closed, resyncs compare all."""


# --- migrate-django -----------------------------------------------------------------------------------------


class MigrateError(RedbeatError):
    """A problem that stops ``migrate-django`` before anything is written."""
