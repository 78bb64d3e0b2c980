"""docs/deploy.md: every shell command in it runs, and its snippets match the files they describe."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import yaml
from support.gh_action import base_env

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"
ACTION_USE = re.compile(r"^[\w.-]+/redbeat@v[\w.]+$")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), re.S | re.M)


def commands() -> list[str]:
    return [line for block in blocks("sh") for line in block.splitlines() if line.strip()]


def gitlab_install_line() -> str:
    pipeline = yaml.safe_load((ROOT / "examples" / "ci" / "gitlab-ci.yml").read_text())
    (line,) = pipeline["default"]["before_script"]
    return str(line)


def test_every_shell_command_runs(tmp_path):
    (tmp_path / "deploy").symlink_to(ROOT / "deploy")
    env = {**base_env(), "KUBECONFIG": str(tmp_path / "no-cluster")}
    ran = []
    for command in commands():
        if command.startswith("python -m pip install "):
            # Installing from the repository at a tag: the same line as the GitLab example, which
            # tests/e2e/test_ci_examples.py::test_gitlab_install_line_installs runs in a fresh venv.
            assert command == gitlab_install_line()
            continue
        argv = shlex.split(command)
        if argv[:3] == ["kubectl", "apply", "-k"]:
            # No cluster here: render what `apply -k` would send, which fails the same way on a bad kustomization.
            command = shlex.join(["kubectl", "kustomize", *argv[3:]])
        proc = subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        ran.append(command)
    assert len(ran) >= 5
    rules = yaml.safe_load((tmp_path / "redbeat-rules.yml").read_text())
    assert [g["name"] for g in rules["groups"]] == ["redbeat-beat", "redbeat-apply"]


def test_action_snippets_use_real_inputs():
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    snippets = [yaml.safe_load(block) for block in blocks("yml")]
    uses = [step for snippet in snippets for job in snippet.values() for step in job["steps"]
            if ACTION_USE.match(step.get("uses", ""))]
    assert uses, "docs/deploy.md shows the action"
    for step in uses:
        assert set(step["with"]) <= set(action["inputs"]), step
        assert step["with"]["mode"] in ("validate", "plan", "apply")
    for name in action["inputs"]:
        assert f"`{name}`" in DOC.read_text(), f"input {name} is not documented"
    for name in action["outputs"]:
        assert f"`{name}`" in DOC.read_text(), f"output {name} is not documented"


def test_the_app_conf_snippet_is_the_example_app():
    app = re.sub(r"\s+", "", (ROOT / "examples" / "sidecar" / "app.py").read_text())
    (snippet,) = blocks("python")
    settings = re.findall(r"^\s+(redbeat_\w+=os\.environ[^#\n]*?),?\s*(?:#.*)?$", snippet, re.M)
    assert len(settings) == 3
    for setting in settings:
        # The doc reads REDIS_URL strictly; the example app reads it once into REDIS_URL with a default.
        expected = setting.replace('os.environ["REDIS_URL"]', "REDIS_URL")
        assert re.sub(r"\s+", "", expected) in app, setting

