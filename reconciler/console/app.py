"""The console's HTTP layer: routes, request parsing, responses and their security headers (a WSGI app).

Thin: each route parses its query, asks :mod:`pages` for the model and renders a template (Jinja2 with
autoescaping on for every template) or the same model as JSON.  GET routes only read; the only routes that
write are the POSTs under ``/actions/``, and only with the admin token (a signed-in session plus its CSRF
token, or ``Authorization: Bearer``), see :mod:`reconciler.console.security`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from redis.exceptions import ReadOnlyError, RedisClusterException, RedisError
from werkzeug.exceptions import BadRequest, HTTPException, NotFound
from werkzeug.routing import Map, MapAdapter, Rule
from werkzeug.wrappers import Request, Response

from reconciler.console import pages, readers, security, words
from reconciler.console.actions import Action, actor, perform
from reconciler.core.errors import RedbeatError, StateError
from redbeat.redaction import redact_text

logger = logging.getLogger("reconciler.console")

#: What a finished action says on the entry page (the URL carries only the key: no text from a URL is shown).
DONE_WORDS = {"trigger": "Run requested: the leading beat sends it once.", "pause": "Paused.", "resume": "Resumed."}
STATIC = {"console.css": "text/css; charset=utf-8"}
#: The largest request body read (bytes): an action form is a name, a note of 500 characters and a time.
MAX_BODY = 64 * 1024


class _Request(Request):
    max_content_length = MAX_BODY  # a larger body is a 413, not megabytes parsed into a form
    max_form_memory_size = MAX_BODY

#: (path, endpoint, methods); a fresh Map of Rules per app (a Rule belongs to one Map).
_ROUTES = [
    ("/", "index", ["GET"]),
    ("/schedules", "schedules", ["GET"]),
    ("/timeline", "timeline", ["GET"]),
    ("/entry", "entry", ["GET"]),
    ("/activity", "activity", ["GET"]),
    ("/health", "health", ["GET"]),
    ("/api/status", "api_status", ["GET"]),
    ("/api/history", "api_history", ["GET"]),
    ("/api/audit", "api_audit", ["GET"]),
    ("/static/<file>", "static", ["GET"]),
    ("/login", "login", ["GET", "POST"]),
    ("/logout", "logout", ["POST"]),
    ("/actions/<action>", "action", ["POST"]),
]


def _json(document: Any, status: int = 200) -> Response:
    return Response(json.dumps(document, indent=2, ensure_ascii=False) + "\n", status,
                    mimetype="application/json")


class ConsoleApp:
    """The WSGI application; ``token`` None turns every action off."""

    def __init__(self, ctx: pages.Context, token: str | None, *, clock: Callable[[], float] = time.time,
                 loopback_only: bool = False) -> None:
        self.ctx, self.token, self.clock, self.loopback_only = ctx, token, clock, loopback_only
        self.url_map = Map([Rule(path, endpoint=endpoint, methods=methods) for path, endpoint, methods in _ROUTES],
                           strict_slashes=False)
        self.env = Environment(loader=PackageLoader("reconciler.console", "templates"),
                               autoescape=select_autoescape(default=True, default_for_string=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters["qs"] = lambda params: urlencode(params)
        self.env.filters["at"] = _at

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = _Request(environ)
        response = self.respond(request)
        for name, value in security.SECURITY_HEADERS:
            response.headers[name] = value
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        if self.loopback_only and not security.loopback_host(request.host):
            return self._error(request, adapter, 403, "this console listens on loopback only: open it as "
                               "http://127.0.0.1:PORT/ (another host name is refused: DNS rebinding)")
        try:
            endpoint, values = adapter.match()
            handler: Callable[..., Response] = getattr(self, f"_{endpoint}")
            return handler(request, adapter, **values)
        except HTTPException as exc:
            return self._error(request, adapter, exc.code or 500, exc.description or exc.name)
        except ReadOnlyError:
            return self._error(request, adapter, 503, "Redis is a read-only replica: the console can show it but "
                               "not act on it; point --redis-url at the primary. Nothing was written")
        except (RedisError, RedisClusterException) as exc:
            return self._error(request, adapter, 503, redact_text(f"Redis: {exc}"))
        except StateError as exc:  # Redis holds what redbeat never writes: the upstream's fault, not the request's
            return self._error(request, adapter, 502, redact_text(str(exc)))
        except RedbeatError as exc:
            return self._error(request, adapter, 400, redact_text(str(exc)))
        except UnicodeDecodeError as exc:  # the client decodes every reply as UTF-8
            return self._error(request, adapter, 502, f"Redis holds bytes that are not UTF-8 text ({exc.reason} at "
                               f"{exc.object[:40]!r}); the console shows text only: find the key with redis-cli")
        except Exception:  # never a traceback to the browser; the log has it
            logger.exception("console: unexpected error on %s", request.path)
            return self._error(request, adapter, 500, "internal error; the console's log has the details")

    # --- rendering -------------------------------------------------------------------------------

    def _session(self, request: Request) -> security.Session | None:
        if self.token is None:
            return None
        return security.read_cookie(self.token, request.cookies.get(security.COOKIE_NAME), self.clock())

    def _render(self, request: Request, adapter: MapAdapter, template: str, code: int = 200,
                **model: Any) -> Response:
        session = self._session(request)
        model.setdefault("nav", "")
        html = self.env.get_template(template).render(
            url=adapter.build, actions=self.token is not None, session=session,
            csrf=security.csrf_token(self.token, session) if self.token and session else "",
            here=request.full_path, **model)
        return Response(html, code, mimetype="text/html")

    def _error(self, request: Request, adapter: MapAdapter, status: int, message: str) -> Response:
        if request.path.startswith("/api/") or request.args.get("o") == "json" or _bearer(request) is not None:
            return _json({"error": message}, status)
        return self._render(request, adapter, "error.html", status, status=status, message=message,
                            back=_acted_on(request))

    # --- read-only pages -------------------------------------------------------------------------

    def _index(self, request: Request, adapter: MapAdapter) -> Response:
        return Response(status=303, headers={"Location": adapter.build("schedules")})

    def _schedules(self, request: Request, adapter: MapAdapter) -> Response:
        query = pages.parse_query(request.args)
        if request.args.get("o") == "json":
            return _json(pages.status_json(self.ctx, query))
        return self._render(request, adapter, "schedules.html", nav="schedules", **pages.schedules(self.ctx, query))

    def _timeline(self, request: Request, adapter: MapAdapter) -> Response:
        model = pages.timeline_page(self.ctx, pages.parse_query(request.args))
        return self._render(request, adapter, "timeline.html", nav="timeline", **model)

    def _entry(self, request: Request, adapter: MapAdapter) -> Response:
        name = request.args.get("name", "")
        if request.args.get("o") == "json":
            return _json(pages.history_json(self.ctx, name, request.args.get("since")))
        model = pages.entry(self.ctx, name)
        if model is None:
            shown = name if len(name) <= 200 else name[:200] + "…"
            raise NotFound(f"no entry named {shown!r} in Redis or the manifests")
        done = DONE_WORDS.get(request.args.get("done", ""))
        return self._render(request, adapter, "entry.html", nav="schedules", name=name, done=done, **model)

    def _activity(self, request: Request, adapter: MapAdapter) -> Response:
        if request.args.get("o") == "json":
            return self._api_audit(request, adapter)
        return self._render(request, adapter, "activity.html", nav="activity", **pages.activity(self.ctx))

    def _health(self, request: Request, adapter: MapAdapter) -> Response:
        model = pages.health(self.ctx)
        if request.args.get("o") == "json":
            return _json(model)
        return self._render(request, adapter, "health.html", nav="health", **model)

    def _api_status(self, request: Request, adapter: MapAdapter) -> Response:
        return _json(pages.status_json(self.ctx, pages.parse_query(request.args)))

    def _api_history(self, request: Request, adapter: MapAdapter) -> Response:
        return _json(pages.history_json(self.ctx, request.args.get("name") or None, request.args.get("since")))

    def _api_audit(self, request: Request, adapter: MapAdapter) -> Response:
        from reconciler.operating import audit

        limit_text = request.args.get("limit", "").strip()
        limit = int(limit_text) if limit_text.isdigit() and len(limit_text) <= 6 else None
        if limit_text and (limit is None or limit < 1):  # Redis refuses a count of 0: not Redis's fault
            raise BadRequest(f"limit: {limit_text[:20]!r} is not a whole number from 1 to 999999")
        return _json(audit.document(readers.read_audit(self.ctx.target.client, self.ctx.target.keys, limit)))

    def _static(self, request: Request, adapter: MapAdapter, file: str) -> Response:
        from importlib.resources import files

        if file not in STATIC:
            raise NotFound("no such file")
        body = files("reconciler.console").joinpath("static").joinpath(file).read_bytes()
        response = Response(body, mimetype=STATIC[file].split(";")[0])
        response.headers["Content-Type"] = STATIC[file]
        return response

    # --- sign-in and actions ---------------------------------------------------------------------

    def _login(self, request: Request, adapter: MapAdapter) -> Response:
        if self.token is None:
            return self._error(request, adapter, 403, "actions are off: start the console with an admin token "
                               f"(--console-token-file or ${security.TOKEN_ENV})")
        if request.method == "GET":
            return self._render(request, adapter, "login.html", nav="", failed=False)
        if not _same_origin(request):
            return self._error(request, adapter, 403, "cross-site sign-in refused")
        if not security.token_matches(self.token, request.form.get("token")):
            time.sleep(0.5)  # slows guessing; the token is long anyway
            return self._render(request, adapter, "login.html", 403, nav="", failed=True)
        response = Response(status=303, headers={"Location": adapter.build("schedules")})
        response.set_cookie(security.COOKIE_NAME, security.new_cookie(self.token, request.form.get("name", ""),
                            self.clock()), max_age=security.SESSION_SECONDS, httponly=True, samesite="Strict",
                            secure=request.scheme == "https", path="/")
        return response

    def _logout(self, request: Request, adapter: MapAdapter) -> Response:
        response = Response(status=303, headers={"Location": adapter.build("schedules")})
        response.delete_cookie(security.COOKIE_NAME, path="/", httponly=True, samesite="Strict")
        return response

    def _authorised(self, request: Request) -> str:
        """The operator's name when the request may act; raises _Refused (403) otherwise."""
        if self.token is None:
            raise _Refused("actions are off: start the console with an admin token "
                           f"(--console-token-file or ${security.TOKEN_ENV})")
        bearer = _bearer(request)
        if bearer is not None:
            if not security.token_matches(self.token, bearer):
                raise _Refused("wrong admin token")
            return "api"
        session = self._session(request)
        if session is None:
            raise _Refused("sign in with the admin token first")
        if not _same_origin(request) or not security.csrf_matches(self.token, session, request.form.get("csrf")):
            raise _Refused("the form's CSRF token does not match this session; reload the page and try again")
        return session.name

    def _action(self, request: Request, adapter: MapAdapter, action: str) -> Response:
        try:
            kind = Action(action)
        except ValueError:
            raise NotFound(f"no action {action!r}") from None
        try:
            who = self._authorised(request)
        except _Refused as exc:
            return self._error(request, adapter, 403, str(exc))
        name = request.form.get("name", "")
        by = actor(who, readers.actor_host())
        message = perform(self.ctx.target, kind, name, request.form, by, datetime.now(timezone.utc))
        self.ctx.cache.update(name)
        if _bearer(request) is not None:
            return _json({"ok": True, "message": message})
        location = adapter.build("entry") + "?" + urlencode({"name": name, "done": kind.value})
        return Response(status=303, headers={"Location": location})


def _at(iso: Any, zone: Any = None) -> str:
    """Template filter: an ISO time from Redis as ``Dec 4, 00:00 CET`` in ``zone``; the text itself when it is
    not an ISO time (the page shows what Redis holds), ``-`` for none."""
    moment = words.parse_iso(iso)
    if moment is None:
        return str(iso) if iso else "-"
    return words.compact_time(moment, zone, datetime.now(timezone.utc))


class _Refused(Exception):
    pass


def _acted_on(request: Request) -> str | None:
    """The entry a refused action form named (its page is where the operator goes back to), or None."""
    if request.method != "POST" or not request.path.startswith("/actions/"):
        return None
    try:
        name = request.form.get("name")
    except HTTPException:  # the body itself was refused (413): nothing to read
        return None
    return name or None


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None  # the scheme is case-insensitive (RFC 9110)


def _same_origin(request: Request) -> bool:
    return security.same_origin(request.headers.get("Origin"), request.host, request.scheme)


def make_app(target: Any, *, manifests: readers.Manifests | None = None, token: str | None = None,
             sidecar: Callable[[], Mapping[str, Any]] | None = None,
             max_age: float = readers.SNAPSHOT_MAX_AGE, max_stale: float = readers.SNAPSHOT_MAX_STALE,
             loopback_only: bool = False) -> ConsoleApp:
    """The console over ``target`` (a :class:`reconciler.sync.reconcile.Target`); ``loopback_only``: answer only
    requests addressed to a loopback name (set when it listens on loopback)."""
    cache = readers.SnapshotCache(target, manifests, max_age, max_stale)
    return ConsoleApp(pages.Context(target, cache, sidecar), token, loopback_only=loopback_only)
