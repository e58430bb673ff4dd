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
# # Time-Dependent Layer Normalization
#
# A denoiser must know the noise level. U-ViT feeds it as a token; DiT's adaLN-Zero maps it through an
# MLP to a shift, scale and gate for every block — about 6·d² parameters per block. The paper observes
# (§4.2, Fig. 3) that the scales and shifts adaLN-Zero produces are nearly one-dimensional along the
# sampling trajectory, and proposes a far cheaper form: make the LayerNorm's own affine parameters
# functions of time,
#
# > s(t) = sigmoid(w·t + b),  γ(t) = s(t)·p₁ + (1 − s(t))·p₂,  β(t) = s(t)·p₃ + (1 − s(t))·p₄
# > (eqs. (5)–(7)),  TD-LN(x, t) = γ(t) ⊙ LN(x) + β(t).
#
# Each parameter interpolates between two learned endpoints as time moves. `dimr.nn.tdln` implements
# two readings side by side: the **paper's** (one scalar gate (w, b) per norm, shared by γ and β) and
# the **official code's** (every channel of γ and of β has its own gate, `s = sigmoid((1 + w′)·τ + b)`).
# Time enters as τ = log-SNR / 4, passed as an argument — no module stores it.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from dimr.nn.blocks import AdaLNModulation
from dimr.nn.tdln import TDLayerNorm, TDRMSNorm, set_time_dependence
from dimr.profile import count_params, profile_preset
from dimr.tables import fmt_params, paper_rows, profile_row

g = torch.Generator().manual_seed(0)

# %% [markdown]
# ## γ(τ) and β(τ), official and paper forms
#
# A fresh TD-LN is time-independent (both endpoints start equal, see below). To see time act we move
# the second endpoints with `set_time_dependence` — what training does — and, for the official form,
# also give each channel's gate its own slope and offset, as training would.

# %%
C = 6
official = TDLayerNorm(C, form="official")
paper = TDLayerNorm(C, form="paper")
set_time_dependence(official, generator=g, scale=0.8)
set_time_dependence(paper, generator=g, scale=0.8)
with torch.no_grad():
    for tdp in (official.weight, official.bias):
        tdp.nodecay_weight.copy_(torch.randn(C, generator=g) * 1.5)
        tdp.nodecay_bias.copy_(torch.randn(C, generator=g) * 1.0)

tau = torch.linspace(-2.5, 2.5, 201)
ref = torch.zeros(1)
curves = {name: norm.gamma_beta(tau, ref) for name, norm in (("official: one gate per channel", official),
                                                              ("paper: one gate per norm", paper))}

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 2, figsize=(11, 5.5), sharex=True)
for col, (name, (gamma, beta)) in enumerate(curves.items()):
    for row, (values, label) in enumerate(((gamma, "γ(τ)"), (beta, "β(τ)"))):
        ax = axes[row, col]
        ax.axvspan(-1, 1, color="#eeeeee", zorder=0)
        ax.plot(tau, values.detach().numpy(), lw=1.8)
        ax.set_ylabel(label)
        if row == 0:
            ax.set_title(name)
for ax in axes[1]:
    ax.set_xlabel("τ = log-SNR / 4   (shaded: the latent models' range (−1, 1])")
fig.suptitle(f"TD-LN parameters of {C} channels as functions of time")
fig.tight_layout()

# %% [markdown]
# In the paper's form every channel switches at the same moment (one sigmoid per norm; the channels
# differ only in their endpoints). In the official form each channel has its own switching time and
# sharpness — more freedom for 4 more numbers per channel.
#
# ## What time conditioning costs
#
# Parameters of the time conditioning that one block of width d = 768 (DiMR-M/3R's Transformer branch)
# carries, counted on the package's modules. A Transformer block has two norms; adaLN-Zero replaces them
# with one modulation network producing six vectors.

# %%
d = 768
per_block = {
    "adaLN-Zero, DiT (SiLU → Linear(d, 6d))": count_params(AdaLNModulation(d, d)),
    "adaLN-Zero, Table 2 row 2 (Linear(d,d) → SiLU → Linear(d, 6d))": count_params(AdaLNModulation(d, d, hidden=d)),
    "2 × TD-LN, official (8·d each)": 2 * count_params(TDLayerNorm(d, form="official")),
    "2 × TD-LN, paper (4·d + 2 each)": 2 * count_params(TDLayerNorm(d, form="paper")),
    "2 × TD-RMSNorm, official (4·d each)": 2 * count_params(TDRMSNorm(d)),
    "2 × LayerNorm, time-blind (2·d each)": 2 * 2 * d,
}
for k, v in per_block.items():
    print(f"{k:<66} {v:>10,}")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(9, 3.2))
ax.barh(list(per_block), list(per_block.values()), color=["#c44e52", "#c44e52", "#4c72b0", "#4c72b0", "#4c72b0", "#8c8c8c"])
ax.set_xscale("log")
ax.invert_yaxis()
ax.set_xlabel("parameters per Transformer block, d = 768 (log scale)")
for i, v in enumerate(per_block.values()):
    ax.text(v * 1.15, i, f"{v:,}", va="center", fontsize=9)
ax.set_xlim(1e3, 3e7)
fig.tight_layout()

# %% [markdown]
# Whole models tell the same story. Table 2 of the paper goes from U-ViT-M/4 (time token) to
# U-ViT-M/4 with adaLN-Zero, and from the multi-branch network with adaLN-Zero (row 3) to the same
# network with TD-LN (row 4). The presets reproduce the printed counts:

# %%
printed = {r["row"]: r["params"] for r in paper_rows("2")}           # Table 2 as printed
labels = {1: "U-ViT-M/4, time token", 2: "U-ViT-M/4 + adaLN-Zero", 3: "multi-branch + adaLN-Zero",
          4: "multi-branch + TD-LN"}
counts = {n: profile_preset(f"Table2/row{n}").params for n in labels}
for n, label in labels.items():
    print(f"row {n}  {label:<26} {counts[n] / 1e6:7.2f}M   (printed {printed[n]})")
print(f"\ntime token → adaLN-Zero (row 1 → 2):            {(counts[2] - counts[1]) / 1e6:+7.2f}M")
print(f"adaLN-Zero → TD norms, multi-branch (row 3 → 4): {(counts[4] - counts[3]) / 1e6:+7.2f}M")

# %% [markdown]
# Row 4 uses TD-RMSNorm block norms, as the released code does; with TD-LN block norms, the norm the
# paper names, its count changes (see {doc}`the Table 2 page </book/tables/table2>`):

# %%
row4_tdln = profile_row("Table2/row4", "tdln")["params"]
print(f"row 4 with TD-RMSNorm block norms {fmt_params(counts[4])}, with TD-LN block norms {fmt_params(row4_tdln)} "
      f"(printed {printed[4]})")

# %% [markdown]
# ## At initialisation TD-LN *is* LayerNorm
#
# Both endpoints start equal (p₀ = p₁ = 1 for γ, 0 for β) and the gate offsets start at zero, so a fresh
# TD-LN returns exactly `F.layer_norm(x)` whatever the time: the network starts time-blind and learns
# how much time matters.

# %%
x = torch.randn(4, 10, d, generator=g) * 3 + 1.5
tau_batch = torch.tensor([-1.0, -0.2, 0.4, 1.0])
fresh = TDLayerNorm(d)
with torch.no_grad():
    out = fresh(x, tau_batch)
    ln = F.layer_norm(x, (d,), eps=fresh.eps)
print("fresh TD-LN == F.layer_norm:", torch.equal(out, ln), " max |difference| =", (out - ln).abs().max().item())
set_time_dependence(fresh, generator=g)
with torch.no_grad():
    moved = fresh(x, tau_batch)
print("after set_time_dependence: max |TD-LN − LN| =", f"{(moved - ln).abs().max().item():.3f}")

# %% [markdown]
# ## TD-RMSNorm: what the released models actually use
#
# Both released configs set `norm_type="TDRMSN"` for the blocks (docs/official-code.md §3): RMS normalisation
# without centring and without β, x / (‖x‖/√C + 1e-8) · γ(τ) — the epsilon outside the square root —
# with 4·C parameters. TD-LN remains in the cascade upsample and the output heads. On a token with a
# non-zero mean the two differ visibly: LayerNorm removes the mean, RMSNorm keeps it.

# %%
token = torch.randn(1, d, generator=g) * 0.8 + 1.2          # one token with mean ≈ 1.2
tdln, tdrms = TDLayerNorm(d), TDRMSNorm(d)
with torch.no_grad():
    a, b = tdln(token, torch.zeros(1)), tdrms(token, torch.zeros(1))
print(f"parameters at C = {d}: TD-LN {count_params(tdln):,}, TD-RMSNorm {count_params(tdrms):,}")

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(11, 2.8), sharey=True)
for ax, v, title in zip(axes, (token, a, b), ("input token", "TD-LN (fresh)", "TD-RMSNorm (fresh)")):
    ax.hist(v.flatten().numpy(), bins=40, color="#4c72b0")
    ax.axvline(v.mean().item(), color="#c44e52", lw=1.5)
    ax.set_title(f"{title}\nmean {v.mean().item():+.2f}, std {v.std().item():.2f}")
fig.tight_layout()
