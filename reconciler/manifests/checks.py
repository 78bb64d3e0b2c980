"""The check pipeline: every manifest under some paths parsed, schema-checked, converted and merged; all errors.

Per file (:func:`check_file`): each document of a parsed
:class:`~reconciler.manifests.loader.ManifestFile` is checked against the JSON
Schema (:mod:`~reconciler.manifests.schema`) and its schedules converted
(:mod:`~reconciler.manifests.semantic`). Across the files
(:func:`~reconciler.manifests.semantic.merge_candidates`,
:func:`finish_errors`): names unique, "no schedules found", each error once,
sorted. :func:`check_manifests` is both halves over a tree, as ``validate``
runs it; the watch mode's incremental index (:mod:`~reconciler.manifests.index`)
reuses the halves per changed file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from reconciler.core.bulk import gc_paused
from reconciler.core.errors import Location, ManifestError, ManifestErrors
from reconciler.core.model import DesiredEntry
from reconciler.manifests import schema, semantic
from reconciler.manifests.files import EMPTY_HINT
from reconciler.manifests.loader import ManifestFile, load_manifests
from reconciler.manifests.memo import ConversionMemo


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
    with gc_paused():  # every entry built here lives on: collections would only walk them again (core.bulk)
        files, errors = load_manifests(paths, allow_empty=allow_empty, surprises=warnings is not None)
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
    memo: ConversionMemo | None = None,
) -> tuple[list[semantic.Candidate], list[ManifestError]]:
    """The per-file half: every document schema-checked and converted; (candidates in order, errors).

    ``memo`` (the incremental index's) skips converting the schedules it converted before.
    """
    candidates: list[semantic.Candidate] = []
    errors: list[ManifestError] = []
    for document in manifest.documents:
        result = schema.check(document)
        errors.extend(result.errors)
        if warnings is not None:
            warnings.extend(document.error(s.path, s.message, code="yaml11") for s in document.surprises())
        if isinstance(document.data, dict) and document.data.get("schedules") == [] and not allow_empty:
            errors.append(document.error(("schedules",), "must not be empty", EMPTY_HINT))
        if result.broken is not None:
            found, problems = semantic.document_candidates(document, result.broken, compat=compat, memo=memo)
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
