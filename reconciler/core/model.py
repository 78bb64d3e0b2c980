"""Frozen values of the reconciler: what the manifests ask for.

Dicts inside these dataclasses are JSON values and are treated as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.core.errors import Location


@dataclass(frozen=True)
class DesiredEntry:
    """One schedule as the manifests want it.

    ``definition`` is the celery-redbeat ``definition`` JSON object with keys
    exactly ``name, task, args, kwargs, options, schedule, enabled`` (in that
    order), readable by celery-redbeat 2.4.2. ``ext`` holds our extensions
    (``timezone``, ``rrule_byweekday``; keys sorted), stored in the entry's
    separate ``ext`` hash field, or None when there are none. ``protected``
    is the manifest's ``protected: true`` (never pruned); it is not part of
    the definition. ``source`` points at the schedule in its manifest.
    """

    name: str
    definition: dict[str, Any]
    ext: dict[str, Any] | None
    protected: bool
    source: Location
