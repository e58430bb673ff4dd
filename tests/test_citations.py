"""Nothing is cited that a reader of this repository cannot open.

Facts about the official code are cited as "docs/official-code.md §N"; every such section must
exist, and no file may point at reference notes that live outside the repository.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "official-code.md"
SCANNED = ["dimr", "notebooks", "book", "tests", "docs", "_config.yml", "README.md"]
SUFFIXES = {".py", ".md", ".yml", ".yaml", ".txt", ".toml", ".cfg", ".ipynb"}
THIS = Path(__file__).resolve()

# Spelled in pieces so that this file does not match itself.
FORBIDDEN = ["official-dimr-" + "facts", "shared/" + "reference", "shared/" + "paper", '"shared" / ' + '"paper"', "facts" + " §"]
CITATION = re.compile(r"docs/official-code\.md((?:[^\S\n]|[`*\"',;:()])*)((?:§\s*\d+(?:\s*,\s*|\s*and\s*)?)+)")


def _files():
    for name in SCANNED:
        path = ROOT / name
        paths = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for p in paths:
            if p.suffix in SUFFIXES and p.resolve() != THIS and not any(part.startswith(".") for part in p.parts):
                yield p


def _sections() -> set[int]:
    return {int(m) for m in re.findall(r"^## (\d+)\. ", DOC.read_text(encoding="utf-8"), flags=re.M)}


def test_the_cited_document_exists_and_is_numbered():
    sections = _sections()
    assert sections and sections == set(range(1, max(sections) + 1))


@pytest.mark.parametrize("path", list(_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_outside_the_repository_is_cited(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    found = [(n + 1, word) for n, line in enumerate(text.splitlines()) for word in FORBIDDEN if word in line]
    assert not found, f"{path.relative_to(ROOT)} cites what the repository does not hold: {found}"


def test_every_cited_section_exists():
    sections, cited = _sections(), {}
    for path in _files():
        text = path.read_text(encoding="utf-8", errors="replace")
        # a citation may wrap onto the next line of a comment or docstring
        text = re.sub(r"\n\s*(?:#:?|//)?\s*", " ", text)
        for m in CITATION.finditer(text):
            for n in re.findall(r"§\s*(\d+)", m.group(2)):
                cited.setdefault(int(n), set()).add(str(path.relative_to(ROOT)))
    assert cited, "no citation of docs/official-code.md found: the pattern is wrong"
    missing = {n: sorted(where) for n, where in cited.items() if n not in sections}
    assert not missing, f"cited sections without a heading in docs/official-code.md: {missing}"
