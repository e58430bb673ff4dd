"""Every notebook of the repository executes with the ``smoke`` profile.

The run plan's notebooks (``notebooks/train.py``, ``notebooks/evaluate.py``) run through
``dimr reproduce``'s own code path into a scratch copy of the repository layout, and the book's pages
(``book/**/*.py``: introduction, experiments, Tables 1–7) are then executed against those fresh smoke
runs, so the pages that read ``runs/`` are exercised with records that exist.  The component chapters
are executed by ``test_notebooks_components.py``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import papermill
import pytest

from dimr.reproduction import reproduce, runs

ROOT = Path(__file__).resolve().parents[1]
BOOK_PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "book").rglob("*.py"))


def _network_namespace() -> list[str] | None:
    """``unshare -n`` with only the loopback up (papermill's kernels talk over localhost), or None where
    this machine does not permit a network namespace."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True)
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] if probe.returncode == 0 else None


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    """A scratch repository root (the package and config linked in, notebooks and book copied, empty runs/)
    in which the whole smoke plan has been executed — and the book built — inside a network namespace
    where this machine permits one (``offline`` says whether), else in this process without the book."""
    root = tmp_path_factory.mktemp("repo")
    for name in ("dimr", "docs", "_toc.yml", "_config.yml"):
        (root / name).symlink_to(ROOT / name)
    # pages run with their own folder as cwd, and dimr.reproduction.runs.repo_root() resolves it: copied (not linked)
    # folders keep it inside the scratch root, so the pages read the smoke runs, not this checkout's
    for name in ("notebooks", "book"):
        shutil.copytree(ROOT / name, root / name)
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "MPLCONFIGDIR": str(root / ".cache/mpl"),
           "IPYTHONDIR": str(root / ".cache/ipython"), "XDG_CACHE_HOME": str(root / ".cache/xdg")}
    for folder in ("mpl", "ipython", "xdg"):
        (root / ".cache" / folder).mkdir(parents=True, exist_ok=True)
    offline = _network_namespace()
    if offline is not None:
        res = subprocess.run([*offline, sys.executable, "-m", "dimr", "reproduce", "--profile", "smoke"], cwd=root,
                             env={**os.environ, **env}, capture_output=True, text=True)
        assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
        done = [root / "runs" / e.name / "smoke" for e in reproduce.planned("smoke")]
        return root, done, res.stdout.splitlines(), res
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        log: list[str] = []
        done = reproduce.run_plan("smoke", root=root, progress=False, log=log.append)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return root, done, log, None


@pytest.mark.slow
def test_the_smoke_plan_and_the_book_need_no_network(smoke_repo):
    """`python -m dimr reproduce --profile smoke` — every smoke run, then the book build with warnings as
    errors — succeeded with no network but the loopback (``unshare -n``): nothing reaches for the network."""
    root, _, _, offline_run = smoke_repo
    if offline_run is None:
        pytest.skip("this machine does not permit a network namespace (unshare -n): the smoke plan ran with the "
                    "network available, so it does not prove that nothing reaches for it")
    assert (root / "_build" / "html" / "index.html").is_file()
    assert "book built" in offline_run.stdout


@pytest.mark.slow
def test_the_smoke_plan_executes_every_planned_notebook(smoke_repo):
    root, done, _, _ = smoke_repo
    planned = reproduce.planned("smoke")
    assert {e.notebook for e in planned} >= {"notebooks/train.py", "notebooks/evaluate.py"}
    assert [d.relative_to(root).as_posix() for d in done] == [f"runs/{e.name}/smoke" for e in planned]
    for exp in planned:
        record = root / "runs" / exp.name / "smoke"
        assert runs.is_complete(record), record
        nb = record / f"{Path(exp.notebook).stem}.ipynb"
        executed = json.loads(nb.read_text(encoding="utf-8"))
        errors = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{nb}: {errors[0].get('ename')}"
        metrics = json.loads((record / "metrics.json").read_text(encoding="utf-8"))
        assert metrics, f"{record} recorded no metric"
    # the evaluation runs reach the tables: each one feeds its Table 2 row
    assert {f for e in planned for f in e.feeds} >= {f"table2/row{r}" for r in range(1, 7)}


def _paths_in(obj, key=""):
    """Every string of a record that names a file: a value under a key that says so, or any string with a
    slash that is not prose, a URL or a label."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths_in(v, str(k))
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _paths_in(v, key)
    elif isinstance(obj, str) and "/" in obj and " " not in obj and "://" not in obj and not obj.startswith("<"):
        looks_like_file = "." in obj.rsplit("/", 1)[-1] or key.endswith(("path", "dir", "file", "checkpoint", "npz"))
        if looks_like_file or obj.startswith("/"):
            yield key, obj
    elif isinstance(obj, str) and obj.startswith(("<external>/", "<not kept>/")):
        yield key, obj


@pytest.mark.slow
def test_smoke_records_name_only_files_that_exist(smoke_repo):
    """run.json, metrics.json and evaluation.json name files under their published folder or the
    repository (relative to its root), or mark them <external>/<not kept>: never the staging folder,
    never an absolute path of this machine."""
    root, _, _, _ = smoke_repo
    checked = 0
    for record in sorted((root / "runs").glob("*/smoke")):
        for name in ("run.json", "metrics.json", "evaluation.json"):
            if not (record / name).exists():
                continue
            text = (record / name).read_text(encoding="utf-8")
            assert ".partial" not in text and str(root) not in text, f"{record / name} names a staging or absolute path"
            for key, path in _paths_in(json.loads(text)):
                checked += 1
                if path.startswith(("<external>/", "<not kept>/")):
                    continue
                assert not path.startswith("/"), f"{record / name}: {key} = {path} is absolute"
                assert (root / path).exists() or (record / path).exists(), f"{record / name}: {key} = {path} does not exist"
    assert checked > 0


@pytest.mark.slow
def test_a_second_smoke_plan_skips_what_is_recorded(smoke_repo):
    root, _, _, _ = smoke_repo
    log: list[str] = []
    assert reproduce.run_plan("smoke", root=root, progress=False, log=log.append) == []
    assert log and all("already recorded" in line for line in log)


@pytest.mark.slow
@pytest.mark.parametrize("page", BOOK_PAGES)
def test_book_page_executes_against_the_smoke_runs(page, smoke_repo, tmp_path, monkeypatch):
    root, _, _, _ = smoke_repo
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    nb = jupytext.read(ROOT / page)
    out = tmp_path / "page.ipynb"
    # cwd = the page's folder inside the scratch root, as jupyter-book runs it: dimr.reproduction.runs.repo_root()
    # then finds the scratch root and its smoke runs, not this checkout's runs/.
    cwd = root / Path(page).parent
    executed = papermill.execute_notebook(nb, str(out), cwd=str(cwd), kernel_name="python3", progress_bar=False)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]


def test_every_notebook_is_executed_by_some_test():
    """No notebook escapes the suite: components here by name, plan notebooks through the plan,
    book pages by the glob above."""
    from test_notebooks_components import COMPONENT_NOTEBOOKS

    plan_notebooks = {Path(e.notebook).stem for p in runs.PROFILES for e in reproduce.planned(p)}
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.py")}
    assert notebooks == set(COMPONENT_NOTEBOOKS) | plan_notebooks, notebooks ^ (set(COMPONENT_NOTEBOOKS) | plan_notebooks)
    assert "book/tables/table2.py" in BOOK_PAGES and "book/intro.py" in BOOK_PAGES


@pytest.mark.slow
def test_a_diverging_training_is_recorded_and_its_evaluation_skipped(tmp_path):
    """The training notebook records a run whose loss became NaN as such (the step, the loss curve, no
    samples), and the plan then skips the evaluation that reads it."""
    from dimr.reproduction.plan import Experiment

    for name in ("dimr", "notebooks", "_toc.yml"):
        (tmp_path / name).symlink_to(ROOT / name)
    common = dict(preset="DiMR-T/3R", steps=40, batch_size=4, lr=1e30, warmup_steps=0, amp="none", seed=0)
    plan = {"train-x": Experiment("train-x", "notebooks/train.py", {"smoke": dict(common, checkpoint_dir="checkpoints/x")}),
            "eval-x": Experiment("eval-x", "notebooks/evaluate.py", {"smoke": {"checkpoint": "checkpoints/x/latest.pt"}},
                                 preset_parameter="checkpoint", reads="train-x")}
    log: list[str] = []
    done = reproduce.run_plan("smoke", plan=plan, root=tmp_path, progress=False, log=log.append)
    assert [d.parent.name for d in done] == ["train-x"]
    record = runs.load_run(done[0])
    step = record["metrics"][runs.DIVERGED_METRIC]["value"]
    assert 0 < step < 40 and runs.diverged_at(done[0]) == step
    assert (done[0] / "loss.png").exists() and not (done[0] / "samples.png").exists()
    assert any("eval-x (smoke): not run" in line for line in log)
