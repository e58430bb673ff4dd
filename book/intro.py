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
# # DiMR, reproduced and explained
#
# This book reproduces **DiMR** — *Alleviating Distortion in Image Generation via Multi-Resolution
# Diffusion Models and Time-Dependent Layer Normalization* (Qihao Liu, Zhanpeng Zeng, Ju He, Qihang Yu,
# Xiaohui Shen, Liang-Chieh Chen; NeurIPS 2024, arXiv:2406.09416) — as a tested Python package,
# `dimr`, and as the pages you are reading, which run that package.
#
# ## The idea
#
# Transformer diffusion models (DiT, U-ViT) cut the image into patches and attend over the patches.
# Attention costs grow with the square of the number of tokens, so they use patches of 2×2 latent
# pixels or more — and whatever is finer than a patch is handled token by token, never attended to.
# The paper attributes the **distortions** of their samples (warped faces, broken limbs, melted text)
# to this trade-off between patch size and compute.
#
# DiMR keeps attention where it is cheap and adds resolution where attention would be expensive:
#
# - a **multi-resolution network**: R branches see the same noisy input at increasing resolutions.
#   The lowest uses Transformer blocks over large patches; the higher ones use ConvNeXt blocks, whose
#   cost grows only linearly with the pixel count. Each branch adds the upsampled features of the one
#   below (the *feature cascade*) and predicts the noise at its own resolution, and every prediction is
#   trained (the *multi-scale loss*).
# - **Time-Dependent LayerNorm (TD-LN)**: instead of adaLN-Zero's large per-block MLP, each
#   normalisation's scale and shift interpolate between two learned values as the noise level changes
#   (the count for DiMR-XL/2R is under the figure).
#
# The figure is drawn from the `DiMR-M/3R` preset (ImageNet 64×64 pixels, Table 3), so its numbers are
# the model's. Block counts are the ones the official code builds: for an even depth N in Table 3 it
# builds N + 1 ConvNeXt blocks, and the figure prints Table 3's N beside the built count where they
# differ ({doc}`the branches chapter </notebooks/branches>` shows why).

# %% tags=["remove-input"]
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from dimr.presets import get_preset

preset = get_preset("DiMR-M/3R")
cfg, recipe = preset.model, preset.recipe
R = cfg.num_branches

rng = np.random.default_rng(0)
n = cfg.image_size
yy, xx = np.mgrid[0:n, 0:n]
clean = 0.5 + 0.5 * np.cos(((xx - n / 2) ** 2 + (yy - n / 2) ** 2) / n * np.pi * 0.75)
noisy = np.clip(0.7 * clean + 0.3 * rng.standard_normal((n, n)), 0, 1)

fig, ax = plt.subplots(figsize=(9.5, 5.6))
ax.set_xlim(0, 12)
ax.set_ylim(0, 6.4)
ax.axis("off")
ax.imshow(noisy, cmap="gray", extent=(0.2, 1.9, 2.3, 4.0))
ax.text(1.05, 2.05, f"noisy input x_t\n{cfg.in_channels}×{n}×{n}", ha="center", va="top", fontsize=11.5)

ys = {r: 0.5 + (r - 1) * 2.0 for r in range(1, R + 1)}          # branch 1 at the bottom
for r in range(1, R + 1):
    b, y0, p, res = cfg.branches[r - 1], ys[r], cfg.patch_size(r), cfg.resolution(r)
    color = "#dce6f2" if b.block == "transformer" else "#e2efda"
    ax.add_patch(FancyBboxPatch((3.4, y0 - 0.05), 5.0, 1.45, boxstyle="round,pad=0.05", fc=color, ec="#555"))
    kind = "Transformer" if b.block == "transformer" else "ConvNeXt"
    extra = f"{b.heads} heads" if b.block == "transformer" else f"{b.kernel_size}×{b.kernel_size} depthwise conv"
    built, printed = cfg.built_depth(r), b.depth
    depth = f"{built} {kind} blocks" + ("" if built == printed else f" (Table 3: {printed})")
    # small enough that "(Table 3: N)" stays inside the box
    ax.text(5.9, y0 + 1.0, f"branch {r}: {depth}", ha="center", fontsize=11.5, weight="bold")
    ax.text(5.9, y0 + 0.4, f"{res}×{res} positions, width {b.dim}, {extra}\nnorms: TD norms of τ = log-SNR/4",
            ha="center", fontsize=10, va="center")
    ax.add_patch(FancyArrowPatch((1.95, 3.15), (3.35, y0 + 0.65), arrowstyle="-|>", mutation_scale=12, color="#777"))
    # the label runs along its arrow, just above it: the arrow's angle on screen (the axes' x and y units have
    # different lengths), and the label pushed off the line along its normal
    (x_a, y_a), (x_b, y_b) = (1.95, 3.15), (3.35, y0 + 0.65)
    ux, uy = 9.5 / 12, 5.6 / 6.4                       # inches per data unit along x and y
    angle = np.arctan2((y_b - y_a) * uy, (x_b - x_a) * ux)
    ax.text((x_a + x_b) / 2 - 0.2 * np.sin(angle) / ux, (y_a + y_b) / 2 + 0.2 * np.cos(angle) / uy,
            f"patchify {p}×{p}", fontsize=9.5, ha="center", va="center", rotation=np.degrees(angle),
            rotation_mode="anchor")
    ax.add_patch(FancyArrowPatch((8.45, y0 + 0.65), (9.35, y0 + 0.65), arrowstyle="-|>", mutation_scale=12, color="#333"))
    weight = Fraction(recipe.loss_coeffs[r - 1]).limit_denominator(1024)
    ax.text(9.45, y0 + 0.65, f"predicted noise\nat {res}×{res}\nloss weight {weight}", va="center", fontsize=11.5)
    if r < R:
        ax.add_patch(FancyArrowPatch((7.6, y0 + 1.45), (7.6, ys[r + 1] - 0.1), arrowstyle="-|>",
                                     mutation_scale=14, color="#c44e52", lw=2))
        ax.text(7.72, y0 + 1.63, "feature cascade: upsample ×2", color="#c44e52", fontsize=10.5)
ax.text(9.45, ys[R] + 1.55, "sampling uses the\nhighest-resolution prediction", fontsize=10.5, color="#555")
ax.set_title(f"{preset.name}: {R} branches, lowest resolution first", fontsize=14)
fig.tight_layout()

# %% tags=["remove-input"]
from IPython.display import Markdown

from dimr.nn import build_model
from dimr.nn.tdln import TimeDependentParameter
from dimr.profile import count_params

xl = build_model(get_preset("DiMR-XL/2R").model, device="meta")
td = sum(count_params(m) for m in xl.modules() if isinstance(m, TimeDependentParameter))
dit = build_model(get_preset("DiT-XL/2").model, device="meta")
modulations = [m for m in dit.modules() if type(m).__name__ == "AdaLNModulation"]
adaln = sum(count_params(m) for m in modulations)
in_blocks = sum(count_params(b.adaln) for b in dit.blocks)
Markdown(f"In DiMR-XL/2R ({count_params(xl) / 1e6:.1f}M parameters) every time-dependent parameter of every TD "
         f"norm — both endpoints and the gates — adds up to {td / 1e6:.2f}M ({100 * td / count_params(xl):.2f}% of "
         f"the model). DiT-XL/2's adaLN-Zero modulations — its {len(dit.blocks)} blocks' "
         f"({in_blocks / 1e6:.1f}M) and "
         f"its final layer's ({(adaln - in_blocks) / 1e6:.2f}M) — hold {adaln / 1e6:.1f}M of its "
         f"{count_params(dit) / 1e6:.1f}M parameters ({100 * adaln / count_params(dit):.0f}%).")

# %% [markdown]
# ## What the paper reports
#
# The headline numbers, as printed (class-conditional ImageNet, FID-50K with classifier-free guidance;
# lower is better), read from `dimr.reproduction.tables` like every printed number in this book:

# %% tags=["remove-input"]
from dimr.reproduction import paper, tables

best = {key: min((r for r in paper.paper_rows(key) if "DiMR" in r["model"]), key=lambda r: float(r["fid"]))
        for key in ("1a", "1b")}
res = {"1a": "256×256", "1b": "512×512"}
lines = [f"- **ImageNet {res[k]}**: {r['model'].replace(' (Ours)', '')}, {r['epochs']} epochs, FID **{r['fid']}** "
         f"({r['fid_wo_cfg']} without guidance; Table 1{k[1]})." for k, r in best.items()]
rates = ", ".join(f"{m.replace(' (Ours)', '')} {rate}" for m, (_, rate) in paper.FIG5_DISTORTION.items())
lines.append(f"- **Distortion** (§5.3, Fig. 5): among the images a ViT classifier flags as low-fidelity "
             f"(p(class) < 0.2), five human evaluators judged the share that is distorted: {rates}.")
fids = {r["row"]: r["fid"] for r in paper.paper_rows("2")}
lines.append(f"- **Ablation** (Table 2, ImageNet 64×64): from U-ViT-M/4 (FID {fids[1]}) to DiMR-M/3R (FID {fids[6]}) "
             f"one component at a time; every component chapter shows its own step.")
Markdown("\n".join(lines))

# %% [markdown]
# ## What this book can and cannot show at laptop scale
#
# **It can** show every mechanism exactly: each page runs the package, whose models reproduce the
# paper's parameter counts and GMACs and, after conversion, the official code's outputs. It can test
# the paper's *claims* at a scale anyone can rerun: tiny models trained for minutes on two CPU cores,
# on procedural shapes whose geometry is known exactly — so distortion is *measured* rather than
# judged by people — and on Fashion-MNIST, each with several seeds and a confidence interval, and a
# verdict computed from the interval ({doc}`Evidence </book/evidence>`).
#
# **It cannot** reproduce the paper's FIDs: they need ImageNet and days on clusters of GPUs
# ({doc}`Running it </book/full_scale>` says how much). A design choice that helps a tiny model learn
# shapes in minutes need not help at 800 epochs on ImageNet, and the other way round; the paper's
# numbers are shown beside every claim for that reason, never compared with the ones measured here.
#
# ## How to read this book
#
# - **Start here**: {doc}`a learning path </book/learning_path>` for a 90-minute session or a week, with
#   the exercises to assign, and {doc}`a glossary </book/glossary>` of the words and symbols the chapters use.
# - **Components** take the method apart, one idea per chapter, each page running the package:
#   what each branch sees after patchifying, the branches and the cascade, the PCA of adaLN-Zero
#   modulations that motivates TD-LN, TD-LN itself, the multi-scale loss, the DPM-Solver sampler,
#   classifier-free guidance, and the distortion measurements of §5.3. Each opens with what you will
#   learn and how to run it, says whether its idea worked (the paper's numbers and this repository's
#   verdict), and closes with takeaways and exercises.
# - **Evidence** tests the paper's claims with seeds and intervals.
# - **The paper's tables** regenerate Tables 1–7: the printed values, this package's parameter counts
#   and GMACs beside them, and measurements from recorded runs where there are any — labelled with the
#   scale they were measured at, and "not run" where there are none.
# - **Paper vs official code** shows every place where the released code departs from the text.
# - **Running it** says how to go from the CPU profile to the paper's scale, and maps the package.
# - **Run records** lists the run plan and every recorded run, each with its executed notebook.
#
# Every number on these pages is either computed by the package when the book is built or printed in
# the paper and cited as such.
