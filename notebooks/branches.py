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
# # The branches and the feature cascade
#
# The multi-resolution network (paper §4.1, eq. (2), Fig. 2) is a stack of R branches, lowest
# resolution first. Branch r
#
# 1. patchifies the full-resolution noisy input (kernel = stride = 2^(R−r), see {doc}`patchify`),
# 2. adds the **upsampled features of branch r−1** (the *feature cascade*),
# 3. runs its blocks — Transformer blocks in branch 1, ConvNeXt blocks above — wired with U-ViT's long
#    skips,
# 4. and predicts the noise at its own resolution with a TD-LN → 3×3 convolution head.
#
# Every branch's prediction is trained (the multi-scale loss); sampling uses the last one. This page
# traces one forward pass of **DiMR-M/3R** (Table 3: N = (15, 8, 8), D = (768, 384, 192)) built on the
# `meta` device — shapes and parameter counts without allocating a single weight.

# %%
from collections import defaultdict

import matplotlib.pyplot as plt
import torch

from dimr.nn import build_model
from dimr.presets import get_preset
from dimr.profile import count_params, example_inputs

cfg = get_preset("DiMR-M/3R").model
model = build_model(cfg, device="meta")
print(f"DiMR-M/3R: {count_params(model):,} parameters, {cfg.num_branches} branches, input "
      f"{cfg.in_channels}×{cfg.image_size}×{cfg.image_size}")

# %% [markdown]
# ## Shapes through the network
#
# Forward hooks on each branch's parts record what flows where. Tensors inside a branch are
# channels-last (`[B, H, W, C]`); the Transformer branch flattens its grid to tokens and prepends the
# class token (hence 1 + 16·16 = 257 tokens).

# %%
trace = []


def record(name):
    def hook(module, inputs, output):
        outs = output if isinstance(output, (tuple, list)) else (output,)
        trace.append((name, [tuple(t.shape) for t in outs if torch.is_tensor(t)]))
    return hook


handles = []
for r, branch in enumerate(model.branches, start=1):
    handles.append(branch.patchify.register_forward_hook(record(f"branch {r} · patchify")))
    if branch.upsample is not None:
        handles.append(branch.upsample.register_forward_hook(record(f"branch {r} · upsample(features of branch {r - 1})")))
    handles.append(branch.blocks[0].register_forward_hook(record(f"branch {r} · first {branch.kind} block")))
    handles.append(branch.head.register_forward_hook(record(f"branch {r} · head → ε̂ at its resolution")))
    handles.append(branch.register_forward_hook(record(f"branch {r} · output (ε̂_r, cascade features)")))

x, log_snr, y = (t.to("meta") for t in example_inputs(cfg, batch=2))
with torch.no_grad():
    predictions = model(x, log_snr, y)
for h in handles:
    h.remove()

width = max(len(n) for n, _ in trace)
for name, shapes in trace:
    print(f"{name:<{width}}  {', '.join(str(list(s)) for s in shapes)}")
# (the last branch hands no cascade features up: there is no branch above it, so none are built)
print("\nreturned, lowest resolution first:", [list(p.shape) for p in predictions])

# %% [markdown]
# ## The cascade carries every block's output
#
# The paper says the last block's output of branch r−1 is upsampled and added to branch r. The
# released code hands up much more: the branch input and **every block's output**, concatenated on the
# channel axis — n_blocks + 1 tensors of width D_r (docs/official-code.md §1). The upsample is then
# TD-LN → Linear(C_low → 4·D_r) → pixel shuffle ×2 → TD-LN, and that one Linear is large:

# %%
for r, branch in enumerate(model.branches, start=1):
    n_blocks = len(branch.blocks)
    line = (f"branch {r}: {n_blocks:>2} blocks of width {branch.dim:>3} → hands up "
            f"{branch.dim}·({n_blocks}+1) = {branch.feature_dim:>6,} channels")
    if branch.upsample is not None:
        proj = branch.upsample.proj
        line += (f" | its upsample Linear({proj.in_features:,} → {proj.out_features:,}) has "
                 f"{count_params(proj) / 1e6:5.2f}M parameters")
    print(line)

# %% [markdown]
# ## Where the parameters go
#
# Grouping `named_parameters()` by branch and by role:

# %%
def role(name: str) -> str:
    if ".attn." in name:
        return "attention"
    if ".mlp." in name:
        return "MLP (GeGLU)"
    if ".dwconv." in name:
        return "depthwise conv"
    if ".norm" in name and ".blocks." in name:
        return "block norms (TD)"
    if "skip_linears" in name:
        return "long-skip Linears"
    if ".upsample." in name:
        return "cascade upsample"
    if "class_embed" in name:
        return "class embedding"
    return "patchify, positions, head"


groups = defaultdict(lambda: defaultdict(int))
for name, p in model.named_parameters():
    groups[int(name.split(".")[1]) + 1][role(name)] += p.numel()

total = count_params(model)
for rl in ("attention", "MLP (GeGLU)", "depthwise conv", "long-skip Linears", "cascade upsample",
           "block norms (TD)", "class embedding", "patchify, positions, head"):
    v = sum(groups[r][rl] for r in groups)
    print(f"{rl:<26} {v / 1e6:7.2f}M  ({100 * v / total:4.1f}%)")

# %% tags=["hide-input"]
roles = ["attention", "MLP (GeGLU)", "depthwise conv", "long-skip Linears", "cascade upsample",
         "block norms (TD)", "class embedding", "patchify, positions, head"]
colors = ["#4c72b0", "#55a868", "#8172b3", "#ccb974", "#c44e52", "#64b5cd", "#937860", "#8c8c8c"]
fig, ax = plt.subplots(figsize=(10, 3.2))
for r in sorted(groups):
    left = 0.0
    for rl, c in zip(roles, colors):
        v = groups[r][rl] / 1e6
        ax.barh(f"branch {r} ({model.branches[r - 1].kind}, {cfg.resolution(r)}²)", v, left=left, color=c,
                label=rl if r == 1 else None)
        left += v
    ax.text(left + 0.5, r - 1, f"{left:.1f}M", va="center")
ax.invert_yaxis()
ax.set_xlabel("parameters (millions)")
ax.legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25))
ax.set_title(f"DiMR-M/3R: {count_params(model) / 1e6:.2f}M parameters by branch and role")
fig.tight_layout()

# %% [markdown]
# The Transformer branch holds most of the model; of the rest, the cascade upsample Linears are the
# largest single item (wide inputs, because every block's output is handed up). TD norms, the time
# conditioning of the whole network, are a rounding error — see {doc}`tdln`.
#
# ## Even N gets one more block
#
# U-ViT's long skips pair each of the first n//2 blocks with one of the last n//2 around a middle
# block, so the block count must be odd. The official code builds **N//2·2 + 1** blocks: Table 3's
# (15, 8, 8) is built as 15, 9, 9 blocks, and DiMR-XL/2R's 20 as 21 (docs/official-code.md §1).

# %%
for name in ("DiMR-M/3R", "DiMR-L/3R", "DiMR-XL/2R", "DiMR-XL/3R"):
    c = get_preset(name).model
    printed = tuple(b.depth for b in c.branches)
    built = tuple(c.built_depth(r) for r in range(1, c.num_branches + 1))
    print(f"{name:<11} Table 3 N = {printed!s:<13} built = {built}")
assert [len(b.blocks) for b in model.branches] == [cfg.built_depth(r) for r in (1, 2, 3)]

# %% tags=["hide-input"]
n_built = len(model.branches[1].blocks)          # branch 2 of DiMR-M/3R: N = 8, built 9
half = n_built // 2
fig, ax = plt.subplots(figsize=(9, 2.6))
xs = list(range(n_built))
kinds = ["in"] * half + ["mid"] + ["out"] * half
palette = {"in": "#4c72b0", "mid": "#8c8c8c", "out": "#55a868"}
for i, k in zip(xs, kinds):
    ax.add_patch(plt.Rectangle((i - 0.35, 0), 0.7, 1, color=palette[k]))
    ax.text(i, 0.5, str(i + 1), ha="center", va="center", color="white", fontsize=11)
for j in range(half):                             # in-block j's output feeds out-block (n − 1 − j)
    a, b = j, n_built - 1 - j
    mid, h = (a + b) / 2, 0.35 + 0.25 * (half - j)
    ax.annotate("", xy=(b, 1.02), xytext=(a, 1.02),
                arrowprops=dict(arrowstyle="->", connectionstyle=f"arc3,rad=-{h / (b - a) * 2:.2f}", color="#555"))
ax.set_xlim(-0.8, n_built - 0.2)
ax.set_ylim(-0.2, 2.6)
ax.axis("off")
ax.set_title(f"Branch 2 of DiMR-M/3R: N = {cfg.branches[1].depth} printed, {n_built} built: "
             f"{half} in-blocks (blue), 1 middle block, {half} out-blocks (green)\n"
             "arcs are long skips: each out-block first applies Linear(2C → C) to [x, skip]", fontsize=10)
fig.tight_layout()
