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
# Every branch of the multi-resolution network predicts the noise at its own resolution, so DiMR
# trains all of them (paper §4.3, eq. 8):
#
# $$\mathcal{L}_\text{multi} = \sum_{r=1}^{R} \alpha_r\, \mathbb{E}\,\lVert \text{Downsample}(\epsilon_t, r) - \epsilon_\theta(x_t, c, r) \rVert_2^2,
# \qquad \alpha_r = \frac{1}{2^{R-r}\times 2^{R-r}}.$$
#
# This chapter looks at the two things the equation leaves open: *what* the downsampled target is
# (the paper says average pooling; the official code uses `k·avgpool_k`), and *why* the weights fall
# as $1/4^{R-r}$.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from dimr.data import ShapesDataset
from dimr.diffusion import Denoiser, VPLinearSchedule, downsample_noise, multiscale_loss, paper_coefficients
from dimr.nn import build_model
from dimr.presets import PRESETS, get_preset

torch.manual_seed(0)

# %% [markdown]
# ## The targets
# For a branch at 1/k of the input resolution, the paper's target is the k×k average of ε; the official
# code convolves ε with a k×k kernel of value 1/k and stride k, which is **k times** the average.

# %%
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

# %%
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
# ## Why α_r = 1/4^(R−r)
# The paper cites Hoogeboom et al. (simple diffusion): average-pooling a noisy image by k×k raises its
# signal-to-noise ratio by $k^2$, because the image is smooth (the signal survives pooling) while the
# noise is white (its variance drops by $k^2$). A low-resolution branch therefore sees an easier,
# less noisy problem, and its loss is down-weighted by the same factor. We measure the SNR gain on
# the offline shapes at one noise level:

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
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(ks, gains, "o-", label="measured SNR gain (shapes, t = 0.5)")
ax.plot(ks, [k * k for k in ks], "k:", label="k²")
ax.set_xscale("log", base=2)
ax.set_yscale("log", base=2)
ax.set_xlabel("pooling factor k")
ax.legend()
plt.show()
print("SNR gain per pooling factor:", {k: round(float(g), 1) for k, g in zip(ks, gains)})

# %% [markdown]
# ## The coefficients of every preset
# Generated from the presets (Table 4 for the paper's models; lowest resolution first). Rows 3–5 of
# Table 2 train the last branch only — the "multi-scale loss" column of the ablation.

# %%
rows = []
for name, p in PRESETS.items():
    if p.model.arch == "dimr" and p.recipe is not None:
        R = p.model.num_branches
        rows.append((name, R, tuple(round(c, 4) for c in p.recipe.loss_coeffs),
                     tuple(round(c, 4) for c in paper_coefficients(R))))
print(f"{'preset':16s} R  coefficients            1/4^(R-r)")
for name, R, c, ref in rows:
    print(f"{name:16s} {R}  {str(c):22s}  {ref}")

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
