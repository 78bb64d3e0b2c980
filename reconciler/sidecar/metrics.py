"""Prometheus metrics of watch mode, in a registry of their own.

The names below are a public interface (dashboards and alerts use them), listed
in the README; rename none of them.  Every labelled series is created at zero
up front, so ``rate()`` and absent-series alerts work from the first scrape.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from reconciler.sync.plan import Op


class AttemptResult(enum.Enum):
    """How one apply attempt ended; the value is the ``result`` label of ``redbeat_apply_applies_total``."""

    CHANGED = "changed"  # wrote
    UNCHANGED = "unchanged"  # nothing to write
    DRY_RUN = "dry_run"  # would have written
    REFUSED = "refused"  # conflict or safety valve; nothing written
    ERROR = "error"  # Redis (or another error raised on purpose); nothing written


#: Outcomes of one apply attempt (label values).
RESULTS = tuple(result.value for result in AttemptResult)
#: Kinds of written changes (plan ops that write; label values).
KINDS = tuple(op.value for op in (Op.CREATE, Op.UPDATE, Op.DELETE, Op.ADOPT))
#: Why an apply was attempted.
TRIGGERS = ("start", "change", "resync", "retry")

PREFIX = "redbeat_apply_"


class WatchMetrics:
    """The metrics one watch process exports; ``render()`` is the /metrics body."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.applies = Counter(
            PREFIX + "applies", "Apply attempts by result: changed (wrote), unchanged (nothing to write), "
            "dry_run, refused (conflict or safety valve; nothing written), error (Redis; nothing written).",
            ["result"], registry=r,
        )
        self.changes = Counter(PREFIX + "changes", "Entries written, by kind of change.", ["kind"], registry=r)
        self.triggers = Counter(PREFIX + "triggers", "Apply attempts by what caused them.", ["reason"], registry=r)
        self.drift_corrections = Counter(
            PREFIX + "drift_corrections",
            "Entries rewritten because they were changed or deleted in Redis by hand.",
            registry=r,
        )
        self.last_success = Gauge(
            PREFIX + "last_success_timestamp_seconds",
            "Unix time of the last successful apply (0: none yet).",
            registry=r,
        )
        self.duration = Histogram(
            PREFIX + "duration_seconds",
            "Time to plan and apply (Redis reads and the write), per attempt.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.manifests_invalid = Gauge(
            PREFIX + "manifests_invalid",
            "1 while the manifests on disk are invalid (the last good state is kept).",
            registry=r,
        )
        self.manifest_reads = Counter(
            PREFIX + "manifest_reads",
            "Times the whole manifest tree was read (on file events and resyncs), by result.",
            ["result"],
            registry=r,
        )
        self.manifest_errors = Gauge(PREFIX + "manifest_errors", "Errors found in the manifests on disk.", registry=r)
        self.desired_entries = Gauge(PREFIX + "desired_entries", "Schedules in the last valid manifests.", registry=r)
        self.consecutive_failures = Gauge(
            PREFIX + "consecutive_failures", "Apply attempts failed in a row (Redis errors and refusals).", registry=r
        )
        self.ready = Gauge(PREFIX + "ready", "1 when /readyz answers 200.", registry=r)
        self.info = Gauge(
            PREFIX + "info",
            "Always 1; labels name the applied revision (git commit, or sha256 of the content) and owner.",
            ["revision", "owner"],
            registry=r,
        )
        for result in RESULTS:
            self.applies.labels(result=result)
        for kind in KINDS:
            self.changes.labels(kind=kind)
        for result in ("valid", "invalid"):
            self.manifest_reads.labels(result=result)
        for reason in TRIGGERS:
            self.triggers.labels(reason=reason)

    def attempt(self, reason: str) -> None:
        self.triggers.labels(reason=reason).inc()

    def applied(
        self,
        result: AttemptResult,
        duration: float,
        *,
        counts: Mapping[str, int] | None = None,
        drifted: int = 0,
        now: float | None = None,
    ) -> None:
        """Record one finished attempt; ``now`` (Unix time) marks a success."""
        self.applies.labels(result=result.value).inc()
        self.duration.observe(duration)
        for kind in KINDS:
            if counts and counts.get(kind):
                self.changes.labels(kind=kind).inc(counts[kind])
        if drifted:
            self.drift_corrections.inc(drifted)
        if now is not None:
            self.last_success.set(now)

    def set_revision(self, revision: str, owner: str) -> None:
        self.info.clear()
        self.info.labels(revision=revision, owner=owner).set(1)

    def set_manifests(self, *, errors: int, entries: int | None) -> None:
        self.manifest_reads.labels(result="invalid" if errors else "valid").inc()
        self.manifests_invalid.set(1 if errors else 0)
        self.manifest_errors.set(errors)
        if entries is not None:
            self.desired_entries.set(entries)

    def render(self) -> bytes:
        return generate_latest(self.registry)
