"""Find manifest files and read them as text, with limits.

Files are found recursively (``*.yaml``/``*.yml``, any case; hidden names
skipped, but the visible symlinks of a Kubernetes ConfigMap volume followed).
A file may be at most :data:`MAX_FILE_BYTES` (5 MiB) and must be UTF-8 text.
A FIFO given as a path (``/dev/stdin``, ``<(cmd)``) is read, but one that
yields nothing for :data:`PIPE_TIMEOUT` seconds is an error, not a hang.
Every problem is a :class:`ManifestError` naming the file; nothing here raises
anything else.
"""

from __future__ import annotations

import errno
import os
import stat as statmode
from collections.abc import Sequence
from pathlib import Path

from reconciler.core.errors import Location, ManifestError

MAX_FILE_BYTES = 5 * 1024 * 1024
PIPE_TIMEOUT = 10.0
SUFFIXES = (".yaml", ".yml")
EMPTY_HINT = "an empty manifest set deletes every entry of the owner: allowed only with --allow-mass-delete"

FileId = tuple[int, int]  # (st_dev, st_ino): one real file or directory, whatever the path to it


def _file_error(path: Path, message: str, hint: str | None = None) -> ManifestError:
    return ManifestError(Location(path, None, None, ""), message, hint, code="file")


def is_manifest_name(name: str) -> bool:
    # Case-insensitive: a `jobs.YAML` skipped in silence would be deleted by the next prune.
    return name.lower().endswith(SUFFIXES)


class _Discovery:
    """One discovery run: the files found (each real file once) and the errors met."""

    def __init__(self) -> None:
        self.found: list[Path] = []
        self.errors: list[ManifestError] = []
        self._seen: set[FileId] = set()

    def add(self, path: Path, st: os.stat_result) -> None:
        ident = (st.st_dev, st.st_ino)
        if ident not in self._seen:
            self._seen.add(ident)
            self.found.append(path)

    def stat(self, path: Path) -> os.stat_result | None:
        """``path``'s stat, following symlinks; None (and an error saying why) if it has none."""
        try:
            return path.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.errors.append(_file_error(path, "symlink loop"))
            elif path.is_symlink():
                self.errors.append(_file_error(path, f"broken symlink (points to {os.readlink(path)})"))
            else:
                self.errors.append(_file_error(path, f"cannot read: {exc.strerror or exc}"))
            return None

    def walk(self, directory: Path, ancestors: frozenset[FileId]) -> None:
        """Every manifest under ``directory``, in name order; ``ancestors`` are the directories above it."""
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            self.errors.append(_file_error(directory, f"cannot list directory: {exc.strerror or exc}"))
            return
        for name in names:
            if not name.startswith("."):
                self._visit(directory / name, ancestors)

    def _visit(self, child: Path, ancestors: frozenset[FileId]) -> None:
        manifest_name = is_manifest_name(child.name)
        if not manifest_name and not child.is_symlink():
            try:
                if not child.is_dir():
                    return  # notes.txt and the like: not ours, no stat needed
            except OSError:
                return
        st = self.stat(child)
        if st is None:
            return
        if statmode.S_ISDIR(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            if ident in ancestors:
                self.errors.append(_file_error(child, "symlink loop: this directory contains itself"))
            else:
                self.walk(child, ancestors | {ident})
        elif manifest_name and statmode.S_ISREG(st.st_mode):
            self.add(child, st)
        elif manifest_name:  # a FIFO, socket or device named *.yaml: never silently skipped
            self.errors.append(
                _file_error(
                    child, "not a regular file (a FIFO, socket or device); a manifest in a directory must be a file"
                )
            )

    def directory(self, path: Path, st: os.stat_result, *, allow_empty: bool) -> None:
        """A directory given on the command line: searched, and an error when it holds no manifest."""
        before, errors_before = len(self.found), len(self.errors)
        self.walk(path, frozenset({(st.st_dev, st.st_ino)}))
        if len(self.found) == before and len(self.errors) == errors_before and not allow_empty:  # else they say why
            self.errors.append(_file_error(path, "no manifests (*.yaml, *.yml) in this directory", EMPTY_HINT))


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
    run = _Discovery()
    for path in paths:
        st = run.stat(path)
        if st is None:
            continue
        if statmode.S_ISDIR(st.st_mode):
            run.directory(path, st, allow_empty=allow_empty)
        else:
            run.add(path, st)
    return run.found, run.errors


def read_text(path: Path) -> str:
    """The file's text, or a ManifestError saying plainly why not."""
    data = _read_bytes(path)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise _file_error(path, "file is UTF-16 encoded; save it as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise _file_error(path, f"binary file (NUL byte at offset {nul}); a manifest must be UTF-8 text")
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
        raise _file_error(path, "file is empty; a manifest needs at least one schedule")
    return text


def _read_bytes(path: Path) -> bytes:
    """At most MAX_FILE_BYTES of the file (a FIFO too); a ManifestError when it cannot be read or is bigger."""
    try:
        st = path.stat()
        if statmode.S_ISFIFO(st.st_mode):
            data = _read_pipe(path)
        else:
            if st.st_size > MAX_FILE_BYTES:
                raise _file_error(
                    path, f"file is {st.st_size} bytes; manifests are limited to {MAX_FILE_BYTES} bytes (5 MiB)"
                )
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _file_error(path, f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise _file_error(path, f"file is larger than {MAX_FILE_BYTES} bytes (5 MiB), the limit for a manifest")
    return data


def _read_pipe(path: Path) -> bytes:
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
                raise _file_error(path, f"pipe (FIFO) gave no data for {PIPE_TIMEOUT:g} s; nothing writes to it?")
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
