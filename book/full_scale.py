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
# # Running at full scale
#
# Everything in this book runs on a 2-core laptop because the runs it executes are small (the `cpu`
# profile). The same notebooks take a profile parameter; at `paper` they use Table 4's settings. This
# page works out what that means, from the presets and the paper's own numbers.
#
# ## Commands
#
# ```bash
# make book     # install, run the cpu-profile plan, build this book
# make test     # the test suite (2 CPU cores, minutes)
#
# # reduced-scale runs (committed to git), or one experiment at Table 4's scale
# .venv/bin/python -m dimr reproduce --profile small
# .venv/bin/python -m dimr reproduce --profile paper --only EXP
# # what a profile would run, and whether it is recorded
# .venv/bin/python -m dimr reproduce --profile cpu --list
# # the training loop: one process, or under torchrun (DDP)
# .venv/bin/python -m dimr train --help
# # every preset's parameters and GMACs beside the paper's
# .venv/bin/python -m dimr zoo
# ```
#
# `reproduce` skips runs already recorded for a profile (`--force` runs them again), stops at the first
# failing notebook, and rebuilds the book at the end (`--no-build` to skip). Checkpoints go to
# `checkpoints/`, outside git; only the run records and small figures are committed.
#
# ## What Table 4 asks for

# %% tags=["remove-input"]
from IPython.display import Markdown

from dimr.reproduction.bench_records import bench_records, latest_measure
from dimr.flops import datasheet_peak, flops_per_image
from dimr.presets import get_preset
from dimr.reproduction.paper import profile_row

IMAGENET_TRAIN = 1_281_167            # training images (paper App. A)
A100_PEAK_TFLOPS = datasheet_peak("A100", "bf16")  # dense fp16/bf16 tensor-core peak (dimr.flops, NVIDIA datasheet)
# this package's DiMR-M/3R training rate on a CPU: the latest `dimr bench` record of it (runs/bench/)
bench = bench_records()
cpu_rec, cpu_entry = latest_measure(bench, "DiMR-M/3R") or (None, None)
CPU_IMAGES_PER_S = cpu_entry["sides"]["ours"]["images_per_s"] if cpu_entry else float("nan")

lines = ["| model | images seen | epochs | training compute | Table 4 budget | implied A100 utilisation | "
         "weights + grads + Adam + EMA (fp32) | on a 2-core CPU |", "|---|---|---|---|---|---|---|---|"]
for name in ("DiMR-M/3R", "DiMR-L/3R", "DiMR-XL/2R", "DiMR-XL/3R"):
    p = get_preset(name)
    r = p.recipe
    prof = profile_row(name)
    images = r.batch_size * r.iterations
    flops = flops_per_image(prof["gmacs"], "train") * images  # forward + backward ≈ 3 forwards, 2 FLOPs per MAC
    mfu = flops / (r.training_gpus * r.training_hours * 3600 * A100_PEAK_TFLOPS * 1e12)
    memory_gb = prof["params"] * 20 / 1e9
    cpu_years = images / CPU_IMAGES_PER_S / 3600 / 24 / 365 * (prof["gmacs"] / profile_row("DiMR-M/3R")["gmacs"])
    lines.append(f"| {name} | {images / 1e6:.0f}M | {images / IMAGENET_TRAIN:.0f} | {flops / 1e21:.2f} ZFLOP | "
                 f"{r.training_devices}, {r.training_time} | {100 * mfu:.0f}% | {memory_gb:.1f} GB | "
                 f"≈{cpu_years:,.0f} years |")
cpu_note = (f"The CPU column scales this package's DiMR-M/3R training rate, {CPU_IMAGES_PER_S:.2f} images/s at batch "
            f"{cpu_entry['batch']} ({cpu_rec['device_name']}, {cpu_rec['threads']} threads, fp32, "
            f"`python -m dimr bench`, {cpu_rec['when'][:10]}), by GMACs." if cpu_entry else
            "No `dimr bench` record of DiMR-M/3R on a CPU: the CPU column is empty.")
Markdown("\n".join(lines) + "\n\n" + cpu_note)

# %% [markdown]
# How to read it: **epochs** = batch × iterations / 1,281,167 training images — 300K iterations at
# batch 1024 are the 240 epochs of Table 5, 1M iterations the 800 epochs of Tables 1 and 6.
# **Training compute** counts a training step as three forward passes of the measured GMACs at two
# FLOPs per MAC. **Implied A100 utilisation** divides it by Table 4's devices and hours at the A100's
# dense fp16 peak from its datasheet (activation checkpointing re-runs the forward pass, so the hardware did more work
# than this counts). **Memory** counts 20 bytes per parameter (fp32 weights, gradients, two Adam moments,
# EMA) and excludes activations, which checkpointing keeps small. The **CPU** column scales a measured
# DiMR-M/3R training rate (named under the table) by GMACs: the paper's runs are for GPUs.
#
# ## Measured on one GPU
#
# Full training steps of DiMR-XL/2R (forward, multi-scale loss, backward, AdamW, EMA) on synthetic
# latents of its shape, recorded on a lent GPU machine under `runs/bench/archive/` (its README says
# how). Achieved FLOP/s counts three forward passes per image at two FLOPs per MAC, as above; with
# activation checkpointing the hardware also re-runs the forward pass, which this does not count. The
# last column is what Table 4's images for DiMR-XL/2R would take at that rate on one such GPU.

# %% tags=["remove-input"]
import json

from IPython.display import display

from dimr.provenance import repo_root

H100_BF16_PEAK_TFLOPS = datasheet_peak("H100", "bf16")  # dense bf16 tensor-core peak of one H100 SXM (dimr.flops)
xl = get_preset("DiMR-XL/2R")
xl_flops_per_image = flops_per_image(profile_row("DiMR-XL/2R")["gmacs"], "train")
xl_images = xl.recipe.batch_size * xl.recipe.iterations
lines = ["| GPU | batch | activation checkpointing | images/s | peak memory | achieved TFLOP/s | of the bf16 peak | "
         "Table 4's images at this rate |", "|---|---|---|---|---|---|---|---|"]
for name in ("xl2r_train_bf16_nockpt.json", "xl2r_train_bf16_ckpt.json"):
    path = repo_root() / "runs" / "bench" / "archive" / name
    if not path.exists():
        continue
    rec = json.loads(path.read_text(encoding="utf-8"))
    checkpointing = "yes" if name.endswith("_ckpt.json") else "no"
    for row in rec["rows"]:
        if "error" in row:
            lines.append(f"| {rec['gpu']} | {row['batch_size']} | {checkpointing} | "
                         f"{row['error']} | | | | |")
            continue
        tflops = row["images_per_s"] * xl_flops_per_image / 1e12
        days = xl_images / row["images_per_s"] / 86400
        lines.append(f"| {rec['gpu']} ({rec['when'][:10]}) | {row['batch_size']} | "
                     f"{checkpointing} | {row['images_per_s']:.0f} | "
                     f"{row['peak_memory_gib']:.0f} GiB | {tflops:.0f} | {100 * tflops / H100_BF16_PEAK_TFLOPS:.0f}% | "
                     f"{days:.0f} GPU-days |")
display(Markdown("\n".join(lines) if len(lines) > 2 else "No GPU throughput is recorded under `runs/bench/archive/`."))
display(Markdown(f"For comparison, Table 4 trains DiMR-XL/2R on {xl.recipe.training_devices} in {xl.recipe.training_time}, "
                 "at the implied A100 utilisation of the first table. `runs/bench/` holds the forward and "
                 "backward passes alone, without the optimiser."))

# %% [markdown]
# ## Measured on a CPU: `python -m dimr bench`
#
# Every record `python -m dimr bench` wrote under `runs/bench/`: training steps (forward, multi-scale loss,
# backward, AdamW, EMA) and DPM-Solver sampling with guidance, on a fixed synthetic batch of the preset's
# shape. Achieved FLOP/s counts the zoo's MACs at two FLOPs each, three forward passes per training image
# (four where a side checkpoints its activations, as the official code always does); MFU is against a
# peak measured on the same machine (a large fp32 matrix product). "ours / official" is the step rate of
# this package over the official implementation's, both called alternately in one process on the same
# weights (`--official PATH`, a checkout that is never committed). The commands are in `runs/bench/README.md`.

# %% tags=["remove-input"]
from dimr.reproduction.bench_records import records_table

display(Markdown(records_table(bench) if bench else "No `python -m dimr bench` record under `runs/bench/`."))


pair = latest_measure(bench, "DiMR-T/3R"), latest_measure(bench, "U-ViT-T/4")
if all(pair):
    (r_d, e_d), (r_u, e_u) = pair
    share = e_d["sides"]["ours"]["achieved_tflops"] / e_u["sides"]["ours"]["achieved_tflops"]
    display(Markdown(f"DiMR-T/3R's training steps reach **{100 * share:.0f}%** of U-ViT-T/4's achieved FLOP/s "
                     f"(batch {e_d['batch']} and {e_u['batch']}, fp32, eager, {r_d['threads']} threads, "
                     f"{r_d['device_name']}): the multi-resolution network spends more of its time in "
                     "memory-bound work (depthwise convolutions, norms and GELU on its high-resolution "
                     "branches) than the one-resolution Transformer."))

# %% [markdown]
# ### On a busy machine, and with huge pages
#
# A laptop is rarely idle. `python -m dimr bench --contention 1` runs the default `python -m dimr train`
# alone and beside one busy process (a spinning Python loop, like a busy browser tab), alternating, and
# records the ratio; on two cores a fair share is a half. Torch's threads follow the cores that are free
# when a run starts (`dimr.device.use_free_cores`), so a busy core no longer makes them wait for it; the
# `OMP_NUM_THREADS=2` rows force the old behaviour, one thread per core whether free or not. The rows
# with `--compile off` and `--compile on` compare eager and compiled training, each record starting from an
# empty compile cache (its round-1 start-up is the cold compile): `--compile auto` compiles only where a
# run has several threads, because on the one thread beside a busy process the compiled step is no faster
# and the cold compile is pure cost (`dimr.train.choose_compile`). On that one thread about a fifth of
# DiMR-T/3R's step was the weight gradient of the ConvNeXt blocks' depthwise 7×7 convolutions, which oneDNN
# computes with a generic grouped kernel; that gradient is itself a depthwise correlation (the input with the
# output gradient, one channel per image and channel), so `dimr.nn.depthwise` computes it with oneDNN's fast
# forward depthwise kernel instead: the same gradient up to rounding, in less time.
# `--before REV --contention 1` times the default training at a revision and now, both beside a busy process.
#
# Alone, a run still takes every core, so it should train as fast as before the change:
# `python -m dimr bench --before REV` runs the default training at a git revision and now, alternating. And
# `python scripts/under_load.py book --busy N` runs `make book` from a fresh clone beside N busy processes:
# the calibration measures the machine as it is, then both ends of Table 2 train the steps it chose however
# the load changes (the wall-time guard is five times the budget), so the table compares equal training.
#
# Whether CPU tensors go on transparent huge pages is decided per CPU by measurement
# (`python -m dimr bench --huge-pages`, `dimr.allocator`): off where nothing was measured.

# %% tags=["remove-input"]
from dimr.reproduction.bench_records import (before_after_records, before_after_table, contention_table,
                                             huge_pages_table, make_book_table)

display(Markdown(contention_table() or "No `dimr bench --contention` record under `runs/bench/`."))
for rec in before_after_records():
    display(Markdown(before_after_table(rec)))
display(Markdown(make_book_table() or "No `scripts/under_load.py book` record under `runs/bench/`."))
display(Markdown(huge_pages_table() or "No `dimr bench --huge-pages` record under `runs/bench/`."))

# %% [markdown]
# ## Profiles
#
# | profile | what it is for | where its runs go |
# |---|---|---|
# | `smoke` | seconds; the test suite and CI | regenerated, not committed |
# | `cpu` | `make book` on a 2-core laptop, minutes | regenerated, not committed |
# | `small` | a reduced-scale reproduction, hours on CPU or minutes on a GPU | committed |
# | `paper` | Table 4 exactly, a GPU cluster | committed (records and small figures only) |
#
# The profiles' parameters live in the plan, `dimr.reproduction.plan.build_plan()`; see {doc}`experiments`.
