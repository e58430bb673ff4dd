"""Benchmark a preset's forward and forward+backward: time, images/s, peak memory, achieved TFLOP/s.

    python scripts/bench_model.py --preset DiMR-XL/2R --batch 32 64 128 --dtype bf16 --out runs/bench/xl2r.json

Figures are printed and (with --out) written as a run record; nothing here is a test.
Achieved TFLOP/s uses the paper's MAC count: forward = 2·GMACs FLOPs per image, backward ≈ 2× forward.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from dimr.nn import build_model
from dimr.presets import get_preset
from dimr.profile import count_gmacs, count_params, throughput

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="DiMR-XL/2R")
    ap.add_argument("--batch", type=int, nargs="+", default=[8])
    ap.add_argument("--dtype", choices=DTYPES, default="bf16")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--checkpointing", action="store_true", help="activation checkpointing (official default)")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()

    preset = get_preset(args.preset)
    gmacs = count_gmacs(preset.model)
    torch.manual_seed(0)
    model = build_model(preset.model).to(args.device)
    model.set_grad_checkpointing(args.checkpointing)
    results = []
    for batch in args.batch:
        for train in (False, True):
            try:
                r = throughput(model, preset.model, batch, device=args.device, dtype=DTYPES[args.dtype],
                               train=train, iters=args.iters)
            except torch.OutOfMemoryError:
                r = {"batch": batch, "train": train, "error": "out of memory"}
                torch.cuda.empty_cache()
            if "images_per_s" in r:
                flops_per_image = 2 * gmacs * 1e9 * (3 if train else 1)
                r["achieved_tflops"] = r["images_per_s"] * flops_per_image / 1e12
            model.zero_grad(set_to_none=True)
            results.append(r)
            print(json.dumps(r))
    record = {
        "preset": preset.name, "params": count_params(model), "gmacs_per_image": gmacs, "dtype": args.dtype,
        "gradient_checkpointing": args.checkpointing, "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
        "torch": torch.__version__, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
        "results": results,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
