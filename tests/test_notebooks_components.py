"""The component chapters run to the end (papermill, cwd = repository root), and the book's table of
contents names only pages that exist."""
from __future__ import annotations

import re
from pathlib import Path

import jupytext
import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
from dimr.reproduction.book import CHAPTERS

COMPONENT_NOTEBOOKS = [c.name for c in CHAPTERS] + ["paper_vs_official"]


@pytest.mark.slow
@pytest.mark.parametrize("name", COMPONENT_NOTEBOOKS)
def test_component_notebook_runs(name, tmp_path, monkeypatch):
    # the kernel must draw inline (conftest's Agg would leave the notebook without figures)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    nb = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    assert nb.metadata["kernelspec"]["name"] == "python3"
    out = tmp_path / f"{name}.ipynb"
    executed = papermill.execute_notebook(nb, str(out), cwd=str(ROOT), kernel_name="python3", progress_bar=False)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{name} draws no figure"


def test_toc_names_only_existing_pages():
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    pages = re.findall(r"^\s*(?:-\s*)?(?:file|root):\s*(\S+)", toc, flags=re.M)
    assert "book/intro" in pages and "notebooks/patchify" in pages
    for page in pages:
        found = [p for p in (ROOT / f"{page}.md", ROOT / f"{page}.py", ROOT / f"{page}.ipynb") if p.exists()]
        assert len(found) == 1, f"_toc.yml names {page}: found {found}"


def test_book_notebooks_are_jupytext_with_a_kernel():
    for path in sorted((ROOT / "book").rglob("*.py")) + [ROOT / "notebooks" / f"{n}.py" for n in COMPONENT_NOTEBOOKS]:
        nb = jupytext.read(path)
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), f"{path}: no title"


def test_recorded_run_notebooks_are_never_re_executed_by_the_book():
    """myst-nb matches execute.exclude_patterns with PurePosixPath.match (from the right, "*" within
    one folder): the patterns must cover runs/<experiment>/<run>/<notebook>.ipynb."""
    from pathlib import PurePosixPath

    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    execute = config.split("execute:", 1)[1].split("\n\n", 1)[0]
    patterns = re.findall(r'-\s*"(runs/[^"]+)"', execute)
    run_notebook = PurePosixPath(ROOT.as_posix()) / "runs" / "train-table2-row6" / "cpu" / "train.ipynb"
    assert any(run_notebook.match(p) for p in patterns), patterns
    chapter = PurePosixPath(ROOT.as_posix()) / "notebooks" / "tdln.py"
    assert not any(chapter.match(p) for p in patterns)


@pytest.mark.parametrize("name", ["train", "evaluate"])
def test_parameterised_notebooks_declare_typed_documented_parameters(name):
    """papermill must parse every line of the parameters cell (type, default and help text)."""
    from papermill.inspection import _infer_parameters

    nb = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    for c in nb.cells:  # as papermill's loader does
        c.metadata.setdefault("tags", [])
    cell = next(c for c in nb.cells if "parameters" in c.metadata["tags"])
    declared = [line.split(":")[0] for line in cell.source.splitlines() if line and not line.startswith("#")]
    inferred = _infer_parameters(nb)
    assert [p.name for p in inferred] == declared
    assert all(p.inferred_type_name != "None" and p.help for p in inferred)
