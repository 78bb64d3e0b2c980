"""The manifest corpora in tests/data/manifests, the examples and the manifests shown in README.md and docs/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from reconciler.manifests.checks import check_manifests, load_desired
from reconciler.manifests.schema import check_value
from reconciler.schedules.convert import entry_to_manifest, manifest_to_entry

ROOT = Path(__file__).resolve().parents[3]
INVALID = ROOT / "tests" / "data" / "manifests" / "invalid"
VALID = ROOT / "tests" / "data" / "manifests" / "valid"
SCHEMA_MODELINE = "# yaml-language-server: $schema="


def _example_manifests() -> list[Path]:
    """Every schedule manifest under examples/: files in a ``schedules`` directory or
    carrying the schema modeline (deployment YAML such as Kubernetes objects is not a manifest)."""
    found = []
    for path in sorted((ROOT / "examples").rglob("*.y*ml")):
        text = path.read_text(encoding="utf-8")
        if "schedules" in path.relative_to(ROOT).parts[:-1] or (
            text.startswith(SCHEMA_MODELINE) and "redbeat-manifest.schema.json" in text.splitlines()[0]
        ):
            found.append(path)
    return found


EXAMPLES = _example_manifests()
INVALID_CASES = sorted(p.name.removesuffix(".expected") for p in INVALID.glob("*.expected"))
VALID_CASES = sorted(p.stem for p in VALID.glob("*.yaml"))


def test_corpora_are_big_enough() -> None:
    assert len(INVALID_CASES) >= 40
    assert len(VALID_CASES) >= 5
    assert EXAMPLES


@pytest.mark.parametrize("case", INVALID_CASES)
def test_invalid_case_fails_for_one_reason(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)
    target = Path(case + ".yaml") if (INVALID / (case + ".yaml")).exists() else Path(case)
    expected = (INVALID / (case + ".expected")).read_text(encoding="utf-8").strip()
    entries, errors = check_manifests([target])
    assert [str(e) for e in errors] == [expected]


@pytest.mark.parametrize("case", VALID_CASES)
def test_valid_case_gives_expected_entries(case: str) -> None:
    entries = load_desired([VALID / f"{case}.yaml"])
    expected = json.loads((VALID / f"{case}.json").read_text(encoding="utf-8"))
    got = {n: {"definition": d.definition, "ext": d.ext, "protected": d.protected} for n, d in entries.items()}
    assert got == expected
    # key order is part of the contract: celery-redbeat's Entry(**definition)
    for entry in entries.values():
        assert list(entry.definition) == ["name", "task", "args", "kwargs", "options", "schedule", "enabled"]


def _all_manifest_paths() -> list[Path]:
    return [VALID / f"{c}.yaml" for c in VALID_CASES] + EXAMPLES


@pytest.mark.parametrize("path", _all_manifest_paths(), ids=lambda p: p.name)
def test_round_trip_manifest_definition_manifest(path: Path) -> None:
    entries = load_desired([path])
    assert entries
    for entry in entries.values():
        manifest = entry_to_manifest(entry.definition, entry.ext)
        assert check_value(manifest) == []
        definition, ext = manifest_to_entry(manifest)
        assert definition == entry.definition
        assert ext == entry.ext
        # and the export is stable
        assert entry_to_manifest(definition, ext) == manifest


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_and_has_modeline(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith(SCHEMA_MODELINE)
    modeline = text.splitlines()[0].split("$schema=", 1)[1]
    assert (path.parent / modeline).resolve() == ROOT / "schemas" / "redbeat-manifest.schema.json"
    for document in yaml.safe_load_all(text):
        assert check_value(document) == []
    load_desired([path])


def _doc_yaml_blocks() -> list[str]:
    """The ```yaml blocks of README.md and docs/**/*.md: manifests (other YAML, a workflow say, is ```yml)."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [block for doc in docs
            for block in re.findall(r"^```yaml\n(.*?)^```", doc.read_text(encoding="utf-8"), flags=re.S | re.M)]


def test_doc_yaml_snippets_validate(tmp_path: Path) -> None:
    blocks = _doc_yaml_blocks()
    assert len(blocks) >= 6, "README and docs/manifests.md show their manifests in ```yaml blocks"
    for index, block in enumerate(blocks):
        for document in yaml.safe_load_all(block):
            assert check_value(document) == [], block
        path = tmp_path / f"readme-{index}.yaml"
        path.write_text(block, encoding="utf-8")
        load_desired([path])
