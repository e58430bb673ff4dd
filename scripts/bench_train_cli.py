"""The default training command, before and after a change, side by side on one machine.

    python scripts/bench_train_cli.py --before b5a2f80 --preset DiMR-T/3R U-ViT-T/4 --windows 12 --rounds 2 \
        --out runs/train-throughput/cpu-before-after.json

For each round and preset it starts ``python -m dimr train --preset P --out TMP`` (no other flags but
``--train-args``: the defaults a newcomer gets, the recipe's full length included, so the run takes every
decision a real one takes, ``torch.compile`` among them) once in a git worktree of ``--before`` and once in
this checkout, alternating, so both see the same machine state, and stops it (SIGTERM, which the trainer
honours with a checkpoint) once ``--windows`` windows of 10 steps after the first have been logged.
Images/s is the median over those windows; the first (start-up, compilation, warm-up) is excluded from the
median and reported as the seconds to the first logged window. Each invocation uses a fresh inductor cache,
so round 1 pays a cold compile and later rounds find it warm. Nothing here is a test; figures are printed
and, with ``--out``, recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dimr.runs import atomic_write_json, hardware_info  # noqa: E402


def run_default(tree: Path, preset: str, windows: int, extra: list[str], env: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "dimr", "train", "--preset", preset, "--out", tmp, "--no-progress",
               "--log-every", "10", *extra]
        proc = subprocess.Popen(cmd, cwd=tree, env={**env, "PYTHONPATH": str(tree)}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        metrics = Path(tmp) / "metrics.jsonl"
        while proc.poll() is None:
            n = len(metrics.read_text().splitlines()) if metrics.exists() else 0
            if n >= windows + 1:
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(1.0)
        _, err = proc.communicate()
        if proc.returncode not in (0, 130, -signal.SIGTERM):
            raise RuntimeError(f"{tree}: {err[-2000:]}")
        rows = [json.loads(x) for x in metrics.read_text().splitlines()]
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    ips = sorted(r["images_per_s"] for r in rows[1:windows + 1])
    return {"images_per_s": ips[len(ips) // 2], "windows": len(ips), "first_window_s": rows[0]["elapsed_s"],
            "amp": summary.get("amp"), "compile": summary.get("compile", "off")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="git revision of the 'before' code")
    ap.add_argument("--preset", nargs="+", default=["DiMR-T/3R"])
    ap.add_argument("--windows", type=int, default=12, help="logged windows of 10 steps timed after the first")
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
    details = {p: {"before": [], "after": []} for p in args.preset}
    with tempfile.TemporaryDirectory() as wt:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(Path(wt) / "inductor")}
        before_tree = Path(wt) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before_tree), rev], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for r in range(args.rounds):
                for preset in args.preset:
                    for label, tree in (("before", before_tree), ("after", ROOT)):
                        got = run_default(tree, preset, args.windows, args.train_args.split(), env)
                        results[preset][label].append(got["images_per_s"])
                        details[preset][label].append(got)
                        print(f"round {r + 1} {preset} {label}: {got['images_per_s']:.1f} images/s "
                              f"(first window {got['first_window_s']:.0f} s, amp {got['amp']}, compile "
                              f"{got['compile']})", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before_tree)], cwd=ROOT, capture_output=True)
    summary = {}
    for preset, d in results.items():
        b, a = sorted(d["before"])[len(d["before"]) // 2], sorted(d["after"])[len(d["after"]) // 2]
        summary[preset] = {"before_images_per_s": b, "after_images_per_s": a, "speedup": a / b, **d,
                           "runs": details[preset]}
        print(f"{preset}: {b:.1f} -> {a:.1f} images/s ({a / b:.2f}×)")
    flags = f" {args.train_args}" if args.train_args else ""
    record = {"what": f"`python -m dimr train --preset P{flags}` with every other setting at its default (the "
                      f"recipe's full length, stopped by SIGTERM after {args.windows} logged windows of 10 steps "
                      "after the first), before and after, alternating in one run; median images/s of those "
                      "windows. Round 1 starts from an empty inductor cache",
              "train_args": args.train_args,
              "before": rev, "after": after_rev + (" (uncommitted changes in dimr/)" if dirty else ""),
              "rounds": args.rounds, "results": summary,
              "hardware": hardware_info(), "script": "scripts/bench_train_cli.py"}
    if args.out:
        atomic_write_json(Path(args.out), record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
