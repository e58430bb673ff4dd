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
# :::{admonition} What you will learn
# :class: tip
# - how branch *r* of *R* patchifies the full-resolution input with a convolution of kernel = stride = 2^(R−r),
#   and why that convolution is the same as one linear map per patch;
# - what a token at patch size *p* can and cannot "see" of a test chart with detail at every scale;
# - why the attention cost grows with the *square* of the token count, counted in GMACs with `dimr.profile`
#   for U-ViT at four patch sizes and for DiMR-M/3R;
# - which claim of the paper this trade-off motivates, and what this repository's claims study says about
#   U-ViT-T/2 against DiMR-T/2R at about equal compute.
# :::
#
# :::{admonition} What you need to know
# :class: seealso
# - A Vision Transformer cuts an image into patches and treats each as one token (the paper's §1 and §4.1
#   "Motivation" recall this for DiT and U-ViT).
# - Self-attention: every token attends to every other, so its cost grows with the square of the token count.
# - Where the patchify sits in the network: {doc}`the branches chapter </notebooks/branches>` (next).
# - "GFLOPs" in the paper are multiply-accumulates with attention included ({term}`GMACs`):
#   {doc}`what the official code does </docs/official-code>`, §7, and {doc}`Table 5 </book/tables/table5>`.
# :::
#
# A Transformer does not look at pixels: it cuts the image into *p×p* patches and turns each into one
# token. A big patch means few tokens and cheap attention, but everything finer than a patch has to be
# carried inside a single token's vector and is never attended to. The paper blames the distortions
# in DiT and U-ViT samples on this trade-off (§1, and §4.1 "Motivation", which leans on DiT's own
# patch-size study). A small patch keeps detail, but attention costs grow with the *square* of the
# token count.
#
# DiMR sidesteps the trade-off with branches at several resolutions (§4.1). Branch *r* of *R* gets the
# **same full-resolution noisy input** and patchifies it itself, with a convolution whose
# **kernel = stride = 2^(R−r)**: only the lowest-resolution branch uses (cheap) attention over few large
# patches; the higher-resolution branches use ConvNeXt blocks, whose cost is linear in the pixel count.
#
# This page builds that picture from the package: `DiMRConfig.patch_size(r)`, the branches'
# `patchify` convolutions, and GMACs counted by `dimr.profile`.

# %% tags=["remove-input"]
from IPython.display import Markdown

from dimr.reproduction.book import run_this_chapter

Markdown(run_this_chapter("patchify"))

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
# In eq. (2) of the paper, branch *r* starts with $\mathrm{Patchify}(x_t)$, "a convolution with a kernel size
# of $2^{R-r}\times 2^{R-r}$ and a stride of $2^{R-r}$" (§4.1). In the package that is `DiMRConfig.patch_size`
# and the first two lines of `Branch.forward` (a learned position embedding is added to the token grid):

# %% tags=["remove-input"]
from dimr.reproduction.book import show_source
from dimr.config import DiMRConfig
from dimr.nn.branch import Branch

Markdown(show_source(DiMRConfig.patch_size) + "\n\n"
         + show_source(Branch.forward, start="h = rearrange(self.patchify", stop="h = h + self.pos_embed"))

# %% [markdown]
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
# the cost of a smaller patch. The paper's own figures for the two models ({doc}`Table 5 </book/tables/table5>`):

# %% tags=["remove-input"]
from dimr.reproduction.paper import paper_rows

table5 = {r["model"].replace(" (Ours)", ""): r for r in paper_rows("5")}
Markdown(" · ".join(f"**{m}**: {table5[m]['gflops']} GFLOPs, {table5[m]['params']} parameters, FID {table5[m]['fid']}"
                    for m in ("U-ViT-M/4", "DiMR-M/3R")) + " (Table 5, ImageNet 64×64, as printed).")

# %% [markdown]
# ## Claim and evidence
#
# **What the paper claims.** A smaller patch gives better images at a higher compute cost: the paper
# takes this from DiT's systematic patch-size study (Fig. 7 of the DiT paper, cited in the paper's §1
# and §4.1), which is why DiT settled on patch 2 and U-ViT on patch 2 or 4. Even so, their samples
# show distortion (§1, Fig. 1). DiMR's answer is not patch 1 everywhere, which would be far too
# expensive, but a Transformer branch at a large patch plus higher-resolution ConvNeXt branches that
# refine its features (§4.1). The paper's evidence is Table 2 (rows 1 → 6, U-ViT-M/4 → DiMR-M/3R,
# see {doc}`the branches chapter </notebooks/branches>`) and Table 5: DiMR-M/3R costs more than
# U-ViT-M/4 (above) and scores a better FID. The paper prints no comparison **at equal compute**.
#
# **This repository's test.** The claims study adds that comparison at CPU scale (claim {term}`C1-p2`): U-ViT-T/2
# against DiMR-T/2R. Both attend over the same 16×16 grid of patch-2 tokens of a 32×32 image; DiMR-T/2R
# adds a second branch of ConvNeXt blocks at the full 32×32 resolution and pays for it with fewer
# Transformer blocks, so that the two cost about the same. Their counts, computed on the meta device:

# %% tags=["remove-input"]
from dimr.profile import profile_preset

pair = {name: profile_preset(name) for name in ("U-ViT-T/2", "DiMR-T/2R")}
Markdown("\n".join(["| model | parameters | GMACs per 32×32 image |", "|---|---|---|"]
                   + [f"| {n} | {r.params / 1e6:.2f}M | {r.gmacs:.3f} |" for n, r in pair.items()]))

# %% tags=["remove-input"]
from dimr.reproduction.book import claim_evidence

Markdown(claim_evidence(("C1-p2",)))

# %% [markdown]
# The verdicts above are computed from the committed records of the study; they change when the study is
# re-run, so this text does not repeat them. What this scale can say: whether, for a tiny model trained
# for minutes on the offline shapes, spending about the same compute on a multi-resolution network
# instead of on a smaller patch draws shapes closer to their templates ({term}`mean 1 − IoU`, measured exactly).
# What it cannot say: anything about ImageNet FIDs at hundreds of thousands of iterations, or about the
# paper's DiT/U-ViT models; and a 32×32 image at patch 2 has only 256 tokens, where attention is still
# cheap, so the quadratic cost that motivates the design barely bites here.

# %% [markdown]
# ## Takeaways
#
# - Patchify is a convolution with kernel = stride = *p*, i.e. one linear map per *p×p* patch; every branch
#   of DiMR applies its own to the same full-resolution input, with *p* = 2^(R−r).
# - Mixing between positions happens only at the token grid: detail finer than a patch must survive inside a
#   token's vector.
# - Attention costs grow with the square of the token count: halving the patch multiplies them by about 16.
# - DiMR keeps attention at the coarsest grid and reaches full resolution with ConvNeXt blocks, whose cost
#   is linear in the pixel count; the paper prints no equal-compute comparison, the claims study runs one.

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** DiMR-T/3R (the tiny three-branch preset, 32×32 inputs) has R = 3. Predict each branch's
# patch size and token grid, then check against the package's config and the branches' `patchify`
# convolutions.

# %% tags=["hide-cell", "solution"]
# Solution 1
tiny = get_preset("DiMR-T/3R").model
tiny_model = build_model(tiny, device="meta")
x32 = torch.zeros(1, tiny.in_channels, tiny.image_size, tiny.image_size, device="meta")
for r, branch in enumerate(tiny_model.branches, start=1):
    predicted_p = 2 ** (tiny.num_branches - r)            # kernel = stride = 2^(R−r)
    grid = branch.patchify(x32).shape[-1]
    print(f"branch {r}: patch {predicted_p}, grid {grid}×{grid}")
    assert tiny.patch_size(r) == predicted_p == branch.patchify.kernel_size[0] == branch.patchify.stride[0]
    assert grid == tiny.image_size // predicted_p

# %% [markdown]
# **Exercise 2.** How many parameters does the `patchify` convolution of each branch of DiMR-M/3R have?
# Write the count as a formula in the input channels C, the patch size *p* and the width D_r (a linear map
# from each patch's C·p·p numbers to D_r, plus a bias), and check it on the model.

# %% tags=["hide-cell", "solution"]
# Solution 2
for r, branch in enumerate(model.branches, start=1):
    p = cfg.patch_size(r)
    formula = cfg.in_channels * p * p * branch.dim + branch.dim
    print(f"branch {r}: {cfg.in_channels}·{p}·{p}·{branch.dim} + {branch.dim} = {formula:,}")
    assert count_params(branch.patchify) == formula

# %% [markdown]
# **Exercise 3.** *Change a line, run, observe.* In the cell of *Tokens and attention* that sets
# `uvit = get_preset("U-ViT-M/4").model`, change the preset to `"U-ViT-T/4"` (the tiny U-ViT of the claims
# study, 32×32 images) and run the cell again. Before you run, predict by how much the attention matmuls grow
# from patch 4 to patch 2 — careful: besides the patch tokens, U-ViT carries a time token and a label token —
# then observe the printed GMACs (the solution measures the ratio with the chapter's `gmacs_split`).

# %% tags=["hide-cell", "solution"]
# Solution 3
t4 = get_preset("U-ViT-T/4").model
t2 = dataclasses.replace(t4, patch_size=2)                 # what the changed cell builds at patch 2
extra = build_model(t4, device="meta").extras            # the time token and the label token
tokens = {c.patch_size: (c.image_size // c.patch_size) ** 2 + extra for c in (t4, t2)}
predicted = (tokens[2] / tokens[4]) ** 2                  # attention ∝ L² at fixed width and depth
measured = gmacs_split(t2)[2] / gmacs_split(t4)[2]
print(f"tokens {tokens[4]} → {tokens[2]}: predicted ×{predicted:.2f}, measured ×{measured:.2f}")
assert abs(measured / predicted - 1) < 0.01

# %% [markdown]
# **Exercise 4.** *Discuss.* At 32×32 and patch 2, the claims study's U-ViT-T/2 attends over only 256 tokens.
# What share of its compute is attention there? Does claim C1-p2 then test the paper's motivation — the
# *quadratic* cost of small patches — or something else? From which image size on would attention be most of
# U-ViT-T's compute at patch 2, and what would a fair test at that size cost on a laptop?

# %% tags=["hide-cell", "solution"]
# Solution 4: attention is a small share at 32×32, so C1-p2 tests the multi-resolution design at equal compute,
# not the quadratic wall; the share grows with the token count and passes one half only at a larger image.
uvit_t2 = get_preset("U-ViT-T/2").model
share = {}
for size in (32, 64, 128, 256):
    _, total, attn = gmacs_split(dataclasses.replace(uvit_t2, image_size=size))
    share[size] = attn / total
    print(f"U-ViT-T/2 at {size}×{size}: {(size // 2) ** 2:>6,} tokens, attention {share[size]:.0%} of {total:.2f} GMACs")
first = min((size for size, v in share.items() if v > 0.5), default=None)
print("attention is most of the compute from", f"{first}×{first}" if first else "none of these sizes")
assert share[32] < 0.5 and list(share.values()) == sorted(share.values())
