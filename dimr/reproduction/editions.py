"""The book's pages as notebooks to hand out: a teacher's edition and a student edition.

Every page of the book that is a Jupytext py:percent script (``notebooks/*.py``, ``book/*.py``) is also
offered as an ``.ipynb``. The **teacher's edition** is the page as written: exercises with their checked
solutions (code cells tagged ``solution``, collapsed in the book). The **student edition** is the same
notebook with every solution cell replaced by an empty code cell that names its exercise, so students
answer in place. Both are unexecuted: a class runs them.

Three ways to get them:

* ``make student`` (``python -m dimr chapters --student _build/student``) writes the student edition of
  the component chapters; ``--teacher DIR`` writes the teacher's.
* The book build writes both into ``_build/editions/`` (this module is a Sphinx extension, named in
  ``_config.yml``): every page's download menu offers its ``.ipynb`` next to the ``.py`` source, a chapter
  with exercises also its student ``.ipynb``, and the "Run this chapter" box links them
  (:func:`download_links`).
* :func:`student_notebook` on any notebook.

This module imports neither torch nor the rest of the package: Sphinx loads it.
"""
from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Iterable

__all__ = ["EDITIONS_DIR", "SOLUTION_TAG", "ANSWER_TAG", "EXERCISE_HEADING", "notebook_pages", "chapter_pages", "student_notebook",
           "is_student_edition", "edition_path", "write_edition", "download_links", "setup"]

#: where the book build writes both editions, relative to the repository root (Sphinx's source folder)
EDITIONS_DIR = "_build/editions"
#: the tag of a solution cell (dimr.reproduction.book's convention, checked by tests/test_chapters.py)
SOLUTION_TAG = "solution"
#: the tag of the empty cell the student edition puts where a solution was
ANSWER_TAG = "answer"
#: how an exercise opens in a chapter's Markdown (``**Exercise 3.**``); :func:`dimr.reproduction.book.exercises` reads it
EXERCISE_HEADING = r"\*\*Exercise (\d+)\.\*\*"
_SOLUTION = re.compile(r"#\s*Solution (\d+)")


def _root(root: str | Path | None) -> Path:
    if root is not None:
        return Path(root)
    from ..provenance import repo_root  # lazily: Sphinx passes the root anyway

    return repo_root()


def notebook_pages(root: str | Path | None = None) -> list[str]:
    """Every page of ``_toc.yml`` whose source is a py:percent script, as ``"notebooks/tdln"`` (no suffix),
    in the order of the table of contents; globbed entries (the run records, executed ``.ipynb``) are not
    scripts and are left out."""
    import yaml

    root = _root(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                page = node.get(key)
                if isinstance(page, str) and (root / f"{page}.py").exists() and page not in found:
                    found.append(page)
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


def chapter_pages(root: str | Path | None = None) -> list[str]:
    """The pages with exercise solutions (the component chapters): the ones a student edition changes."""
    import jupytext

    root = _root(root)
    return [p for p in notebook_pages(root)
            if any(SOLUTION_TAG in c.metadata.get("tags", []) for c in jupytext.read(root / f"{p}.py").cells)]


def student_notebook(nb):
    """A copy of ``nb`` (an nbformat notebook) without its solutions: each code cell tagged ``solution``
    becomes an empty code cell tagged ``answer`` that says which exercise it answers. Markdown, the
    exercise prompts included, is kept as written. The notebook's metadata records the edition."""
    out = copy.deepcopy(nb)
    cells = []
    for cell in out.cells:
        tags = list(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and SOLUTION_TAG in tags:
            m = _SOLUTION.search(cell.source)
            which = f"Exercise {m.group(1)}" if m else "the exercise above"
            blank = copy.deepcopy(cell)
            blank.source = f"# Your answer to {which}: write and run your code here.\n"
            blank.metadata["tags"] = [ANSWER_TAG]
            if "outputs" in blank:
                blank.outputs = []
            blank.execution_count = None
            cells.append(blank)
        else:
            cells.append(cell)
    out.cells = cells
    out.metadata["dimr_edition"] = "student"
    return out


def is_student_edition(nb) -> bool:
    """No solution cell and no solution text left (what the tests check of every student notebook)."""
    return not any(c.cell_type == "code" and (SOLUTION_TAG in c.metadata.get("tags", []) or _SOLUTION.search(c.source))
                   for c in nb.cells)


def edition_path(page: str, edition: str) -> str:
    """Where the book build writes ``page``'s notebook of ``edition`` (``"teacher"`` or ``"student"``),
    relative to the repository root: ``_build/editions/student/notebooks/tdln-student.ipynb``. The student
    file carries the edition in its name, so a download of both editions keeps both."""
    if edition not in ("teacher", "student"):
        raise ValueError(f"edition is 'teacher' or 'student', not {edition!r}")
    name = Path(page).name + ("-student" if edition == "student" else "") + ".ipynb"
    return f"{EDITIONS_DIR}/{edition}/{Path(page).parent.as_posix()}/{name}"


def write_edition(out: str | Path, edition: str, pages: Iterable[str] | None = None,
                  root: str | Path | None = None, suffix: str = "") -> list[Path]:
    """Write ``pages`` (default: the component chapters for the student edition, every notebook page for
    the teacher's) as unexecuted ``.ipynb`` under ``out``, keeping their folders
    (``out/notebooks/tdln<suffix>.ipynb``). Returns the paths written."""
    import jupytext
    import nbformat

    root = _root(root)
    if edition not in ("teacher", "student"):
        raise ValueError(f"edition is 'teacher' or 'student', not {edition!r}")
    if pages is None:
        pages = chapter_pages(root) if edition == "student" else notebook_pages(root)
    written = []
    for page in pages:
        nb = jupytext.read(root / f"{page}.py")
        if edition == "student":
            nb = student_notebook(nb)
        path = Path(out) / f"{page}{suffix}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = nbformat.writes(nb)
        if not path.exists() or path.read_text(encoding="utf-8") != text:  # unchanged files keep their mtime
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def download_links(page: str, student: bool = True) -> str:
    """MyST: the page's downloads as ``{download}`` roles — its ``.ipynb`` (teacher's edition), with
    ``student`` its student ``.ipynb`` (a page with exercise solutions), and the ``.py`` source. The book
    build writes the notebooks (:func:`setup`) before any page is read, so a missing one is a build
    warning (an error under ``-W``), never a dead link."""
    name = Path(page).name
    links = [f"{{download}}`{name}.ipynb </{edition_path(page, 'teacher')}>` (solutions included)"]
    if student:
        links.append(f"{{download}}`{name}-student.ipynb </{edition_path(page, 'student')}>` (student edition: "
                     "the solutions removed)")
    links.append(f"{{download}}`{name}.py </{page}.py>` (the Jupytext source)")
    return " · ".join(links)


# ---------------------------------------------------------------------------------------------
# Sphinx extension (named in _config.yml): write the editions, put them in every page's download menu
# ---------------------------------------------------------------------------------------------
def _write_for_build(app) -> None:
    root = Path(app.srcdir)
    pages = notebook_pages(root)
    for edition, chosen in (("teacher", pages), ("student", chapter_pages(root))):
        for page in chosen:
            write_edition(root / EDITIONS_DIR / edition, edition, [page], root,
                          suffix="-student" if edition == "student" else "")
    app.env_dimr_pages = set(pages)  # noqa: attribute on the app: the page-context hooks read it
    app.env_dimr_chapters = set(chapter_pages(root))


def _offer_ipynb(app, pagename, templatename, context, doctree) -> None:
    """Before sphinx-book-theme builds its download menu (priority 501): the page's teacher ``.ipynb`` goes
    next to its ``.py`` in ``_sources/``, where the theme's ``.ipynb`` entry points."""
    if pagename not in getattr(app, "env_dimr_pages", ()):
        return
    src = Path(app.srcdir) / edition_path(pagename, "teacher")
    dst = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    context["ipynb_source"] = f"{pagename}.ipynb"


def _offer_student(app, pagename, templatename, context, doctree) -> None:
    """After the theme built its download menu: a chapter with exercises adds its student ``.ipynb``."""
    if pagename not in getattr(app, "env_dimr_chapters", ()):
        return
    name = f"{pagename}-student.ipynb"
    dst = Path(app.outdir) / "_sources" / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(app.srcdir) / edition_path(pagename, "student"), dst)
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            buttons = group["buttons"]
            at = next((i + 1 for i, b in enumerate(buttons) if b.get("label") == "download-notebook-button"), 0)
            buttons.insert(at, {"type": "link", "url": f"{context['pathto']('_sources', 1)}/{name}",
                                "text": ".ipynb, student edition", "tooltip": "Download the notebook without solutions",
                                "icon": "fas fa-user-graduate", "label": "download-student-notebook-button"})


def setup(app):
    app.connect("builder-inited", _write_for_build)
    app.connect("html-page-context", _offer_ipynb, priority=500)
    app.connect("html-page-context", _offer_student, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
