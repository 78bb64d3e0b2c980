"""The repository stands on its own: design citations and doc links resolve, no file names a machine's paths.

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


#: The Markdown documents whose relative links must resolve.
LINKED_DOCS = ("README.md", "CONTRIBUTING.md", "RELIABILITY.md", "CHANGELOG.md", "bench/README.md")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(`{3,}).*?^\1`*\s*$", re.S | re.M)


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a document's headings: lower case, no punctuation, spaces to hyphens, -n for repeats."""
    anchors: set[str] = set()
    for line in FENCE.sub("", markdown).splitlines():
        heading = re.match(r"#{1,6} (.*)", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading[1].strip().lower()).replace(" ", "-")
        anchor, repeat = slug, 0
        while anchor in anchors:
            repeat += 1
            anchor = f"{slug}-{repeat}"
        anchors.add(anchor)
    return anchors


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """The relative links of a Markdown file whose file, or heading anchor, does not exist."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # a link shown as code is not a link
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{path.relative_to(root)}: {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{path.relative_to(root)}: {target}: no such heading")
    return broken


def test_heading_anchors_follow_github() -> None:
    text = "# Applying schedules (`redbeat-apply`)\n## 2. Compatibility, celery-redbeat 2.x\n## Run\n## Run\n"
    text += "```\n# not a heading\n```\n"
    assert heading_anchors(text) == {
        "applying-schedules-redbeat-apply", "2-compatibility-celery-redbeat-2x", "run", "run-1",
    }


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n")
    doc = tmp_path / "doc.md"
    doc.write_text("[a](other.md) [b](other.md#other-page) [c](missing.md) [d](other.md#nope) [e](#here)\n"
                   "`[f](not-a-link.md)` [g](https://example.com/x.md)\n# Here\n")
    assert broken_links(doc, tmp_path) == [
        "doc.md: missing.md: no such file", "doc.md: other.md#nope: no such heading",
    ]


def test_every_relative_link_of_the_documentation_resolves() -> None:
    docs = [ROOT / name for name in LINKED_DOCS] + sorted((ROOT / "docs").rglob("*.md"))
    assert len(docs) > len(LINKED_DOCS)
    broken = [problem for doc in docs for problem in broken_links(doc)]
    assert not broken, "\n".join(broken)
