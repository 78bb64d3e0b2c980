"""``redbeat-apply --watch``, the installed command, against a real redis-server.

Each test starts the watch process on a free port with ``--resync-interval 1``
and JSON logs, changes files (or Redis) the way people and the kubelet do, and
checks Redis, /readyz and /metrics.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.redis_proc import free_port, wait_until

BIN = Path(sys.executable).parent / "redbeat-apply"

JOBS = """\
schedules:
  - name: heartbeat
    task: ops.tasks.ping
    every: {every}
  - name: nightly
    task: reports.tasks.nightly
    cron: "30 2 * * mon-fri"
"""
CLEANUP = """\
name: cleanup
task: ops.tasks.cleanup
every: 1h
"""


class Watcher:
    """One ``redbeat-apply --watch`` process: its HTTP endpoints, its JSON log, and a clean stop."""

    def __init__(self, tmp_path: Path, paths: list[Path], redis_url: str, *extra: str) -> None:
        self.port = free_port()
        self.log_path = tmp_path / f"watch-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(BIN), "--watch", *map(str, paths), "--redis-url", redis_url, "--listen", f"127.0.0.1:{self.port}",
                 "--resync-interval", "1", "--log-format", "json", *extra],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        self.check_alive()
        return self.get("/readyz")[0] == 200

    def wait_ready(self, timeout: float = 15) -> None:
        wait_until(self.ready, timeout=timeout, message=f"/readyz 200; log:\n{self.output()}")

    def wait_not_ready(self, containing: str, timeout: float = 10) -> str:
        """Wait for /readyz to answer 503 with ``containing`` in its reason; returns the reason."""
        def not_ready() -> str | None:
            self.check_alive()
            code, body = self.get("/readyz")
            return body if code == 503 and containing in body else None

        return wait_until(not_ready, timeout=timeout, message=f"/readyz 503 {containing!r}; log:\n{self.output()}")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        code, body = self.get("/metrics")
        assert code == 200, body
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body)
            for sample in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics()[(name, tuple(sorted(labels.items())))]

    def wait_metric(self, name: str, at_least: float, timeout: float = 10, **labels: str) -> float:
        return wait_until(lambda: (v := self.metric(name, **labels)) >= at_least and v,
                          timeout=timeout, message=f"{name}{labels} >= {at_least}; log:\n{self.output()}")

    def reads(self) -> float:
        return sum(self.metric("redbeat_apply_manifest_reads_total", result=r) for r in ("valid", "invalid"))

    def reread(self) -> None:
        """Wait until the files have been read twice more (a resync reads them even with no event):
        whatever was written before the call has been seen."""
        before = self.reads()
        wait_until(lambda: self.reads() >= before + 2, message=f"two more reads; log:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"redbeat-apply --watch exited with {self.proc.returncode}:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=10)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def start_watch(tmp_path):
    started: list[Watcher] = []

    def start(paths: list[Path], redis_url: str, *extra: str) -> Watcher:
        watcher = Watcher(tmp_path, paths, redis_url, *extra)
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.kill()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(textwrap.dedent(text))
    os.replace(tmp, path)  # as editors and kubectl cp do: readers never see half a file
    return path


def definition(client, name: str) -> dict[str, Any] | None:
    raw = client.hget(f"redbeat:{name}", "definition")
    return None if raw is None else json.loads(raw)


def every(client, name: str) -> float | None:
    found = definition(client, name)
    return None if found is None else found["schedule"]["every"]


def entries(client) -> set[str]:
    return {member.removeprefix("redbeat:") for member in client.zrange("redbeat::schedule", 0, -1)}


@pytest.fixture
def schedules(tmp_path) -> Path:
    directory = tmp_path / "schedules"
    write(directory / "jobs.yaml", JOBS.format(every="30s"))
    return directory


# --- files --------------------------------------------------------------------------------------


@pytest.mark.exclusive
def test_edit_add_rename_and_delete_files(schedules, redis_url, redis_client, start_watch):
    watcher = start_watch([schedules], redis_url)
    watcher.wait_ready()
    assert entries(redis_client) == {"heartbeat", "nightly"}
    assert watcher.metric("redbeat_apply_changes_total", kind="create") == 2
    assert watcher.metric("redbeat_apply_triggers_total", reason="start") == 1

    write(schedules / "jobs.yaml", JOBS.format(every="45s"))  # edit
    wait_until(lambda: every(redis_client, "heartbeat") == 45.0, message="the edit in Redis")
    write(schedules / "team" / "cleanup.yaml", CLEANUP)  # add, in a new sub-directory
    wait_until(lambda: "cleanup" in entries(redis_client), message="the new file's entry in Redis")

    before = watcher.metric("redbeat_apply_applies_total", result="changed")
    os.rename(schedules / "team" / "cleanup.yaml", schedules / "team" / "cleanup.yml")  # rename: same content
    watcher.reread()
    assert watcher.metric("redbeat_apply_applies_total", result="changed") == before
    assert entries(redis_client) == {"heartbeat", "nightly", "cleanup"}

    (schedules / "team" / "cleanup.yml").unlink()  # delete: pruned
    wait_until(lambda: "cleanup" not in entries(redis_client), message="the deleted file's entry gone")
    assert redis_client.exists("redbeat:cleanup") == 0
    assert sorted(redis_client.hkeys("redbeat::owner:default")) == ["heartbeat", "nightly"]

    metrics = watcher.metrics()
    assert metrics[("redbeat_apply_changes_total", (("kind", "create"),))] == 3
    assert metrics[("redbeat_apply_changes_total", (("kind", "update"),))] == 1
    assert metrics[("redbeat_apply_changes_total", (("kind", "delete"),))] == 1
    assert metrics[("redbeat_apply_applies_total", (("result", "changed"),))] == 4
    assert metrics[("redbeat_apply_triggers_total", (("reason", "change"),))] == 3
    assert metrics[("redbeat_apply_applies_total", (("result", "error"),))] == 0
    assert metrics[("redbeat_apply_desired_entries", ())] == 2
    assert metrics[("redbeat_apply_ready", ())] == 1
    assert time.time() - metrics[("redbeat_apply_last_success_timestamp_seconds", ())] < 10
    revisions = [labels for (name, labels), value in metrics.items() if name == "redbeat_apply_info"]
    assert len(revisions) == 1 and dict(revisions[0])["revision"].startswith("sha256:")

    code, elapsed = watcher.stop(signal.SIGINT)
    assert code == 0 and elapsed < 1.5, (code, elapsed, watcher.output())
    assert watcher.events()[-1]["event"] == "stopped" and watcher.events()[-1]["signal"] == "SIGINT"


def _configmap_version(mount: Path, stamp: str, files: dict[str, str]) -> Path:
    version = mount / f"..{stamp}"
    for name, text in files.items():
        write(version / name, text)
    return version


def _swap_data(mount: Path, version: Path) -> None:
    """What the kubelet does: point a new symlink at the new version, rename it over ..data, drop the old one."""
    old = os.readlink(mount / "..data") if (mount / "..data").is_symlink() else None
    tmp = mount / "..data_tmp"
    os.symlink(version.name, tmp)
    os.replace(tmp, mount / "..data")
    if old is not None:
        for child in (mount / old).iterdir():
            child.unlink()
        (mount / old).rmdir()


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_configmap_data_swap_gives_one_apply(tmp_path, redis_url, redis_client, start_watch, polling):
    mount = tmp_path / "mount"
    mount.mkdir()
    first = _configmap_version(mount, "2026_01_01_00_00_00.000000001", {"jobs.yaml": JOBS.format(every="30s")})
    _swap_data(mount, first)
    os.symlink("..data/jobs.yaml", mount / "jobs.yaml")
    watcher = start_watch([mount], redis_url, *(["--force-polling"] if polling else []))
    watcher.wait_ready()
    assert every(redis_client, "heartbeat") == 30.0

    second = _configmap_version(mount, "2026_01_01_00_05_00.000000002",
                                {"jobs.yaml": JOBS.format(every="2m"), "cleanup.yaml": CLEANUP})
    os.symlink("..data/cleanup.yaml", mount / "cleanup.yaml")  # a new key: the kubelet adds its visible link
    _swap_data(mount, second)
    wait_until(lambda: every(redis_client, "heartbeat") == 120.0 and "cleanup" in entries(redis_client),
               message=f"the new ConfigMap version in Redis; log:\n{watcher.output()}")
    watcher.reread()

    metrics = watcher.metrics()
    assert metrics[("redbeat_apply_applies_total", (("result", "changed"),))] == 2  # start + one for the swap
    assert metrics[("redbeat_apply_changes_total", (("kind", "update"),))] == 1
    assert metrics[("redbeat_apply_changes_total", (("kind", "create"),))] == 3
    assert metrics[("redbeat_apply_manifests_invalid", ())] == 0
    assert [e["trigger"] for e in watcher.events() if e["event"] == "applied"] == ["start", "change"]


def test_single_file_path_warns_about_subpath_and_follows_replacement(tmp_path, redis_url, redis_client, start_watch):
    path = write(tmp_path / "jobs.yaml", JOBS.format(every="30s"))
    watcher = start_watch([path], redis_url)
    watcher.wait_ready()
    warnings = [e for e in watcher.events() if e["level"] == "warning"]
    assert len(warnings) == 1 and "subPath" in warnings[0]["event"] and warnings[0]["path"] == str(path)
    write(path, JOBS.format(every="1m"))  # replaced by rename, as editors save
    wait_until(lambda: every(redis_client, "heartbeat") == 60.0, message=f"the edit in Redis; log:\n{watcher.output()}")
    write(tmp_path / "other.yaml", CLEANUP)  # a sibling that was not named is not read
    watcher.reread()
    assert entries(redis_client) == {"heartbeat", "nightly"}


# --- invalid manifests ----------------------------------------------------------------------------


def test_invalid_manifest_keeps_last_good_state_until_fixed(schedules, redis_url, redis_client, start_watch):
    watcher = start_watch([schedules], redis_url)
    watcher.wait_ready()
    write(schedules / "more.yaml", "schedules: [\n")
    watcher.wait_not_ready("1 manifest error (the last good state is kept)")
    write(schedules / "jobs.yaml", JOBS.format(every="30s") + "  - name: broken\n    task: x\n    every: soon\n")
    wait_until(lambda: "2 manifest errors" in watcher.get("/readyz")[1], message="the second error")
    errors = [e["error"].split(": ")[:2] for e in watcher.events() if e["event"] == "manifest error"]
    more, jobs = str(schedules / "more.yaml"), str(schedules / "jobs.yaml")
    assert errors == [[f"{more}:2:1", "invalid YAML"],  # each distinct set logged once, every error
                      [f"{jobs}:10:12", "schedules[2].every"], [f"{more}:2:1", "invalid YAML"]], errors
    assert watcher.metric("redbeat_apply_manifests_invalid") == 1
    assert watcher.metric("redbeat_apply_manifest_errors") == 2

    # The last good state is still enforced: an entry deleted by hand comes back at the next resync.
    redis_client.delete("redbeat:nightly")
    wait_until(lambda: redis_client.exists("redbeat:nightly"), message="nightly re-created while files are invalid")
    watcher.reread()
    assert entries(redis_client) == {"heartbeat", "nightly"}
    assert watcher.get("/readyz")[0] == 503
    assert len([e for e in watcher.events() if e["event"] == "manifest error"]) == 3  # not again at each resync

    (schedules / "more.yaml").unlink()
    write(schedules / "jobs.yaml", JOBS.format(every="5m"))
    watcher.wait_ready()
    assert every(redis_client, "heartbeat") == 300.0
    assert watcher.metric("redbeat_apply_manifests_invalid") == 0
    assert watcher.metric("redbeat_apply_manifest_errors") == 0
    assert watcher.metric("redbeat_apply_applies_total", result="refused") == 0


def test_start_with_invalid_manifests_writes_nothing_and_waits(tmp_path, redis_url, redis_client, start_watch):
    directory = tmp_path / "schedules"
    write(directory / "jobs.yaml", "schedules:\n  - name: a\n    task: t\n")
    watcher = start_watch([directory], redis_url)
    watcher.wait_not_ready("1 manifest error")
    watcher.reread()
    assert redis_client.dbsize() == 0
    assert watcher.get("/healthz") == (200, "ok\n")
    write(directory / "jobs.yaml", JOBS.format(every="30s"))
    watcher.wait_ready()
    assert entries(redis_client) == {"heartbeat", "nightly"}
    assert watcher.metric("redbeat_apply_triggers_total", reason="start") == 1
    assert watcher.metric("redbeat_apply_triggers_total", reason="change") == 0


def test_refused_plan_is_not_ready_and_not_retried_in_a_loop(schedules, redis_url, redis_client, start_watch):
    redis_client.hset("redbeat:nightly", "definition", json.dumps(
        {"name": "nightly", "task": "x", "args": [], "kwargs": {}, "options": {},
         "schedule": {"__type__": "interval", "every": 5.0, "relative": False}, "enabled": True}))
    watcher = start_watch([schedules], redis_url)
    watcher.wait_not_ready("apply refused")
    started = time.monotonic()
    time.sleep(2.5)
    refusals = watcher.metric("redbeat_apply_applies_total", result="refused")
    elapsed = time.monotonic() - started
    assert 3 <= refusals <= 2 + elapsed / 0.9, refusals  # start, then once per resync (1 s +-10 %): no tight loop
    assert redis_client.exists("redbeat:heartbeat") == 0  # all or nothing
    events = [e for e in watcher.events() if e["event"] == "apply refused"]
    assert "nightly: exists in Redis, owned by nobody" in events[0]["reason"]


# --- Redis ---------------------------------------------------------------------------------------


def test_hand_edits_are_undone_at_resync_and_counted(schedules, redis_url, redis_client, start_watch):
    watcher = start_watch([schedules], redis_url)
    watcher.wait_ready()
    good = redis_client.hget("redbeat:heartbeat", "definition")
    edited = json.loads(good)
    edited["schedule"]["every"] = 1.0
    redis_client.hset("redbeat:heartbeat", "definition", json.dumps(edited))
    wait_until(lambda: redis_client.hget("redbeat:heartbeat", "definition") == good, message="the hand edit undone")
    assert watcher.wait_metric("redbeat_apply_drift_corrections_total", 1) == 1
    redis_client.delete("redbeat:nightly")
    redis_client.zrem("redbeat::schedule", "redbeat:nightly")
    wait_until(lambda: "nightly" in entries(redis_client), message="the deleted entry re-created")
    assert watcher.wait_metric("redbeat_apply_drift_corrections_total", 2) == 2
    drift = [(e["op"], e["name"]) for e in watcher.events() if e["event"] == "change" and e["drift"]]
    assert drift == [("update", "heartbeat"), ("create", "nightly")]
    assert [e["trigger"] for e in watcher.events() if e["event"] == "applied"] == ["start", "resync", "resync"]
    assert watcher.ready()
    # found through the change feed: Redis reported both keys (docs/watch.md)
    assert [e for e in watcher.events() if e["event"].startswith("change feed open")]
    assert not [e for e in watcher.events() if e["event"].startswith("change feed lost")]


def test_redis_down_keeps_running_and_converges_when_back(schedules, fresh_redis, start_watch):
    watcher = start_watch([schedules], fresh_redis.url)
    watcher.wait_ready()
    fresh_redis.kill()
    watcher.wait_not_ready("apply failed")
    write(schedules / "jobs.yaml", JOBS.format(every="10m"))  # changed while Redis is away
    watcher.wait_metric("redbeat_apply_applies_total", 3, result="error")
    assert watcher.get("/healthz")[0] == 200
    assert watcher.metric("redbeat_apply_consecutive_failures") >= 3

    fresh_redis.start()  # same port, empty: as after a restart without persistence
    watcher.wait_ready()
    client = fresh_redis.client()
    assert entries(client) == {"heartbeat", "nightly"}
    assert every(client, "heartbeat") == 600.0
    assert watcher.metric("redbeat_apply_consecutive_failures") == 0
    assert watcher.metric("redbeat_apply_triggers_total", reason="retry") >= 2
    retries = [e["in_seconds"] for e in watcher.events() if e["event"] == "will retry"]
    assert retries[:2] == [0.5, 1.0] and max(retries) <= 1.0  # back-off, capped at the resync interval
    client.close()


@pytest.mark.exclusive
def test_sigterm_during_an_apply_finishes_it_then_exits(schedules, redis_url, redis_client, start_watch):
    count = 3000
    watcher = start_watch([schedules], redis_url)
    watcher.wait_ready()
    lines = ["schedules:"] + [f"  - {{name: job-{i:04d}, task: bulk.tasks.job, every: {i + 1}s}}" for i in range(count)]
    write(schedules / "bulk.yaml", "\n".join(lines) + "\n")
    wait_until(lambda: any(e["event"] == "apply started" and e["trigger"] == "change" for e in watcher.events()),
               interval=0.005, message="the bulk apply to start")
    sent_at = time.time()
    code, elapsed = watcher.stop()
    events = [e["event"] for e in watcher.events()]
    assert code == 0, watcher.output()
    assert events[-2:] == ["applied", "stopped"], events[-5:]
    applied = next(e for e in watcher.events() if e["event"] == "applied" and e["trigger"] == "change")
    finished_at = datetime.strptime(applied["ts"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    assert finished_at > sent_at  # the signal came while the apply ran, and the apply went on to the end
    assert elapsed < applied["duration_ms"] / 1000 + 1.0
    assert redis_client.zcard("redbeat::schedule") == count + 2
    assert redis_client.hlen("redbeat::owner:default") == count + 2
