# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,jupytext,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A learning path for teachers
#
# This book can carry a 90-minute session or a week of a graduate course on diffusion models. Every
# component chapter opens with what it teaches and what it assumes, runs on a laptop CPU in the time
# its box says, and closes with takeaways and exercises whose solutions are collapsed cells — executed
# by the repository's tests, so they stay right as the code changes.
#
# **What students should know already**: the DDPM/{term}`ε-prediction <epsilon-prediction>` view of diffusion
# (a network predicts the noise added to an image), a Vision Transformer's patch tokens and attention, and
# PyTorch at the level of reading a module's `forward`. The {doc}`glossary </book/glossary>` collects the
# words and symbols the chapters use.
#
# ## Before the session

# %% tags=["remove-input"]
import re

from IPython.display import Markdown, display

from dimr.reproduction.book import CHAPTERS, chapter, duration, exercises, install_footprint, recorded_times

footprint = install_footprint()
size = f"{footprint['bytes'] / 2 ** 30:.1f} GiB"
took = ("its install time is not recorded on the machine that built this book" if footprint["seconds"] is None else
        f"its first install took **{footprint['seconds'] / 60:.0f} min** on the machine that built this book "
        f"({footprint['installed']}; measured from the timestamps `make install` leaves in `.venv`, with the "
        "package caches that machine had — a fresh laptop downloads more)")
slowest = max(CHAPTERS, key=lambda c: recorded_times().get("seconds", {}).get(c.name, 0))
display(Markdown("\n".join([
    "1. **Install, the day before.** Students clone the repository and run `make install`: a virtual environment in "
    f"`.venv` of **{size}** on disk (PyTorch is most of it); {took}. The package registries are the "
    "only network it needs: nothing downloads weights or data, every chapter builds what it needs.",
    "2. **Check it runs.** `make lab` opens JupyterLab on the repository: any chapter opens as a notebook, its boxes "
    f"and math rendered. Running {{doc}}`{slowest.title} </notebooks/{slowest.name}>` once, the slowest chapter "
    f"({duration(slowest.name)}), warms the caches the others reuse.",
    "3. **Hand out the notebooks.** `make student` writes every chapter without its exercise solutions to "
    "`_build/student/` (the same files as each chapter's *student edition* download); the book itself is the "
    "teacher's edition, with the solutions collapsed under each exercise and checked by the tests.",
    "4. **On the day**, students without an installation can read the built book: every figure, table and the "
    "guidance chapter's slider work without a kernel."])))

titles = {c.name: c.title for c in CHAPTERS}


def link(name: str) -> str:
    return f"{{doc}}`{titles[name]} </notebooks/{name}>`"


def first_sentence(text: str) -> str:
    """An exercise's kind (*Discuss.*, *Change a line, run, observe.*) and its first sentence: enough to assign
    it in a table; the chapter has the rest."""
    kind = re.match(r"(\*[^*]+\*\s*)?", text).group(0)
    rest = text[len(kind):]
    end = re.search(r"(?<=[a-z)`\]])[.?](\s|$)", rest)
    return kind + (rest[:end.end()].strip() + (" …" if end.end() < len(rest.strip()) else "") if end else rest)


def assign(name: str, numbers: tuple[int, ...]) -> str:
    asked = dict(exercises(name))
    return "; ".join(f"Exercise {n}: {first_sentence(asked[n])}" for n in numbers if n in asked)

# %% [markdown]
# ## A 90-minute session: why DiMR distorts less
#
# One thread through the paper's main argument — patches trade detail for compute, a cascade of
# branches puts the detail back, and the distortion this prevents can be measured — with the run time
# of each chapter on a 2-core laptop (recorded, not estimated):

# %% tags=["remove-input"]
session = [("patchify", 15, (1,), "why patch size is a trade-off between detail and attention cost"),
           ("branches", 25, (1,), "the multi-resolution network and its feature cascade"),
           ("tdln", 20, (1,), "conditioning on time with a few parameters per norm"),
           ("distortion", 20, (1,), "measuring distortion with a classifier, against ground truth")]
lines = ["| minutes | chapter | the point | runs in | assign in class |", "|---|---|---|---|---|"]
for name, minutes, ex, point in session:
    lines.append(f"| {minutes} | {link(name)} | {point} | {duration(name)} | {assign(name, ex)} |")
lines.append("| 10 | {doc}`Evidence </book/evidence>` | which of the paper's claims hold at this scale, and how "
             "sure we are | reads the committed records | — |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# Run each chapter before its slot (or let students run it while you talk: the boxes say how long).
# The Evidence chapter reads committed records, so it needs no computation in class.
#
# ## A week: the whole method, then a small study of your own
#
# One day per theme; each day's exercises are the homework. The last day asks students to rerun one
# claim of the study themselves on their own machines.

# %% tags=["remove-input"]
week = [("Day 1 — tokens and resolution", ["patchify", "branches"]),
        ("Day 2 — conditioning on time", ["adaln_pca", "tdln"]),
        ("Day 3 — training and sampling", ["multiscale_loss", "solver", "guidance"]),
        ("Day 4 — distortion", ["distortion"])]
for day, names in week:
    lines = [f"**{day}**", ""]
    for name in names:
        lines.append(f"- {link(name)} ({duration(name)}). Exercises:")
        lines += [f"  {n}. {text}" for n, text in exercises(name)]
    display(Markdown("\n".join(lines)))
display(Markdown(
    "**Day 5 — a claim, tested.** Read {doc}`Evidence </book/evidence>` and pick a claim. Train one more "
    "seed of its two configurations with `python -m dimr reproduce --profile small --only "
    "train-study-<config>-s<seed>,eval-study-<config>-s<seed>` (the Evidence chapter lists the exact "
    "command of every run still missing), then rebuild the chapter and discuss how the interval moved. "
    "The {doc}`tables </book/tables/index>` and {doc}`Paper vs official code </notebooks/paper_vs_official>` "
    "make good reading for the same day."))

# %% [markdown]
# ## Every chapter at a glance

# %% tags=["remove-input"]
lines = ["| chapter | runs in | exercises | the paper's claims it tests |", "|---|---|---|---|"]
for c in CHAPTERS:
    lines.append(f"| {link(c.name)} | {duration(c.name)} | {len(exercises(c.name))} | "
                 f"{', '.join(chapter(c.name).claims) or '—'} |")
display(Markdown("\n".join(lines)))
