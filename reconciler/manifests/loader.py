"""Read manifest files into documents that know where each of their values was written.

:mod:`~reconciler.manifests.files` finds and reads the files (with limits),
libyaml's C parser composes each into a node tree, and
:mod:`~reconciler.manifests.nodes` turns the tree into plain values (safe
tags only, duplicate keys and alias bombs refused). Composing is the cheaper
half of a C-loader ``yaml.load`` (100,000 schedules: 2.0 s to compose
against 3.7 s to load, whose constructor is Python), so the nodes, which
carry every position, come at no extra cost. An error found later by
the schema or the semantic checks is pointed at the exact key or value
(:meth:`Document.error`).

The node tree is not kept: at 100,000 schedules it is about four million
Python objects, and holding them makes every garbage collection of the run
walk them again (a cold load took 3 to 6 times longer). Parsing records
what every run needs, the position of each document and of each of its
``schedules[i]`` (the source of every entry); any other position composes
that file's text again, once, when the first error or warning needs it.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from reconciler.core.errors import Location, ManifestError, NodeError
from reconciler.manifests import nodes, yaml11
from reconciler.manifests.files import EMPTY_HINT, MAX_FILE_BYTES, PIPE_TIMEOUT, discover, read_text
from reconciler.manifests.nodes import MAX_DEPTH, MAX_EXPANDED_NODES, MAX_FILE_NODES

__all__ = [
    "EMPTY_HINT",
    "MAX_DEPTH",
    "MAX_EXPANDED_NODES",
    "MAX_FILE_BYTES",
    "MAX_FILE_NODES",
    "PIPE_TIMEOUT",
    "Document",
    "ManifestFile",
    "discover",
    "format_path",
    "load_manifests",
    "parse_file",
    "parse_text",
]

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PathPart = str | int
Anchor = Literal["value", "key", "mapping"]


def _node_location(file: Path, node: yaml.Node | None, field_path: str) -> tuple[Location, int | None]:
    if node is None:
        return Location(file, None, None, field_path), None
    start, end = node.start_mark, node.end_mark
    end_col = end.column + 1 if end.line == start.line and end.column > start.column else None
    return Location(file, start.line + 1, start.column + 1, field_path), end_col


def format_path(path: Sequence[PathPart]) -> str:
    """``("schedules", 2, "cron")`` -> ``schedules[2].cron``."""
    if len(path) == 2 and path[0] == "schedules" and type(path[1]) is int:
        return f"schedules[{path[1]}]"  # every entry's source: the one path a cold run formats 100,000 times
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and part.replace("_", "a").replace("-", "a").isalnum():
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part) if isinstance(part, str) else part}]"
    return text


class SourceText:
    """A manifest file's text; its lines and node trees are made from it only when asked for."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines: list[str] | None = None
        self._roots: list[yaml.Node] | None = None

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines

    def root(self, index: int) -> yaml.Node:
        """The node tree of document ``index`` (as counted by ``yaml.compose_all``), composed again once per file."""
        if self._roots is None:
            # The text composed without error when it was parsed: the same parser gives the same nodes.
            self._roots = list(yaml.compose_all(self.text, Loader=_Loader))
        root: yaml.Node = self._roots[index]
        return root


def _name_span(item: yaml.Node) -> tuple[int, int, int]:
    """1-based (line, column, end column or 0) of a schedule's ``name`` value; (0, 0, 0) when it has none."""
    found = nodes.child(item, "name") if isinstance(item, yaml.MappingNode) else None
    if found is None:
        return 0, 0, 0
    start, end = found[1].start_mark, found[1].end_mark
    end_col = end.column + 1 if end.line == start.line and end.column > start.column else 0
    return start.line + 1, start.column + 1, end_col


@dataclass(frozen=True)
class Marks:
    """Positions recorded while parsing, 1-based: a document's root, each ``schedules[i]`` and its ``name`` value.

    The ``name`` value is where a duplicate-name error points; the incremental
    index asks for it for every schedule it keeps (``Candidate.detach``), so it
    must not compose the file again.
    """

    root: tuple[int, int]
    lines: array[int] = field(default_factory=lambda: array("l"))
    columns: array[int] = field(default_factory=lambda: array("l"))
    name_spans: array[int] = field(default_factory=lambda: array("l"))  # line, column, end column (0: none) per item

    @classmethod
    def of(cls, root: yaml.Node) -> Marks:
        marks = cls((root.start_mark.line + 1, root.start_mark.column + 1))
        found = nodes.child(root, "schedules") if isinstance(root, yaml.MappingNode) else None
        if found is not None and isinstance(found[1], yaml.SequenceNode):
            starts = [item.start_mark for item in found[1].value]
            marks.lines.extend(mark.line + 1 for mark in starts)
            marks.columns.extend(mark.column + 1 for mark in starts)
            for item in found[1].value:
                marks.name_spans.extend(_name_span(item))
        return marks

    def find_name(self, path: Sequence[PathPart]) -> tuple[int, int, int | None] | None:
        """(line, column, end column) of the value at ``("schedules", i, "name")``; None for any other path."""
        if len(path) != 3 or path[0] != "schedules" or path[2] != "name" or type(path[1]) is not int:
            return None
        at = path[1] * 3
        if not 0 <= at < len(self.name_spans) or self.name_spans[at] == 0:
            return None
        line, column, end_col = self.name_spans[at : at + 3]
        return line, column, end_col or None

    def find(self, path: Sequence[PathPart]) -> tuple[int, int] | None:
        """The recorded position of ``path`` (``()`` or ``("schedules", i)``); None for any other path."""
        if not path:
            return self.root
        if len(path) == 2 and path[0] == "schedules" and type(path[1]) is int and 0 <= path[1] < len(self.lines):
            return self.lines[path[1]], self.columns[path[1]]
        return None


@dataclass
class Document:
    """One YAML document of a manifest file: its value, and the positions of its values."""

    file: Path
    index: int
    data: Any
    source: SourceText = field(repr=False, compare=False)
    marks: Marks = field(repr=False, compare=False)
    yaml11_surprises: list[yaml11.Surprise] | None = field(default=None, repr=False, compare=False)

    @property
    def node(self) -> yaml.Node:
        """The document's root node (composed again from the file's text on first use)."""
        return self.source.root(self.index)

    @property
    def lines(self) -> list[str]:
        return self.source.lines

    def surprises(self) -> list[yaml11.Surprise]:
        """Its YAML 1.1 surprises (:mod:`reconciler.manifests.yaml11`): found while parsing if asked, else now."""
        if self.yaml11_surprises is None:
            self.yaml11_surprises = yaml11.surprises(self.node)
        return self.yaml11_surprises

    def locate(self, path: Sequence[PathPart]) -> tuple[yaml.Node | None, yaml.Node | None]:
        """(key node, value node) of ``path``; the deepest known node when it is missing."""
        key: yaml.Node | None = None
        node: yaml.Node | None = self.node
        for part in path:
            found = nodes.child(node, part) if node is not None else None
            if found is None:
                return key, node
            key, node = found
        return key, node

    def location(self, path: Sequence[PathPart]) -> Location:
        """The Location of the value at ``path``."""
        known = self.marks.find(path)
        if known is not None:
            return Location(self.file, known[0], known[1], format_path(path))
        return _node_location(self.file, self.locate(path)[1], format_path(path))[0]

    def recorded_span(self, path: Sequence[PathPart]) -> tuple[Location, int | None] | None:
        """(Location, end column) of a value whose position parsing recorded (``schedules[i].name``), else None."""
        known = self.marks.find_name(path)
        if known is None:
            return None
        line, column, end_column = known
        return Location(self.file, line, column, format_path(path)), end_column

    def error(
        self,
        path: Sequence[PathPart],
        message: str,
        hint: str | None = None,
        *,
        at: Anchor = "value",
        code: str = "schema",
    ) -> ManifestError:
        """A ManifestError for ``path``, placed at its value, its key, or its mapping."""
        known = self.recorded_span(path) if at != "key" else None
        if known is not None:
            where, end_column = known
            text = self.lines[where.line - 1] if where.line and where.line <= len(self.lines) else None
            return ManifestError(where, message, hint, code=code, end_column=end_column, source_line=text)
        key, value = self.locate(path)
        node = key if at == "key" and key is not None else value
        where, end_col = _node_location(self.file, node, format_path(path))
        source = self.lines[where.line - 1] if where.line and where.line <= len(self.lines) else None
        return ManifestError(where, message, hint, code=code, end_column=end_col, source_line=source)


@dataclass
class ManifestFile:
    """A manifest file that could be read and parsed, with its documents."""

    path: Path
    documents: list[Document]


def _yaml_error_location(path: Path, exc: yaml.MarkedYAMLError, lines: list[str]) -> ManifestError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    at_tab = mark is not None and mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t"
    if at_tab or "'\\t'" in problem:
        message = "tab character: YAML indentation must use spaces, not tabs"
    else:
        context = f" {exc.context}" if exc.context and exc.context_mark == exc.problem_mark else ""
        message = f"invalid YAML: {problem}{context}".strip()
    line = mark.line + 1 if mark else None
    column = mark.column + 1 if mark else None
    source = lines[line - 1] if line and line <= len(lines) else None
    return ManifestError(Location(path, line, column, ""), message, code="yaml", source_line=source)


def _documents(path: Path, source: SourceText, surprises: bool) -> list[Document]:
    text = source.text
    nodes.count_nodes(text, MAX_FILE_NODES, _Loader)
    has_aliases = "&" in text
    documents = []
    for index, root in enumerate(yaml.compose_all(text, Loader=_Loader)):
        if nodes.is_null(root):
            continue
        data = nodes.to_value(root, has_aliases=has_aliases)
        found = yaml11.surprises(root) if surprises else None
        documents.append(Document(path, index, data, source, Marks.of(root), found))
    return documents


def parse_file(path: Path, *, surprises: bool = False) -> ManifestFile:
    """Read and parse one file; raises ManifestError (one per file: parsing stops there).

    ``surprises`` finds each document's YAML 1.1 surprises while its nodes
    are at hand (:meth:`Document.surprises` would otherwise compose the file
    again).
    """
    return parse_text(path, read_text(path), surprises=surprises)


def parse_text(path: Path, text: str, *, surprises: bool = False) -> ManifestFile:
    """:func:`parse_file` of ``text`` read from ``path`` (the incremental index parses items of a file alone)."""
    source = SourceText(text)
    try:
        documents = _documents(path, source, surprises)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error_location(path, exc, source.lines) from None
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark
        raise ManifestError(Location(path, None, None, ""), f"invalid YAML: {exc}", code="yaml") from None
    except RecursionError:  # the pure-Python loader (no libyaml) composes recursively
        raise ManifestError(Location(path, None, None, ""), "invalid YAML: nested too deeply", code="yaml") from None
    except NodeError as exc:
        where, end_col = _node_location(path, exc.node, "")
        lines = source.lines
        line = where.line
        shown = lines[line - 1] if line and line <= len(lines) else None
        raise ManifestError(where, exc.message, code="yaml", end_column=end_col, source_line=shown) from None
    if not documents:
        raise ManifestError(
            Location(path, None, None, ""), "file has no YAML documents (only comments or '---')", code="file"
        )
    return ManifestFile(path, documents)


def load_manifests(
    paths: Sequence[Path], *, allow_empty: bool = False, surprises: bool = False
) -> tuple[list[ManifestFile], list[ManifestError]]:
    """Every manifest file under ``paths`` parsed, plus the errors of those that could not be."""
    files, errors = discover(paths, allow_empty=allow_empty)
    parsed: list[ManifestFile] = []
    for path in files:
        try:
            parsed.append(parse_file(path, surprises=surprises))
        except ManifestError as exc:
            errors.append(exc)
    return parsed, errors
