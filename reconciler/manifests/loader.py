"""Read manifest files safely, keeping the line and column of every value.

Files are found recursively (``*.yaml``/``*.yml``, any case; hidden names skipped, but
the visible symlinks of a Kubernetes ConfigMap volume followed), read with
limits, and composed with PyYAML's *safe* C loader into nodes. The nodes are
turned into plain Python values here rather than by PyYAML's constructor, so
that duplicate keys are errors, only the standard scalar tags are accepted,
and alias expansion is measured before anything is expanded ("billion laughs"
fails at once). Each :class:`Document` keeps its root node, so an error found
later by the schema or the semantic checks can be pointed at the exact key or
value (:meth:`Document.error`).

Limits: a manifest file may be at most :data:`MAX_FILE_BYTES` (5 MiB) and
hold at most :data:`MAX_FILE_NODES` YAML nodes (counted before they are built:
composing costs about 300 bytes and 5 µs a node, so a 5 MiB ``[1,1,1,...]``
would otherwise take 800 MB and 15 s); collections may nest at
most :data:`MAX_DEPTH` levels (deeper would exhaust Python's recursion limit); a
document may expand to at most :data:`MAX_EXPANDED_NODES` nodes through
anchors and aliases.  A FIFO given as a path (``/dev/stdin``, ``<(cmd)``) is
read, but one that yields nothing for :data:`PIPE_TIMEOUT` seconds is an error,
not a hang.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat as statmode
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from reconciler.core.errors import Location, ManifestError, ManifestErrors
from reconciler.core.model import DesiredEntry

if TYPE_CHECKING:
    from reconciler.manifests.semantic import Candidate

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_EXPANDED_NODES = 1_000_000
MAX_FILE_NODES = 200_000  # about 10,000 schedules; split bigger sets into several files
MAX_DEPTH = 64
PIPE_TIMEOUT = 10.0
SUFFIXES = (".yaml", ".yml")
EMPTY_HINT = "an empty manifest set deletes every entry of the owner: allowed only with --allow-mass-delete"

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_CONSTRUCTOR = yaml.constructor.SafeConstructor()

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
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and part.replace("_", "a").replace("-", "a").isalnum():
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part) if isinstance(part, str) else part}]"
    return text


@dataclass
class Document:
    """One YAML document of a manifest file: its value and its nodes."""

    file: Path
    index: int
    node: yaml.Node
    data: Any
    lines: list[str] = field(repr=False)

    def locate(self, path: Sequence[PathPart]) -> tuple[yaml.Node | None, yaml.Node | None]:
        """(key node, value node) of ``path``; the deepest known node when it is missing."""
        key: yaml.Node | None = None
        node: yaml.Node | None = self.node
        for part in path:
            found = _child(node, part) if node is not None else None
            if found is None:
                return key, node
            key, node = found
        return key, node

    def location(self, path: Sequence[PathPart]) -> Location:
        """The Location of the value at ``path``."""
        return _node_location(self.file, self.locate(path)[1], format_path(path))[0]

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
        key, value = self.locate(path)
        node = key if at == "key" and key is not None else value
        where, end_col = _node_location(self.file, node, format_path(path))
        source = self.lines[where.line - 1] if where.line and where.line <= len(self.lines) else None
        return ManifestError(where, message, hint, code=code, end_column=end_col, source_line=source)


def _child(node: yaml.Node, part: PathPart) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            return node.value[part], node.value[part]
        return None
    if isinstance(node, yaml.MappingNode):
        merges: list[yaml.Node] = []
        for key, value in node.value:
            if key.tag == _TAG + "merge":
                merges.extend(value.value if isinstance(value, yaml.SequenceNode) else [value])
            elif isinstance(key, yaml.ScalarNode) and _scalar(key) == part:
                return key, value
        for source in merges:
            found = _child(source, part)
            if found is not None:
                return found
    return None


@dataclass
class ManifestFile:
    """A manifest file that could be read and parsed, with its documents."""

    path: Path
    documents: list[Document]


class _NodeError(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node, self.message = node, message


def _scalar(node: yaml.ScalarNode) -> Any:
    tag = node.tag
    if tag == _TAG + "str":
        return node.value
    if tag == _TAG + "int":
        return _CONSTRUCTOR.construct_yaml_int(node)
    if tag == _TAG + "float":
        return _CONSTRUCTOR.construct_yaml_float(node)
    if tag == _TAG + "bool":
        return _CONSTRUCTOR.construct_yaml_bool(node)
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "timestamp":
        # Kept as the text written: definitions carry strings, not datetimes.
        return node.value
    raise _NodeError(node, f"the tag {_short_tag(tag)} is not allowed in a manifest (safe YAML only)")


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _too_deep(node: yaml.Node) -> _NodeError:
    return _NodeError(node, f"collections nest deeper than {MAX_DEPTH} levels, the limit for a manifest")


def _check_depth(root: yaml.Node) -> None:
    """Reject collections nested deeper than MAX_DEPTH, iteratively, for a document without aliases (a tree)."""
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(node)
        stack.extend((child, depth + 1) for child in _children(node) if not isinstance(child, yaml.ScalarNode))


def _measure(root: yaml.Node) -> int:
    """Nodes that converting ``root`` would create, aliases expanded; without expanding.

    Iterative (a deep document must not exhaust the Python stack), each node
    visited once however often it is aliased; also rejects a recursive alias
    and collections nested deeper than MAX_DEPTH, at the first node past it.
    """
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}  # collection levels; a scalar is 0
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        ident = id(node)
        if done:
            active.discard(ident)
            children = _children(node)
            sizes[ident] = 1 + sum(sizes[id(child)] for child in children)
            heights[ident] = 1 + max((heights[id(child)] for child in children), default=0)
            continue
        if ident in sizes:
            continue
        if ident in active:
            raise _NodeError(node, "recursive alias: an anchor is used inside itself")
        if isinstance(node, yaml.ScalarNode):
            sizes[ident], heights[ident] = 1, 0
            continue
        active.add(ident)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    if heights[id(root)] > MAX_DEPTH:
        node = root
        for _ in range(MAX_DEPTH):  # down the deepest branch to the first collection past the limit
            node = max(_children(node), key=lambda child: heights[id(child)])
        raise _too_deep(node)
    return sizes[id(root)]


def _count_nodes(text: str, limit: int) -> None:
    """Raise _NodeError at the first YAML node past ``limit`` nodes, parsing events only (no nodes built).

    Skipped when a cheap count of the characters that can start a node shows
    the text cannot hold that many.
    """
    if 2 * sum(text.count(c) for c in ",[{:-?\n") + 2 <= limit:
        return
    count = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)):
            count += 1
            if count > limit:
                raise _NodeError(
                    # types-PyYAML: the C parser's events carry yaml._yaml.Mark, which ScalarNode's stub rejects
                    yaml.ScalarNode(_TAG + "str", "", event.start_mark, event.end_mark),  # type: ignore[arg-type]
                    f"file has more than {limit} YAML nodes, the limit for a manifest; "
                    "split it into several files",
                )


def _convert(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _TAG + "seq":
            raise _NodeError(node, f"the tag {_short_tag(node.tag)} is not allowed in a manifest (safe YAML only)")
        return [_convert(child) for child in node.value]
    if node.tag != _TAG + "map":
        raise _NodeError(node, f"the tag {_short_tag(node.tag)} is not allowed in a manifest (safe YAML only)")
    result: dict[Any, Any] = {}
    keys: dict[Any, yaml.Node] = {}
    merged: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _TAG + "merge":
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                value = _convert(source)
                if not isinstance(value, dict):
                    raise _NodeError(source, "a merge key '<<' needs a mapping or a list of mappings")
                for k, v in value.items():
                    merged.setdefault(k, v)
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            raise _NodeError(key_node, "mapping keys must be plain strings or numbers")
        key = _scalar(key_node)
        if key in keys:
            first = keys[key].start_mark
            raise _NodeError(
                key_node,
                f"duplicate key {key!r} (first defined at line {first.line + 1}, column {first.column + 1})",
            )
        keys[key] = key_node
        result[key] = _convert(value_node)
    if merged:
        merged.update(result)
        return merged
    return result


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


def _read_text(path: Path) -> str:
    """The file's text, or a ManifestError saying plainly why not."""
    where = Location(path, None, None, "")
    try:
        st = path.stat()
        if statmode.S_ISFIFO(st.st_mode):
            data = _read_pipe(path, where)
        else:
            if st.st_size > MAX_FILE_BYTES:
                message = f"file is {st.st_size} bytes; manifests are limited to {MAX_FILE_BYTES} bytes (5 MiB)"
                raise ManifestError(where, message, code="file")
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ManifestError(where, f"cannot read file: {exc.strerror or exc}", code="file") from None
    if len(data) > MAX_FILE_BYTES:
        raise ManifestError(
            where, f"file is larger than {MAX_FILE_BYTES} bytes (5 MiB), the limit for a manifest", code="file"
        )
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ManifestError(where, "file is UTF-16 encoded; save it as UTF-8", code="file")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise ManifestError(
            where, f"binary file (NUL byte at offset {nul}); a manifest must be UTF-8 text", code="file"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise ManifestError(
            Location(path, line, column, ""),
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            code="file",
        ) from None
    if not text.strip():
        raise ManifestError(where, "file is empty; a manifest needs at least one schedule", code="file")
    return text


def _read_pipe(path: Path, where: Location) -> bytes:
    """A FIFO's bytes up to end of file; an error if it stays silent (no writer) for PIPE_TIMEOUT seconds."""
    import select

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a blocking open would wait for a writer forever
    chunks: list[bytes] = []
    size = 0
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while size <= MAX_FILE_BYTES:
            if not poller.poll(PIPE_TIMEOUT * 1000):
                raise ManifestError(
                    where, f"pipe (FIFO) gave no data for {PIPE_TIMEOUT:g} s; nothing writes to it?", code="file"
                )
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def parse_file(path: Path) -> ManifestFile:
    """Read and compose one file; raises ManifestError (one per file: parsing stops there)."""
    text = _read_text(path)
    lines = text.splitlines()
    documents: list[Document] = []
    try:
        _count_nodes(text, MAX_FILE_NODES)
        for index, node in enumerate(yaml.compose_all(text, Loader=_Loader)):
            if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null"):
                continue
            document = Document(path, index, node, None, lines)
            if "&" not in text:
                _check_depth(node)
            elif _measure(node) > MAX_EXPANDED_NODES:
                raise _NodeError(
                    node,
                    f"anchors and aliases expand this document past {MAX_EXPANDED_NODES} nodes "
                    "(a 'billion laughs' document?)",
                )
            document.data = _convert(node)
            documents.append(document)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error_location(path, exc, lines) from None
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark
        raise ManifestError(Location(path, None, None, ""), f"invalid YAML: {exc}", code="yaml") from None
    except RecursionError:  # the pure-Python loader (no libyaml) composes recursively
        raise ManifestError(Location(path, None, None, ""), "invalid YAML: nested too deeply", code="yaml") from None
    except _NodeError as exc:
        where, end_col = _node_location(path, exc.node, "")
        line = where.line
        source = lines[line - 1] if line and line <= len(lines) else None
        raise ManifestError(where, exc.message, code="yaml", end_column=end_col, source_line=source) from None
    if not documents:
        raise ManifestError(
            Location(path, None, None, ""), "file has no YAML documents (only comments or '---')", code="file"
        )
    return ManifestFile(path, documents)


def _is_manifest_name(name: str) -> bool:
    # Case-insensitive: a `jobs.YAML` skipped in silence would be deleted by the next prune.
    return name.lower().endswith(SUFFIXES)


def discover(paths: Sequence[Path], *, allow_empty: bool = False) -> tuple[list[Path], list[ManifestError]]:
    """Manifest files under ``paths``, in a stable order, each real file once.

    Directories are searched recursively; names starting with ``.`` are
    skipped (``.git``, and a ConfigMap's ``..data`` internals), but symlinks
    to files and directories are followed, so the visible ``x.yaml ->
    ..data/x.yaml`` links of a ConfigMap volume are read. A symlink loop or a
    broken link is an error, never a hang. A path given explicitly is read
    whatever its name. A directory without manifests is an error unless
    ``allow_empty`` (an owner deleting all its entries on purpose).
    """
    found: list[Path] = []
    errors: list[ManifestError] = []
    seen_files: set[tuple[int, int]] = set()

    def add(path: Path, st: os.stat_result) -> None:
        ident = (st.st_dev, st.st_ino)
        if ident not in seen_files:
            seen_files.add(ident)
            found.append(path)

    def stat(path: Path) -> os.stat_result | None:
        try:
            return path.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                errors.append(ManifestError(Location(path, None, None, ""), "symlink loop", code="file"))
            elif path.is_symlink():
                target = os.readlink(path)
                errors.append(
                    ManifestError(Location(path, None, None, ""), f"broken symlink (points to {target})", code="file")
                )
            else:
                errors.append(
                    ManifestError(Location(path, None, None, ""), f"cannot read: {exc.strerror or exc}", code="file")
                )
            return None

    def walk(directory: Path, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            errors.append(
                ManifestError(
                    Location(directory, None, None, ""), f"cannot list directory: {exc.strerror or exc}", code="file"
                )
            )
            return
        for name in names:
            if name.startswith("."):
                continue
            child = directory / name
            is_dir_link = child.is_symlink()
            if not is_dir_link and not _is_manifest_name(name):
                try:
                    if not child.is_dir():
                        continue
                except OSError:
                    continue
            st = stat(child)
            if st is None:
                continue
            if statmode.S_ISDIR(st.st_mode):
                ident = (st.st_dev, st.st_ino)
                if ident in ancestors:
                    errors.append(
                        ManifestError(
                            Location(child, None, None, ""), "symlink loop: this directory contains itself", code="file"
                        )
                    )
                    continue
                walk(child, ancestors | {ident})
            elif _is_manifest_name(name) and statmode.S_ISREG(st.st_mode):
                add(child, st)
            elif _is_manifest_name(name):  # a FIFO, socket or device named *.yaml: never silently skipped
                errors.append(
                    ManifestError(
                        Location(child, None, None, ""),
                        "not a regular file (a FIFO, socket or device); a manifest in a directory must be a file",
                        code="file",
                    )
                )

    for path in paths:
        st = stat(path)
        if st is None:
            continue
        if statmode.S_ISDIR(st.st_mode):
            before, errors_before = len(found), len(errors)
            walk(path, frozenset({(st.st_dev, st.st_ino)}))
            if len(found) == before and len(errors) == errors_before and not allow_empty:  # else those errors say why
                errors.append(
                    ManifestError(
                        Location(path, None, None, ""),
                        "no manifests (*.yaml, *.yml) in this directory",
                        EMPTY_HINT,
                        code="file",
                    )
                )
        else:
            add(path, st)
    return found, errors


def load_manifests(
    paths: Sequence[Path], *, allow_empty: bool = False
) -> tuple[list[ManifestFile], list[ManifestError]]:
    """Every manifest file under ``paths`` parsed, plus the errors of those that could not be."""
    files, errors = discover(paths, allow_empty=allow_empty)
    parsed: list[ManifestFile] = []
    for path in files:
        try:
            parsed.append(parse_file(path))
        except ManifestError as exc:
            errors.append(exc)
    return parsed, errors


def check_manifests(
    paths: Sequence[Path],
    *,
    compat: str | None = None,
    allow_empty: bool = False,
    warnings: list[ManifestError] | None = None,
) -> tuple[dict[str, DesiredEntry], list[ManifestError]]:
    """Load, schema-check and semantically check; (entries, all errors sorted).

    ``allow_empty`` accepts ``schedules: []`` and a directory without
    manifests: the way an owner removes all its entries, on purpose.
    ``warnings``, when given, receives the YAML 1.1 surprises of every
    document (see :mod:`reconciler.manifests.yaml11`): not errors, as the value may be
    meant, but worth a look.
    """
    from reconciler.manifests import semantic

    files, errors = load_manifests(paths, allow_empty=allow_empty)
    candidates: list[semantic.Candidate] = []
    for manifest in files:
        found, problems = check_file(manifest, compat=compat, allow_empty=allow_empty, warnings=warnings)
        candidates += found
        errors += problems
    entries, problems = semantic.merge_candidates(candidates)
    return entries, finish_errors(paths, entries, errors + problems, allow_empty=allow_empty)


# --- the two halves of check_manifests: per file, and across the files (the incremental index reuses both) ---


def check_file(
    manifest: ManifestFile,
    *,
    compat: str | None = None,
    allow_empty: bool = False,
    warnings: list[ManifestError] | None = None,
) -> tuple[list[Candidate], list[ManifestError]]:
    """The per-file half: every document schema-checked and converted; (candidates in order, errors)."""
    from reconciler.manifests import schema, semantic, yaml11

    candidates: list[semantic.Candidate] = []
    errors: list[ManifestError] = []
    for document in manifest.documents:
        result = schema.check(document)
        errors.extend(result.errors)
        if warnings is not None:
            warnings.extend(document.error(s.path, s.message, code="yaml11") for s in yaml11.surprises(document.node))
        if isinstance(document.data, dict) and document.data.get("schedules") == [] and not allow_empty:
            errors.append(document.error(("schedules",), "must not be empty", EMPTY_HINT))
        if result.broken is not None:
            found, problems = semantic.document_candidates(document, result.broken, compat=compat)
            candidates += found
            errors += problems
    return candidates, errors


def finish_errors(
    paths: Sequence[Path], entries: Mapping[str, DesiredEntry], errors: list[ManifestError], *, allow_empty: bool
) -> list[ManifestError]:
    """The cross-file end: 'no schedules found', each error once, sorted by file, line and column."""
    if not entries and not errors and not allow_empty:
        where = Location(paths[0] if paths else Path("."), None, None, "")
        errors = [ManifestError(where, "no schedules found", EMPTY_HINT, code="file")]
    # A bad value in `defaults` fails every schedule of its group: say it once.
    unique = {error.sort_key(): error for error in reversed(errors)}
    return [unique[key] for key in sorted(unique)]


def load_desired(
    paths: Sequence[Path], *, compat: str | None = None, allow_empty: bool = False
) -> dict[str, DesiredEntry]:
    """The desired entries of ``paths`` by name; raises ManifestErrors with every error of the run.

    ``compat="celery-redbeat"`` also rejects every extension celery-redbeat
    cannot read. Reads only; never writes.
    """
    entries, errors = check_manifests(paths, compat=compat, allow_empty=allow_empty)
    if errors:
        raise ManifestErrors(errors)
    return entries


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_DIGEST_MODULUS = 1 << 256


def entry_digest(entry: DesiredEntry) -> int:
    """sha256 of one entry's canonical form, as an integer (the terms :func:`content_digest` adds up)."""
    blob = _CANONICAL([entry.name, entry.definition, entry.ext, entry.protected])
    return int.from_bytes(hashlib.sha256(blob.encode("utf-8")).digest(), "big")


def digest_of_sum(total: int) -> str:
    """The content digest of entries whose :func:`entry_digest` values add up to ``total``."""
    return hashlib.sha256((total % _DIGEST_MODULUS).to_bytes(32, "big")).hexdigest()


def content_digest(entries: Mapping[str, DesiredEntry]) -> str:
    """A digest of the canonical entries; independent of key order, formatting and file layout.

    A sum of per-entry digests (names are unique, so it is a set hash), so the
    incremental index keeps it current by adding and subtracting the entries
    of the files that changed, and names the same revision a cold run does.
    """
    return digest_of_sum(sum(entry_digest(entry) for entry in entries.values()))
