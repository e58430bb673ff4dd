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
# # Evaluation run
#
# A parameterised evaluation of one checkpoint, executed by papermill
# (`python -m dimr reproduce --profile P`); the same as `python -m dimr evaluate`. It samples with the
# checkpoint's recipe, computes FID / IS / precision / recall (and KID) through torch-fidelity, runs the
# paper's classifier-based rejection (§5.3) and, on the offline shapes, the geometric distortion
# measure, then hands every number to the run record.
#
# **Read the labels.** On the offline datasets the features come from a small classifier trained on
# that dataset, so a number here is "FID (shapes classifier)", never an ImageNet FID; Inception-V3
# metrics appear only when its weights are given.

# %%
from typing import Optional  # the parameters below: None takes the recipe's value

# %% tags=["parameters"]
profile: str = "smoke"  # scale profile: smoke | cpu | small | paper (set by dimr reproduce)
run_dir: str = "runs/scratch/evaluate"  # where figures and metrics.json go (set by dimr reproduce)
checkpoint: str = "checkpoints/scratch/latest.pt"  # the checkpoint to evaluate
num_samples: int = 64  # generated samples, spread evenly over the classes
steps: Optional[int] = None  # DPM-Solver steps; None takes the recipe's
guidance: Optional[float] = None  # CFG weight w; None takes the recipe's scale s (w is 1 + s)
batch_size: int = 250  # sampling and feature batch
seed: int = 0  # sample seed
inception_weights: str = ""  # local Inception-V3 weights for real FID; empty: offline metrics only
reference_npz: str = ""  # reference batch in the ADM layout; empty: real training images
pca_samples: int = 64  # samples whose adaLN-Zero modulations are analysed (adaLN-Zero models only)

# %%
import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from dimr.checkpoint import load_checkpoint
from dimr.evaluate import EvaluateConfig, evaluate_checkpoint
from dimr.evaluate.pca import MODULATIONS, adaln_layers, adaln_pca, collect_modulations, components_for
from dimr.reproduction.runs import metric, portable_record, write_metrics
from dimr.sample import checkpoint_context, denoiser_from_checkpoint, even_labels, recipe_sampler

run_dir = Path(run_dir)
work = run_dir / "evaluate"
ckpt = load_checkpoint(checkpoint)
print(f"checkpoint {checkpoint}: preset {ckpt['preset']}, trained {ckpt['step']} steps")

# %%
report = evaluate_checkpoint(EvaluateConfig(
    checkpoint=checkpoint, num_samples=num_samples, steps=steps,
    guidance=guidance, batch_size=batch_size, seed=seed, out=str(work),
    inception_weights=inception_weights or None, reference_npz=reference_npz or None, progress=False))
print(report["scale"]["summary"], "—", report["scale"]["hardware"])
for m in report["metrics"].values():
    print(f"  {m['label']:<70s} {m['value']:.4g}")

# %% [markdown]
# ## Samples, and what the rejection classifier flags
# Left: the generated samples (one row per class). Right: the samples whose predicted probability of
# the requested class is below the paper's threshold of 0.2 — the "low-fidelity" candidates of Fig. 5.

# %%
flagged = sorted(work.glob("flagged_*.png"))
fig, axes = plt.subplots(1, 1 + len(flagged[:1]), figsize=(12, 6))
axes = np.atleast_1d(axes)
axes[0].imshow(plt.imread(work / "grid.png"))
axes[0].set_title("samples", fontsize=9)
for ax, path in zip(axes[1:], flagged[:1]):
    ax.imshow(plt.imread(path))
    ax.set_title(f"flagged: {path.stem}", fontsize=9)
for ax in axes:
    ax.set_axis_off()
fig.suptitle(report["scale"]["summary"], fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Does the classifier proxy track real distortion?
# On the shapes the true geometry is known: each sample's 1 − IoU to its best-fitting class template
# measures distortion without a human. The paper's proxy (p(class) < 0.2) is compared against it.

# %%
geo = report.get("geometric_distortion")
per_sample = work / "per_sample.npz"
if geo and per_sample.exists():
    d = np.load(per_sample)
    if "p_class" in d.files:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        ax.scatter(d["p_class"], d["one_minus_iou"], s=6, alpha=0.5)
        ax.axvline(0.2, color="red", ls="--", label="rejection threshold 0.2")
        ax.axhline(geo["threshold"], color="k", ls=":", label=f"distorted: 1 − IoU > {geo['threshold']:.2g}")
        ax.set_xlabel("classifier p(requested class)")
        ax.set_ylabel("1 − IoU to the class template")
        ax.legend(fontsize=8)
        ax.set_title("classifier proxy vs geometric distortion", fontsize=9)
        plt.show()
    print(json.dumps({k: v for k, v in geo.items() if k != "proxy"}, indent=1))
    if geo.get("proxy"):
        print(json.dumps(geo["proxy"], indent=1))
else:
    print("no geometric measure for this dataset (shapes only)")

# %% [markdown]
# ## adaLN-Zero's modulations (Fig. 3/6), for adaLN-Zero models only
# The paper motivates TD-LN with a PCA of DiT's adaLN-Zero scales and shifts: two components explain
# most of their variance. For a model with adaLN-Zero blocks, the γ1, β1, γ2, β2 of every block are
# recorded along the sampling trajectory of `pca_samples` samples, and the number of principal
# components that explain 90% of each one's variance is recorded (its median over blocks and vectors).

# %%
pca_metrics = {}
denoiser = denoiser_from_checkpoint(ckpt)
try:
    adaln_layers(denoiser.net)
except ValueError:
    print("no adaLN-Zero blocks in this model: nothing to analyse")
else:
    ctx = checkpoint_context(ckpt)
    sampler = recipe_sampler(ctx, steps=steps)
    pca = adaln_pca(collect_modulations(denoiser, even_labels(pca_samples, ctx["num_classes"]), sampler, seed=seed,
                                        progress=False))
    counts = sorted(components_for(r[name]) for r in pca.values() for name in MODULATIONS)
    median = float(np.median(counts))
    print(f"components for 90% of the variance, over {len(pca)} blocks × {len(MODULATIONS)} vectors: "
          f"median {median:g}, range {counts[0]}–{counts[-1]} (the paper, DiT-XL/2: two explain most)")
    pca_metrics["adaln_pca_components_90"] = metric(
        median, "adaLN-Zero γ/β: principal components for 90% of the variance (median over blocks)",
        f"{pca_samples} samples, {sampler.steps} DPM-Solver steps, w={sampler.guidance:g}")

# %%
# The run record (and so the book's tables) keeps the headline numbers; evaluation.json keeps them all.
headline = ("fid_", "is_", "precision_", "recall_", "accuracy_", "flagged_fraction_", "geometric_distortion_rate",
            "geometric_distortion_mean")
trained = f"model trained {ckpt['step']} steps"
keep = {key: metric(m["value"], m["label"], f"{m['scale']}; {trained}") for key, m in report["metrics"].items()
        if key.startswith(headline) and not key.startswith("is_std")}
keep.update({k: metric(m["value"], m["label"], f"{m['scale']}; {trained}") for k, m in pca_metrics.items()})
# how long the model trained, so a record can be checked against the study that reads it
keep["checkpoint_step"] = metric(ckpt["step"], "optimiser steps of the evaluated checkpoint", trained)
write_metrics(run_dir, keep)
kept = ("grid.png",) + tuple(p.name for p in flagged)
record = (work / "metrics.json").read_text()
for name in kept:
    shutil.copy(work / name, run_dir / name)
    record = record.replace((work / name).as_posix(), (run_dir / name).as_posix())
# the record names files where a reader finds them: the published run folder, not the staging one
(run_dir / "evaluation.json").write_text(portable_record(record, run_dir, work))
shutil.rmtree(work)  # the npz files are large and regenerable; the run keeps figures and numbers
