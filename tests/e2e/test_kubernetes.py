"""deploy/kubernetes builds with ``kubectl kustomize``, and what it renders runs.

The base and the example overlay are rendered by the real kubectl; the
rendered containers then run as local processes against a real redis-server
with exactly the env the pod gives them and the ConfigMap laid out as the
kubelet mounts it, so the probes, ports, keys and variables are checked
against the programs, not against a copy of their flags.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support.kube import (
    BASE,
    OVERLAY,
    ROOT,
    configmap_volume,
    container,
    container_env,
    localize,
    one,
    render,
    scrape,
    start_beat,
    start_until_ready,
    stop,
)
from support.redis_proc import free_port, wait_until

APP_DIR = ROOT / "examples" / "sidecar"
BIN_DIR = Path(sys.executable).parent
MANIFEST_SUFFIXES = (".yaml", ".yml")


def environ_reads(source: Path) -> set[str]:
    """The variable names a module reads with ``os.environ.get("NAME"`` or ``os.environ["NAME"]``."""
    return set(re.findall(r'os\.environ(?:\.get\(|\[)"([A-Z0-9_]+)"', source.read_text()))


def port_number(spec: dict[str, Any], name: str) -> int:
    (port,) = [p["containerPort"] for p in spec["ports"] if p["name"] == name]
    return int(port)


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(BASE)


@pytest.fixture(scope="module")
def overlay() -> list[dict[str, Any]]:
    return render(OVERLAY)


def test_base_renders_the_pod_configmap_and_service(base):
    assert sorted(o["kind"] for o in base) == ["ConfigMap", "Deployment", "Service"]
    pod = one(base, "Deployment")["spec"]["template"]["spec"]
    assert {c["name"] for c in pod["containers"]} == {"beat", "schedules"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    for spec in pod["containers"]:
        assert spec["securityContext"]["allowPrivilegeEscalation"] is False, spec["name"]
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True, spec["name"]
        assert spec["securityContext"]["capabilities"]["drop"] == ["ALL"], spec["name"]
        assert spec["resources"]["requests"] and spec["resources"]["limits"]["memory"], spec["name"]
    # The Service targets ports the containers name, with the same numbers.
    service = one(base, "Service")
    assert service["spec"]["selector"] == one(base, "Deployment")["spec"]["selector"]["matchLabels"]
    named = {p["name"]: p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}
    assert {p["targetPort"]: p["port"] for p in service["spec"]["ports"]} == named


def test_the_sidecar_listens_where_the_probes_look(base):
    spec = container(base, "schedules")
    args = spec["args"]
    host, _, port = args[args.index("--listen") + 1].rpartition(":")
    assert host == "0.0.0.0", "the kubelet probes the pod IP; 127.0.0.1 would be unreachable"
    assert int(port) == port_number(spec, spec["livenessProbe"]["httpGet"]["port"])
    assert int(port) == port_number(spec, spec["readinessProbe"]["httpGet"]["port"])
    (mount,) = spec["volumeMounts"]
    assert mount["mountPath"] == args[args.index("--watch") + 1] and "subPath" not in mount and mount["readOnly"]
    pod = one(base, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == one(base, "ConfigMap")["metadata"]["name"] == "beat-schedules"


@pytest.mark.parametrize("objects", ["base", "overlay"])
def test_the_sidecar_runs_with_the_pod_env_on_the_configmap(objects, request, tmp_path, redis_url, redis_client):
    """The rendered args and env, nothing else; every ConfigMap key is a file it reads; the probes answer 200."""
    rendered = request.getfixturevalue(objects)
    spec = container(rendered, "schedules")
    configmap = one(rendered, "ConfigMap", "beat-schedules")
    assert all(key.endswith(MANIFEST_SUFFIXES) for key in configmap["data"]), "other keys would be ignored"
    mount = configmap_volume(tmp_path / "schedules", configmap)
    port = free_port()
    argv = localize(spec["args"], f"127.0.0.1:{port}", {"/schedules": mount})
    env = container_env(spec, {"redis": {"url": redis_url}})
    proc = start_until_ready(["redbeat-apply", *argv], env, port)
    try:
        for probe in ("livenessProbe", "readinessProbe"):
            path = spec[probe]["httpGet"]["path"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                assert response.status == 200, probe
    finally:
        stop(proc)
    expected = sorted(
        name for text in configmap["data"].values() for name in re.findall(r"^  - name: (\S+)$", text, re.M)
    )
    prefix = env["REDBEAT_KEY_PREFIX"]
    assert sorted(redis_client.hkeys(f"{prefix}:owner:{env['REDBEAT_OWNER']}")) == expected


def test_every_variable_the_pod_sets_is_read_by_its_process(base):
    sidecar = {v["name"] for v in container(base, "schedules")["env"]}
    assert not sidecar - environ_reads(ROOT / "reconciler" / "cli" / "main.py")
    beat = {v["name"] for v in container(base, "beat")["env"]}
    assert not beat - environ_reads(APP_DIR / "app.py")
    assert not any(name.startswith("REDBEAT_") for name in beat), "redbeat reads app.conf, not REDBEAT_* variables"


def test_beat_runs_with_the_pod_env_and_serves_metrics(base, tmp_path, fresh_redis):
    """beat's container: its args, its env (the app copies it into app.conf), its metrics port."""
    spec = container(base, "beat")
    pod_env = container_env(spec, {"redis": {"url": fresh_redis.url}})
    assert pod_env["BEAT_METRICS_LISTEN"] == f"0.0.0.0:{port_number(spec, 'beat-metrics')}"
    rig, beat, port = start_beat(base, fresh_redis.url, tmp_path)
    try:
        wait_until(lambda: "redbeat_beat_leader 1.0" in scrape(port), timeout=20, message="beat to lead")
        assert "redbeat_redis_url is not set" not in beat.output(), "REDIS_URL must reach app.conf"
    finally:
        rig.stop_all()


def test_the_overlay_sets_namespace_images_and_its_own_schedules(overlay):
    assert {o["metadata"].get("namespace") for o in overlay} == {"scheduling"}
    images = {c["name"]: c["image"] for c in one(overlay, "Deployment")["spec"]["template"]["spec"]["containers"]}
    assert images == {"beat": "registry.example.com/acme/billing-app:2.3.1",
                      "schedules": "registry.example.com/acme/redbeat-apply:0.1.0"}
    assert sorted(one(overlay, "ConfigMap")["data"]) == ["billing.yaml", "reports.yaml"]


@pytest.mark.parametrize("directory", [BASE / "schedules", OVERLAY / "schedules"], ids=["base", "overlay"])
def test_the_schedules_in_git_are_valid(directory):
    proc = subprocess.run([str(BIN_DIR / "redbeat-apply"), "validate", str(directory)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
