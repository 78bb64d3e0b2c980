"""An index of checked manifest files: a refresh re-reads only the files whose identity changed.

Each file's per-file check (parse, schema, conversion: ``checks.check_file``)
is kept with the file's identity (device, inode, size, mtime and ctime in
nanoseconds).  A refresh lists the tree again (cheap: one ``stat`` a file)
and re-checks a file only when its identity changed, or, when the identity
cannot be trusted, when its bytes' sha256 changed.  An identity is not
trusted for a file reached through a symlink (a Kubernetes ConfigMap swaps
its ``..data`` link atomically; the visible path never changes) nor while
its mtime is within :data:`RACY_SECONDS` of when it was read (a second write
inside one timestamp tick, of the same size, would look unchanged).

The cross-file checks (unique names, the first definition in path order
wins; compat errors of the winners; "no schedules found") run on what the
index holds, for the names of the files that changed, so the result equals
``checks.check_manifests`` of the same tree (tests/integration/
test_incremental_property.py checks that on random edit sequences).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from reconciler.core.errors import ManifestError
from reconciler.core.model import DesiredEntry
from reconciler.manifests.checks import check_file, finish_errors
from reconciler.manifests.digest import digest_of_sum, entry_digest
from reconciler.manifests.files import read_text
from reconciler.manifests.items import Split, isolated, split_items
from reconciler.manifests.loader import MAX_FILE_BYTES, ManifestFile, discover, parse_text
from reconciler.manifests.memo import ConversionMemo, Converted, Key
from reconciler.manifests.nodes import MAX_FILE_NODES, cannot_exceed
from reconciler.manifests.semantic import Candidate, NameAnchor

#: A file modified this recently when it was read is hashed at the next refresh, whatever its identity says.
RACY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Identity:
    """What identifies a file's content without reading it."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(slots=True)
class FileCheck:
    """One file as last checked: its candidates (detached from the YAML nodes) and its own errors."""

    identity: Identity | None
    sha256: str | None  # of the bytes, when it was computed (untrusted identity)
    trusted: bool
    candidates: list[Candidate]
    errors: list[ManifestError]
    digests: list[int] = field(default_factory=list)  # entry_digest per candidate
    conversions: dict[Key, Converted] = field(default_factory=dict)  # its clean conversions, for the next check
    #: its text cut into items (reconciler.manifests.items), when the cut is the parser's and the file is clean
    split: Split | None = None
    #: the names whose entry this check may have changed, None for every name the file held or holds
    names: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Items:
    """What :meth:`ManifestIndex._check_items` makes of an edited file: a clean FileCheck's content."""

    candidates: list[Candidate]
    digests: list[int]
    conversions: dict[Key, Converted]
    split: Split
    names: frozenset[str]


@dataclass(frozen=True, slots=True)
class Refresh:
    """What one refresh found: the files it re-checked or dropped, and the names whose entry changed."""

    files: tuple[Path, ...]
    names: frozenset[str]
    full: bool


def _parser_split(text: str, manifest: ManifestFile, candidates: int) -> Split | None:
    """The cut of ``text`` into items when it is the one the parser made: one document, each item where
    the parser recorded its start, one candidate an item; else None (edits then re-check the whole file)."""
    split = split_items(text)
    if split is None or len(manifest.documents) != 1 or candidates != len(split.items):
        return None
    marks = manifest.documents[0].marks
    if list(marks.lines) != [start + 1 for start in split.starts]:
        return None
    return split


def _placed(candidate: Candidate, position: int, lines: int, text: str) -> Candidate | None:
    """``candidate`` of an item now at ``position`` and ``lines`` further down (an item parsed alone, or one an
    edit above it moved), quoting ``text``; None when it carries an error whose position would have to move
    too (the whole file is checked then)."""
    anchor = candidate.anchor
    if candidate.compat_errors or not isinstance(anchor, NameAnchor):
        return None
    source = candidate.entry.source
    if source.line is None or anchor.where.line is None:
        return None
    entry = replace(candidate.entry, source=replace(source, line=source.line + lines, field=f"schedules[{position}]"))
    where = replace(anchor.where, line=anchor.where.line + lines, field=f"schedules[{position}].name")
    return replace(candidate, entry=entry, anchor=replace(anchor, where=where, text=text))


def _reanchored(candidate: Candidate, text: str) -> Candidate:
    """``candidate`` whose duplicate-name error quotes its line from ``text`` (the file as it is now)."""
    anchor = candidate.anchor
    if isinstance(anchor, NameAnchor) and anchor.text is not text:
        return replace(candidate, anchor=replace(anchor, text=text))
    return candidate


def _sha256(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return hashlib.sha256(handle.read(MAX_FILE_BYTES + 1)).hexdigest()
    except OSError:
        return None


def _through_symlink(path: Path) -> bool:
    return os.path.realpath(path) != os.path.abspath(path)


class ManifestIndex:
    """The manifests of ``paths``, checked file by file; :meth:`refresh` brings it up to date."""

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        compat: str | None = None,
        allow_empty: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.paths = tuple(paths)
        self.compat, self.allow_empty, self._clock = compat, allow_empty, clock
        self._files: dict[Path, FileCheck] = {}
        self._rank: dict[Path, int] = {}
        self._holders: dict[str, list[tuple[Path, int]]] = {}  # name -> (file, position) of each definition
        self._discover_errors: list[ManifestError] = []
        self._cross_errors: dict[str, list[ManifestError]] = {}  # name -> duplicate and compat errors
        self._sum = 0
        self._digests: dict[str, int] = {}  # name -> entry_digest of its entry in self.entries
        self.entries: dict[str, DesiredEntry] = {}
        self.errors: list[ManifestError] = []

    @property
    def digest(self) -> str:
        """``digest.content_digest(self.entries)``, kept current without recomputing it."""
        return digest_of_sum(self._sum)

    def refresh(self, *, full: bool = False) -> Refresh:
        """Re-check the files that changed (every file when ``full``); update entries, errors and digest."""
        found, self._discover_errors = discover(self.paths, allow_empty=self.allow_empty)
        changed: list[Path] = []
        affected: set[str] = set()
        for path in set(self._files) - set(found):
            affected.update(c.entry.name for c in self._files[path].candidates)
            self._forget(path)
            changed.append(path)
        self._rank = {path: rank for rank, path in enumerate(found)}
        for path in found:
            check = self._recheck(path, full)
            if check is None:
                continue
            old = self._files.get(path)
            if old is not None:
                self._forget(path)
                if check.names is None:
                    affected.update(c.entry.name for c in old.candidates)
            self._files[path] = check
            for position, candidate in enumerate(check.candidates):
                self._holders.setdefault(candidate.entry.name, []).append((path, position))
            # Items an edit did not touch keep their entry and position: only the others are resolved again.
            affected.update(check.names if check.names is not None else (c.entry.name for c in check.candidates))
            changed.append(path)
        names = frozenset(name for name in affected if self._resolve(name))
        own_errors = [error for path in found for error in self._files[path].errors]
        cross = [error for errors in self._cross_errors.values() for error in errors]
        self.errors = finish_errors(
            self.paths, self.entries, self._discover_errors + own_errors + cross, allow_empty=self.allow_empty
        )
        return Refresh(tuple(changed), names, full)

    def _recheck(self, path: Path, full: bool) -> FileCheck | None:
        """A new check of ``path``, or None when the one held still stands."""
        try:
            identity: Identity | None = Identity.of(path.stat())
        except OSError:
            identity = None
        held = self._files.get(path)
        if not full and held is not None and identity is not None and identity == held.identity:
            if held.trusted:
                return None
            sha = _sha256(path)
            if sha is not None and sha == held.sha256:
                held.trusted = self._trusted(path, identity)
                return None
        return self._check(path, identity)

    def _trusted(self, path: Path, identity: Identity) -> bool:
        settled = identity.mtime_ns < (self._clock() - RACY_SECONDS) * 1e9
        return settled and not _through_symlink(path)

    def _check(self, path: Path, identity: Identity | None) -> FileCheck:
        """Read and check one file; the identity was taken before reading, so a later write always shows."""
        sha = _sha256(path)
        trusted = identity is not None and self._trusted(path, identity)
        held = self._files.get(path)
        try:
            text = read_text(path)
            if held is not None and held.split is not None and not held.errors:
                quick = self._check_items(path, text, held)
                if quick is not None:
                    return FileCheck(identity, sha, trusted, quick.candidates, [], quick.digests, quick.conversions,
                                     quick.split, quick.names)
            manifest = parse_text(path, text)
        except ManifestError as exc:
            return FileCheck(identity, sha, trusted, [], [exc])
        memo = ConversionMemo(entry_digest, held.conversions if held is not None else None)
        candidates, errors = check_file(manifest, compat=self.compat, allow_empty=self.allow_empty, memo=memo)
        detached = [candidate.detach() for candidate in candidates]
        digests = [entry_digest(c.entry) if c.digest is None else c.digest for c in detached]
        split = _parser_split(text, manifest, len(detached)) if not errors else None
        return FileCheck(identity, sha, trusted, detached, errors, digests, memo.current, split)

    def _check_items(self, path: Path, text: str, held: FileCheck) -> Items | None:
        """The check of an edited file from the items whose text changed, parsed alone; None: check it all.

        The items before the first changed one and after the last are kept (those
        after it moved by the lines and items the edit added or removed), so an
        edit, an insertion or a removal of one schedule parses one schedule at
        most. Taken only when the header is as before and each item parsed comes
        out clean (an error is reported from the whole file, exactly where a full
        check puts it).
        """
        split, before = split_items(text), held.split
        assert before is not None
        if split is None or (split.header, split.indent) != (before.header, before.indent):
            return None
        if not cannot_exceed(text, MAX_FILE_NODES):
            return None
        old, new = before.items, split.items
        if len(held.candidates) != len(old):
            return None
        head = 0
        while head < min(len(old), len(new)) and old[head] == new[head] and before.starts[head] == split.starts[head]:
            head += 1
        tail = 0
        while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
            tail += 1
        edited = range(head, len(new) - tail)
        if len(edited) > max(1, len(new) // 4):  # most of the file: one parse of it is cheaper
            return None
        lines, moved = split.starts[-1] - before.starts[-1] if tail else 0, len(new) - len(old)
        below: list[Candidate] = []  # first: a moved item that cannot move makes parsing the edited ones useless
        for t, candidate in enumerate(held.candidates[len(old) - tail :]):
            shifted = _placed(candidate, len(new) - tail + t, lines, text)
            if shifted is None:
                return None
            below.append(shifted)
        candidates = [_reanchored(c, text) for c in held.candidates[:head]]
        digests = held.digests[:head]
        memo = ConversionMemo(entry_digest, held.conversions)
        for position in edited:
            item = self._check_item(path, isolated(split, position), position, memo, text)
            if item is None:
                return None
            candidates.append(item[0])
            digests.append(item[1])
        candidates += below
        digests += held.digests[len(old) - tail :]
        names = {c.entry.name for c in held.candidates[head : len(old) - tail]}
        names.update(c.entry.name for c in candidates[head : len(new) - tail])
        if lines or moved:
            names.update(c.entry.name for c in candidates[len(new) - tail :])
        conversions = {**held.conversions, **memo.current}
        if len(conversions) > 2 * len(candidates) + 16:  # stale conversions of items edited since: start over
            conversions = dict(memo.current)
        return Items(candidates, digests, conversions, split, frozenset(names))

    def _check_item(
        self, path: Path, document: str, position: int, memo: ConversionMemo, text: str
    ) -> tuple[Candidate, int] | None:
        """Item ``position`` of ``path``, parsed alone (as ``schedules[0]``) and made as a full check makes it,
        with its digest.  None when the item is not clean: the whole file is checked then.
        """
        try:
            manifest = parse_text(path, document)
        except ManifestError:  # said from the whole file, where a full check says it
            return None
        candidates, errors = check_file(manifest, compat=self.compat, allow_empty=self.allow_empty, memo=memo)
        if errors or len(candidates) != 1:
            return None
        found = candidates[0].detach()
        anchor = found.anchor
        alone = isinstance(anchor, NameAnchor) and anchor.where.field == "schedules[0].name"
        if not alone or found.entry.source.field != "schedules[0]":
            return None
        placed = _placed(found, position, 0, text)
        if placed is None:
            return None
        digest = entry_digest(placed.entry) if placed.digest is None else placed.digest
        return replace(placed, digest=digest), digest

    def _forget(self, path: Path) -> None:
        check = self._files.pop(path)
        for position, candidate in enumerate(check.candidates):
            holders = self._holders[candidate.entry.name]
            holders.remove((path, position))
            if not holders:
                del self._holders[candidate.entry.name]

    def _resolve(self, name: str) -> bool:
        """Redo the cross-file checks of one name; True when its entry changed."""
        before = self.entries.get(name)
        holders = sorted(self._holders.get(name, ()), key=lambda held: (self._rank[held[0]], held[1]))
        errors: list[ManifestError] = []
        if holders:
            path, position = holders[0]
            winner = self._files[path].candidates[position]
            errors.extend(winner.compat_errors)
            errors.extend(self._files[p].candidates[i].duplicate_error(winner.entry) for p, i in holders[1:])
            after: DesiredEntry | None = winner.entry
            digest = self._files[path].digests[position]
        else:
            after, digest = None, 0
        if errors:
            self._cross_errors[name] = errors
        else:
            self._cross_errors.pop(name, None)
        self._sum -= self._digests.pop(name, 0)
        if after is None:
            self.entries.pop(name, None)
        else:
            self.entries[name] = after
            self._digests[name] = digest
            self._sum += digest
        return before != after
