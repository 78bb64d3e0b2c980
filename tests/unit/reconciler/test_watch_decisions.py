"""Watch mode without Redis or real time: the pure decisions, and the loop on a fake clock and fake events."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler.core.errors import Location, ManifestError, ManifestErrors, PlanRefused, StoreError
from reconciler.core.logs import JsonFormatter, TextFormatter, log
from reconciler.core.model import DesiredEntry
from reconciler.sidecar import watch
from reconciler.sidecar.health import Listen, Status, parse_listen
from reconciler.sidecar.metrics import RESULTS, WatchMetrics
from reconciler.sidecar.watch import LoopState, Trigger, backoff, decide, next_resync, wait_time
from reconciler.sync.plan import Plan
from reconciler.sync.reconcile import Outcome, PlanOptions, Target
from redbeat.keys import KeySpace

# --- decisions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "digest", "state", "expected"),
    [
        (0, None, LoopState(), None),  # never valid: nothing to apply
        (0, "a", LoopState(), Trigger.START),
        (5, "b", LoopState(resync_at=60, applied="a", attempted=True), Trigger.CHANGE),
        (5, "a", LoopState(resync_at=60, applied="a", attempted=True), None),  # same content: skip
        (60, "a", LoopState(resync_at=60, applied="a", attempted=True), Trigger.RESYNC),
        (5, "b", LoopState(resync_at=60, applied="a", failed="b", attempted=True), None),  # refused: not again
        (60, "b", LoopState(resync_at=60, applied="a", failed="b", attempted=True), Trigger.RESYNC),
        (5, "c", LoopState(resync_at=60, applied="a", failed="b", attempted=True), Trigger.CHANGE),
        (5, "b", LoopState(resync_at=0, failed="b", retry_at=6, attempted=True), None),  # back-off wins
        (6, "b", LoopState(resync_at=0, failed="b", retry_at=6, attempted=True), Trigger.RETRY),
        (6, "c", LoopState(resync_at=0, failed="b", retry_at=6, attempted=True), Trigger.RETRY),
        (0, "a", LoopState(failed="x", attempted=True), Trigger.CHANGE),  # invalid at start, valid later
    ],
)
def test_decide(now, digest, state, expected):
    assert decide(now, digest, state) is expected


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 154.0), (0.5, 160.0), (0.75, 163.0)])
def test_next_resync_jitters_ten_percent_either_way(rand, expected):
    assert next_resync(100.0, 60.0, lambda: rand) == pytest.approx(expected)


def test_backoff_doubles_from_half_a_second_and_is_capped():
    assert [backoff(n) for n in range(1, 10)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert [backoff(n, cap=1.0) for n in (1, 2, 3)] == [0.5, 1.0, 1.0]
    assert backoff(10_000) == 30.0


def test_wait_time_until_the_next_due_thing_capped():
    assert wait_time(10.0, LoopState(resync_at=10.4)) == pytest.approx(0.4)
    assert wait_time(10.0, LoopState(resync_at=70.0)) == 1.0
    assert wait_time(10.0, LoopState(resync_at=5.0)) == 0.0
    assert wait_time(10.0, LoopState(resync_at=5.0, retry_at=10.25)) == pytest.approx(0.25)  # retry, not resync


def test_transitions():
    state = LoopState(resync_at=0, failures=2, retry_at=3.0, failed="a", attempted=True)
    assert watch.succeeded(state, "a", 70.0) == LoopState(resync_at=70.0, applied="a", attempted=True)
    assert watch.refused(LoopState(applied="a"), "b", 70.0) == LoopState(
        resync_at=70.0, applied="a", failed="b", failures=1, attempted=True)
    assert watch.errored(state, "a", 10.0, resync_interval=60.0) == LoopState(
        resync_at=0, failed="a", failures=3, retry_at=12.0, attempted=True)
    assert watch.errored(state, "a", 10.0, resync_interval=1.0).retry_at == 11.0  # capped at the resync interval


# --- revision, listen, status, logs --------------------------------------------------------------------


def test_revision_is_the_commit_of_a_clean_checkout_else_the_content(tmp_path):
    calls: list[tuple[Path, tuple[str, ...]]] = []

    def git(replies: dict[str, str | None]) -> Callable[[Path, list[str]], str | None]:
        def run(directory, args):
            calls.append((directory, tuple(args)))
            return replies[args[0]]
        return run

    digest = "ab" * 32
    assert watch.revision_of([tmp_path], digest, git({"rev-parse": "c0ffee", "status": ""})) == "c0ffee"
    assert calls == [(tmp_path, ("rev-parse", "HEAD")), (tmp_path, ("status", "--porcelain", "--", "."))]
    assert (
        watch.revision_of([tmp_path], digest, git({"rev-parse": "c0ffee", "status": " M jobs.yaml"}))
        == "sha256:" + "ab" * 8
    )
    assert watch.revision_of([tmp_path], digest, git({"rev-parse": None, "status": None})) == "sha256:" + "ab" * 8
    (tmp_path / "jobs.yaml").write_text("")
    calls.clear()
    assert watch.revision_of([tmp_path / "jobs.yaml"], digest, git({})) == "sha256:" + "ab" * 8
    assert calls == []


def test_run_git_reads_a_real_checkout(tmp_path):
    assert watch.run_git(tmp_path, ["rev-parse", "HEAD"]) is None  # not a checkout
    here = Path(__file__).resolve().parent
    head = watch.run_git(here, ["rev-parse", "HEAD"])
    assert head is not None and len(head) == 40


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9185", Listen("127.0.0.1", 9185)),
        ("0.0.0.0:80", Listen("0.0.0.0", 80)),
        (":9185", Listen("127.0.0.1", 9185)),
        ("[::1]:9000", Listen("::1", 9000)),
        ("localhost:0", Listen("localhost", 0)),
    ],
)
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9185", "host:", "host:http", "host:70000", ""])
def test_parse_listen_rejects(text):
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        parse_listen(text)


def test_listen_prints_ipv6_in_brackets():
    assert [str(Listen("::1", 1)), str(Listen("0.0.0.0", 2))] == ["[::1]:1", "0.0.0.0:2"]


def test_status_ready_needs_valid_manifests_and_a_good_apply_and_live_needs_a_recent_heartbeat():
    now = [0.0]
    status = Status(clock=lambda: now[0], stall_after=120)
    assert status.ready() == (False, "manifests not loaded yet; no apply yet")
    status.manifests(None)
    status.apply(None)
    assert status.ready() == (True, "ok")
    status.manifests("2 manifest errors")
    assert status.ready() == (False, "2 manifest errors")
    now[0] = 119.0
    assert status.live() == (True, "ok")
    now[0] = 121.0
    assert status.live() == (False, "the watch loop has not run for 121s")
    status.heartbeat()
    assert status.live() == (True, "ok")


def _record(message: str, **fields) -> logging.LogRecord:
    record = logging.LogRecord("reconciler.sidecar.watch", logging.WARNING, __file__, 1, message, None, None)
    record.created, record.msecs = 1_800_000_000.25, 250.0
    record.redbeat_fields = fields  # as logs.log() sets it
    return record


def test_json_log_lines():
    line = JsonFormatter().format(_record("applied", create=2, names=["a b"], event="not overridden"))
    assert json.loads(line) == {
        "ts": "2027-01-15T08:00:00.250Z",
        "level": "warning",
        "logger": "reconciler.sidecar.watch",
        "event": "applied",
        "create": 2,
        "names": ["a b"],
    }


def test_text_log_lines_quote_only_what_needs_it():
    line = TextFormatter().format(_record("apply failed", error="Connection refused", trigger="retry", n=3, ok=True))
    assert line == '2027-01-15T08:00:00.250Z WARNING apply failed error="Connection refused" trigger=retry n=3 ok=true'


def test_log_helper_passes_fields():
    stream = io.StringIO()
    logger = logging.getLogger("reconciler.test_watch_unit")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        log(logger, "in sync", unchanged=4)
    finally:
        logger.removeHandler(handler)
    assert {k: v for k, v in json.loads(stream.getvalue()).items() if k != "ts"} == {
        "level": "info",
        "logger": "reconciler.test_watch_unit",
        "event": "in sync",
        "unchanged": 4,
    }


# --- the loop on a fake clock -----------------------------------------------------------------------


def entry(name: str, every: float) -> DesiredEntry:
    definition = {
        "name": name,
        "task": "t",
        "args": [],
        "kwargs": {},
        "options": {},
        "schedule": {"__type__": "interval", "every": every, "relative": False},
        "enabled": True,
    }
    return DesiredEntry(name, definition, None, False, Location(Path("jobs.yaml"), 1, 1, ""))


class World:
    """A fake clock, a fake file tree (``files`` is what load returns, or a ManifestErrors to raise),
    scripted file edits, and a scripted reconcile."""

    def __init__(self, until: float) -> None:
        self.now = 0.0
        self.until = until
        self.files: dict[str, DesiredEntry] | ManifestErrors = {"a": entry("a", 30)}
        self.edits: list[tuple[float, Callable[[], None]]] = []
        self.failures: list[BaseException | None] = []  # per reconcile call; None = success
        self.calls: list[tuple[float, dict[str, float]]] = []
        self.stop = threading.Event()
        self.waits = 0
        self.on_reconcile: Callable[[], None] = lambda: None

    def load(self, paths):
        if isinstance(self.files, ManifestErrors):
            raise self.files
        return dict(self.files)

    def reconcile(self, desired, target, options, *, dry_run=False):
        self.calls.append((self.now, {n: e.definition["schedule"]["every"] for n, e in desired.items()}))
        self.on_reconcile()
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        return Outcome(Plan("default", ()), None)

    def wait(self, timeout: float) -> bool:
        self.waits += 1
        deadline = self.now + timeout
        if self.edits and self.edits[0][0] <= deadline:
            at, edit = self.edits.pop(0)
            self.now = max(self.now, at)
            edit()
            return True
        self.now = deadline
        if self.now >= self.until:
            self.stop.set()
        return False

    def interrupt(self) -> None:
        self.stop.set()

    def run(self) -> tuple[LoopState, watch.Applier]:
        metrics = WatchMetrics()
        status = Status(clock=lambda: self.now)
        applier = watch.Applier(
            [Path("schedules")],
            Target(None, KeySpace(), "default"),
            PlanOptions(),
            metrics,
            status,
            self.load,
            self.reconcile,
            wall=lambda: 1_800_000_000 + self.now,
            git=lambda directory, args: None,
        )
        self.applier = applier  # for on_reconcile hooks that look at the status mid-apply
        state = watch.loop(applier, self, self.stop, resync_interval=60, clock=lambda: self.now, random=lambda: 0.5)
        return state, applier


def samples(metrics: WatchMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(metrics.render().decode())
        for s in f.samples
    }


def test_loop_applies_at_start_on_change_and_at_resync_only():
    world = World(until=140)
    world.edits = [
        (10, lambda: setattr(world, "files", {"a": entry("a", 45)})),
        (20, lambda: setattr(world, "files", {"a": entry("a", 45)})),  # touched, same content: skipped
    ]
    state, applier = world.run()
    assert world.calls == [(0, {"a": 30}), (10, {"a": 45}), (70, {"a": 45}), (130, {"a": 45})]
    assert state.resync_at == 190 and state.failures == 0
    values = samples(applier.metrics)
    assert [
        values[("redbeat_apply_triggers_total", (("reason", r),))] for r in ("start", "change", "resync", "retry")
    ] == [1, 1, 2, 0]
    assert values[("redbeat_apply_applies_total", (("result", "unchanged"),))] == 4
    assert values[("redbeat_apply_last_success_timestamp_seconds", ())] == 1_800_000_130
    assert values[("redbeat_apply_ready", ())] == 1
    assert applier.status.ready() == (True, "ok")
    assert world.waits < 160  # about one wake-up a second, never a busy loop


def test_loop_backs_off_on_redis_errors_and_converges():
    world = World(until=20)
    world.failures = [StoreError("down"), StoreError("down"), StoreError("down"), None]
    world.edits = [(1.0, lambda: setattr(world, "files", {"a": entry("a", 99)}))]  # during back-off: waits for it
    state, applier = world.run()
    assert world.calls == [(0, {"a": 30}), (0.5, {"a": 30}), (1.5, {"a": 99}), (3.5, {"a": 99})]
    assert state == LoopState(resync_at=63.5, applied=state.applied, attempted=True)
    values = samples(applier.metrics)
    assert values[("redbeat_apply_applies_total", (("result", "error"),))] == 3
    assert values[("redbeat_apply_triggers_total", (("reason", "retry"),))] == 3
    assert values[("redbeat_apply_consecutive_failures", ())] == 0


def test_loop_stays_not_ready_while_redis_is_down():
    world = World(until=10)
    world.failures = [StoreError("Redis at redis://x failed")] * 100
    state, applier = world.run()
    assert [t for t, _ in world.calls] == [0, 0.5, 1.5, 3.5, 7.5]
    assert state.failures == 5
    assert applier.status.ready() == (False, "apply failed: Redis at redis://x failed")
    assert samples(applier.metrics)[("redbeat_apply_ready", ())] == 0


def test_loop_keeps_the_last_good_state_while_files_are_invalid():
    world = World(until=130)
    bad = ManifestErrors([ManifestError(Location(Path("jobs.yaml"), 3, 5, "schedules[0].every"), "not a duration")])
    world.edits = [
        (10, lambda: setattr(world, "files", bad)),
        (100, lambda: setattr(world, "files", {"a": entry("a", 5)})),
    ]
    state, applier = world.run()
    # the resync at 60 applies the last good state (a: 30); the fix at 100 applies at once
    assert world.calls == [(0, {"a": 30}), (60, {"a": 30}), (100, {"a": 5})]
    assert applier.status.ready() == (True, "ok")
    values = samples(applier.metrics)
    assert values[("redbeat_apply_manifest_reads_total", (("result", "invalid"),))] == 2  # the edit, the resync
    assert values[("redbeat_apply_manifests_invalid", ())] == 0


def test_loop_is_not_ready_after_a_fix_until_the_fixed_content_is_applied():
    """/readyz turning 200 promises Redis holds the fixed manifests: a probe between the re-read and the
    apply (the e2e test hit this window) must still see 503."""
    world = World(until=130)
    bad = ManifestErrors([ManifestError(Location(Path("jobs.yaml"), 3, 5, "schedules[0].every"), "not a duration")])
    world.edits = [
        (10, lambda: setattr(world, "files", bad)),
        (100, lambda: setattr(world, "files", {"a": entry("a", 5)})),
    ]
    seen: list[tuple[float, bool]] = []
    world.on_reconcile = lambda: seen.append((world.now, world.applier.status.ready()[0]))
    state, applier = world.run()
    assert seen == [(0, False), (60, False), (100, False)]
    assert applier.status.ready() == (True, "ok")


def test_loop_stays_ready_while_an_edit_to_valid_manifests_is_applied():
    """An edit of valid manifests does not flap readiness (the pod's probes would see every save)."""
    world = World(until=30)
    world.edits = [(10, lambda: setattr(world, "files", {"a": entry("a", 45)}))]
    readiness: list[bool] = []
    world.on_reconcile = lambda: readiness.append(world.applier.status.ready()[0])
    world.run()
    assert readiness == [False, True]  # before the first apply: not ready; the edit: still ready


def test_loop_never_valid_applies_nothing_and_does_not_spin():
    world = World(until=200)
    world.files = ManifestErrors([ManifestError(Location(Path("x.yaml"), None, None, ""), "no schedules found")])
    state, applier = world.run()
    assert world.calls == []
    assert applier.status.ready() == (
        False,
        "1 manifest error (nothing applied); first: x.yaml: no schedules found; no apply yet",
    )
    assert (
        samples(applier.metrics)[("redbeat_apply_manifest_reads_total", (("result", "invalid"),))] == 4
    )  # 0, 60, 120, 180
    assert world.waits < 220


def test_loop_refusal_is_retried_at_resync_not_before():
    world = World(until=100)
    refusal = PlanRefused(Plan("default", (), ("a: exists in Redis, owned by nobody",)))
    world.failures = [refusal, refusal, None]
    state, applier = world.run()
    assert [t for t, _ in world.calls] == [0, 60]  # refused at start, again at the resync...
    world2 = World(until=130)
    world2.failures = [refusal, refusal, None]
    world2.run()
    assert [t for t, _ in world2.calls] == [0, 60, 120]  # ...and applied at the next one
    assert samples(applier.metrics)[("redbeat_apply_applies_total", (("result", "refused"),))] == 2
    assert applier.status.ready() == (False, "apply refused, nothing written: a: exists in Redis, owned by nobody")


def test_an_apply_attempt_ends_in_one_of_three_outcomes_each_with_its_metric():
    world = World(until=0)
    refusal = PlanRefused(Plan("default", (), ("a: exists in Redis, owned by nobody",)))
    world.failures = [None, refusal, StoreError("down")]
    world.run()  # one start-up apply: the first scripted reconcile, which succeeds
    applier = world.applier
    assert applier.apply(watch.Trigger.CHANGE) is watch.Attempt.REFUSED
    assert applier.apply(watch.Trigger.RETRY) is watch.Attempt.ERROR
    assert applier.apply(watch.Trigger.RESYNC) is watch.Attempt.OK
    values = samples(applier.metrics)
    assert {r: values[("redbeat_apply_applies_total", (("result", r),))] for r in RESULTS} == {
        "changed": 0, "unchanged": 2, "dry_run": 0, "refused": 1, "error": 1,
    }


def test_stop_during_an_apply_lets_it_finish_then_returns():
    world = World(until=1000)
    world.on_reconcile = world.stop.set  # SIGTERM arrives while the apply runs
    state, applier = world.run()
    assert len(world.calls) == 1
    assert state.applied is not None and applier.status.ready() == (True, "ok")
    assert world.waits == 0


# --- the CLI options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--listen", "9185", "expected HOST:PORT"),
        ("--resync-interval", "0", "greater than 0"),
        ("--debounce", "soon", "not a duration"),
        ("--log-format", "xml", "invalid choice"),
    ],
)
def test_watch_options_are_checked_before_anything_runs(tmp_path, capsys, flag, value, message):
    from reconciler.cli.main import main

    assert main(["--watch", str(tmp_path), flag, value]) == 1
    assert message in capsys.readouterr().err


def test_watch_options_reach_watch_run(tmp_path, monkeypatch):
    from reconciler.cli.main import main

    seen: list[watch.Settings] = []
    monkeypatch.setattr(watch, "run", lambda settings: seen.append(settings) or 0)
    assert (
        main(
            [
                "--watch",
                str(tmp_path),
                "--resync-interval",
                "2m",
                "--debounce",
                "150ms",
                "--force-polling",
                "--listen",
                "0.0.0.0:9999",
                "--log-format",
                "json",
                "--owner",
                "team-a",
                "--no-prune",
                "--redis-url",
                "redis://h:1/2",
            ]
        )
        == 0
    )
    assert seen == [
        watch.Settings(
            paths=(tmp_path,),
            redis_url="redis://h:1/2",
            key_prefix="redbeat:",
            owner="team-a",
            options=PlanOptions(prune=False),
            listen=Listen("0.0.0.0", 9999),
            resync_interval=120.0,
            debounce=0.15,
            force_polling=True,
            dry_run=False,
            log_format="json",
        )
    ]


def test_watch_defaults(tmp_path, monkeypatch):
    from reconciler.cli.main import main

    seen: list[watch.Settings] = []
    monkeypatch.setattr(watch, "run", lambda settings: seen.append(settings) or 0)
    monkeypatch.delenv("REDBEAT_REDIS_URL", raising=False)
    assert main(["--watch", str(tmp_path)]) == 0
    assert (seen[0].listen, seen[0].resync_interval, seen[0].debounce, seen[0].force_polling, seen[0].log_format) == (
        Listen("127.0.0.1", 9185),
        60.0,
        0.3,
        False,
        "text",
    )
