"""Watch mode: keep Redis equal to the manifests, for as long as the process runs.

``redbeat-apply --watch PATH...`` applies at start, then again when

* a file under PATH changes (any event re-reads the whole tree, so a
  ConfigMap's ``..data`` symlink swap or an editor's write-and-rename gives one
  apply), unless the parsed content is unchanged;
* the resync interval (with +-10 % jitter) has passed, to undo hand edits in
  Redis and re-create entries deleted behind its back;
* a Redis error's back-off has passed.

Invalid manifests are logged, error by error, and the last good state stays in
force (resyncs keep applying it); a refused plan (conflict, mass delete) and a
Redis error leave Redis as it was.  SIGTERM/SIGINT stop the loop between
applies, never inside one.

The decisions (:func:`decide`, :func:`next_resync`, :func:`backoff`) are pure
functions of a :class:`LoopState` and the time; :func:`loop` takes its clock
and its event source as arguments, so tests drive it without sleeping.
"""

from __future__ import annotations

import enum
import logging
import os
import random as _random
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from reconciler.core.errors import ManifestErrors, PlanRefused, RedbeatError, TokenError
from reconciler.core.exit_codes import ExitCode
from reconciler.core.logs import LogFormat, configure, log
from reconciler.core.model import DesiredEntry
from reconciler.core.revision import revision_of, run_git
from reconciler.sidecar.file_events import EventSource, FileEvents
from reconciler.sidecar.health import HealthServer, Listen, Status
from reconciler.sidecar.metrics import KINDS, AttemptResult, WatchMetrics
from reconciler.sync.incremental import Incremental
from reconciler.sync.reconcile import Outcome, PlanOptions, Target

logger = logging.getLogger("reconciler.sidecar.watch")

#: Resync times are spread by this share either way, so replicas do not resync in step.
JITTER = 0.1
#: Back-off after a Redis error: 0.5 s, 1 s, 2 s ... capped at this (and at the resync interval).
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
#: The loop goes round at least this often (the liveness heartbeat).
MAX_WAIT = 1.0


class Trigger(enum.Enum):
    START = "start"
    CHANGE = "change"
    RESYNC = "resync"
    RETRY = "retry"


class Attempt(enum.Enum):
    """How one apply attempt ended, for the loop: it decides when to resync or retry."""

    OK = "ok"  # applied, or nothing to apply
    REFUSED = "refused"  # the plan was refused (conflict, safety valve): not retried until the manifests change
    ERROR = "error"  # Redis failed: retried after a back-off


# --- pure decisions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoopState:
    """What the loop remembers between applies; each outcome gives a new one."""

    resync_at: float = 0.0  # monotonic time of the next resync
    applied: str | None = None  # content digest of the last successful apply
    failed: str | None = None  # digest whose last attempt was refused or failed
    failures: int = 0  # attempts failed in a row
    retry_at: float | None = None  # after a Redis error: when to try again
    attempted: bool = False


def next_resync(now: float, interval: float, random: Callable[[], float]) -> float:
    """``now`` + ``interval`` +- JITTER; ``random()`` in [0, 1)."""
    return now + interval * (1 + JITTER * (2 * random() - 1))


def backoff(failures: int, *, cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait after ``failures`` (>= 1) Redis errors in a row: doubling from BACKOFF_BASE, capped."""
    return min(cap, BACKOFF_BASE * 2.0 ** min(max(failures, 1) - 1, 32))


def decide(now: float, digest: str | None, state: LoopState) -> Trigger | None:
    """Whether to apply now, and why; ``digest`` is that of the last valid manifests (None: never valid).

    A Redis error's back-off wins over everything (a file change waits for it);
    new content is applied at once unless its last attempt was refused; else
    only a due resync applies (the same content again, to undo drift).
    """
    if digest is None:
        return None
    if state.retry_at is not None:
        return Trigger.RETRY if now >= state.retry_at else None
    if digest != state.applied and digest != state.failed:
        return Trigger.CHANGE if state.attempted else Trigger.START
    if now >= state.resync_at:
        return Trigger.RESYNC
    return None


def wait_time(now: float, state: LoopState, cap: float = MAX_WAIT) -> float:
    """How long the loop may sleep before something is due (file events wake it earlier)."""
    due = state.retry_at if state.retry_at is not None else state.resync_at
    return max(0.0, min(cap, due - now))


def succeeded(state: LoopState, digest: str, resync_at: float) -> LoopState:
    return LoopState(resync_at=resync_at, applied=digest, attempted=True)


def refused(state: LoopState, digest: str, resync_at: float) -> LoopState:
    """A refusal is not retried until the content changes or the next resync (Redis may be fixed by hand)."""
    return replace(
        state, resync_at=resync_at, failed=digest, failures=state.failures + 1, retry_at=None, attempted=True
    )


def errored(state: LoopState, digest: str, now: float, resync_interval: float) -> LoopState:
    failures = state.failures + 1
    delay = backoff(failures, cap=min(BACKOFF_CAP, resync_interval))
    return replace(state, failed=digest, failures=failures, retry_at=now + delay, attempted=True)


# --- one step: load, decide, apply -----------------------------------------------------------

Load = Callable[[Sequence[Path]], Mapping[str, DesiredEntry]]
Reconcile = Callable[..., Outcome]


@dataclass
class Applier:
    """Loads the manifests and applies them; keeps the last good desired state and reports it."""

    paths: Sequence[Path]
    target: Target
    options: PlanOptions
    metrics: WatchMetrics
    status: Status
    load: Load
    reconcile: Reconcile
    dry_run: bool = False
    wall: Callable[[], float] = time.time
    git: Callable[[Path, Sequence[str]], str | None] = run_git
    desired: Mapping[str, DesiredEntry] | None = None
    digest: str | None = None
    revision: str = ""
    #: the incremental mode (sync.incremental): re-reads only changed files, plans only changed names
    incremental: Incremental | None = None
    _errors: tuple[str, ...] = field(default=())

    def _read(self) -> tuple[Mapping[str, DesiredEntry], str]:
        from reconciler.manifests.digest import content_digest

        if self.incremental is not None:
            desired = self.incremental.load()
            assert self.incremental.digest is not None
            return desired, self.incremental.digest
        desired = self.load(self.paths)
        return desired, content_digest(desired)

    def reload(self) -> None:
        """Re-read the manifests; on errors log each (once per distinct set) and keep the last good state."""
        try:
            desired, digest = self._read()
        except ManifestErrors as exc:
            self._invalid([str(e) for e in exc.errors])
            return
        except Exception as exc:  # a loader bug must not kill the sidecar; the last good state stays
            logger.exception("unexpected error while reading the manifests")
            self._invalid([f"unexpected error while reading the manifests: {exc!r}"])
            return
        if self._errors:
            log(logger, "manifests valid again", entries=len(desired))
            if digest != self.digest:
                # Readiness turns 200 only once Redis holds the fix, not in the moment between read and apply.
                self.status.apply("the fixed manifests are not applied yet")
        self._errors = ()
        self.metrics.set_manifests(errors=0, entries=len(desired))
        self.status.manifests(None)
        if digest != self.digest:
            self.desired, self.digest = desired, digest
            self.revision = revision_of(self.paths, digest, self.git)

    def _invalid(self, errors: list[str]) -> None:
        if tuple(errors) != self._errors:
            for error in errors:
                log(logger, "manifest error", logging.ERROR, error=error)
            kept = f"keeping revision {self.revision}" if self.desired is not None else "nothing applied yet"
            log(logger, "manifests invalid; nothing applied", logging.ERROR, errors=len(errors), kept=kept)
        self._errors = tuple(errors)
        self.metrics.set_manifests(errors=len(errors), entries=None)
        kept = "the last good state is kept" if self.desired is not None else "nothing applied"
        self.status.manifests(
            f"{len(errors)} manifest error{'s' if len(errors) != 1 else ''} ({kept}); first: {errors[0]}"
        )

    def apply(self, trigger: Trigger) -> Attempt:
        """One attempt and how it ended.  Never raises for Redis or plan trouble."""
        assert self.desired is not None and self.digest is not None
        self.metrics.attempt(trigger.value)
        level = logging.DEBUG if trigger is Trigger.RESYNC else logging.INFO
        log(logger, "apply started", level, trigger=trigger.value, revision=self.revision, entries=len(self.desired))
        started = time.perf_counter()
        try:
            if self.incremental is not None:
                outcome = self.incremental.reconcile(dry_run=self.dry_run, resync=trigger is Trigger.RESYNC)
            else:
                outcome = self.reconcile(self.desired, self.target, self.options, dry_run=self.dry_run)
        except PlanRefused as exc:
            elapsed = time.perf_counter() - started
            for error in exc.plan.errors:
                log(logger, "apply refused", logging.ERROR, reason=error)
            self.metrics.applied(AttemptResult.REFUSED, elapsed)
            self.status.apply(f"apply refused, nothing written: {exc}")
            return Attempt.REFUSED
        except (RedbeatError, RedisError) as exc:
            elapsed = time.perf_counter() - started
            log(logger, "apply failed; Redis unchanged", logging.ERROR, trigger=trigger.value, error=str(exc))
            self.metrics.applied(AttemptResult.ERROR, elapsed)
            self.status.apply(f"apply failed: {exc}")
            return Attempt.ERROR
        elapsed = time.perf_counter() - started
        self._report(outcome, trigger, elapsed)
        if outcome.result is not None:
            self._audit(outcome.plan)
        self.status.apply(None)
        return Attempt.OK

    def _audit(self, plan: Any) -> None:
        """Append the apply to the audit trail; a failure to is logged, never fails the apply that happened."""
        from reconciler.operating import audit
        from reconciler.operating.operate import actor

        try:
            audit.record(
                self.target.client,
                self.target.keys,
                audit.apply_record(actor(os.environ), self.target.owner, self.revision or "?", plan.counts()),
                time.time(),
            )
        except RedisError as exc:
            log(logger, "audit record failed", logging.WARNING, error=str(exc))

    def _report(self, outcome: Outcome, trigger: Trigger, elapsed: float) -> None:
        plan = outcome.plan
        counts = plan.counts()
        if outcome.result is not None:
            drifted = [c for c in plan.writes if c.drift]
            for change in plan.writes:
                log(
                    logger,
                    "change",
                    op=change.op.value,
                    name=change.name,
                    fields=[f.path for f in change.fields],
                    drift=bool(change.drift),
                )
            self.metrics.applied(AttemptResult.CHANGED, elapsed, counts=counts, drifted=len(drifted), now=self.wall())
            log(
                logger,
                "applied",
                trigger=trigger.value,
                revision=self.revision,
                duration_ms=round(elapsed * 1000, 1),
                drift_corrected=len(drifted),
                **{k: counts[k] for k in KINDS},
                unchanged=counts["no-op"],
            )
        elif self.dry_run and plan.has_changes:
            for change in plan.writes:
                log(logger, "would change (dry run)", op=change.op.value, name=change.name)
            self.metrics.applied(AttemptResult.DRY_RUN, elapsed, now=self.wall())
        else:
            self.metrics.applied(AttemptResult.UNCHANGED, elapsed, now=self.wall())
            level = logging.DEBUG if trigger is Trigger.RESYNC else logging.INFO
            log(logger, "in sync", level, trigger=trigger.value, revision=self.revision, unchanged=counts["no-op"])
        self.metrics.set_revision(self.revision, self.target.owner)


# --- the loop --------------------------------------------------------------------------------


def loop(
    applier: Applier,
    events: EventSource,
    stop: threading.Event,
    *,
    resync_interval: float,
    clock: Callable[[], float] = time.monotonic,
    random: Callable[[], float] = _random.random,
) -> LoopState:
    """Run until ``stop`` is set (checked between steps, never during an apply); returns the last state."""
    state = LoopState(resync_at=clock())
    dirty = True  # the files must be read: at start, and after every event
    while not stop.is_set():
        now = clock()
        resync_due = now >= state.resync_at and state.retry_at is None
        retry_due = state.retry_at is not None and now >= state.retry_at
        if dirty or resync_due or retry_due:
            if dirty or resync_due:  # a resync re-reads too, in case an event was missed
                applier.reload()
            dirty = False
            trigger = decide(now, applier.digest, state)
            if trigger is None and resync_due:  # nothing valid to apply yet: look again at the next resync
                state = replace(state, resync_at=next_resync(now, resync_interval, random))
            elif trigger is not None:
                digest = applier.digest
                assert digest is not None
                result = applier.apply(trigger)
                now = clock()
                if result is Attempt.OK:
                    state = succeeded(state, digest, next_resync(now, resync_interval, random))
                elif result is Attempt.REFUSED:
                    state = refused(state, digest, next_resync(now, resync_interval, random))
                else:
                    state = errored(state, digest, now, resync_interval)
                    log(
                        logger,
                        "will retry",
                        logging.WARNING,
                        in_seconds=round(state.retry_at - now, 2),  # type: ignore[operator]
                        failures=state.failures,
                    )
                applier.metrics.consecutive_failures.set(state.failures)
        applier.metrics.ready.set(1 if applier.status.ready()[0] else 0)
        applier.status.heartbeat()
        if applier.incremental is not None:
            applier.incremental.keep_up()
        if stop.is_set():
            break
        if events.wait(wait_time(clock(), state)):
            dirty = True
    return state


# --- the process -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    paths: tuple[Path, ...]
    redis_url: str
    key_prefix: str
    owner: str
    options: PlanOptions
    listen: Listen
    resync_interval: float = 60.0
    full_resync_interval: float = 3600.0
    debounce: float = 0.3
    force_polling: bool = False
    dry_run: bool = False
    log_format: LogFormat = "text"
    console: bool = False  # serve the web console on ``listen`` too (reconciler.sidecar.console_mount)
    console_token_file: Path | None = None


def _console(settings: Settings, applier: Applier, status: Status) -> Any:
    """The console's WSGI app with ``--console``, else None."""
    if not settings.console:
        return None
    from reconciler.console.server import exposure_warnings
    from reconciler.sidecar.console_mount import console_app, is_loopback

    listen = settings.listen
    app = console_app(applier, status, settings.console_token_file, os.environ, is_loopback(listen.host))
    for warning in exposure_warnings(listen.host, listen.port, bool(app.token), settings.console_token_file):
        log(logger, "console warning", logging.WARNING, warning=warning)
    return app


def _check_paths(paths: Sequence[Path]) -> bool:
    """False (logged) when a path is missing; a single file is watched, with a warning about subPath mounts."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        log(logger, "path does not exist", logging.ERROR, paths=missing)
        return False
    for path in paths:
        if not path.is_dir():
            log(
                logger,
                "watching a single file: a Kubernetes subPath mount is never updated; "
                "mount the ConfigMap as a directory",
                logging.WARNING,
                path=str(path),
            )
    return True


def _log_start(settings: Settings, server: HealthServer) -> None:
    from redbeat.redaction import redact_url

    log(
        logger,
        "watching",
        paths=[str(p) for p in settings.paths],
        redis=redact_url(settings.redis_url),
        owner=settings.owner,
        prefix=settings.key_prefix,
        listen=str(server.address),
        console=settings.console,
        resync_interval=settings.resync_interval,
        full_resync_interval=settings.full_resync_interval,
        debounce=settings.debounce,
        polling=settings.force_polling,
    )


def run(settings: Settings) -> ExitCode:
    """The ``--watch`` process: HTTP, file events and signals around :func:`loop`; OK on SIGTERM/SIGINT."""
    from prometheus_client import disable_created_metrics

    from reconciler.sync.reconcile import connect, load, reconcile

    configure(settings.log_format)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    if not _check_paths(settings.paths):
        return ExitCode.ERROR
    target = connect(settings.redis_url, settings.key_prefix, settings.owner)
    metrics = WatchMetrics()
    status = Status(stall_after=max(120.0, 2 * settings.resync_interval))
    incremental = Incremental(settings.paths, target, settings.options,
                              full_resync_interval=settings.full_resync_interval)
    applier = Applier(settings.paths, target, settings.options, metrics, status, load, reconcile, settings.dry_run,
                      incremental=incremental)
    try:
        console = _console(settings, applier, status)
        server = HealthServer(settings.listen, status, metrics.render, console).start()
    except OSError as exc:
        log(logger, "cannot listen", logging.ERROR, listen=str(settings.listen), error=str(exc))
        return ExitCode.ERROR
    except TokenError as exc:  # an unusable console token
        log(logger, "console token refused", logging.ERROR, error=str(exc))
        return ExitCode.ERROR
    events = FileEvents(settings.paths, debounce=settings.debounce, force_polling=settings.force_polling)
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()
        events.interrupt()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    _log_start(settings, server)
    try:
        incremental.subscribe()
        loop(applier, events, stop, resync_interval=settings.resync_interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        events.close()
        server.close()
        incremental.close()
    log(logger, "stopped", signal=received[0] if received else None)
    return ExitCode.OK
