"""Opt-in Prometheus metrics of a beat: ``redbeat_metrics_listen = "127.0.0.1:9186"``.

Names are stable; every one starts with ``redbeat_beat_``.  Served from a
registry of its own, so nothing else in the process leaks into it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

logger = logging.getLogger("celery.beat")

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class EntryRuns:
    """Opt-in per-entry run times, for "this job has not run for 2 intervals" alerts.

    Labelled by entry name for at most ``limit`` distinct entries per process
    (``redbeat_metrics_entries``), so a beat with 100,000 entries cannot
    flood Prometheus; runs of entries past the limit are counted instead.
    """

    def __init__(self, registry: Any, limit: int) -> None:
        from prometheus_client import Counter, Gauge

        self.limit = limit
        self._names: set[str] = set()
        self.last_run = Gauge("redbeat_beat_entry_last_run_timestamp_seconds",
                              "When beat last handed this entry's run to Celery (Unix time)",
                              ["entry"], registry=registry)
        self.next_run = Gauge("redbeat_beat_entry_next_run_timestamp_seconds",
                              "When this entry is next due (Unix time), as of its last run",
                              ["entry"], registry=registry)
        self.unlabelled = Counter("redbeat_beat_entry_runs_unlabelled",
                                  "Runs of entries past the redbeat_metrics_entries limit (no per-entry series)",
                                  registry=registry)

    def record(self, name: str, ran_at: float, next_at: float) -> None:
        """One dispatched run; ``next_at`` < 0 means the entry will not run again (a finished one-off)."""
        if name not in self._names:
            if len(self._names) >= self.limit:
                self.unlabelled.inc()
                return
            self._names.add(name)
        self.last_run.labels(entry=name).set(ran_at)
        if next_at >= 0:
            self.next_run.labels(entry=name).set(next_at)
        else:
            # Nothing is due any more: an "overdue" alert must not fire for it.
            with contextlib.suppress(KeyError):
                self.next_run.remove(name)


class BeatMetrics:
    def __init__(self, registry: Any = None, entry_limit: int = 0) -> None:
        # Imported here: prometheus_client costs a beat that does not serve metrics ~2 MiB of memory.
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.leader = Gauge(
            "redbeat_beat_leader", "1 while this beat holds the lock and dispatches, else 0", registry=r
        )
        self.dispatches = Counter("redbeat_beat_dispatches", "Runs claimed and handed to Celery to send", registry=r)
        self.lag = Histogram(
            "redbeat_beat_dispatch_lag_seconds",
            "From a slot's due time to handing its run to Celery",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "redbeat_beat_errors", "Errors by kind: redis, entry (corrupt), send", ["kind"], registry=r
        )
        self.unreadable = Gauge(
            "redbeat_beat_entries_unreadable",
            "Entries this beat set aside because it cannot read or schedule them (see the log and status)",
            registry=r,
        )
        self.entries_due = Gauge("redbeat_beat_entries_due", "Entries the last tick found due (read)", registry=r)
        self.renew = Histogram(
            "redbeat_beat_lock_renew_seconds",
            "Round trip that renews the lease and reads due entries",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tick = Histogram(
            "redbeat_beat_tick_seconds", "Duration of a leader tick", buckets=LATENCY_BUCKETS, registry=r
        )
        self.last_tick = Gauge(
            "redbeat_beat_last_tick_timestamp_seconds", "When the last tick ended (Unix time)", registry=r
        )
        for kind in ("redis", "entry", "send"):
            self.errors.labels(kind=kind)
        self.entry_runs = EntryRuns(r, entry_limit) if entry_limit > 0 else None

    def entry_ran(self, name: str, ran_at: float, next_at: float) -> None:
        if self.entry_runs is not None:
            self.entry_runs.record(name, ran_at, next_at)

    def serve(self, listen: str) -> Any:
        from prometheus_client import start_http_server

        host, _, port = listen.rpartition(":")
        server = start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=self.registry)
        logger.info("beat: Prometheus metrics on http://%s/metrics", listen)
        return server


class _Nothing:
    """Stands for any metric when metrics are off: every call is accepted and does nothing."""

    def labels(self, **_: Any) -> _Nothing:
        return self

    def inc(self, *_: Any) -> None:
        pass

    def __call__(self, *_: Any, **__: Any) -> None:
        pass

    set = observe = inc


_NOTHING = _Nothing()


class NullMetrics:
    """BeatMetrics' interface when ``redbeat_metrics_listen`` is unset."""

    def __getattr__(self, name: str) -> _Nothing:
        return _NOTHING

    def serve(self, listen: str) -> None:
        raise RuntimeError("metrics are off")


def parse_listen(value: Any) -> str | None:
    """``"host:port"`` or a bare port (loopback), validated; None when metrics are off."""
    if value in (None, "", False):
        return None
    text = str(value)
    if text.isdigit():
        text = f"127.0.0.1:{text}"
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"redbeat_metrics_listen={value!r}: use 'host:port' or a port number")
    return text


def parse_entry_limit(value: Any) -> int:
    """``redbeat_metrics_entries``: how many entries get per-entry series (0, the default: none)."""
    if value in (None, "", False):
        return 0
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = -1
    if limit < 0 or isinstance(value, float):
        raise ValueError(f"redbeat_metrics_entries={value!r}: use a whole number of entries, 0 for none")
    return limit
