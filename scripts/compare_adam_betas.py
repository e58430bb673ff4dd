"""Compare Adam's (β₁, β₂) for short CPU runs: the same preset, data, seed and steps, one run per pair.

    python scripts/compare_adam_betas.py --preset DiMR-T/3R --steps 300 --out runs/ablation-adam-betas/cpu.json

Each run trains from scratch (no checkpoints written) and reports the per-branch training loss averaged
over its last 50 steps. This is the evidence behind the CPU-scale recipe's β = (0.9, 0.999); the
paper's recipes keep the official (0.99, 0.99). Figures are printed and (with --out) written as a run
record; nothing here is a test.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import torch

from dimr.provenance import hardware_info
from dimr.train import TrainConfig, train


def last_window(metrics_path: Path, steps: int) -> dict:
    """Mean of every ``loss*`` key over the log records of the last ``steps`` optimiser steps."""
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    final = rows[-1]["step"]
    tail = [r for r in rows if r["step"] > final - steps]
    return {k: sum(r[k] for r in tail) / len(tail) for k in tail[-1] if k.startswith("loss")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="DiMR-T/3R")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--betas", nargs="+", default=["0.99,0.99", "0.9,0.999"], help="pairs as b1,b2")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()
    results = []
    for pair in args.betas:
        betas = tuple(float(v) for v in pair.split(","))
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(preset=args.preset, steps=args.steps, batch_size=args.batch_size, betas=betas,
                              log_every=10, progress=True)
            summary = train(cfg, tmp, save_checkpoints=False)
            r = {"betas": list(betas), "final_window_loss": last_window(Path(tmp) / "metrics.jsonl", 50),
                 "images_per_s": summary["images_per_s"], "wall_s": summary["wall_s"]}
        print(json.dumps(r), flush=True)
        results.append(r)
    record = {
        "what": f"{args.preset}: training loss after {args.steps} steps × batch {args.batch_size} on the offline "
                "shapes (32×32, upright), per Adam β pair; mean over the last 50 steps",
        "scale": f"shapes 32×32, {args.steps} steps × batch {args.batch_size}, CPU",
        "results": results,
        "hardware": {**hardware_info(), "threads": torch.get_num_threads()},
        "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
