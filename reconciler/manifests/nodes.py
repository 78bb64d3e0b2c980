"""Turn a composed YAML node tree into plain Python values, safely.

The nodes are converted here rather than by PyYAML's constructor, so that
duplicate keys are errors, only the standard scalar tags are accepted, and
alias expansion is measured before anything is expanded ("billion laughs"
fails at once). Every problem is a :class:`NodeError` carrying the node to
point at.

Limits: a file may hold at most :data:`MAX_FILE_NODES` YAML nodes (counted
from parser events before any node is built: composing costs about 300 bytes
and 5 µs a node, so a 5 MiB ``[1,1,1,...]`` would otherwise take 800 MB and
15 s); collections may nest at most :data:`MAX_DEPTH` levels (deeper would
exhaust Python's recursion limit); a document may expand to at most
:data:`MAX_EXPANDED_NODES` nodes through anchors and aliases.
"""

from __future__ import annotations

from typing import Any

import yaml

from reconciler.core.errors import NodeError

MAX_EXPANDED_NODES = 1_000_000
MAX_FILE_NODES = 200_000  # about 10,000 schedules; split bigger sets into several files
MAX_DEPTH = 64

TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL, TIMESTAMP = (TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp"))
SEQ, MAP, MERGE = TAG + "seq", TAG + "map", TAG + "merge"

_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_UNLIMITED = 1 << 30  # a depth budget for trees already known to be shallow enough


class _TooDeep(Exception):
    """The conversion ran out of depth budget; check_depth then says exactly where."""


def short_tag(tag: str) -> str:
    return "!!" + tag[len(TAG) :] if tag.startswith(TAG) else tag


def _tag_error(node: yaml.Node) -> NodeError:
    return NodeError(node, f"the tag {short_tag(node.tag)} is not allowed in a manifest (safe YAML only)")


def scalar(node: yaml.ScalarNode) -> Any:
    """The value of a scalar with one of the standard safe tags; NodeError for any other tag."""
    tag = node.tag
    if tag == STR:
        return node.value
    if tag == INT:
        return _CONSTRUCTOR.construct_yaml_int(node)
    if tag == FLOAT:
        return _CONSTRUCTOR.construct_yaml_float(node)
    if tag == BOOL:
        return _CONSTRUCTOR.construct_yaml_bool(node)
    if tag == NULL:
        return None
    if tag == TIMESTAMP:
        # Kept as the text written: definitions carry strings, not datetimes.
        return node.value
    raise _tag_error(node)


def is_null(node: yaml.Node | None) -> bool:
    """An empty document (nothing, or only ``---``/``null``)."""
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == NULL)


def children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(key node, value node) of ``part`` in a mapping (merged keys too) or a sequence; None if absent."""
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            return node.value[part], node.value[part]
        return None
    if isinstance(node, yaml.MappingNode):
        merges: list[yaml.Node] = []
        for key, value in node.value:
            if key.tag == MERGE:
                merges.extend(value.value if isinstance(value, yaml.SequenceNode) else [value])
            elif isinstance(key, yaml.ScalarNode) and scalar(key) == part:
                return key, value
        for source in merges:
            found = child(source, part)
            if found is not None:
                return found
    return None


def _too_deep(node: yaml.Node) -> NodeError:
    return NodeError(node, f"collections nest deeper than {MAX_DEPTH} levels, the limit for a manifest")


def check_depth(root: yaml.Node) -> None:
    """Reject collections nested deeper than MAX_DEPTH, iteratively, for a document without aliases (a tree)."""
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(node)
        stack.extend((part, depth + 1) for part in children(node) if not isinstance(part, yaml.ScalarNode))


def measure(root: yaml.Node) -> int:
    """Nodes that converting ``root`` would create, aliases expanded; without expanding.

    Iterative (a deep document must not exhaust the Python stack), each node
    visited once however often it is aliased; also rejects a recursive alias
    and collections nested deeper than MAX_DEPTH, at the first node past it.
    """
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}  # collection levels; a scalar is 0
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        ident = id(node)
        if done:
            active.discard(ident)
            parts = children(node)
            sizes[ident] = 1 + sum(sizes[id(part)] for part in parts)
            heights[ident] = 1 + max((heights[id(part)] for part in parts), default=0)
            continue
        if ident in sizes:
            continue
        if ident in active:
            raise NodeError(node, "recursive alias: an anchor is used inside itself")
        if isinstance(node, yaml.ScalarNode):
            sizes[ident], heights[ident] = 1, 0
            continue
        active.add(ident)
        stack.append((node, True))
        stack.extend((part, False) for part in children(node) if id(part) not in sizes)
    if heights[id(root)] > MAX_DEPTH:
        node = root
        for _ in range(MAX_DEPTH):  # down the deepest branch to the first collection past the limit
            node = max(children(node), key=lambda part: heights[id(part)])
        raise _too_deep(node)
    return sizes[id(root)]


def cannot_exceed(text: str, limit: int) -> bool:
    """Whether a cheap count of the characters that can start a node shows ``text`` holds at most ``limit`` nodes."""
    return 2 * sum(text.count(c) for c in ",[{:-?\n") + 2 <= limit


def count_nodes(text: str, limit: int, loader: type) -> None:
    """Raise NodeError at the first YAML node past ``limit`` nodes, parsing events only (no nodes built).

    Skipped when :func:`cannot_exceed` shows the text cannot hold that many.
    """
    if cannot_exceed(text, limit):
        return
    count = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)):
            count += 1
            if count > limit:
                raise NodeError(
                    # types-PyYAML: the C parser's events carry yaml._yaml.Mark, which ScalarNode's stub rejects
                    yaml.ScalarNode(STR, "", event.start_mark, event.end_mark),  # type: ignore[arg-type]
                    f"file has more than {limit} YAML nodes, the limit for a manifest; split it into several files",
                )


def to_value(root: yaml.Node, *, has_aliases: bool) -> Any:
    """The plain value of a document; NodeError for what a manifest may not hold.

    ``has_aliases`` (the text has an ``&``) measures the expanded size first.
    Without aliases the depth limit is checked while converting, and only a
    document that breaks a rule is walked again by :func:`check_depth`, so a
    depth error is reported at the same node, and before any other error, as
    when the whole tree is checked first.
    """
    if has_aliases:
        if measure(root) > MAX_EXPANDED_NODES:
            raise NodeError(
                root,
                f"anchors and aliases expand this document past {MAX_EXPANDED_NODES} nodes "
                "(a 'billion laughs' document?)",
            )
        return _convert(root, _UNLIMITED)  # measure() checked the depth of the expanded tree
    try:
        return _convert(root, MAX_DEPTH)
    except _TooDeep:
        check_depth(root)
        return _convert(root, _UNLIMITED)  # the budget was conservative and check_depth found it within the limit
    except NodeError:
        check_depth(root)
        raise


def _convert(node: yaml.Node, budget: int) -> Any:
    """``budget``: how many more collection levels may nest here (the root collection takes one)."""
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.tag == STR else scalar(node)
    if budget <= 0:
        raise _TooDeep
    if isinstance(node, yaml.SequenceNode):
        if node.tag != SEQ:
            raise _tag_error(node)
        return [_convert(item, budget - 1) for item in node.value]
    if node.tag != MAP:
        raise _tag_error(node)
    result: dict[Any, Any] = {}
    merged: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag == MERGE:
            _merge(value_node, budget - 1, merged)
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            raise NodeError(key_node, "mapping keys must be plain strings or numbers")
        key = key_node.value if key_node.tag == STR else scalar(key_node)
        if key in result:
            raise _duplicate(node, key_node, key)
        result[key] = _convert(value_node, budget - 1)
    if merged:
        merged.update(result)
        return merged
    return result


def _merge(value_node: yaml.Node, budget: int, into: dict[Any, Any]) -> None:
    """Add the keys of a ``<<`` value (a mapping or a list of them) not yet in ``into``."""
    if isinstance(value_node, yaml.SequenceNode):
        if budget <= 0:  # the list itself is a level
            raise _TooDeep
        sources, budget = list(value_node.value), budget - 1
    else:
        sources = [value_node]
    for source in sources:
        value = _convert(source, budget)
        if not isinstance(value, dict):
            raise NodeError(source, "a merge key '<<' needs a mapping or a list of mappings")
        for k, v in value.items():
            into.setdefault(k, v)


def _duplicate(mapping: yaml.Node, key_node: yaml.Node, key: Any) -> NodeError:
    first = next(
        k.start_mark
        for k, _ in mapping.value
        if k.tag != MERGE and isinstance(k, yaml.ScalarNode) and scalar(k) == key
    )
    return NodeError(
        key_node, f"duplicate key {key!r} (first defined at line {first.line + 1}, column {first.column + 1})"
    )
