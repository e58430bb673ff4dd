"""The default training command, before and after a change, side by side on one machine.

    python scripts/bench_train_cli.py --before b5a2f80 --preset DiMR-T/3R U-ViT-T/4 --steps 60 --rounds 2 \
        --train-args "--batch-size 64" --out runs/train-throughput/cpu-before-after.json

For each round and preset it runs ``python -m dimr train --preset P --out TMP --steps N`` (no other
flags: the defaults a newcomer gets) once in a git worktree of ``--before`` and once in this checkout,
alternating, so both see the same machine state. Images/s is the median over the logged windows after
the first (which holds start-up and warm-up). Nothing here is a test; figures are printed and, with
``--out``, recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dimr.runs import atomic_write_json, hardware_info  # noqa: E402


def run_default(tree: Path, preset: str, steps: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        cmd = [sys.executable, "-m", "dimr", "train", "--preset", preset, "--out", tmp, "--steps", str(steps),
               "--no-progress", "--log-every", "10", *extra]
        res = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{tree}: {res.stderr[-2000:]}")
        rows = [json.loads(x) for x in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    ips = sorted(r["images_per_s"] for r in rows[1:])
    return {"images_per_s": ips[len(ips) // 2], "windows": len(ips)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="git revision of the 'before' code")
    ap.add_argument("--preset", nargs="+", default=["DiMR-T/3R"])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--train-args", default="", help="extra flags for both sides, e.g. '--batch-size 64' "
                                                     "(the same maths when a default changed in between)")
    ap.add_argument("--out")
    args = ap.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    after_rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "dimr"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip())
    results = {p: {"before": [], "after": []} for p in args.preset}
    with tempfile.TemporaryDirectory() as wt:
        before_tree = Path(wt) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before_tree), rev], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for r in range(args.rounds):
                for preset in args.preset:
                    for label, tree in (("before", before_tree), ("after", ROOT)):
                        got = run_default(tree, preset, args.steps, args.train_args.split())
                        results[preset][label].append(got["images_per_s"])
                        print(f"round {r + 1} {preset} {label}: {got['images_per_s']:.1f} images/s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before_tree)], cwd=ROOT, capture_output=True)
    summary = {}
    for preset, d in results.items():
        b, a = sorted(d["before"])[len(d["before"]) // 2], sorted(d["after"])[len(d["after"]) // 2]
        summary[preset] = {"before_images_per_s": b, "after_images_per_s": a, "speedup": a / b, **d}
        print(f"{preset}: {b:.1f} -> {a:.1f} images/s ({a / b:.2f}×)")
    flags = f" {args.train_args}" if args.train_args else ""
    record = {"what": f"`python -m dimr train --preset P --steps {args.steps}{flags}` with every other setting at "
                      "its default, before and after, alternating in one run; median images/s of the logged windows "
                      "after the first",
              "train_args": args.train_args,
              "before": rev, "after": after_rev + (" (uncommitted changes in dimr/)" if dirty else ""),
              "rounds": args.rounds, "results": summary,
              "hardware": hardware_info(), "script": "scripts/bench_train_cli.py"}
    if args.out:
        atomic_write_json(Path(args.out), record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
