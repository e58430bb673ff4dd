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
# # Calibration run
#
# A parameterised run, executed by papermill (`python -m dimr reproduce --profile P`) before the training
# runs of a comparison: it measures how many optimiser steps per second each model trains on this machine
# now (a few eager steps each, `dimr.reproduction.calibrate.measure_rate`) and chooses the number of steps all of them
# can train within the budget (`dimr.reproduction.calibrate.equal_steps`). The training runs that name this run in
# `steps_from` train exactly that many steps, so the models compared trained equally long, however fast
# or busy the machine is.

# %% tags=["parameters"]
profile: str = "smoke"  # scale profile (set by dimr reproduce)
run_dir: str = "runs/scratch/calibrate"  # where metrics.json goes (set by dimr reproduce)
presets: list = ["Table2-T/row1", "Table2-T/row6"]  # the models compared
minutes_each: float = 1.0  # training budget per model, on average
calibration_steps: int = 30  # eager steps each model trains to measure its rate

# %%
from pathlib import Path

from dimr.reproduction.calibrate import equal_steps, measure_rate
from dimr.reproduction.runs import metric, write_metrics
from dimr.provenance import hardware_info

rates = {p: measure_rate(p, steps=calibration_steps) for p in presets}
steps = equal_steps(rates, minutes_each)
scale = f"{calibration_steps} eager steps per model, the recipe's batch, {hardware_info()['cpu']}"
for p, r in rates.items():
    print(f"{p}: {r:.2f} steps/s -> {steps / r / 60:.1f} min for {steps:,} steps (eager; compiled runs are faster)")
print(f"equal steps for {len(presets)} models in {minutes_each:g} min each on average: {steps:,}")

# %%
record = {"equal_steps": metric(steps, f"optimiser steps every model trains ({minutes_each:g} min each on average)", scale)}
for p, r in rates.items():
    record["steps_per_s_" + p.replace("/", "_").lower()] = metric(r, f"{p}: eager training steps per second", scale)
write_metrics(Path(run_dir), record)
