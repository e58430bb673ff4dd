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
# # Evidence: the paper's claims at laptop scale
#
# The paper argues from ImageNet FIDs of models trained for days on clusters, one run each. This chapter
# tests the same claims on models small enough to train on two CPU cores, where distortion can be
# measured exactly: the offline shapes are drawn from exact templates, so every sample's mean 1 − IoU
# against its class template is a *measured* distortion, not a guess. How a claim is decided was
# declared in code (`dimr.reproduction.study`) before the runs that decide it:
#
# * every configuration trains from scratch for the same number of optimiser steps of the CPU-scale
#   recipe, once per seed (the seed sets initialisation, data order, noise and the evaluation's
#   samples), and is evaluated on the same number of samples; comparisons are **paired** by seed;
# * each claim has **one primary metric** (mean 1 − IoU on the shapes; FID on Fashion-MNIST, which has
#   no templates); its verdict is the two-sided paired t test of the per-seed differences, corrected by
#   **Holm's method** at the declared α across the paper's claims (and, separately, across the questions
#   this study adds, marked †). Other metrics are shown, and their own intervals computed, but they decide nothing;
# * **supported** / **contradicted**: the adjusted test rejects "no difference" and the mean points that
#   way; **inconclusive (underpowered)**: it does not, and the observed effect would need more seeds
#   than were run (the power analysis below says how many); C2, which claims TD-LN *matches* adaLN-Zero,
#   is also tested for equivalence (two one-sided tests within a declared margin);
# * a seed whose training diverged counts as a **failure** of its configuration (the metric's worst
#   value), said beside the claim; a record whose settings differ from the study's counts nowhere.
#
# What this scale can show: whether a design choice helps a tiny model learn the *shape* of its data in
# minutes. What it cannot: whether it helps at 300k iterations on ImageNet; the paper's FIDs are shown
# beside each claim for that, and never compared with the numbers here.

# %% tags=["remove-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from dimr.reproduction import evidence, paper, study
from dimr.reproduction.evidence import arm_interval, arm_label, format_with_n
from dimr.presets import get_preset
from dimr.profile import time_conditioning_params
from dimr.nn import build_model
from dimr.provenance import repo_root

root = repo_root()
records = study.collect(root / "runs")
results = study.scorecard(records)
done, left = study.progress(records)
recipe = get_preset("DiMR-T/3R").recipe
display(Markdown(
    evidence.scale_line(records) + f" **The recipe**: batch {recipe.batch_size}, prediction target "
    f"{recipe.prediction}, learning rate {recipe.lr:g}, CFG w = {1 + recipe.cfg_scale:g} (the Experiments chapter "
    f"lists every difference from Table 4). **Recorded**: {len(done)} of {len(done) + len(left)} planned "
    "(configuration, length, seed) outcomes."))

# %% [markdown]
# ## Scorecard
#
# One line per claim, in the paper's order, then the questions this study adds (†). The difference is
# treatment − baseline on the primary metric, signed so that **positive means better in the paper's
# direction**, with its 95% interval; "seeds" is how many paired seeds the verdict rests on, and in
# brackets how many a test at the corrected level would need for 80% power at the effect observed so far.

# %% tags=["remove-input"]
display(Markdown(evidence.scorecard_table(results)))

# %% [markdown]
# ## One change at a time: which component carries the distortion reduction?
#
# Table 2 changes several things per row, and U-ViT-T/4 → DiMR-T/3R (C1) changes all of them at once.
# Beyond the paper, the study takes one component at a time out of DiMR-T/3R and trains the rest
# unchanged (`DiMR-T/3R-adaLN`, `DiMR-T/3R-MLP`, Table 2 row 5 for the loss, and `DiMR-T/1R`: one
# branch deepened to about DiMR-T/3R's GMACs). Each line is how much lower mean 1 − IoU is with the
# component than without it.

# %% tags=["remove-input"]
display(Markdown(evidence.leave_one_out(results)))

# %% [markdown]
# ## The claims, one by one
#
# Each claim with its declared verdict, then every metric's paired difference (descriptive: each with
# its own unadjusted interval). Where the paper prints the comparison (Table 2, ImageNet 64×64, FID-50K),
# its two FIDs are shown beside it.

# %% tags=["remove-input"]
for r in results:
    display(Markdown(f"### {r.claim.key}{' †' if r.claim.beyond else ''}: {r.claim.title}\n\n"
                     + evidence.claim_block(r.claim, records, r, title=False)))

# %% [markdown]
# ### C2's other half: what time conditioning costs
#
# §4.2 argues that TD-LN conditions on time with a fraction of adaLN-Zero's parameters. Counted on this
# repository's models (`dimr.profile.time_conditioning_params`: adaLN-Zero's modulation MLPs and their
# timestep embedder, or TD-LN's time-dependent parameters), at CPU scale and at the paper's scale:

# %% tags=["remove-input"]
rows = ["| Table 2 row | time conditioning | CPU scale: time params / all | paper scale: time params / all |",
        "|---|---|---|---|"]
for r in range(1, 7):
    counts = []
    for name in (f"Table2-T/row{r}", f"Table2/row{r}"):
        model = build_model(get_preset(name).model, device="meta")
        counts.append((time_conditioning_params(model), sum(p.numel() for p in model.parameters())))
    kind = get_preset(f"Table2/row{r}").model.time_conditioning
    rows.append(f"| {r} | {kind} | " + " | ".join(f"{a / 1e6:.3f}M / {b / 1e6:.2f}M" for a, b in counts) + " |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## How many seeds a claim needs
#
# From the recorded paired differences: the mean and seed-to-seed spread of each claim's primary metric,
# and the number of paired seeds at which a two-sided t test at the strictest level Holm applies (α/m,
# m the tests in the claim's family) would detect that effect with 80% probability. A claim with fewer
# seeds than that is *underpowered*: "inconclusive" then says more about the seeds than about the claim.

# %% tags=["remove-input"]
display(Markdown(evidence.power_table(results, records)))

# %% [markdown]
# ## Beyond the study's length: learning curves and equal compute
#
# The study's runs are short (the line below says how short). Does the ranking hold as training goes on?
# Some seeds of some configurations train on, keeping a snapshot at each length of the curve; every point
# below is the mean over those same seeds (95% interval), so each curve follows the same runs. U-ViT-T/4's
# curve also has a point at the step at which it has used DiMR-T/3R's training compute (C1-matched in the
# scorecard; the ratio is the two models' GMACs).

# %% tags=["remove-input"]
from dimr.train import TrainConfig

passes = study.STUDY_STEPS * recipe.batch_size / TrainConfig().dataset_size
display(Markdown(f"The study trains {study.STUDY_STEPS:,} steps, {passes:.1f} passes over the {TrainConfig().dataset_size:,} "
                 f"shapes; seeds {', '.join(map(str, study.CURVE_SEEDS))} of the configurations below go on to "
                 f"{study.CURVE_STEPS[-1]:,} steps, evaluated at {', '.join(f'{k:,}' for k in study.CURVE_STEPS)}."))
curves = {slug: evidence.curve(records, slug) for slug in ("row1", "row6", "uvit-t2", "row5", "loo-adaln", "loo-mlp",
                                                           "loo-1branch")}
curves = {k: v for k, v in curves.items() if v}
display(Markdown(f"U-ViT-T/4 reaches DiMR-T/3R's training compute of {study.STUDY_STEPS:,} steps at "
                 f"{study.matched_steps():,} steps: the GMACs ratio is {study.compute_ratio():.3f}."))
if curves:
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for slug, points in curves.items():
        xs = [k for k, _ in points]
        ax.errorbar(xs, [iv.mean for _, iv in points], yerr=[0 if iv.n < 2 else iv.half for _, iv in points],
                    marker="o", capsize=3, label=f"{arm_label(slug)} (n = {points[-1][1].n})")
    ax.set_xscale("log")
    ax.set_xlabel("optimiser steps (log)")
    ax.set_ylabel("mean 1 − IoU (lower is better)")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(f"Learning curves on the shapes, seeds {', '.join(map(str, study.CURVE_SEEDS))}", fontsize=9)
    fig.tight_layout()
    plt.show()
else:
    display(Markdown("No learning-curve run is recorded yet (see *What is left*)."))

# %% [markdown]
# ## What has been run
#
# One row per configuration; a ✓ for each seed whose evaluation is recorded under `runs/` and agrees with
# the study's settings, "diverged at step N" for a seed whose training loss stopped being finite, a ✗ for
# a record the study refuses, a · for a seed not run yet, and a blank where the configuration has no such
# seed. The campaign runs with `python scripts/campaign.py` (one thread per run, never more runs than
# cores; it skips what is recorded and resumes an interrupted training), so what is left can be run on any
# machine and committed.

# %% tags=["remove-input"]
rows = ["| configuration | preset | data | GMACs / image | " + " | ".join(f"{s}" for s in study.SEEDS) + " |",
        "|---|---|---|---|" + "---|" * len(study.SEEDS)]
gmacs, bad = {}, study.rejected(records)
for slug, conf in study.CONFIGS.items():
    gmacs[slug] = paper.profile_row(conf.preset)["gmacs"]
    lost = study.diverged_seeds(records, slug)

    def mark(s: int) -> str:
        if s not in conf.seeds:
            return ""
        if s in lost:
            return f"diverged at step {lost[s]:,}"
        return "✗" if (slug, s) in bad else "✓" if (slug, s) in records else "·"

    rows.append(f"| {conf.label or slug} | `{conf.preset}` | {conf.dataset} | {gmacs[slug]:.2f} | "
                + " | ".join(mark(s) for s in study.SEEDS) + " |")
display(Markdown("Seeds 0–7 in the columns.\n\n" + "\n".join(rows)))

# %% [markdown]
# ## The records behind it
#
# Which code each record ran, what a valid record carries a note for, and what the study refused. The
# seeds 0–2 of the first configurations were recorded while the code changed under them (in speed, not in
# what it computes, by intent); `scripts/campaign.py` first reruns one of them (DiMR-T/3R, seed 0) on the
# campaign's commit, and every later record comes from that one commit.

# %% tags=["remove-input"]
display(Markdown(evidence.records_table(records)))

# %% [markdown]
# ### The same run on two commits
#
# Whether the code that trained the first seeds computes what the campaign's commit computes: one
# configuration and seed run again with every setting the same.

# %% tags=["remove-input"]
display(Markdown(evidence.recheck(records)))

# %% [markdown]
# ## Every configuration, mean ± 95% interval over its seeds
#
# Intervals are clipped to what the metric can take (an accuracy stays within [0, 1]; a clipped interval
# is written [low, high]). Diverged seeds are left out of these means (and counted as failures in the
# claims above).

# %% tags=["remove-input"]
names = list(study.METRICS)
rows = ["| configuration | " + " | ".join(f"{study.METRICS[m].label} {'↑' if study.METRICS[m].higher_is_better else '↓'}"
                                          for m in names) + " |", "|---|" + "---|" * len(names)]
for slug, conf in study.CONFIGS.items():
    rows.append(f"| {conf.label or slug} | " + " | ".join(format_with_n(arm_interval(records, slug, m)) for m in names)
                + " |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ### Why TD-LN: how many directions adaLN-Zero uses (Fig. 3/6)
#
# The paper motivates TD-LN with a PCA of DiT-XL/2's adaLN-Zero scales and shifts along the sampling
# trajectory: two principal components explain most of their variance (App. E). The evaluation of
# every trained adaLN-Zero configuration here asks the same question of its blocks (the
# {doc}`adaLN-Zero PCA chapter </notebooks/adaln_pca>` shows the procedure):

# %% tags=["remove-input"]
display(Markdown(evidence.pca_evidence(records)))

# %% [markdown]
# ## Quality against compute
#
# The U-ViT patch-size sweep (patch 4, 2, 1: 64, 256 and 1,024 tokens) and the two DiMR sizes, each
# point a configuration's mean over its seeds with its 95% interval, against the multiply-accumulates
# of one forward pass (training costs about three times that per image). A model is better towards the
# lower left of the distortion plots and the upper left of the accuracy plot.

# %% tags=["remove-input"]
sweep = ["row1", "uvit-t2", "uvit-t1", "dimr-t2r", "row6"]
shown = ["distortion_mean", "distortion_rate", "accuracy"]
if any(arm_interval(records, s, "accuracy").n for s in sweep):
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.6))
    for ax, metric in zip(axes, shown):
        for slug in sweep:
            iv = arm_interval(records, slug, metric)
            if iv.n == 0:
                continue
            err = [[0.0], [0.0]] if iv.n < 2 else [[iv.mean - iv.lo], [iv.hi - iv.mean]]
            family = "tab:red" if get_preset(study.CONFIGS[slug].preset).model.arch == "dimr" else "tab:blue"
            ax.errorbar(gmacs[slug], iv.mean, yerr=err, fmt="o", color=family, capsize=3)
            ax.annotate(study.CONFIGS[slug].label, (gmacs[slug], iv.mean), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("GMACs per forward pass (log)", fontsize=8)
        ax.set_title(study.METRICS[metric].label, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle("U-ViT (blue) and DiMR (red) on the shapes; mean ± 95% interval over seeds", fontsize=9)
    fig.tight_layout()
    plt.show()
else:
    display(Markdown("No configuration of the sweep is recorded yet."))

# %% [markdown]
# ## Samples side by side
#
# U-ViT-T/4 (Table 2 row 1) and DiMR-T/3R (row 6) with the same seed, the same labels and the same
# noise: one row per class. Beneath each, the samples the shapes classifier flags (p(class) < 0.2) —
# the analogue of the paper's Fig. 5.

# %% tags=["remove-input"]
valid = study.evaluated(records)
seed = next((s for s in study.SEEDS if all((c, s) in valid for c in ("row1", "row6"))), None)
if seed is None:
    display(Markdown("Rows 1 and 6 are not both recorded for any seed yet."))
else:
    fig, axes = plt.subplots(2, 2, figsize=(9, 9.5))
    for col, slug in enumerate(("row1", "row6")):
        folder = records[(slug, seed)]["run"]["path"]
        for row, name in enumerate(("grid.png", "flagged_shapes_classifier.png")):
            ax = axes[row][col]
            path = f"{folder}/{name}"
            try:
                ax.imshow(plt.imread(path))
            except FileNotFoundError:
                ax.text(0.5, 0.5, "nothing flagged" if row else "no grid", ha="center")
            ax.set_axis_off()
            ax.set_title(f"{get_preset(study.CONFIGS[slug].preset).name}, seed {seed}: "
                         f"{'samples' if row == 0 else 'flagged'}", fontsize=8)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## What is left
#
# Computed from the records: every planned (configuration, seed) without a valid outcome, by
# configuration. `python scripts/campaign.py --workers N` runs them in the order of value (`--dry-run`
# lists it); one of them alone runs with
# `python -m dimr reproduce --profile small --only <training> --only <evaluation>`.

# %% tags=["remove-input"]
display(Markdown(f"U-ViT-T/1 (1,024 tokens) costs {gmacs['uvit-t1'] / gmacs['row6']:.0f}× DiMR-T/3R's "
                 "multiply-accumulates per image: its runs are meant for a GPU."))
if left:
    by_conf: dict[str, set[int]] = {}
    for name, s in left:
        by_conf.setdefault(name.partition("@")[0], set()).add(s)
    display(Markdown("\n".join(f"* {study.CONFIGS[slug].label or slug}: seeds {', '.join(map(str, sorted(seeds)))}"
                               for slug, seeds in by_conf.items())))
else:
    display(Markdown("Nothing: every configuration has every seed recorded."))
