"""Durations for ``every:``: seconds as a number, or ``500ms``, ``30s``, ``1h30m``, ``1d``.

:func:`parse_duration` turns either form into float seconds; :func:`format_duration`
gives the shortest duration string that parses back to exactly the same float
(used by ``export``), or None when there is none.

Every duration is at most :data:`MAX_SECONDS` (36500 days, 100 years): beat adds
it to today's date (Python's datetime ends at year 9999, and ``timedelta`` at
999,999,999 days) and stores the result as a Redis score (a double, exact to
the microsecond only up to about year 2255), and Celery turns ``expires`` into a
datetime the same way. ``every: 3000000d`` would be accepted by each parser and
then overflow in beat or ``status``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from reconciler.core.errors import DurationError

UNITS: dict[str, Decimal] = {
    "d": Decimal(86400),
    "h": Decimal(3600),
    "m": Decimal(60),
    "s": Decimal(1),
    "ms": Decimal("0.001"),
}

#: The longest duration any field accepts (see the module docstring for why).
MAX_SECONDS = 36500 * 86400.0
MAX_TEXT = "36500d (100 years)"

_NUMBER = re.compile(r"^\s*[0-9]+(\.[0-9]+)?\s*$")
_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*")


def parse_duration(value: object, *, zero: bool = False) -> float:
    """Seconds of ``value`` (a number, or a duration string); > 0 (>= 0 with ``zero``), at most MAX_SECONDS."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DurationError(f"expected a number of seconds or a duration string, got {value!r}")
    seconds = _parse_text(value) if isinstance(value, str) else float(value)
    if not math.isfinite(seconds):
        raise DurationError(f"{value!r} is not a finite duration")
    if seconds < 0 or (seconds == 0 and not zero):
        raise DurationError(f"{value!r}: the interval must be greater than 0")
    if seconds > MAX_SECONDS:
        raise DurationError(f"{value!r} is longer than {MAX_TEXT}, the longest duration beat can compute with")
    return seconds


def _parse_text(text: str) -> float:
    if _NUMBER.match(text):
        return float(text)
    # Summed exactly, rounded once: "43ms" is exactly the float 0.043.
    pos, total, seen = 0, Decimal(0), False
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None or match.end() == pos:
            raise DurationError(
                f"{text!r} is not a duration: use a number of seconds or <number><unit> parts "
                "with units ms, s, m, h, d (e.g. 500ms, 30s, 1h30m)"
            )
        total += Decimal(match.group(1)) * UNITS[match.group(2)]
        pos, seen = match.end(), True
    if not seen:
        raise DurationError(f"{text!r} is not a duration")
    return float(total)


def format_duration(seconds: float) -> str | None:
    """The shortest ``1h30m``-style string equal to ``seconds`` that parse_duration takes, else None."""
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_SECONDS:  # parse_duration refuses those
        return None
    millis = round(seconds * 1000)
    if millis <= 0 or abs(millis / 1000 - seconds) > 1e-9:
        return None
    parts: list[str] = []
    rest = millis
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    text = "".join(parts)
    if parse_duration(text) != seconds:
        return None
    return text
