"""The console's admin token, its session cookie and CSRF tokens, and the headers every response carries.

Actions (trigger, pause, resume) are off unless an admin token is configured.  A browser signs in once by
pasting the token; the console then sets an HttpOnly, SameSite=Strict cookie holding a random session id, the
name the operator gave (recorded as the actor in the audit stream), the time it was issued and an HMAC of the
three under the token.  Every action form carries a CSRF token, an HMAC of the session id, which a page of
another site cannot read.  Scripts may instead send ``Authorization: Bearer <token>`` (a header a cross-site
form cannot set, so no CSRF token is needed there).  Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from reconciler.core.errors import TokenError

#: The environment variable that may hold the admin token (``--console-token-file`` wins).
TOKEN_ENV = "REDBEAT_CONSOLE_TOKEN"
#: Shorter tokens are refused: a guessable token would turn every reachable console into a write API.
TOKEN_MIN_LENGTH = 16
#: A session lasts this long (seconds) before the token must be pasted again.
SESSION_SECONDS = 12 * 3600
COOKIE_NAME = "redbeat_console"
#: The operator name recorded in the audit stream: at most this long, printable characters only.
NAME_MAX = 64

#: Sent with every response.  No script at all; styles only from our own stylesheet; nothing external;
#: the console may not be framed (clickjacking) and forms post only to itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),  # not no-referrer: Chrome then sends "Origin: null" on our own forms
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)


def _checked(token: str, where: str) -> str:
    token = token.strip()
    if len(token) < TOKEN_MIN_LENGTH:
        raise TokenError(f"{where}: the console token must be at least {TOKEN_MIN_LENGTH} characters")
    if not token.isprintable() or any(char.isspace() for char in token):
        raise TokenError(f"{where}: the console token must be one line of printable characters without spaces")
    return token


def load_token(token_file: Path | None, environ: dict[str, str] | os._Environ[str]) -> str | None:
    """The admin token from ``token_file`` or ``$REDBEAT_CONSOLE_TOKEN``; None: actions off."""
    if token_file is not None:
        try:
            raw = token_file.read_bytes()
        except OSError as exc:
            raise TokenError(f"--console-token-file {token_file}: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise TokenError(f"--console-token-file {token_file}: not UTF-8 text") from None
        return _checked(text, f"--console-token-file {token_file}")
    value = environ.get(TOKEN_ENV)
    return _checked(value, f"${TOKEN_ENV}") if value else None


def token_file_warnings(token_file: Path) -> list[str]:
    """What is wrong with the token file's permissions: readable by other users of the machine."""
    try:
        mode = token_file.stat().st_mode
    except OSError:
        return []  # load_token has said why it cannot be read
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [f"--console-token-file {token_file} is readable by other users (mode {stat.S_IMODE(mode):o}): "
                f"anyone on this machine who reads it can act; chmod 600 it"]
    return []


def token_matches(token: str, offered: str | None) -> bool:
    return offered is not None and hmac.compare_digest(token.encode(), offered.strip().encode())


def _mac(token: str, *parts: str) -> str:
    message = "\0".join(parts).encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def clean_name(text: str) -> str:
    """The operator's name as recorded: printable characters, at most NAME_MAX; ``admin`` when none is left."""
    name = "".join(char for char in text if char.isprintable()).strip()[:NAME_MAX]
    return name or "admin"


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    name: str
    issued: int


def new_cookie(token: str, name: str, now: float) -> str:
    """The cookie value of a fresh session: ``id.name(base64).issued.mac``."""
    session_id = secrets.token_urlsafe(18)
    encoded = base64.urlsafe_b64encode(clean_name(name).encode()).decode().rstrip("=")
    issued = str(int(now))
    return ".".join((session_id, encoded, issued, _mac(token, "session", session_id, encoded, issued)))


def read_cookie(token: str, value: str | None, now: float) -> Session | None:
    """The session a cookie proves, or None (absent, forged, expired or malformed)."""
    if not value:
        return None
    parts = value.split(".")
    if len(parts) != 4:
        return None
    session_id, encoded, issued, mac = parts
    if not hmac.compare_digest(mac.encode(), _mac(token, "session", session_id, encoded, issued).encode()):
        return None
    try:
        name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        issued_at = int(issued)
    except (binascii.Error, ValueError):
        return None
    if not 0 <= now - issued_at <= SESSION_SECONDS:
        return None
    return Session(session_id, clean_name(name), issued_at)


def csrf_token(token: str, session: Session) -> str:
    return _mac(token, "csrf", session.id)


def csrf_matches(token: str, session: Session, offered: str | None) -> bool:
    return offered is not None and hmac.compare_digest(csrf_token(token, session).encode(), offered.encode())


#: Host names a browser uses for a console on loopback.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def loopback_host(host: str | None) -> bool:
    """Whether a ``Host`` header names this machine's loopback (``127.0.0.1:9186``, ``[::1]:9186``, ``localhost``).

    A console bound to loopback answers only such requests: a page of another site whose DNS name was
    re-pointed at 127.0.0.1 (DNS rebinding) sends its own name and is refused, so it cannot read the pages.
    """
    if not host:
        return False
    name = host[1:].partition("]")[0] if host.startswith("[") else host.rpartition(":")[0] or host
    return name.lower() in LOOPBACK_NAMES


def same_origin(origin: str | None, host: str | None, scheme: str) -> bool:
    """A browser's ``Origin`` header names this console (absent: not a cross-site browser request)."""
    if origin is None:
        return True
    return host is not None and origin == f"{scheme}://{host}"
