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
# # About this code
#
# The book is a view of a package. Everything the pages compute comes from `dimr`; notebooks only call
# it. The flow:
#
# ```text
# presets (named, frozen dataclasses) ──► dimr.nn  (model)        ┐
#                                         dimr.diffusion (schedule, denoiser, loss, guidance, solver)
# data (offline default | ImageNet | VAE latents) ──► dimr.train ─┤──► checkpoints (outside git)
#                                                                 │
# checkpoint ──► dimr.sample ──► dimr.evaluate (FID/IS/PR, rejection, distortion) ──► metrics
#                                                                 │
# parameterised notebooks (papermill, one per experiment and profile) ──► runs/
# runs/ + dimr.reproduction.tables (paper values, cited) ──► book pages ──► jupyter-book ──► _build/html
# ```
#
# ## The package, module by module
#
# Read from the source when the book is built (the first line of each module's docstring), so the map
# cannot drift from the code.

# %% tags=["remove-input"]
import ast
from pathlib import Path

from IPython.display import Markdown

import dimr
from dimr.provenance import repo_root

pkg = Path(dimr.__file__).parent
root = repo_root()
lines = ["| module | what it holds | lines |", "|---|---|---|"]
for path in sorted(pkg.rglob("*.py")):
    if "__pycache__" in path.parts:
        continue
    source = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source)) or ""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    name = path.relative_to(pkg.parent).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
    lines.append(f"| `{name}` | {first.replace('|', '/') or '—'} | {len(source.splitlines())} |")
Markdown("\n".join(lines))

# %% [markdown]
# ## Command line
#
# Every verb lives in the module that owns the concept, as `cli(argv) -> int`:

# %% tags=["remove-input"]
from dimr.__main__ import VERBS

Markdown("\n".join(["| command | module | does |", "|---|---|---|"]
                   + [f"| `python -m dimr {v}` | `{m}` | {h} |" for v, (m, h) in VERBS.items()]))

# %% [markdown]
# ## The rest of the repository

# %% tags=["remove-input"]
where = {"notebooks": "the component chapters and the parameterised experiment notebooks (Jupytext py:percent)",
         "book": "this book's own pages: introduction, experiments, the paper's tables, full scale, this page",
         "runs": "recorded runs: `runs/<experiment>/<profile>/run.json`, executed notebook, figures",
         "tests": "the test suite (`make test`)", "scripts": "one-off comparisons and fixture generators (printed figures, never timed tests)",
         "docs": "contributor notes"}
lines = ["| folder | holds | files |", "|---|---|---|"]
for folder, what in where.items():
    files = [p for p in (root / folder).rglob("*") if p.is_file() and not any(s.startswith(".") or s == "__pycache__" for s in p.relative_to(root).parts)] \
        if (root / folder).is_dir() else []
    lines.append(f"| `{folder}/` | {what} | {len(files)} |")
Markdown("\n".join(lines))
