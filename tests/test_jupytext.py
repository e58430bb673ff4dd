"""Every chapter opens as a notebook (`make lab`), and saving it from JupyterLab leaves the file as it was."""
import re
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.cli import jupytext as jupytext_cli

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted([*ROOT.glob("notebooks/*.py"), *ROOT.glob("book/*.py"), *ROOT.glob("book/tables/*.py")])


def _header(path: Path) -> str:
    return path.read_text(encoding="utf-8").split("# ---\n")[1]


def test_make_lab_and_the_jupytext_config_exist():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab: install\n\t.*jupyter lab", makefile, re.M)
    config = (ROOT / "jupytext.toml").read_text()
    assert 'formats = "py:percent"' in config and "cell_metadata_filter" in config
    assert "make lab" in (ROOT / "README.md").read_text()


def test_every_chapter_carries_the_same_header():
    headers = {p.relative_to(ROOT).as_posix(): _header(p) for p in CHAPTERS}
    assert len(set(headers.values())) == 1, sorted(headers)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_saving_from_lab_does_not_churn_the_chapter(chapter, tmp_path):
    """Open as a notebook, let Lab add its metadata (language_info, widgets, execution times), save
    through Jupytext with the repository's config: the script comes back byte for byte."""
    nb = jupytext.read(chapter)
    assert any(c.cell_type == "code" for c in nb.cells)
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    for cell in nb.cells:
        cell.metadata["execution"] = {"iopub.status.busy": "2026-12-04T00:00:00Z"}
        cell.metadata["collapsed"] = False
    shutil.copy(ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    opened = tmp_path / f"{chapter.stem}.ipynb"
    nbformat.write(nb, opened)
    saved = tmp_path / chapter.name
    jupytext_cli([str(opened), "--to", "py:percent", "--output", str(saved), "--quiet"])
    assert saved.read_text(encoding="utf-8") == chapter.read_text(encoding="utf-8")
