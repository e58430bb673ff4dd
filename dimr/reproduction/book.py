"""What every component chapter of the book shares, written once.

A chapter (``notebooks/<name>.py``) opens with what the reader will learn and needs to know (its own
Markdown), then :func:`run_this_chapter` (how to run it and how long it takes); it has a *claim and
evidence* section built by :func:`claim_evidence` from the paper's printed numbers (:mod:`dimr.reproduction.tables`)
and this repository's claims study (:mod:`dimr.reproduction.study`); it shows the package's central forward passes
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

from ..cli import parser
from ..files import atomic_write_json
from ..provenance import hardware_info, repo_root
from .editions import EXERCISE_HEADING, download_links, write_edition
from .evidence import claim_evidence, format_with_n, paper_table2_fids, pca_evidence  # noqa: F401 (the chapters' names)

__all__ = ["Chapter", "CHAPTERS", "TIMES_RECORD", "chapter", "exercises", "recorded_times", "duration", "time_chapters", "run_this_chapter",
           "format_with_n", "claim_evidence", "pca_evidence", "paper_table2_fids", "show_source", "labelled_grid", "slider",
           "figure_png", "record_class_names", "install_footprint", "glossary",
           "glossary_markdown", "cli"]


@dataclass(frozen=True)
class Chapter:
    """A component chapter: ``name`` is ``notebooks/<name>.py``; ``claims`` are the keys of
    :data:`dimr.reproduction.study.CLAIMS` whose evidence it shows."""

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
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the folder holding the dimr package


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

    from ..provenance import git_info

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
    for m in re.finditer(EXERCISE_HEADING + r"\s*(.+?)(?:\n\s*\n|$)", text, flags=re.S):
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
        f"2. Either `make lab` and open `notebooks/{name}.py` as a notebook, or open a downloaded `.ipynb` "
        "(below) from the repository's folder, in Jupyter with the `.venv` kernel.",
        "3. Run all cells. Exercises are at the end; their solutions are the collapsed cells.",
        "",
        f"**Downloads** (also in the download menu at the top of the page): "
        f"{download_links(f'notebooks/{name}', student=True)}. `make student` writes the student edition of "
        "every chapter at once.",
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
    ap.add_argument("--student", metavar="DIR", help="write the student edition of the chapters (exercise solutions "
                                                     "removed) as .ipynb under DIR, e.g. _build/student")
    ap.add_argument("--teacher", metavar="DIR", help="write the teacher's edition (solutions kept) of every notebook "
                                                     "page of the book as .ipynb under DIR")
    ap.add_argument("names", nargs="*", help="chapters to time or write (default: all)")
    return ap


def cli(argv: list[str]) -> int:
    """``python -m dimr chapters [--time] [--student DIR] [--teacher DIR] [NAME ...]``."""
    args = _parser().parse_args(argv)
    if args.time:
        time_chapters(args.names or None)
    pages = [f"notebooks/{chapter(n).name}" for n in args.names] or None
    editions = [(e, out) for e, out in (("student", args.student), ("teacher", args.teacher)) if out]
    for edition, out in editions:
        written = write_edition(out, edition, pages)
        print(f"{edition} edition: {len(written)} notebooks under {out}/")
    if editions and not args.time:
        return 0
    seconds = recorded_times().get("seconds", {})
    for c in CHAPTERS:
        s = seconds.get(c.name)
        print(f"{c.name:<16} {'not timed' if s is None else f'{s:6.0f} s'}  {c.title}")
    return 0


def labelled_grid(ax, image, class_names, title: str | None = None) -> None:
    """Draw a sample grid with one row per class (what ``python -m dimr sample`` and the evaluation records
    save: ``grid.png``, ``samples.png``) on ``ax``, each row labelled with its class name.

    ``image``: a path or an ``[H, W(, C)]`` array whose height splits into ``len(class_names)`` equal rows
    (the grid's rows, padding included). The axis keeps only the row labels."""
    import matplotlib.pyplot as plt
    import numpy as np

    arr = plt.imread(image) if isinstance(image, (str, Path)) else np.asarray(image)
    rows = len(class_names)
    height = arr.shape[0]
    ax.imshow(arr)
    ax.set_yticks([(i + 0.5) * height / rows for i in range(rows)], [str(n) for n in class_names], fontsize=8)
    ax.set_xticks([])
    ax.tick_params(axis="y", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)


def slider(frames, name: str, caption: str = "", start: int = 0) -> str:
    """HTML of a figure a reader explores without a kernel: pre-rendered images with a range slider over
    them, for the built book (static HTML and a few lines of JavaScript, images embedded, works offline).

    ``frames``: ``[(label, png_bytes), …]`` in slider order, e.g. one sample plot per guidance weight;
    ``name`` names the slider's variable ("guidance weight w"); ``start`` the frame shown first."""
    import base64
    import hashlib
    import html

    frames = list(frames)
    if not frames:
        raise ValueError("a slider needs at least one frame")
    images = [f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}" for _, png in frames]
    uid = "dimr-slider-" + hashlib.sha1("".join(images).encode("ascii")).hexdigest()[:10]  # same figure, same id
    labels = [html.escape(str(label)) for label, _ in frames]
    js_labels = json.dumps([str(label) for label, _ in frames]).replace("</", "<\\/")  # never closes the script
    return (f'<div class="dimr-slider" id="{uid}">'
            f'<label>{html.escape(name)}: <input type="range" min="0" max="{len(frames) - 1}" step="1" value="{start}" '
            f'aria-label="{html.escape(name)}"></label><span class="dimr-slider-label">{labels[start]}</span>'
            f'<img alt="{html.escape(caption or name)}" src="{images[start]}">'
            + (f"<p>{html.escape(caption)}</p>" if caption else "")
            + "<script>(function(){"
            f"var root=document.getElementById('{uid}'),srcs={json.dumps(images)},labels={js_labels};"
            "var input=root.querySelector('input'),img=root.querySelector('img'),out=root.querySelector('.dimr-slider-label');"
            "input.addEventListener('input',function(){img.src=srcs[input.value];out.textContent=labels[input.value];});"
            "})();</script></div>")


def figure_png(fig, dpi: int = 100) -> bytes:
    """The PNG bytes of a matplotlib figure (closed afterwards, so a notebook does not also show it)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def record_class_names(folder: str | Path) -> tuple[str, ...] | None:
    """The class names of the dataset an evaluation record (``runs/eval-…/<profile>/``, or an output folder
    of ``python -m dimr evaluate``) was made on, read from its ``evaluation.json`` or ``metrics.json``
    (``scale.dataset``); None when the folder does not say, or the dataset has no fixed names."""
    from ..data import DATASETS

    for name in ("evaluation.json", "metrics.json"):
        path = Path(folder) / name
        if path.exists():
            dataset = json.loads(path.read_text(encoding="utf-8")).get("scale", {}).get("dataset")
            if dataset:
                names = getattr(DATASETS.get(dataset.lower().replace("_", "-")), "class_names", None)
                return tuple(names) if names else None
    return None


def install_footprint(venv: str | Path | None = None) -> dict:
    """What ``make install`` cost on this machine, measured, never typed: ``{"venv", "bytes", "seconds",
    "installed"}`` — the virtual environment's size on disk (``du -sk``, or a walk of its files without
    ``du``) and, when the timestamps are there, how long the first install took: from ``pyvenv.cfg`` (written
    when ``python -m venv`` creates it) to the first ``.installed-*`` stamp (touched when the Makefile's
    install recipe ends). ``seconds`` is None when either is missing; ``venv`` defaults to the running
    interpreter's environment."""
    import os
    import shutil
    import subprocess
    import sys

    venv = Path(venv or sys.prefix)
    size = None
    if shutil.which("du"):
        try:
            out = subprocess.run(["du", "-sk", str(venv)], capture_output=True, text=True, timeout=120, check=True)
            size = int(out.stdout.split()[0]) * 1024
        except (subprocess.SubprocessError, ValueError, IndexError):
            size = None
    if size is None:
        size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
    created = venv / "pyvenv.cfg"
    stamps = sorted(venv.glob(".installed-*"), key=lambda p: p.stat().st_mtime)
    seconds = installed = None
    if created.exists() and stamps:
        seconds = stamps[0].stat().st_mtime - created.stat().st_mtime
        installed = time.strftime("%Y-%m-%d", time.localtime(stamps[0].stat().st_mtime))
        if seconds < 0:  # a copied or touched environment: the order of the timestamps means nothing
            seconds = None
    return {"venv": os.fspath(venv), "bytes": size, "seconds": seconds, "installed": installed}


def glossary() -> list[tuple[tuple[str, ...], str]]:
    """The book's glossary: ``[(terms, definition), …]``, the first term of each entry being the name the
    chapters' ``{term}`` roles use. Values (thresholds, settings, preset and claim names) are read from the
    package, so the glossary says what the code does."""
    from . import study

    claims = [((c.key,), f"Claim key: {c.title} (the paper's {c.where}). Primary metric: "
                         f"{study.METRICS[c.primary].label}.") for c in study.CLAIMS if not c.beyond]
    return _glossary_of_models() + claims + _glossary_of_measures()


def _glossary_of_models() -> list[tuple[tuple[str, ...], str]]:
    """Glossary entries on the models, the diffusion and the presets (:func:`glossary`)."""
    from . import study
    from ..diffusion import PREDICTIONS, weight_from_scale
    from ..nn.network import log_snr_to_tau
    from ..presets import get_preset, preset_names

    tau_divisor = 1.0 / float(log_snr_to_tau(1.0, 1, "cpu")[0])  # τ = log-SNR / this
    tiny_rows = [n for n in preset_names() if n.startswith("Table2-T/")]
    xl = get_preset("DiMR-XL/2R").recipe
    paper_claims = [c for c in study.CLAIMS if not c.beyond]
    added = [c.key for c in study.CLAIMS if c.beyond]
    predictions = ", ".join(f"`{p}`" for p in PREDICTIONS)
    entries = [
        (("tau", "τ"), f"The time every TD norm of a DiMR network receives: τ = log-SNR / {tau_divisor:g} "
         "(`dimr.nn.network.log_snr_to_tau`, as in the official code). The network is told the noise level, not "
         "the step index."),
        (("logSNR", "log-SNR"), "The log signal-to-noise ratio of a noisy image x_t = α_t x₀ + σ_t ε: "
         "log(α_t² / σ_t²), high at little noise and low at pure noise. The schedules and samplers work on it "
         "(`dimr.diffusion.schedules`)."),
        (("NFE",), "Number of function evaluations: how many times a sampler runs the network per sample. The cost "
         "of sampling is counted in NFE, not in solver steps."),
        (("GMACs",), "Billions of multiply-accumulates of one forward pass at batch 1, attention matmuls included "
         "(`dimr.profile.count_gmacs`). The paper's tables call the same count \"GFLOPs\"."),
        (("epsilon-prediction", "ε-prediction"), "The network predicts the noise ε added to the image: the "
         f"paper's target, `prediction=\"eps\"`. The package offers {predictions} (`dimr.diffusion.PREDICTIONS`)."),
        (("v-prediction",), "The network predicts v = α_t ε − σ_t x₀ (Salimans & Ho), `prediction=\"v\"`."),
        (("x0-prediction", "x₀-prediction"), "The network predicts the clean image x₀ (`prediction=\"x0\"`), the "
         "CPU-scale recipes' target (the Experiments page's *CPU-scale recipe* says why); each branch of DiMR then "
         "regresses the clean image at its own resolution."),
        (("CFG weight", "guidance weight w"), "Classifier-free guidance mixes the conditional and unconditional "
         "predictions as ε_u + w (ε_c − ε_u); w = 1 is the conditional model. The official code writes a scale s "
         f"with w = 1 + s (`weight_from_scale`): DiMR-XL/2R's recipe has s = {xl.cfg_scale:g}, i.e. "
         f"w = {weight_from_scale(xl.cfg_scale):g}."),
        (("Table2/rowN",), "The presets `Table2/row1` … `Table2/row6`: the paper's Table 2 ablation (U-ViT-M/4 → "
         "DiMR-M/3R) at full size, counted here but not trained."),
        (("Table2-T/rowN",), "The same ablation at CPU scale, tiny models on 32×32 images, trained by the claims "
         f"study: {', '.join(f'`{n}`' for n in tiny_rows)}. Compare them with each other, never with the paper's "
         "ImageNet FIDs."),
        (("claim key",), "The name of one claim of the claims study (`dimr.reproduction.study.CLAIMS`): a heading of the Evidence "
         "chapter and of each chapter's claim box. The paper's claims: "
         f"{', '.join(c.key for c in paper_claims)}; the questions the study adds: {', '.join(added)}."),
    ]
    return entries


def _glossary_of_measures() -> list[tuple[tuple[str, ...], str]]:
    """Glossary entries on the metrics, the statistics and the norms (:func:`glossary`)."""
    from . import study
    from ..evaluate.distortion import COARSE_DISTORTION_THRESHOLD, DISTORTION_THRESHOLD
    from ..evaluate.rejection import REJECTION_THRESHOLD

    return [
        (("mean 1 − IoU", "1 − IoU"), "Geometric distortion of a generated shape: 1 minus the intersection-over-"
         "union of its mask with the best-fitting exact template of its requested class (`dimr.evaluate.distortion`), "
         "averaged over the samples. 0 is a perfect shape; the claims study's primary metric on the shapes."),
        (("distortion rate",), f"The share of samples whose 1 − IoU exceeds a threshold: {DISTORTION_THRESHOLD:g} "
         "(`DISTORTION_THRESHOLD`, calibrated on real shapes: `dimr.evaluate.distortion` says how) or, in the claims "
         "study, the coarser "
         f"{COARSE_DISTORTION_THRESHOLD:g} (`COARSE_DISTORTION_THRESHOLD`): a tiny model trained for minutes exceeds "
         "the fine one on most samples."),
        (("classifier accuracy",), "The share of samples that the dataset's own classifier (a small CNN trained on "
         "the real images, `dimr.evaluate.classifier`) assigns to the class they were generated for."),
        (("FID (dataset classifier)", "FID"), "Fréchet distance between the features of generated and real images. "
         "The paper's FID uses Inception features on ImageNet; at CPU scale the features are the dataset "
         "classifier's, so those numbers compare with each other only, never with the paper's."),
        (("flagged fraction",), "The share of samples the rejection classifier flags: those it gives the requested "
         f"class a probability below {REJECTION_THRESHOLD:g} (`REJECTION_THRESHOLD`, the paper's §5.3 rule). The "
         "paper's humans then judge the flagged images for distortion."),
        (("paired difference",), f"Treatment minus baseline on the same seed, averaged over seeds, with its "
         f"{study.LEVEL:.0%} Student-t interval: the claims study's verdicts are computed from it (`dimr.reproduction.study`)."),
        (("Holm-adjusted p",), "The p-value of a claim's primary test after Holm's correction for testing several "
         f"claims at once; a verdict needs it below α = {study.ALPHA:g}."),
        (("adaLN-Zero",), "DiT's conditioning: a per-block MLP maps the time and class embedding to a shift, a scale "
         "and a gate for each sub-block (six vectors per block), its last layer initialised at zero."),
        (("TD-LN",), "Time-Dependent LayerNorm (paper §4.2): a LayerNorm whose γ and β interpolate between two "
         "learned vectors with a sigmoid of τ."),
        (("TD-RMSNorm",), "The released code's block norm: RMS normalisation with a time-dependent γ and no β."),
        (("feature cascade",), "Each DiMR branch adds the upsampled features of the branch below it before its own "
         "blocks (§4.1)."),
    ]


def glossary_markdown() -> str:
    """MyST Markdown of :func:`glossary` as a sorted ``{glossary}`` directive (its terms are what ``{term}``
    roles in the chapters point to)."""
    blocks = ["\n".join(terms) + "\n  " + text for terms, text in glossary()]
    return "```{glossary}\n:sorted:\n\n" + "\n\n".join(blocks) + "\n```"
