"""The fast checks' set-up: import-linter contracts name real modules, scripts/check.sh fails on any finding."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # mypy and import-linter (the test extras) install tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONTRACTS = CONFIG["tool"]["importlinter"]["contracts"]
# Left out of the layers contract on purpose (pyproject.toml would say why); a new module must be placed or listed.
UNLAYERED: set[str] = set()


def layered_modules(contract: dict[str, object]) -> list[str]:
    """Module names of a layers contract, in order; a layer holds one or more names split by '|' or ':'."""
    layers = contract["layers"]
    assert isinstance(layers, list)
    return [name.strip() for layer in layers for name in re.split(r"[|:]", layer)]


def module_exists(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_every_module_a_contract_names_exists() -> None:
    named: list[str] = []
    for contract in CONTRACTS:
        if contract["type"] == "layers":
            named += [f"{c}.{m}" for c in contract["containers"] for m in layered_modules(contract)]
        for key in ("source_modules", "forbidden_modules", "ancestors"):
            named += contract.get(key, [])
    assert named, "no contract names a module"
    assert [m for m in named if not module_exists(m)] == []


def test_both_packages_are_checked_for_import_cycles() -> None:
    """Layers order reconciler's packages; inside redbeat, and inside each package, no two modules import each other."""
    (acyclic,) = [c for c in CONTRACTS if c["type"] == "acyclic_siblings"]
    assert set(acyclic["ancestors"]) == {"redbeat", "reconciler"}
    assert "depth" not in acyclic, "the default depth (10) reaches every package"
    assert CONFIG["tool"]["importlinter"]["exclude_type_checking_imports"] is False, "type-only imports count"


def _contract_for(container: str) -> dict[str, object]:
    (contract,) = [c for c in CONTRACTS if c["type"] == "layers" and c["containers"] == [container]]
    return contract


def test_every_reconciler_package_is_in_the_package_layers() -> None:
    placed = layered_modules(_contract_for("reconciler"))
    assert len(placed) == len(set(placed)), "a package is in two layers"
    # schemas/ holds only the JSON Schema file (package data), no code.
    present = {p.parent.name for p in (ROOT / "reconciler").glob("*/__init__.py")} - {"schemas"}
    assert set(placed) == present
    assert list((ROOT / "reconciler").glob("*.py")) == [ROOT / "reconciler" / "__init__.py"], (
        "reconciler/ holds packages only; put a new module in the package whose job it shares"
    )


@pytest.mark.parametrize("package", layered_modules(_contract_for("reconciler")))
def test_every_module_of_a_reconciler_package_is_in_its_layers(package: str) -> None:
    present = {p.stem for p in (ROOT / "reconciler" / package).glob("*.py")} - {"__init__"}
    if len(present) == 1:
        return  # one module has nothing to be layered against
    placed = layered_modules(_contract_for(f"reconciler.{package}"))
    assert len(placed) == len(set(placed)), "a module is in two layers"
    assert present - set(placed) == UNLAYERED
    assert set(placed) <= present


def _stand_in_venv(tmp_path: Path, failing: str | None) -> Path:
    """A venv whose ruff, mypy and lint-imports only record their arguments; ``failing`` exits 1."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("ruff", "mypy", "lint-imports"):
        script = bin_dir / tool
        code = 1 if tool == failing else 0
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{tmp_path}/calls"\nexit {code}\n', encoding="utf-8")
        script.chmod(0o755)
    return bin_dir.parent


def _run_check(venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "check.sh")],
        env={**os.environ, "REDBEAT_VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("failing", ["ruff", "mypy", "lint-imports"])
def test_check_sh_fails_on_any_finding_and_still_runs_every_check(tmp_path: Path, failing: str) -> None:
    result = _run_check(_stand_in_venv(tmp_path, failing))
    assert result.returncode == 1
    assert "scripts/check.sh found problems" in result.stderr
    calls = (tmp_path / "calls").read_text(encoding="utf-8").splitlines()
    assert calls == ["ruff check --no-cache .", "mypy ", "lint-imports --no-cache"]


def test_check_sh_passes_when_every_check_passes(tmp_path: Path) -> None:
    result = _run_check(_stand_in_venv(tmp_path, None))
    assert result.returncode == 0, result.stderr
    assert "found problems" not in result.stderr
    assert len((tmp_path / "calls").read_text(encoding="utf-8").splitlines()) == 3
