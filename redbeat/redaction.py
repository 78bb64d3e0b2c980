"""Masking of secrets in every output and log line: secret-looking keys' values and URL credentials.

Two jobs, one module, so every component (beat's start-up banner and
warnings, plans, status, watch logs, error messages, migrate-django) masks the
same way; it lives in ``redbeat`` because beat prints URLs too and ``redbeat``
never imports ``reconciler``:

* :func:`redact` / :func:`is_secret_key`: the values of mapping keys that name a
  secret (``db_password``, ``apiToken``, ``X-Auth-Token``), decided on whole
  words of the key so ``author``, ``token_count`` or ``bypass_cache`` stay visible;
* :func:`redact_url` / :func:`redact_text`: the credentials inside a URL
  (userinfo, ``password=``-like query arguments) in every URL form redbeat
  accepts, including Sentinel lists and cluster host lists.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

#: A key is a secret when its last word is one of these ("db_password", "apiToken", "X-Auth-Token") ...
_SECRET_NOUNS = frozenset({
    "password", "passwd", "passphrase", "pass", "pwd", "secret", "token", "credential", "credentials",
    "authorization", "auth", "cookie", "dsn", "apikey", "sessionid", "privatekey",
})  # fmt: skip
#: ... or its last two words are one of these ("api_key", "X-Api-Key", "aws_secret_access_key").
_SECRET_PAIRS = frozenset({
    ("api", "key"), ("access", "key"), ("private", "key"), ("signing", "key"), ("secret", "key"),
    ("encryption", "key"), ("master", "key"), ("auth", "key"), ("session", "id"), ("client", "secret"),
})  # fmt: skip
#: Words of a key: split on any non-alphanumeric and camelCase ("XAuthToken" -> X, Auth, Token; "APIKey" -> API, Key).
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def key_words(key: str) -> list[str]:
    """The lower-case words of ``key``: ``"X-Auth-Token"`` -> ``["x", "auth", "token"]``."""
    return [word.lower() for word in _WORD.findall(str(key))]


def is_secret_key(key: str) -> bool:
    """True when the key names a secret: its last word, or last two words, say so; a bare ``key`` does too."""
    words = key_words(key)
    if not words:
        return False
    if words == ["key"] or words[-1] in _SECRET_NOUNS:
        return True
    return len(words) >= 2 and (words[-2], words[-1]) in _SECRET_PAIRS


def is_secret_path(path: str) -> bool:
    """A flattened field path such as ``kwargs.db_password`` or ``options.headers.Authorization``."""
    parts = path.split(".")
    return any(is_secret_key(part) for part in parts[1:]) if parts[0] in ("kwargs", "options") else False


def redact(value: Any) -> Any:
    """``value`` with every secret-looking mapping key's value replaced by ``***``, at any depth."""
    if isinstance(value, dict):
        return {k: (MASK if is_secret_key(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


# --- URLs -----------------------------------------------------------------------------

#: A query (or Celery-style ;-separated) argument: ``?password=x``, ``&sentinel_password=x``.
_QUERY_ARG = re.compile(r"(?P<lead>[?&])(?P<name>[^=&#;?]+)=(?P<value>[^&#;]*)")
#: A URL inside free text (an error message, a log line).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _mask_query(rest: str) -> str:
    def mask(match: re.Match[str]) -> str:
        if not is_secret_key(match["name"]):
            return match[0]
        return f"{match['lead']}{match['name']}={MASK}"

    return _QUERY_ARG.sub(mask, rest)


def _redact_one(url: str) -> str:
    """One ``scheme://[userinfo@]hosts[/path][?query]`` URL with its credentials masked."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _mask_query(url)
    # The userinfo ends at the last '@' before the query: an unencoded '/', '#' or '@' in a
    # password must not make the rest of it visible, so search the whole authority+path.
    query_at = rest.find("?")
    authority = rest if query_at < 0 else rest[:query_at]
    at = authority.rfind("@")
    if at >= 0:
        userinfo, _, after = rest[:at], "@", rest[at + 1 :]
        user, colon, _password = userinfo.partition(":")
        shown = f"{user}:{MASK}" if colon else MASK
        rest = f"{shown}@{after}"
    return f"{scheme}://{_mask_query(rest)}"


def redact_url(url: str) -> str:
    """``url`` with every credential masked: userinfo, ``password=``-like query arguments, in each
    part of a Celery ``sentinel://h1;sentinel://h2`` list.  Never raises; over-masks when unsure."""
    return ";".join(_redact_one(part) for part in str(url).split(";"))


def redact_text(text: str) -> str:
    """``text`` (an error message, a log line) with every URL in it passed through :func:`redact_url`."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match[0]), str(text))
