"""What every component chapter of the book shares, written once.

A chapter (``notebooks/<name>.py``) opens with what the reader will learn and needs to know (its own
Markdown), then :func:`run_this_chapter` (how to run it and how long it takes); it has a *claim and
evidence* section built by :func:`claim_evidence` from the paper's printed numbers (:mod:`dimr.tables`)
and this repository's claims study (:mod:`dimr.study`); it shows the package's central forward passes
with :func:`show_source` beside their equations, never a re-implementation; and it closes with
takeaways and exercises whose solutions are code cells tagged ``solution`` (collapsed in the book,
executed by the tests).

:data:`CHAPTERS` is the order of the Components part of ``_toc.yml``. How long each chapter runs is a
record (:data:`TIMES_RECORD`), measured by ``python -m dimr chapters --time`` (:func:`time_chapters`):
never typed.

Run ``python -m dimr chapters`` to list the chapters with their recorded run times.
"""
from __future__ import annotations

import inspect
import json
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .cli import parser
from .evidence import claim_evidence, format_with_n, paper_table2_fids, pca_evidence  # noqa: F401 (the chapters' names)
from .runs import atomic_write_json, hardware_info, repo_root

__all__ = ["Chapter", "CHAPTERS", "TIMES_RECORD", "chapter", "exercises", "recorded_times", "duration", "time_chapters", "run_this_chapter",
           "format_with_n", "claim_evidence", "pca_evidence", "paper_table2_fids", "show_source", "cli"]


@dataclass(frozen=True)
class Chapter:
    """A component chapter: ``name`` is ``notebooks/<name>.py``; ``claims`` are the keys of
    :data:`dimr.study.CLAIMS` whose evidence it shows."""

    name: str
    title: str
    claims: tuple[str, ...] = ()


#: the component chapters in reading order (``_toc.yml``'s Components part follows it)
CHAPTERS = (
    Chapter("patchify", "Patchify: what each branch sees", ("C1-p2",)),
    Chapter("branches", "The branches and the feature cascade", ("C1", "C1-fmnist", "C4")),
    Chapter("adaln_pca", "How many directions does adaLN-Zero use?"),
    Chapter("tdln", "Time-Dependent Layer Normalization", ("C2",)),
    Chapter("multiscale_loss", "The multi-scale loss", ("C3",)),
    Chapter("solver", "Noise schedules and the DPM-Solver"),
    Chapter("guidance", "Classifier-free guidance"),
    Chapter("distortion", "Distortion: the classifier proxy against ground truth", ("C1",)),
)

#: where the measured run time of every chapter is recorded (relative to the repository root)
TIMES_RECORD = "book/_data/chapter-times.json"
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def chapter(name: str) -> Chapter:
    """The :class:`Chapter` called ``name``; a clear error for an unknown one."""
    for c in CHAPTERS:
        if c.name == name:
            return c
    raise KeyError(f"no chapter {name!r}; the chapters are {[c.name for c in CHAPTERS]}")


def recorded_times(root: str | Path | None = None) -> dict:
    """The run-time record: ``{"hardware": {...}, "measured": iso date, "git": sha, "seconds": {name: s}}``,
    or ``{}`` when nothing was measured yet."""
    path = Path(root or repo_root()) / TIMES_RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def time_chapters(names: Iterable[str] | None = None, root: str | Path | None = None,
                  progress: Callable[[str], None] = print) -> dict:
    """Execute each chapter once with papermill (cwd = the repository root, as the book does) and
    record its wall time in :data:`TIMES_RECORD`, merged into what is recorded for other chapters.

    Returns the record written. A chapter that fails raises and records nothing.
    """
    import tempfile

    import jupytext
    import papermill

    from .runs import git_info

    root = Path(root or repo_root())
    names = list(names) if names else [c.name for c in CHAPTERS]
    for n in names:
        chapter(n)
    record = recorded_times(root)
    seconds = dict(record.get("seconds", {}))
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            progress(f"timing {n} …")
            nb = jupytext.read(root / "notebooks" / f"{n}.py")
            start = time.perf_counter()
            papermill.execute_notebook(nb, str(Path(tmp) / f"{n}.ipynb"), cwd=str(root), kernel_name="python3",
                                       progress_bar=False)
            seconds[n] = round(time.perf_counter() - start, 1)
            progress(f"  {n}: {seconds[n]:.0f} s")
    record = {"hardware": hardware_info(), "measured": time.strftime("%Y-%m-%d"), "git": git_info(root).get("commit"),
              "seconds": {c.name: seconds[c.name] for c in CHAPTERS if c.name in seconds}}
    atomic_write_json(root / TIMES_RECORD, record)
    return record


def exercises(name: str, root: str | Path | None = None) -> list[tuple[int, str]]:
    """``[(number, text), …]`` of a chapter's exercises (``**Exercise N.** …`` in its Markdown), so
    that a page listing them (the learning path) always says what the chapter asks."""
    import re

    import jupytext

    chapter(name)
    nb = jupytext.read(Path(root or repo_root()) / "notebooks" / f"{name}.py")
    text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    out = []
    for m in re.finditer(r"\*\*Exercise (\d+)\.\*\*\s*(.+?)(?:\n\s*\n|$)", text, flags=re.S):
        out.append((int(m.group(1)), " ".join(m.group(2).split())))
    return out


def _duration(s: float) -> str:
    return f"about {max(5, round(s / 5) * 5):.0f} s" if s < 90 else f"about {s / 60:.0f} min"


def duration(name: str, root: str | Path | None = None) -> str:
    """``"about 40 s"``: a chapter's recorded run time, rounded; ``"not timed"`` without a record."""
    s = recorded_times(root).get("seconds", {}).get(chapter(name).name)
    return "not timed" if s is None else _duration(s)


def run_this_chapter(name: str, root: str | Path | None = None) -> str:
    """MyST Markdown of the box every chapter shows under its opening: the chapter's recorded run time
    (with the machine it was measured on) and how to run it from a clone of the repository."""
    chapter(name)
    record = recorded_times(root)
    s = record.get("seconds", {}).get(name)
    if s is None:
        when = "Its run time is not recorded yet (`python -m dimr chapters --time` measures it)."
    else:
        hw = record.get("hardware", {})
        machine = f"{hw.get('cpu_count', '?')} cores of {hw.get('cpu') or 'a CPU'}" + ("" if not hw.get("gpu") else
                                                                                      f" and {hw['gpu']}")
        when = (f"It runs in {_duration(s)} on {machine}, no GPU (measured {record.get('measured', '?')} by "
                "`python -m dimr chapters --time`).")
    return "\n".join([
        ":::{admonition} Run this chapter", ":class: note",
        f"This page is `notebooks/{name}.py`, a Jupytext notebook that runs the `dimr` package. {when}",
        "",
        "1. Get the sources: clone the repository, then `make install` (a virtual environment in `.venv`).",
        f"2. Either `make lab` and open `notebooks/{name}.py` as a notebook, or convert it: "
        f"`.venv/bin/jupytext --to ipynb notebooks/{name}.py`.",
        "3. Run all cells. Exercises are at the end; their solutions are the collapsed cells.",
        "", "The download button at the top of the page gives this page as `.ipynb` or as the `.py` source.",
        ":::"])


def show_source(obj, start: str | None = None, stop: str | None = None) -> str:
    """MyST Markdown: the package's own source of ``obj`` (a function, class or method) as a Python
    code block headed by where it lives — shown beside an equation instead of re-implemented. ``start``
    and ``stop`` cut it to the lines from the first containing ``start`` to the first after it containing
    ``stop`` (both included)."""
    lines = textwrap.dedent(inspect.getsource(obj)).splitlines()
    if start is not None:
        i = next((k for k, line in enumerate(lines) if start in line), None)
        if i is None:
            raise ValueError(f"{start!r} is not in the source of {obj.__qualname__}")
        j = len(lines) - 1 if stop is None else next((k for k in range(i, len(lines)) if stop in lines[k]), None)
        if j is None:
            raise ValueError(f"{stop!r} does not follow {start!r} in the source of {obj.__qualname__}")
        lines = textwrap.dedent("\n".join(lines[i:j + 1])).splitlines()  # a cut inside a method starts at column 0
    # relative to the folder above the package, not to repo_root(): a scratch root may link dimr/ in
    path = Path(inspect.getsourcefile(obj)).resolve().relative_to(_PACKAGE_PARENT).as_posix()
    line = inspect.getsourcelines(obj)[1]
    return f"`{obj.__module__}.{obj.__qualname__}` (`{path}`, line {line}):\n\n```python\n" + "\n".join(lines) + "\n```"


def _parser():
    ap = parser("chapters", "The book's component chapters in reading order, with their recorded run times; "
                            "--time executes them and records how long each takes.")
    ap.add_argument("--time", action="store_true", help=f"execute the chapters and record their run times in {TIMES_RECORD}")
    ap.add_argument("names", nargs="*", help="chapters to time (default: all)")
    return ap


def cli(argv: list[str]) -> int:
    """``python -m dimr chapters [--time] [NAME ...]``."""
    args = _parser().parse_args(argv)
    if args.time:
        time_chapters(args.names or None)
    seconds = recorded_times().get("seconds", {})
    for c in CHAPTERS:
        s = seconds.get(c.name)
        print(f"{c.name:<16} {'not timed' if s is None else f'{s:6.0f} s'}  {c.title}")
    return 0
