"""Pause Python's cyclic garbage collector while a bulk step builds objects that live on.

A cold run of 100,000 schedules allocates millions of objects: node trees
that live for the length of one file, and definitions, entries and plan rows
that live for the whole run. Each young collection promotes what is still
alive, and every so often a full collection walks every container of the
process again; during a cold load that took about half of the CPU time
(bench/README.md). The steps paused here make no reference cycles that must
be freed before they end (they free what they drop by reference counting),
so the collector resumes afterwards with nothing lost.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block; restored after it (nested or concurrent blocks leave it as found)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
