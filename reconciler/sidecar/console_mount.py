"""``--watch --console``: the web console on the sidecar's own port, fed by the watch loop's state.

The console reads the manifests the loop last loaded (no second reader of the files) and shows the
loop's probes (ready, live, revision) on its Health page.  The probes keep their paths; every other
path is the console's (:class:`reconciler.sidecar.health.HealthServer`'s ``wsgi_app``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from reconciler.console.app import ConsoleApp, make_app
from reconciler.console.security import LOOPBACK_NAMES, load_token
from reconciler.core.model import DesiredEntry
from reconciler.sidecar.health import Status
from reconciler.sync.reconcile import Target


class Applier(Protocol):
    """What the console needs of the watch loop's applier (``reconciler.sidecar.watch.Applier``, which imports this)."""

    @property
    def paths(self) -> Sequence[Path]: ...

    @property
    def target(self) -> Target: ...

    @property
    def desired(self) -> Mapping[str, DesiredEntry] | None: ...

    @property
    def revision(self) -> str: ...


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith("127.")


class LoopManifests:
    """The desired entries of the watch loop's last valid load, and its current manifest problem."""

    def __init__(self, applier: Applier, status: Status) -> None:
        self.applier, self.status = applier, status
        self.paths = tuple(applier.paths)

    def desired(self) -> tuple[Mapping[str, DesiredEntry] | None, str | None]:
        ready, reason = self.status.ready()
        problem = None if ready or "manifest" not in reason else reason
        return self.applier.desired, problem


def console_app(applier: Applier, status: Status, token_file: Path | None, environ: Mapping[str, str],
                loopback: bool = False) -> ConsoleApp:
    """The console over the loop's target; raises TokenError for an unusable token.  ``loopback``: the
    sidecar listens on loopback, so only requests addressed to loopback are answered."""
    token = load_token(token_file, dict(environ))

    def probes() -> dict[str, Any]:
        ready, ready_reason = status.ready()
        live, live_reason = status.live()
        return {"ready": ready, "ready_reason": ready_reason, "live": live, "live_reason": live_reason,
                "revision": applier.revision}

    return make_app(applier.target, manifests=LoopManifests(applier, status), token=token, sidecar=probes,
                    loopback_only=loopback)
