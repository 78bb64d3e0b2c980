"""YAML 1.1 surprises: unquoted values that PyYAML reads as something else than they look.

Manifests are read as YAML 1.1 (PyYAML), where an unquoted ``12:30:00`` is
the base-60 number 45000, ``010`` is the octal number 8, and ``1.0e308`` (no
sign in the exponent) is a string, not a number. :func:`surprises` finds such
plain scalars in the fields where they change the meaning: a field that
expects a string (``name``, ``task``, ``cron``, ``timezone``, crontab fields,
datetimes, queue names) read as a number, or a field that expects a duration
or a number of seconds read as a number it does not look like, or as a string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

_TAG = "tag:yaml.org,2002:"
_SCHEDULE_STRINGS = frozenset({"name", "task", "cron", "timezone", "at", "start_at", "end_at"})
_DURATIONS = frozenset({"every", "jitter", "starting_deadline"})
_OPTION_STRINGS = frozenset({"queue", "routing_key", "exchange"})
_OPTION_SECONDS = frozenset({"expires", "countdown", "time_limit", "soft_time_limit"})
_NESTED_STRINGS = {
    "crontab": frozenset({"minute", "hour", "day_of_week", "day_of_month", "month_of_year"}),
    "rrule": frozenset({"dtstart", "until"}),
}
_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")
_EXPONENT_STRING = re.compile(r"^[-+]?([0-9][0-9_]*)?\.?[0-9_]*[eE][0-9]+$")

PathT = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Surprise:
    """One plain scalar YAML 1.1 reads differently; ``path`` is its document path."""

    path: PathT
    message: str


def _scalars(node: yaml.Node, path: PathT) -> Iterator[tuple[PathT, yaml.ScalarNode]]:
    if isinstance(node, yaml.ScalarNode):
        yield path, node
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            yield from _scalars(child, (*path, index))
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag == _TAG + "str":
                yield from _scalars(value, (*path, key.value))


def _expects(path: PathT) -> str | None:
    """'string', 'seconds' or None for the field at ``path`` (a schedule field, an option, a nested field)."""
    if not path or not isinstance(path[-1], str):
        return None
    field = path[-1]
    parent = path[-2] if len(path) > 1 else None
    if parent in _NESTED_STRINGS:
        return "string" if field in _NESTED_STRINGS[str(parent)] else None
    if parent == "options":
        return "string" if field in _OPTION_STRINGS else "seconds" if field in _OPTION_SECONDS else None
    if parent is None or isinstance(parent, int) or parent == "defaults":
        return "string" if field in _SCHEDULE_STRINGS else "seconds" if field in _DURATIONS else None
    return None


def _surprise(node: yaml.ScalarNode, expects: str) -> str | None:
    text = node.value
    if node.tag in (_TAG + "int", _TAG + "float") and ":" in text:
        return f"unquoted {text} is a base-60 number in YAML 1.1 (not a time or a duration); quote it"
    if node.tag == _TAG + "int" and _OCTAL.match(text):
        return f"unquoted {text} is the octal number {int(text.replace('_', ''), 8)} in YAML 1.1; quote it"
    if expects == "string" and node.tag in (_TAG + "int", _TAG + "float"):
        return None  # a plain number where a string is expected is read as the number it looks like
    if expects == "seconds" and node.tag == _TAG + "str" and _EXPONENT_STRING.match(text):
        return f"unquoted {text} is a string in YAML 1.1, not a number; write the exponent with a sign, e.g. 1.0e+3"
    return None


def surprises(root: yaml.Node) -> list[Surprise]:
    """Every plain scalar of a document that YAML 1.1 reads differently than it looks, where that matters."""
    found = []
    for path, node in _scalars(root, ()):
        if node.style:  # quoted or block: read as written (plain is None or "", by loader)
            continue
        expects = _expects(path)
        if expects is None:
            continue
        message = _surprise(node, expects)
        if message is not None:
            found.append(Surprise(path, message))
    return found
