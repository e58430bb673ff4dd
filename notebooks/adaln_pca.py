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
# # How many directions does adaLN-Zero use? (Fig. 3, Fig. 6, Appendix E)
#
# :::{admonition} What you will learn
# :class: tip
# - what adaLN-Zero computes in every block, and what it costs in parameters;
# - the paper's analysis (App. E): a PCA of the scales and shifts adaLN-Zero produces along the
#   sampling trajectory, layer by layer;
# - why its finding — two principal components explain most of the variance — motivates TD-LN;
# - what the same analysis can and cannot show on a tiny model trained for minutes.
# :::
#
# :::{admonition} What you need to know
# :class: seealso
# - the sampling trajectory: a DPM-Solver run evaluates the network at a fixed list of noise levels
#   ({doc}`the solver chapter </notebooks/solver>`), and with guidance on a conditional and a null
#   label ({doc}`guidance </notebooks/guidance>`);
# - a Transformer block with pre-norm attention and MLP sub-blocks ({doc}`the branches chapter
#   </notebooks/branches>` shows DiMR's);
# - principal component analysis: the explained-variance ratio of component k is $s_k^2 / \sum_j s_j^2$
#   for the singular values $s$ of the centred data.
# :::
#
# {term}`adaLN-Zero` (DiT) gives every Transformer block an MLP that maps the conditioning
# $c = \mathrm{embed}(t) + \mathrm{embed}(y)$ to a shift β, a scale γ and a gate α for each of its two
# sub-blocks — six d-dimensional vectors per block, about $6d^2$ parameters. **Two ways of writing the scale.**
# The paper writes the modulated norm as $\gamma \odot \mathrm{LN}(x) + \beta$ (§4.2, eqs. (3)–(4)). DiT's code
# — and this package's (`dimr.nn.blocks`) — computes $\mathrm{LN}(x) \odot (1 + \gamma') + \beta$, where γ′ is
# what the MLP outputs: the same modulation with $\gamma = 1 + \gamma'$, written so that the zero-initialised
# MLP starts at γ = 1, an unmodulated LayerNorm. In the code's form, for the attention sub-block:
#
# $$
# \begin{aligned}
# (\beta_1, \gamma'_1, \alpha_1, \beta_2, \gamma'_2, \alpha_2) &= \mathrm{Linear}(\mathrm{SiLU}(c)), \\
# x &\leftarrow x + \alpha_1 \odot \mathrm{Attn}\big(\mathrm{LN}(x) \odot (1 + \gamma'_1) + \beta_1\big),
# \end{aligned}
# $$
#
# and the same with index 2 for the MLP. The analysis below collects what the MLP outputs, γ′ (the tables call
# it γ1, γ2) and β; PCA centres its data, so γ′ and γ = 1 + γ′ have the same principal components
# (Exercise 3 checks it). The paper asks how much of that capacity is used: it samples
# with a pretrained **DiT-XL/2** (28 blocks, d = 1152, ImageNet 256²), collects the scales (γ1, γ2) and
# shifts (β1, β2) each block's MLP produces at every sampling step, and runs PCA on each layer's
# collection separately. Two principal components explain almost all the variance; from the third on,
# each usually explains less than 5% (App. E, §4.2). This observation is what TD-LN builds on: a
# LayerNorm whose γ(t) and β(t) interpolate between two learnt vectors (eqs. (5)–(7); the
# {doc}`next chapter </notebooks/tdln>`).
#
# **This page is a CPU-scale re-run of that analysis, not Fig. 3/6 itself.** By default it trains the
# tiny adaLN-Zero baseline `DiT-T/2` (6 blocks, d = 128, 32×32 procedural shapes) for a few dozen
# steps on the CPU, then applies exactly the Appendix E procedure through `dimr.evaluate.pca`. Point
# `checkpoint` at any adaLN-Zero checkpoint this package loads — a longer `DiT-T/2` run, a claims-study
# model of Table 2 rows 2–3, or DiT-XL/2 converted with `python -m dimr convert` (sampling it needs a
# GPU) — to analyse that instead. The models trained for the claims study are analysed in
# *Claim and evidence*, below.

# %% tags=["remove-input"]
from IPython.display import Markdown

from dimr.reproduction.book import run_this_chapter

Markdown(run_this_chapter("adaln_pca"))

# %%
from typing import Optional  # the parameters below: None takes the recipe's value

# %% tags=["parameters"]
checkpoint: str = ""        # an adaLN-Zero dimr checkpoint to analyse; "" trains DiT-T/2 here
train_steps: int = 60       # optimiser steps of the in-notebook DiT-T/2 run (CPU: ≈ 0.6 s per step)
train_batch: int = 32       # its batch size
num_samples: int = 16       # samples whose sampling trajectories are recorded (classes cycle)
sampler_steps: Optional[int] = None  # DPM-Solver steps; None takes the checkpoint recipe's
seed: int = 0               # seed of the recorded samples
n_components: int = 10      # principal components shown per panel

# %%
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from dimr.checkpoint import load_checkpoint
from dimr.evaluate.pca import (MODULATIONS, adaln_layers, adaln_pca, collect_modulations, plot_explained_variance,
                               quarter_layers)
from dimr.provenance import hardware_info
from dimr.sample import checkpoint_context, denoiser_from_checkpoint, even_labels, recipe_sampler
from dimr.train import TrainConfig, train

torch.manual_seed(seed)
hardware = hardware_info()

# %% [markdown]
# The package's modulation is the equation above; `n_chunks = 6` in a block (DiT's final layer uses two):

# %% tags=["remove-input"]
from dimr.reproduction.book import show_source
from dimr.nn.blocks import AdaLNModulation

Markdown(show_source(AdaLNModulation, start="def __init__"))

# %% [markdown]
# ## The model
#
# With no `checkpoint`, a DiT-T/2 is trained here with the package's one training loop. The recipe is
# the tiny presets' one, except a 10-step warm-up (the default 100 would leave a 60-step run at a
# fraction of its learning rate). Sixty steps is very little training: the point is the procedure,
# and that the structure the paper reports appears early. The numbers below say which model ran.

# %%
t0 = time.perf_counter()
if checkpoint:
    ckpt = load_checkpoint(checkpoint)
    origin = f"checkpoint {ckpt['path']} ({ckpt.get('preset')}, step {ckpt.get('step')})"
else:
    run_dir = Path(tempfile.mkdtemp(prefix="adaln_pca_"))
    summary = train(TrainConfig(preset="DiT-T/2", steps=train_steps, batch_size=train_batch, warmup_steps=10,
                                progress=False, log_every=max(1, train_steps // 5)), run_dir)
    ckpt = load_checkpoint(run_dir)
    origin = (f"DiT-T/2 trained here: {train_steps} steps × batch {train_batch} on 32×32 shapes, "
              f"final loss {summary['loss']:.3f}, {summary['wall_s']:.0f} s")
ctx = checkpoint_context(ckpt)
denoiser = denoiser_from_checkpoint(ckpt)
model = denoiser.net
depth = len(adaln_layers(model))
layers = quarter_layers(depth)
print(origin)
print(f"{depth} adaLN-Zero blocks; analysed layers (depth quarters): {layers}")

# %% [markdown]
# ## Collecting γ and β along the sampling trajectory
#
# Forward hooks on each analysed block's modulation MLP record its output at every network
# evaluation while the package's DPM-Solver sampler draws `num_samples` images (classes cycle).
# With classifier-free guidance each evaluation is one doubled batch (conditional and null label),
# so both halves are recorded — as in a guided DiT sampler. In DiT the modulation depends on
# (t, y) only, not on the image: the rows differ by time step and class.

# %%
sampler = recipe_sampler(ctx, steps=sampler_steps)  # the recipe's steps, time grid and CFG weight
steps = sampler.steps
labels = even_labels(num_samples, ctx["num_classes"])
mods = collect_modulations(denoiser, labels, sampler, seed=seed, layers=layers, progress=False)
rows, dim = mods[layers[0]]["gamma1"].shape
print(f"{steps} sampler steps × {num_samples} samples (×2 with CFG w={sampler.guidance:g}) -> {rows} vectors of "
      f"dimension {dim} per layer and per γ/β")

# %% [markdown]
# ## PCA per layer
#
# For each layer and each of γ1, β1, γ2, β2 separately: centre the `[rows, d]` matrix, take its
# singular values s, and report the explained-variance ratios s_k² / Σ s². Panels follow Fig. 6:
# one row per depth quarter.

# %%
pca = adaln_pca(mods)
scale_note = (f"CPU scale — {origin}; {steps} DPM-Solver steps, {num_samples} samples; "
              f"{hardware['cpu']}. Fig. 3/6 of the paper use DiT-XL/2 on ImageNet 256².")
fig = plot_explained_variance(pca, layers, n_components=n_components, depth=depth,
                              title=f"adaLN-Zero scale/shift PCA, {ckpt.get('preset')} (CPU scale, not DiT-XL/2)")
print(scale_note)
plt.show()

# %%
lines = ["| layer | vector | PC1 | PC2 | PC1+PC2 | PC3 |", "|---|---|---|---|---|---|"]
for k in layers:
    for name in MODULATIONS:
        r = pca[k][name]
        lines.append(f"| {k}/{depth} | {name} | {r[0]:.1%} | {r[1]:.1%} | {r[:2].sum():.1%} | {r[2]:.1%} |")
display(Markdown("\n".join(lines)))
top2 = min(float(pca[k][n][:2].sum()) for k in layers for n in MODULATIONS)
third = max(float(pca[k][n][2]) for k in layers for n in MODULATIONS)
print(f"\nAcross the analysed layers: the first two PCs explain at least {top2:.1%}; "
      f"the third at most {third:.1%}.  ({scale_note})")
print(f"notebook wall time {time.perf_counter() - t0:.0f} s")

# %% [markdown]
# **Reading it.** The paper's claim for DiT-XL/2 is that two components explain most of the
# variance and the third rarely more than 5%. The table above says how far that holds for the model
# analysed here, and the printed line says which model and scale that is. Be careful with a barely
# trained model: adaLN-Zero starts with its last Linear at **zero**, so at step 0 every γ and β is
# exactly zero and the PCA has nothing to explain. After a few dozen steps the modulations are what a
# few gradient steps put on top of that zero: if they look low-dimensional, that may be because
# little has been learnt yet, not because the model found it needs little. That is why the
# evidence below comes from models trained to the claims study's budget.
#
# ## Claim and evidence
#
# **The claim** (§4.2, Fig. 3/6, App. E): adaLN-Zero's per-block MLP is mostly unused capacity — the
# modulations it produces along the sampling trajectory lie close to a two-dimensional subspace —
# so a norm whose parameters interpolate between two learnt vectors as time moves (TD-LN) should
# condition on time as well at a fraction of the parameters. The paper shows it for DiT-XL/2 only;
# whether TD-LN then *matches* adaLN-Zero is the ablation of Table 2 (rows 3 → 4, the
# {doc}`TD-LN chapter </notebooks/tdln>`).
#
# **This repository's evidence**: the claims study's adaLN-Zero configurations are evaluated with the
# same procedure (`dimr.evaluate.pca`, 90% of the variance, median over blocks and vectors):

# %% tags=["remove-input"]
from dimr.reproduction.book import pca_evidence

Markdown(pca_evidence())

# %% tags=["remove-input"]
from dimr.reproduction import study
from dimr.reproduction.book import format_with_n
from dimr.evaluate.pca import components_for
from dimr.reproduction.stats import t_interval

study_records = study.collect()
pca_counts = {slug: list(study.metric_values(study_records, slug, "pca").values()) for slug in study.CONFIGS}
pca_counts = {slug: v for slug, v in pca_counts.items() if v}


def pca_verdict(values: list[float]) -> str:
    """The paper's observation (two components suffice for 90%) read from an interval of the counts."""
    iv = t_interval(values)
    if iv.n < 2:
        return "one seed only, too few to say"
    if iv.hi <= 2:
        return "at most two components, as the paper found for DiT-XL/2"
    if iv.lo > 2:
        return "more than two components: the paper's observation does not carry over to this model"
    return (f"an interval reaching above two (up to {iv.hi:.2g}), so this scale cannot rule out that more "
            "components are needed")


Markdown("**Verdict, computed from the records above.** " + (" ".join(
    f"{study.CONFIGS[slug].label or slug}: {format_with_n(t_interval(v))} components for 90% of the variance — "
    f"{pca_verdict(v)}." for slug, v in pca_counts.items()) if pca_counts else
    "No trained adaLN-Zero model of the claims study is recorded yet, so this page gives no verdict.")
    + f" For comparison, the {ckpt.get('preset')} analysed above, trained here for a few dozen steps, needs at most "
    f"{max(components_for(pca[k][n], share=0.9) for k in layers for n in MODULATIONS)} components for 90% of any "
    "analysed block's γ or β — a barely trained model, read with the caution above.")

# %% [markdown]
# What it can say: whether a tiny adaLN-Zero model, trained long enough to draw its shapes, also
# ends up using a few directions of its modulation space. What it cannot: a DiT-XL/2 trained for
# days on ImageNet is a different model, and eight classes of shapes ask far less of the class
# conditioning than a thousand ImageNet classes do. The counts are computed from the committed
# records, never typed.
#
# ## Takeaways
#
# - adaLN-Zero spends about $6d^2$ parameters per block to produce six d-vectors from $(t, y)$. The paper writes
#   its norm as γ·LN(x) + β, DiT's code as LN(x)·(1 + γ′) + β: the same, with γ = 1 + γ′.
# - The paper's PCA (App. E) finds those vectors close to a two-dimensional subspace along the sampling
#   trajectory; TD-LN builds that finding in, with two learnt endpoints per norm.
# - adaLN-Zero starts at zero, so the analysis only means something for a trained model.
# - Fig. 3/6's question is asked of every trained adaLN-Zero model of the claims study.
#
# ## Exercises
#
# **Exercise 1.** Predict the number of parameters of one DiT-XL/2 block's adaLN-Zero MLP (d = 1152,
# conditioning width 1152, one `SiLU → Linear(d, 6d)`), then check it on the package's module. The
# {doc}`introduction </book/intro>` gives a larger total for DiT-XL/2's adaLN-Zero: what else does it count?

# %% tags=["hide-cell", "solution"]
# Solution 1: a Linear(d, 6d) has d·6d weights and 6d biases. The introduction counts every adaLN-Zero
# modulation of DiT-XL/2: the 28 blocks' and the final layer's (a shift and a scale, 2d outputs).
from dimr.nn import build_model
from dimr.presets import get_preset
from dimr.profile import count_params

d_xl = 1152
predicted = d_xl * 6 * d_xl + 6 * d_xl
measured = count_params(AdaLNModulation(d_xl, d_xl))
final_layer = count_params(AdaLNModulation(d_xl, d_xl, n_chunks=2))  # DiT's final layer: a shift and a scale
print(f"predicted {predicted:,}, the package's module {measured:,}; × 28 blocks = {28 * measured / 1e6:.1f}M; "
      f"with the final layer's two-vector modulation ({final_layer / 1e6:.2f}M) = "
      f"{(28 * measured + final_layer) / 1e6:.1f}M, "
      "the introduction's count")
assert predicted == measured
dit_xl = build_model(get_preset("DiT-XL/2").model, device="meta")
assert 28 * measured + final_layer == sum(count_params(m) for m in dit_xl.modules() if isinstance(m, AdaLNModulation))

# %% [markdown]
# **Exercise 2.** TD-LN in the paper's form computes $\gamma(t) = s(t)\,p_1 + (1 - s(t))\,p_2$ with one
# scalar gate $s(t)$ per norm. Along a trajectory of 50 times, how many principal components do its γ
# vectors need for 99.9% of their variance? Predict, then measure with `dimr.evaluate.pca`. What about
# the official form, where every channel has its own gate?

# %% tags=["hide-cell", "solution"]
# Solution 2: γ(t) = p2 + s(t)·(p1 − p2) moves along one line, so after centring it is rank 1.
from dimr.evaluate.pca import components_for, explained_variance_ratio
from dimr.nn.tdln import TDLayerNorm, set_time_dependence

g = torch.Generator().manual_seed(1)
taus = torch.linspace(-2.5, 2.5, 50)
counts = {}
for form in ("paper", "official"):
    norm = TDLayerNorm(64, form=form)
    set_time_dependence(norm, generator=g, scale=0.8)
    if form == "official":  # give every channel its own gate, as training would
        with torch.no_grad():
            norm.weight.nodecay_weight.copy_(torch.randn(64, generator=g) * 1.5)
            norm.weight.nodecay_bias.copy_(torch.randn(64, generator=g))
    with torch.no_grad():
        gamma, _ = norm.gamma_beta(taus)
    counts[form] = components_for(explained_variance_ratio(gamma), share=0.999)
print(f"components for 99.9% of γ's variance: {counts}")
assert counts["paper"] == 1 and counts["official"] > 1

# %% [markdown]
# **Exercise 3.** *Change a line, run, observe.* The package collects γ′, what the MLP outputs; the paper's
# γ·LN(x) + β uses γ = 1 + γ′. In the cell of *PCA per layer*, change `pca = adaln_pca(mods)` so that it
# analyses the paper's γ: add 1 to every `gamma` entry of `mods` first. Predict the table before you run it,
# then observe.

# %% tags=["hide-cell", "solution"]
# Solution 3: PCA centres each layer's vectors, and centring removes a constant: the explained-variance
# ratios of γ = 1 + γ′ are those of γ′.
papers_gamma = {k: {n: (v + 1 if n.startswith("gamma") else v) for n, v in m.items()} for k, m in mods.items()}
pca_paper = adaln_pca(papers_gamma)
for k in layers:
    print(f"layer {k}: PC1 of γ1 {float(pca[k]['gamma1'][0]):.1%} (γ′) vs "
          f"{float(pca_paper[k]['gamma1'][0]):.1%} (1 + γ′)")
    for n in MODULATIONS:
        assert torch.allclose(torch.as_tensor(pca[k][n]), torch.as_tensor(pca_paper[k][n]), atol=1e-5), (k, n)

# %% [markdown]
# **Exercise 4.** *Discuss.* Suppose you ran this chapter's analysis on a DiT-T/2 straight after building it,
# before any training step. What would the PCA report, and why? What does that imply for reading the
# components of a model trained for sixty steps, and for what the claims study's trained models can and
# cannot tell about DiT-XL/2? (The solution checks the fact the first answer rests on.)

# %% tags=["hide-cell", "solution"]
# Solution 4: adaLN-Zero's last Linear starts at zero, so every γ′, β (and gate) is exactly zero at step 0 —
# there is no variance to explain. After a few steps the modulations are small learned corrections, which may
# look low-dimensional because little has been learned; only trained models speak to the paper's claim, and
# those of the study are tiny models on eight shapes, not DiT-XL/2 on ImageNet.
fresh_dit = build_model(get_preset("DiT-T/2").model)
cond = torch.randn(5, fresh_dit.blocks[0].adaln.net[-1].in_features)
with torch.no_grad():
    outputs = [torch.cat(m(cond), dim=-1) for m in fresh_dit.modules() if isinstance(m, AdaLNModulation)]
print(f"{len(outputs)} adaLN-Zero modulations of a fresh DiT-T/2: max |output| = "
      f"{max(float(o.abs().max()) for o in outputs):.1e}")
assert outputs and all(torch.count_nonzero(o) == 0 for o in outputs)
