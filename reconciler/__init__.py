"""redbeat-apply: declarative schedule manifests reconciled into Redis."""

from __future__ import annotations

__all__: list[str] = []
