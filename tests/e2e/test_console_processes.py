"""The installed ``redbeat-apply console`` and ``redbeat-apply --watch --console``: real processes, real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.redis_proc import free_port, wait_until
from test_watch import Watcher, write

BIN = Path(sys.executable).parent / "redbeat-apply"
TOKEN = "sidecar-console-token-0123456789"
MANIFEST = "schedules:\n  - name: pulse\n    task: app.tasks.pulse\n    every: 10s\n"


def fetch(port: int, path: str, data: dict[str, str] | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


@contextmanager
def console_process(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``redbeat-apply console ARGS`` with its output in a log file, without REDBEAT_* variables; killed after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    log = tmp_path / "console.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(BIN), "console", *args], stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def watchers(tmp_path):
    started: list[Watcher] = []
    yield started
    for watcher in started:
        watcher.kill()


@pytest.mark.timeout(60)
def test_the_sidecar_serves_the_console_beside_its_probes(tmp_path, redis_url, redis_client, watchers, monkeypatch):
    folder = tmp_path / "schedules"
    write(folder / "jobs.yaml", MANIFEST)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    watcher = Watcher(tmp_path, [folder], redis_url, "--console", "--console-token-file", str(token_file))
    watchers.append(watcher)
    watcher.wait_ready()
    warned = [e["warning"] for e in watcher.events() if e["event"] == "console warning"]
    assert len(warned) == 1 and "readable by other users (mode 644)" in warned[0], warned  # as the console says
    assert watcher.get("/healthz")[0] == 200 and watcher.get("/metrics")[0] == 200
    code, html, headers = fetch(watcher.port, "/schedules")
    assert code == 200 and "pulse" in html and "in sync" in html
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    code, html, _ = fetch(watcher.port, "/health")
    assert code == 200 and "Sidecar ready" in html and ">ready<" in html
    refused = fetch(watcher.port, "/actions/trigger", {"name": "pulse"})
    assert refused[0] == 403 and not redis_client.hexists("redbeat:pulse", "trigger")
    done = fetch(watcher.port, "/actions/trigger", {"name": "pulse"}, {"Authorization": f"Bearer {TOKEN}"})
    assert done[0] == 200 and redis_client.hexists("redbeat:pulse", "trigger")
    assert watcher.stop()[0] == 0


@pytest.mark.timeout(60)
def test_without_console_the_sidecar_serves_only_its_probes(tmp_path, redis_url, watchers):
    folder = tmp_path / "schedules"
    write(folder / "jobs.yaml", MANIFEST)
    watcher = Watcher(tmp_path, [folder], redis_url)
    watchers.append(watcher)
    watcher.wait_ready()
    assert watcher.get("/schedules")[0] == 404
    assert fetch(watcher.port, "/actions/trigger", {"name": "pulse"})[0] == 405


@pytest.mark.timeout(60)
def test_the_console_command_listens_on_loopback_and_stops_on_sigterm(tmp_path, redis_url):
    port = free_port()
    with console_process(tmp_path, "--redis-url", redis_url, "--listen", f"127.0.0.1:{port}") as (proc, log):
        wait_until(lambda: f"http://127.0.0.1:{port}/" in log.read_text(), timeout=20,
                   message=f"the console's URL; log:\n{log.read_text()}")
        assert "actions off" in log.read_text()
        code, html, _ = fetch(port, "/schedules")
        assert code == 200 and "0 of 0 entries" in html
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_a_short_token_is_refused_before_listening(tmp_path, redis_url):
    token_file = tmp_path / "token"
    token_file.write_text("short\n")
    result = subprocess.run([str(BIN), "console", "--redis-url", redis_url, "--console-token-file", str(token_file),
                             "--listen", f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "at least 16 characters" in result.stderr and "Traceback" not in result.stderr


def test_a_port_in_use_is_named_and_the_exit_is_1(tmp_path, redis_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run([str(BIN), "console", "--redis-url", redis_url, "--listen", f"127.0.0.1:{port}"],
                                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in result.stderr
    assert "Traceback" not in result.stderr and "Either identify" not in result.stderr


@pytest.mark.timeout(60)
def test_exposure_a_readable_token_and_an_unreachable_redis_are_warned_about_at_start(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("abcdefghijklmnopqrstuvwxyz0123\n")
    token_file.chmod(0o644)
    port = free_port()
    # Redis on port 1: nothing listens there.
    with console_process(tmp_path, "--redis-url", "redis://:hunter2@127.0.0.1:1/0", "--listen", f"0.0.0.0:{port}",
                         "--console-token-file", str(token_file)) as (proc, log):
        wait_until(lambda: f":{port}/" in log.read_text(), timeout=20,
                   message=f"the console's URL; log:\n{log.read_text()}")
        text = log.read_text()
        assert f"--listen 0.0.0.0:{port} is not loopback" in text and "unencrypted" in text
        assert "readable by other users (mode 644)" in text
        assert "Redis is not reachable now" in text and "hunter2" not in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
