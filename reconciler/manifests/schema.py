"""The manifest JSON Schema (``schemas/redbeat-manifest.schema.json``) and its errors.

The schema file is the single source of truth for the shape of a manifest.
Documents are checked with ``jsonschema`` (draft 2020-12) and every error is
turned into a :class:`ManifestError` at the right node: a missing field at the
mapping that lacks it, an unknown field at the key itself, anything else at
the value; misspelt keys and enum values get a "did you mean" hint.

``jsonschema`` is thorough but slow (about 60 µs a schedule), so
:func:`compile_schema` also builds a plain-Python predicate from the same
schema for the keywords it uses; a document the predicate accepts has no
errors, and only a rejected one is handed to ``jsonschema`` for the messages.
A keyword the compiler does not know makes it give up (``None``), so the
schema can grow without the fast path silently accepting too much.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

import reconciler
from reconciler.core.errors import ManifestError

if TYPE_CHECKING:
    from reconciler.manifests.loader import Document

SCHEMA_NAME = "redbeat-manifest.schema.json"
KINDS = ("cron", "crontab", "every", "rrule", "at")

Predicate = Callable[[Any], bool]


def schema_text() -> str:
    """The schema file's text: from the source checkout, else from the installed package."""
    source = Path(reconciler.__file__).resolve().parent.parent / "schemas" / SCHEMA_NAME
    if source.is_file():
        return source.read_text(encoding="utf-8")
    return importlib.resources.files("reconciler.schemas").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")


@functools.cache
def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_text())
    return schema


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@functools.cache
def _fast() -> Predicate | None:
    return compile_schema(load_schema())


# --- the fast predicate -------------------------------------------------------

_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "examples", "default"}


def _is_type(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "number":
        return isinstance(value, (int, float))
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    raise ValueError(name)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Unsupported(Exception):
    pass


def compile_schema(root: Mapping[str, Any]) -> Predicate | None:
    """A predicate equivalent to validating against ``root``, or None if it uses unknown keywords."""
    cache: dict[str, Predicate] = {}

    def ref(target: str) -> Predicate:
        if not target.startswith("#/$defs/"):
            raise _Unsupported(target)
        name = target[len("#/$defs/") :]
        if name not in cache:
            cache[name] = lambda value: cache[name + "!"](value)
            cache[name + "!"] = build(root["$defs"][name])
        return cache[name]

    def build(schema: Mapping[str, Any]) -> Predicate:  # noqa: C901 - one branch per keyword
        # Callable[..., bool]: each check binds its keyword's argument as a lambda default (v, n=arg), which
        # mypy cannot match against Predicate's one parameter; every check is still called with one value.
        checks: list[Callable[..., bool]] = []
        for keyword, arg in schema.items():
            if keyword in _ANNOTATIONS or keyword.startswith("x-") or keyword in ("then", "else"):
                continue
            if keyword == "$ref":
                checks.append(ref(arg))
            elif keyword == "type":
                names = [arg] if isinstance(arg, str) else list(arg)
                checks.append(lambda v, names=names: any(_is_type(v, n) for n in names))
            elif keyword == "properties":
                props = {k: build(s) for k, s in arg.items()}
                checks.append(
                    lambda v, props=props: not isinstance(v, dict)
                    or all(check(v[k]) for k, check in props.items() if k in v)
                )
            elif keyword == "additionalProperties":
                if arg is True:
                    continue
                if arg is not False:
                    raise _Unsupported(keyword)
                allowed = frozenset(schema.get("properties", {}))
                checks.append(lambda v, allowed=allowed: not isinstance(v, dict) or allowed.issuperset(v))
            elif keyword == "required":
                required = tuple(arg)
                checks.append(lambda v, required=required: not isinstance(v, dict) or all(n in v for n in required))
            elif keyword == "dependentRequired":
                deps = {k: tuple(n) for k, n in arg.items()}
                checks.append(
                    lambda v, deps=deps: not isinstance(v, dict)
                    or all(all(n in v for n in need) for k, need in deps.items() if k in v)
                )
            elif keyword == "enum":
                if not all(isinstance(e, str) for e in arg):
                    raise _Unsupported(keyword)
                options = frozenset(arg)
                checks.append(lambda v, options=options: isinstance(v, str) and v in options)
            elif keyword == "pattern":
                regex = re.compile(arg)
                checks.append(lambda v, regex=regex: not isinstance(v, str) or regex.search(v) is not None)
            elif keyword == "minLength":
                checks.append(lambda v, n=arg: not isinstance(v, str) or len(v) >= n)
            elif keyword == "maxLength":
                checks.append(lambda v, n=arg: not isinstance(v, str) or len(v) <= n)
            elif keyword == "minItems":
                checks.append(lambda v, n=arg: not isinstance(v, list) or len(v) >= n)
            elif keyword == "minimum":
                checks.append(lambda v, n=arg: not _is_number(v) or v >= n)
            elif keyword == "maximum":
                checks.append(lambda v, n=arg: not _is_number(v) or v <= n)
            elif keyword == "exclusiveMinimum":
                checks.append(lambda v, n=arg: not _is_number(v) or v > n)
            elif keyword == "items":
                item = build(arg)
                checks.append(lambda v, item=item: not isinstance(v, list) or all(item(i) for i in v))
            elif keyword == "anyOf":
                subs = [build(s) for s in arg]
                checks.append(lambda v, subs=subs: any(s(v) for s in subs))
            elif keyword == "oneOf":
                subs = [build(s) for s in arg]
                checks.append(lambda v, subs=subs: sum(1 for s in subs if s(v)) == 1)
            elif keyword == "if":
                cond = build(arg)
                then = build(schema.get("then", {}))
                other = build(schema.get("else", {}))
                checks.append(lambda v, c=cond, t=then, o=other: t(v) if c(v) else o(v))
            else:
                raise _Unsupported(keyword)
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(check(v) for check in checks)

    try:
        return build(root)
    except _Unsupported:
        return None


# --- errors -------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def did_you_mean(word: object, options: Sequence[str]) -> str | None:
    if not isinstance(word, str):
        return None
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if not close:
        lowered = [o for o in options if o.lower() == word.lower()]
        close = lowered[:1]
    return f"did you mean '{close[0]}'?" if close else None


def _translate(document: Document, error: jsonschema.ValidationError) -> list[ManifestError]:  # noqa: C901
    path = tuple(error.absolute_path)
    kind = error.validator
    value: Any = error.instance
    # jsonschema types these for errors made outside validation too (Unset); an error from validation carries
    # the instance, the (sub)schema mapping and its keyword's JSON value, each of any JSON type.
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    expected: Any = error.validator_value
    if kind == "required":
        missing = [n for n in expected if isinstance(value, dict) and n not in value]
        errors = []
        for name in missing or list(expected)[:1]:
            hint = None
            if name == "task" and len(path) == 2 and path[0] == "schedules":
                hint = "set it in the schedule, or once for all schedules in defaults.task"
            errors.append(document.error(path, f"missing required field '{name}'", hint, at="mapping"))
        return errors
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        errors = []
        for key in value if isinstance(value, dict) else ():
            if key in allowed:
                continue
            if path and path[-1] == "defaults" and key in (*KINDS, "name", "relative"):
                message, hint = f"'{key}' cannot be set in defaults", "set it in each schedule"
            else:
                message, hint = f"unknown field '{key}'", did_you_mean(key, allowed)
            errors.append(document.error((*path, key), message, hint, at="key"))
        return errors
    if kind == "oneOf" and all(set(s) == {"required"} for s in expected):
        if not isinstance(value, dict):
            return []  # the type error says it
        names = [s["required"][0] for s in expected]
        present = [n for n in names if isinstance(value, dict) and n in value]
        choices = ", ".join(names)
        if not present:
            return [document.error(path, f"a schedule needs one of {choices}", at="mapping")]
        found = " and ".join(present)
        return [document.error((*path, present[1]), f"only one of {choices} may be set (found {found})", at="key")]
    if kind == "dependentRequired":
        errors = []
        for key, needs in expected.items():
            if key in value and any(n not in value for n in needs):
                message = f"'{key}' only applies to an '{' or '.join(needs)}' schedule"
                errors.append(document.error((*path, key), message, at="key"))
        return errors
    if kind == "type":
        wanted: list[str] = expected if isinstance(expected, list) else [expected]
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
        if not path:
            return [
                document.error(
                    path,
                    "a manifest document must be a mapping (one schedule, or defaults and schedules), "
                    f"got {_json_type(value)}",
                )
            ]
        got = _json_type(value)
        if value is not None and not isinstance(value, (dict, list)):
            got += f" {_short(value)}"
        return [document.error(path, f"expected {words}, got {got}")]
    if kind == "enum":
        options = [str(o) for o in expected]
        return [
            document.error(path, f"{_short(value)} is not one of {', '.join(options)}", did_you_mean(value, options))
        ]
    if kind == "pattern":
        message = schema.get("x-pattern-message") or f"does not match {expected!r}"
        return [document.error(path, f"{_short(value)}: {message}")]
    why = f" ({schema['x-maximum-message']})" if kind == "maximum" and "x-maximum-message" in schema else ""
    if kind in ("minimum", "maximum") and "minimum" in schema and "maximum" in schema:
        return [document.error(path, f"{_short(value)} is out of range {schema['minimum']}-{schema['maximum']}{why}")]
    if kind == "minimum":
        return [document.error(path, f"{_short(value)} is below the minimum {expected}")]
    if kind == "maximum":
        return [document.error(path, f"{_short(value)} is above the maximum {expected}{why}")]
    if kind == "exclusiveMinimum":
        return [document.error(path, f"{_short(value)}: must be greater than {expected}")]
    if kind in ("minLength", "minItems"):
        return [document.error(path, "must not be empty")]
    if kind == "maxLength":
        return [document.error(path, f"is {len(value)} characters long; at most {expected}")]
    return [document.error(path, error.message)]


@dataclass
class SchemaResult:
    """Schema errors of one document, and which of its schedules they concern.

    ``broken`` is None when the document as a whole is unusable (an error
    outside ``schedules[i]``), else the indexes of the schedules with errors;
    the other schedules can still go through the semantic checks.
    """

    errors: list[ManifestError] = field(default_factory=list)
    broken: set[int] | None = field(default_factory=set)


def check(document: Document) -> SchemaResult:
    """Every schema error of one document."""
    result = SchemaResult()
    fast = _fast()
    if fast is not None and fast(document.data):
        return result
    for error in _validator().iter_errors(document.data):
        result.errors.extend(_translate(document, error))
        path = list(error.absolute_path)
        if len(path) >= 2 and path[0] == "schedules" and isinstance(path[1], int):
            if result.broken is not None:
                result.broken.add(path[1])
        else:
            result.broken = None
    return result


def check_document(document: Document) -> list[ManifestError]:
    """Every schema error of one document (empty when it is valid)."""
    return check(document).errors


def check_value(data: Any) -> list[str]:
    """Schema error messages of a plain value (for tests and tools; no locations)."""
    return [e.message for e in _validator().iter_errors(data)]
