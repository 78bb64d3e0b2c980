"""examples/sidecar: no Docker engine runs here, so run the image's command directly and check the Compose file.

The Kubernetes manifests are deploy/kubernetes (tests/e2e/test_kubernetes.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.kube import localize, start_until_ready, stop
from support.redis_proc import free_port

ROOT = Path(__file__).resolve().parents[2]
SIDECAR = ROOT / "examples" / "sidecar"
BIN_DIR = Path(sys.executable).parent


def dockerfile_instruction(name: str) -> list[str]:
    lines = [line for line in (SIDECAR / "Dockerfile").read_text().splitlines() if line.startswith(name + " ")]
    return [line[len(name) + 1:] for line in lines]


def test_dockerfile_is_pinned_slim_and_non_root():
    bases = dockerfile_instruction("FROM")
    assert bases and all(re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+( AS \w+)?", b) for b in bases), bases
    (user,) = dockerfile_instruction("USER")
    assert user == "10001:10001"
    assert json.loads(dockerfile_instruction("ENTRYPOINT")[0]) == ["redbeat-apply"]


def test_the_image_command_runs_and_applies(tmp_path, redis_url, redis_client):
    command = json.loads(dockerfile_instruction("ENTRYPOINT")[0]) + json.loads(dockerfile_instruction("CMD")[0])
    assert command[:3] == ["redbeat-apply", "--watch", "/schedules"] and "0.0.0.0:9185" in command
    port = free_port()
    argv = localize(command, f"127.0.0.1:{port}", {"/schedules": SIDECAR / "schedules"})
    proc = start_until_ready(argv, {"REDBEAT_REDIS_URL": redis_url}, port)
    assert sorted(redis_client.zrange("redbeat::schedule", 0, -1)) == ["redbeat:heartbeat", "redbeat:nightly-report"]
    events = [json.loads(line) for line in stop(proc).splitlines()]
    assert [e["event"] for e in events][-1] == "stopped"
    assert any(e["event"] == "applied" and e["create"] == 2 for e in events)


def test_the_compose_file_runs_the_same_command_on_the_mounted_directory():
    compose = yaml.safe_load((SIDECAR / "docker-compose.yaml").read_text())
    service = compose["services"]["schedules"]
    command = service["command"]
    assert command[:2] == ["--watch", "/schedules"]
    assert service["volumes"] == ["./schedules:/schedules:ro"]
    assert service["ports"] == ["127.0.0.1:9185:9185"] and "0.0.0.0:9185" in command
    assert (SIDECAR / "schedules").is_dir()
    assert compose["services"]["beat"]["volumes"] == ["./app.py:/app/app.py:ro"] and (SIDECAR / "app.py").is_file()


@pytest.mark.parametrize("path", sorted((SIDECAR / "schedules").glob("*.yaml")), ids=lambda p: p.name)
def test_the_example_schedules_are_valid(path):
    result = subprocess.run([str(BIN_DIR / "redbeat-apply"), "validate", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
