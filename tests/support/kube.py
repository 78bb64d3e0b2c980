"""Render deploy/kubernetes with ``kubectl kustomize`` and run its containers as local processes.

No cluster runs here: the rendered objects are read as the kubelet would
(ConfigMap keys become files in a volume, ``secretKeyRef`` values come from
the Secret), and a container's args and env run against a local redis-server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from support.celery_rig import CeleryRig, Proc
from support.redis_proc import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAY = KUBERNETES / "overlays" / "example"


def kubectl() -> str:
    found = shutil.which("kubectl")
    assert found, "kubectl is missing: scripts/test.sh installs it (apt-get install kubernetes-client)"
    return found


def render(path: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize PATH``, parsed; fails the test with kubectl's message when it does not build."""
    proc = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found


def container(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    found: list[dict[str, Any]] = [c for c in pod["containers"] if c["name"] == name]
    assert len(found) == 1, f"{len(found)} containers named {name!r}"
    return found[0]


def container_env(spec: dict[str, Any], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """A container's env as the process sees it: literal values, and ``secretKeyRef`` looked up in ``secrets``."""
    env: dict[str, str] = {}
    for var in spec.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def configmap_volume(directory: Path, configmap: dict[str, Any]) -> Path:
    """The layout the kubelet makes for a ConfigMap volume: ..<timestamp>/, ..data ->, key -> ..data/key."""
    version = directory / "..2026_01_01_00_00_00.000000001"
    version.mkdir(parents=True)
    for key, text in configmap["data"].items():
        (version / key).write_text(text)
        os.symlink(f"..data/{key}", directory / key)
    os.symlink(version.name, directory / "..data")
    return directory


def localize(argv: list[str], listen: str, mounts: dict[str, Path]) -> list[str]:
    """Container args with the pod address (0.0.0.0:port) made ``listen`` and mount paths made local."""
    out = []
    for arg in argv:
        if arg.startswith("0.0.0.0:"):
            arg = listen
        out.append(str(mounts.get(arg, arg)))
    return out


def start_until_ready(argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """Start ``argv`` (a redbeat-apply --watch) with exactly ``env`` (plus PATH); wait for /readyz on ``port``."""
    bin_dir = Path(sys.executable).parent
    env = {**env, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def ready() -> bool:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_until(ready, timeout=15, message="/readyz")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM, as the kubelet does; the process must exit 0 within 5 s.  Returns its output."""
    proc.terminate()
    out, _ = proc.communicate(timeout=5)
    assert proc.returncode == 0, out.decode()
    return out.decode()


def start_beat(objects: list[dict[str, Any]], redis_url: str, workdir: Path) -> tuple[CeleryRig, Proc, int]:
    """The rendered beat container as a local ``celery beat`` of examples/sidecar/app.py; returns its metrics port.

    The caller stops it with ``rig.stop_all()``.
    """
    spec = container(objects, "beat")
    assert spec["args"][:3] == ["celery", "-A", "app"]
    port = free_port()
    env = {k: localize([v], f"127.0.0.1:{port}", {})[0]
           for k, v in container_env(spec, {"redis": {"url": redis_url}}).items()}
    workdir.mkdir(parents=True, exist_ok=True)
    rig = CeleryRig(redis_url, workdir, app="app", app_dir=ROOT / "examples" / "sidecar", extra_env=env)
    try:
        proc = rig.spawn("beat", *spec["args"][3:], "--max-interval", "1")
        rig.wait_for(proc, "beat: Prometheus metrics on", timeout=30)
    except BaseException:
        rig.stop_all()
        raise
    return rig, proc, port


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())
