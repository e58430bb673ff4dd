"""The book in a classroom (dimr.reproduction.editions): every notebook page as an .ipynb, a student edition without the
exercise solutions, the downloads the book offers, the glossary the chapters link to."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from dimr.reproduction import book, editions

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_PAGES = [f"notebooks/{c.name}" for c in book.CHAPTERS]


def test_the_pages_handed_out_are_the_books_notebook_pages():
    pages = editions.notebook_pages(ROOT)
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    named = re.findall(r"^\s*(?:-\s*)?(?:file|root):\s*(\S+)", toc, flags=re.M)
    assert pages == [p for p in named if (ROOT / f"{p}.py").exists()]
    assert set(CHAPTER_PAGES) <= set(pages) and "book/glossary" in pages
    # the chapters with solutions are exactly the component chapters
    assert editions.chapter_pages(ROOT) == CHAPTER_PAGES


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_the_student_edition_has_every_prompt_and_no_solution(page, tmp_path):
    name = Path(page).name
    [path] = editions.write_edition(tmp_path, "student", [page], ROOT)
    student = nbformat.read(path, as_version=4)
    teacher = jupytext.read(ROOT / f"{page}.py")
    assert editions.is_student_edition(student) and not editions.is_student_edition(teacher)
    assert not any("solution" in c.metadata.get("tags", []) for c in student.cells)
    assert not any(re.search(r"#\s*Solution \d", c.source) for c in student.cells if c.cell_type == "code")
    # every exercise prompt is still there, word for word, with an empty answer cell after it
    text = "\n\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    asked = book.exercises(name)
    assert asked and all(f"**Exercise {n}.**" in text for n, _ in asked)
    answers = [c for c in student.cells if c.cell_type == "code" and "answer" in c.metadata.get("tags", [])]
    assert [a.source.split(":")[0] for a in answers] == [f"# Your answer to Exercise {n}" for n, _ in asked]
    # nothing else changed: the same cells, in the same order, but the solutions
    solutions = sum("solution" in c.metadata.get("tags", []) for c in teacher.cells)
    assert len(student.cells) == len(teacher.cells) and solutions == len(asked)
    kept = [c.source for c in teacher.cells if "solution" not in c.metadata.get("tags", [])]
    assert [c.source for c in student.cells if "answer" not in c.metadata.get("tags", [])] == kept


def test_make_student_writes_the_chapters(tmp_path):
    out = tmp_path / "student"
    res = subprocess.run([sys.executable, "-m", "dimr", "chapters", "--student", str(out)], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.ipynb"))
    assert written == sorted(f"{p}.ipynb" for p in CHAPTER_PAGES)
    assert all(editions.is_student_edition(nbformat.read(out / w, as_version=4)) for w in written)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^student: install\n\t\$\(BIN\)/python -m dimr chapters --student _build/student$", makefile,
                     flags=re.M)


def test_every_chapter_box_links_both_editions_and_the_source():
    for page in CHAPTER_PAGES:
        box = book.run_this_chapter(Path(page).name)
        name = Path(page).name
        assert f"{{download}}`{name}.ipynb </{editions.edition_path(page, 'teacher')}>`" in box
        assert f"{{download}}`{name}-student.ipynb </{editions.edition_path(page, 'student')}>`" in box
        assert f"{{download}}`{name}.py </{page}.py>`" in box
    assert editions.edition_path("notebooks/tdln", "student") == "_build/editions/student/notebooks/tdln-student.ipynb"
    with pytest.raises(ValueError):
        editions.edition_path("notebooks/tdln", "pupil")


def test_the_book_build_loads_the_extension_that_writes_the_downloads():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert "dimr.reproduction.editions" in config["sphinx"]["extra_extensions"]
    assert config["html"]["use_download_button"] is True


def test_the_glossary_defines_every_term_the_chapters_use():
    defined = {t.lower() for terms, _ in book.glossary() for t in terms}
    for c in book.CHAPTERS:
        text = (ROOT / f"notebooks/{c.name}.py").read_text(encoding="utf-8")
        used = [m.group(2) or m.group(1) for m in re.finditer(r"\{\{?term\}?\}`([^`<]+?)\s*(?:<([^>]+)>)?`", text)]
        used = [u.strip().lower() for u in used if "{" not in u]  # "{…}": an f-string fills it in, when it runs
        assert used and all(u in defined for u in used), (c.name, [u for u in used if u not in defined])
    # the claim keys and the study's metrics are all there, read from the code
    from dimr.reproduction import study

    assert {c.key.lower() for c in study.CLAIMS if not c.beyond} <= defined
    assert {"mean 1 − iou", "distortion rate", "classifier accuracy", "flagged fraction", "tau", "nfe"} <= defined
    from dimr.evaluate.distortion import COARSE_DISTORTION_THRESHOLD

    rate = next(text for terms, text in book.glossary() if terms[0] == "distortion rate")
    assert f"{COARSE_DISTORTION_THRESHOLD:g}" in rate
