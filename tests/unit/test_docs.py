"""README.md is the front door and every relative link of the documentation resolves.

README.md stays at most 250 lines and its quick start names the project's commands. Every relative
link and image of README.md, CHANGELOG.md and docs/*.md, found by reading the files (not from a
list), points at a file or folder of the repository, and its ``#anchor``, if any, matches a heading
of the target as GitHub slugs it: lowercase, spaces to ``-``, punctuation other than ``-`` and ``_``
removed, a repeated heading suffixed ``-1``, ``-2``, ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
README_MAX_LINES = 250
DOCUMENTS = (README, REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md")))

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]"  # [text], brackets nested once
    r"\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)"  # (target "title")
)
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+[\"'(].*)?$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Link:
    """One link of a document: where it is and what it points at."""

    source: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.source.relative_to(REPO)}:{self.line} -> {self.target}"


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a Markdown file outside fenced code blocks, numbered from 1."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif match.group(1) == fence:
                fence = None
            continue
        if fence is None:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before duplicates are numbered)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor the headings of a Markdown file define."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[Link]:
    """The relative links and images of a Markdown file, outside code blocks and code spans."""
    found: list[Link] = []
    for number, line in prose_lines(path):
        text = CODE_SPAN.sub("", line)
        targets = [m.group(1) for m in INLINE_LINK.finditer(text)]
        reference = REFERENCE_LINK.match(text)
        if reference:
            targets.append(reference.group(1))
        found.extend(Link(path, number, target) for target in targets if not SCHEME.match(target))
    return found


def problem(link: Link) -> str | None:
    """Why a link does not resolve, or None when it does."""
    path_part, _, anchor = link.target.partition("#")
    target = (link.source.parent / unquote(path_part)).resolve() if path_part else link.source
    if not target.exists():
        return f"{link}: {target} does not exist"
    if not anchor:
        return None
    if target.suffix != ".md":
        return f"{link}: an anchor into {target.name}, which is not Markdown"
    if unquote(anchor) not in anchors(target):
        return f"{link}: no heading of {target.relative_to(REPO)} has the anchor #{anchor}"
    return None


ALL_LINKS = [link for document in DOCUMENTS for link in links(document)]


def test_readme_is_the_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_readme_quick_start_names_the_commands() -> None:
    text = README.read_text(encoding="utf-8")
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    for command in ("make test", "make demo", "make check", "make setup"):
        assert command in quick_start, command


def test_the_documents_have_links_to_check() -> None:
    assert {document.name for document in DOCUMENTS} >= {"README.md", "CHANGELOG.md"}
    assert len(ALL_LINKS) > 20, ALL_LINKS


@pytest.mark.parametrize("link", ALL_LINKS, ids=str)
def test_relative_link_resolves(link: Link) -> None:
    assert problem(link) is None, problem(link)


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Quick start", "quick-start"),
        ("Security: what creating a run grants", "security-what-creating-a-run-grants"),
        ("Benchmark (`make bench-controller`)", "benchmark-make-bench-controller"),
        ("How the reference product's nine steps", "how-the-reference-products-nine-steps"),
        ("Results (2026-12-01, 16:21 UTC)", "results-2026-12-01-1621-utc"),
        ("snake_case and [a link](x.md)", "snake_case-and-a-link"),
    ],
)
def test_slug_is_githubs(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_repeated_headings_are_numbered(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n## Notes\n```\n## Not a heading\n```\n## Notes\n", encoding="utf-8")
    assert anchors(page) == {"title", "notes", "notes-1"}
