"""Checks the schema cannot express, and the desired entries they yield.

Runs on schema-valid documents: merges group ``defaults`` into each schedule
(every field replaces the default of the same name, except ``options``, merged
key by key with the schedule's keys winning; a default ``timezone`` is not
applied to ``every`` or ``at`` schedules, where it means nothing, so one
group can mix them with calendar schedules; a ``jitter: 0s`` or ``null`` in a
schedule turns off a default jitter), converts each
schedule with :mod:`reconciler.schedules.convert` (cron fields through Celery's parser,
time zones, rrules that never fire, intervals <= 0, JSON-encodable values),
and checks that names are unique across the whole run. Every error points at
the field where the offending value was written, in the schedule or in the
defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.errors import FieldError, Location, ManifestError
from reconciler.core.model import DesiredEntry
from reconciler.manifests.loader import Document
from reconciler.manifests.memo import ConversionMemo, freeze
from reconciler.schedules.convert import manifest_to_entry

COMPAT_TARGETS = ("celery-redbeat",)

PathT = tuple[str | int, ...]


class _Schedule:
    """One merged schedule and where each of its fields was written."""

    def __init__(self, document: Document, prefix: PathT, own: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        self.document, self.prefix, self.own, self.defaults = document, prefix, own, defaults
        merged = {k: v for k, v in defaults.items()}
        merged.update(own)
        if "options" in defaults and "options" in own:
            merged["options"] = {**defaults["options"], **own["options"]}
        if ("every" in own or "at" in own) and "timezone" in defaults and "timezone" not in own:
            del merged["timezone"]
        self.data = merged

    def origin(self, path: Sequence[str | int]) -> PathT:
        """The document path where the merged field ``path`` was written."""
        if not path:
            return self.prefix
        head = path[0]
        from_defaults = head not in self.own and head in self.defaults
        if head == "options" and len(path) > 1 and head in self.own and head in self.defaults:
            from_defaults = path[1] not in self.own["options"]
        return (("defaults",) if from_defaults else self.prefix) + tuple(path)

    def error(
        self, path: Sequence[str | int], message: str, hint: str | None = None, *, code: str = "semantic"
    ) -> ManifestError:
        return self.document.error(self.origin(path), message, hint, code=code)

    def name_anchor(self) -> NameAnchor | ManifestError:
        """Where a duplicate-name error about this schedule points, made cheaply when parsing recorded it."""
        known = self.document.recorded_span(self.origin(("name",)))
        if known is None:
            return self.error(("name",), "")
        return NameAnchor(known[0], known[1], self.document.source.text)


@dataclass(frozen=True, slots=True)
class NameAnchor:
    """A schedule's ``name`` position; the duplicate-name error is made from it only when one is needed.

    The incremental index keeps one for every schedule it holds, so it is
    small: the file's text is shared by its schedules, and the line an error
    shows is cut from it only for an error.
    """

    where: Location
    end_column: int | None
    text: str = field(repr=False)

    def error(self, message: str, hint: str | None) -> ManifestError:
        lines, line = self.text.splitlines(), self.where.line
        source = lines[line - 1] if line and line <= len(lines) else None
        return ManifestError(self.where, message, hint, code="semantic", end_column=self.end_column,
                             source_line=source)


def _schedules(document: Document, skip: set[int]) -> list[_Schedule]:
    data = document.data
    if "schedules" in data:
        defaults = data.get("defaults") or {}
        return [
            _Schedule(document, ("schedules", i), item, defaults)
            for i, item in enumerate(data["schedules"])
            if i not in skip
        ]
    return [_Schedule(document, (), data, {})]


def _compat_errors(schedule: _Schedule, ext: Mapping[str, Any], target: str) -> list[ManifestError]:
    errors = []
    if "timezone" in ext:
        errors.append(schedule.error(
            ("timezone",),
            f"{target} ignores per-schedule time zones (an extension): there it would run in beat's time zone",
            "remove timezone, or validate without --compat",
            code="compat",
        ))  # fmt: skip
    if "rrule_byweekday" in ext:
        nth = ", ".join(w for w in ext["rrule_byweekday"] if w[0] in "+-")
        errors.append(schedule.error(
            ("rrule", "byweekday"),
            f"{target} cannot store nth weekdays ({nth}, an extension): there it would run on every such weekday",
            code="compat",
        ))  # fmt: skip
    for key in ("catch_up", "catch_up_limit", "starting_deadline", "jitter", "start_at", "end_at"):
        if key in ext:
            errors.append(schedule.error(
                (key,),
                f"{target} ignores {key} (an extension): there the entry runs without it",
                code="compat",
            ))  # fmt: skip
    return errors


@dataclass(frozen=True)
class Candidate:
    """One converted schedule before the cross-file checks: its entry, and what to say if its name is taken.

    ``anchor`` is where a duplicate-name error points (the schedule's ``name``
    field); :meth:`detach` computes it so the candidate can outlive its
    document's YAML nodes (the incremental index keeps candidates, not nodes).
    """

    entry: DesiredEntry
    compat_errors: tuple[ManifestError, ...] = ()
    schedule: _Schedule | None = field(default=None, repr=False, compare=False)
    anchor: NameAnchor | ManifestError | None = None
    digest: int | None = None  # digest.entry_digest(entry), when a ConversionMemo knew it

    def detach(self) -> Candidate:
        anchor = self.anchor
        if anchor is None and self.schedule is not None:
            anchor = self.schedule.name_anchor()
        return Candidate(self.entry, self.compat_errors, None, anchor, self.digest)

    def duplicate_error(self, first: DesiredEntry) -> ManifestError:
        where = first.source
        message = f"duplicate name {self.entry.name!r}: also defined at {where.file}:{where.line}:{where.column}"
        hint = "names must be unique across all manifests of a run"
        if self.schedule is not None:
            return self.schedule.error(("name",), message, hint)
        anchor = self.anchor
        assert anchor is not None, "a detached candidate has its anchor"
        if isinstance(anchor, NameAnchor):
            return anchor.error(message, hint)
        return ManifestError(anchor.where, message, hint, code=anchor.code, end_column=anchor.end_column,
                             source_line=anchor.source_line)


def document_candidates(
    document: Document, skip: set[int], *, compat: str | None = None, memo: ConversionMemo | None = None
) -> tuple[list[Candidate], list[ManifestError]]:
    """The per-document half: every schedule of ``document`` (but those in ``skip``) converted, and the errors.

    With a ``memo``, a schedule converted cleanly before (same data, defaults
    and compat) is not converted again (:mod:`reconciler.manifests.memo`).
    """
    if compat is not None and compat not in COMPAT_TARGETS:
        raise ValueError(f"unknown compatibility target {compat!r}")
    candidates: list[Candidate] = []
    errors: list[ManifestError] = []
    schedules = _schedules(document, skip)
    defaults = freeze(schedules[0].defaults) if memo is not None and schedules else ""
    for schedule in schedules:
        key = memo.key(compat, defaults, schedule.own) if memo is not None else None
        known = memo.get(key) if memo is not None and key is not None else None
        if known is not None:
            entry = known.entry(document.location(schedule.prefix))
            candidates.append(Candidate(entry, (), schedule, None, known.digest))
            continue
        try:
            definition, ext = manifest_to_entry(schedule.data)
        except FieldError as exc:
            errors.append(schedule.error(exc.path, exc.message, exc.hint))
            continue
        entry = DesiredEntry(
            name=definition["name"],
            definition=definition,
            ext=ext,
            protected=bool(schedule.data.get("protected", False)),
            source=document.location(schedule.prefix),
        )
        compat_errors = tuple(_compat_errors(schedule, ext, compat)) if compat is not None and ext else ()
        digest = None
        if memo is not None and key is not None and not compat_errors:  # errors are made again, where they are now
            digest = memo.put(key, entry).digest
        candidates.append(Candidate(entry, compat_errors, schedule, None, digest))
    return candidates, errors


def merge_candidates(candidates: Iterable[Candidate]) -> tuple[dict[str, DesiredEntry], list[ManifestError]]:
    """The cross-file half: names unique across the run (the first wins), and the winners' compat errors."""
    entries: dict[str, DesiredEntry] = {}
    errors: list[ManifestError] = []
    for candidate in candidates:
        name = candidate.entry.name
        if name in entries:
            errors.append(candidate.duplicate_error(entries[name]))
            continue
        errors.extend(candidate.compat_errors)
        entries[name] = candidate.entry
    return entries, errors

