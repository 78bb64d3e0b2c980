"""The manifest JSON Schema (``schemas/redbeat-manifest.schema.json``) and its errors.

The schema file is the single source of truth for the shape of a manifest.
A document is first checked by ``jsonschema-rs``, the schema compiled once
into a validator written in Rust (about 2 µs a schedule); only a document it
rejects goes through ``jsonschema`` (draft 2020-12, about 60 µs a schedule),
whose errors are turned into :class:`ManifestError` at the right node: a
missing field at the mapping that lacks it, an unknown field at the key
itself, anything else at the value; misspelt keys and enum values get a "did
you mean" hint. ``jsonschema`` alone decides what is an error: a document the
fast validator rejects and ``jsonschema`` accepts (``jsonschema-rs`` reads
``$`` as the end of the text, Python's ``re`` also before a final newline;
``nan``, integer keys and lone surrogates cannot cross into Rust) is valid,
so the fast validator can only make a run quicker, never change its result.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs

import reconciler
from reconciler.core.errors import ManifestError
from reconciler.manifests.loader import Document

SCHEMA_NAME = "redbeat-manifest.schema.json"
KINDS = ("cron", "crontab", "every", "rrule", "at")


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


def _no_remote_schemas(uri: str) -> Any:
    raise ValueError(f"the manifest schema refers to {uri}; it must be self-contained")


@functools.cache
def _fast_validator() -> jsonschema_rs.Validator:
    # The same draft as _validator(), named rather than detected; the schema's references are all inside it.
    return jsonschema_rs.Draft202012Validator(load_schema(), retriever=_no_remote_schemas)


def is_known_valid(data: Any) -> bool:
    """True when the fast validator accepts ``data``: then ``jsonschema`` finds no error either.

    False means "ask jsonschema": so is any failure of the fast validator, such
    as a value Rust cannot take (an integer key, a lone surrogate) that raises
    while it is converted.
    """
    try:
        return _fast_validator().is_valid(data)
    except Exception:  # any failure here only means that the authoritative validator decides
        return False


def is_valid(data: Any) -> bool:
    """Whether ``data`` is a valid manifest document (a group, or one schedule with its task)."""
    return is_known_valid(data) or bool(_validator().is_valid(data))


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


@dataclass(frozen=True)
class _Failure:
    """One jsonschema error, as the messages below need it."""

    document: Document
    path: tuple[str | int, ...]
    value: Any  # the instance that failed
    schema: Mapping[str, Any]  # the (sub)schema holding the keyword
    expected: Any  # the keyword's value

    def at(self, message: str, hint: str | None = None, **where: Any) -> list[ManifestError]:
        return [self.document.error(self.path, message, hint, **where)]


def _required(f: _Failure) -> list[ManifestError]:
    missing = [n for n in f.expected if isinstance(f.value, dict) and n not in f.value]
    errors = []
    for name in missing or list(f.expected)[:1]:
        hint = None
        if name == "task" and len(f.path) == 2 and f.path[0] == "schedules":
            hint = "set it in the schedule, or once for all schedules in defaults.task"
        errors += f.at(f"missing required field '{name}'", hint, at="mapping")
    return errors


def _additional(f: _Failure) -> list[ManifestError]:
    allowed = list(f.schema.get("properties", {}))
    errors = []
    for key in f.value if isinstance(f.value, dict) else ():
        if key in allowed:
            continue
        hint: str | None
        if f.path and f.path[-1] == "defaults" and key in (*KINDS, "name", "relative"):
            message, hint = f"'{key}' cannot be set in defaults", "set it in each schedule"
        else:
            message, hint = f"unknown field '{key}'", did_you_mean(key, allowed)
        errors.append(f.document.error((*f.path, key), message, hint, at="key"))
    return errors


def _one_kind(f: _Failure) -> list[ManifestError] | None:
    """``oneOf`` of ``required`` alternatives (the schedule kinds); None for any other oneOf."""
    if not all(set(s) == {"required"} for s in f.expected):
        return None
    if not isinstance(f.value, dict):
        return []  # the type error says it
    names = [s["required"][0] for s in f.expected]
    present = [n for n in names if n in f.value]
    choices = ", ".join(names)
    if not present:
        return f.at(f"a schedule needs one of {choices}", at="mapping")
    found = " and ".join(present)
    where = (*f.path, present[1])
    return [f.document.error(where, f"only one of {choices} may be set (found {found})", at="key")]


def _dependent(f: _Failure) -> list[ManifestError]:
    errors = []
    for key, needs in f.expected.items():
        if key in f.value and any(n not in f.value for n in needs):
            message = f"'{key}' only applies to an '{' or '.join(needs)}' schedule"
            errors.append(f.document.error((*f.path, key), message, at="key"))
    return errors


def _type(f: _Failure) -> list[ManifestError]:
    wanted: list[str] = f.expected if isinstance(f.expected, list) else [f.expected]
    words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
    if not f.path:
        return f.at(
            "a manifest document must be a mapping (one schedule, or defaults and schedules), "
            f"got {_json_type(f.value)}"
        )
    got = _json_type(f.value)
    if f.value is not None and not isinstance(f.value, (dict, list)):
        got += f" {_short(f.value)}"
    return f.at(f"expected {words}, got {got}")


def _enum(f: _Failure) -> list[ManifestError]:
    options = [str(o) for o in f.expected]
    return f.at(f"{_short(f.value)} is not one of {', '.join(options)}", did_you_mean(f.value, options))


def _pattern(f: _Failure) -> list[ManifestError]:
    message = f.schema.get("x-pattern-message") or f"does not match {f.expected!r}"
    return f.at(f"{_short(f.value)}: {message}")


def _bound(f: _Failure, kind: str) -> list[ManifestError]:
    schema, value = f.schema, _short(f.value)
    why = f" ({schema['x-maximum-message']})" if kind == "maximum" and "x-maximum-message" in schema else ""
    if kind in ("minimum", "maximum") and "minimum" in schema and "maximum" in schema:
        return f.at(f"{value} is out of range {schema['minimum']}-{schema['maximum']}{why}")
    if kind == "minimum":
        return f.at(f"{value} is below the minimum {f.expected}")
    if kind == "maximum":
        return f.at(f"{value} is above the maximum {f.expected}{why}")
    return f.at(f"{value}: must be greater than {f.expected}")  # exclusiveMinimum


_MESSAGES: dict[str, Callable[[_Failure], list[ManifestError] | None]] = {
    "required": _required,
    "additionalProperties": _additional,
    "oneOf": _one_kind,
    "dependentRequired": _dependent,
    "type": _type,
    "enum": _enum,
    "pattern": _pattern,
    "minimum": lambda f: _bound(f, "minimum"),
    "maximum": lambda f: _bound(f, "maximum"),
    "exclusiveMinimum": lambda f: _bound(f, "exclusiveMinimum"),
    "minLength": lambda f: f.at("must not be empty"),
    "minItems": lambda f: f.at("must not be empty"),
    "maxLength": lambda f: f.at(f"is {len(f.value)} characters long; at most {f.expected}"),
}


def _translate(document: Document, error: jsonschema.ValidationError) -> list[ManifestError]:
    # jsonschema types these for errors made outside validation too (Unset); an error from validation carries
    # the instance, the (sub)schema mapping and its keyword's JSON value, each of any JSON type.
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    failure = _Failure(document, tuple(error.absolute_path), error.instance, schema, error.validator_value)
    message = _MESSAGES.get(str(error.validator))
    errors = message(failure) if message is not None else None
    return errors if errors is not None else [document.error(failure.path, error.message)]


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
    if is_known_valid(document.data):
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
