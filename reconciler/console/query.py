"""The schedules and timeline views' URL query (``?q=nightly&owner=team-a&state=paused&sort=next``): parse, filter,
sort, paginate.  Pure: every value from the URL is checked against a fixed set or a bound, and a bad one falls back
to the default with a note the page shows (a shared link with a typo still opens)."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

#: Sort keys a URL may name -> the row field they sort by.
SORTS: dict[str, str] = {
    "name": "name", "owner": "owner", "task": "task", "state": "state", "sync": "sync",
    "next": "next_run_at", "last": "last_run_at", "runs": "total_run_count", "lag": "dispatch_lag_seconds",
}
#: Sorts on what a row's stub holds (:attr:`reconciler.console.readers.Snapshot.stubs`): no next run needed.
STUB_SORTS = ("name", "owner")
ORDERS = ("asc", "desc")
#: Timeline windows a URL may name -> seconds.
WINDOWS: dict[str, int] = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 500
#: A search text longer than this is cut (a URL is hostile input; nobody types more).
TEXT_MAX = 200


@dataclass(frozen=True, slots=True)
class Query:
    q: str = ""
    owner: str = ""
    state: str = ""
    sync: str = ""
    sort: str = "name"
    order: str = "asc"
    page: int = 1
    per_page: int = PER_PAGE_DEFAULT
    window: str = "24h"
    notes: tuple[str, ...] = field(default=(), compare=False)

    def params(self, **changes: Any) -> dict[str, str]:
        """The query as URL parameters (defaults left out), with ``changes`` applied."""
        changed = replace(self, **changes)
        defaults = Query()
        return {
            name: str(getattr(changed, name))
            for name in ("q", "owner", "state", "sync", "sort", "order", "page", "per_page", "window")
            if getattr(changed, name) != getattr(defaults, name)
        }

    def link(self, **changes: Any) -> str:
        """``?q=...&page=2``: this view with ``changes`` (a page link, a sort link)."""
        params = self.params(**changes)
        return "?" + urlencode(params) if params else "?"

    def sort_link(self, key: str) -> str:
        """The header link of column ``key``: sorts by it, or flips the order when it is the sort already."""
        order = ("desc" if self.order == "asc" else "asc") if self.sort == key else "asc"
        return self.link(sort=key, order=order, page=1)


def _text(args: Mapping[str, str], name: str) -> str:
    value = args.get(name) or ""
    return "".join(char for char in value[:TEXT_MAX] if char.isprintable()).strip()


def _choice(args: Mapping[str, str], name: str, choices: Sequence[str], default: str, notes: list[str]) -> str:
    value = args.get(name)
    if value is None or value == "":
        return default
    if value in choices:
        return value
    notes.append(f"{name}: unknown value ignored (choose from {', '.join(choices)})")
    return default


def _number(args: Mapping[str, str], name: str, default: int, low: int, high: int, notes: list[str]) -> int:
    value = args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        notes.append(f"{name}: not a number, {default} used")
        return default
    if not low <= number <= high:
        notes.append(f"{name}: out of range {low}..{high}, clamped")
    return min(high, max(low, number))


def parse(args: Mapping[str, str], *, states: Sequence[str], syncs: Sequence[str]) -> Query:
    """A :class:`Query` from URL parameters; never raises (bad values become defaults, with a note)."""
    notes: list[str] = []
    return Query(
        q=_text(args, "q"),
        owner=_text(args, "owner"),
        state=_choice(args, "state", states, "", notes),
        sync=_choice(args, "sync", syncs, "", notes),
        sort=_choice(args, "sort", tuple(SORTS), "name", notes),
        order=_choice(args, "order", ORDERS, "asc", notes),
        page=_number(args, "page", 1, 1, 10**9, notes),
        per_page=_number(args, "per_page", PER_PAGE_DEFAULT, 1, PER_PAGE_MAX, notes),
        window=_choice(args, "window", tuple(WINDOWS), "24h", notes),
        notes=tuple(notes),
    )


def folded(text: str) -> str:
    """``text`` for comparing as a reader would: Unicode-normalised (NFKC: "café" typed precomposed or as
    "e" + combining accent is one word) and case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


#: The row field holding :func:`search_text`, computed once per snapshot rather than per request.
SEARCH_FIELD = "search_text"


def search_text(row: Mapping[str, Any]) -> str:
    """What the text filter searches in a row: name, task, owner and schedule, folded, one per line (a needle
    never holds a line break: :func:`parse` keeps printable characters only, so it cannot span two fields)."""
    fields = (row.get("name"), row.get("task"), row.get("owner"), row.get("words"), row.get("schedule"))
    return "\n".join(folded(str(value)) for value in fields if value)


def matches(row: Mapping[str, Any], query: Query) -> bool:
    """Whether a row passes the filters: text (name, task, owner, schedule), owner, state, sync."""
    if query.owner and (row.get("owner") or "") != query.owner:
        return False
    if query.state and query.state not in row.get("states", ()):
        return False
    if query.sync and row.get("sync") != query.sync:
        return False
    if query.q:
        haystack = row.get(SEARCH_FIELD)
        return folded(query.q) in (haystack if isinstance(haystack, str) else search_text(row))
    return True


def by_name_and_owner(query: Query) -> bool:
    """Whether the query filters and sorts on names and owners only: then a page needs no other row built.
    The text, state and sync filters and the other sorts read what only a full row holds (the state, for one,
    is "corrupt" when the next run cannot be computed)."""
    return query.sort in STUB_SORTS and not (query.q or query.state or query.sync)


def _sort_key(field_name: str) -> Callable[[Mapping[str, Any]], tuple[int, Any, str]]:
    def key(row: Mapping[str, Any]) -> tuple[int, Any, str]:
        value = row.get(field_name)
        if value is None:
            return (1, 0, row["name"])  # unknown values last, whatever the order
        if isinstance(value, str):
            value = value.casefold()
        return (0, value, row["name"])

    return key


def ordered(rows: Sequence[Mapping[str, Any]], query: Query) -> list[Mapping[str, Any]]:
    """Rows sorted by the query's key; unknown values (never ran, no next run) last in either order."""
    key = _sort_key(SORTS[query.sort])
    known = [row for row in rows if row.get(SORTS[query.sort]) is not None]
    unknown = [row for row in rows if row.get(SORTS[query.sort]) is None]
    known.sort(key=key, reverse=query.order == "desc")
    unknown.sort(key=lambda row: str(row["name"]))
    return known + unknown


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Mapping[str, Any]]
    number: int  # 1-based, within 1..pages
    pages: int
    total: int
    per_page: int

    @property
    def first_index(self) -> int:
        """1-based index of the first item shown (0 when there is none)."""
        return (self.number - 1) * self.per_page + 1 if self.items else 0


def paginate(rows: Sequence[Mapping[str, Any]], query: Query) -> Page:
    """The query's page of ``rows``; a page past the end shows the last page."""
    pages = max(1, math.ceil(len(rows) / query.per_page))
    number = min(query.page, pages)
    start = (number - 1) * query.per_page
    return Page(list(rows[start : start + query.per_page]), number, pages, len(rows), query.per_page)


def select(rows: Sequence[Mapping[str, Any]], query: Query) -> list[Mapping[str, Any]]:
    """Filter, then sort: every matching row, for a page or a picture."""
    return ordered([row for row in rows if matches(row, query)], query)
