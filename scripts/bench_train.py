"""Training throughput of presets: full optimiser steps (forward, multi-scale loss, backward, AdamW,
EMA) on synthetic data of the preset's shape, timed after warm-up.

    python scripts/bench_train.py --preset DiMR-T/3R DiMR-T/2R --batch-size 64 --steps 30 --out runs/train-throughput/cpu.json
    python scripts/bench_train.py --preset DiMR-XL/2R --batch-size 128 --amp bf16 --grad-checkpointing --device cuda

Reports the median images/s over the timed steps; prints one JSON line per preset; nothing here is a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from dimr.presets import get_preset
from dimr.train import TrainConfig, train


class SyntheticData(torch.utils.data.Dataset):
    """Random inputs of a fixed shape and random labels: the data loader costs nothing."""

    def __init__(self, shape, num_classes, n=4096):
        self.image_shape, self.num_classes, self.n = tuple(shape), num_classes, n
        self.class_names = [str(i) for i in range(num_classes)]
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(min(n, 256), *shape, generator=g)
        self.y = torch.randint(0, num_classes, (n,), generator=g)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.x[i % len(self.x)], self.y[i]


def bench(preset: str, batch: int, steps: int, warmup: int, args) -> dict:
    p = get_preset(preset)
    cfg = p.model
    classes = cfg.num_classes - (1 if p.recipe.p_uncond > 0 and cfg.arch != "dit" else 0)
    data = SyntheticData((cfg.in_channels, cfg.image_size, cfg.image_size), classes)
    cuda = args.device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as d:
        train(TrainConfig(preset=preset, batch_size=batch, steps=warmup + steps, amp=args.amp,
                          grad_checkpointing=args.grad_checkpointing, device=args.device, progress=False,
                          log_every=1, warmup_steps=0, compile=args.compile),
              Path(d) / "r", dataset=data, save_checkpoints=False)
        lines = [json.loads(x) for x in (Path(d) / "r" / "metrics.jsonl").read_text().splitlines()]
    timed = sorted(l["images_per_s"] for l in lines[warmup:])
    median = timed[len(timed) // 2]
    out = {"preset": preset, "batch_size": batch, "steps_timed": len(timed), "images_per_s": median,
           "seconds_per_step": batch / median, "amp": args.amp, "grad_checkpointing": args.grad_checkpointing,
           "compile": args.compile, "device": "cuda" if cuda else "cpu"}
    if cuda:
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", nargs="+", default=["DiMR-T/3R", "DiMR-T/2R"])
    ap.add_argument("--batch-size", type=int, nargs="+", default=[64])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--amp", default="none", choices=["none", "bf16", "fp16", "auto"])
    ap.add_argument("--grad-checkpointing", action="store_true")
    ap.add_argument("--compile", default="off", choices=["auto", "on", "off"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out")
    args = ap.parse_args()
    rows = []
    for preset in args.preset:
        for batch in args.batch_size:
            try:
                r = bench(preset, batch, args.steps, args.warmup, args)
            except torch.OutOfMemoryError:
                r = {"preset": preset, "batch_size": batch, "error": "out of memory"}
                torch.cuda.empty_cache()
            print(json.dumps(r), flush=True)
            rows.append(r)
    if args.out:
        record = {"what": "training throughput, full optimiser steps on synthetic data", "rows": rows,
                  "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                  "host": platform.processor() or platform.machine(),
                  "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else None,
                  "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                               text=True).stdout.strip()}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
