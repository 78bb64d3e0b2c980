"""The content digest of a set of desired entries: what revision the watch mode and the audit trail name.

Independent of key order, formatting and file layout (it hashes each
entry's canonical form), and a sum of per-entry digests, so the incremental
index keeps it current by adding and subtracting the entries of the files
that changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from reconciler.core.model import DesiredEntry

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
