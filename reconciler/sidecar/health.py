"""HTTP for probes and scrapes: ``/healthz``, ``/readyz`` and ``/metrics``.

A stdlib ``ThreadingHTTPServer`` in a daemon thread; the watch loop writes a
:class:`Status` and the handlers only read it, so a slow scrape never delays
an apply.

* ``/healthz``: 200 while the loop is alive (it has gone round within
  ``stall_after`` seconds); 503 when it is stuck, e.g. on a Redis socket that
  never answers, so the kubelet restarts the container.
* ``/readyz``: 200 when the manifests are valid and the last apply succeeded;
  503 with the reason otherwise.
* ``/metrics``: the Prometheus text format.

With ``--console`` every other path goes to the web console's WSGI app (``wsgi_app``), on the same port.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, cast

from prometheus_client import CONTENT_TYPE_LATEST

DEFAULT_LISTEN = "127.0.0.1:9185"
PROBES = ("/healthz", "/readyz", "/metrics")
#: A WSGI application (the console): environ, start_response -> body.
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> Listen:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (loopback); raises ValueError."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:9185 or 0.0.0.0:9185")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return Listen(host or "127.0.0.1", int(port_text))


class Status:
    """What the probes report; written by the loop, read by the HTTP threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, stall_after: float = 120.0) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.stall_after = stall_after
        self._manifest_problem: str | None = "manifests not loaded yet"
        self._apply_problem: str | None = "no apply yet"
        self._beat = clock()

    def heartbeat(self) -> None:
        with self._lock:
            self._beat = self._clock()

    def manifests(self, problem: str | None) -> None:
        with self._lock:
            self._manifest_problem = problem

    def apply(self, problem: str | None) -> None:
        with self._lock:
            self._apply_problem = problem

    def live(self) -> tuple[bool, str]:
        with self._lock:
            idle = self._clock() - self._beat
        if idle > self.stall_after:
            return False, f"the watch loop has not run for {idle:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            problems = [p for p in (self._manifest_problem, self._apply_problem) if p]
        return (not problems, "; ".join(problems) or "ok")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._probe(*self.server.status.live())
        elif path == "/readyz":
            self._probe(*self.server.status.ready())
        elif path == "/metrics":
            self._send(200, self.server.render_metrics(), CONTENT_TYPE_LATEST)
        elif self.server.wsgi_app is not None:
            self._wsgi(self.server.wsgi_app)
        else:
            self._send(404, b"not found: try /healthz, /readyz or /metrics\n", "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_POST()

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if self.server.wsgi_app is not None and path not in PROBES:
            self._wsgi(self.server.wsgi_app)
        else:
            self._send(405, b"method not allowed\n", "text/plain; charset=utf-8")

    def _wsgi(self, app: WSGIApp) -> None:
        """Hand the request to the console's WSGI app (stdlib wsgiref writes the response)."""
        from wsgiref.simple_server import ServerHandler

        output = cast(IO[bytes], self.wfile)  # a socket file; typeshed names it BufferedIOBase
        handler = ServerHandler(self.rfile, output, sys.stderr, self._environ(), multithread=True)
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's close() logs through it
        handler.run(app)

    def _environ(self) -> dict[str, str]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "", "QUERY_STRING": query,
            "PATH_INFO": urllib.parse.unquote(path, "iso-8859-1"), "SERVER_NAME": str(host),
            "SERVER_PORT": str(port), "SERVER_PROTOCOL": self.request_version, "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": self.headers.get("Content-Length", ""),
        }
        for name in self.headers:
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = ",".join(self.headers.get_all(name) or [])
        return environ

    def _probe(self, ok: bool, reason: str) -> None:
        self._send(200 if ok else 503, (reason + "\n").encode(), "text/plain; charset=utf-8")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Probes every few seconds would drown the log; say nothing."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, listen: Listen, status: Status, render_metrics: Callable[[], bytes],
                 wsgi_app: WSGIApp | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        self.status = status
        self.render_metrics = render_metrics
        self.wsgi_app = wsgi_app
        super().__init__((listen.host, listen.port), _Handler)


class HealthServer:
    """Serves the probes and metrics (and the console's ``wsgi_app``, when given) in a daemon thread until
    :meth:`close`."""

    def __init__(self, listen: Listen, status: Status, render_metrics: Callable[[], bytes],
                 wsgi_app: WSGIApp | None = None) -> None:
        # binds now: an OSError names the address in use
        self._server = _Server(listen, status, render_metrics, wsgi_app)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="redbeat-apply-http", daemon=True)

    @property
    def address(self) -> Listen:
        host, port = self._server.server_address[:2]
        return Listen(str(host), int(port))

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=1)
