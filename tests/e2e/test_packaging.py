"""The distribution: one version, a wheel that ``python -m build`` makes and a fresh venv installs."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from support.snapshot import PACKAGE_FILES, copy_tree

import redbeat
from redbeat._version import __version__

ROOT = Path(__file__).resolve().parents[2]
DIST = "redbeat-gitops"


def test_the_version_is_written_in_one_place():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "redbeat._version.__version__"
    assert redbeat.__version__ == __version__ == importlib.metadata.version(DIST)


def test_version_flag_prints_the_version():
    """``redbeat-apply --version`` (the CLI reads importlib.metadata, which the wheel's metadata feeds)."""
    proc = subprocess.run([str(Path(sys.executable).parent / "redbeat-apply"), "--version"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert __version__ in proc.stdout


@pytest.mark.slow
def test_the_wheel_builds_and_installs_in_a_fresh_venv(tmp_path):
    source = copy_tree(tmp_path / "source", PACKAGE_FILES)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", str(dist), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"redbeat_gitops-{__version__}-py3-none-any.whl"
    assert len(list(dist.glob(f"redbeat_gitops-{__version__}.tar.gz"))) == 1

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    probe = ("import importlib.metadata, json, redbeat, reconciler; "
             "print(json.dumps([redbeat.__version__, importlib.metadata.version('redbeat-gitops'), redbeat.__file__]))")
    shown = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path,
                           capture_output=True, text=True, check=True, timeout=60)
    version, metadata_version, module = json.loads(shown.stdout)
    assert version == metadata_version == __version__ and module.startswith(str(venv))
    schema = subprocess.run([str(venv / "bin" / "redbeat-apply"), "schema"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert schema.returncode == 0 and json.loads(schema.stdout)["$schema"], "the schema ships in the wheel"
    # The console's templates and stylesheet ship too: pages that need no Redis render from the wheel.
    console = ("from werkzeug.test import Client; from reconciler.console.app import make_app; "
               "from reconciler.sync.reconcile import connect; "
               "c = Client(make_app(connect('redis://127.0.0.1:1/0'))); "
               "print(c.get('/static/console.css').status_code, c.get('/login').status_code, "
               "'actions are off' in c.get('/login').get_data(as_text=True))")
    rendered = subprocess.run([str(venv / "bin" / "python"), "-c", console], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
    assert rendered.stdout.split() == ["200", "403", "True"], rendered.stdout + rendered.stderr
