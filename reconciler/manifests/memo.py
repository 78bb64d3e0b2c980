"""A memo of converted schedules, so re-checking an edited file converts only the schedules that changed.

At 100,000 schedules in 100 files an edit rewrites a file of 1,000
schedules; the semantic check and conversion of each (defaults merged,
:func:`reconciler.schedules.convert.manifest_to_entry`) was most of the
watch mode's work per edit although one schedule changed.  A conversion
depends only on the schedule's own data, its document's ``defaults`` and the
compat target, so a schedule whose three are unchanged reuses the entry's
content (``definition``, ``ext``, ``protected``, digest); its ``source`` is
made again from where the schedule is now.

Only clean conversions are kept: a schedule with an error or a compat error
is converted again every time, so every error carries the position where
its value is now.  The key is exact (:func:`freeze`): ``1``, ``1.0`` and
``true`` differ, and mappings keep their written order (an ``options``
mapping keeps it into the definition).  A memo holds what
the previous check of one file converted, so it is bounded by the files the
index holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.errors import Location
from reconciler.core.model import DesiredEntry

Key = tuple[str | None, str, str]  # compat, frozen defaults, frozen schedule


def freeze(value: Any) -> str:
    """A form of a YAML value that equals another's only when both convert the same: its ``repr``.

    The loader makes only builtin values (``nodes.to_value``), whose ``repr``
    is exact: types differ (``1``, ``1.0``, ``True``, ``'1'``), a float is
    written in full (``-0.0``, ``nan``), a timestamp with its zone, and
    mappings in their written order.  Much faster than walking the value.
    """
    return repr(value)


@dataclass(frozen=True, slots=True)
class Converted:
    """An entry's content without its source, and its digest (``digest.entry_digest``)."""

    name: str
    definition: dict[str, Any]
    ext: dict[str, Any] | None
    protected: bool
    digest: int

    def entry(self, source: Location) -> DesiredEntry:
        return DesiredEntry(self.name, self.definition, self.ext, self.protected, source)


class ConversionMemo:
    """The conversions of a file's previous check (``previous``) and those of the check running now.

    ``digest`` is ``digest.entry_digest`` (passed in: this module sits below it).
    """

    def __init__(self, digest: Callable[[DesiredEntry], int], previous: Mapping[Key, Converted] | None = None) -> None:
        self._digest = digest
        self._previous: Mapping[Key, Converted] = previous or {}
        self.current: dict[Key, Converted] = {}

    @staticmethod
    def key(compat: str | None, defaults: str, own: Mapping[str, Any]) -> Key:
        """``defaults`` is :func:`freeze` of the document's defaults, computed once per document."""
        return (compat, defaults, freeze(own))

    def get(self, key: Key) -> Converted | None:
        found = self.current.get(key) or self._previous.get(key)
        if found is not None:
            self.current[key] = found
        return found

    def put(self, key: Key, entry: DesiredEntry) -> Converted:
        """Remember a clean conversion of the schedule ``key`` stands for."""
        converted = Converted(entry.name, entry.definition, entry.ext, entry.protected, self._digest(entry))
        self.current[key] = converted
        return converted
