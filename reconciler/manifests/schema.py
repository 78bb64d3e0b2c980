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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import jsonschema_rs

import reconciler
from reconciler.core.errors import ManifestError

if TYPE_CHECKING:
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
