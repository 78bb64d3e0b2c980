"""A manifest file's text cut into its ``schedules:`` items, so an edit of one item re-parses only that item.

At 100,000 schedules in 100 files, one edited schedule rewrites a file of
1,000: composing, converting and checking the whole file again was most of
the watch mode's work per edit (issue 18).  The incremental index
(:mod:`reconciler.manifests.index`) therefore compares an edited file's items
with those it checked before and parses only the items whose text changed.

That is only right when the cut is the one YAML itself makes, so
:func:`split_items` answers only for files of the plain shape almost every
manifest has, and None for anything else (the whole file is then parsed, as
always):

- one document: no ``---``/``...`` markers, no ``%`` directives, no byte order
  mark, no tab, no carriage return;
- no anchor (no ``&`` anywhere), so no item can refer to another;
- a top-level ``schedules:`` key on a line of its own, after every other
  top-level key (the *header*: ``defaults`` and comments);
- below it a block sequence whose items start with ``-`` at one indentation,
  every other line being blank, a comment, or indented deeper than the
  ``-``.

The index adds two more conditions before it trusts a cut: the cut of a
text it parsed whole matches, item for item, the start lines the parser
recorded (so header and items are what YAML saw), and an item parsed alone
must come out clean (no error of any kind) or the whole file is parsed
again, so every error keeps its exact position and wording.  Items are
slices of the text, newlines included, so a kept block scalar (``|+``)
keeps the same trailing lines alone as in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCHEDULES_KEY = re.compile(r"schedules:[ ]*(#.*)?")
_UNSAFE = re.compile(r"[&\t\r\ufeff]|^(---|\.\.\.|%)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Split:
    """A file's text as its header and its items; ``starts[i]`` is item i's first line (0-based)."""

    header: str  # every line before the first item, newlines included
    items: tuple[str, ...]
    starts: tuple[int, ...]
    indent: int


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_item_start(line: str, indent: int) -> bool:
    rest = line[indent:]
    return _indent(line) == indent and (rest == "-" or rest.startswith("- "))


def _filler(line: str) -> bool:
    """A line that never ends an item: blank or a comment."""
    stripped = line.strip(" ")
    return not stripped or stripped.startswith("#")


def split_items(text: str) -> Split | None:
    """The header and items of ``text``, or None when it is not of the plain shape (see the module).

    Header and items are slices of ``text`` (newlines included), so together they are ``text`` exactly.
    """
    if _UNSAFE.search(text):
        return None
    lines = text.split("\n")
    key = next((i for i, line in enumerate(lines) if _SCHEDULES_KEY.fullmatch(line)), None)
    if key is None:
        return None
    first = next((i for i in range(key + 1, len(lines)) if not _filler(lines[i])), None)
    if first is None:
        return None
    indent = _indent(lines[first])
    if not _is_item_start(lines[first], indent):
        return None
    starts = [first]
    for number in range(first + 1, len(lines)):
        line = lines[number]
        if _filler(line) or _indent(line) > indent:
            continue
        if not _is_item_start(line, indent):
            return None  # a top-level key after the sequence, or a line YAML would read otherwise
        starts.append(number)
    offsets, at = [], 0
    wanted = iter([*starts, -1])
    next_start = next(wanted)
    for number, line in enumerate(lines):
        if number == next_start:
            offsets.append(at)
            next_start = next(wanted)
        at += len(line) + 1
    bounds = [*offsets, len(text)]
    items = tuple(text[bounds[i] : bounds[i + 1]] for i in range(len(starts)))
    return Split(text[: offsets[0]], items, tuple(starts), indent)


def isolated(split: Split, position: int) -> str:
    """A document of the header and item ``position`` alone, the item on the line where it is in the file.

    Parsed, the item becomes ``schedules[0]`` at its own line and column, with the same ``defaults``.
    """
    padding = "\n" * (split.starts[position] - split.header.count("\n"))
    return split.header + padding + split.items[position]
