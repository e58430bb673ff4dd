"""Where does a trained denoiser fail: at which noise levels, and does the sampler or the model lose the shape?

    python scripts/diagnose_denoiser.py --checkpoint checkpoints/train-dimr-t3r-20min/small/latest.pt \
        --out runs/diagnose-dimr-t3r-20min/small

Two measurements on real training images of the checkpoint's dataset (EMA weights):

1. **Noise-prediction error per time** ``E‖ε̂ − ε‖²`` next to the error of the *identity* predictor
   ``ε̂ = σ_t·x_t`` (no network at all), whose error ``α_t²(α_t² + σ_t²·E x₀²)`` vanishes as ``t → 1``.
   Where the network is worse than the identity, the implied clean image ``x̂₀ = (x_t − σ_t ε̂)/α_t``
   is off by the error divided by ``α_t`` (about 150× at ``t = 1`` on the VP linear schedule).
2. **Reconstructions**: noise the images to ``t₀`` and solve the probability-flow ODE back with the
   package's DPM-Solver (same settings as sampling). Clean reconstructions from small ``t₀`` and broken
   ones from large ``t₀`` place the failure in the high-noise part of the trajectory, where the shape
   is decided; every sampler then inherits it.

Writes ``diagnosis.json`` and ``reconstructions.png`` (row 0: the real images; then one row per ``t₀``)
under ``--out``. Figures are printed; nothing here is a test.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from dimr.checkpoint import load_checkpoint
from dimr.diffusion import sample_dpm_solver
from dimr.diffusion.guidance import model_eps_fn
from dimr.evaluate.reference import checkpoint_dataset
from dimr.sample import denoiser_from_checkpoint, save_grid, to_uint8

TIMES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
STARTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--num-images", type=int, default=64)
    ap.add_argument("--steps", type=int, default=25, help="DPM-Solver NFE for the reconstructions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    denoiser = denoiser_from_checkpoint(ckpt)
    schedule = denoiser.schedule
    _, ds = checkpoint_dataset(ckpt)
    n = args.num_images
    pairs = [ds[i] for i in range(n)]
    x0 = torch.stack([p[0] for p in pairs])
    y = torch.stack([p[1] for p in pairs])
    g = torch.Generator().manual_seed(args.seed)
    second_moment = float(x0.pow(2).mean())

    per_time = []
    with torch.no_grad():
        for t in TIMES:
            eps = torch.randn(x0.shape, generator=g)
            tt = torch.full((n,), t)
            x_t = schedule.add_noise(x0, eps, tt)
            pred = denoiser.eps(x_t, tt, y)
            a, s = float(schedule.alpha(t)), float(schedule.sigma(t))
            net = float((pred - eps).pow(2).mean())
            ident = float((s * x_t - eps).pow(2).mean())
            per_time.append({"t": t, "alpha": a, "sigma": s, "network_mse": net, "identity_mse": ident,
                             "identity_mse_expected": a * a * (a * a + s * s * second_moment),
                             "implied_x0_rmse": s * net ** 0.5 / a})
            print(json.dumps(per_time[-1]), flush=True)

    k = min(n, 16)
    rows, recon = [x0[:k]], []
    eps_fn = model_eps_fn(denoiser, y[:k])
    with torch.no_grad():
        for t0 in STARTS:
            eps = torch.randn(x0[:k].shape, generator=g)
            x_t = schedule.add_noise(x0[:k], eps, torch.full((k,), t0))
            out = sample_dpm_solver(eps_fn, x_t, schedule, args.steps, t_start=t0).clamp(-1, 1)
            rows.append(out)
            rec = {"t0": t0, "rmse_to_original": float((out - x0[:k]).pow(2).mean().sqrt()),
                   "grey_fraction": float(((out > -0.8) & (out < 0.8)).float().mean())}
            recon.append(rec)
            print(json.dumps(rec), flush=True)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_grid(to_uint8(torch.cat(rows)), out_dir / "reconstructions.png", ncol=k)
    record = {"checkpoint": str(args.checkpoint), "step": ckpt.get("step"), "preset": ckpt.get("preset"),
              "scale": f"{n} training images of {type(ds).__name__}, EMA weights, CPU",
              "per_time": per_time, "reconstructions": recon, "reconstruction_steps": args.steps,
              "reconstruction_rows": ["real"] + [f"t0={t0}" for t0 in STARTS]}
    (out_dir / "diagnosis.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
