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
# # Patchify: what each branch sees
#
# A Transformer does not look at pixels: it cuts the image into *p×p* patches and turns each into one
# token. A big patch means few tokens and cheap attention, but everything finer than a patch has to be
# carried inside a single token's vector and is never attended to — the paper's explanation of the
# distortions in DiT and U-ViT samples (§1, §3). A small patch keeps detail, but attention costs grow
# with the *square* of the token count.
#
# DiMR sidesteps the trade-off with branches at several resolutions (§4.1). Branch *r* of *R* gets the
# **same full-resolution noisy input** and patchifies it itself, with a convolution whose
# **kernel = stride = 2^(R−r)**: only the lowest-resolution branch uses (cheap) attention over few large
# patches; the higher-resolution branches use ConvNeXt blocks, whose cost is linear in the pixel count.
#
# This page builds that picture from the package: `DiMRConfig.patch_size(r)`, the branches'
# `patchify` convolutions, and GMACs counted by `dimr.profile`.

# %%
import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from dimr.nn import build_model
from dimr.presets import get_preset
from dimr.profile import MacCounter, count_params, example_inputs

_ = torch.manual_seed(0)

# %% [markdown]
# ## A test image with detail at every scale
#
# A zone plate — rings whose frequency grows with the radius — is the classic test chart for
# resolution: wherever the rings get finer than the sampling grid they blur or alias. We draw a 64×64
# colour one with numpy (the resolution of DiMR-M/3R, which works on ImageNet 64×64 pixels), with a
# one-pixel grid in one corner.

# %%
n = 64
yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
r2 = ((xx - n / 2) ** 2 + (yy - n / 2) ** 2) / n
zone = 0.5 + 0.5 * np.cos(np.pi * r2 * 0.75)                # ring frequency grows with the radius
image = np.stack([0.15 + 0.8 * zone, 0.1 + 0.75 * zone, 0.35 + 0.6 * zone], axis=-1)
image[:20, :20] = ((xx[:20, :20] % 2) != (yy[:20, :20] % 2))[..., None] * [1.0, 0.9, 0.2]  # 1-pixel checks
image[-14:, -24:] = [0.95, 0.95, 0.95]
image[-10:-4:2, -22:-2] = [0.1, 0.1, 0.1]                   # thin stripes: "text"
x = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1).unsqueeze(0) * 2 - 1  # [1, 3, 64, 64] in [−1, 1]
x.shape

# %% [markdown]
# ## Patch size and token grid per branch
#
# For DiMR-M/3R (R = 3) the config gives patch sizes 4, 2, 1. The branch's own `patchify`
# convolution turns the image into a grid of tokens of width D_r:

# %%
cfg = get_preset("DiMR-M/3R").model
model = build_model(cfg, device="meta")            # shapes only: no weights are allocated
rows = []
for r, branch in enumerate(model.branches, start=1):
    p = cfg.patch_size(r)
    tokens = branch.patchify(x.to("meta"))        # [1, D_r, 64/p, 64/p]
    rows.append((r, branch.kind, p, tuple(tokens.shape), tokens.shape[2] * tokens.shape[3]))
    print(f"branch {r} ({branch.kind}): kernel = stride = 2^({cfg.num_branches}−{r}) = {p} → "
          f"{list(tokens.shape)}: {tokens.shape[2] * tokens.shape[3]} positions")

# %% [markdown]
# `patchify` is a convolution with kernel = stride = p, which is the same as a linear map applied to each
# patch's p·p·3 numbers. Written with `einops.rearrange` — the way `dimr.nn` writes its reshapes — the
# pattern says it: cut the image into a grid of p×p patches and flatten each one, then multiply by the
# kernel. Checked here on a real branch's weights (branch 1 of a freshly initialised DiMR-M/3R):

# %%
from einops import rearrange

branch1 = build_model(cfg).branches[0]
p = cfg.patch_size(1)
patches = rearrange(x, "b c (h p1) (w p2) -> b h w (c p1 p2)", p1=p, p2=p)   # [1, 16, 16, 3·4·4]
weight = rearrange(branch1.patchify.weight, "d c p1 p2 -> (c p1 p2) d")      # the kernel as a [48, D_1] matrix
as_linear = patches @ weight + branch1.patchify.bias                         # [1, 16, 16, D_1]
as_conv = rearrange(branch1.patchify(x), "b d h w -> b h w d")
print(f"patches {tuple(patches.shape)} · kernel {tuple(weight.shape)} = conv output {tuple(as_conv.shape)}; "
      f"largest difference {(as_linear - as_conv).abs().max().item():.1e}")

# %% [markdown]
# What does a token "see"? The convolution keeps all p·p·3 numbers of its patch (its width D_r is far
# larger), but mixing *between* positions happens only at the token grid. The mean colour of each
# patch is the coarsest summary a token could hold; the grid lines show the patches.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, len(rows) + 1, figsize=(13, 3.7))
axes[0].imshow(image)
axes[0].set_title("input, 64×64 pixels")
for ax, (r, kind, p, shape, count) in zip(axes[1:], rows):
    coarse = F.avg_pool2d(x, p)                                   # one value per token position
    up = F.interpolate(coarse, scale_factor=p, mode="nearest")
    ax.imshow(((up[0].permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy())
    if p > 1:
        for k in range(0, n + 1, p):
            ax.axhline(k - 0.5, color="white", lw=0.3, alpha=0.6)
            ax.axvline(k - 0.5, color="white", lw=0.3, alpha=0.6)
    ax.set_title(f"branch {r}: {kind}, patch {p}\n{shape[2]}×{shape[3]} = {count} tokens")
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()

# %% [markdown]
# At patch 4 the outer rings and the one-pixel checks vanish into flat patches: the Transformer branch
# reasons about layout and colour. The 32×32 and 64×64 ConvNeXt branches, fed the Transformer's
# features through the feature cascade, restore the detail.
#
# ## Tokens and attention: the quadratic trade-off
#
# Self-attention over L tokens of width d costs about 2·L²·d multiply-accumulates per block (QKᵀ and
# A·V), against about 12·L·d² for the projections and a 4× MLP. Halving the patch size multiplies L
# by 4 and the attention term by 16. We count GMACs — the paper's "GFLOPs" convention, attention
# included — for U-ViT-M on 64×64 images at patch 8, 4 (the paper's baseline), 2 and 1, and for
# DiMR-M/3R, splitting out the attention matmuls (`bmm` in the counter's per-op split).

# %%
def gmacs_split(config):
    net = build_model(config, device="meta")
    inputs = [t.to("meta") for t in example_inputs(config)]
    with torch.no_grad(), MacCounter() as counter:
        net(*inputs)
    attention = sum(v for k, v in counter.by_op.items() if k in ("bmm", "baddbmm") or "attention" in k)
    return count_params(net), counter.total / 1e9, attention / 1e9


uvit = get_preset("U-ViT-M/4").model
candidates = {f"U-ViT-M/{p}": dataclasses.replace(uvit, patch_size=p) for p in (8, 4, 2, 1)}
candidates["DiMR-M/3R"] = cfg
cost = {}
for name, c in candidates.items():
    params, total, attn = gmacs_split(c)
    tokens = (c.image_size // c.patch_size) ** 2 if name.startswith("U-ViT") else \
        " + ".join(str(c.resolution(r) ** 2) for r in range(1, c.num_branches + 1))
    cost[name] = (total, attn)
    print(f"{name:<10} tokens {tokens!s:<16} params {params / 1e6:6.1f}M   GMACs {total:7.1f}   "
          f"of which attention {attn:6.1f} ({100 * attn / total:4.1f}%)")

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
names = list(cost)
colors = ["#8c8c8c"] * (len(names) - 1) + ["#c44e52"]
for ax, idx, title in ((axes[0], 0, "all GMACs per image"), (axes[1], 1, "attention matmuls only (QKᵀ, A·V)")):
    values = [cost[k][idx] for k in names]
    ax.barh(names, values, color=colors)
    for i, v in enumerate(values):
        ax.text(v * 1.08, i, f"{v:.1f}", va="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 2, max(values) * 4)
    ax.set_title(title)
    ax.set_xlabel("GMACs, batch 1 (log scale)")
axes[0].invert_yaxis()
fig.suptitle("64×64 images: U-ViT-M at four patch sizes against DiMR-M/3R", y=1.0)
fig.tight_layout()

# %%
base_total, base_attn = cost["U-ViT-M/4"]
for name in ("U-ViT-M/2", "U-ViT-M/1", "DiMR-M/3R"):
    total, att = cost[name]
    print(f"{name:<10} vs U-ViT-M/4: {total / base_total:5.1f}× the compute, {att / base_attn:6.1f}× the attention")

# %% [markdown]
# Going from patch 4 to patch 2 multiplies U-ViT's attention by about 16 (four times the tokens,
# squared); at patch 1 attention dominates everything. DiMR-M/3R keeps attention at the 16×16 grid —
# the same attention cost as U-ViT-M/4 — and adds 64×64 detail with convolutions, at a fraction of
# the cost of a smaller patch. The paper prints these two models at 35 and 54 GFLOPs
# ({doc}`Table 5 </book/tables/table5>`).
