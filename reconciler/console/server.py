"""Serving the console: ``redbeat-apply console`` (a threaded WSGI server in this process), and the WSGI
callable the watch sidecar mounts beside its probes with ``--console``."""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from reconciler.console import readers, security
from reconciler.console.app import ConsoleApp, make_app
from reconciler.core.errors import RedbeatError
from reconciler.core.exit_codes import ExitCode
from redbeat.redaction import redact_text

logger = logging.getLogger("reconciler.console")

#: Where ``redbeat-apply console`` listens unless told otherwise: loopback only.
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9186


class ConsoleServer:
    """The app on a threaded WSGI server in a daemon thread, until :meth:`close`."""

    def __init__(self, app: ConsoleApp, host: str, port: int) -> None:
        # We bind the socket ourselves: Werkzeug, binding it, prints a bare "Address already in use" and exits.
        listener = bind(host, port)
        try:
            self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, fd=listener.fileno())
        finally:
            listener.close()  # the server holds its own duplicate of the descriptor
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


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; OSError (in use, no such address, name unknown) as is."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart reuses a port in TIME_WAIT
        listener.bind((host, port))
        listener.listen(128)
    except BaseException:
        listener.close()
        raise
    return listener


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as given to ``--listen``) is this machine's loopback only."""
    return host in security.LOOPBACK_NAMES or host.startswith("127.")


def exposure_warnings(host: str, port: int, token: bool, token_file: Path | None) -> list[str]:
    """What an operator should hear about who can reach the console (the command's and the sidecar's)."""
    warnings = []
    if not is_loopback(host):
        exposed = "every host that can reach this address can read every schedule"
        if token:
            exposed += ("; the admin token and the session cookie travel unencrypted (plain HTTP): "
                        "put a TLS proxy in front")
        warnings.append(f"--listen {host}:{port} is not loopback: {exposed}")
    if token_file is not None:
        warnings += security.token_file_warnings(token_file)
    return warnings


def startup_warnings(settings: Settings, app: ConsoleApp) -> list[str]:
    """What an operator should hear before trusting the console: exposure on the network, an unreachable Redis."""
    warnings = exposure_warnings(settings.host, settings.port, bool(app.token), settings.token_file)
    try:
        app.ctx.target.client.ping()
    except Exception as exc:  # RedisError, or a cluster error: the pages will say the same until Redis is back
        warnings.append(redact_text(f"Redis is not reachable now ({exc}); the pages answer 503 until it is"))
    return warnings


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
    from reconciler.sync.reconcile import connect, load

    token = security.load_token(settings.token_file, dict(environ))  # a TokenError is a RedbeatError
    target = connect(settings.redis_url, settings.key_prefix)
    manifests = readers.ManifestFiles(settings.paths, _loader(load)) if settings.paths else None
    return make_app(target, manifests=manifests, token=token, loopback_only=is_loopback(settings.host))


def _loader(load: Callable[..., Any]) -> Callable[[Sequence[Path]], Any]:
    return lambda paths: load(paths, allow_empty=True)


def _warn(text: str) -> None:
    print(f"redbeat-apply console: warning: {text}", file=sys.stderr, flush=True)


def run(settings: Settings, environ: Mapping[str, str], say: Callable[[str], None],
        warn: Callable[[str], None] = _warn) -> ExitCode:
    """Serve until SIGTERM or SIGINT; OK then.  ``say`` prints the URL and what is on, ``warn`` each
    :func:`startup_warnings`."""
    app = build(settings, environ)
    try:
        server = ConsoleServer(app, settings.host, settings.port)
    except OSError as exc:
        address = f"[{settings.host}]" if ":" in settings.host else settings.host
        why = "the port is in use (another console?)" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise RedbeatError(f"cannot listen on {address}:{settings.port}: {why}") from None
    for text in startup_warnings(settings, app):
        warn(text)
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
    return ExitCode.OK
