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
# against its class template is a *measured* distortion, not a guess. Every configuration is trained
# with several seeds, and a claim is called **supported** only when the 95% interval of the paired
# difference says so (`dimr.study`):
#
# * each configuration trains from scratch for the same number of optimiser steps of the CPU-scale
#   recipe, once per seed (the seed sets initialisation, data order, noise and the evaluation's
#   samples), and is evaluated on the same number of samples;
# * a claim "B beats A" is judged per metric on the per-seed differences B − A (signed so that positive
#   means better in the paper's direction): **supported** when the whole 95% Student-t interval is above
#   0, **contradicted** when it is below 0, **inconclusive** when it contains 0.
#
# What this scale can show: whether a design choice helps a tiny model learn the *shape* of its data in
# minutes. What it cannot: whether it helps at 300k iterations on ImageNet; the paper's FIDs are shown
# beside each claim for that, and never compared with the numbers here.

# %% tags=["remove-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from dimr import study, tables
from dimr.book import claim_block, format_with_n, pca_evidence
from dimr.presets import get_preset
from dimr.profile import time_conditioning_params
from dimr.nn import build_model
from dimr.runs import repo_root

root = repo_root()
records = study.collect(root / "runs")
done, left = study.progress(records)
recipe = get_preset("DiMR-T/3R").recipe
display(Markdown(
    f"**Scale**: {study.STUDY_STEPS:,} optimiser steps at batch {recipe.batch_size} "
    f"({study.STUDY_STEPS * recipe.batch_size:,} training images, {study.STUDY_AMP} autocast) of the CPU-scale "
    f"recipe (prediction target "
    f"{recipe.prediction}, learning rate {recipe.lr:g}; the Experiments chapter lists every difference from "
    f"Table 4), seeds {', '.join(map(str, study.SEEDS))}; {study.STUDY_SAMPLES:,} samples per evaluation with "
    f"{recipe.sampling_steps} DPM-Solver steps and CFG w = {1 + recipe.cfg_scale:g}. "
    f"**Recorded**: {len(done)} of {len(done) + len(left)} configuration × seed runs."))

# %% [markdown]
# ## What has been run
#
# One row per configuration; a ✓ for each seed whose evaluation is recorded under `runs/`, and
# "diverged at step N" for a seed whose training loss stopped being finite — a result of the recipe at
# that seed, recorded like any other, which leaves that configuration's means with fewer seeds. The campaign
# runs with `python -m dimr reproduce --profile small --only <experiments>` (it skips what is recorded and
# resumes an interrupted training), so what is left can be run on any machine and committed.

# %% tags=["remove-input"]
rows = ["| configuration | preset | data | GMACs / image | " + " | ".join(f"seed {s}" for s in study.SEEDS) + " |",
        "|---|---|---|---|" + "---|" * len(study.SEEDS)]
gmacs = {}
for slug, conf in study.CONFIGS.items():
    gmacs[slug] = tables.profile_row(conf.preset)["gmacs"]
    lost = study.diverged_seeds(records, slug)
    marks = " | ".join(f"diverged at step {lost[s]:,}" if s in lost else "✓" if (slug, s) in records else "·"
                       for s in study.SEEDS)
    rows.append(f"| {conf.label or slug} | `{conf.preset}` | {conf.dataset} | {gmacs[slug]:.2f} | {marks} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## Every configuration, mean ± 95% interval over its seeds

# %% tags=["remove-input"]
def interval(slug: str, metric: str) -> study.Interval:
    return study.t_interval(list(study.metric_values(records, slug, metric).values()))


names = list(study.METRICS)
rows = ["| configuration | " + " | ".join(f"{study.METRICS[m].label} {'↑' if study.METRICS[m].higher_is_better else '↓'}"
                                          for m in names) + " |", "|---|" + "---|" * len(names)]
for slug, conf in study.CONFIGS.items():
    rows.append(f"| {conf.label or slug} | " + " | ".join(format_with_n(interval(slug, m)) for m in names) + " |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## The claims
#
# Each claim compares two configurations seed by seed. The difference column is treatment − baseline,
# signed so that **positive means better in the paper's direction** (lower distortion, lower FID,
# higher accuracy), with its 95% interval; the verdict is computed from that interval. Where the paper
# prints the comparison (Table 2, ImageNet 64×64, FID-50K), its two FIDs are shown beside it.

# %% tags=["remove-input"]
for claim in study.CLAIMS:
    display(Markdown(claim_block(claim, records)))

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
# ### Why TD-LN: how many directions adaLN-Zero uses (Fig. 3/6)
#
# The paper motivates TD-LN with a PCA of DiT-XL/2's adaLN-Zero scales and shifts along the sampling
# trajectory: two principal components explain most of their variance (App. E). The evaluation of
# every trained adaLN-Zero configuration here asks the same question of its blocks (the
# {doc}`adaLN-Zero PCA chapter </notebooks/adaln_pca>` shows the procedure):

# %% tags=["remove-input"]
display(Markdown(pca_evidence(records)))

# %% [markdown]
# ## Quality against compute (C1)
#
# The U-ViT patch-size sweep (patch 4, 2, 1: 64, 256 and 1,024 tokens) and the two DiMR sizes, each
# point a configuration's mean over its seeds with its 95% interval, against the multiply-accumulates
# of one forward pass (training costs about three times that per image). A model is better towards the
# lower left of the distortion plots and the upper left of the accuracy plot.

# %% tags=["remove-input"]
sweep = ["row1", "uvit-t2", "uvit-t1", "dimr-t2r", "row6"]
shown = ["distortion_rate", "distortion_mean", "accuracy"]
if any((s, seed) in records for s in sweep for seed in study.SEEDS):
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.4))
    for ax, metric in zip(axes, shown):
        for slug in sweep:
            iv = interval(slug, metric)
            if iv.n == 0:
                continue
            err = 0.0 if iv.n < 2 else iv.half
            family = "tab:red" if get_preset(study.CONFIGS[slug].preset).model.arch == "dimr" else "tab:blue"
            ax.errorbar(gmacs[slug], iv.mean, yerr=err, fmt="o", color=family, capsize=3)
            ax.annotate(study.CONFIGS[slug].label, (gmacs[slug], iv.mean), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("GMACs per forward pass (log)")
        ax.set_title(study.METRICS[metric].label, fontsize=9)
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
seed = next((s for s in study.SEEDS if all(records.get((c, s), {}).get("values") for c in ("row1", "row6"))), None)
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
# The list below is computed from the records: every configuration × seed without a complete
# evaluation, with the command that runs it.

# %% tags=["remove-input"]
display(Markdown(f"U-ViT-T/1 (1,024 tokens) costs {gmacs['uvit-t1'] / gmacs['row6']:.0f}× DiMR-T/3R's "
                 "multiply-accumulates per image: its runs are meant for a GPU."))
if left:
    by_conf: dict[str, list[int]] = {}
    for slug, s in left:
        by_conf.setdefault(slug, []).append(s)
    display(Markdown("\n".join(f"* {study.CONFIGS[slug].label or slug}: seeds {', '.join(map(str, seeds))} — "
                               f"`python -m dimr reproduce --profile small --only "
                               f"{','.join(n for s in seeds for n in study.experiment_names(slug, s))}`"
                               for slug, seeds in by_conf.items())))
else:
    display(Markdown("Nothing: every configuration has every seed recorded."))
