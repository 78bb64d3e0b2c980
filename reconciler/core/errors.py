"""The errors redbeat-apply raises on purpose, and where they point.

Every manifest problem becomes a :class:`ManifestError` naming the file, the
1-based line and column and the field path (``schedules[2].cron``); a run
collects them all into one :class:`ManifestErrors`, sorted by file, line and
column, so one bad file never hides another.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class RedbeatError(Exception):
    """Base for every error raised on purpose (pre-commit's FatalError)."""


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
