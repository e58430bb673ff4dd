"""Class-conditional sampling: checkpoint → DPM-Solver (with classifier-free guidance) → images.

    python -m dimr sample --checkpoint RUN/latest.pt --num-samples 64 --out RUN/samples
    python -m dimr sample --checkpoint RUN/latest.pt --steps 24 --skip logSNR --allocation full

The defaults are the official DiMR sampler (third-order DPM-Solver++, "fast" step allocation on a
time-uniform grid); the second line samples on a logSNR-uniform grid with every step at full order, the
grid the solver chapter measures against the official one on Gaussian data.

Sample ``i`` starts from noise seeded by ``(seed, i)``, so a sample does not depend on the batch
size or on which other samples are drawn.  Labels default to an even spread over the classes
(``i mod K``, the official ``evenly_sample``).  Outputs: ``grid.png`` (one row per class where that
fits) and ``samples.npz`` in the ADM evaluation-suite layout (``arr_0``: uint8 ``[N, H, W, 3]``,
``arr_1``: int64 labels).  Latent models are decoded with a local SD-VAE (``--vae DIR``).

From Python, :func:`sampler_from_checkpoint` is the one path from a checkpoint to pixels (the
evaluation and the training notebook use it too)::

    sampler = sampler_from_checkpoint("RUN/latest.pt", steps=25)   # device "auto", EMA weights
    images = sampler.draw(64, seed=0)                               # [64, C, H, W] in [−1, 1]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torchvision.utils import make_grid

from .cli import parser
from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .config import config_from_dict
from .device import free_cores_for, pick_device
from .diffusion import Denoiser, get_schedule, guided_model_fn, null_label, sample_dpm_solver
from .diffusion.dpm_solver import ALLOCATIONS, SKIP_TYPES
from .diffusion.guidance import weight_from_scale

__all__ = ["SamplerConfig", "CheckpointSampler", "sampler_from_checkpoint", "recipe_sampler", "sample_images",
           "checkpoint_context", "denoiser_from_checkpoint", "even_labels", "to_uint8", "save_grid", "save_npz",
           "load_npz", "cli"]

#: what a latent model without a decoder is told (``python -m dimr sample`` and ``evaluate`` alike)
NEEDS_VAE = "this is a latent model: pass --vae DIR (a local sd-vae-ft-ema folder) to decode"


@dataclass(frozen=True)
class SamplerConfig:
    """DPM-Solver settings; defaults are the official DiMR sampler (docs/official-code.md §6): data prediction,
    third order, singlestep "fast" allocation on a time-uniform grid. ``allocation="full"`` runs every step at
    ``order`` (:func:`dimr.diffusion.step_orders`); with ``skip="logSNR"`` it is the solver chapter's grid."""

    steps: int = 50
    order: int = 3
    method: str = "singlestep"
    predict: str = "data"
    skip: str = "time_uniform"
    guidance: float = 1.0  # w in ε_u + w(ε_c − ε_u); 1 = no guidance
    allocation: str = "fast"


def _noise(seed: int, indices: range, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed * 1_000_003 + i))
                        for i in indices])


@torch.no_grad()
def sample_images(denoiser, labels: torch.Tensor, sampler: SamplerConfig, seed: int = 0, batch_size: int = 64,
                  device="cpu", decode=None, progress: bool = True) -> torch.Tensor:
    """Draw ``len(labels)`` samples from a :class:`~dimr.diffusion.Denoiser` (which knows the network's
    noise input, null label and prediction). Returns float images in [−1, 1], ``[N, C, H, W]`` (after
    ``decode`` for latent models). ``decode(z) -> images`` maps latents to pixels."""
    model_cfg, schedule = denoiser.cfg, denoiser.schedule
    shape = (model_cfg.in_channels, model_cfg.image_size, model_cfg.image_size)
    n = len(labels)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n, desc="sample", unit="img", dynamic_ncols=True)
    outs = []
    for start in range(0, n, batch_size):
        idx = range(start, min(start + batch_size, n))
        x_T = _noise(seed, idx, shape).to(device)
        y = labels[start:idx.stop].to(device)
        eps_fn = guided_model_fn(denoiser, y, sampler.guidance)
        x0 = sample_dpm_solver(eps_fn, x_T, schedule, sampler.steps, order=sampler.order, method=sampler.method,
                               predict=sampler.predict, skip=sampler.skip, allocation=sampler.allocation)
        if decode is not None:
            x0 = decode(x0)
        outs.append(x0.float().clamp(-1, 1).cpu())
        if bar is not None:
            bar.update(len(idx))
    if bar is not None:
        bar.close()
    return torch.cat(outs)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` in [−1, 1] → uint8 ``[N, H, W, 3]`` (grey images are repeated to RGB)."""
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return x.permute(0, 2, 3, 1).numpy()


def save_grid(images: np.ndarray, path: str | Path, ncol: int | None = None, pad: int = 2, scale: int = 2) -> Path:
    """uint8 ``[N, H, W, 3]`` → a PNG grid (``ncol`` columns, default √N, white ``pad``-pixel gaps; torchvision's
    ``make_grid``), each image upscaled ×``scale``."""
    from PIL import Image

    ncol = ncol or math.ceil(math.sqrt(len(images)))
    grid = make_grid(torch.from_numpy(images).permute(0, 3, 1, 2), nrow=ncol, padding=pad, pad_value=255)
    img = Image.fromarray(grid.permute(1, 2, 0).numpy())
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def save_npz(path: str | Path, images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """The ADM evaluation suite's layout: ``arr_0`` uint8 ``[N, H, W, 3]``, ``arr_1`` labels."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 [N, H, W, 3] images, got {images.dtype} {images.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"arr_0": images}
    if labels is not None:
        arrays["arr_1"] = np.asarray(labels, dtype=np.int64)
    np.savez(path, **arrays)
    return path


def load_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverse of :func:`save_npz`: ``(images uint8 [N, H, W, 3], labels or None)``."""
    with np.load(path) as f:
        images = f["arr_0"]
        labels = f["arr_1"] if "arr_1" in f.files else None
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"{path}: arr_0 must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
    return images, labels


def even_labels(n: int, num_classes: int) -> torch.Tensor:
    """``i mod K`` for i < n: every class equally often (the official ``evenly_sample``)."""
    return torch.arange(n) % num_classes


def checkpoint_context(ckpt: dict) -> dict:
    """What sampling needs from a checkpoint: schedule, prediction, null class, class names and recipe
    defaults. A checkpoint that records no prediction target predates the option and predicts ε."""
    recipe = ckpt.get("recipe") or {}
    train = ckpt.get("train_config") or {}
    data = ckpt.get("dataset") or {}
    num_classes = data.get("num_classes") or ckpt["config"]["num_classes"]
    return {"schedule": recipe.get("schedule", "vp_linear"), "num_classes": num_classes,
            "prediction": train.get("prediction") or recipe.get("prediction") or "eps",
            "null_class": null_label(config_from_dict(ckpt["config"]), num_classes),
            "class_names": data.get("class_names") or [str(i) for i in range(num_classes)],
            "steps": recipe.get("sampling_steps", 50), "skip": recipe.get("sampling_skip", "time_uniform"),
            "cfg_scale": recipe.get("cfg_scale", 0.0),
            "latent": recipe.get("latent", False)}


def denoiser_from_checkpoint(ckpt: dict, use_ema: bool = True, device="cpu") -> Denoiser:
    """The checkpoint's network (EMA weights by default) as a :class:`~dimr.diffusion.Denoiser`."""
    ctx = checkpoint_context(ckpt)
    model = model_from_checkpoint(ckpt, use_ema=use_ema, device=device)
    return Denoiser(model, get_schedule(ctx["schedule"]), ctx["prediction"], ctx["null_class"])


def recipe_sampler(ctx: dict, steps: int | None = None, skip: str | None = None, guidance: float | None = None,
                   **solver) -> SamplerConfig:
    """The checkpoint recipe's sampler (``ctx`` from :func:`checkpoint_context`): its steps, time grid
    and CFG weight ``w = 1 + s`` from its scale ``s``. A given value (not ``None``) overrides the recipe's; ``solver`` sets the other :class:`SamplerConfig` fields (order, method, predict, allocation)."""
    if steps is not None and steps < 1:
        raise ValueError(f"sampler steps must be at least 1, got {steps} (leave them out for the recipe's)")
    w = guidance if guidance is not None else weight_from_scale(ctx["cfg_scale"])
    return SamplerConfig(steps=steps if steps is not None else ctx["steps"], skip=skip or ctx["skip"], guidance=w,
                         **solver)


def _vae_decoder(vae_dir: str | os.PathLike, device) -> Callable[[torch.Tensor], torch.Tensor]:
    """Latents ``[N, 4, h, w]`` (scaled by the SD-VAE factor) → pixels ``[N, 3, 8h, 8w]`` in about [−1, 1]."""
    from .data.latents import SCALE_FACTOR, load_vae  # diffusers: only for latent models

    vae = load_vae(vae_dir, device=device)

    def decode(z: torch.Tensor) -> torch.Tensor:
        return vae.decode(z / SCALE_FACTOR).sample

    return decode


@dataclass(frozen=True)
class CheckpointSampler:
    """A checkpoint ready to draw pixel images; build it with :func:`sampler_from_checkpoint`.

    ``checkpoint`` is the loaded checkpoint dict, ``context`` its :func:`checkpoint_context`,
    ``settings`` the DPM-Solver settings :meth:`draw` uses, ``decode`` the VAE decoder of a latent
    model (``None`` for a pixel model), ``threads`` how many CPU threads it draws with and why (None on a GPU)."""

    checkpoint: dict
    context: dict
    denoiser: Denoiser
    settings: SamplerConfig
    device: torch.device
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None
    threads: str | None = None

    @property
    def num_classes(self) -> int:
        """K, the number of classes the model is conditioned on."""
        return self.context["num_classes"]

    def draw(self, n: int | None = None, labels: torch.Tensor | None = None, seed: int = 0, batch_size: int = 64,
             progress: bool = True) -> torch.Tensor:
        """``n`` class-balanced samples (labels ``i mod K``), or one per entry of ``labels`` (int ``[N]``).
        Returns float pixels in [−1, 1], ``[N, C, H, W]`` on the CPU (decoded for latent models);
        sample ``i`` depends only on ``(seed, i)`` (:func:`sample_images`)."""
        if labels is None:
            if n is None:
                raise ValueError("draw needs n or labels")
            labels = even_labels(n, self.num_classes)
        return sample_images(self.denoiser, labels, self.settings, seed=seed, batch_size=batch_size,
                             device=self.device, decode=self.decode, progress=progress)


def sampler_from_checkpoint(checkpoint: dict | str | os.PathLike, device: str | torch.device = "auto",
                            use_ema: bool = True, vae: str | os.PathLike | None = None,
                            **settings) -> CheckpointSampler:
    """Checkpoint (a loaded dict, a file or a run folder) → network → denoiser (→ VAE decoder) on
    ``device`` (:func:`~dimr.device.pick_device`). ``settings`` go to :func:`recipe_sampler` (steps,
    skip, guidance, order, method, predict, allocation; ``None`` takes the recipe's).

    On the CPU it takes as many torch threads as there are cores free now (:func:`~dimr.device.free_cores_for`,
    as training does): a thread that waits for a core another process holds slows every step many times over.

    Raises :class:`~dimr.checkpoint.CheckpointError` for an unreadable checkpoint or a latent model
    without ``vae`` (a local SD-VAE folder), before any network is built."""
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    ctx = checkpoint_context(ckpt)
    if ctx["latent"] and not vae:
        raise CheckpointError(NEEDS_VAE)
    device = pick_device(device)
    threads = free_cores_for(device)
    denoiser = denoiser_from_checkpoint(ckpt, use_ema=use_ema, device=device)
    decode = _vae_decoder(vae, device) if ctx["latent"] else None
    return CheckpointSampler(ckpt, ctx, denoiser, recipe_sampler(ctx, **settings), device, decode, threads)


def _parser() -> argparse.ArgumentParser:
    ap = parser("sample", __doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a dimr checkpoint file or run folder")
    ap.add_argument("--out", help="output folder (default: CHECKPOINT_DIR/samples)")
    ap.add_argument("--num-samples", type=int, default=64, help="images to draw")
    ap.add_argument("--batch-size", type=int, default=64, help="images per sampler batch (CFG doubles it)")
    ap.add_argument("--classes", type=int, nargs="+", help="labels to cycle through (default: all classes evenly)")
    ap.add_argument("--steps", type=int, help="NFE (default: the recipe's sampling steps)")
    ap.add_argument("--order", type=int, default=3, choices=[1, 2, 3], help="DPM-Solver order")
    ap.add_argument("--method", default="singlestep", choices=["singlestep", "multistep"], help="DPM-Solver variant")
    ap.add_argument("--predict", default="data", choices=["data", "noise"],
                    help="the solver's parametrisation (DPM-Solver++ is data)")
    ap.add_argument("--skip", choices=SKIP_TYPES,
                    help="DPM-Solver time grid (default: the recipe's; the official sampler's is time_uniform); "
                         "logSNR with --allocation full is the grid the solver chapter compares with the official one")
    ap.add_argument("--allocation", default="fast", choices=ALLOCATIONS,
                    help="the orders of the steps: fast (DPM-Solver-fast, the official sampler's; exactly --steps NFE) "
                         "or full (every step at --order; singlestep then uses order x floor(steps/order) NFE)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--guidance", type=float, help="CFG weight w (1 = off)")
    g.add_argument("--cfg-scale", type=float, help="official scale s, w = 1 + s (default: the recipe's)")
    ap.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")
    ap.add_argument("--seed", type=int, default=0, help="seed of the initial noise")
    ap.add_argument("--vae", help="local SD-VAE folder (latent models only)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:K")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def cli(argv: list[str]) -> int:
    """``python -m dimr sample --checkpoint RUN/latest.pt --out DIR``"""
    args = _parser().parse_args(argv)
    guidance = args.guidance if args.guidance is not None else (
        None if args.cfg_scale is None else weight_from_scale(args.cfg_scale))
    try:
        sampler = sampler_from_checkpoint(args.checkpoint, args.device, use_ema=not args.no_ema, vae=args.vae,
                                          steps=args.steps, skip=args.skip, guidance=guidance, order=args.order,
                                          method=args.method, predict=args.predict, allocation=args.allocation)
    except (CheckpointError, FileNotFoundError, OSError, ValueError) as e:  # ValueError: a bad --device
        print(f"dimr sample: {e}", file=sys.stderr)
        return 2
    if sampler.threads:
        print(f"threads: {sampler.threads}", file=sys.stderr)
    k = sampler.num_classes
    if args.classes:
        bad = [c for c in args.classes if not 0 <= c < k]
        if bad:
            print(f"dimr sample: classes {bad} outside [0, {k})", file=sys.stderr)
            return 2
        labels = torch.tensor(args.classes)[torch.arange(args.num_samples) % len(args.classes)]
    else:
        labels = even_labels(args.num_samples, k)
    images = sampler.draw(labels=labels, seed=args.seed, batch_size=args.batch_size, progress=not args.no_progress)
    out = Path(args.out) if args.out else Path(sampler.checkpoint["path"]).parent / "samples"
    u8 = to_uint8(images)
    order = np.argsort(labels.numpy(), kind="stable")  # the grid shows one class per row
    ncol = args.num_samples // k if not args.classes and args.num_samples % k == 0 else None
    save_grid(u8[order], out / "grid.png", ncol=ncol)
    save_npz(out / "samples.npz", u8, labels.numpy())
    print(f"{len(u8)} samples (steps={sampler.settings.steps}, w={sampler.settings.guidance:g}) -> "
          f"{out / 'grid.png'}, {out / 'samples.npz'}")
    return 0
