"""The manifest JSON Schema, and the fast validator agreeing with jsonschema, which decides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.manifests.schema import _no_remote_schemas, check_value, is_known_valid, load_schema

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = load_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_schema_is_draft_2020_12_and_closed() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for name in ("group", "defaults", "schedule", "crontab", "rrule"):
        assert SCHEMA["$defs"][name]["additionalProperties"] is False, name


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return {**SCHEMA["$defs"][node["$ref"].split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


@pytest.mark.parametrize("definition", ["schedule", "defaults", "rrule", "options", "crontab"])
def test_every_field_has_a_description(definition: str) -> None:
    properties = SCHEMA["$defs"][definition]["properties"]
    assert properties
    for name, node in properties.items():
        assert _resolve(node).get("description"), f"{definition}.{name}"
    assert SCHEMA["$defs"][definition].get("examples"), definition


def test_the_fast_validator_never_fetches_a_schema() -> None:
    with pytest.raises(jsonschema_rs.ValidationError, match="must be self-contained"):
        jsonschema_rs.Draft202012Validator({"$ref": "https://example.invalid/other.json"}, retriever=_no_remote_schemas)


JOB = {"name": "a", "task": "demo.tasks.a", "every": "30s"}


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({**JOB, "options": {"expires": float("nan")}}, id="nan"),  # jsonschema: nan is a number
        pytest.param({**JOB, "name": "a\n"}, id="final-newline"),  # Python's $ matches before it, Rust's does not
        pytest.param({**JOB, "name": "\ud800"}, id="lone-surrogate"),  # cannot be encoded for Rust
        pytest.param({**JOB, 1: "x"}, id="integer-key"),  # Rust's conversion refuses it
    ],
)
def test_where_the_validators_differ_jsonschema_decides(document: dict[Any, Any]) -> None:
    assert is_known_valid(document) is False
    assert check_value(document) == [e.message for e in VALIDATOR.iter_errors(document)]


@pytest.mark.parametrize(
    "options",
    [{"expires": 10**30}, {"expires": 2**64 + 1}, {"priority": 2**63}, {"priority": -(2**63) - 1},
     {"expires": float("inf")}, {"countdown": float("-inf")}, {"priority": True}, {"expires": 3153600001}],
)  # fmt: skip
def test_out_of_range_numbers_are_never_known_valid(options: dict[str, Any]) -> None:
    document = {**JOB, "options": options}
    assert not VALIDATOR.is_valid(document)
    assert is_known_valid(document) is False


def _corpus_documents() -> list[Any]:
    documents = []
    for path in sorted((ROOT / "tests" / "data" / "manifests").rglob("*.yaml")) + sorted(
        (ROOT / "examples").rglob("*.yaml")
    ):
        text = path.read_bytes()
        if b"&" in text:  # anchors: billion laughs and recursive aliases are the loader's business
            continue
        try:
            documents.extend(d for d in yaml.safe_load_all(text) if d is not None)
        except (yaml.YAMLError, ValueError):
            continue
    return documents


def test_fast_path_agrees_with_jsonschema_on_the_corpus() -> None:
    documents = _corpus_documents()
    assert len(documents) > 60
    verdicts = [(is_known_valid(d), VALIDATOR.is_valid(d)) for d in documents]
    assert all(fast == slow for fast, slow in verdicts)
    assert {slow for _, slow in verdicts} == {True, False}


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-400, 400), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "x", ":x", "demo.tasks.a", "bad task", "30s", "1h30m", "0", "5 minutes", "mo", "-1fr",
                     "mon", "daily", "dayly", "* * * * *", "Europe/Berlin", "2026-01-01T00:00:00+00:00"]),
)  # fmt: skip
KEYS = ["name", "task", "cron", "crontab", "every", "relative", "rrule", "args", "kwargs", "options", "enabled",
        "timezone", "protected", "kwarg", "minute", "hour", "freq", "dtstart", "until", "count", "byweekday",
        "byhour", "queue", "priority", "expires", "headers"]  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=12,
)
schedules = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "", ":b"]), "task": st.sampled_from(["demo.tasks.a", "x y"])},
    optional={k: values for k in KEYS if k not in ("name", "task")},
)
documents = st.one_of(
    schedules,
    st.fixed_dictionaries(
        {"schedules": st.lists(schedules, max_size=3)},
        optional={"defaults": st.dictionaries(st.sampled_from(KEYS), values, max_size=3)},
    ),
    values,
)


@settings(max_examples=400)
@given(documents)
def test_fast_path_agrees_with_jsonschema_on_generated_documents(document: Any) -> None:
    assert is_known_valid(document) == VALIDATOR.is_valid(document)


any_text = st.text(st.characters(codec="utf-8") | st.sampled_from(["\n", "\x00", "\x85", ":", " "]), max_size=12)
texts_where_patterns_apply = st.fixed_dictionaries(
    {"name": any_text, "task": any_text | st.just("demo.tasks.a")},
    optional={"every": any_text, "timezone": any_text, "options": st.fixed_dictionaries({"queue": any_text}),
              "rrule": st.fixed_dictionaries({"freq": st.just("daily"), "byweekday": any_text}),
              "jitter": any_text, "at": any_text},
)  # fmt: skip


@settings(max_examples=400)
@given(texts_where_patterns_apply)
def test_what_the_fast_path_accepts_jsonschema_accepts_for_any_text(document: dict[str, Any]) -> None:
    # Rust's regex engine and Python's re read the schema's patterns; the fast path may only be stricter.
    assert not is_known_valid(document) or VALIDATOR.is_valid(document)
