"""Which CPU-scale recipe learns fastest? Train each candidate for the same budget, evaluate each the same way.

    python scripts/compare_cpu_recipes.py --out runs/ablation-cpu-recipe/cpu.json --work checkpoints/cpu-recipe
    python scripts/compare_cpu_recipes.py --only eps,v --minutes 4      # a subset, another budget
    python scripts/compare_cpu_recipes.py --sweep checkpoints/train-dimr-t3r-10min/small --num-samples 500 \
        --out runs/ablation-cpu-recipe/sampler-dimr-t3r.json              # guidance and sampler steps

Every candidate is a set of :class:`dimr.train.TrainConfig` overrides on one preset (default DiMR-T/3R,
offline shapes 32×32, seed 0). Each trains for the same **number of training images** — the budget
``--minutes`` × the idle throughput ``--images-per-s`` of this preset — so that a busy machine changes
how long the comparison takes, not what it compares; the record keeps each run's measured images/s,
which is what makes the budget "equal wall time". Then ``dimr evaluate`` on ``--num-samples`` samples
gives the shapes classifier's accuracy, the flagged fraction and the mean 1 − IoU; evaluation variants
(EMA off, other guidance weights) reuse the same checkpoint.

Resumable: a candidate whose result is in ``--out`` is skipped; a half-trained one resumes. One seed
per candidate: this ranks candidates for the recipe, it does not test a claim. Nothing here is a test.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import torch

from dimr.evaluate.report import EvaluateConfig, evaluate_checkpoint
from dimr.files import atomic_write_json
from dimr.provenance import hardware_info
from dimr.train import TrainConfig, train

#: name -> (what it tests, TrainConfig overrides); what a candidate does not set is the tiny recipe's, except
#: batch and learning rate, which are the recipe's before this comparison (64 and 1e-3) unless set.
BASE_BATCH, BASE_LR = 64, 1e-3
CANDIDATES = {
    "eps": ("the paper's ε target", dict(prediction="eps", loss_weighting="uniform", time_distribution="uniform")),
    "v": ("v target", dict(prediction="v", loss_weighting="uniform", time_distribution="uniform")),
    "x0": ("x₀ target", dict(prediction="x0", loss_weighting="uniform", time_distribution="uniform")),
    "v-minsnr": ("v target, min-SNR-5 weighting", dict(prediction="v", loss_weighting="min_snr",
                                                      time_distribution="uniform")),
    "v-logitnormal": ("v target, logit-normal(0, 1) times", dict(prediction="v", loss_weighting="uniform",
                                                                 time_distribution="logit_normal")),
    "v-b32-lr2e-3": ("v target, batch 32, lr 2e-3", dict(prediction="v", loss_weighting="uniform",
                                                         time_distribution="uniform", batch_size=32, lr=2e-3)),
    "v-b128-lr2e-3": ("v target, batch 128, lr 2e-3", dict(prediction="v", loss_weighting="uniform",
                                                           time_distribution="uniform", batch_size=128, lr=2e-3)),
    "v-ema0.9995": ("v target, EMA 0.9995", dict(prediction="v", loss_weighting="uniform",
                                                 time_distribution="uniform", ema_rate=0.9995)),
    "v-lr2e-3": ("v target, lr 2e-3", dict(prediction="v", loss_weighting="uniform", time_distribution="uniform",
                                           lr=2e-3)),
    "v-lr4e-3": ("v target, lr 4e-3", dict(prediction="v", loss_weighting="uniform", time_distribution="uniform",
                                           lr=4e-3)),
    "v-b32-lr4e-3": ("v target, batch 32, lr 4e-3", dict(prediction="v", loss_weighting="uniform",
                                                         time_distribution="uniform", batch_size=32, lr=4e-3)),
    "v-b16-lr2e-3": ("v target, batch 16, lr 2e-3", dict(prediction="v", loss_weighting="uniform",
                                                         time_distribution="uniform", batch_size=16, lr=2e-3)),
    "v-b32-lr2e-3-ln": ("v target, batch 32, lr 2e-3, logit-normal(0, 1) times", dict(
        prediction="v", loss_weighting="uniform", time_distribution="logit_normal", batch_size=32, lr=2e-3)),
    "v-b16-lr4e-3": ("v target, batch 16, lr 4e-3", dict(prediction="v", loss_weighting="uniform",
                                                         time_distribution="uniform", batch_size=16, lr=4e-3)),
    "v-b16-lr2e-3-ln": ("v target, batch 16, lr 2e-3, logit-normal(0, 1) times", dict(
        prediction="v", loss_weighting="uniform", time_distribution="logit_normal", batch_size=16, lr=2e-3)),
    "x0-b32-lr2e-3": ("x₀ target, batch 32, lr 2e-3", dict(prediction="x0", loss_weighting="uniform",
                                                          time_distribution="uniform", batch_size=32, lr=2e-3)),
    "x0-b16-lr2e-3": ("x₀ target, batch 16, lr 2e-3", dict(prediction="x0", loss_weighting="uniform",
                                                          time_distribution="uniform", batch_size=16, lr=2e-3)),
    "v-logitnormal-0.5": ("v target, logit-normal(−0.5, 1) times", dict(
        prediction="v", loss_weighting="uniform", time_distribution="logit_normal", time_loc=-0.5)),
    "v-logitnormal+0.5": ("v target, logit-normal(0.5, 1) times", dict(
        prediction="v", loss_weighting="uniform", time_distribution="logit_normal", time_loc=0.5)),
}
#: evaluation variants of each trained candidate: name -> EvaluateConfig overrides
EVAL_VARIANTS = {"ema": {}, "raw": {"use_ema": False}, "w1": {"guidance": 1.0}, "w3": {"guidance": 3.0}}


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def summarise(rep: dict) -> dict:
    """The figures the comparison ranks by, from a :func:`~dimr.evaluate.report.evaluate_checkpoint` report."""
    offline = next(iter(rep["rejection"].values()))
    geo = rep["geometric_distortion"]
    return {"accuracy": offline["accuracy"], "flagged_fraction": offline["flagged_fraction"],
            "mean_one_minus_iou": geo["mean_one_minus_iou"], "median_one_minus_iou": geo["median_one_minus_iou"],
            "fid_classifier": next((m["value"] for k, m in rep["metrics"].items() if k.startswith("fid")), None),
            "guidance_weight": rep["scale"]["guidance_weight"], "sampler_steps": rep["scale"].get("sampler_steps")}


def sweep_sampler(args) -> int:
    """``--sweep CKPT``: one trained model, evaluated at every CFG weight of ``--weights`` (at the recipe's
    sampler steps) and every step count of ``--sampler-steps`` (at the recipe's weight): what guidance and
    sampler steps buy at evaluation time, nothing retrained. Resumable per setting."""
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.exists() else {"results": {}}
    settings = [dict(guidance=w) for w in args.weights] + [dict(steps=n) for n in args.sampler_steps]
    settings = list({json.dumps(v, sort_keys=True): v for v in settings}.values())
    for vo in settings:
        name = ",".join(f"{k}={v:g}" for k, v in vo.items())
        if name in record["results"]:
            print(f"{name}: recorded, skipped", flush=True)
            continue
        rep = evaluate_checkpoint(EvaluateConfig(checkpoint=args.sweep, num_samples=args.num_samples, progress=False,
                                                 seed=args.seed, out=str(Path(args.work) / "sweep" / name), **vo))
        record["results"][name] = {**summarise(rep), "setting": vo}
        print(f"{name}: {json.dumps(record['results'][name])}", flush=True)
        record.update({
            "what": f"one trained model ({args.sweep}) evaluated on {args.num_samples} samples (sampling seed "
                    f"{args.seed}) at each CFG weight w and sampler step count; the other setting at the recipe's",
            "checkpoint": args.sweep, "num_samples": args.num_samples, "train": _train_scale(args.sweep),
            "hardware": {**hardware_info(), "threads": torch.get_num_threads()}, "git_commit": git_commit(),
            "script": "scripts/compare_cpu_recipes.py --sweep"})
        atomic_write_json(out, record)
    return 0


def _train_scale(checkpoint: str) -> dict:
    """Preset, steps, batch and recipe fields of the swept checkpoint (what the sweep's model is)."""
    from dimr.checkpoint import load_checkpoint
    path = Path(checkpoint)
    ckpt = load_checkpoint(path / "latest.pt" if path.is_dir() else path)
    tc = ckpt.get("train_config", {})
    return {"preset": ckpt.get("preset"), "step": ckpt.get("step"),
            **{k: tc.get(k) for k in ("batch_size", "lr", "prediction", "amp", "compile", "seed")}}


def run_candidate(name: str, overrides: dict, args, work: Path) -> dict:
    base = TrainConfig(preset=args.preset, seed=args.seed, progress=False, log_every=25, ckpt_every=200)
    # the comparison's baseline is the recipe it started from, pinned here so the record reproduces
    batch, lr = overrides.get("batch_size") or BASE_BATCH, overrides.get("lr") or BASE_LR
    steps = max(1, round(args.minutes * 60 * args.images_per_s / batch))
    cfg = TrainConfig(**{**base.__dict__, **overrides, "batch_size": batch, "lr": lr, "steps": steps})
    out = work / name
    t0 = time.perf_counter()
    summary = train(cfg, out, resume=(out / "latest.pt").exists())
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    ips = [r["images_per_s"] for r in rows[1:]] or [summary["images_per_s"]]
    result = {"name": name, "train": {k: v for k, v in cfg.__dict__.items() if k in overrides or k in ("steps", "batch_size", "lr")},
              "images": steps * batch, "train_wall_s": time.perf_counter() - t0,
              "images_per_s_median": sorted(ips)[len(ips) // 2], "final_loss": rows[-1]["loss"], "evaluations": {}}
    variants = EVAL_VARIANTS if name in args.eval_variants_for else {"ema": {}}
    for vname, vo in variants.items():
        rep = evaluate_checkpoint(EvaluateConfig(checkpoint=str(out), num_samples=args.num_samples, progress=False,
                                                 out=str(out / f"evaluate-{vname}"), **vo))
        result["evaluations"][vname] = {**summarise(rep), "use_ema": vo.get("use_ema", True)}
        print(f"{name}/{vname}: {json.dumps(result['evaluations'][vname])}", flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="DiMR-T/3R")
    ap.add_argument("--minutes", type=float, default=4.0, help="budget per candidate at --images-per-s")
    ap.add_argument("--images-per-s", type=float, default=100.0, help="idle training throughput of the preset")
    ap.add_argument("--num-samples", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", help="comma-separated candidate names (default: all)")
    ap.add_argument("--eval-variants-for", default="v", help="candidates also evaluated without EMA and at w = 1, 3")
    ap.add_argument("--work", default="checkpoints/cpu-recipe", help="checkpoints (not committed)")
    ap.add_argument("--out", default="runs/ablation-cpu-recipe/cpu.json")
    ap.add_argument("--sweep", metavar="CKPT", help="instead of training: evaluate this checkpoint at every "
                                                    "--weights and --sampler-steps setting")
    ap.add_argument("--weights", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0])
    ap.add_argument("--sampler-steps", type=int, nargs="+", default=[5, 25])
    args = ap.parse_args()
    if args.sweep:
        return sweep_sampler(args)
    args.eval_variants_for = set(args.eval_variants_for.split(","))
    names = args.only.split(",") if args.only else list(CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        ap.error(f"unknown candidates {unknown}; known: {', '.join(CANDIDATES)}")
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.exists() else {"results": {}}
    for name in names:
        if name in record["results"]:
            print(f"{name}: recorded, skipped", flush=True)
            continue
        what, overrides = CANDIDATES[name]
        result = run_candidate(name, overrides, args, Path(args.work) / args.preset.replace("/", "-"))
        result["what"] = what
        record["results"][name] = result
        record.update({
            "what": f"{args.preset} on the offline shapes (32×32, upright), one seed ({args.seed}) per candidate, "
                    f"each trained on the same number of images ({args.minutes:g} min at {args.images_per_s:g} "
                    f"images/s) and evaluated on {args.num_samples} samples",
            "preset": args.preset, "minutes": args.minutes, "images_per_s_budget": args.images_per_s,
            "num_samples": args.num_samples, "hardware": {**hardware_info(), "threads": torch.get_num_threads()},
            "git_commit": git_commit(), "script": "scripts/compare_cpu_recipes.py"})
        atomic_write_json(out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
