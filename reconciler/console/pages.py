"""Each page's model, from the readers' data, the URL query and the clock; shared by HTML and JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from reconciler.console import query as q
from reconciler.console import readers, timeline, upcoming, views, words
from reconciler.operating import operate
from reconciler.operating.status import status_document
from redbeat.history import read_runs
from redbeat.operator import PAUSE_FIELD, active_pause

#: Lanes the timeline draws per page (the histogram counts every filtered entry).
TIMELINE_LANES = 50
#: Runs and audit records the entry page lists.
ENTRY_RUNS, ENTRY_AUDIT = 20, 20
ACTIVITY_LIMIT = 200


@dataclass(frozen=True)
class Context:
    """What every page needs besides its own model."""

    target: Any
    cache: readers.SnapshotCache
    sidecar: Callable[[], Mapping[str, Any]] | None = None


def parse_query(args: Mapping[str, str]) -> q.Query:
    return q.parse(args, states=views.STATES, syncs=tuple(views.SYNC_WORDS))


def schedules(ctx: Context, query: q.Query) -> dict[str, Any]:
    """The schedules page.  A snapshot whose rows are not all built yet (the first page after a while) builds only
    the rows shown when the query filters and sorts on names and owners only; any other builds every row."""
    snapshot = ctx.cache.get()
    if snapshot.complete or not q.by_name_and_owner(query):
        page = q.paginate(q.select(snapshot.rows, query), query)
    else:
        page = q.paginate(q.select(snapshot.stubs, query), query)
        page = replace(page, items=list(snapshot.rows_of([str(stub["name"]) for stub in page.items])))
    return {
        "page": page, "query": query, "owners": views.owners_of(snapshot.stubs),
        "states": views.STATES, "syncs": views.SYNC_WORDS, "knows_manifests": snapshot.desired is not None,
        "manifest_problem": snapshot.manifest_problem, "total": len(snapshot.stubs), "read_at": views.clock(
            snapshot.read_at),
    }


def status_json(ctx: Context, query: q.Query) -> dict[str, Any]:
    """``status -o json`` of the entries the query selects (all of them without filters)."""
    snapshot = ctx.cache.get()
    by_name = {row["name"]: row for row in snapshot.status}
    # In the query's order (sort, order), as the page lists them; an entry only the manifests know has no row.
    rows = [by_name[row["name"]] for row in q.select(snapshot.rows, query) if row["name"] in by_name]
    return status_document(ctx.target.keys.prefix, rows, {})


def _entry_runs(row: Mapping[str, Any], snapshot: readers.Snapshot, calendars: upcoming.Calendars,
                now: float) -> upcoming.Runs:
    first = row.get("next_run_at")
    actual = snapshot.entries.get(row["name"])
    if first is None or actual is None or row.get("state") not in ("active", "paused", "dormant"):
        return upcoming.Runs([])
    definition = row.get("definition") or {}
    not_before = None
    if row.get("paused"):
        until = row.get("paused_until")
        if until is None:
            return upcoming.Runs([])  # paused until resumed: no run in sight
        not_before = float(until)
    try:
        return upcoming.window_runs(datetime.fromtimestamp(first, timezone.utc), definition, row.get("ext"),
                                    row["name"], calendars, not_before)
    except upcoming.UNCOMPUTABLE:
        return upcoming.Runs([])


def timeline_page(ctx: Context, query: q.Query) -> dict[str, Any]:
    snapshot = ctx.cache.get()
    selected = q.select(snapshot.rows, query)
    seconds = q.WINDOWS[query.window]
    start = datetime.now(timezone.utc).replace(microsecond=0)
    end = start + timedelta(seconds=seconds)
    # An entry running more often than once per bucket is drawn as a band: its runs could not be told apart.
    calendars = upcoming.Calendars(start, end, timeline.BUCKETS[seconds])
    runs = [(str(row["name"]), _entry_runs(row, snapshot, calendars, start.timestamp())) for row in selected]
    counts = timeline.histogram((r for _, r in runs), start.timestamp(), end.timestamp(), timeline.BUCKETS[seconds])
    page = q.paginate(selected, replace(query, per_page=TIMELINE_LANES))
    by_name = dict(runs)
    lanes = [timeline.Lane(str(row["name"]), by_name[str(row["name"])]) for row in page.items]
    return {
        "svg": timeline.render(counts, lanes, start.timestamp(), end.timestamp()),
        "busiest": [{"when": views.clock(b.at), "count": b.count, "names": b.names} for b in timeline.busiest(runs)],
        "collisions": len(timeline.collisions(counts.sparse)), "page": page, "query": query,
        "windows": tuple(q.WINDOWS),
        "runs": sum(len(r.times) for _, r in runs), "dense": sum(1 for _, r in runs if r.dense),
        "owners": views.owners_of(snapshot.rows), "states": views.STATES, "syncs": views.SYNC_WORDS,
        "knows_manifests": snapshot.desired is not None, "start": views.clock(start.timestamp()),
    }


def entry(ctx: Context, name: str) -> dict[str, Any] | None:
    """The entry page; None when neither Redis nor the manifests know the name."""
    found = readers.read_entry_row(ctx.target, ctx.cache.manifests, name)
    if found is None:
        return None
    row, actual = found
    all_desired, _ = ctx.cache.manifests.desired() if ctx.cache.manifests is not None else (None, None)
    roots = ctx.cache.manifests.paths if ctx.cache.manifests is not None else ()
    desired = all_desired.get(name) if all_desired is not None else None
    now = datetime.now(timezone.utc)
    coming, problem = [], None
    start = views.pause_start(row, now)  # a pause with an end: the runs beat gives the entry from then on
    if actual is not None and actual.definition is not None and row.get("state") in ("active", "dormant", "paused") \
            and start is not None:
        try:
            last_run = words.parse_iso(row.get("last_run_at"))
            coming = upcoming.next_runs(actual.definition, actual.decoded_ext(), last_run, name, start)
        except upcoming.UNCOMPUTABLE as exc:
            problem = f"next runs cannot be computed: {exc}"
    runs = read_runs(ctx.target.client, ctx.target.keys, entry=name, limit=ENTRY_RUNS)
    records = [r for r in readers.read_audit(ctx.target.client, ctx.target.keys, None) if r.get("entry") == name]
    return {
        "row": row, "definition": views.definition_text(actual), "escaped_name": views.escaped_name(name),
        "desired": None if desired is None else json.dumps(
            {"definition": desired.definition, "ext": desired.ext, "protected": desired.protected}, indent=2,
            ensure_ascii=False),
        "source": None if desired is None else views.source_text(desired.source, roots),
        "knows_manifests": all_desired is not None,
        "next_runs": [{"at": run.isoformat(timespec="seconds"), "relative": words.relative(run, now)}
                      for run in coming],
        "next_problem": problem, "runs": [run.as_json() for run in reversed(runs)],
        "audit": views.activity_rows(records[-ENTRY_AUDIT:]), "pause": _pause_words(ctx, name, now),
    }


def _pause_words(ctx: Context, name: str, now: datetime) -> str | None:
    pause = active_pause(ctx.target.client.hget(ctx.target.keys.entry(name), PAUSE_FIELD), now.timestamp())
    return None if pause is None else pause.words()


def history_json(ctx: Context, name: str | None, since: str | None) -> dict[str, Any]:
    moment = operate.parse_moment(since, datetime.now(timezone.utc), ago=True) if since else None
    return operate.history_document(operate.history_runs(ctx.target.client, ctx.target.keys, name, moment))


def activity(ctx: Context, limit: int = ACTIVITY_LIMIT) -> dict[str, Any]:
    records = readers.read_audit(ctx.target.client, ctx.target.keys, limit)
    return {"records": views.activity_rows(records), "limit": limit}


def health(ctx: Context) -> dict[str, Any]:
    import time

    leader = readers.read_leader(ctx.target.client, ctx.target.keys)
    records = readers.read_audit(ctx.target.client, ctx.target.keys, 500)
    sidecar = dict(ctx.sidecar()) if ctx.sidecar is not None else None
    snapshot = ctx.cache.get()
    model = views.health_model(leader, time.time(), readers.last_apply(records), sidecar)
    model.update(entries=len(snapshot.entries), manifest_problem=snapshot.manifest_problem,
                 knows_manifests=snapshot.desired is not None)
    return model
