"""Masking of values whose key looks like a secret, in every output and log line."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# Whole words inside a key: "password", "db_password", "apiToken", "X-Auth-Token", "private_key".
# "routing_key" and "key_prefix" are not secrets; a bare "key" is.
_SECRET = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|signing[_-]?key"
    r"|credentials?|auth(orization)?|cookie|session[_-]?id|^key$|dsn)",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET.search(str(key)))


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


def redact_url(url: str) -> str:
    """A Redis URL with its password replaced, for printing."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1" + MASK + "@", url)
