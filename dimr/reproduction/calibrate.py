"""Equal training for a time budget: how many steps every model of a comparison can train in it.

A comparison of models trained for *equal time* on a laptop measures the laptop as much as the models:
one busy process beside one of the runs and that run trains a tenth of the steps. So the ``cpu``
profile of ``make book`` trains the models it compares for **equal steps**, chosen before training
from a quick calibration on the same machine at the same moment (:func:`measure_rate` per model, then
:func:`equal_steps`), so that all of them together fit the budget. A slower machine trains fewer steps;
the models still see the same number of training images, and every table shows the steps.

    python -m dimr train --preset DiMR-T/3R --steps N ...   # N from equal_steps(...)
"""
from __future__ import annotations

import json
import math
import statistics
import tempfile
from pathlib import Path
from typing import Mapping

from ..train import TrainConfig, train

__all__ = ["CALIBRATION_STEPS", "measure_rate", "equal_steps"]

#: eager optimiser steps each model trains to measure its rate (the first logging window, a warm-up,
#: is left out): seconds per model, and the same settings as the run it calibrates but compiling
CALIBRATION_STEPS = 30


def measure_rate(preset: str, steps: int = CALIBRATION_STEPS, batch_size: int | None = None, amp: str = "auto",
                 seed: int = 0) -> float:
    """Optimiser steps per second of ``preset`` training eagerly on this machine now (the recipe's batch
    unless ``batch_size``): the median rate of the logging windows after the first. No checkpoint is
    written; nothing is kept."""
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(preset=preset, steps=steps, batch_size=batch_size, amp=amp, compile="off", seed=seed,
                          log_every=max(1, steps // 4), progress=False)
        summary = train(cfg, out, save_checkpoints=False)
        log = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rates = [r["images_per_s"] for r in log[1:]] or [log[-1]["images_per_s"]]
    return statistics.median(rates) / summary["train_config"]["batch_size"]


def equal_steps(steps_per_s: Mapping[str, float], minutes_each: float, multiple: int = 10) -> int:
    """The most steps N that every model of ``steps_per_s`` can train in turn within ``minutes_each`` minutes
    per model on average (N · Σ 1/rate ≤ models · minutes · 60), rounded down to a ``multiple`` (its
    logging interval) and at least one ``multiple``."""
    if not steps_per_s or any(r <= 0 or not math.isfinite(r) for r in steps_per_s.values()):
        raise ValueError(f"every model needs a positive, finite rate, got {dict(steps_per_s)}")
    budget = len(steps_per_s) * minutes_each * 60.0
    n = budget / sum(1.0 / r for r in steps_per_s.values())
    return max(multiple, int(n // multiple) * multiple)
