"""The loader keeps positions without keeping node trees, and converts nodes as the whole-tree checks would."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.errors import NodeError
from reconciler.manifests import nodes
from reconciler.manifests.checks import check_manifests, load_desired
from reconciler.manifests.loader import Document, load_manifests, parse_file

GROUP = (
    "# a comment first\n"
    "defaults: {task: demo.tasks.a}\n"
    "schedules:\n"
    "  - name: one\n"
    "    every: 5s\n"
    "  -   name: two\n"
    "      cron: '0 * * * *'\n"
    "  - {name: three, every: 1m}\n"
    "---\n"
    "---\n"
    "name: four\n"
    "task: demo.tasks.b\n"
    "every: 1h\n"
    "--- {name: five, task: demo.tasks.c, every: 2h}\n"
)


def _fresh_locations(document: Document) -> list[str]:
    """Where each schedule starts, found in a tree composed now (the way every other position is found)."""
    root = list(yaml.compose_all(document.source.text, Loader=yaml.SafeLoader))[document.index]
    if "schedules" not in document.data:
        return [f"{root.start_mark.line + 1}:{root.start_mark.column + 1}"]
    items = nodes.child(root, "schedules")
    assert items is not None
    return [f"{item.start_mark.line + 1}:{item.start_mark.column + 1}" for item in items[1].value]


def test_entry_sources_are_the_positions_a_composed_tree_gives(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(GROUP, encoding="utf-8")
    entries = load_desired([path])
    sources = {name: f"{e.source.line}:{e.source.column}" for name, e in entries.items()}
    assert sources == {"one": "4:5", "two": "6:7", "three": "8:5", "four": "11:1", "five": "14:5"}
    assert {e.source.field for e in entries.values()} == {"schedules[0]", "schedules[1]", "schedules[2]", ""}
    (manifest,) = load_manifests([path])[0]
    fresh = [place for document in manifest.documents for place in _fresh_locations(document)]
    assert sorted(fresh) == sorted(sources.values())


def test_schedules_from_a_merge_key_are_located_too(tmp_path: Path) -> None:
    path = tmp_path / "merged.yaml"
    path.write_text(
        "base: &b\n  schedules:\n    - {name: m, task: demo.tasks.a, every: 5s}\n<<: *b\n", encoding="utf-8"
    )
    (manifest,) = load_manifests([path])[0]
    (document,) = manifest.documents
    assert str(document.location(("schedules", 0))) == f"{path}:3:7: schedules[0]"
    assert str(document.location(("schedules", 1))) == f"{path}:3:5: schedules[1]"  # missing: the nearest node


def _live_nodes() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, yaml.Node))


def test_a_valid_run_keeps_no_node_tree_and_an_error_composes_its_file_again(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("schedules:\n" + "".join(f"  - {{name: g{i}, task: t.a, every: 5s}}\n" for i in range(200)))
    bad = tmp_path / "bad.yaml"
    bad.write_text("schedules:\n  - name: b\n    task: t.a\n    cron: '61 * * * *'\n")
    before = _live_nodes()
    files, errors = load_manifests([good, bad])
    assert errors == [] and _live_nodes() == before  # 200 schedules: no node kept
    entries, errors = check_manifests([good, bad])
    assert len(entries) == 200
    assert [str(e) for e in errors] == [f"{bad}:4:11: schedules[0].cron: '61 * * * *': minute 61 is out of range 0-59"]
    assert errors[0].source_line == "    cron: '61 * * * *'"


def test_surprises_found_while_parsing_equal_those_found_later(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ntask: t.a\nevery: 1:30\noptions: {queue: 0777, expires: 1e3}\n", encoding="utf-8")
    eager = parse_file(path, surprises=True).documents[0]
    lazy = parse_file(path).documents[0]
    assert eager.yaml11_surprises is not None and lazy.yaml11_surprises is None
    assert eager.surprises() == lazy.surprises() and len(eager.surprises()) == 3


# --- the depth budget of nodes.to_value against check_depth over the whole tree first -----------------------

leaves = st.sampled_from(["1", "x", "!!str y", "!!python/name:os.system ''", "{}", "[]"])


def _wrap(inner: str, kind: str) -> str:
    return {
        "list": f"[{inner}]",
        "map": f"{{k: {inner}}}",
        "merge": f"{{<<: {{m: {inner}}}, k: 1}}",
        "merge-list": f"{{<<: [{{m: {inner}}}], k: 1}}",
        "merge-empty-list": f"{{<<: [], k: {inner}}}",
        "pair": f"[{inner}, {inner}]",
        "bad-key": f"{{[1]: {inner}}}",
    }[kind]


def _levels(node: yaml.Node) -> int:
    """Collection levels of a tree, keys and merge lists included (a scalar is 0)."""
    parts = nodes.children(node)
    return 0 if isinstance(node, yaml.ScalarNode) else 1 + max((_levels(p) for p in parts), default=0)


@st.composite
def nested_documents(draw: Any) -> str:
    """Trees of every shape that hold between two levels fewer and two more than the limit."""
    text = draw(leaves)
    kinds = ["list", "map", "merge", "merge-list", "merge-empty-list", "pair", "bad-key"]
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=12)):
        text = _wrap(text, kind) if kind != "pair" or len(text) < 2000 else _wrap(text, "list")
    root = yaml.compose(text)
    assert root is not None
    pad = max(0, draw(st.integers(nodes.MAX_DEPTH - 2, nodes.MAX_DEPTH + 2)) - _levels(root))
    return "[" * pad + text + "]" * pad


def _outcome(func: Any, root: yaml.Node) -> tuple[str, Any]:
    try:
        return "value", func(root)
    except NodeError as exc:
        return "error", (exc.message, exc.node.start_mark.line, exc.node.start_mark.column)


def _check_then_convert(root: yaml.Node) -> Any:
    nodes.check_depth(root)
    return nodes.to_value(root, has_aliases=True)  # measure() and no depth budget: the reference order


@settings(max_examples=300, deadline=None)
@given(nested_documents())
def test_depth_budget_reports_what_checking_the_whole_tree_first_reports(text: str) -> None:
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert root is not None
    assert _outcome(lambda r: nodes.to_value(r, has_aliases=False), root) == _outcome(_check_then_convert, root)


@pytest.mark.parametrize(("depth", "ok"), [(nodes.MAX_DEPTH, True), (nodes.MAX_DEPTH + 1, False)])
def test_depth_limit_is_exact(depth: int, ok: bool) -> None:
    root = yaml.compose("[" * depth + "]" * depth)
    assert root is not None
    assert _outcome(lambda r: nodes.to_value(r, has_aliases=False), root)[0] == ("value" if ok else "error")
