"""Cron expressions -> Celery crontab fields, stored as the user wrote them.

A field is parsed into the set of values it matches (what it *means*) and
into the text to store (what it *says*): the user's spelling with the
whitespace around its tokens removed, so ``sat,sun`` stays ``sat,sun`` and
celery-redbeat's repr, Flower and ``status`` show what git says. The stored
text is read back with Celery's own ``crontab_parser``, which is what beat and
celery-redbeat build the crontab with; when Celery cannot read the spelling as
the same set (``7`` for Sunday in day of week, which Celery refuses), the field
is stored in the one canonical spelling of :func:`canonical_field` instead.

Equality is on the sets: :class:`CronSpec` compares values, not spelling, so
``mon-fri`` == ``1-5`` and ``*/15`` == ``0,15,30,45`` (see :func:`same_times`).

Syntax accepted in a field: ``*``, numbers, names (``jan``-``dec`` in months,
``sun``-``sat`` in days of week, case-insensitive), ranges ``a-b`` (a range
with a > b wraps around, as Celery's parser does), steps ``*/n`` and
``a-b/n``, and comma lists of those.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from celery.schedules import crontab_parser

from reconciler.core.errors import CronError

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
_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_WEEKDAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
#: The shortest name: Celery reads a name by its first three letters (and ignores the rest).
_NAME_PREFIX = 3
#: Names of the values of a field, and the value of the first name.
_NAMES = {"month_of_year": (_MONTH_NAMES, 1), "day_of_week": (_WEEKDAY_NAMES, 0)}
#: The longest field text stored: an enumeration of every minute is 170 characters; longer is
#: repetition, which would make every definition, diff and Flower row that long.
MAX_FIELD_LENGTH = 255
#: Digits of a number or step: enough for any field, and far below int()'s 4300-digit limit.
_MAX_DIGITS = 9

SHORTCUTS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronSpec:
    """The value sets of the five fields, and the text each is stored as.

    Two specs are equal when their sets are: ``spelling`` (the stored text of
    each field, in :data:`CELERY_FIELDS` order) does not take part in equality.
    Without a spelling, every field is spelled canonically.
    """

    minute: frozenset[int]
    hour: frozenset[int]
    day_of_week: frozenset[int]
    day_of_month: frozenset[int]
    month_of_year: frozenset[int]
    spelling: tuple[str, ...] | None = dataclass_field(default=None, compare=False)

    @classmethod
    def of_sets(cls, sets: Mapping[str, frozenset[int]]) -> CronSpec:
        """A spec of the value sets by field name, without a spelling: each field is stored canonically."""
        return cls(
            minute=sets["minute"],
            hour=sets["hour"],
            day_of_week=sets["day_of_week"],
            day_of_month=sets["day_of_month"],
            month_of_year=sets["month_of_year"],
        )

    def restricted(self, name: str) -> bool:
        low, high = BOUNDS[name]
        return len(getattr(self, name)) != high - low + 1

    def text(self, name: str) -> str:
        """The stored text of field ``name``."""
        if self.spelling is None:
            return canonical_field(name, getattr(self, name))
        return self.spelling[CELERY_FIELDS.index(name)]

    def celery_fields(self) -> dict[str, str]:
        """The celery-redbeat crontab fields as stored, in celery-redbeat's order."""
        return {name: self.text(name) for name in CELERY_FIELDS}

    def canonical_fields(self) -> dict[str, str]:
        """The fields in the one spelling per set (what two equal specs have in common)."""
        return {name: canonical_field(name, getattr(self, name)) for name in CELERY_FIELDS}


def _digits(text: str) -> bool:
    # str.isdigit() is also true for "³" and "٣": int() refuses the first, and neither belongs in a crontab.
    return text.isascii() and text.isdigit()


def _number(field: str, token: str) -> int:
    word = token.strip().lower()
    if _digits(word) and len(word.lstrip("0")) > _MAX_DIGITS:
        low, high = BOUNDS[field]
        raise CronError(f"{LABELS[field]} {word.lstrip('0')[:_MAX_DIGITS]}... is out of range {low}-{high}")
    value = int(word) if _digits(word) else _named_value(field, word)
    if value is None:
        names = {
            "month_of_year": " (or a month name: jan-dec, january-december)",
            "day_of_week": " (or a weekday name: sun-sat, sunday-saturday)",
        }.get(field, "")
        raise CronError(f"{LABELS[field]} {token!r} is not a number{names}")
    low, high = BOUNDS[field]
    if field == "day_of_week":
        high = 7  # 7 is Sunday too, as in cron
    if not low <= value <= high:
        raise CronError(f"{LABELS[field]} {value} is out of range {low}-{high}")
    return value


def _named_value(field: str, word: str) -> int | None:
    """The value the name ``word`` (lower case) spells in ``field``: its first three letters up to all of it.

    Celery reads ``satxyz`` as Saturday too (it looks at three letters only, and tries month names in
    every field): that is a typo, not a name, and is refused here.
    """
    names, first = _NAMES.get(field, ((), 0))
    if len(word) < _NAME_PREFIX:
        return None
    return next((first + i for i, name in enumerate(names) if name.startswith(word)), None)


def _expand(field: str, low: int, high: int, start: int, end: int) -> list[int]:
    if start <= end:
        return list(range(start, end + 1))
    # Celery's parser wraps a reversed range around the end of the field.
    return list(range(start, high + 1)) + list(range(low, end + 1))


def parse_field(field: str, text: object) -> frozenset[int]:
    """The set of values one crontab field matches (Sunday is 0)."""
    return _read_field(field, text)[0]


def stored_field(field: str, text: object) -> str:
    """The text a field is stored as: the user's spelling, or the canonical one where Celery reads it otherwise."""
    return _read_field(field, text)[1]


def _read_field(field: str, text: object) -> tuple[frozenset[int], str]:
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise CronError(f"{LABELS[field]} must be a string or an integer, got {text!r}")
    return _parse_field(field, str(text).strip())


@functools.lru_cache(maxsize=4096)
def _parse_field(field: str, spec: str) -> tuple[frozenset[int], str]:
    """(values, stored text) of one field; the text is ``spec`` without whitespace around its tokens."""
    if not spec:
        raise CronError(f"{LABELS[field]} is empty")
    if len(spec) > 4 * MAX_FIELD_LENGTH:  # tidying removes whitespace: refuse only what cannot fit after it
        raise CronError(f"{LABELS[field]} is {len(spec)} characters long; at most {MAX_FIELD_LENGTH}")
    values: set[int] = set()
    written: list[str] = []
    for part in spec.split(","):
        if not part.strip():
            raise CronError(f"{LABELS[field]} {spec!r} has an empty list item")
        items, text = _parse_item(field, part.strip())
        values.update(items)
        written.append(text)
    if field == "day_of_week" and 7 in values:
        values.discard(7)
        values.add(0)
    result = frozenset(values)
    text = ",".join(written)
    if len(text) > MAX_FIELD_LENGTH:
        raise CronError(
            f"{LABELS[field]} is {len(text)} characters long; at most {MAX_FIELD_LENGTH} (write a range or a step)"
        )
    if not _celery_reads(field, text, result):
        text = canonical_field(field, result)
    return result, text


def _parse_item(field: str, part: str) -> tuple[list[int], str]:
    """The values of one list item (``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n``) and its text without whitespace."""
    low, high = BOUNDS[field]
    base, slash, step_text = part.partition("/")
    base, step_text = base.strip(), step_text.strip()
    step = 1
    if slash:
        significant = step_text.lstrip("0")
        if not _digits(step_text) or not significant:
            raise CronError(f"{LABELS[field]} step {step_text!r} must be a whole number >= 1")
        if len(significant) > _MAX_DIGITS:
            raise CronError(f"{LABELS[field]} step {significant[:_MAX_DIGITS]}... is too large")
        step = int(significant)
    if base == "*":
        items = list(range(low, high + 1))
    elif "-" in base:
        first, _, last = base.partition("-")
        first, last = first.strip(), last.strip()
        if not first or not last:
            raise CronError(f"{LABELS[field]} range {base!r} needs a start and an end")
        start, end = _number(field, first), _number(field, last)
        if field == "day_of_week" and start == 7:
            # Sunday as 7 starts a range as Sunday 0 does: "7-1" is Sunday and Monday, "7-7" Sunday.
            start, end = 0, 0 if end == 7 else end
        # A reversed range wraps at the field's real end (Saturday, not a second Sunday 7), as in Celery.
        items = _expand(field, low, high, start, end)
        base = f"{first}-{last}"
    elif slash:
        top = 7 if field == "day_of_week" else high
        raise CronError(
            f"{LABELS[field]} {part!r}: a step needs '*' or a range before it, "
            f"e.g. '*/{step}' or '{base}-{top}/{step}'"
        )
    else:
        items = [_number(field, base)]
    return items[::step], (f"{base}/{step_text}" if slash else base)


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
    if not _celery_reads(field, text, values):  # pragma: no cover - would be a bug in canonical_field
        raise CronError(f"{LABELS[field]} {text!r} does not read back in Celery as {sorted(values)}")
    return text


def _celery_reads(field: str, text: str, values: frozenset[int]) -> bool:
    """Whether Celery's own parser (beat and celery-redbeat build crontabs with it) reads ``text`` as ``values``."""
    return celery_values(field, text) == values


@functools.lru_cache(maxsize=8192)  # pure; the console and status convert every stored crontab field
def celery_values(field: str, text: str) -> frozenset[int] | None:
    """The set Celery's own crontab parser reads ``text`` as (what beat runs), or None when it refuses it."""
    low, high = BOUNDS[field]
    try:
        parsed = crontab_parser(high - low + 1, low).parse(text)
    except Exception:  # noqa: BLE001 - its ParseException, ValueError, KeyError, IndexError: all mean "refused"
        return None
    return frozenset(parsed)


@functools.lru_cache(maxsize=8192)
def exported_field(field: str, text: str) -> str:
    """The text ``export`` writes for a stored crontab field, so that validate reads the times beat runs.

    The stored text itself when validate reads it as Celery does; else, when Celery reads it only by
    accident (``satxyz`` is Saturday, ``mon/2`` Monday, ``٣`` 3, ``jan`` in day of week Monday), the
    canonical spelling of what Celery reads. A text Celery refuses is kept: beat cannot run it either,
    and validate says why.
    """
    values = celery_values(field, text)
    if values is None:
        return text
    try:
        if parse_field(field, text) == values:
            return text
    except CronError:
        pass
    return canonical_field(field, values)


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
    spec = _spec(dict(zip(CRON_ORDER, parts, strict=True)))
    if spec.restricted("day_of_month") and spec.restricted("day_of_week"):
        raise CronError(
            "day of month and day of week are both restricted: cron runs when either matches, "
            "Celery only when both do; use a crontab: mapping to mean both, or two schedules"
        )
    return spec


def parse_crontab(fields: Mapping[str, object]) -> CronSpec:
    """Parse Celery crontab fields (each defaults to ``*``); errors name the field."""
    return _spec({name: fields.get(name, "*") for name in CELERY_FIELDS})


def _spec(fields: Mapping[str, object]) -> CronSpec:
    read = {name: _read_field(name, fields[name]) for name in CELERY_FIELDS}
    return CronSpec(
        **{name: values for name, (values, _) in read.items()},
        spelling=tuple(read[name][1] for name in CELERY_FIELDS),
    )


def cron_string(spec: CronSpec) -> str | None:
    """The 5-field cron string of ``spec`` as stored, or None when cron would read it differently."""
    if spec.restricted("day_of_month") and spec.restricted("day_of_week"):
        return None
    return " ".join(spec.text(name) for name in CRON_ORDER)


def same_times(a: Mapping[str, object], b: Mapping[str, object]) -> bool:
    """Whether two sets of crontab fields match the same times, however spelled; False when either is invalid."""
    try:
        return parse_crontab(a) == parse_crontab(b)
    except CronError:
        return False
