"""The repository stands on its own: design citations resolve in docs/design.md, no file names a machine's paths.

Code and docs cite design decisions as ``docs/design.md §n`` (or ``§n.m``):
each cited section must exist, where ``§n`` is a ``## n.`` heading and
``§n.m`` a ``### n.m`` heading or item ``m.`` of section n's numbered list.
Nothing tracked may cite a document outside the repository or carry a path of
the machine it was written on.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "design.md"
CITATION = re.compile(r"docs/design\.md §(\d+(?:\.\d+)?)")
#: What must not appear in a tracked file: briefs outside the repository and this kind of machine's paths.
FORBIDDEN = (
    re.compile(r"\bDESIGN §"),
    re.compile(r"CELERY-REDBEAT-FACTS\.md"),
    re.compile(r"(?<![\w.])/(?:work|root|home)/[\w.-]+"),
)
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()


def design_sections(text: str) -> set[str]:
    """The section numbers of a design text: ``n`` per ``## n.``, ``n.m`` per ``### n.m`` or numbered item."""
    sections: set[str] = set()
    current = ""
    for line in text.splitlines():
        heading = re.match(r"## (\d+)\. ", line)
        if heading:
            current = heading[1]
            sections.add(current)
            continue
        sub = re.match(r"### (\d+\.\d+) ", line) or (re.match(r"(\d+)\. ", line) if current else None)
        if sub:
            sections.add(sub[1] if "." in sub[1] else f"{current}.{sub[1]}")
    return sections


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = [ROOT / name for name in listed.decode().split("\0") if name]
    return [path for path in paths if path.is_file() and b"\0" not in path.read_bytes()[:8192]]


def test_design_sections_are_numbered_headings_and_items() -> None:
    text = "## 1. A\n### 1.1 B\n## 2. C\n1. **x**\n2. **y**\n   3. not top level\n"
    assert design_sections(text) == {"1", "1.1", "2", "2.1", "2.2"}


def test_every_design_citation_names_a_section_that_exists() -> None:
    sections = design_sections(DESIGN.read_text(encoding="utf-8"))
    assert {"2", "2.3", "3", "3.5", "4", "6", "6.7"} <= sections, sorted(sections)
    dangling = [
        f"{path.relative_to(ROOT)}: §{number}"
        for path in tracked_text_files()
        for number in CITATION.findall(path.read_text(encoding="utf-8", errors="replace"))
        if number not in sections
    ]
    assert not dangling, f"citations of docs/design.md sections that do not exist: {dangling}"


def test_no_tracked_file_cites_outside_the_repository_or_a_machine_path() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}"
        for path in tracked_text_files()
        if path.relative_to(ROOT).as_posix() != THIS_FILE
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if any(pattern.search(line) for pattern in FORBIDDEN)
    ]
    assert not found, "\n".join(found)
