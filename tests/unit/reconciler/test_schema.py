from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.manifests.schema import compile_schema, load_schema

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = load_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
FAST = compile_schema(SCHEMA)


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


def test_compiler_gives_up_on_unknown_keywords() -> None:
    assert compile_schema({"type": "object", "patternProperties": {"^x": {}}}) is None
    assert compile_schema({"$ref": "https://example.invalid/other.json"}) is None


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
    assert FAST is not None
    verdicts = [(FAST(d), VALIDATOR.is_valid(d)) for d in documents]
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
    assert FAST is not None
    assert FAST(document) == VALIDATOR.is_valid(document)
