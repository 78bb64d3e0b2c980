"""Serving the console: ``redbeat-apply console`` (a threaded WSGI server in this process), and the WSGI
callable the watch sidecar mounts beside its probes with ``--console``."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from reconciler.console import readers, security
from reconciler.console.app import ConsoleApp, make_app

logger = logging.getLogger("reconciler.console")

#: Where ``redbeat-apply console`` listens unless told otherwise: loopback only.
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9186


class ConsoleServer:
    """The app on a threaded WSGI server in a daemon thread, until :meth:`close`."""

    def __init__(self, app: ConsoleApp, host: str, port: int) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)  # binds now
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="redbeat-console", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"http://{shown}:{port}/"

    def start(self) -> ConsoleServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)


@dataclass(frozen=True)
class Settings:
    redis_url: str
    key_prefix: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    paths: tuple[Path, ...] = ()
    token_file: Path | None = None


def build(settings: Settings, environ: Mapping[str, str]) -> ConsoleApp:
    """The app for the settings; RedbeatError (bad token, bad URL) before anything listens."""
    from reconciler.core.errors import RedbeatError
    from reconciler.sync.reconcile import connect, load

    try:
        token = security.load_token(settings.token_file, dict(environ))
    except security.TokenError as exc:
        raise RedbeatError(str(exc)) from None
    target = connect(settings.redis_url, settings.key_prefix)
    manifests = readers.ManifestFiles(settings.paths, _loader(load)) if settings.paths else None
    loopback = settings.host in security.LOOPBACK_NAMES or settings.host.startswith("127.")
    return make_app(target, manifests=manifests, token=token, loopback_only=loopback)


def _loader(load: Callable[..., Any]) -> Callable[[Sequence[Path]], Any]:
    return lambda paths: load(paths, allow_empty=True)


def run(settings: Settings, environ: Mapping[str, str], say: Callable[[str], None]) -> int:
    """Serve until SIGTERM or SIGINT; 0 then.  ``say`` prints the URL and what is on."""
    from reconciler.core.errors import RedbeatError

    app = build(settings, environ)
    try:
        server = ConsoleServer(app, settings.host, settings.port)
    except OSError as exc:
        raise RedbeatError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    server.start()
    actions = "on (admin token set)" if app.token else "off (read-only; --console-token-file turns them on)"
    manifests = f"manifests: {', '.join(map(str, settings.paths))}" if settings.paths else "no manifests (Redis only)"
    say(f"redbeat console at {server.url} ; actions {actions}; {manifests}")
    try:
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()
    return 0
