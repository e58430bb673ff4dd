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
# # Classifier-free guidance
#
# :::{admonition} What you will learn
# :class: tip
# - how classifier-free guidance combines a conditional and an unconditional noise prediction, and how
#   the official code's *scale* relates to the usual *weight* ($s = 0.4 \Leftrightarrow w = 1.4$);
# - how one network is both models: label dropout to a null label at training, one doubled-batch forward at sampling;
# - what growing guidance does to samples, on a toy problem where both models are exact;
# - what the paper reports with and without guidance (Table 1).
# :::
#
# :::{admonition} What you need to know
# :class: seealso
# - The noise prediction $\epsilon_\theta(x_t, c)$ and the ODE sampler that turns it into an image:
#   {doc}`the solver chapter </notebooks/solver>` (paper §3).
# - Class conditioning in DiMR: the label is a token of the first, Transformer branch, from a class table
#   with one row per label ({doc}`the branches chapter </notebooks/branches>`; docs/official-code.md §1).
# - Ho & Salimans, "Classifier-free diffusion guidance" (the paper's reference [18]).
# :::
#
# The 256×256 and 512×512 DiMR models are trained with label dropout (a label is replaced by a null
# label with probability $p_\text{uncond}$, so the class table has one row more than there are
# classes) and sampled with classifier-free guidance:
#
# $$
# \begin{aligned}
# \hat\epsilon(x_t, c) &= \epsilon_u + w \, (\epsilon_c - \epsilon_u), \\
# \epsilon_c &= \epsilon_\theta(x_t, c), \qquad \epsilon_u = \epsilon_\theta(x_t, \varnothing).
# \end{aligned}
# $$
#
# $w = 1$ is the conditional model and $w = 0$ the unconditional one ({term}`CFG weight`). The official code writes it as
# $\epsilon_c + s\,(\epsilon_c - \epsilon_u)$ with a *scale* $s$, i.e. $w = 1 + s$
# (docs/official-code.md §6). Conditional and unconditional predictions come from **one** forward pass
# of the doubled batch (`dimr.diffusion.guided_prediction`).

# %% tags=["remove-input"]
from IPython.display import Markdown

from dimr.reproduction.book import run_this_chapter

Markdown(run_this_chapter("guidance"))

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown

from dimr.reproduction.book import show_source
from dimr.diffusion import (VPLinearSchedule, analytic, apply_guidance, cosine_ramp_weight, drop_labels,
                            guided_prediction, null_label, sample_dpm_solver, weight_from_scale)
from dimr.presets import get_preset

# %% [markdown]
# The official setting, from the DiMR-XL/2R preset (ImageNet 256×256):

# %%
xl = get_preset("DiMR-XL/2R")
K = xl.model.num_classes - 1  # data classes; the last row of the class table is the null label
Markdown(f"label dropout $p_\\text{{uncond}}$ = {xl.recipe.p_uncond:g}; class table of {xl.model.num_classes} rows, "
         f"null label {null_label(xl.model, K)}; scale $s$ = {xl.recipe.cfg_scale:g}, i.e. weight "
         f"$w$ = {weight_from_scale(xl.recipe.cfg_scale):g}.")

# %% [markdown]
# The guidance equation and the doubled batch, in the package:

# %%
Markdown(show_source(apply_guidance, start="w = torch.as_tensor"))

# %%
Markdown(show_source(guided_prediction, start="B = x.shape[0]"))

# %% [markdown]
# ## The official cosine-ramped option
# With `cfg_scale_pow > 0` the official sampler ramps the weight from 1 at pure noise to `scale` at
# t → 0 (docs/official-code.md §6). The paper does not say which setting produced its Table 1 FIDs.

# %% tags=["hide-input"]
t = torch.linspace(0, 1, 200)
fig, ax = plt.subplots(figsize=(5, 3))
for power in (0.5, 1, 2, 4):
    ax.plot(t, cosine_ramp_weight(4.0, power)(t), label=f"scale 4, pow {power}")
w_official = weight_from_scale(xl.recipe.cfg_scale)
ax.axhline(w_official, color="k", ls=":", label=f"constant w = {w_official:g} (official default)")
ax.set_xlabel("t (1 = pure noise)")
ax.set_ylabel("w(t)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## Guidance at work, exactly
# A toy class-conditional problem where both models are exact: three classes, each a Gaussian blob in
# 2-D. The conditional model is the class's Gaussian, the unconditional one the mixture
# (`dimr.diffusion.analytic.mixture_eps_fn`). Sampling class 0 with growing w pushes samples away from
# the other classes and concentrates them — better "fidelity", less diversity, the trade-off behind
# the FID/IS curves of guided models.

# %%
sch = VPLinearSchedule()
means = torch.tensor([[1.5, 0.0], [-0.75, 1.3], [-0.75, -1.3]], dtype=torch.float64)
s = 0.6
labels = torch.zeros(600, dtype=torch.long)
x1 = torch.randn(600, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
cond = analytic.mixture_eps_fn(sch, means, s, labels=labels)
uncond = analytic.mixture_eps_fn(sch, means, s)


def guided(w):
    """The guided noise predictor of the toy problem at weight w."""
    return lambda x, t: apply_guidance(cond(x, t), uncond(x, t), w)


fig, axes = plt.subplots(1, 4, figsize=(12, 3.2), sharex=True, sharey=True)
for ax, w in zip(axes, (0.0, 1.0, 2.0, 4.0)):
    x0 = sample_dpm_solver(guided(w), x1, sch, 30, order=2, method="multistep")
    ax.scatter(x0[:, 0], x0[:, 1], s=3, alpha=0.5)
    ax.scatter(means[:, 0], means[:, 1], c=["red", "grey", "grey"], marker="x", s=60)
    spread = float(x0.std(0).mean())
    ax.set_title(f"w = {w:g}" + (" (unconditional)" if w == 0 else " (conditional)" if w == 1 else "")
                 + f"\nspread {spread:.2f}", fontsize=8)
fig.suptitle("samples requested for class 0 (red ×)", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Explore it without running anything.** The slider below steps through the same toy problem at more
# weights; every frame was drawn when this page was built (the images are embedded in the page, so the
# slider works offline and without a kernel). Watch the cloud leave the other classes behind and shrink.

# %% tags=["remove-input"]
from IPython.display import HTML

from dimr.reproduction.book import figure_png, slider

slider_weights = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
frames = []
for w in slider_weights:
    x0 = sample_dpm_solver(guided(w), x1, sch, 30, order=2, method="multistep")
    f, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.scatter(x0[:, 0], x0[:, 1], s=3, alpha=0.5)
    ax.scatter(means[:, 0], means[:, 1], c=["red", "grey", "grey"], marker="x", s=60)
    ax.set_xlim(-4, 6), ax.set_ylim(-4.5, 4.5)
    ax.set_aspect("equal")
    ax.set_title(f"class 0 requested, w = {w:g}: spread {float(x0.std(0).mean()):.2f}", fontsize=9)
    frames.append((f"w = {w:g}", figure_png(f)))
HTML(slider(frames, "guidance weight w", start=slider_weights.index(1.0),
            caption="Toy problem with exact models: 600 samples requested for class 0 (red ×), DPM-Solver-2, "
                    "30 steps."))

# %% [markdown]
# ## Claim and evidence
#
# Guidance is not one of the paper's contributions and the paper makes no claim about it; it reports
# every 256×256 and 512×512 result twice, without and with classifier-free guidance (Table 1,
# "FID (w/o CFG)" and "FID"; §5.2). DiMR-XL/2R's pairs on ImageNet 256×256, from `dimr.reproduction.tables`:

# %% tags=["remove-input"]
from dimr.reproduction import paper

rows = [r for r in paper.paper_rows("1a") if r["model"].startswith("DiMR-XL/2R")]
Markdown("\n".join(["| model (Table 1a) | epochs | FID-50K without CFG | FID-50K with CFG |", "|---|---|---|---|"]
                   + [f"| {r['model']} | {r['epochs']} | {r['fid_wo_cfg']} | {r['fid']} |" for r in rows]))

# %% [markdown]
# This repository's evidence is the mechanism, not the FIDs: the package's guidance reproduces the
# official convention ($w = 1 + s$ and the null label as the last class row, which the exercises check;
# both halves from one forward pass, in the source above), and the toy problem shows what the weight
# does where both models are exact. The claims study does not vary guidance; the weights its
# evaluations sampled with, as recorded:

# %% tags=["remove-input"]
import json
from pathlib import Path

from dimr.reproduction import study

weights = {}
for (slug, seed), rec in study.evaluated(study.collect()).items():
    scale = json.loads((Path(rec["run"]["path"]) / "evaluation.json").read_text(encoding="utf-8"))["scale"]
    weights.setdefault(scale["guidance_weight"], []).append(f"{slug} s{seed}")
tiny = get_preset("DiMR-T/3R").recipe
Markdown("\n".join(f"- guidance weight w = {w:g}: {len(v)} evaluations" for w, v in weights.items())
         + f"\n\n(the tiny recipes' `cfg_scale` = {tiny.cfg_scale:g}, i.e. w = {weight_from_scale(tiny.cfg_scale):g})"
         if weights else "No study evaluation is recorded yet.")

# %% [markdown]
# What this cannot say: how much of the paper's gain from guidance carries over to other models, or
# which weight is best for DiMR — the paper does not report a sweep, and a toy problem with exact models
# has no FID.

# %% [markdown]
# ## Takeaways
# - Guidance extrapolates from the unconditional to the conditional prediction: $w = 1$ is the
#   conditional model, $w > 1$ pushes further; the official *scale* $s$ is $w - 1$.
# - One network serves as both models: label dropout teaches it a null label (the last row of its class
#   table), and sampling runs the doubled batch through one forward.
# - Larger $w$ concentrates samples on their class, trading diversity for fidelity.
# - The paper prints FIDs with and without guidance (Table 1) but no study of the weight; the official
#   cosine ramp is an option whose use the paper does not state.

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** The official scale $s = 0$ means "no guidance". Which weight is that, and does sampling
# the toy problem with it give exactly the conditional model's samples?

# %% tags=["hide-cell", "solution"]
# Solution 1
w0 = weight_from_scale(0.0)
print("scale 0 -> w =", w0)  # 1: the conditional model
assert w0 == 1.0
with_guidance = sample_dpm_solver(guided(w0), x1, sch, 30, order=2, method="multistep")
conditional = sample_dpm_solver(cond, x1, sch, 30, order=2, method="multistep")
assert torch.allclose(with_guidance, conditional)

# %% [markdown]
# **Exercise 2.** The null label. Which label index means "no class" for DiMR-XL/2R, for DiMR-M/3R (trained
# without label dropout) and for the tiny DiMR-T/3R? What does label dropout with $p_\text{uncond} = 1$
# turn every label into?

# %% tags=["hide-cell", "solution"]
# Solution 2
for name in ("DiMR-XL/2R", "DiMR-M/3R", "DiMR-T/3R"):
    p = get_preset(name)
    k = p.model.num_classes - 1 if p.recipe.p_uncond > 0 else p.model.num_classes  # data classes
    print(f"{name}: {p.model.num_classes} class rows, p_uncond {p.recipe.p_uncond:g}, null label {null_label(p.model, k)}")
assert null_label(get_preset("DiMR-XL/2R").model, 1000) == 1000  # 1000 of 1001, as the official code
assert null_label(get_preset("DiMR-M/3R").model, 1000) is None   # no null label: guidance is refused
y = torch.arange(8)
assert torch.equal(drop_labels(y, 1.0, null_class=8), torch.full_like(y, 8))

# %% [markdown]
# **Exercise 3.** *Change a line, run, observe.* In the toy cell, change the weights
# `(0.0, 1.0, 2.0, 4.0)` to `(1.0, 2.0, 4.0, 8.0)` and run it again. Predict how the spread printed above
# each panel changes from one weight to the next, then observe. (The solution repeats the sampling and checks
# the trend.)

# %% tags=["hide-cell", "solution"]
# Solution 3: from the conditional model (w = 1) on, every larger weight concentrates the samples further.
spreads = {}
for w in (1.0, 2.0, 4.0, 8.0):
    x0 = sample_dpm_solver(guided(w), x1, sch, 30, order=2, method="multistep")
    spreads[w] = float(x0.std(0).mean())
print("spread per weight:", {w: round(v, 3) for w, v in spreads.items()})
assert list(spreads.values()) == sorted(spreads.values(), reverse=True)

# %% [markdown]
# **Exercise 4.** *Discuss.* The claims study samples every model at one guidance weight (listed above). If a
# larger w concentrates samples on what the classifier recognises, would it raise or lower a model's
# {term}`classifier accuracy` and its {term}`mean 1 − IoU`? Should two architectures be compared at the same
# w, or each at its best w — and what would "best" mean for a distortion study? (The solution checks the fact
# the discussion starts from: the study's evaluations share one weight.)

# %% tags=["hide-cell", "solution"]
# Solution 4: at one shared weight the comparison is fair to the sampler but may favour the model whose best
# weight is nearest it; a sweep of w per model (accuracy against mean 1 − IoU) would show the trade-off.
print("guidance weights of the study's evaluations:", {w: len(v) for w, v in weights.items()})
assert len(weights) <= 1
