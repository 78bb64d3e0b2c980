"""examples/sidecar: no Docker engine runs here, so run the image's command and the pod's sidecar args directly,
and check that the manifests wire probes, ports, volumes and users together."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from support.redis_proc import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
SIDECAR = ROOT / "examples" / "sidecar"
BIN_DIR = Path(sys.executable).parent


def dockerfile_instruction(name: str) -> list[str]:
    lines = [line for line in (SIDECAR / "Dockerfile").read_text().splitlines() if line.startswith(name + " ")]
    return [line[len(name) + 1:] for line in lines]


def k8s(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((SIDECAR / "kubernetes" / name).read_text()) if doc]


def sidecar_container() -> dict:
    (deployment,) = k8s("deployment.yaml")
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "schedules")


def run_until_ready(argv: list[str], schedules: Path, redis_url: str) -> subprocess.Popen[bytes]:
    """``argv`` with the /schedules mount and the listen port made local; returns the ready process."""
    port = free_port()
    argv = [str(schedules) if a == "/schedules" else a for a in argv]
    argv = [f"127.0.0.1:{port}" if a == "0.0.0.0:9185" else a for a in argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    env.update(REDBEAT_REDIS_URL=redis_url, PATH=f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def ready() -> bool:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_until(ready, timeout=15, message="/readyz")
    except BaseException:
        proc.kill()
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> list[dict]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=5)
    assert proc.returncode == 0, out.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


def configmap_volume(tmp_path: Path, files: list[Path]) -> Path:
    """The layout the kubelet makes for a ConfigMap volume: ..<timestamp>/, ..data ->, name -> ..data/name."""
    mount = tmp_path / "mount"
    version = mount / "..2026_01_01_00_00_00.000000001"
    version.mkdir(parents=True)
    for file in files:
        shutil.copy(file, version / file.name)
        os.symlink(f"..data/{file.name}", mount / file.name)
    os.symlink(version.name, mount / "..data")
    return mount


def test_dockerfile_is_pinned_slim_and_non_root():
    bases = dockerfile_instruction("FROM")
    assert bases and all(re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+( AS \w+)?", b) for b in bases), bases
    (user,) = dockerfile_instruction("USER")
    assert user == "10001:10001"
    assert json.loads(dockerfile_instruction("ENTRYPOINT")[0]) == ["redbeat-apply"]


def test_the_image_command_runs_and_applies(tmp_path, redis_url, redis_client):
    command = json.loads(dockerfile_instruction("ENTRYPOINT")[0]) + json.loads(dockerfile_instruction("CMD")[0])
    assert command[:3] == ["redbeat-apply", "--watch", "/schedules"] and "0.0.0.0:9185" in command
    proc = run_until_ready(command, SIDECAR / "schedules", redis_url)
    assert sorted(redis_client.zrange("redbeat::schedule", 0, -1)) == ["redbeat:heartbeat", "redbeat:nightly-report"]
    events = stop(proc)
    assert [e["event"] for e in events][-1] == "stopped"
    assert any(e["event"] == "applied" and e["create"] == 2 for e in events)


def test_the_pod_sidecar_args_run_against_a_configmap_volume(tmp_path, redis_url, redis_client):
    (kustomization,) = k8s("kustomization.yaml")
    (generator,) = kustomization["configMapGenerator"]
    assert generator["options"]["disableNameSuffixHash"] is True  # a stable name: files update in place
    files = [SIDECAR / "kubernetes" / f for f in generator["files"]]
    mount = configmap_volume(tmp_path, files)
    container = sidecar_container()
    proc = run_until_ready(["redbeat-apply", *container["args"]], mount, redis_url)
    assert sorted(redis_client.hkeys("redbeat::owner:beat-configmap")) == ["heartbeat", "nightly-report"]
    stop(proc)


def test_the_deployment_wires_probes_port_volume_and_user():
    (deployment,) = k8s("deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    container = sidecar_container()
    args = container["args"]
    assert args[args.index("--listen") + 1] == "0.0.0.0:9185"
    (port,) = container["ports"]
    assert port == {"name": "metrics", "containerPort": 9185, "protocol": "TCP"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == args[args.index("--watch") + 1] and "subPath" not in mount and mount["readOnly"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    (kustomization,) = k8s("kustomization.yaml")
    assert volume["configMap"]["name"] == kustomization["configMapGenerator"][0]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert {c["name"] for c in pod["containers"]} == {"beat", "schedules"}
    (service,) = k8s("service.yaml")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9185, "targetPort": "metrics", "protocol": "TCP"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    (monitor,) = k8s("servicemonitor.yaml")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"] == service["metadata"]["labels"]


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
