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
# # Training run
#
# A parameterised training run, executed by papermill (`python -m dimr reproduce --profile P`).
# The notebook *launches* `python -m dimr train` — under `torchrun` when more than one process is
# asked for — and never trains inside the kernel, so a multi-GPU run and a laptop run are the same
# notebook with other parameters. Afterwards it plots the loss curves from `metrics.jsonl`, draws a
# sample grid from the EMA weights, and hands its figures to the run record.
#
# The scale of the run (data, resolution, steps, hardware) is written on every number below: a
# CPU-scale loss is not an ImageNet loss.

# %%
from typing import Optional  # the parameters below: None takes the recipe's value

# %% tags=["parameters"]
profile: str = "smoke"  # scale profile: smoke | cpu | small | paper (set by dimr reproduce)
run_dir: str = "runs/scratch/train"  # where figures and metrics.json go (set by dimr reproduce)
preset: str = "DiMR-T/3R"  # model preset, see `python -m dimr zoo`
checkpoint_dir: str = "checkpoints/scratch"  # training output: latest.pt, metrics.jsonl (outside git)
dataset: str = "shapes"  # shapes (offline default) | fashion-mnist | imagenet | latents
data_root: str = ""  # dataset folder; empty for shapes
steps: int = 20  # total optimiser steps
steps_from: str = ""  # a calibration experiment (notebooks/calibrate.py) of this plan whose equal_steps replaces steps
batch_size: Optional[int] = 16  # global batch per optimiser step; None takes the preset's recipe
lr: Optional[float] = None  # learning rate; None takes the preset's recipe
warmup_steps: Optional[int] = None  # linear warm-up steps; None takes the preset's recipe
ema_rate: Optional[float] = None  # EMA rate; None takes the preset's recipe
time_limit_minutes: Optional[float] = None  # stop with a checkpoint after this many minutes (None: no limit)
nproc: int = 1  # processes; > 1 launches torchrun (DDP)
amp: str = "auto"  # auto (bf16 on CUDA and on CPUs with native bf16) | none | bf16 | fp16
grad_checkpointing: bool = False  # activation checkpointing (the official code always checkpoints)
seed: int = 0  # seed of data order, noise and init
prediction: Optional[str] = None  # eps | v | x0: what the network learns to predict; None takes the recipe's
snapshot_steps: list = []  # keep a copy of the checkpoint at these steps (step-NNNNNNN.pt), for learning curves
sample_steps: int = 25  # DPM-Solver steps for the sample grid
num_grid_samples: int = 64  # samples in the grid (spread evenly over classes)
resume: bool = True  # continue an interrupted run in checkpoint_dir
restart: bool = False  # discard checkpoint_dir's checkpoint and train from step 0 (`dimr reproduce --force` sets it)

# %%
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from dimr.checkpoint import load_checkpoint
from dimr.reproduction.runs import metric, run_beside, write_metrics
from dimr.provenance import hardware_info
from dimr.sample import even_labels, sampler_from_checkpoint, save_grid, to_uint8
from dimr.train import DIVERGED_EXIT

run_dir, ckpt_dir = Path(run_dir), Path(checkpoint_dir)
run_dir.mkdir(parents=True, exist_ok=True)
if steps_from:  # equal training for the models a calibration compares (dimr.reproduction.calibrate)
    calibration = run_beside(run_dir, steps_from, profile) / "metrics.json"
    if not calibration.exists():
        raise FileNotFoundError(f"{calibration} is missing: run the calibration experiment {steps_from!r} first "
                                f"(python -m dimr reproduce --profile {profile} --only {steps_from})")
    steps = int(json.loads(calibration.read_text())["equal_steps"]["value"])
    print(f"{steps:,} steps, as calibrated by {steps_from}")

# %% [markdown]
# ## Launch
# The command line below is exactly what a user would type; `torchrun --nproc_per_node K` runs the
# same loop with K processes (DDP: NCCL on GPUs, gloo on CPU).

# %%
args = ["-m", "dimr", "train", "--preset", preset, "--out", str(ckpt_dir), "--steps", str(steps),
        "--dataset", dataset, "--seed", str(seed), "--amp", amp,
        "--no-progress", "--log-every", str(10 if time_limit_minutes is not None else max(1, steps // 100))]
if data_root:
    args += ["--data-root", data_root]
for flag, value in (("--batch-size", batch_size), ("--lr", lr), ("--warmup-steps", warmup_steps),
                    ("--ema-rate", ema_rate), ("--time-limit", time_limit_minutes), ("--prediction", prediction)):
    if value is not None:  # None: the flag is left out and `dimr train` takes the preset's recipe
        args += [flag, str(value)]
if grad_checkpointing:
    args += ["--grad-checkpointing"]
if snapshot_steps:
    args += ["--snapshot-steps", *map(str, snapshot_steps)]
resumed_from = 0  # the step an interrupted attempt had reached: recorded, so a resumed run says so
if restart:
    for stale in ("latest.pt", "metrics.jsonl", "summary.json", "train.log"):
        (ckpt_dir / stale).unlink(missing_ok=True)
elif resume and (ckpt_dir / "latest.pt").exists():
    args += ["--resume"]
    resumed_from = int(load_checkpoint(ckpt_dir / "latest.pt")["step"])
launcher = [sys.executable] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc)]
command = launcher + args
print(" ".join(["python"] + command[1:]))
# the child's output streams into this cell and into a log file beside the checkpoint, so a long run can
# be watched while it trains: `tail -f` the file, or `python -m dimr reproduce --profile P --follow EXPERIMENT`
train_log = ckpt_dir / "train.log"
ckpt_dir.mkdir(parents=True, exist_ok=True)
print(f"training output: {train_log}")
t0 = time.time()
with train_log.open("a") as log_file, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                       text=True, bufsize=1) as proc:
    for line in proc.stdout:
        log_file.write(line)
        log_file.flush()
        print(line, end="", flush=True)
# a run whose loss stopped being finite is an outcome, recorded as such (no samples, no evaluation)
diverged = proc.returncode == DIVERGED_EXIT
if proc.returncode not in (0, DIVERGED_EXIT):
    raise RuntimeError(f"training failed with exit code {proc.returncode}; its output is in {train_log}")
wall = time.time() - t0

# %% [markdown]
# ## Loss curves
# Eq. (8) is the sum over branches of α_r times each branch's MSE; each branch's own MSE is plotted
# too (lowest resolution first), with the total.

# %%
log = [json.loads(line) for line in (ckpt_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
summary = json.loads((ckpt_dir / "summary.json").read_text())
hw = hardware_info()
device = "GPU " + hw["gpu"] if summary["device"].startswith("cuda") and hw.get("gpu") else f"CPU ({hw.get('cpu_count', '?')} cores)"
shape = "×".join(map(str, summary["image_shape"][1:]))
train_cfg = summary["train_config"]
precision = {"none": "fp32", "bf16": "bf16 autocast", "fp16": "fp16 autocast"}.get(train_cfg.get("amp"), train_cfg.get("amp"))
compiled = ", torch.compile" if train_cfg.get("compile") in ("on", True) else ""
scale = (f"{dataset} {shape}, {summary['step']} steps × batch {train_cfg['batch_size']}, "
         f"{train_cfg.get('prediction', 'eps')}-prediction, {precision}{compiled}, {device}")

fig, ax = plt.subplots(figsize=(7, 3.5))
steps_axis = [r["step"] for r in log]
ax.plot(steps_axis, [r["loss"] for r in log], label="total (eq. 8)", color="black")
for key in sorted((k for k in log[0] if k.startswith("loss/")), key=lambda k: int(k.split("/")[1][:-2])):
    ax.plot(steps_axis, [r[key] for r in log], label=f"MSE at {key.split('/')[1]}", alpha=0.7)
ax.set_xlabel("optimiser step")
ax.set_ylabel("loss")
ax.set_yscale("log")
if diverged:
    ax.axvline(summary["diverged_at_step"], color="red", ls="--", label=f"diverged (step {summary['diverged_at_step']})")
ax.set_title(f"{preset}: training loss ({scale})", fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(run_dir / "loss.png", dpi=110)
plt.show()

# %% [markdown]
# ## Samples
# The EMA weights, the official sampler (DPM-Solver, data prediction, third order, time-uniform),
# classifier-free guidance with the recipe's scale; one row per class. The denoiser reads the network's
# output as the prediction target it was trained with (ε for the paper's recipes).

# %%
if diverged:
    print(f"no samples: the loss became {summary['loss']} at step {summary['diverged_at_step']} and the run stopped there")
else:
    sampler = sampler_from_checkpoint(ckpt_dir, device="cpu", steps=sample_steps)  # the recipe's time grid and w
    ctx, w = sampler.context, sampler.settings.guidance
    labels = even_labels(num_grid_samples, ctx["num_classes"])
    images = sampler.draw(labels=labels, seed=seed, progress=False)
    order = torch.argsort(labels, stable=True).numpy()
    grid = save_grid(to_uint8(images)[order], run_dir / "samples.png", ncol=max(1, num_grid_samples // ctx["num_classes"]))
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(plt.imread(grid))
    ax.set_axis_off()
    ax.set_title(f"{preset} samples, w = {w:g}, {sample_steps} steps ({scale})\nrows: "
                 + ", ".join(ctx["class_names"]), fontsize=8)
    plt.show()

# %%
finite = [r for r in log if r["loss"] == r["loss"]]  # NaN ≠ NaN: the last finite logging window
record = {
    "images_per_s": metric(summary["images_per_s"], "training throughput (images/s)", scale),
    "steps": metric(summary["step"], "optimiser steps", scale),
    "train_wall_s": metric(round(wall, 1), "training wall time (s)", scale),
}
if summary.get("usual_images_per_s"):  # what this machine usually does with this command (dimr.pace)
    record["usual_images_per_s"] = metric(summary["usual_images_per_s"], "this machine's usual training throughput "
                                          "(images/s, median of its last runs of this configuration)", scale)
if summary.get("slow_note"):
    print(f"NOTE: {summary['slow_note']} — a time-limited run trained fewer steps than usual")
if resumed_from:
    record["resumed_from_step"] = metric(resumed_from, "step an interrupted attempt had reached (this run resumed it)", scale)
if diverged:
    record["training_diverged_at_step"] = metric(summary["diverged_at_step"], "step at which the loss stopped being finite", scale)
if finite:
    record["final_loss"] = metric(finite[-1]["loss"], "training loss (eq. 8), last logging window"
                                  + (" before it diverged" if diverged else ""), scale)
write_metrics(run_dir, record)
print(json.dumps({"scale": scale, "precision": f"{summary['amp']} ({summary.get('amp_reason', '')})",
                  "threads": f"{summary['threads']} ({summary.get('threads_reason', '')})",
                  "compile": f"{summary['compile']} ({summary.get('compile_reason', '')})",
                  "diverged_at_step": summary["diverged_at_step"], "images_per_s": summary["images_per_s"]}, indent=1))
