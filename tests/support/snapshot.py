"""Copies of this repository's files, as a checkout at a ref would hold them (no caches)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What a pip install of the project needs.
PACKAGE_FILES = ("pyproject.toml", "README.md", "redbeat", "reconciler", "schemas")


def copy_tree(destination: Path, names: Iterable[str]) -> Path:
    """``names`` (files or directories at the repository root) copied into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, destination / name)
    return destination
