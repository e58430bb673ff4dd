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
# :::{admonition} What you will learn
# :class: tip
# - what one branch computes (eqs. (1)–(2) of the paper) and how `Branch.forward` and
#   `MultiResolutionNetwork.forward` implement it;
# - why §4.1 refines features across branches instead of upsampling patch tokens to pixels in one step;
# - the two readings of the feature cascade: the paper's (the last block's output goes up) and the official
#   code's (every block's output goes up), and which one the presets build;
# - where DiMR-M/3R's parameters go, and what the GeGLU MLP saves against the GELU MLP;
# - what the paper's Table 2 and this repository's claims study say about the multi-branch design and GeGLU.
# :::
#
# :::{admonition} What you need to know
# :class: seealso
# - How each branch cuts the input into tokens: {doc}`the patchify chapter </notebooks/patchify>`.
# - The network predicts the noise ε at every branch's resolution; how those predictions are trained:
#   {doc}`the multi-scale loss chapter </notebooks/multiscale_loss>`.
# - Every norm in a branch is time-dependent: {doc}`the TD-LN chapter </notebooks/tdln>` ({term}`τ <tau>`, a
#   function of the {term}`logSNR`, is the time it receives).
# - U-ViT's long skips and what the official code builds: {doc}`what the official code does </docs/official-code>`, §1.
# :::
#
# The multi-resolution network (paper §4.1, eq. (2), Fig. 2) is a stack of R branches, lowest
# resolution first. Branch r
#
# 1. patchifies the full-resolution noisy input (kernel = stride = 2^(R−r), see {doc}`patchify`),
# 2. adds the **upsampled features of branch r−1** (the {term}`feature cascade`),
# 3. runs its blocks — Transformer blocks in branch 1, ConvNeXt blocks above — wired with U-ViT's long
#    skips,
# 4. and predicts the noise at its own resolution with a TD-LN → 3×3 convolution head.
#
# **Why a cascade.** §4.1 starts from DiT's observation that smaller patches give better images at a
# higher cost, and then puts forward a conjecture about *where* the distortion of U-ViT and DiT comes
# from: their way back from tokens to pixels is too crude. Both map the low-resolution token features
# to the full image size in a single step, a linear layer that multiplies the channels followed by a
# pixel shuffle. Borrowing the idea of image cascades (several diffusion models generating at
# increasing resolutions), DiMR instead upsamples features **progressively**: each branch doubles the
# resolution of the previous branch's features and refines them with its own blocks, so detail is
# added stage by stage rather than all at once by one linear map.
#
# Every branch's prediction is trained (the multi-scale loss); sampling uses the last one. This page
# traces one forward pass of **DiMR-M/3R** (its Table 3 sizes are in `get_preset("DiMR-M/3R")`) built on
# the `meta` device — shapes and parameter counts without allocating a single weight.

# %% tags=["remove-input"]
from IPython.display import Markdown

from dimr.reproduction.book import run_this_chapter

Markdown(run_this_chapter("branches"))

# %%
import dataclasses
import json
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from dimr.reproduction.book import show_source
from dimr.nn import build_model
from dimr.nn.blocks import GeGLU, GeluMLP, make_mlp
from dimr.nn.branch import Branch
from dimr.nn.network import MultiResolutionNetwork
from dimr.presets import get_preset, preset_names
from dimr.profile import count_gmacs, count_params, example_inputs

cfg = get_preset("DiMR-M/3R").model
model = build_model(cfg, device="meta")
print(f"DiMR-M/3R: {count_params(model):,} parameters, {cfg.num_branches} branches, input "
      f"{cfg.in_channels}×{cfg.image_size}×{cfg.image_size}; N = {tuple(b.depth for b in cfg.branches)}, "
      f"D = {tuple(b.dim for b in cfg.branches)}")

# %% [markdown]
# ## The equations beside the code
#
# The paper writes branch r as a function of the noisy input $x_t$ and the previous branch's features
# $y_{r-1}$ (eq. (1)), built as (eq. (2)):
#
# $$
# \begin{aligned}
# \epsilon_\theta(x_t, c, r),\; y_r &= f_{\theta,r}(x_t, y_{r-1}, t, c), \\
# f_{\theta,r}(x_t, y_{r-1}, t, c) &= \mathrm{Conv}_{3\times 3}\Big(g_{\theta,r}\big(\mathrm{Patchify}(x_t) \\
# &\qquad\qquad + \mathrm{Upsample}(y_{r-1}),\; t,\; c\big)\Big),
# \end{aligned}
# $$
#
# with $y_0 = 0$, $g_{\theta,r}$ the branch's blocks with long skips, and $\epsilon_\theta(x_t, c, R)$ — the last
# branch's prediction — used for sampling. In the package, the part of `Branch.forward` that computes it
# reads line by line: `self.patchify` (+ position embedding) is $\mathrm{Patchify}(x_t)$, `self.upsample(low, tau)`
# is $\mathrm{Upsample}(y_{r-1})$, `run_with_long_skips` is $g_{\theta,r}$, `self.head` is the (TD-LN →)
# $\mathrm{Conv}_{3\times 3}$, and `features` is $y_r$ — the one place where the two cascades below differ:

# %% tags=["remove-input"]
Markdown(show_source(Branch.forward))

# %% [markdown]
# The network applies the branches in order, lowest resolution first, passing each branch's $y_r$ to the
# next (`low`), and returns every branch's $\epsilon_\theta(x_t, c, r)$:

# %% tags=["remove-input"]
Markdown(show_source(MultiResolutionNetwork.forward))

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
# ## The cascade: the paper's reading and the official code's
#
# Two readings of $y_r$ exist, and the package builds either (`DiMRConfig.cascade`):
#
# | | what branch r hands up as $y_r$ | width | `cascade=` |
# |---|---|---|---|
# | **the paper** (§4.1: "intermediate features from the previous branch (last block's output)"; eq. (1): the last block's output, before the 3×3 convolution) | the last block's output | D_r | `"last"` |
# | **the official code** (docs/official-code.md §1) | the branch input and **every block's output**, concatenated on the channel axis | D_r·(n_blocks + 1) | `"all"` |
#
# Both then go through the same upsample: TD-LN → Linear(C_low → 4·D_r) → pixel shuffle ×2 → TD-LN.
# **Every preset builds the official reading** — the paper's is available, but only by asking for it:

# %%
cascades = defaultdict(list)
for name in preset_names():
    m = get_preset(name).model
    if getattr(m, "arch", None) == "dimr":
        cascades[m.cascade].append(name)
for kind, names in cascades.items():
    print(f'cascade="{kind}": {len(names)} presets: {", ".join(names)}')
assert set(cascades) == {"all"}
paper_cascade = build_model(dataclasses.replace(cfg, cascade="last"), device="meta")   # the paper's reading

# %% [markdown]
# What each branch of DiMR-M/3R hands up, in both readings. The width of $y_r$ is the input width of the
# next branch's upsample Linear, so the official reading makes those Linears wide:

# %%
readings = {'paper, cascade="last"': paper_cascade, 'official, cascade="all" (the presets)': model}
for r in range(1, cfg.num_branches):
    for label, net in readings.items():
        proj = net.branches[r].upsample.proj            # branch r + 1's upsample reads y_r
        print(f"branch {r} → {r + 1}, {label:<38} y_{r}: {net.branches[r - 1].feature_dim:>6,} channels → "
              f"Linear({proj.in_features:,} → {proj.out_features:,}), {count_params(proj) / 1e6:5.2f}M parameters")
print(f"(branch {cfg.num_branches}, the last, hands nothing up in either reading)")

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
# largest single item (wide inputs, because in the official reading every block's output is handed up;
# Exercise 1 counts what the paper's reading would save). TD norms, the time
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
fig, ax = plt.subplots(figsize=(9, 3.2))
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
ax.set_ylim(-0.2, 3.3)  # the outermost arc rises to about 2.8: room below the title
ax.axis("off")
ax.set_title(f"Branch 2 of DiMR-M/3R: N = {cfg.branches[1].depth} printed, {n_built} built: "
             f"{half} in-blocks (blue), 1 middle block, {half} out-blocks (green)\n"
             "arcs are long skips: each out-block first applies Linear(2C → C) to [x, skip]", fontsize=10)
fig.tight_layout()

# %% [markdown]
# ## The MLP: GeGLU instead of GELU
#
# Both block types end in an MLP. Table 2's rows 1–4 use the vanilla one, two linear maps with a GELU
# between and a 4× hidden width; DiMR replaces the first linear map by GeGLU, a gated linear unit, at a 2×
# hidden width (§4.3 "Gated linear unit", Table 2 row 5):
#
# $$
# \mathrm{MLP}(x) = W_2\,\mathrm{GELU}(W_1 x + b_1) + b_2,
# \qquad
# \mathrm{GeGLU}(x) = W_2\big(\mathrm{GELU}(W_0 x + b_0) \odot (W_1 x + b_1)\big) + b_2 .
# $$

# %% tags=["remove-input"]
Markdown(show_source(GeGLU.forward) + "\n\n" + show_source(GeluMLP.forward))

# %% [markdown]
# Two input maps d → 2d hold as many weights as one map d → 4d (4d²), and the output map 2d → d is half
# as large as 4d → d: GeGLU has 6d² weights where the GELU MLP has 8d². Per block, at DiMR-M/3R's three
# widths:

# %%
for r, b in enumerate(cfg.branches, start=1):
    d = b.dim
    geglu_n, gelu_n = count_params(make_mlp("geglu", d, 2.0)), count_params(make_mlp("gelu", d, 4.0))
    print(f"branch {r}, d = {d}: GeGLU (2×) {geglu_n:>10,}   GELU MLP (4×) {gelu_n:>10,}   "
          f"GeGLU / GELU = {geglu_n / gelu_n:.2f}")

# %% [markdown]
# ## Claim and evidence
#
# **What the paper claims.** The multi-branch design with its feature cascade "improves visual fidelity
# and alleviates distortions" (§5.4): Table 2 row 6 (DiMR-M/3R: multi-branch + TD-LN + GLU + multi-scale
# loss) against row 1 (the U-ViT-M/4 baseline) at almost the same size, and Fig. 5's human study of the
# images a classifier flags, where a smaller share of DiMR's are judged distorted than of DiT's or
# U-ViT's (§5.3). GeGLU "further reduces model size" and slightly improves FID (§5.4, rows 4 → 5). As
# printed (ImageNet 64×64, FID-50K, one training run each):

# %% tags=["remove-input"]
from dimr.reproduction.book import claim_evidence, paper_table2_fids
from dimr.reproduction.paper import paper_rows

fids = paper_table2_fids()
printed = {r["row"]: r["params"] for r in paper_rows("2")}
Markdown("\n".join(["| Table 2 | FID-50K | #Params |", "|---|---|---|"]
                   + [f"| row {i} | {fids[i]} | {printed[i]} |" for i in (1, 4, 5, 6)]))

# %% [markdown]
# This repository's test of both claims at CPU scale (claim keys {term}`C1`, {term}`C1-fmnist` and {term}`C4`:
# the multi-branch design on the offline shapes and on Fashion-MNIST, GeGLU on the shapes), measured by
# {term}`mean 1 − IoU` on the shapes and by {term}`FID <FID (dataset classifier)>` on Fashion-MNIST:

# %% tags=["remove-input"]
Markdown(claim_evidence(("C1", "C1-fmnist", "C4")))

# %% [markdown]
# What the two ends of the Fashion-MNIST comparison draw: each configuration's evaluation grid at its lowest
# recorded seed, one row per class (the class the samples were asked for), as recorded by the study.

# %% tags=["hide-input"]
from dimr.reproduction import study
from dimr.reproduction.book import labelled_grid, record_class_names

fmnist = study.evaluated(study.collect())
shown = {}
for slug in ("fmnist-row1", "fmnist-row6"):
    seeds = sorted(seed for s, seed in fmnist if s == slug)
    if seeds:
        shown[slug] = (seeds[0], Path(fmnist[(slug, seeds[0])]["run"]["path"]))
if shown:
    fig, axes = plt.subplots(1, len(shown), figsize=(5.2 * len(shown), 6.2), squeeze=False)
    for ax, (slug, (seed, folder)) in zip(axes[0], shown.items()):
        report = json.loads((folder / "evaluation.json").read_text(encoding="utf-8"))
        labelled_grid(ax, folder / "grid.png", record_class_names(folder),
                      title=f"{study.CONFIGS[slug].label}, seed {seed}\n{report['preset']}, "
                            f"{report['train_step']:,} training steps, w = {report['scale']['guidance_weight']:g}")
    fig.tight_layout()
    plt.show()
else:
    print("No Fashion-MNIST evaluation of the claims study is recorded yet.")

# %% [markdown]
# The verdicts above are computed from the committed records; they change when the study is re-run, so this
# text repeats none of them. What this scale can say: whether, for tiny models trained for minutes, the
# multi-branch design draws shapes closer to their exact templates (a distortion measured, not judged by a
# classifier or by people) and whether GeGLU changes that. What it cannot say: anything about ImageNet FIDs
# after hundreds of thousands of iterations. Note also that the study, like the presets, builds the official
# cascade (`cascade="all"`), not the paper's: it tests the design as released, and says nothing about
# which of the two readings matters.

# %% [markdown]
# ## Takeaways
#
# - A branch is eq. (2) in code: patchify the full-resolution input, add the upsampled $y_{r-1}$, run the
#   blocks with long skips, predict ε at its own resolution with a 3×3 convolution head.
# - The paper conjectures that U-ViT's and DiT's one-shot linear + pixel-shuffle upsampler causes
#   distortion; DiMR doubles the resolution branch by branch and refines at every step.
# - The paper hands up the last block's output (`cascade="last"`); the official code, and every preset
#   here, hands up the branch input and every block's output (`cascade="all"`), which makes the upsample
#   Linears large.
# - GeGLU at 2× has fewer parameters than the GELU MLP at 4× (6d² against 8d², plus biases).
# - The official code builds N//2·2 + 1 blocks, so an even N gets one more block than Table 3 prints.

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** *Change a line, run, observe.* In the chapter's first code cell, change
# `cfg = get_preset("DiMR-M/3R").model` to `cfg = dataclasses.replace(get_preset("DiMR-M/3R").model,
# cascade="last")` — the paper's cascade — and run the cells again. Before you run, predict how many
# parameters disappear: only the upsample's input side depends on the width of $y_{r-1}$, its TD-LN (8
# parameters per channel in the official form) and its Linear's weight (4·D_r per input channel). Then
# observe the printed count (the solution checks it on the model).

# %% tags=["hide-cell", "solution"]
# Solution 1
last = dataclasses.replace(cfg, cascade="last")
predicted = 0
for r in range(2, cfg.num_branches + 1):
    low = cfg.branches[r - 2].dim
    extra_channels = low * (cfg.built_depth(r - 1) + 1) - low     # "all" hands up n_blocks + 1 tensors, "last" one
    predicted += extra_channels * (8 + 4 * cfg.branches[r - 1].dim)
measured = count_params(model) - count_params(build_model(last, device="meta"))
print(f'cascade="all" − cascade="last": predicted {predicted:,}, measured {measured:,} parameters '
      f"({100 * measured / count_params(model):.1f}% of the model)")
assert measured == predicted

# %% [markdown]
# **Exercise 2.** Predict, then measure, the GMACs the paper's cascade saves on one 64×64 image. The
# upsample Linear of branch r runs at the grid of branch r − 1 (before the pixel shuffle doubles it), so it
# costs (positions of branch r − 1) × (input width) × (4·D_r) multiply-accumulates; `dimr.profile` also
# charges 4 per element for the LayerNorm over that input.

# %% tags=["hide-cell", "solution"]
# Solution 2
predicted = 0
for r in range(2, cfg.num_branches + 1):
    low = cfg.branches[r - 2].dim
    extra_channels = low * cfg.built_depth(r - 1)
    positions = cfg.resolution(r - 1) ** 2
    predicted += positions * extra_channels * (4 * cfg.branches[r - 1].dim + 4)   # Linear + LayerNorm
measured = count_gmacs(cfg, model=model) - count_gmacs(last)
print(f"GMACs saved by cascade='last': predicted {predicted / 1e9:.3f}, measured {measured:.3f}")
assert abs(measured - predicted / 1e9) < 1e-6

# %% [markdown]
# **Exercise 3.** Table 2 rows 4 and 5 differ only in the MLP (GELU at 4× against GeGLU at 2×). Write the
# parameter count of each MLP at width d (the biases included), predict the difference between the two
# whole networks from the built block counts, and check it against the `Table2/row4` and `Table2/row5`
# presets.

# %% tags=["hide-cell", "solution"]
# Solution 3
def gelu_mlp_params(d):      # Linear(d, 4d) + Linear(4d, d)
    return d * 4 * d + 4 * d + 4 * d * d + d


def geglu_params(d):         # two Linear(d, 2d) + Linear(2d, d)
    return 2 * (d * 2 * d + 2 * d) + 2 * d * d + d


for d in (192, 384, 768):
    assert count_params(make_mlp("gelu", d, 4.0)) == gelu_mlp_params(d)
    assert count_params(make_mlp("geglu", d, 2.0)) == geglu_params(d)
row4, row5 = get_preset("Table2/row4").model, get_preset("Table2/row5").model
predicted = sum(row5.built_depth(r) * (gelu_mlp_params(b.dim) - geglu_params(b.dim))
                for r, b in enumerate(row5.branches, start=1))
measured = count_params(build_model(row4, device="meta")) - count_params(build_model(row5, device="meta"))
print(f"row 4 − row 5: predicted {predicted:,}, measured {measured:,} parameters (2·d² per block)")
assert measured == predicted

# %% [markdown]
# **Exercise 4.** *Discuss.* The claims study's C1 compares U-ViT-T/4 with DiMR-T/3R as the presets build it,
# with the official cascade. How much of DiMR-T/3R are its cascade upsamples, in each reading? If C1 came out
# supported, could you say whether the branches or the wide cascade Linears did it? Sketch the experiment
# (configurations, seeds, metric) that would separate the two.

# %% tags=["hide-cell", "solution"]
# Solution 4: the official cascade makes the upsamples a visible share of the tiny model; an arm of the study
# with cascade="last" (same seeds, mean 1 − IoU) against DiMR-T/3R would isolate it — the study does not run it.
def upsample_share(config):
    net = build_model(config, device="meta")
    return sum(p.numel() for n, p in net.named_parameters() if ".upsample." in n) / count_params(net)


tiny = get_preset("DiMR-T/3R").model
shares = {c: upsample_share(dataclasses.replace(tiny, cascade=c)) for c in ("all", "last")}
print("share of DiMR-T/3R's parameters in the cascade upsamples:", {c: f"{v:.1%}" for c, v in shares.items()})
assert shares["all"] > shares["last"] > 0
