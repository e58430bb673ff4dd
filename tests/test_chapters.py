"""Every component chapter teaches the same way (dimr.reproduction.book): an opening box, the run-this-chapter box,
a claim-and-evidence section, takeaways and exercises with solutions in collapsed cells (executed by
test_notebooks_components), and the helpers that build those sections say what they should."""
from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

from dimr.reproduction import book, study
from dimr.reproduction.plan import build_plan

ROOT = Path(__file__).resolve().parents[1]
NAMES = [c.name for c in book.CHAPTERS]


def _cells(name):
    nb = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]


def test_the_components_part_of_the_toc_follows_the_chapter_registry():
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    part = toc.split("caption: Components", 1)[1].split("caption:", 1)[0]
    assert re.findall(r"file:\s*notebooks/(\w+)", part) == NAMES


def test_the_registry_titles_are_the_chapter_titles():
    for c in book.CHAPTERS:
        title = _cells(c.name)[0][1].splitlines()[0]
        assert title.startswith(f"# {c.title}"), (c.name, title)


@pytest.mark.parametrize("name", NAMES)
def test_a_chapter_opens_with_what_you_learn_and_need_and_how_to_run_it(name):
    cells = _cells(name)
    opening = "\n".join(src for kind, src, _ in cells[:3] if kind == "markdown")
    assert ":::{admonition} What you will learn" in opening, name
    assert "What you need to know" in opening, name
    # prerequisites link to where the book explains them
    needs = opening.split("What you need to know", 1)[1]
    assert "{doc}" in needs or "](" in needs, f"{name}: the prerequisites link nowhere"
    code = [src for kind, src, _ in cells[:6] if kind == "code"]
    assert any(f'run_this_chapter("{name}")' in src for src in code), f"{name}: no run-this-chapter box near the top"


@pytest.mark.parametrize("name", NAMES)
def test_a_chapter_says_whether_its_idea_worked(name):
    cells = _cells(name)
    md = "\n".join(src for kind, src, _ in cells if kind == "markdown")
    assert "## Claim and evidence" in md, name
    code = "\n".join(src for kind, src, _ in cells if kind == "code")
    for key in book.chapter(name).claims:
        assert re.search(rf"claim_evidence\(\([^)]*\"{re.escape(key)}\"", code), f"{name}: claim {key} not shown"


@pytest.mark.parametrize("name", NAMES)
def test_a_chapter_closes_with_takeaways_and_exercises_with_checked_solutions(name):
    cells = _cells(name)
    md = "\n".join(src for kind, src, _ in cells if kind == "markdown")
    assert "## Takeaways" in md and "## Exercises" in md, name
    exercises = re.findall(r"\*\*Exercise (\d+)\.\*\*", md)
    assert 2 <= len(exercises) <= 4 and exercises == [str(i + 1) for i in range(len(exercises))], (name, exercises)
    solutions = [(src, tags) for kind, src, tags in cells if kind == "code" and "solution" in tags]
    assert len(solutions) == len(exercises), f"{name}: {len(exercises)} exercises, {len(solutions)} solution cells"
    for i, (src, tags) in enumerate(solutions, 1):
        assert "hide-cell" in tags, f"{name}: solution {i} is not collapsed"
        assert src.lstrip().startswith(f"# Solution {i}"), f"{name}: solution {i} does not say which it is"
        assert "assert " in src, f"{name}: solution {i} checks nothing, so it cannot rot visibly"
    headings = re.findall(r"^## .*", md, flags=re.M)
    assert headings[-1].startswith("## Exercises"), f"{name}: the exercises are not the chapter's last section"


#: chapters whose exercises include a discussion question and a "change a line, run, observe" exercise: all
CLASSROOM = list(NAMES)


@pytest.mark.parametrize("name", CLASSROOM)
def test_a_chapter_asks_for_a_discussion_and_an_experiment_whose_outcome_is_checked(name):
    """Exercises beyond arithmetic: one asks students to discuss (its solution checks the facts the discussion
    rests on), one to change a line of the chapter, run it and observe — and the solution asserts the
    observation, so the chapter tests (which execute solution cells) fail if it stops being true."""
    asked = dict(book.exercises(name))
    kinds = {n: ("discuss" if text.startswith("*Discuss.*") else
                 "change" if text.startswith("*Change a line, run, observe.*") else "other") for n, text in asked.items()}
    assert "discuss" in kinds.values() and "change" in kinds.values(), (name, kinds)
    solutions = [src for kind, src, tags in _cells(name) if kind == "code" and "solution" in tags]
    for n, kind in kinds.items():
        if kind == "change":
            src = solutions[n - 1]
            assert "assert " in src, f"{name}: the observation of exercise {n} is not checked"
            # the line to change is named in backticks, as it stands in the chapter's code
            quoted = re.findall(r"`([^`]+)`", asked[n])
            code = "\n".join(src for kind, src, _ in _cells(name) if kind == "code")
            assert any(q in code for q in quoted), f"{name}: exercise {n} names no line of the chapter's code"


def test_run_this_chapter_reports_the_recorded_time_and_the_machine(tmp_path):
    assert "not recorded yet" in book.run_this_chapter("tdln", root=tmp_path)
    (tmp_path / "book" / "_data").mkdir(parents=True)
    (tmp_path / book.TIMES_RECORD).write_text(
        '{"hardware": {"cpu": "Test CPU", "cpu_count": 2, "gpu": null}, "measured": "2026-01-02", '
        '"seconds": {"tdln": 41.0, "distortion": 200.0}}', encoding="utf-8")
    box = book.run_this_chapter("tdln", root=tmp_path)
    assert "about 40 s on 2 cores of Test CPU" in box and "2026-01-02" in box
    assert "notebooks/tdln.py" in box and box.startswith(":::{admonition}") and box.endswith(":::")
    assert "about 3 min" in book.run_this_chapter("distortion", root=tmp_path)
    with pytest.raises(KeyError, match="no chapter 'tdlm'"):
        book.run_this_chapter("tdlm", root=tmp_path)


def test_every_chapter_has_a_recorded_run_time():
    seconds = book.recorded_times().get("seconds", {})
    assert set(seconds) == set(NAMES), "run `python -m dimr chapters --time` after adding or renaming a chapter"
    assert all(s > 0 for s in seconds.values())


def _records(baseline: dict, treatment: dict, claim: study.Claim) -> dict:
    metric = claim.metrics[0]
    out = {}
    for slug, values in ((claim.baseline, baseline), (claim.treatment, treatment)):
        for seed, v in values.items():
            out[(slug, seed)] = {"values": {metric: v}, "run": {}}
    return out


def test_claim_evidence_prints_the_papers_pair_and_the_computed_verdict():
    c2 = next(c for c in study.CLAIMS if c.key == "C2")
    lower_is_better = not study.METRICS[c2.metrics[0]].higher_is_better
    better, worse = ({0: 0.2, 1: 0.25, 2: 0.22}, {0: 0.5, 1: 0.55, 2: 0.52}) if lower_is_better else \
        ({0: 0.5, 1: 0.55, 2: 0.52}, {0: 0.2, 1: 0.25, 2: 0.22})
    text = book.claim_evidence(("C2",), records=_records(worse, better, c2))
    fids = book.paper_table2_fids()
    assert f"FID {fids[3]} → {fids[4]}" in text
    assert "**supported**" in text and "(n = 3)" in text
    text = book.claim_evidence(("C2",), records=_records(better, worse, c2))
    assert "**contradicted**" in text
    assert "**not enough seeds**" in book.claim_evidence(("C2",), records={})
    with pytest.raises(KeyError, match="unknown claims"):
        book.claim_evidence(("C9",), records={})


def test_show_source_shows_the_package_code_and_cuts_it():
    from dimr.nn.tdln import TDLayerNorm

    whole = book.show_source(TDLayerNorm.forward)
    assert "dimr/nn/tdln.py" in whole and "def forward" in whole and whole.rstrip().endswith("```")
    cut = book.show_source(TDLayerNorm.forward, start="def forward", stop="def forward")
    assert cut.count("\n") < whole.count("\n")
    with pytest.raises(ValueError, match="not in the source"):
        book.show_source(TDLayerNorm.forward, start="no such line")


def test_show_source_names_the_file_from_a_scratch_root_that_links_the_package(tmp_path, monkeypatch):
    """The smoke-plan test builds the book in a scratch root with ``dimr/`` linked in: the displayed path
    is the package's own, not an error about a file outside that root."""
    from dimr.nn.tdln import TDLayerNorm

    (tmp_path / "_toc.yml").write_text("root: intro\n")
    (tmp_path / "dimr").symlink_to(Path(book.__file__).resolve().parents[1])
    monkeypatch.chdir(tmp_path)
    assert book.repo_root() == tmp_path
    assert "(`dimr/nn/tdln.py`, line " in book.show_source(TDLayerNorm.forward)


def test_pca_evidence_lists_only_configurations_with_an_adaln_record():
    assert "No trained adaLN-Zero configuration" in book.pca_evidence(records={})
    records = {("row3", 0): {"values": {"pca": 1.0}, "run": {}}, ("row3", 1): {"values": {"pca": 3.0}, "run": {}},
               ("row6", 0): {"values": {"accuracy": 0.9}, "run": {}}}
    text = book.pca_evidence(records=records)
    assert study.CONFIGS["row3"].label in text and study.CONFIGS["row6"].label not in text
    assert "| 1 | 3 | · |" in text and "2 ± " in text and "(n = 2)" in text


def test_study_collect_reads_the_pca_a_record_holds(tmp_path):
    import json

    run = tmp_path / "eval-study-row3-s1" / "small"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "schema": 1, "status": "complete", "experiment": "eval-study-row3-s1", "run": "small", "profile": "small",
        "parameters": build_plan()["eval-study-row3-s1"].parameters["small"],
        "metrics": {"adaln_pca_components_90": {"value": 2.0, "label": "x", "scale": "y"},
                    "accuracy_shapes_classifier": {"value": 0.5, "label": "x", "scale": "y"}}}))
    records = study.collect(tmp_path)
    assert records[("row3", 1)]["values"] == {"pca": 2.0, "accuracy": 0.5}


def test_exercises_are_read_from_the_chapter_text(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "tdln.py").write_text(
        "# %% [markdown]\n# # T\n\n# %% [markdown]\n# **Exercise 1.** Count the\n# parameters. Then check.\n"
        "\n# %%\nx = 1\n\n# %% [markdown]\n# **Exercise 2.** Fig. 6 uses four layers.\n#\n# Not part of it.\n",
        encoding="utf-8")
    assert book.exercises("tdln", root=tmp_path) == [(1, "Count the parameters. Then check."),
                                                      (2, "Fig. 6 uses four layers.")]


def test_a_cut_inside_a_method_is_dedented():
    from dimr.nn.tdln import TDLayerNorm

    cut = book.show_source(TDLayerNorm, start="def forward", stop="return")
    code = cut.split("```python\n", 1)[1]
    assert code.startswith("def forward")
