"""The timeline picture: runs per time bucket for all (filtered) entries, and one lane per entry shown.

Pure: numbers in, an SVG string out.  Every text that came from Redis (entry names) is escaped by
markupsafe; the picture has no script and no inline style (the stylesheet colours it by class), so it
passes the console's Content-Security-Policy.  A bucket holding many more runs than the average one is
drawn as a collision, and the busiest minutes are listed beside the picture.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlencode

from markupsafe import Markup, escape

from reconciler.console.upcoming import Runs

#: Buckets per window: 1 h in minutes, 24 h in 5 minutes, 7 d in half hours.
BUCKETS = {3600: 60, 86400: 288, 7 * 86400: 336}
#: A bucket is a collision when it holds at least this many runs and COLLISION_FACTOR x the average busy bucket.
COLLISION_MIN_RUNS = 10
COLLISION_FACTOR = 3.0
WIDTH, LABEL, HIST, LANE = 1000, 230, 130, 16
LABEL_CHARS = 30


@dataclass(frozen=True, slots=True)
class Lane:
    name: str
    runs: Runs


@dataclass(frozen=True, slots=True)
class Busy:
    at: float  # the minute (epoch seconds)
    count: int
    names: tuple[str, ...]  # a few of them


@dataclass(frozen=True, slots=True)
class Histogram:
    """Runs per bucket: of the entries drawn run by run, and of the dense ones (spread evenly)."""

    sparse: list[float]
    dense: list[float]


def histogram(all_runs: Iterable[Runs], start: float, end: float, buckets: int) -> Histogram:
    """Runs per bucket; a dense entry (more runs than drawn) adds its rate evenly from its first run on."""
    width = (end - start) / buckets
    counts = [0.0] * buckets
    spread = [0.0] * (buckets + 1)  # difference array: a dense entry's per-bucket rate from its first bucket
    for runs in all_runs:
        if runs.dense and runs.times:
            first = max(0, min(buckets - 1, int((runs.times[0] - start) // width)))
            spread[first] += runs.rate * width
            continue
        for moment in runs.times:
            index = int((moment - start) // width)
            if 0 <= index < buckets:
                counts[index] += 1
    dense, level = [0.0] * buckets, 0.0
    for index in range(buckets):
        level += spread[index]
        dense[index] = level
    return Histogram(counts, dense)


def collisions(counts: Sequence[float]) -> set[int]:
    """Buckets far busier than the average busy bucket."""
    busy = [count for count in counts if count > 0]
    if not busy:
        return set()
    threshold = max(COLLISION_MIN_RUNS, COLLISION_FACTOR * sum(busy) / len(busy))
    return {index for index, count in enumerate(counts) if count >= threshold}


def busiest(named: Sequence[tuple[str, Runs]], top: int = 10, samples: int = 3) -> list[Busy]:
    """The minutes in which most entries start a run (dense entries left out: they are everywhere)."""
    per_minute: Counter[int] = Counter()
    for _, runs in named:
        if not runs.dense:
            per_minute.update({int(moment // 60) for moment in runs.times})
    hottest = [(minute, count) for minute, count in per_minute.most_common(top) if count > 1]
    wanted = {minute for minute, _ in hottest}
    names: dict[int, list[str]] = {minute: [] for minute in wanted}
    for name, runs in named:
        if runs.dense or not wanted:
            continue
        for minute in wanted.intersection(int(moment // 60) for moment in runs.times):
            if len(names[minute]) < samples:
                names[minute].append(name)
    return [Busy(minute * 60.0, count, tuple(names[minute])) for minute, count in hottest]


def _x(moment: float, start: float, end: float) -> float:
    return LABEL + (moment - start) / (end - start) * (WIDTH - LABEL - 10)


def _axis(start: float, end: float, height: float) -> list[str]:
    span = end - start
    step = 600 if span <= 3600 else 3 * 3600 if span <= 86400 else 86400
    parts = []
    tick = (start // step + 1) * step
    while tick < end:
        x = _x(tick, start, end)
        moment = datetime.fromtimestamp(tick, timezone.utc)
        label = moment.strftime("%H:%M" if span <= 86400 else "%a %d")
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height:.0f}"/>'
                     f'<text class="axis" x="{x:.1f}" y="{HIST + 14}">{label}</text>')
        tick += step
    return parts


def _bars(histogram: Histogram, start: float, end: float) -> list[str]:
    """The sparse runs as bars (collisions in red), scaled to their own peak; the dense entries' steady load
    as a pale band behind them, so one entry running every second does not flatten every other bar."""
    counts = histogram.sparse
    peak = max(counts, default=0) or 1
    hot = collisions(counts)
    width = (WIDTH - LABEL - 10) / len(counts)
    bucket = (end - start) / len(counts)
    parts = []
    for index, count in enumerate(counts):
        when = datetime.fromtimestamp(start + index * bucket, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        x = LABEL + index * width
        dense = histogram.dense[index]
        if dense > 0:
            parts.append(f'<rect class="steady" x="{x:.1f}" y="20" width="{max(1.0, width):.1f}" height="{HIST - 20}">'
                         f'<title>{when}: about {dense:.0f} runs of entries that run continuously</title></rect>')
        if count <= 0:
            continue
        height = max(1.0, count / peak * (HIST - 20))
        css = "bar collision" if index in hot else "bar"
        parts.append(f'<rect class="{css}" x="{x:.1f}" y="{HIST - height:.1f}" width="{max(1.0, width - 0.5):.1f}" '
                     f'height="{height:.1f}"><title>{when}: {count:.0f} runs</title></rect>')
    return parts


def _lane(index: int, lane: Lane, start: float, end: float, entry_link: str) -> str:
    y = HIST + 24 + index * LANE
    label = lane.name if len(lane.name) <= LABEL_CHARS else lane.name[: LABEL_CHARS - 1] + "…"
    href = entry_link + "?" + urlencode({"name": lane.name})
    marks = []
    if lane.runs.dense and lane.runs.times:
        x = _x(lane.runs.times[0], start, end)
        marks.append(f'<rect class="dense" x="{x:.1f}" y="{y + 3}" width="{max(1.0, WIDTH - 10 - x):.1f}" '
                     f'height="{LANE - 6}"><title>{escape(lane.name)}: runs too often to draw each</title></rect>')
    else:
        for moment in lane.runs.times:
            marks.append(f'<rect class="run" x="{_x(moment, start, end) - 1:.1f}" y="{y + 2}" width="2.5" '
                         f'height="{LANE - 4}"/>')
    return (f'<a href="{escape(href)}"><text class="lane" x="4" y="{y + LANE - 4}">{escape(label)}'
            f'<title>{escape(lane.name)}</title></text></a>'
            f'<line class="lane-rule" x1="{LABEL}" y1="{y + LANE:.0f}" x2="{WIDTH - 10}" y2="{y + LANE:.0f}"/>'
            + "".join(marks))


def render(counts: Histogram, lanes: Sequence[Lane], start: float, end: float, *,
           entry_link: str = "entry") -> Markup:
    """The picture: the histogram of ``counts`` on top, then a lane per entry of ``lanes``."""
    height = HIST + 24 + len(lanes) * LANE + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} {height}" '
             f'role="img" aria-label="runs over time">',
             f'<text class="axis" x="4" y="14">runs per {_bucket_words(start, end, len(counts.sparse))}</text>',
             *_axis(start, end, height), *_bars(counts, start, end),
             *(_lane(index, lane, start, end, entry_link) for index, lane in enumerate(lanes)), "</svg>"]
    return Markup("".join(parts))


def _bucket_words(start: float, end: float, buckets: int) -> str:
    minutes = (end - start) / buckets / 60
    return f"{minutes:.0f} min (UTC)" if minutes >= 1 else f"{minutes * 60:.0f} s (UTC)"
