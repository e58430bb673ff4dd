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
# # Noise schedules and the DPM-Solver
#
# :::{admonition} What you will learn
# :class: tip
# - the two noise schedules of DiMR (pixel and latent) and what the network is fed as its noise level;
# - how DPM-Solver's two step allocations, "fast" and full-order, spend a budget of network evaluations, and
#   what DiMR's time-uniform grid looks like beside the logSNR-uniform one;
# - how to measure a solver's order against an exact solution, and why a measured slope is not the order:
#   lower-order steps, sign changes between error terms, and long steps in λ all show up at finite step counts;
# - on the latent schedule, a grid and allocation that reach the official sampler's error at its recipe's
#   steps with a small fraction of its network evaluations (`dimr sample --skip logSNR --allocation full`);
# - what the paper and the official code use to sample, and where the sampler sits in this repository's evidence.
# :::
#
# :::{admonition} What you need to know
# :class: seealso
# - Diffusion as noising $x_t = \alpha_t x_0 + \sigma_t \epsilon$ and a network that predicts ε: the
#   {doc}`multi-scale loss chapter </notebooks/multiscale_loss>` trains one (paper §3).
# - The log signal-to-noise ratio $\log(\alpha_t^2/\sigma_t^2)$, which DiMR feeds its network for TD-LN:
#   {doc}`the TD-LN chapter </notebooks/tdln>` (paper §4.2).
# - Log-log plots: a straight line of slope $-p$ is an error $\propto N^{-p}$.
# :::
#
# DiMR samples with DPM-Solver (Lu et al., 2022): an exponential-integrator ODE solver for the
# probability-flow ODE. The official sampler is the **data-prediction** (DPM-Solver++) form, order 3,
# "fast" singlestep step allocation on a **time-uniform** grid ending at t = 10⁻³ (docs/official-code.md §6);
# the paper's Table 4 gives only "DPM-Solver" and the number of steps (shown in *Claim and evidence*).
# This chapter shows the schedules, the step allocation and the grids, and then measures the solver's
# error against an exact answer.

# %% tags=["remove-input"]
from IPython.display import Markdown

from dimr.reproduction.book import run_this_chapter

Markdown(run_this_chapter("solver"))

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown

from dimr.reproduction.book import show_source
from dimr.diffusion import (ALLOCATIONS, SDScaledLinearSchedule, VPLinearSchedule, analytic, get_schedule,
                            get_singlestep_time_steps, get_time_steps, sample_dpm_solver, sample_singlestep,
                            singlestep_orders, singlestep_update, step_orders)

F64 = torch.float64

# %% [markdown]
# ## Two schedules
# Pixel models (64×64) use U-ViT's continuous VP schedule, β from 0.1 to 20; latent models use the
# discrete Stable-Diffusion "scaled-linear" schedule, interpolated in log α over t = n/1000. What the
# network is *fed* differs: DiMR takes log-SNR (and TD-LN uses τ = log-SNR / 4), but the official latent
# code feeds the linear proxy **8n/1000 − 4**, not the true log-SNR (docs/official-code.md §4).

# %% tags=["hide-input"]
t = torch.linspace(1e-3, 1, 500, dtype=F64)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for sch, name in [(VPLinearSchedule(), "VP linear (pixels)"), (SDScaledLinearSchedule(), "SD scaled-linear (latents)")]:
    axes[0].plot(t, sch.alpha(t), label=f"α_t, {name}")
    axes[0].plot(t, sch.sigma(t), "--", label=f"σ_t, {name}")
    axes[1].plot(t, sch.log_snr(t), label=f"true log-SNR, {name}")
axes[1].plot(t, SDScaledLinearSchedule().network_input(t, "log_snr"), "k:", label="official latent network input 8t − 4")
axes[0].set_xlabel("t"), axes[1].set_xlabel("t")
axes[0].legend(fontsize=7), axes[1].legend(fontsize=7)
axes[1].set_ylim(-15, 20)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Two step allocations and two grids
# With a budget of N network evaluations ({term}`NFE`), singlestep DPM-Solver-3 in the **"fast"** allocation (the
# DPM-Solver paper's "DPM-Solver-fast", and the official sampler's) takes mostly third-order steps (3
# evaluations each) and finishes with one or two lower-order steps, spending exactly N; which ones depends
# on N mod 3. The **full-order** allocation (`allocation="full"`: U-ViT's and DiMR's `method='singlestep'`,
# the reference code's `'singlestep_fixed'`) takes ⌊N/3⌋ third-order steps and nothing else:

# %%
for nfe in (250, 50, 25, 12):
    for allocation in ALLOCATIONS:
        orders = step_orders(nfe, 3, "singlestep", allocation)
        counts = {o: orders.count(o) for o in sorted(set(orders), reverse=True)}
        print(f"{nfe:4d} NFE, {allocation:4s} -> " + " + ".join(f"{n}×order {o}" for o, n in counts.items()),
              f"(sum {sum(orders)})")

# %% [markdown]
# The steps walk a grid of times from t = 1 (pure noise) to $t_\text{end}$. The official DiMR sampler
# uses a grid **uniform in t** (`skip="time_uniform"`, the package's default and the presets'
# `recipe.sampling_skip`); the DPM-Solver paper's own setting is a grid uniform in the half log-SNR
# $\lambda_t = \log(\alpha_t/\sigma_t)$ (`skip="logSNR"`). The exponential integrator expands the model's
# prediction in powers of the step in λ, $h = \lambda_t - \lambda_s$, so a grid's steps in λ are what its
# error depends on. The package builds both grids here:

# %%
Markdown(show_source(get_time_steps, start='if skip == "time_uniform"', stop="return ts"))

# %% [markdown]
# Here are the 17 step ends of a 50-NFE DPM-Solver-3 sample (Table 4's 64×64 budget) on both grids,
# drawn against t and against λ:

# %% tags=["hide-input"]
sch = VPLinearSchedule()
T_END = 1e-3  # the official sampler's end time, eps = 1/1000 (docs/official-code.md §6)
GRIDS = {"time_uniform": "time-uniform: what DiMR uses (official sampler)",
         "logSNR": "logSNR-uniform: the DPM-Solver paper's setting"}
fig, axes = plt.subplots(2, 1, figsize=(9, 3.6))
for y, (skip, label) in enumerate(GRIDS.items()):
    ends, orders = get_singlestep_time_steps(sch, 50, 3, skip, t_start=1.0, t_end=T_END)
    lam = 0.5 * sch.log_snr(ends)
    for ax, v in zip(axes, (ends, lam)):
        ax.plot(v, np.full(len(v), y), "|", markersize=15, color=f"C{y}")
for ax in axes:
    ax.set_yticks([0, 1], ["time-uniform\n(DiMR)", "logSNR-uniform\n(DPM-Solver paper)"], fontsize=8)
    ax.set_ylim(-0.6, 1.6)
axes[0].set_xlabel("t")
axes[1].set_xlabel("λ = log(α/σ)")
axes[0].set_title(f"Step ends of DPM-Solver-3 'fast' at 50 NFE ({len(orders)} steps), VP linear schedule, "
                  f"t from 1 to {T_END:g}", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# The package builds the grid before sampling, and the sampling loop only walks it, each step taking as
# many of its intervals as the step's order (the points inside a step are where its extra evaluations go):

# %%
Markdown(show_source(sample_singlestep, start="i = 0", stop="return x"))

# %% [markdown]
# Uniform in t means very uneven in λ: as $t \to 0$, $\sigma_t^2 \approx \beta_0 t$, so λ grows like
# $-\tfrac12 \log t$ and the last interval of a time-uniform grid is long in λ. The longest step in λ of
# each Table 4 model's sampler (its own schedule and end time, its `recipe.sampling_steps`), on both grids:

# %%
from dimr.presets import get_preset


def longest_lambda_step(schedule, nfe, skip, t_end=None):
    """The longest step in λ of singlestep DPM-Solver-3 "fast" (t_end: the schedule's own by default)."""
    ends, _ = get_singlestep_time_steps(schedule, nfe, 3, skip, t_end=t_end)
    return float((0.5 * schedule.log_snr(ends)).diff().max())


lines = ["| model | schedule | NFE (Table 4) | last step's orders | longest step in λ, time-uniform (DiMR) "
         "| longest step in λ, logSNR-uniform |", "|---|---|---|---|---|---|"]
for name in ("DiMR-M/3R", "DiMR-XL/2R", "DiMR-XL/3R"):
    recipe = get_preset(name).recipe
    schedule = get_schedule(recipe.schedule)
    nfe = recipe.sampling_steps
    lines.append(f"| {name} | {recipe.schedule} (ends at t = {schedule.eps:g}) | {nfe} | "
                 f"{singlestep_orders(nfe, 3)[-2:]} | {longest_lambda_step(schedule, nfe, 'time_uniform'):.2f} | "
                 f"{longest_lambda_step(schedule, nfe, 'logSNR'):.2f} |")
Markdown("\n".join(lines))

# %% [markdown]
# ## One solver step
# Expanding the model's value $m$ (here the data prediction $\hat x_0$) in λ around the step's start
# gives every DPM-Solver update one form (DPM-Solver++ eq. 8; the module docstring of
# `dimr.diffusion.dpm_solver`):
#
# $$
# x_t = A\, x_s - C \left[ \varphi_1(\eta)\, m + \varphi_2(\eta)\, D_1 + \varphi_3(\eta)\, D_2 \right],
# \qquad (A, C, \eta) = \left( \frac{\sigma_t}{\sigma_s},\ \alpha_t,\ -h \right),
# $$
#
# with $\varphi_1(\eta) = e^\eta - 1$, $\varphi_2 = \varphi_1/\eta - 1$, $\varphi_3 = \varphi_2/\eta - \tfrac12$,
# and $D_1 \approx h\, m'$, $D_2 \approx h^2 m''$ estimated from extra model calls inside the step
# (singlestep) or from previous steps (multistep). The singlestep third-order step in the package:

# %%
Markdown(show_source(singlestep_update, start="c = _Coeffs", stop="return _combine(c, x, m_s, D1=(1.0 / r2)"))

# %% [markdown]
# ## Error against the exact solution
# For Gaussian data x₀ ~ N(μ, s²I) the exact noise predictor and the exact ODE solution are known
# (`dimr.diffusion.analytic`), so we can measure the solver itself, free of any network error. A method
# of order p has an error $\propto N^{-p}$ *as N → ∞*; we measure the maximum error at t = 10⁻³ over a
# range of NFE on both grids, and the **local slope** between neighbouring NFE,
# $-\Delta \log(\text{error}) / \Delta \log N$, which is what a straight-line fit averages.
#
# The NFE are ≡ 2 (mod 6), so every "fast" singlestep run is allocated alike: order 2 takes only second-order
# steps, order 3 takes third-order steps and ends with one second-order step. The full-order singlestep runs
# (dotted) use the largest multiple of the order within the budget; the multistep allocations differ only
# below 10 steps, so the multistep curves are the "fast" ones.

# %%
mu, s = 0.7, 0.5
eps_fn = analytic.gaussian_eps_fn(sch, mu, s)
x1 = torch.randn(8, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
exact = analytic.gaussian_flow_solution(sch, x1, T_END, mu, s)
NFES = [20, 38, 80, 158, 320, 638, 1280]  # ≡ 2 (mod 6), about doubling
CURVES = [(skip, method, allocation, order) for skip in GRIDS
          for method, allocation in (("singlestep", "fast"), ("singlestep", "full"), ("multistep", "fast"))
          for order in (1, 2, 3)]


def signed_error(nfe, order, method, skip, **kw):
    """x̂ − x_exact at t_end for every coordinate (data prediction, as DiMR samples)."""
    x = sample_dpm_solver(eps_fn, x1, sch, nfe, order=order, method=method, predict="data", skip=skip,
                          t_end=T_END, **kw)
    return (x - exact).flatten()


def evaluations(nfe, order, method, allocation):
    """The NFE a budget of ``nfe`` actually spends (a full-order singlestep solve may leave some unused)."""
    orders = step_orders(nfe, order, method, allocation)
    return sum(orders) if method == "singlestep" else len(orders)


def local_slopes(nfes, errors):
    return -np.diff(np.log(np.abs(errors))) / np.diff(np.log(nfes))


signed = {c: np.array([signed_error(n, c[3], c[1], c[0], allocation=c[2]).numpy() for n in NFES]) for c in CURVES}
errors = {c: np.abs(e).max(1) for c, e in signed.items()}
used = {c: np.array([evaluations(n, c[3], c[1], c[2]) for n in NFES]) for c in CURVES}

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
# a local slope sits between its two NFE (at their geometric mean)
LINES = {("singlestep", "fast"): ("o", "-"), ("singlestep", "full"): ("^", ":"), ("multistep", "fast"): ("s", "--")}
for col, skip in enumerate(GRIDS):
    for c in CURVES:
        sk, method, allocation, order = c
        if sk != skip:
            continue
        marker, ls = LINES[(method, allocation)]
        style = dict(marker=marker, color=f"C{order - 1}", ls=ls, label=f"{method} {allocation}, order {order}")
        axes[0, col].loglog(used[c], errors[c], **style)
        axes[1, col].plot(np.sqrt(used[c][1:] * used[c][:-1]), np.clip(local_slopes(used[c], errors[c]), -0.5, 5.5),
                          **style)
    for p in (1, 2, 3, 4):
        axes[1, col].axhline(p, color="grey", lw=0.6, ls=":")
    axes[0, col].set_title(GRIDS[skip], fontsize=9)
    axes[0, col].set_ylabel("max |x̂ − x_exact| at t = 10⁻³")
    axes[1, col].set_ylabel("local slope (clipped to [−0.5, 5.5])")
    axes[1, col].set_xscale("log")
    axes[1, col].set_ylim(-0.7, 5.7)
    axes[1, col].set_xticks(NFES, [str(n) for n in NFES])
    axes[1, col].minorticks_off()
    axes[1, col].set_xlabel("network evaluations (NFE)")
axes[0, 0].legend(fontsize=7)
fig.suptitle("DPM-Solver++ (data prediction) on Gaussian data, VP linear schedule", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# The local slopes, as computed (a method's order is what they should approach):

# %%
head = "| grid | method | allocation | order | " + " | ".join(f"{a}→{b}" for a, b in zip(NFES, NFES[1:])) + " |"
rows = [head, "|" + "---|" * (4 + len(NFES) - 1)]
for c in CURVES:
    rows.append(f"| {' | '.join(map(str, c))} | " + " | ".join(f"{v:.2f}" for v in local_slopes(used[c], errors[c]))
                + " |")
Markdown("\n".join(rows) + "\n\n(Columns name the budgets; each slope uses the NFE the run actually spent.)")

# %% [markdown]
# ## Why a measured slope is not the order
#
# "Order p" is a statement about the *leading* term of the error as the steps shrink. At a finite NFE
# the error is a sum of terms, $a N^{-p} + b N^{-p-1} + \dots$, plus terms from any step of *lower*
# order, and a fit over a finite range measures their mixture. Three things bend the lines above, each
# measured below.
#
# **1. Terms of different sign.** Where two terms of opposite sign cancel, the error passes through
# zero and the local slope swings far above or below the order. The sign of the error of the worst
# coordinate at each NFE shows where it happens:

# %%
flips = []
for c, e in signed.items():
    worst = int(np.abs(e[0]).argmax())  # follow one coordinate through the NFE
    sign = np.sign(e[:, worst])
    flips += [f"{c[0]} {c[1]} {c[2]} order {c[3]}: between {NFES[i]} and {NFES[i + 1]} NFE"
              for i in np.flatnonzero(sign[1:] != sign[:-1])]
Markdown("The error changes sign (in its worst coordinate) for: " + ("; ".join(flips) if flips else "no curve") + ".")

# %% [markdown]
# **2. Lower-order steps.** A step of order q < p has a local error $O(h^{q+1})$ that no later step
# removes, so it adds a term $\propto N^{-q}$ that wins as N → ∞ — however small its coefficient.
# Multistep DPM-Solver-3 cannot start at third order: it has no previous model values, so its first step
# is first order and its second step second order (the *warm-up*). On this problem the ODE is linear,
# so the warm-up's share of the final error is exact to compute: run the two warm-up steps alone on the
# same grid and carry their error to $t_\text{end}$ with the exact flow. The rest is what the
# third-order steps add.

# %%
NFES_LONG = NFES + [2558, 5120]
grid_of = {n: get_time_steps(sch, n, "logSNR", t_start=1.0, t_end=T_END) for n in NFES_LONG}
total, warmup = [], []
for n in NFES_LONG:
    g = grid_of[n]
    full = sample_dpm_solver(eps_fn, x1, sch, n, order=3, method="multistep", predict="data", timesteps=g)
    # the two warm-up steps alone (orders 1 and 2, as inside the order-3 run), then the exact flow to t_end
    start = sample_dpm_solver(eps_fn, x1, sch, 2, order=2, method="multistep", predict="data", timesteps=g[:3],
                              lower_order_final=False)
    carried = analytic.gaussian_flow_solution(sch, start, T_END, mu, s, t_start=float(g[2]))
    total.append((full - exact).flatten().numpy())
    warmup.append((carried - exact).flatten().numpy())
total, warmup = np.array(total), np.array(warmup)
rest = total - warmup
parts = {"total error": total, "warm-up's share": warmup, "the rest (third-order steps)": rest}

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6.5, 4.2))
for (label, e), marker in zip(parts.items(), "osd"):
    ax.loglog(NFES_LONG, np.abs(e).max(1), marker + "-", label=label)
ref = np.array(NFES_LONG, float)
for p, ls, anchor in ((2, ":", warmup), (3, "-.", rest), (4, "--", rest)):
    ax.loglog(ref, np.abs(anchor[0]).max() * (ref / ref[0]) ** -p, color="grey", lw=0.7, ls=ls,
              label=f"∝ NFE^−{p}")
ax.set_xlabel("network evaluations (NFE)")
ax.set_ylabel("max |error| at t = 10⁻³")
ax.set_title("multistep DPM-Solver-3, logSNR grid: where the error comes from", fontsize=9)
ax.legend(fontsize=7)
plt.show()

# %%
lines = ["| part | sign at each NFE | local slope over the last three doublings |", "|---|---|---|"]
for label, e in parts.items():
    worst = int(np.abs(e[0]).argmax())
    signs = "".join("+" if v > 0 else "−" for v in e[:, worst])
    slopes = local_slopes(NFES_LONG, np.abs(e).max(1))[-3:]
    lines.append(f"| {label} | {signs} | {', '.join(f'{v:.2f}' for v in slopes)} |")
Markdown("\n".join(lines))

# %% [markdown]
# Reading the figure: the warm-up's share falls as $N^{-2}$, as a first-order step's must, but it starts
# far below the rest. In the exact data-prediction step
#
# $$
# x_t = \frac{\sigma_t}{\sigma_s} x_s + \sigma_t \int_{\lambda_s}^{\lambda_t} e^{\lambda} \hat x_0(\lambda) \, d\lambda
# $$
#
# the model's value enters with the weight $\sigma_t e^{\lambda_t} = \alpha_t$, and the warm-up steps sit at
# $t \approx 1$, where $\alpha_t$ is small. The rest falls faster than $N^{-3}$ over most of the range (an $N^{-4}$ term dominates it) and its local
# slope comes down towards 3. The two parts have opposite signs, so the total error passes through zero
# where they cross, and beyond that the warm-up's $N^{-2}$ term *is* the error: with its first-order start,
# multistep DPM-Solver-3 is asymptotically second order, on this problem only at errors far below what
# sampling needs.

# %%
alpha_1 = float(sch.alpha(torch.tensor(1.0, dtype=F64)))
fit = {c: -np.polyfit(np.log(used[c][:5]), np.log(errors[c][:5]), 1)[0] for c in CURVES}
Markdown(f"$\\alpha_t$ at t = 1: {alpha_1:.4f}. One straight-line fit over NFE {NFES[0]}–{NFES[4]} gives "
         f"third-order slopes of "
         f"{fit[('logSNR', 'singlestep', 'fast', 3)]:.2f} (singlestep) and "
         f"{fit[('logSNR', 'multistep', 'fast', 3)]:.2f} (multistep) on "
         f"the logSNR grid: the first mixes the sign change of point 1 into its fit, the second is the rest's "
         "$N^{-4}$ term.")

# %% [markdown]
# The singlestep "fast" allocation puts its lower-order step at the *end*, where λ moves fastest. With
# N ≡ 2 (mod 3) that last step is second order (local error $O(h^3)$, no harm to a third-order method);
# with N ≡ 0 or 1 (mod 3) the run ends on a **first-order** step. The local slopes of singlestep
# DPM-Solver-3 on the logSNR grid, for each residue of N mod 3:

# %%
lines = ["| N mod 3 | last two step orders | NFE | local slopes |", "|---|---|---|---|"]
for r in (2, 0, 1):
    nfes = [n + (r - n) % 3 for n in NFES]  # the next NFE with this residue
    err = [np.abs(signed_error(n, 3, "singlestep", "logSNR").numpy()).max() for n in nfes]
    lines.append(f"| {r} | {singlestep_orders(nfes[-1], 3)[-2:]} | {', '.join(map(str, nfes))} | "
                 f"{', '.join(f'{v:.2f}' for v in local_slopes(nfes, err))} |")
Markdown("\n".join(lines) + f"\n\nDiMR's 250-NFE sampler is in the class N ≡ {250 % 3} (mod 3): it ends with "
         f"orders {singlestep_orders(250, 3)[-2:]}, so as N grows its error falls like the table's row for that "
         "class, not like the N ≡ 2 row.")

# %% [markdown]
# **3. The grid.** The error expansion is in powers of the step in λ, and it describes the error only
# once those steps are short. The time-uniform grid's last steps are long in λ, so its lines approach
# their asymptotic slopes at larger NFE than the logSNR grid's (the figure). The longest λ-step of the
# solver's steps at each NFE of the figure, on both grids (compare DiMR's own samplers in the table of
# the previous section):

# %%
lines = ["| NFE | " + " | ".join(str(n) for n in NFES) + " |", "|---|" + "---|" * len(NFES)]
for skip in GRIDS:
    lines.append(f"| {skip} | " + " | ".join(
        f"{longest_lambda_step(sch, n, skip, T_END):.2f}" for n in NFES) + " |")
Markdown("\n".join(lines))

# %% [markdown]
# Rounding is not among the causes: everything here runs in float64, and the smallest error measured
# is far above float64's resolution:

# %%
smallest = min(min(e.min() for e in errors.values()), np.abs(total).max(1).min())
Markdown(f"smallest error measured: {smallest:.1e}; float64 machine epsilon: {torch.finfo(F64).eps:.1e}.")

# %% [markdown]
# One more finding of this reproduction: the published multistep third-order update (DPM-Solver's
# reference code and diffusers) weights its second difference at half its value and converges at second
# order only; `dimr` uses the corrected Taylor coefficient by default (`multistep_third="taylor"`) and
# keeps the published one as `"reference"` (Exercise 2 measures it). The official DiMR sampler is
# singlestep, which this does not affect.

# %% [markdown]
# ## Few evaluations on the latent schedule: the allocation and the grid
# The slopes describe many short steps. DiMR's latent models (DiMR-XL/2R, DiMR-XL/3R) sample on the SD
# scaled-linear schedule with the official sampler at their recipe's number of steps. On the same Gaussian
# data as above, now on that schedule and with the same end time, DPM-Solver-3 with a small budget:

# %%
latent = SDScaledLinearSchedule()
latent_eps = analytic.gaussian_eps_fn(latent, mu, s)
latent_exact = analytic.gaussian_flow_solution(latent, x1, T_END, mu, s)
OFFICIAL_NFE = get_preset("DiMR-XL/2R").recipe.sampling_steps  # the official latent configs' steps
FEW = 12  # a small budget, divisible by 3 so that both allocations spend all of it


def latent_error(nfe, skip="time_uniform", allocation="fast"):
    """max |x̂ − x_exact| at t = 10⁻³ of data-prediction DPM-Solver-3 on the latent schedule."""
    x = sample_dpm_solver(latent_eps, x1, latent, nfe, order=3, predict="data", skip=skip, t_end=T_END,
                          allocation=allocation)
    return float((x - latent_exact).abs().max())


lines = [f"| grid | allocation | step orders at {FEW} NFE | max error |", "|---|---|---|---|"]
for skip in GRIDS:
    for allocation in ALLOCATIONS:
        lines.append(f"| {skip} | {allocation} | {step_orders(FEW, 3, 'singlestep', allocation)} | "
                     f"{latent_error(FEW, skip, allocation):.1e} |")
fast_orders = step_orders(FEW, 3, "singlestep", "fast")
Markdown("\n".join(lines) + f"\n\nThe \"fast\" allocation ends with steps of orders {fast_orders[-2:]}, where λ "
         f"moves fastest; the full-order one takes {FEW // 3} third-order steps. The test suite checks that the "
         "full-order solve calls the model where U-ViT's and DiMR's `method='singlestep'` does, and that it beats "
         "\"fast\" here.")

# %% [markdown]
# Now every budget: the official sampler (time-uniform grid, "fast") against the same solver on a
# logSNR-uniform grid, with each allocation. The dashed line is the official sampler's error at its
# recipe's NFE; the dotted line marks the smallest budget from which the full-order logSNR solve stays at
# or below it for every budget tried.

# %%
SMALL = np.arange(3, 121)
official = {n: latent_error(n) for n in list(SMALL) + [150, 200, OFFICIAL_NFE]}
ours = {a: {evaluations(n, 3, "singlestep", a): latent_error(n, "logSNR", a) for n in SMALL} for a in ALLOCATIONS}
target = official[OFFICIAL_NFE]
full = ours["full"]
# the smallest NFE from which every larger budget tried is at or below the target (not a lucky dip)
above = [n for n, e in full.items() if e > target]
match = min(n for n in full if n > max(above, default=0))

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7.5, 4.6))
ax.loglog(list(official), list(official.values()), "k.-", ms=3, lw=0.8,
          label='official: time-uniform, "fast" (DiMR\'s sampler)')
ax.loglog(list(ours["fast"]), list(ours["fast"].values()), "C1.-", ms=3, lw=0.8, label='logSNR-uniform, "fast"')
ax.loglog(list(full), list(full.values()), "C0o-", ms=3, lw=1.2, label="logSNR-uniform, full order (ours)")
ax.axhline(target, color="k", ls="--", lw=0.8, label=f"official sampler at {OFFICIAL_NFE} NFE")
ax.axvline(match, color="C0", ls=":", lw=1.0, label=f"{match} NFE: full order on logSNR stays below the dashed line")
ax.set_xlabel("network evaluations (NFE)")
ax.set_ylabel("max |x̂ − x_exact| at t = 10⁻³")
ax.set_title("DPM-Solver++ order 3 on Gaussian data, SD scaled-linear (latent) schedule", fontsize=9)
ax.legend(fontsize=7)
plt.show()

# %%
Markdown(f"The official sampler's error at {OFFICIAL_NFE} NFE is {target:.1e}. Full-order DPM-Solver-3 on the "
         f"logSNR-uniform grid is at or below it at every budget from **{match} NFE** to {max(full)} (the largest "
         f"tried), {OFFICIAL_NFE / match:.0f} times fewer network evaluations; at {match} NFE the official sampler's "
         f"error is {official[match]:.1e}. The \"fast\" allocation on the same grid rises and falls with NFE mod 3 "
         f"(its last one or two steps, of orders 1 and 2, each span a whole step of the coarser grid): its largest "
         f"error from {match} NFE on is {max(e for n, e in ours['fast'].items() if n >= match):.1e}.")

# %% [markdown]
# The command line offers this grid and allocation: `python -m dimr sample --checkpoint RUN --vae DIR
# --skip logSNR --allocation full --steps N` (the defaults stay the official sampler's). What the figure
# does not say is how many steps a trained network needs: its own error is not in this problem (see
# *Claim and evidence* below).

# %% [markdown]
# ## Claim and evidence
#
# The paper makes no claim about the sampler: it is part of the setup. Table 4 (Appendix C) names it and
# its number of steps for every DiMR model, transcribed in `dimr.presets` (`recipe.sampler`,
# `recipe.sampling_steps`) and rendered by `dimr.reproduction.tables.table4()`:

# %% tags=["remove-input"]
from dimr.reproduction import tables

t4 = tables.table4()
keep = [r for r in t4.rows if r["setting"] in ("Image Resolution", "Sampler", "Sampling steps", "Noise schedule")]
Markdown("\n".join(["| " + " | ".join(t4.columns) + " |", "|" + "---|" * len(t4.columns)]
                   + ["| " + " | ".join(r[c] for c in t4.columns) + " |" for r in keep]))

# %% [markdown]
# The paper does not give the solver's order, its grid, its end time or data- versus noise-prediction;
# the official code does (docs/official-code.md §6), and `dimr.sample` follows it by default. This
# repository's evidence for the sampler is this chapter: the solver's error against the exact ODE
# solution of a problem where that solution is known, its measured slopes, and the cause of each
# departure from the nominal order, each computed above. The claims study (`dimr.reproduction.study`) samples every
# configuration with the same sampler, so the sampler is held fixed in every comparison there:

# %% tags=["remove-input"]
import json
from pathlib import Path

from dimr.reproduction import study

samplers = {}
for (slug, seed), rec in study.evaluated(study.collect()).items():
    scale = json.loads((Path(rec["run"]["path"]) / "evaluation.json").read_text(encoding="utf-8"))["scale"]
    samplers.setdefault(f"{scale['sampler']}, {scale['sampler_steps']} steps", []).append(f"{slug} s{seed}")
Markdown("\n".join(f"- {k}: {len(v)} evaluations" for k, v in samplers.items())
         or "No study evaluation is recorded yet.")

# %% [markdown]
# What this cannot say: the Gaussian problem has a smooth, exactly known predictor; a trained network
# adds its own error, which at 50 or 250 NFE usually exceeds the solver's, and FID responds to both.
# Nothing here measures how many steps a DiMR model needs for its FID.

# %% [markdown]
# ## Takeaways
# - DiMR samples with singlestep DPM-Solver++ of order 3 on a **time-uniform** grid; its steps are
#   short in t and long in λ near t = 0, and λ is the variable the solver's error expands in.
# - A solver's order describes the error only as the steps shrink; measure it with local slopes against
#   an exact solution, and read the slope where it has settled, not from one fit over any range.
# - Lower-order steps set the asymptotic order: the multistep warm-up and a "fast" allocation that ends on
#   a first-order step both leave an $N^{-2}$ term, which shows once the other terms have fallen below it.
# - Error terms of opposite sign cancel somewhere; there the local slope swings far from the order.
# - With few evaluations, where the lower-order steps go matters: the full-order allocation on a logSNR-uniform
#   grid reaches the official sampler's error on the latent schedule with a fraction of its evaluations, on a
#   problem without network error.

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Change the solver order. Predict the slope of singlestep DPM-Solver-**2** on the logSNR
# grid, then measure it over NFE 80, 160, 320, 640 (even, so every step is second order).

# %% tags=["hide-cell", "solution"]
# Solution 1
nfes = [80, 160, 320, 640]
err = [np.abs(signed_error(n, 2, "singlestep", "logSNR").numpy()).max() for n in nfes]
slope = -np.polyfit(np.log(nfes), np.log(err), 1)[0]
print(f"singlestep order 2, logSNR grid: error ∝ NFE^-{slope:.2f}")
assert 1.8 < slope < 2.2

# %% [markdown]
# **Exercise 2.** Measure the published multistep third-order update, `multistep_third="reference"`, on
# the logSNR grid over NFE 80 to 640. Which order does it reach?

# %% tags=["hide-cell", "solution"]
# Solution 2
nfes = [80, 160, 320, 640]
err = [np.abs(signed_error(n, 3, "multistep", "logSNR", multistep_third="reference").numpy()).max() for n in nfes]
slope = -np.polyfit(np.log(nfes), np.log(err), 1)[0]
print(f"multistep order 3, reference coefficient: error ∝ NFE^-{slope:.2f} (second order)")
assert 1.7 < slope < 2.3

# %% [markdown]
# **Exercise 3.** *Discuss.* The official DiMR sampler keeps the "fast" allocation at its recipe's NFE,
# although the full-order one is far more accurate at a small budget. Why can that choice be harmless at
# the recipe's NFE, and when would you change it? Argue from the two allocations' errors at a small budget
# and at the recipe's.

# %% tags=["hide-cell", "solution"]
# Solution 3
few = {a: latent_error(FEW, "time_uniform", a) for a in ALLOCATIONS}
many = {a: latent_error(OFFICIAL_NFE - OFFICIAL_NFE % 3, "time_uniform", a) for a in ALLOCATIONS}
print(f"{FEW} NFE: fast/full = {few['fast'] / few['full']:.0f}×; "
      f"{OFFICIAL_NFE - OFFICIAL_NFE % 3} NFE: fast/full = {many['fast'] / many['full']:.1f}×")
# what the discussion rests on: the allocation matters most where the steps in λ are long (few NFE)
assert few["fast"] / few["full"] > many["fast"] / many["full"]
assert few["fast"] > few["full"]

# %% [markdown]
# **Exercise 4.** *Change a line, run, observe.* In the cell that measures every budget, change
# `official = {n: latent_error(n) for n in list(SMALL) + [150, 200, OFFICIAL_NFE]}` so that the official
# sampler uses the logSNR grid (`latent_error(n, "logSNR")`), rerun it, and predict first: does the
# smallest matching budget (`match`) get larger or smaller, and why?

# %% tags=["hide-cell", "solution"]
# Solution 4
official_logsnr = latent_error(OFFICIAL_NFE, "logSNR")
above_logsnr = [n for n, e in full.items() if e > official_logsnr]
match_logsnr = min((n for n in full if n > max(above_logsnr, default=0)), default=None)
print(f"the official sampler on the logSNR grid at {OFFICIAL_NFE} NFE: {official_logsnr:.1e} "
      f"(time-uniform: {target:.1e}); our full-order solve matches it from {match_logsnr} NFE (was {match})")
# a better reference is harder to match: the target error falls and the matching budget does not fall
assert official_logsnr < target
assert match_logsnr is None or match_logsnr >= match
