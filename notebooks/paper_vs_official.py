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
# # The paper and the official code
#
# The released code (qihao067/DiMR) differs from the paper's text in ways that change parameter counts,
# training targets and guidance. This package follows the **code** by default and keeps the paper's
# reading behind a switch wherever the two differ, so each difference can be shown rather than asserted.
# The list follows `docs/official-code.md` §11, which records what the official code does, with
# file:line references; numbers below are computed here.

# %%
import dataclasses
from collections import Counter

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from dimr.nn import build_model
from dimr.nn.blocks import GeGLU, GeluMLP
from dimr.nn.branch import pixel_shuffle_channels_last
from dimr.nn.network import log_snr_to_tau
from dimr.presets import get_preset
from dimr.profile import MacCounter, count_params, example_inputs, profile_preset

_ = torch.manual_seed(0)
M3R = get_preset("DiMR-M/3R").model
XL2R = get_preset("DiMR-XL/2R").model


def params(cfg) -> int:
    return count_params(build_model(cfg, device="meta"))


# %% [markdown]
# ## 1. Block norms are TD-RMSNorm, not TD-LN
#
# The paper says TD-LN replaces every LayerNorm. Both released configs set `norm_type="TDRMSN"` for the
# blocks; TD-LN is used only in the cascade upsample and the output heads. `DiMRConfig.block_norm`
# switches between the two readings.

# %%
official_model = build_model(M3R, device="meta")
print("norm modules in DiMR-M/3R (official):", dict(Counter(type(m).__name__ for m in official_model.modules()
                                                           if "Norm" in type(m).__name__)))
for norm in ("tdrmsn", "tdln"):
    print(f"block_norm={norm!r:<9} DiMR-M/3R {params(dataclasses.replace(M3R, block_norm=norm)) / 1e6:.2f}M")
print("printed:", ", ".join(f"{v.value:g}M ({v.where})" for v in get_preset("DiMR-M/3R").paper_params))

# %% [markdown]
# ## 2. The cascade hands up every block's output
#
# The paper: "the last block's output" of branch r−1 is upsampled. The code concatenates the branch
# input and all n_blocks outputs (width D·(n_blocks + 1)) and projects that with one large Linear.
# `DiMRConfig.cascade` is `"all"` (official) or `"last"` (paper).

# %%
labels, values = [], []
for name, cfg in (("DiMR-M/3R", M3R), ("DiMR-XL/2R", XL2R)):
    for cascade in ("all", "last"):
        c = dataclasses.replace(cfg, cascade=cascade)
        net = build_model(c, device="meta")
        widths = [b.feature_dim for b in net.branches[:-1]]
        n = count_params(net)
        print(f"{name:<10} cascade={cascade!r:<7} widths handed up {widths!s:<16} params {n / 1e6:7.2f}M")
        labels.append(f"{name}\ncascade={cascade}")
        values.append(n / 1e6)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 2.8))
ax.barh(labels, values, color=["#4c72b0", "#8c8c8c"] * 2)
for i, v in enumerate(values):
    ax.text(v + 5, i, f"{v:.1f}M", va="center")
ax.invert_yaxis()
ax.set_xlim(0, max(values) * 1.15)
ax.set_xlabel("parameters (millions)")
fig.tight_layout()

# %% [markdown]
# The printed counts (133M, 505M) match `"all"`: the paper describes a simpler cascade than the
# models it measured.
#
# ## 3. An even N gets one more block
#
# U-ViT's long skips need an odd block count; the code builds N//2·2 + 1 blocks.

# %%
for name in ("DiMR-M/3R", "DiMR-XL/2R"):
    c = get_preset(name).model
    print(f"{name:<10} N printed {tuple(b.depth for b in c.branches)}, built "
          f"{tuple(c.built_depth(r) for r in range(1, c.num_branches + 1))}")
print("odd_depth=False (build N as printed): DiMR-M/3R",
      f"{params(dataclasses.replace(M3R, odd_depth=False)) / 1e6:.2f}M against {params(M3R) / 1e6:.2f}M")

# %% [markdown]
# ## 4. Multi-scale targets are k·avgpool(ε), not avgpool(ε)
#
# The paper downsamples the noise target by average pooling. The code convolves ε with a k×k kernel of
# value 1/k and stride k — that is k·avgpool_k(ε), which keeps unit variance (an average of k² independent
# unit-variance values has standard deviation 1/k). Shown with torch directly; the loss itself lives in
# `dimr.diffusion.multiscale_loss`.

# %%
eps = torch.randn(64, 3, 64, 64)
for k in (2, 4):
    pooled = F.avg_pool2d(eps, k)
    print(f"k = {k}: std of avgpool_k(ε) = {pooled.std():.3f} (paper),  std of k·avgpool_k(ε) = {(k * pooled).std():.3f} (code)")
print("loss coefficients, lowest resolution first: 2R", get_preset("DiMR-XL/2R").recipe.loss_coeffs,
      " 3R", get_preset("DiMR-M/3R").recipe.loss_coeffs)

# %% [markdown]
# ## 5. Time enters as τ = log-SNR / 4
#
# TD-LN's "t" is not the diffusion time: every norm receives τ = log_snr / 4. For the latent models the
# code's log-SNR is not the schedule's either but a linear proxy of the step index n ∈ {1, …, 1000}:
# log_snr = 8n/1000 − 4, so τ = 2n/1000 − 1 ∈ (−1, 1]. We plot the proxy against the true log-SNR of the Stable Diffusion
# scaled-linear schedule (β from 0.00085 to 0.012 on a square-root-linear grid).

# %%
n = torch.arange(1, 1001, dtype=torch.float64)
proxy = 8 * n / 1000 - 4
betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
alpha_bar = torch.cumprod(1 - betas, 0)
true_log_snr = torch.log(alpha_bar / (1 - alpha_bar))
tau = log_snr_to_tau(proxy.float(), 1000, "cpu")
print(f"τ over the 1000 steps: from {tau.min():.3f} to {tau.max():.3f}")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(n, proxy, label="code's proxy: 8n/1000 − 4")
ax.plot(n, true_log_snr, label="true log-SNR, SD scaled-linear schedule")
ax.set_xlabel("step index n")
ax.set_ylabel("log-SNR")
ax.legend()
fig.tight_layout()

# %% [markdown]
# The proxy runs the other way (it grows with the noise while the true log-SNR falls) and is linear in
# n; the network only needs a monotone, bounded code of time, and TD-LN's learned gates absorb the
# sign. `DiMRConfig.noise_input` names what a network is fed, and `dimr.diffusion` converts in one place.
#
# ## 6. Time-dependent parameters: per channel, time-blind at step 0
#
# Each γ and β channel has its own gate s = sigmoid((1 + w′)·τ + b) with w′ = b = 0 and both endpoints
# equal at initialisation: a fresh model gives **identical** outputs at any noise level. The gate
# parameters are named `nodecay_*` and the official optimiser exempts them from weight decay.

# %%
tiny_cfg = get_preset("DiMR-T/3R").model
tiny = build_model(tiny_cfg).eval()
x, _, y = example_inputs(tiny_cfg, batch=2)
with torch.no_grad():
    a = tiny(x, torch.full((2,), -4.0), y)[-1]
    b = tiny(x, torch.full((2,), 4.0), y)[-1]
print("fresh DiMR-T/3R, log-SNR −4 vs +4: identical output:", torch.equal(a, b))
nodecay = [n for n, _ in tiny.named_parameters() if "nodecay" in n]
print(f"{len(nodecay)} nodecay tensors, e.g. {nodecay[:2]}")

# %% [markdown]
# ## 7. GeGLU with 2× expansion, ConvNeXt without a norm before the depthwise conv
#
# A GeGLU MLP at hidden 2·d has 6d² + 5d parameters against 8d² + 5d for a 4× GELU MLP: Table 2's
# "GLU further reduces model size" (row 4 → row 5).

# %%
d = 768
print(f"d = {d}: GeGLU(2×) {count_params(GeGLU(d, 2 * d)):,}   GELU MLP(4×) {count_params(GeluMLP(d, 4 * d)):,}")
print(f"Table 2 row 4 → row 5: {(profile_preset('Table2/row5').params - profile_preset('Table2/row4').params) / 1e6:+.2f}M")
block = build_model(tiny_cfg, device="meta").branches[1].blocks[0]
print("ConvNeXt block children, in order:", [name for name, _ in block.named_children()])

# %% [markdown]
# ## 8. Attention and the class token
#
# No qkv bias (the output projection has one), no time token, no adaLN; the class token exists only in
# the Transformer branch and carries no position embedding.

# %%
attn = official_model.branches[0].blocks[0].attn
print("qkv bias:", attn.qkv.bias, "| proj bias:", tuple(attn.proj.bias.shape))
print("class embedding per branch:", [b.class_embed is not None for b in official_model.branches])
print("position table rows per branch:", [b.pos_embed.shape[0] for b in official_model.branches],
      "(= tokens, no row for the class token)")

# %% [markdown]
# ## 9. Initialisation
#
# Linear and Embedding weights trunc-normal(0.02) with zero biases; every convolution keeps PyTorch's
# default; nothing is zero-initialised (unlike adaLN-Zero).

# %%
lin = tiny.branches[0].blocks[0].mlp.w0
conv = tiny.branches[1].blocks[0].dwconv
print(f"Linear weight std {lin.weight.std():.4f}, bias all zero: {bool((lin.bias == 0).all())}")
print(f"depthwise conv weight std {conv.weight.std():.4f} (PyTorch default, not 0.02)")
print(f"output heads zero? {[bool((b.head.conv.weight == 0).all()) for b in tiny.branches]}")

# %% [markdown]
# ## 10. Gradient checkpointing, dropout, mixed precision
#
# The code always checkpoints blocks, uses dropout 0 and fp16 autocast. Checkpointing changes memory,
# not results — gradients with and without it agree:

# %%
def grads(net, checkpointing):
    net.zero_grad()
    net.set_grad_checkpointing(checkpointing)
    out = net(x, torch.zeros(2), y)
    sum(o.pow(2).mean() for o in out).backward()
    return torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])


tiny.train()
g0, g1 = grads(tiny, False), grads(tiny, True)
print(f"max |∇ with − ∇ without checkpointing| = {(g0 - g1).abs().max():.2e}; dropout = {tiny_cfg.dropout}")

# %% [markdown]
# ## 11. Guidance scale 0.4 means w = 1.4
#
# The code computes ε̂ = ε_c + s·(ε_c − ε_u) with s = 0.4 — the same as ε_u + w·(ε_c − ε_u) with
# w = 1 + s = 1.4 in the usual convention. The null label is index 1000, so latent models have 1001
# class rows, and labels are dropped with probability 0.1 during training.

# %%
eps_c, eps_u = torch.randn(4, 4, 32, 32), torch.randn(4, 4, 32, 32)
s = get_preset("DiMR-XL/2R").recipe.cfg_scale
code_form = eps_c + s * (eps_c - eps_u)
usual_form = eps_u + (1 + s) * (eps_c - eps_u)
print(f"scale s = {s}: max |difference| between the forms with w = {1 + s}: {(code_form - usual_form).abs().max():.1e}")
print("DiMR-XL/2R class rows:", XL2R.num_classes, "| label dropout:", get_preset("DiMR-XL/2R").recipe.p_uncond)

# %% [markdown]
# ## 12. The sampler
#
# Data-prediction DPM-Solver-3 in its "fast" order schedule on a **time-uniform** grid, 250 function
# evaluations for 256/512 and 50 for 64×64, end time 10⁻³ on the discrete schedule (U-ViT's sampler
# uses a log-SNR-uniform grid instead). The solver is `dimr.diffusion.dpm_solver`; the step counts
# come from the presets:

# %%
for name in ("DiMR-M/3R", "DiMR-XL/2R", "DiMR-XL/3R"):
    r = get_preset(name).recipe
    print(f"{name:<10} {r.sampler}, {r.sampling_steps} steps")

# %% [markdown]
# ## 13–15. Dead options in the released code
#
# - **Axial RoPE** (`pe_type="Axial_RoPE"`) is unused by the released configs, and crashes with the class
#   token (257 positions against 256); this package does not implement it.
# - The **`tdp` CUDA kernel** is dead code; the PyTorch formula (`dimr.nn.tdln`) is what runs.
# - **DiMR-G/2R** (README only, FID 1.63):

# %%
g2r = profile_preset("DiMR-G/2R")
print(f"DiMR-G/2R: {g2r.params / 1e9:.3f}B parameters, {g2r.gmacs:.1f} GMACs (README: 1.06B, 331)")

# %% [markdown]
# ## 16. Optimisation
#
# AdamW with betas (0.99, 0.99), weight decay 0.03 except on `nodecay_*`, 5k warm-up steps then a
# **constant** learning rate, EMA 0.9999 from step 0 without warm-up, no gradient clipping:

# %%
for name in ("DiMR-M/3R", "DiMR-XL/2R"):
    r = get_preset(name).recipe
    print(f"{name:<10} {r.optimizer} lr {r.lr:g} betas {r.betas} wd {r.weight_decay} warm-up {r.warmup_steps} "
          f"EMA {r.ema_rate} batch {r.batch_size}")

# %% [markdown]
# ## 17. What "GFLOPs" means
#
# The paper's GFLOPs are multiply-accumulates at batch 1 with the attention matmuls included. Two
# common counters get this wrong: `torch.utils.flop_counter.FlopCounterMode` counts 2 FLOPs per MAC,
# and on CPU it has no formula for the fused attention kernel, so attention silently disappears.
# `dimr.profile.MacCounter` counts attention explicitly:

# %%
net = build_model(tiny_cfg).eval()
inputs = example_inputs(tiny_cfg)
with torch.no_grad(), MacCounter() as mc:
    net(*inputs)
with torch.no_grad(), FlopCounterMode(display=False) as fc:
    net(*inputs)
attention_macs = sum(v for k, v in mc.by_op.items() if "attention" in k or "bmm" in k)
print(f"DiMR-T/3R on CPU: MacCounter {mc.total / 1e6:.1f} MMACs, of which attention {attention_macs / 1e6:.1f}")
print(f"                  FlopCounterMode {fc.get_total_flops() / 1e6:.1f} MFLOPs, /2 = {fc.get_total_flops() / 2e6:.1f} MMACs "
      f"(short by {(mc.total - fc.get_total_flops() / 2) / 1e6:.1f}: the attention, plus the LayerNorm estimate)")

# %% [markdown]
# ## Pixel-shuffle order
#
# Last, a detail that only matters for loading official weights: the cascade's pixel shuffle reads
# channel (i·f + j)·C + c for output pixel (h·f + i, w·f + j), while `torch.nn.PixelShuffle` reads
# channel c·f² + i·f + j. Feeding both the channel index as its value shows the two layouts:

# %%
f, C = 2, 3
z = torch.arange(f * f * C, dtype=torch.float32).view(1, 1, 1, f * f * C)   # [B, H, W, f·f·C]
official_order = pixel_shuffle_channels_last(z, f)[0, :, :, 0]             # channel 0 of the 2×2 output
torch_order = torch.nn.PixelShuffle(f)(z.permute(0, 3, 1, 2))[0, 0]
print("source channel feeding output channel 0 at each of the 2×2 pixels")
print("official order:\n", official_order.int())
print("nn.PixelShuffle:\n", torch_order.int())
