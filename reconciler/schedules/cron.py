"""Cron expressions -> Celery crontab fields, in one canonical spelling.

A field is parsed into the set of values it matches, then written back by
:func:`canonical_field`, so equal schedules give identical strings whatever
their spelling (``mon-fri`` == ``1-5``, ``*/15`` == ``0,15,30,45``, ``7`` ==
``0`` for Sunday, ``*`` for a full set). Every canonical string is parsed
again with Celery's own ``crontab_parser`` and must give the same set; that is
what beat will read.

Syntax accepted in a field: ``*``, numbers, names (``jan``-``dec`` in months,
``sun``-``sat`` in days of week, case-insensitive), ranges ``a-b`` (a range
with a > b wraps around, as Celery's parser does), steps ``*/n`` and
``a-b/n``, and comma lists of those.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from celery.schedules import crontab_parser

# Celery's field names in the order celery-redbeat encodes them.
CELERY_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
# Standard cron order of the five fields of a `cron:` string.
CRON_ORDER = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")

LABELS = {
    "minute": "minute",
    "hour": "hour",
    "day_of_month": "day of month",
    "month_of_year": "month",
    "day_of_week": "day of week",
}
# (lowest, highest) value of each field as Celery counts it.
BOUNDS = {
    "minute": (0, 59),
    "hour": (0, 23),
    "day_of_month": (1, 31),
    "month_of_year": (1, 12),
    "day_of_week": (0, 6),
}
_MONTHS = {
    n: i for i, n in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
}
_WEEKDAYS = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}

SHORTCUTS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CronError(ValueError):
    """A cron expression or crontab field that cannot be parsed."""


@dataclass(frozen=True)
class CronSpec:
    """The value sets of the five fields."""

    minute: frozenset[int]
    hour: frozenset[int]
    day_of_week: frozenset[int]
    day_of_month: frozenset[int]
    month_of_year: frozenset[int]

    def restricted(self, field: str) -> bool:
        low, high = BOUNDS[field]
        return len(getattr(self, field)) != high - low + 1

    def celery_fields(self) -> dict[str, str]:
        """Canonical celery-redbeat crontab fields, in celery-redbeat's order."""
        return {f: canonical_field(f, getattr(self, f)) for f in CELERY_FIELDS}


def _number(field: str, token: str) -> int:
    word = token.strip().lower()
    if word.isdigit():
        value = int(word)
    elif field == "month_of_year" and word in _MONTHS:
        value = _MONTHS[word]
    elif field == "day_of_week" and word in _WEEKDAYS:
        value = _WEEKDAYS[word]
    else:
        names = {"month_of_year": " (or jan-dec)", "day_of_week": " (or sun-sat)"}.get(field, "")
        raise CronError(f"{LABELS[field]} {token!r} is not a number{names}")
    low, high = BOUNDS[field]
    if field == "day_of_week":
        high = 7  # 7 is Sunday too, as in cron
    if not low <= value <= high:
        raise CronError(f"{LABELS[field]} {value} is out of range {low}-{high}")
    return value


def _expand(field: str, low: int, high: int, start: int, end: int) -> list[int]:
    if start <= end:
        return list(range(start, end + 1))
    # Celery's parser wraps a reversed range around the end of the field.
    return list(range(start, high + 1)) + list(range(low, end + 1))


def parse_field(field: str, text: object) -> frozenset[int]:
    """The set of values one crontab field matches (Sunday is 0)."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise CronError(f"{LABELS[field]} must be a string or an integer, got {text!r}")
    return _parse_field(field, str(text).strip())


@functools.lru_cache(maxsize=4096)
def _parse_field(field: str, spec: str) -> frozenset[int]:
    low, high = BOUNDS[field]
    top = 7 if field == "day_of_week" else high
    values: set[int] = set()
    if not spec:
        raise CronError(f"{LABELS[field]} is empty")
    for part in spec.split(","):
        part = part.strip()
        if not part:
            raise CronError(f"{LABELS[field]} {spec!r} has an empty list item")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.strip().isdigit() or int(step_text) < 1:
                raise CronError(f"{LABELS[field]} step {step_text!r} must be a whole number >= 1")
            step = int(step_text)
        if base == "*":
            items = list(range(low, high + 1))
        elif "-" in base:
            first, _, last = base.partition("-")
            if not first.strip() or not last.strip():
                raise CronError(f"{LABELS[field]} range {base!r} needs a start and an end")
            items = _expand(field, low, top, _number(field, first), _number(field, last))
        elif slash:
            raise CronError(
                f"{LABELS[field]} {part!r}: a step needs '*' or a range before it, "
                f"e.g. '*/{step}' or '{base}-{top}/{step}'"
            )
        else:
            items = [_number(field, base)]
        values.update(items[::step])
    if field == "day_of_week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


@functools.lru_cache(maxsize=4096)
def canonical_field(field: str, values: frozenset[int]) -> str:
    """One spelling per set: ``*``, ``*/n``, else ranges (3+ in a row) and numbers."""
    low, high = BOUNDS[field]
    ordered = sorted(values)
    if not ordered:
        raise CronError(f"{LABELS[field]} matches nothing")
    if ordered == list(range(low, high + 1)):
        text = "*"
    else:
        text = ""
        # */n only for a repeating pattern (3+ values): {sat, sun} is "0,6" and {jan, jul} "1,7", not "*/6".
        if len(ordered) > 2 and ordered[0] == low:
            step = ordered[1] - ordered[0]
            if step > 1 and ordered == list(range(low, high + 1, step)):
                text = f"*/{step}"
        if not text:
            pieces: list[str] = []
            run = [ordered[0]]
            for value in ordered[1:] + [None]:
                if value is not None and value == run[-1] + 1:
                    run.append(value)
                    continue
                if len(run) >= 3:
                    pieces.append(f"{run[0]}-{run[-1]}")
                else:
                    pieces.extend(str(v) for v in run)
                if value is not None:
                    run = [value]
            text = ",".join(pieces)
    _check_with_celery(field, text, values)
    return text


def _check_with_celery(field: str, text: str, values: frozenset[int]) -> None:
    low, high = BOUNDS[field]
    parsed = crontab_parser(high - low + 1, low).parse(text)
    if set(parsed) != set(values):  # pragma: no cover - would be a bug in canonical_field
        raise CronError(f"{LABELS[field]} {text!r} does not read back in Celery as {sorted(values)}")


def parse_cron(expression: str) -> CronSpec:
    """Parse a 5-field cron string or an ``@daily``-style shortcut.

    Restricting both day of month and day of week is refused: cron runs when
    *either* matches, Celery's crontab only when *both* do, so the same text
    would silently mean something else in beat.
    """
    text = expression.strip()
    if text.startswith("@"):
        if text.lower() not in SHORTCUTS:
            known = " ".join(sorted(SHORTCUTS))
            raise CronError(f"unknown shortcut {text!r} (known: {known})")
        text = SHORTCUTS[text.lower()]
    parts = text.split()
    if len(parts) != 5:
        raise CronError(f"expected 5 fields 'minute hour day-of-month month day-of-week', got {len(parts)}")
    sets = {field: parse_field(field, part) for field, part in zip(CRON_ORDER, parts, strict=False)}
    spec = CronSpec(**sets)
    if spec.restricted("day_of_month") and spec.restricted("day_of_week"):
        raise CronError(
            "day of month and day of week are both restricted: cron runs when either matches, "
            "Celery only when both do; use a crontab: mapping to mean both, or two schedules"
        )
    return spec


def parse_crontab(fields: Mapping[str, object]) -> CronSpec:
    """Parse Celery crontab fields (each defaults to ``*``); errors name the field."""
    return CronSpec(**{f: parse_field(f, fields.get(f, "*")) for f in CELERY_FIELDS})


def cron_string(spec: CronSpec) -> str | None:
    """The 5-field cron string for ``spec``, or None when cron would read it differently."""
    if spec.restricted("day_of_month") and spec.restricted("day_of_week"):
        return None
    return " ".join(canonical_field(f, getattr(spec, f)) for f in CRON_ORDER)
