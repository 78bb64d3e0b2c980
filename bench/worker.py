"""One benchmark run inside ONE implementation's interpreter; prints one JSON line.

    <python> bench/worker.py '<json spec>'

Self-contained on purpose: it imports only the standard library, celery,
redis and whichever ``redbeat`` the interpreter has.  ``python -m bench``
runs it with its own interpreter for ours, and with the celery-redbeat 2.4.2
venv's python (cwd outside the repo, no PYTHONPATH) for theirs; both
packages import as ``redbeat``, and the result says which one ran.

Entries are written with each implementation's own code (``Entry.save()``,
``Entry._next_instance()``; for ours ``EntryStore.write_statics``, the path
its start-up uses), through :class:`BatchClient`, which queues the commands
those methods put in their pipelines into one big pipeline: the same bytes,
in a few round trips instead of one or two per entry.
"""

from __future__ import annotations

import collections
import gc
import importlib.metadata
import json
import os
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

DAY = 86400.0
#: The tick scenario makes entries 0..K-1 due, and the last entry (n - 1) to warm a scheduler up;
#: the restart scenario re-saves the others (``skip``..n-2), whose run state is still the seeded one.
NAME = "bench-{:06d}"
TASK = "bench.noop"
BASE_KEY = "bench:base"  # when the db was seeded (epoch seconds) and how many entries


def implementation() -> str:
    try:
        importlib.metadata.version("celery-redbeat")
        return "celery-redbeat"
    except importlib.metadata.PackageNotFoundError:
        return "ours"


IMPL = implementation()


# --- counting -----------------------------------------------------------------

ROUND_TRIPS: collections.Counter = collections.Counter()


def _install_round_trip_counter() -> None:
    """Count every write of a command batch to a socket (a round trip), per Redis db."""
    import redis.connection as rc

    original = rc.AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):  # type: ignore[no-untyped-def]
        ROUND_TRIPS[getattr(self, "db", None)] += 1
        return original(self, command, check_health)

    rc.AbstractConnection.send_packed_command = counted


_install_round_trip_counter()


class Stats:
    """INFO commandstats deltas on a control connection (db 0, used for nothing else)."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url + "/0", decode_responses=True)

    def snapshot(self) -> dict[str, int]:
        info = self.client.info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}

    @staticmethod
    def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        out = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        out.pop("info", None)
        return {k: v for k, v in out.items() if v}


# --- app, clock, entries -------------------------------------------------------

CLOCK: list[datetime | None] = [None]


@contextmanager
def pinned(at: datetime):
    """Make every app's now() return ``at`` (entries compute scores from now())."""
    from celery import Celery

    real = Celery.now
    Celery.now = lambda self: at.astimezone(self.timezone)  # type: ignore[method-assign]
    try:
        yield
    finally:
        Celery.now = real  # type: ignore[method-assign]


def make_app(redis_url: str, db: int, broker: str = "memory", broker_db: int = 15, **conf):  # type: ignore[no-untyped-def]
    from celery import Celery

    app = Celery("bench", set_as_current=True)
    app.conf.update(
        broker_url="memory://" if broker == "memory" else f"{redis_url}/{broker_db}",
        redbeat_redis_url=f"{redis_url}/{db}",
        redbeat_key_prefix="redbeat:",
        redbeat_lock_key=None,
        timezone="UTC",
        enable_utc=True,
        beat_schedule={},
        broker_connection_retry_on_startup=True,
        **conf,
    )
    app.set_current()
    app.set_default()
    return app


def entry_class():
    from redbeat import RedBeatSchedulerEntry

    return RedBeatSchedulerEntry


def message_of(i: int) -> tuple[list, dict, dict]:
    """Entry i's message: (args, kwargs, options), as stored in its definition and sent by beat."""
    return [i], {}, {}


def make_entry(app, i: int, interval: float = DAY):  # type: ignore[no-untyped-def]
    from celery.schedules import schedule

    args, kwargs, options = message_of(i)
    return entry_class()(
        name=NAME.format(i), task=TASK, schedule=schedule(run_every=timedelta(seconds=interval), app=app),
        args=args, kwargs=kwargs, options=options, app=app,
    )


def last_run_of(i: int, base: float) -> datetime:
    """Steady state: entry i last ran between 30 min and 23.5 h before ``base`` (a daily entry)."""
    offset = 1800.0 + (i * 7919 % 82800) + (i % 997) / 997.0
    return datetime.fromtimestamp(base - offset, tz=timezone.utc)


class _Queued:
    def __init__(self, pipe):  # type: ignore[no-untyped-def]
        self._pipe = pipe

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc):  # type: ignore[no-untyped-def]
        return False

    def execute(self, *a, **k):  # type: ignore[no-untyped-def]
        return []

    def reset(self) -> None:
        pass

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self._pipe, name)


class BatchClient:
    """Looks like the redis client to an implementation's write methods; queues their pipelines into one."""

    def __init__(self, real, every: int = 20000):  # type: ignore[no-untyped-def]
        self.real = real
        self.pipe = real.pipeline(transaction=False)
        self.every = every
        self.count = 0

    def pipeline(self, transaction=True, shard_hint=None):  # type: ignore[no-untyped-def]
        self.count += 1
        if self.count % self.every == 0:
            self.pipe.execute()
        return _Queued(self.pipe)

    def flush(self) -> None:
        self.pipe.execute()

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.real, name)


@contextmanager
def batched(app):  # type: ignore[no-untyped-def]
    from redbeat.schedulers import get_redis

    real = get_redis(app)
    batch = BatchClient(real)
    app.redbeat_redis = batch
    try:
        yield batch
        batch.flush()
    finally:
        app.redbeat_redis = real


def define(app, entry) -> None:  # type: ignore[no-untyped-def]
    """Write the definition as the implementation does when an entry is created or re-saved at start-up."""
    if IMPL == "celery-redbeat":
        entry.save()
    else:
        from redbeat import codec
        from redbeat.entry import store_for

        store_for(app).write_statics(
            writes={entry.name: (entry._definition_json(), codec.encode_ext(entry.ext), None, -1)},
            removed=(), names=(), record_names=False,
        )


def record_run(app, entry, at: datetime) -> None:  # type: ignore[no-untyped-def]
    """Leave the run state beat leaves after running ``entry`` at ``at`` (its own _next_instance)."""
    with pinned(at):
        entry.last_run_at = at
        entry._next_instance(last_run_at=at)


def seed(app, client, n: int) -> float:  # type: ignore[no-untyped-def]
    """Fill an empty db with n daily entries in steady state (each ran once, somewhere in the last day)."""
    base = time.time()
    client.flushdb()
    with batched(app):
        for i in range(n):
            entry = make_entry(app, i)
            at = last_run_of(i, base)
            with pinned(at):
                entry.last_run_at = at
                define(app, entry)
            record_run(app, entry, at)
    client.hset(BASE_KEY, mapping={"base": repr(base), "n": n})
    return base


def ensure_seeded(app, client, n: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(base, seconds spent seeding): seed once per db, reuse it in later rounds."""
    stored = client.hgetall(BASE_KEY)
    if stored and int(stored["n"]) == n:
        return float(stored["base"]), 0.0
    started = time.perf_counter()
    base = seed(app, client, n)
    return base, time.perf_counter() - started


def make_due(app, indexes) -> None:  # type: ignore[no-untyped-def]
    """Entries last ran two days ago: overdue now (one round trip for all of them)."""
    at = datetime.now(timezone.utc) - timedelta(seconds=2 * DAY)
    with batched(app):
        for i in indexes:
            record_run(app, make_entry(app, i), at)


def scheduler(app):  # type: ignore[no-untyped-def]
    from redbeat import RedBeatScheduler

    return RedBeatScheduler(app)


def broker_client(redis_url: str, broker_db: int):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(f"{redis_url}/{broker_db}")


@contextmanager
def timing_sends(spent: list[float]):  # type: ignore[no-untyped-def]
    """Add the seconds spent inside celery's ``Scheduler.send_task`` (both implementations send through it)."""
    from celery.beat import Scheduler

    original = Scheduler.send_task

    def timed(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    Scheduler.send_task = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        Scheduler.send_task = original  # type: ignore[method-assign]


def timed_tick(sched, stats: Stats, sched_db: int, broker_db: int) -> dict:  # type: ignore[no-untyped-def]
    gc.collect()
    ROUND_TRIPS.clear()
    before = stats.snapshot()
    in_send_task = [0.0]
    with timing_sends(in_send_task):
        cpu, started = time.process_time(), time.perf_counter()
        sched.tick()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    commands = Stats.delta(before, stats.snapshot())
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "send_task_seconds": in_send_task[0],  # the tick's own send_task calls, what the bare loop times
        "commands": sum(commands.values()),
        "command_breakdown": commands,
        "round_trips": ROUND_TRIPS.get(sched_db, 0),
        "broker_round_trips": ROUND_TRIPS.get(broker_db, 0),
    }


#: The header Celery's beat adds to every message it sends (celery.beat.Scheduler.apply_async).
BEAT_HEADER = "celery_beat_task"


def bare_send_loop(app, indexes) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(seconds, CPU seconds of this process) for plain ``app.send_task`` calls of beat's messages.

    The floor a tick is measured against: for entries ``indexes``, the same task name, args, kwargs and
    options as their definitions, the header Celery's beat adds, one producer (and connection) for the
    whole loop as beat uses one for its tick, the same broker.  A first send, untimed, declares the queue.
    """
    with app.producer_or_acquire() as producer:
        app.send_task(TASK, args=[-1], kwargs={}, producer=producer, headers={BEAT_HEADER: True})
        messages = [message_of(i) for i in indexes]
        gc.collect()
        cpu, started = time.process_time(), time.perf_counter()
        for args, kwargs, options in messages:
            app.send_task(TASK, args=args, kwargs=kwargs, producer=producer, headers={BEAT_HEADER: True}, **options)
        return time.perf_counter() - started, time.process_time() - cpu


def timed_tick_beside_floor(app, sched, stats, db: int, broker_db: int, k: int, drain) -> tuple[dict, float, float]:  # type: ignore[no-untyped-def]
    """One tick sending entries 0..k-1, bracketed by two bare send loops of the same messages.

    Returns the tick's measurements and the floor, wall and CPU: the mean of the loop before and the
    loop after, so a drift of the machine's speed during the measurement shows on both sides alike.
    ``drain`` empties the broker queue between them.
    """
    before, before_cpu = bare_send_loop(app, range(k))
    drain()
    tick = timed_tick(sched, stats, db, broker_db)
    tick["sent"] = drain()
    after, after_cpu = bare_send_loop(app, range(k))
    drain()
    return tick, (before + after) / 2, (before_cpu + after_cpu) / 2


def warm_scheduler(app, sched, client, n: int) -> None:  # type: ignore[no-untyped-def]
    """Connections, scripts, producer and the publish path warm: an idle tick, then a tick sending one entry."""
    client.ping()
    sched.tick()
    _ = sched.producer
    make_due(app, [n - 1])
    sched.tick()


# --- scenarios -----------------------------------------------------------------


def queue_drainer(bclient, broker: str):  # type: ignore[no-untyped-def]
    """Empties the broker's default queue; returns how many messages it held (None for memory://)."""

    def drain() -> int | None:
        if broker != "redis":
            return None
        held = bclient.llen("celery")
        bclient.delete("celery")
        return int(held)

    return drain


def run_tick(spec: dict) -> dict:
    """One tick with K due of N stored, per broker, beside a bare send_task loop of the same messages."""
    url, db, broker_db, n = spec["redis_url"], spec["db"], spec["broker_db"], spec["n"]
    stats = Stats(url)
    bclient = broker_client(url, broker_db)
    out: dict = {"seeding_seconds": 0.0, "runs": []}
    for k, broker in spec["combos"]:
        app = make_app(url, db, broker, broker_db)
        from redbeat.schedulers import get_redis

        client = get_redis(app)
        base, seeded = ensure_seeded(app, client, n)
        out["seeding_seconds"] += seeded
        sched = scheduler(app)
        warm_scheduler(app, sched, client, n)
        drain = queue_drainer(bclient, broker)
        drain()
        make_due(app, range(k))
        tick, floor, _ = timed_tick_beside_floor(app, sched, stats, db, broker_db, k, drain)
        out["runs"].append({"k": k, "broker": broker, "tick": tick, "floor_seconds": floor, "sent": tick["sent"]})
        sched.close()
    return out


def run_overhead(spec: dict) -> dict:
    """``reps`` ticks of K due of N (Redis broker), each in a fresh warmed scheduler beside its own floor."""
    url, db, broker_db, n, k = spec["redis_url"], spec["db"], spec["broker_db"], spec["n"], spec["k"]
    stats = Stats(url)
    drain = queue_drainer(broker_client(url, broker_db), "redis")
    app = make_app(url, db, "redis", broker_db)
    from redbeat.schedulers import get_redis

    client = get_redis(app)
    _, seeded = ensure_seeded(app, client, n)
    out: dict = {"seeding_seconds": seeded, "runs": []}
    for _ in range(spec["reps"]):
        sched = scheduler(app)
        warm_scheduler(app, sched, client, n)
        drain()
        make_due(app, range(k))
        tick, floor, floor_cpu = timed_tick_beside_floor(app, sched, stats, db, broker_db, k, drain)
        if tick["sent"] != k:
            raise RuntimeError(f"the tick sent {tick['sent']} messages, not {k}")
        out["runs"].append({
            "tick": tick, "floor_seconds": floor, "overhead_seconds": tick["seconds"] - floor,
            "floor_cpu_seconds": floor_cpu, "overhead_cpu_seconds": tick["cpu_seconds"] - floor_cpu,
            "own_seconds": tick["seconds"] - tick["send_task_seconds"],
        })
        sched.close()
    return out


def run_idle(spec: dict) -> dict:
    """Idle ticks at N (nothing due); with ``restart``, re-save every entry as start-up does, new instance, tick."""
    url, db, broker_db, n = spec["redis_url"], spec["db"], spec["broker_db"], spec["n"]
    stats = Stats(url)
    app = make_app(url, db, "memory", broker_db)
    from redbeat.schedulers import get_redis

    client = get_redis(app)
    base, seeded = ensure_seeded(app, client, n)
    out: dict = {"seeding_seconds": seeded}
    if spec.get("restart"):
        started = time.perf_counter()
        resave(app, client, n, base, spec.get("skip", 0))
        out["resave_seconds"] = time.perf_counter() - started
        app = make_app(url, db, "memory", broker_db)  # a new process would have a new app and connection
        get_redis(app).ping()
        sched = scheduler(app)
        get_redis(app).ping()
        first = timed_tick(sched, stats, db, broker_db)
        second = timed_tick(sched, stats, db, broker_db)
        out.update(first=first, second=second)
    else:
        sched = scheduler(app)
        client.ping()
        sched.tick()
        sched.tick()
        ticks = [timed_tick(sched, stats, db, broker_db) for _ in range(spec.get("ticks", 5))]
        ticks.sort(key=lambda t: t["seconds"])
        out.update(median=ticks[len(ticks) // 2], all_seconds=[t["seconds"] for t in ticks])
    sched.close()
    return out


def resave(app, client, n: int, base: float, skip: int) -> None:  # type: ignore[no-untyped-def]
    """What start-up does with beat_schedule entries, for entries skip..n-2 (whose run state is the seeded one).

    celery-redbeat: update_from_dict = from_key (keep last_run_at) + Entry.save(), batched here.
    ours: its update_from_dict (two round trips; writes only what changed).
    """
    indexes = range(skip, n - 1)
    if IMPL == "celery-redbeat":
        with batched(app):
            for i in indexes:
                entry = make_entry(app, i)
                entry.last_run_at = last_run_of(i, base)
                entry.save()
    else:
        from celery.schedules import schedule

        sched = scheduler(app)
        items = {
            NAME.format(i): {"task": TASK, "schedule": schedule(run_every=timedelta(seconds=DAY), app=app),
                             "args": [i], "kwargs": {}, "options": {}}
            for i in indexes
        }
        sched.update_from_dict(items)


def statics(n: int) -> dict:
    from celery.schedules import crontab

    items = {}
    for i in range(n):
        schedule = 60.0 + i % 3600 if i % 2 else crontab(minute=str(i % 60), hour="*/2")
        items[f"static-{i:05d}"] = {"task": TASK, "schedule": schedule, "args": (i,), "options": {"queue": "celery"}}
    return items


def run_startup(spec: dict) -> dict:
    """Scheduler(app) (construction incl. setup_schedule) with n beat_schedule entries: first start, then restart."""
    url, db, n = spec["redis_url"], spec["db"], spec["n"]
    items = statics(n)
    out = {}
    for phase in ("first", "restart"):
        app = make_app(url, db, "memory", spec["broker_db"])
        app.conf.beat_schedule = dict(items)
        from redbeat.schedulers import get_redis

        client = get_redis(app)
        if phase == "first":
            client.flushdb()
        client.ping()
        gc.collect()
        ROUND_TRIPS.clear()
        started = time.perf_counter()
        sched = scheduler(app)
        out[phase] = time.perf_counter() - started
        out[phase + "_round_trips"] = ROUND_TRIPS.get(db, 0)
        sched.close()
    out["stored"] = client.zcard("redbeat::schedule")
    return out


SCENARIOS = {"tick": run_tick, "overhead": run_overhead, "idle": run_idle, "startup": run_startup}


def _portable(path: Path) -> str:
    """``path`` relative to the repository (both packages live under it when run from a clone), else as is.

    Results are committed: they must not carry the directory of the machine they were measured on."""
    root = Path(__file__).resolve().parents[1]
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def main() -> int:
    spec = json.loads(sys.argv[1])
    import celery

    import redbeat

    where = _portable(Path(redbeat.__file__).resolve().parent)
    expected = spec.get("impl")
    if expected and expected != IMPL:
        print(f"worker: expected {expected} but imported {IMPL} from {where}", file=sys.stderr)
        return 3
    result = SCENARIOS[spec["scenario"]](spec)
    result.update(impl=IMPL, redbeat_path=where, celery=celery.__version__, pid=os.getpid())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
