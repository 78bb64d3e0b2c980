"""The import-linter contracts in pyproject.toml name modules that exist, and every reconciler module is placed."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONTRACTS = CONFIG["tool"]["importlinter"]["contracts"]
# Left out of the layers contract on purpose (pyproject.toml says why); a new module must be placed or listed.
UNLAYERED = {"audit", "operate", "status"}


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
        named += contract.get("source_modules", []) + contract.get("forbidden_modules", [])
    assert named, "no contract names a module"
    assert [m for m in named if not module_exists(m)] == []


def test_every_reconciler_module_is_in_the_layers_or_deliberately_left_out() -> None:
    (layers,) = [c for c in CONTRACTS if c["type"] == "layers" and c["containers"] == ["reconciler"]]
    placed = layered_modules(layers)
    assert len(placed) == len(set(placed)), "a module is in two layers"
    present = {p.stem for p in (ROOT / "reconciler").glob("*.py")} - {"__init__"}
    assert present - set(placed) == UNLAYERED
    assert set(placed) <= present
