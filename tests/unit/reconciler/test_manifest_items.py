"""Re-parsing only the edited items of a file (reconciler.manifests.items) gives what a cold check gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.manifests import index as index_module
from reconciler.manifests.checks import check_manifests
from reconciler.manifests.digest import content_digest
from reconciler.manifests.index import ManifestIndex
from reconciler.manifests.items import isolated, split_items

PLAIN = """\
# nightly jobs
defaults:
  options: {queue: q1}
schedules:
  - {name: a, task: t.a, every: 30s}
  # between items

  - name: b
    task: t.b
    cron: "*/5 * * * *"
  - name: c
    args: [1, "two"]
    task: t.c
    every: 1m
"""


def test_a_plain_file_splits_into_its_header_and_items_at_their_lines():
    split = split_items(PLAIN)
    assert split is not None
    assert split.header == "# nightly jobs\ndefaults:\n  options: {queue: q1}\nschedules:\n"
    assert split.starts == (4, 7, 10) and split.indent == 2
    assert split.items[0] == "  - {name: a, task: t.a, every: 30s}\n  # between items\n\n"
    assert split.header + "".join(split.items) == PLAIN  # slices of the text, newlines and all
    alone = isolated(split, 2)
    assert alone.splitlines()[10] == "  - name: c" and alone.startswith(split.header)


@pytest.mark.parametrize(
    "text",
    [
        "schedules:\n  - &x {name: a, task: t, every: 1m}\n  - *x\n",  # an anchor: items refer to each other
        "schedules:\n  - {name: a, task: t, every: 1m}\n---\nschedules:\n  - {name: b, task: t, every: 1m}\n",
        "%YAML 1.1\n---\nschedules:\n  - {name: a, task: t, every: 1m}\n",
        "schedules:\n\t- {name: a, task: t, every: 1m}\n",
        "schedules:\r\n  - {name: a, task: t, every: 1m}\r\n",
        "\ufeffschedules:\n  - {name: a, task: t, every: 1m}\n",
        "schedules: [{name: a, task: t, every: 1m}]\n",
        "schedules:\n  - {name: a, task: t, every: 1m}\ndefaults: {task: t}\n",  # a key after the sequence
        "schedules:\n  - {name: a, task: t, every: 1m}\n - {name: b, task: t, every: 1m}\n",  # two indents
        "name: a\ntask: t\nevery: 1m\n",  # a single schedule, no sequence
        "schedules:\n# only comments\n",
    ],
)
def test_anything_but_the_plain_shape_is_not_split(text):
    assert split_items(text) is None


# --- the index: edits of items, re-parsed alone or not, always as a cold check -----------------------------

NAMES = ["a", "b", "c", "d", "odd [x]/<y>", "\u00e9t\u00e9", "<script>x</script>"]


def item(style: int, name: str, every: int) -> str:
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style == 0:
        return f"  - {{name: {quoted}, task: t.run, every: {every}s}}\n"
    if style == 1:
        return f"  - name: {quoted}\n    task: t.run\n    # a comment\n    every: {every}s\n"
    if style == 2:
        return f"  - task: t.run\n    name: {quoted}\n    kwargs: {{n: {every}}}\n    cron: \"*/{every} * * * *\"\n"
    if style == 3:
        return f"  -   name: {quoted}\n      task: t.run\n\n      every: {every}m\n"
    if style == 4:
        note = f"    kwargs:\n      note: |\n        - {every}\n        x: y\n"  # a block scalar that looks like YAML
        return f"  - name: {quoted}\n    task: t.run\n{note}    every: {every}s\n"
    # a kept block scalar: its trailing blank lines are part of the value, up to the next item or the end
    return f"  - name: {quoted}\n    task: t.run\n    kwargs:\n      note: |+\n        {every}\n\n    every: {every}s\n"


def render(items: list[tuple[int, str, int]], defaults: int) -> str:
    head = f"defaults:\n  options: {{queue: q{defaults}}}\n" if defaults else ""
    return head + "schedules:\n" + "".join(item(*i) for i in items)


BROKEN = [
    ("every: {every}s", "every: soon"),  # a schema/semantic error in the item
    ("task: t.run", 'task: "t.run'),  # an unclosed quote: invalid YAML
    ("task: t.run", "task: [t.run"),  # an unclosed bracket
    ("task: t.run", "task: t.run\n  extra: 1"),  # a line YAML reads as a new key of the sequence's parent
]

one_item = st.tuples(st.integers(0, 5), st.sampled_from(NAMES), st.integers(1, 9))  # style, name, interval
items_of = st.lists(one_item, min_size=1, max_size=6)
edit = st.one_of(
    st.tuples(st.just("value"), st.integers(0, 5), st.integers(1, 9)),
    st.tuples(st.just("rename"), st.integers(0, 5), st.sampled_from(NAMES)),
    st.tuples(st.just("style"), st.integers(0, 5), st.integers(0, 5)),
    st.tuples(st.just("insert"), st.integers(0, 6), one_item),
    st.tuples(st.just("remove"), st.integers(0, 5)),
    st.tuples(st.just("newline"), st.booleans()),
    st.tuples(st.just("break"), st.integers(0, 5), st.integers(0, len(BROKEN) - 1)),
    st.tuples(st.just("defaults"), st.integers(0, 2)),
    st.tuples(st.just("rewrite"), items_of),
)


def full_errors(errors):
    return [(str(e), e.hint, e.code, e.end_column, e.source_line) for e in errors]


def replace_file(path: Path, text: str) -> None:
    """Written by rename, as editors save: a new inode, so the index always sees the change."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


EXAMPLES = int(os.environ.get("ITEMS_EXAMPLES", "120"))  # 1,500 passed when this test was written
edits_of = st.lists(st.tuples(st.sampled_from(["x.yaml", "y.yaml"]), edit), min_size=1, max_size=8)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=items_of, other=items_of, edits=edits_of)
def test_edited_items_give_what_a_cold_check_gives(tmp_path_factory, first, other, edits):
    root = tmp_path_factory.mktemp("items")
    files = {"x.yaml": [list(first), 1, True], "y.yaml": [list(other), 0, True]}  # items, defaults, final newline
    for name, (items, defaults, _) in files.items():
        replace_file(root / name, render(items, defaults))
    index = ManifestIndex([root], clock=lambda: 4e9)
    index.refresh()
    for name, change in edits:
        state = files[name]
        items = state[0]
        text = None
        if change[0] == "rewrite":
            state[0] = list(change[1])
        elif change[0] == "defaults":
            state[1] = change[1]
        elif change[0] == "insert":
            items.insert(change[1] % (len(items) + 1), change[2])
        elif change[0] == "remove":
            if len(items) > 1:
                del items[change[1] % len(items)]
        elif change[0] == "newline":
            state[2] = change[1]
        else:
            k = change[1] % len(items)
            style, label, every = items[k]
            if change[0] == "value":
                items[k] = (style, label, change[2])
            elif change[0] == "rename":
                items[k] = (style, change[2], every)
            elif change[0] == "style":
                items[k] = (change[2], label, every)
            else:  # break item k for this one step: the next edit writes the file whole again
                old, new = BROKEN[change[2]]
                chunk = item(style, label, every)
                old = old.replace("{every}", str(every))
                text = render(items, state[1]).replace(chunk, chunk.replace(old, new, 1), 1)
        text = text if text is not None else render(state[0], state[1])
        replace_file(root / name, text if state[2] else text.rstrip("\n"))
        index.refresh()
        entries, errors = check_manifests([root])
        assert index.entries == entries
        assert full_errors(index.errors) == full_errors(errors)
        assert index.digest == content_digest(entries)


def test_an_edit_of_one_item_parses_that_item_alone(tmp_path, monkeypatch):
    path = tmp_path / "jobs.yaml"
    items = [(i % 4, f"job-{i}", 1 + i % 9) for i in range(40)]
    replace_file(path, render(items, 1))
    index = ManifestIndex([tmp_path], clock=lambda: 4e9)
    index.refresh()
    parsed: list[str] = []
    real = index_module.parse_text
    monkeypatch.setattr(index_module, "parse_text", lambda p, text: parsed.append(text) or real(p, text))
    items[17] = (items[17][0], "job-17", 5)
    replace_file(path, render(items, 1))
    refresh = index.refresh()
    assert refresh.names == {"job-17"}
    assert len(parsed) == 1 and "job-17" in parsed[0] and "job-16" not in parsed[0]
    entries, errors = check_manifests([tmp_path])
    assert index.entries == entries and errors == [] and index.errors == []
    assert index.entries["job-17"].source.line == entries["job-17"].source.line
    assert index.entries["job-17"].source.field == "schedules[17]"

    parsed.clear()
    items.insert(5, (1, "new", 3))  # a schedule added in the middle: the ones below move down
    replace_file(path, render(items, 1))
    refresh = index.refresh()
    assert len(parsed) == 1 and "name: \"new\"" in parsed[0]
    assert refresh.names == {"new"} | {f"job-{i}" for i in range(5, 40)}
    entries, errors = check_manifests([tmp_path])
    assert index.entries == entries and errors == [] and index.errors == []
    assert index.entries["job-39"].source.field == "schedules[40]"

    parsed.clear()
    del items[0]  # removed: nothing to parse
    replace_file(path, render(items, 1))
    index.refresh()
    assert parsed == []
    assert index.entries == check_manifests([tmp_path])[0]
