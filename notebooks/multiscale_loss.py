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
# # The multi-scale loss
#
# :::{admonition} What you will learn
# :class: tip
# - what eq. (8) trains: every branch predicts the noise at its own resolution, against a downsampled target;
# - why the official code's target is $k \cdot \operatorname{avgpool}_k(\epsilon)$ rather than the plain average
#   pooling the paper describes, and what that does to each branch's loss;
# - where the weights $\alpha_r = 1/4^{R-r}$ come from (average pooling raises the SNR by $k^2$), checked on data;
# - which rows of Table 2 train with the loss, and what this repository's claims study says about it.
# :::
#
# :::{admonition} What you need to know
# :class: seealso
# - The network has $R$ branches, lowest resolution first, each with its own output head:
#   {doc}`the branches chapter </notebooks/branches>` (paper §4.1).
# - Training by noise prediction ({term}`ε-prediction <epsilon-prediction>`): $x_t = \alpha_t x_0 + \sigma_t \epsilon$
#   and the network regresses ε;
#   the schedules $\alpha_t, \sigma_t$ are drawn in {doc}`the solver chapter </notebooks/solver>` (paper §3).
# - The ablation of Table 2 (paper §5.4): {doc}`the Table 2 page </book/tables/table2>`.
# :::
#
# Every branch of the multi-resolution network predicts the noise at its own resolution, so DiMR
# trains all of them (paper §4.3, eq. 8):
#
# $$
# \mathcal{L}_{\text{multi}} = \sum_{r=1}^{R} \alpha_r \,
# \mathbb{E}_{t, x_0, c, \epsilon_t} \left\lVert \operatorname{Downsample}(\epsilon_t, r) -
# \epsilon_\theta(x_t, c, r) \right\rVert_2^2,
# \tag{8}
# $$
#
# $$
# \alpha_r = \frac{1}{2^{R-r} \times 2^{R-r}} .
# $$
#
# Branch $r$ works at $1/k$ of the input resolution with $k = 2^{R-r}$; the last branch ($r = R$,
# $k = 1$, $\alpha_R = 1$) is the model's output. This chapter looks at the two things the equation
# leaves open: *what* the downsampled target is (the paper says average pooling; the official code
# uses $k \cdot \operatorname{avgpool}_k$), and *why* the weights fall as $1/4^{R-r}$.

# %% tags=["remove-input"]
from IPython.display import Markdown

from dimr.reproduction.book import run_this_chapter

Markdown(run_this_chapter("multiscale_loss"))

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown

from dimr.reproduction.book import claim_evidence, show_source
from dimr.data import ShapesDataset
from dimr.diffusion import Denoiser, VPLinearSchedule, downsample_noise, multiscale_loss, paper_coefficients
from dimr.nn import build_model
from dimr.presets import PRESETS, get_preset

_ = torch.manual_seed(0)  # a cell that ends in an expression would print the generator

# %% [markdown]
# Eq. (8) in the package: for each branch, lowest resolution first, the mean squared error against the
# branch's target, weighted by $\alpha_r$ and summed; a weight of 0 leaves the branch untrained.

# %%
Markdown(show_source(multiscale_loss, start="B, C, H, W = eps.shape", stop="weights=weights)"))

# %% [markdown]
# ## The targets
# For a branch at $1/k$ of the input resolution, the paper's target is the $k \times k$ average of ε; the
# official code convolves ε with a $k \times k$ kernel of value $1/k$ and stride $k$, which is **k times**
# the average (docs/official-code.md §4). The package offers both (`target="official"` or `"paper"`):

# %%
Markdown(show_source(downsample_noise, start="pooled = ", stop="return pooled"))

# %% tags=["hide-input"]
eps = torch.randn(1, 1, 32, 32)
fig, axes = plt.subplots(2, 4, figsize=(9, 4.6))
for col, k in enumerate([1, 2, 4, 8]):
    for row, target in enumerate(["official", "paper"]):
        t = downsample_noise(eps, k, target) if k > 1 else eps
        ax = axes[row, col]
        ax.imshow(t[0, 0], cmap="coolwarm", vmin=-3, vmax=3)
        ax.set_title(f"{target}, k={k}\nstd {t.std():.2f}", fontsize=8)
        ax.set_axis_off()
fig.suptitle("Downsample(ε, r): official k·avgpool_k keeps unit variance; plain avgpool shrinks it by k")
fig.tight_layout()
plt.show()

# %% [markdown]
# Averaging $k^2$ independent unit-variance values gives variance $1/k^2$, so the paper's target has
# standard deviation $1/k$ and the official one $k \cdot 1/k = 1$: every branch regresses a standard
# normal target, like the last one. Measured over many draws:

# %% tags=["hide-input"]
ks = [1, 2, 4, 8]
big = torch.randn(256, 1, 64, 64)
std_official = [float((downsample_noise(big, k, "official") if k > 1 else big).std()) for k in ks]
std_paper = [float((downsample_noise(big, k, "paper") if k > 1 else big).std()) for k in ks]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(ks, std_official, "o-", label="official: k·avgpool_k")
ax.plot(ks, std_paper, "s-", label="paper: avgpool_k")
ax.plot(ks, [1 / k for k in ks], "k:", label="1/k")
ax.set_xscale("log", base=2)
ax.set_xlabel("downsampling factor k")
ax.set_ylabel("std of the target")
ax.legend()
plt.show()

# %% [markdown]
# ## Why $\alpha_r = 1/4^{R-r}$
# The paper cites Hoogeboom et al. (simple diffusion): average-pooling a noisy image by $k \times k$ raises
# its signal-to-noise ratio by $k^2$, because the image is smooth (the signal survives pooling) while the
# noise is white (its variance drops by $k^2$). A low-resolution branch therefore sees an easier, less
# noisy problem, and its loss is down-weighted by the same factor: $\alpha_r = 1/k^2$ with $k = 2^{R-r}$.
# In the package:

# %%
Markdown(show_source(paper_coefficients, start="return tuple"))

# %% [markdown]
# We measure the SNR gain on the offline shapes at one noise level:

# %%
data = ShapesDataset(num_items=64, size=64, seed=0)
x0 = torch.stack([data[i][0] for i in range(64)])
sch = VPLinearSchedule()
t = torch.full((64,), 0.5)
noise = torch.randn_like(x0)
a, s = sch.alpha(t)[:, None, None, None], sch.sigma(t)[:, None, None, None]
gains = []
for k in ks:
    pool = (lambda z: torch.nn.functional.avg_pool2d(z, k)) if k > 1 else (lambda z: z)
    signal, nz = pool(a * x0), pool(s * noise)
    gains.append(float(signal.pow(2).mean() / nz.pow(2).mean()))
gains = np.array(gains) / gains[0]

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(ks, gains, "o-", label="measured SNR gain (shapes, t = 0.5)")
ax.plot(ks, [k * k for k in ks], "k:", label="k²")
ax.set_xscale("log", base=2)
ax.set_yscale("log", base=2)
ax.set_xlabel("pooling factor k")
ax.set_ylabel("SNR gain over k = 1 (log scale)")
ax.legend()
plt.show()
print("SNR gain per pooling factor:", {k: round(float(g), 1) for k, g in zip(ks, gains)})

# %% [markdown]
# ## The coefficients of every preset
# Generated from the presets (Table 4 for the paper's models; lowest resolution first), beside
# $1/4^{R-r}$. Rows 3–5 of Table 2 train the last branch only — the "multi-scale loss" column of the
# ablation.

# %%
lines = ["| preset | R | `recipe.loss_coeffs` | $1/4^{R-r}$ |", "|---|---|---|---|"]
for name, p in PRESETS.items():
    if p.model.arch == "dimr" and p.recipe is not None:
        R = p.model.num_branches
        coeffs = ", ".join(f"{c:.4g}" for c in p.recipe.loss_coeffs)
        lines.append(f"| {name} | {R} | {coeffs} | {', '.join(f'{c:.4g}' for c in paper_coefficients(R))} |")
Markdown("\n".join(lines))

# %% [markdown]
# ## The loss of an untrained DiMR-T/3R
# An untrained branch's output is unrelated to ε, so its MSE is the variance of its target plus the
# variance of its own output: the low-resolution branches start near the last one with the official
# targets (unit variance) and far below it with the paper's ($1/k^2$). Eq. (8) then weights them.

# %%
cfg = get_preset("DiMR-T/3R").model
denoiser = Denoiser(build_model(cfg), sch)  # feeds the network its noise level (log-SNR for DiMR)
x0 = torch.stack([ShapesDataset(num_items=16, size=32)[i][0] for i in range(16)])
t = sch.sample_training_t(16, generator=torch.Generator().manual_seed(0))
eps = torch.randn_like(x0)
with torch.no_grad():
    preds = denoiser(sch.add_noise(x0, eps, t), t, torch.arange(16) % 8)
for target in ["official", "paper"]:
    out = multiscale_loss(preds, eps, get_preset("DiMR-T/3R").recipe.loss_coeffs, target)
    print(target, {k: round(v, 3) for k, v in out.log_dict().items()})

# %% [markdown]
# ## Claim and evidence
#
# The paper's claim (§5.4, "Multi-scale loss is critical for multi-resolution network"; Table 2, rows
# 5 → 6): a DiMR trained on its last branch only improves when eq. (8) trains every branch. Table 2's
# rows 5 and 6 differ in nothing else. The claims study repeats that pair (claim {term}`C3`) with the tiny
# DiMR-T/3R ({term}`Table2-T/row5 and row6 <Table2-T/rowN>`):

# %% tags=["remove-input"]
Markdown(claim_evidence(("C3",)))

# %% [markdown]
# The verdicts above are computed from the committed records. What this scale can say: whether, at
# the same steps and seeds, training all three branches changes how well a tiny DiMR draws the shapes,
# measured by geometry ({term}`mean 1 − IoU` to the exact template) and by the dataset classifier
# ({term}`classifier accuracy`). What it cannot
# say: anything about FID-50K on ImageNet 64×64 or about the paper's full-length training of DiMR-M/3R;
# a tiny model trained for minutes on a CPU is a different regime. The study's recipe also
# differs from the paper's in what the branches regress:

# %%
recipe = get_preset("Table2-T/row6").recipe
Markdown(f"`Table2-T/row6` trains with `prediction = \"{recipe.prediction}\"` ({{term}}`{recipe.prediction}-prediction "
         f"<{recipe.prediction}-prediction>`) and coefficients "
         f"{tuple(round(c, 4) for c in recipe.loss_coeffs)}: "
         + ("each branch regresses the clean image at its resolution, $\\operatorname{avgpool}_k(x_0)$, not eq. (8)'s "
            "noise target (`dimr.diffusion.multiscale_loss.branch_target`)." if recipe.prediction == "x0" else
            f"the branch targets follow `dimr.diffusion.multiscale_loss.branch_target` for `{recipe.prediction}`."))

# %% [markdown]
# ## Takeaways
# - Eq. (8) trains every branch against the noise downsampled to its resolution, weighted by
#   $\alpha_r = 1/4^{R-r}$; a weight of 0 leaves a branch untrained (Table 2, rows 3–5).
# - The official target $k \cdot \operatorname{avgpool}_k(\epsilon)$ has unit variance at every branch;
#   the paper's plain average pooling has variance $1/k^2$, so the two give the branches very different
#   losses at the same weights.
# - The weights follow the SNR gain of average pooling, $k^2$ for a smooth image under white noise,
#   which the shapes show.
# - The paper's ablation and this repository's study both compare Table 2 rows 5 and 6; the study's verdict
#   is computed from its records, at a scale that says nothing about ImageNet FIDs.

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Write down $\alpha_r$ for a four-branch DiMR ($R = 4$, lowest resolution first), then
# check your answer against the package's `paper_coefficients`.

# %% tags=["hide-cell", "solution"]
# Solution 1
R = 4
by_hand = tuple(1 / (2 ** (R - r) * 2 ** (R - r)) for r in range(1, R + 1))  # 1/64, 1/16, 1/4, 1
print(by_hand)
assert by_hand == (1 / 64, 1 / 16, 1 / 4, 1.0)
assert paper_coefficients(4) == by_hand

# %% [markdown]
# **Exercise 2.** What is the target of a branch at factor $k$ when the "noise" is a constant image,
# $\epsilon = c$ everywhere? Predict it for the official and the paper target, then compute it with
# `downsample_noise` for $k = 2, 4, 8$.

# %% tags=["hide-cell", "solution"]
# Solution 2
c = 0.3
const = torch.full((1, 1, 32, 32), c)
for k in (2, 4, 8):
    official, paper = downsample_noise(const, k, "official"), downsample_noise(const, k, "paper")
    print(f"k = {k}: official {float(official.mean()):.2f} (= k·c), paper {float(paper.mean()):.2f} (= c)")
    assert official.shape == (1, 1, 32 // k, 32 // k)
    assert torch.allclose(official, torch.full_like(official, k * c))  # k · avgpool: the average times k
    assert torch.allclose(paper, torch.full_like(paper, c))

# %% [markdown]
# **Exercise 3.** *Change a line, run, observe.* In the cell of *The loss of an untrained DiMR-T/3R*, change
# the coefficients `get_preset("DiMR-T/3R").recipe.loss_coeffs` to `(0, 0, 1)` — the last-branch-only loss of
# Table 2's rows 3–5 — and run it again. Predict the total loss before you run: which branch's loss is it
# now, and what happens to the two low-resolution branches' losses (`per_branch`)?

# %% tags=["hide-cell", "solution"]
# Solution 3: with (0, 0, 1) only the 32×32 branch is in the loss — `per_branch` no longer lists the 8×8 and
# 16×16 branches (a weight of 0 is not computed at all), so they get no gradient — and the total is the last
# branch's loss alone.
for coeffs in (get_preset("DiMR-T/3R").recipe.loss_coeffs, (0, 0, 1)):
    out = multiscale_loss(preds, eps, coeffs, "official")
    print(f"coefficients {tuple(round(c, 4) for c in coeffs)}: total {float(out.total):.4f}, "
          f"per branch {({h: round(float(v), 4) for h, v in out.per_branch.items()})}")
assert list(out.per_branch) == [32] and torch.allclose(out.total, out.per_branch[32])

# %% [markdown]
# **Exercise 4.** *Discuss.* With the paper's target (plain average pooling, variance $1/k^2$) **and** the
# weights $\alpha_r = 1/k^2$, how much does the 8×8 branch of a DiMR-T/3R count in the total loss of an
# untrained network, against the 32×32 branch? And with the official target? Is the paper's reading
# down-weighting the low resolutions twice for the same SNR gain? Which reading would you train, and what
# would you measure to decide? (A branch that predicts zeros scores its target's variance; the solution
# measures that, so the discussion rests on numbers.)

# %% tags=["hide-cell", "solution"]
# Solution 4: the weighted share of the 8×8 branch is α·variance: 1/16 · 1 with the official target but
# 1/16 · 1/16 = 1/256 with the paper's — the SNR gain is paid for twice. Whether that matters is an
# experiment (train both, compare mean 1 − IoU over seeds), not something the equation settles.
noise = torch.randn(512, 3, 32, 32, generator=torch.Generator().manual_seed(1))
zeros = [torch.zeros(512, 3, h, h) for h in (8, 16, 32)]
alphas = paper_coefficients(3)
share = {}
for target in ("official", "paper"):
    per = multiscale_loss(zeros, noise, alphas, target).per_branch
    share[target] = alphas[0] * float(per[8]) / (alphas[2] * float(per[32]))
    print(f"{target}: the 8×8 branch counts {share[target]:.4f} of the 32×32 branch (1/{1 / share[target]:.0f})")
assert abs(share["official"] - 1 / 16) < 0.1 / 16 and abs(share["paper"] - 1 / 256) < 0.1 / 256
