"""The one training loop: every preset, one process or many (``torchrun``), CPU or GPU.

    python -m dimr train --preset DiMR-T/3R --out runs-local/t3r                 # offline shapes, defaults
    python -m dimr train --preset DiMR-T/3R --out runs-local/t3r --steps 6 --resume
    torchrun --nproc_per_node 8 -m dimr train --preset DiMR-XL/2R --dataset latents --data-root …

What it does, per step (paper §3, eq. (8); docs/official-code.md §4):

1. take the step's batch (its indices are a pure function of seed, step and rank: see
   :class:`StepBatchSampler`), drop labels to the null class with probability ``p_uncond`` (CFG);
2. draw t (the recipe's time distribution) and ε ~ N(0, I) from a generator seeded by (seed, step)
   (:func:`draw_noise`), form ``x_t = α_t x_0 + σ_t ε``; the :class:`~dimr.diffusion.Denoiser` feeds the
   network what its family expects (log-SNR for DiMR) and reads its outputs as the recipe's prediction
   target (ε for the paper's recipes, v for the CPU-scale one);
3. backpropagate the multi-scale loss (:func:`training_loss`), AdamW (no weight decay on the TD gates
   ``nodecay_*``), linear warm-up then constant learning rate, EMA of the weights.

Because every random draw is derived from (seed, step) and the checkpoint holds model, EMA,
optimiser, step and RNG states, ``--resume`` continues *exactly*: on CPU, a run killed at any point
and resumed ends bitwise equal to an uninterrupted one.  Checkpoints are written atomically.

Reading order, as the run goes: :func:`setup` returns a :class:`Run` (config, processes, data, network,
EMA, AdamW, precision); :func:`train_step` is one optimiser step; :class:`Checkpointer` writes and
restores ``latest.pt``; :class:`MetricsLog` appends ``metrics.jsonl``; :class:`StopRequest` turns
SIGTERM, Ctrl-C and ``--time-limit`` into one decision that every process takes after the same step;
:func:`train` is the loop that joins them.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from .checkpoint import CheckpointError, load_checkpoint, numpy_rng_state, save_checkpoint, set_numpy_rng_state
from .cli import parser
from .config import config_to_dict, from_namespace
from .data import build_dataset
from .data.shapes import ROTATIONS
from .device import AMP_CHOICES, auto_precision, autocast_dtype, pick_device, tune_cpu_allocator, use_free_cores
from .diffusion import (PREDICTIONS, TIME_DISTRIBUTIONS, WEIGHTINGS, Denoiser, draw_training_t, drop_labels,
                        get_schedule, label_rows, loss_weight, multiscale_loss, null_label)
from .files import atomic_write, stale_temporaries
from .nn import build_model
from .nn.tdln import NODECAY_SUFFIXES
from .pace import PaceWatch, pace_key
from .runs import hardware_info
from .presets import get_preset

__all__ = ["TrainConfig", "snapshot_name", "resolve_config", "adapt_model_config", "param_groups", "build_optimizer", "lr_at", "EMA",
           "StepBatchSampler", "draw_noise", "training_loss", "choose_amp", "choose_compile", "Run", "setup",
           "train_step", "Checkpointer", "MetricsLog", "StopRequest", "TrainingDiverged", "DIVERGED_EXIT", "train", "cli"]

CHECKPOINT_NAME = "latest.pt"


def snapshot_name(step: int) -> str:
    """``step-NNNNNNN.pt``: the copy of the checkpoint a run keeps at ``step`` (``snapshot_steps``)."""
    return f"step-{step:07d}.pt"
#: exit code of ``python -m dimr train`` when the loss stops being finite (a recorded outcome, not a crash)
DIVERGED_EXIT = 3


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite at ``step``. The run's ``summary.json`` says so
    (``diverged_at_step``); the weights of that step are not checkpointed, so ``latest.pt`` (if any) is
    the last periodic checkpoint before it."""

    def __init__(self, step: int, loss: float, summary_path: Path):
        self.step, self.loss, self.summary_path = step, loss, summary_path
        super().__init__(f"the loss became {loss} at step {step}: the run diverged (recorded in {summary_path}); "
                         "lower the learning rate or check the data")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. ``None`` fields take the preset's :class:`~dimr.presets.Recipe`.

    ``batch_size`` is the *global* batch per optimiser step (split over processes and accumulation
    steps); ``steps`` is the run's total length (a resumed run trains up to it)."""

    preset: str = "DiMR-T/3R"
    dataset: str = "shapes"
    data_root: str | None = None
    dataset_size: int = 20_000
    shapes_rotation: str = "upright"
    steps: int | None = None
    batch_size: int | None = None
    grad_accum: int = 1
    lr: float | None = None
    weight_decay: float | None = None
    betas: tuple[float, float] | None = None
    warmup_steps: int | None = None
    ema_rate: float | None = None
    ema_warmup: bool | None = None
    p_uncond: float | None = None
    loss_coeffs: tuple[float, ...] | None = None
    loss_target: str = "official"
    prediction: str | None = None
    loss_weighting: str | None = None
    min_snr_gamma: float | None = None
    time_distribution: str | None = None
    time_loc: float | None = None
    time_scale: float | None = None
    decay_time_gates: bool = False
    amp: str = "auto"
    grad_checkpointing: bool = False
    compile: str = "auto"
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 500
    #: steps at which a copy of the checkpoint is kept as ``step-NNNNNNN.pt`` (learning curves: one run
    #: evaluated at several lengths; a snapshot at step k is the state a k-step run ends with)
    snapshot_steps: tuple[int, ...] = ()
    num_workers: int = 0
    device: str = "auto"
    progress: bool = True


#: fields that may change between a run and its resumption without changing its result
RESUMABLE_CHANGES = {"steps", "log_every", "ckpt_every", "snapshot_steps", "num_workers", "device", "progress", "compile"}
#: ``compile``: ``"on"`` / ``"off"``, or ``"auto"`` (see :func:`choose_compile`)
COMPILE_CHOICES = ("auto", "on", "off")
#: the shortest run ``compile="auto"`` compiles: a cold compile of a tiny preset costs a minute or two of
#: two cores (seconds once the inductor cache holds it), repaid only by runs of many hundred steps
COMPILE_MIN_STEPS, COMPILE_MIN_SECONDS = 1000, 300.0
#: what a checkpoint written before a field existed trained with (so old runs resume and load as ε)
LEGACY_DEFAULTS = {"prediction": "eps", "loss_weighting": "uniform", "min_snr_gamma": 5.0,
                   "time_distribution": "uniform", "time_loc": 0.0, "time_scale": 1.0}


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """Fill every ``None`` from the preset's recipe; validate choices."""
    recipe = get_preset(cfg.preset).recipe
    fill = dict(steps=recipe.iterations, batch_size=recipe.batch_size, lr=recipe.lr,
                weight_decay=recipe.weight_decay, betas=tuple(recipe.betas), warmup_steps=recipe.warmup_steps,
                ema_rate=recipe.ema_rate, ema_warmup=recipe.ema_warmup, p_uncond=recipe.p_uncond,
                loss_coeffs=tuple(recipe.loss_coeffs), prediction=recipe.prediction,
                loss_weighting=recipe.loss_weighting, min_snr_gamma=recipe.min_snr_gamma,
                time_distribution=recipe.time_distribution, time_loc=recipe.time_loc, time_scale=recipe.time_scale)
    out = dataclasses.replace(cfg, **{k: v for k, v in fill.items() if getattr(cfg, k) is None})
    out = dataclasses.replace(out, betas=tuple(out.betas), loss_coeffs=tuple(out.loss_coeffs))
    if isinstance(out.compile, bool):  # the field was a flag before "auto" existed
        out = dataclasses.replace(out, compile="on" if out.compile else "off")
    if out.compile not in COMPILE_CHOICES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_CHOICES)}, got {out.compile!r}")
    if out.amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {out.amp!r}")
    for name, allowed in (("prediction", PREDICTIONS), ("loss_weighting", WEIGHTINGS),
                          ("time_distribution", TIME_DISTRIBUTIONS)):
        if getattr(out, name) not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(out, name)!r}")
    if out.loss_target not in ("official", "paper"):
        raise ValueError(f"loss_target must be 'official' or 'paper', got {out.loss_target!r}")
    if out.steps < 1 or out.batch_size < 1 or out.grad_accum < 1:
        raise ValueError("steps, batch_size and grad_accum must be positive")
    if not 0.0 <= out.ema_rate < 1.0:
        raise ValueError(f"ema_rate must be in [0, 1), got {out.ema_rate}")
    return out


def adapt_model_config(model_cfg, dataset, p_uncond: float):
    """The preset's network, fitted to the data: input channels and size from the data, and
    ``num_classes = K + 1`` when CFG label dropout is on (index K is the null label), else ``K``
    (DiT always adds its own null row)."""
    c, h, w = dataset.image_shape
    if h != w:
        raise ValueError(f"square inputs only, got {h}×{w}")
    k = label_rows(model_cfg, dataset.num_classes, label_dropout=p_uncond > 0)
    return dataclasses.replace(model_cfg, in_channels=c, image_size=h, num_classes=k)


def param_groups(model: nn.Module, weight_decay: float, decay_time_gates: bool = False) -> list[dict]:
    """The official AdamW groups (docs/official-code.md §5): weight decay on everything except the TD gates
    (``nodecay_weight``/``nodecay_bias``, and the paper-form ``gate_weight``/``gate_bias``).
    Frozen parameters (DiT's fixed positions) are left out."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith(NODECAY_SUFFIXES) and not decay_time_gates else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """The run's AdamW over :func:`param_groups` of ``model`` at ``cfg``'s learning rate and betas (a resolved
    config: :func:`resolve_config`); ``model`` may be any network with the official parameter names."""
    # fused: one kernel for all parameters instead of a loop over them (the same update, several times faster)
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay, cfg.decay_time_gates), lr=cfg.lr,
                             betas=cfg.betas, eps=1e-8, fused=device.type in ("cpu", "cuda"))


def lr_at(step: int, base_lr: float, warmup_steps: int) -> float:
    """Linear warm-up then constant (official ``LambdaLR(min(step/warmup, 1))``): ``step`` = updates done."""
    return base_lr * (min(step / warmup_steps, 1.0) if warmup_steps > 0 else 1.0)


class EMA:
    """Exponential moving average of the parameters (official: copied at step 0, rate 0.9999, no
    warm-up; ``warmup=True`` uses ``min(rate, (1 + n)/(10 + n))`` for short runs)."""

    def __init__(self, model: nn.Module, rate: float, warmup: bool = False):
        self.rate, self.warmup = rate, warmup
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters()}

    def rate_at(self, step: int) -> float:
        return min(self.rate, (1 + step) / (10 + step)) if self.warmup else self.rate

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        names, params = zip(*model.named_parameters())
        # one fused call over all tensors instead of one small kernel per parameter (same arithmetic)
        torch._foreach_lerp_([self.shadow[n] for n in names], [p.detach() for p in params], 1.0 - self.rate_at(step))

    def state_dict(self, model: nn.Module) -> dict:
        """A full model state dict with EMA parameters (buffers from ``model``)."""
        state = model.state_dict()
        return {k: (self.shadow[k].clone() if k in self.shadow else v.clone()) for k, v in state.items()}

    def load_state_dict(self, state: dict) -> None:
        for n in self.shadow:
            self.shadow[n].copy_(state[n])


def _seed_for(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix-style), so per-step generators never collide."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (int(p) + 0x9E3779B97F4A7C15 + (x << 6) + (x >> 2))) & 0xFFFFFFFFFFFFFFFF
        x = (x * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return x & 0x7FFFFFFFFFFFFFFF


class StepBatchSampler(Sampler):
    """Index lists for steps ``start..total-1``: sample ``k`` of the run (counted over steps,
    accumulation micro-steps and ranks) is item ``perm_e[k mod N]`` with ``e = k // N`` and ``perm_e`` a
    permutation seeded by (seed, e). A pure function of (seed, step, rank): resumable and DDP-sharded."""

    def __init__(self, n_items: int, local_batch: int, start_step: int, total_steps: int, seed: int,
                 rank: int = 0, world: int = 1, accum: int = 1):
        self.n, self.local, self.start, self.total = n_items, local_batch, start_step, total_steps
        self.seed, self.rank, self.world, self.accum = seed, rank, world, accum
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            g = torch.Generator().manual_seed(_seed_for(self.seed, 0xDA7A, epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def sample_ids(self, step: int, micro: int = 0) -> range:
        """Run-global ids ``k`` of the samples this rank takes at (step, micro)."""
        first = ((step * self.accum + micro) * self.world + self.rank) * self.local
        return range(first, first + self.local)

    def indices(self, step: int, micro: int = 0) -> list[int]:
        return [int(self._perm(k // self.n)[k % self.n]) for k in self.sample_ids(step, micro)]

    def __iter__(self):
        for step in range(self.start, self.total):
            for micro in range(self.accum):
                yield self.indices(step, micro)

    def __len__(self) -> int:
        return (self.total - self.start) * self.accum


def draw_noise(step: int, sample_ids: range, y: torch.Tensor, shape, schedule, cfg: TrainConfig,
               null_class: int | None):
    """Label dropout, diffusion time and noise for the samples ``sample_ids`` of optimiser step ``step``.

    All draws of a step come from one generator seeded by (seed, step), made for the step's whole
    *global* batch (``cfg.batch_size`` samples, run-global ids ``step·batch_size …``); each process and
    accumulation micro-step takes its own rows. So the draws do not depend on how samples are split over
    processes — ``torchrun`` with K processes trains the same run as one process (up to float summation
    order) — and a resumed run draws exactly what the uninterrupted one drew.
    ``y: [b]``; returns ``(y [b], t [b], eps [b, *shape])`` on the CPU."""
    g = torch.Generator().manual_seed(_seed_for(cfg.seed, 0x5EED, step))
    n = cfg.batch_size
    rows = torch.tensor([k - step * n for k in sample_ids])
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= n):
        raise ValueError(f"sample ids {sample_ids} are not in step {step}'s batch of {n}")
    uniform = torch.rand(n, generator=g)[rows]
    t = draw_training_t(schedule, n, g, cfg.time_distribution, cfg.time_loc, cfg.time_scale)[rows]
    eps = torch.randn((n, *shape), generator=g)[rows]
    return drop_labels(y.cpu(), cfg.p_uncond, null_class, uniform=uniform), t, eps


def training_loss(fwd, schedule, x0: torch.Tensor, y: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                  cfg: TrainConfig, amp_dtype=None):
    """The training objective for one batch: eq. (8) on the recipe's prediction target, weighted over time.

    ``fwd(x_t, t, y) -> list[Tensor]`` is the :class:`~dimr.diffusion.Denoiser` (possibly wrapped by DDP or
    ``torch.compile``); ``x0, eps: [B, C, H, W]``, ``y, t: [B]``. Returns a
    :class:`~dimr.diffusion.MultiScaleLoss`."""
    x_t = schedule.add_noise(x0, eps, t)
    with torch.autocast(x0.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        preds = fwd(x_t, t, y)
    alpha, sigma = schedule.alpha(t), schedule.sigma(t)
    weight = loss_weight((alpha / sigma) ** 2, cfg.prediction, cfg.loss_weighting, cfg.min_snr_gamma)
    return multiscale_loss([p.float() for p in preds], eps, cfg.loss_coeffs, cfg.loss_target,
                           prediction=cfg.prediction, x0=x0, alpha=alpha, sigma=sigma, weight=weight)


def choose_amp(cfg: TrainConfig, device: torch.device) -> tuple[str, str]:
    """``cfg.amp`` made concrete for this run (one of :data:`~dimr.device.AMP_CHOICES` but ``"auto"``),
    with the reason the run records: an explicit choice stands; ``"auto"`` follows what the device can do
    (:func:`~dimr.device.auto_precision`), never a timing."""
    if cfg.amp != "auto":
        return cfg.amp, "asked for"
    return auto_precision(device)


def choose_compile(cfg: TrainConfig, device: torch.device, steps_to_run: int, time_limit_s: float | None) -> bool:
    """Whether this run trains through ``torch.compile``.

    ``"on"``/``"off"`` decide; ``"auto"`` compiles on CPUs (where inductor's fused kernels train the tiny
    presets faster than eager: ``runs/bench/archive/cpu-before-after.json``) when the run is long enough to repay the
    compile: at least :data:`COMPILE_MIN_STEPS` steps still to go and no time limit under
    :data:`COMPILE_MIN_SECONDS`. On CUDA ``"auto"`` stays eager (not measured here)."""
    if cfg.compile != "auto":
        return cfg.compile == "on"
    long_enough = steps_to_run >= COMPILE_MIN_STEPS and (time_limit_s is None or time_limit_s >= COMPILE_MIN_SECONDS)
    return device.type == "cpu" and long_enough


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": numpy_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    set_numpy_rng_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: str) -> _Dist:
    """This process's rank and device: one process, or one of ``WORLD_SIZE`` under ``torchrun`` (NCCL on
    GPUs, one per local rank; gloo on CPUs)."""
    device, world = pick_device(device), int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return _Dist(device=device)
    local, cuda = int(os.environ.get("LOCAL_RANK", "0")), device.type == "cuda"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
    return _Dist(dist.get_rank(), world, local, torch.device(f"cuda:{local}") if cuda else device)


def _from_rank0(choice: str, choices: tuple[str, ...], env: _Dist) -> str:
    """Rank 0's ``choice`` on every process (a timing-based choice may differ between ranks)."""
    if env.world == 1:
        return choice
    index = torch.tensor([choices.index(choice)], device=env.device)
    dist.broadcast(index, 0)
    return choices[int(index)]


def _check_resume(saved: dict, cfg: TrainConfig, path) -> None:
    saved = {**LEGACY_DEFAULTS, **saved}
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs now {v!r}" for k, v in config_to_dict(cfg).items()
             if k not in RESUMABLE_CHANGES and saved.get(k) != v]
    if diffs:
        raise CheckpointError(f"cannot resume from {path}: the run's settings differ ({'; '.join(diffs)}). "
                              "Resume with the same settings, or start a new --out.")


@dataclass
class Run:
    """The pieces of one training run, as :func:`setup` builds them (``fwd`` and ``cfg`` may change once:
    a failed ``torch.compile`` under ``compile="auto"`` falls back to eager)."""

    cfg: TrainConfig
    env: _Dist
    out: Path
    preset: Any
    dataset: Any
    model_cfg: Any
    schedule: Any
    null_class: int | None
    model: nn.Module
    ema: EMA
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    net: nn.Module  # the Denoiser, DDP-wrapped when world > 1
    fwd: Any  # ``net`` or ``torch.compile(net)``
    amp_dtype: torch.dtype | None
    sampler: StepBatchSampler
    batches: Iterator
    start_step: int = 0
    compile_auto: bool = False  # ``cfg.compile`` was "auto" (then a compiler failure falls back to eager)
    amp_reason: str = ""  # why the run trains in ``cfg.amp`` (recorded in summary.json)
    threads_reason: str = ""  # how many CPU threads it uses and why (recorded in summary.json)


def _build_dataset(cfg: TrainConfig, preset):
    """shapes: a deterministic set of ``cfg.dataset_size`` items; ImageNet folders: ADM's centre crop at
    the model's resolution with random horizontal flips (as U-ViT; flips draw from the worker's RNG)."""
    kw = {"shapes": dict(num_items=cfg.dataset_size, seed=cfg.seed, rotation=cfg.shapes_rotation),
          "imagenet": dict(size=preset.model.image_size, random_flip=True)}.get(cfg.dataset.lower(), {})
    if cfg.data_root is not None:
        kw["root"] = cfg.data_root
    return build_dataset(cfg.dataset, **kw)


def setup(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False, dataset=None,
          time_limit_s: float | None = None, batches: Iterator | None = None) -> Run:
    """Everything a run needs, restored from ``out/latest.pt`` when ``resume``: config (every ``None``
    filled from the recipe), processes, data, network, EMA, AdamW, precision, compile choice and the
    step batches from the run's first (or resumed) step on. ``batches`` (an iterator of ``(x0: [B, C, H, W],
    y: [B])``) replaces the data loader's: a benchmark feeds one fixed batch at every step."""
    cfg, out = resolve_config(cfg), Path(out)
    env = _init_distributed(cfg.device)
    saved = Checkpointer.read(out, resume)
    if saved is not None:
        if cfg.amp == "auto":  # the run measured its precision once: keep it
            cfg = dataclasses.replace(cfg, amp=saved.get("train_config", {}).get("amp", "auto"))
        _check_resume(saved.get("train_config", {}), cfg, out / CHECKPOINT_NAME)
    preset = get_preset(cfg.preset)
    dataset = dataset if dataset is not None else _build_dataset(cfg, preset)
    model_cfg = adapt_model_config(preset.model, dataset, cfg.p_uncond)
    if len(cfg.loss_coeffs) != model_cfg.num_outputs:
        raise ValueError(f"{len(cfg.loss_coeffs)} loss coefficients for a network with {model_cfg.num_outputs} outputs")
    schedule, null_class = get_schedule(preset.recipe.schedule), null_label(model_cfg, dataset.num_classes)
    per_step = cfg.batch_size // (env.world * cfg.grad_accum)
    if per_step * env.world * cfg.grad_accum != cfg.batch_size:
        raise ValueError(f"batch size {cfg.batch_size} is not divisible by {env.world} processes × {cfg.grad_accum} accumulation steps")
    threads_reason = ""
    if env.device.type == "cpu":
        tune_cpu_allocator()
        if env.world == 1:  # ranks of one run would count each other as busy
            threads_reason = use_free_cores()[1]

    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg).to(env.device)
    model.set_grad_checkpointing(cfg.grad_checkpointing)
    ema = EMA(model, cfg.ema_rate, cfg.ema_warmup)
    opt = build_optimizer(model, cfg, env.device)
    if cfg.amp == "auto":
        choice, amp_reason = choose_amp(cfg, env.device)
        cfg = dataclasses.replace(cfg, amp=_from_rank0(choice, AMP_CHOICES, env))
    else:
        amp_reason = "asked for" if saved is None else "as the run it resumes"
    amp_dtype = autocast_dtype(cfg.amp, env.device)
    scaler = torch.amp.GradScaler(env.device.type, enabled=amp_dtype is torch.float16)
    start_step = 0 if saved is None else Checkpointer.restore(saved, out, model, ema, opt, scaler)

    net = Denoiser(model, schedule, cfg.prediction, null_class)
    if env.world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[env.local_rank] if env.device.type == "cuda" else None)
    compile_auto, compiled = cfg.compile == "auto", choose_compile(cfg, env.device, cfg.steps - start_step, time_limit_s)
    sampler = StepBatchSampler(len(dataset), per_step, start_step, cfg.steps, cfg.seed, env.rank, env.world, cfg.grad_accum)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=env.device.type == "cuda", persistent_workers=False)
    return Run(dataclasses.replace(cfg, compile="on" if compiled else "off"), env, out, preset, dataset, model_cfg,
               schedule, null_class, model, ema, opt, scaler, net, torch.compile(net) if compiled else net, amp_dtype,
               sampler, iter(loader) if batches is None else batches, start_step, compile_auto, amp_reason,
               threads_reason)


def train_step(run: Run, step: int) -> dict:
    """One optimiser step (paper eq. (8)): per micro-batch, label dropout, t and ε from (seed, step), the
    multi-scale loss and its backward; then AdamW at the step's learning rate and the EMA update.
    Returns the step's logs (``loss``, ``loss/<res>px`` …, averaged over micro-batches, as 0-d tensors on the
    device, so that the step never waits for the device; ``lr``, a float)."""
    cfg, env = run.cfg, run.env
    lr = lr_at(step, cfg.lr, cfg.warmup_steps)
    for group in run.opt.param_groups:
        group["lr"] = lr
    logs = {}
    for micro in range(cfg.grad_accum):
        x0, y = next(run.batches)
        y, t, eps = draw_noise(step, run.sampler.sample_ids(step, micro), y, x0.shape[1:], run.schedule, cfg,
                               run.null_class)
        x0, y, t, eps = (v.to(env.device, non_blocking=True) for v in (x0, y, t, eps))
        last = env.world == 1 or micro == cfg.grad_accum - 1
        with contextlib.nullcontext() if last else run.net.no_sync():  # all-reduce once, on the last micro-batch
            loss = _loss_or_eager(run, x0, y, t, eps)
            run.scaler.scale(loss.total / cfg.grad_accum).backward()
        for k, v in loss.log_tensors().items():
            logs[k] = logs.get(k, 0.0) + v / cfg.grad_accum
    run.scaler.step(run.opt)
    run.scaler.update()
    run.opt.zero_grad(set_to_none=True)
    run.ema.update(run.model, step)
    return {**logs, "lr": lr}


def _loss_or_eager(run: Run, x0, y, t, eps):
    """:func:`training_loss` through ``run.fwd``; under ``compile="auto"`` a compiler failure switches the
    run to eager once (the same arithmetic) instead of ending it."""
    try:
        return training_loss(run.fwd, run.schedule, x0, y, t, eps, run.cfg, run.amp_dtype)
    except Exception as e:  # noqa: BLE001 - any compiler failure: train eagerly instead
        if run.fwd is run.net or not run.compile_auto:
            raise
        print(f"dimr train: torch.compile failed ({type(e).__name__}: {str(e)[:200]}); training eagerly", file=sys.stderr)
        run.fwd, run.cfg = run.net, dataclasses.replace(run.cfg, compile="off")
        return training_loss(run.fwd, run.schedule, x0, y, t, eps, run.cfg, run.amp_dtype)


class Checkpointer:
    """``out/latest.pt``: model, EMA, optimiser, grad scaler, step, RNG states and the run's configs,
    written atomically by rank 0 (every rank then meets at a barrier)."""

    def __init__(self, run: Run, enabled: bool = True):
        self.run, self.enabled, self.path = run, enabled, run.out / CHECKPOINT_NAME
        if run.env.main:
            run.out.mkdir(parents=True, exist_ok=True)
            for stale in stale_temporaries(self.path):  # writes cut short by SIGKILL
                stale.unlink()

    @staticmethod
    def read(out: Path, resume: bool) -> dict | None:
        """The checkpoint in ``out`` to resume, or None for a new run; a new run refuses to overwrite one."""
        path = out / CHECKPOINT_NAME
        if not path.exists():
            return None
        if not resume:
            raise CheckpointError(f"{path} exists: pass --resume to continue that run, or choose another --out")
        return load_checkpoint(path)

    @staticmethod
    def restore(saved: dict, out: Path, model, ema: EMA, opt, scaler) -> int:
        """Load ``saved`` into the run's pieces and the global RNGs; returns the step to continue from."""
        try:
            model.load_state_dict(saved["model"])
            ema.load_state_dict(saved["ema"])
            opt.load_state_dict(saved["optimizer"])
            if saved.get("scaler"):
                scaler.load_state_dict(saved["scaler"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"checkpoint {out / CHECKPOINT_NAME} does not fit this run: {e}") from e
        _set_rng_state(saved["rng"])
        return int(saved["step"])

    def save(self, step: int, snapshot: bool = False) -> None:
        """Write ``latest.pt`` at ``step``; with ``snapshot``, also keep a copy (:func:`snapshot_name`)."""
        r = self.run
        if not self.enabled:
            return
        if r.env.main:
            d = r.dataset
            save_checkpoint(self.path, r.model_cfg, r.model.state_dict(), preset=r.preset.name,
                            ema_state=r.ema.state_dict(r.model), optimizer=r.opt.state_dict(),
                            scaler=r.scaler.state_dict(), step=step, rng=_rng_state(),
                            train_config=config_to_dict(r.cfg), recipe=config_to_dict(r.preset.recipe),
                            dataset={"name": r.cfg.dataset, "num_classes": d.num_classes,
                                     "class_names": list(getattr(d, "class_names", [])),
                                     "image_shape": list(d.image_shape)})
            if snapshot:
                atomic_write(r.out / snapshot_name(step), lambda f: f.write(self.path.read_bytes()), binary=True)
        if r.env.world > 1:
            dist.barrier()


class MetricsLog:
    """``out/metrics.jsonl``: one line per ``log_every`` steps (and at the last step), the window's mean
    logs with step, EMA rate, images/s and elapsed time. A resumed run first drops the lines an
    interrupted attempt wrote after its last checkpoint.

    Steps hand in their logs as device tensors; :meth:`read` brings the window's to the host in one
    transfer — the one place the training loop waits for the device."""

    def __init__(self, run: Run):
        self.path, self.write = run.out / "metrics.jsonl", run.env.main
        self.batch_size, self.ema = run.cfg.batch_size, run.ema
        self.window: list[tuple[int, dict]] = []  # (step, logs) since the last record
        self.last_loss = float("nan")  # the loss of the last step recorded
        self.t_start = self.t_window = time.perf_counter()
        if self.write and self.path.exists():
            keep = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= run.start_step]
            self.path.write_text("".join(line + "\n" for line in keep))

    def add(self, step: int, logs: dict) -> None:
        """A step's logs (its tensors are read later, by :meth:`read`)."""
        self.window.append((step, logs))

    def read(self) -> int | None:
        """Bring every log of the window still on the device to the host (one transfer); returns the first
        step of the window whose loss is not finite, or None."""
        pending = [(i, k) for i, (_, logs) in enumerate(self.window) for k, v in logs.items() if torch.is_tensor(v)]
        if pending:
            values = torch.stack([self.window[i][1][k].float() for i, k in pending]).tolist()
            for (i, k), v in zip(pending, values):
                self.window[i][1][k] = v
        return next((step for step, logs in self.window if not math.isfinite(logs["loss"])), None)

    def record(self, step: int) -> dict:
        """The record of the window up to ``step`` (later steps are dropped: a diverged run's log ends on the
        step that diverged); on rank 0 appended to the file. Call after :meth:`read`."""
        window = [logs for s, logs in self.window if s <= step]
        self.last_loss, now = window[-1]["loss"], time.perf_counter()
        rec = {k: sum(w[k] for w in window) / len(window) for k in window[0] if k != "lr"}
        rec.update(step=step, lr=window[-1]["lr"], ema_rate=self.ema.rate_at(step - 1),
                   images_per_s=len(self.window) * self.batch_size / max(now - self.t_window, 1e-9),
                   elapsed_s=now - self.t_start)
        if self.write:
            with self.path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
        self.window, self.t_window = [], now
        return rec


class StopRequest:
    """Why a run stops early, agreed by every process at the loop's sync points (see :func:`train`).

    SIGTERM or a first Ctrl-C (SIGINT) on any process asks to stop (a second Ctrl-C aborts at once,
    without a checkpoint); ``time_limit_s`` is read from rank 0's clock only. :meth:`poll` takes the
    maximum of every rank's request in one all-reduce, so all ranks leave the loop after the same step —
    none waits in the checkpoint barrier while another waits in the next step's gradient all-reduce."""

    RUNNING, SIGNALLED, TIME_LIMITED, DIVERGED = 0, 1, 2, 3

    def __init__(self, env: _Dist, time_limit_s: float | None):
        self.env, self.time_limit_s, self.t_start = env, time_limit_s, time.perf_counter()
        self.signalled, self.reason, self.diverged_at, self._old = False, self.RUNNING, None, {}

    def _on_signal(self, signum, frame):
        if self.signalled and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: abort now
        self.signalled = True

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers can only be set from the main thread
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        return False

    def _timed_out(self) -> bool:
        return (self.env.main and self.time_limit_s is not None
                and time.perf_counter() - self.t_start >= self.time_limit_s)

    def wanted(self) -> bool:
        """Whether this process has a reason to stop (read from the host alone: no device, no other rank)."""
        return self.signalled or self._timed_out()

    def poll(self, diverged_at: int | None = None) -> int:
        """The stop reason every rank agrees on now (:attr:`RUNNING` to go on). ``diverged_at`` is the first
        step at which this rank's loss was not finite; it outranks every other reason, and
        :attr:`diverged_at` becomes the earliest such step of any rank."""
        local = (self.DIVERGED if diverged_at is not None else self.SIGNALLED if self.signalled
                 else self.TIME_LIMITED if self._timed_out() else self.RUNNING)
        first = diverged_at
        if self.env.world > 1:  # one all-reduce: the largest reason and the smallest diverged step
            never = torch.iinfo(torch.int64).max
            agreed = torch.tensor([local, -(never if diverged_at is None else diverged_at)], device=self.env.device)
            dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
            local, first = int(agreed[0]), -int(agreed[1])
            first = None if first == never else first
        self.reason, self.diverged_at = local, first
        return local


def _progress_line(rec: dict, total: int, start: int, time_limit_s: float | None = None) -> str:
    """``step 120/4000  loss 0.1234  52 img/s  1m 10s elapsed, ~1h 13m to go`` (at the rate so far, and
    never past the time limit)."""
    def hms(s: float) -> str:
        s = int(s)
        return f"{s // 3600}h {s % 3600 // 60}m" if s >= 3600 else f"{s // 60}m {s % 60}s"
    done, elapsed = rec["step"] - start, rec["elapsed_s"]
    left = elapsed / done * (total - rec["step"]) if done > 0 else float("inf")
    if time_limit_s is not None:
        left = min(left, max(time_limit_s - elapsed, 0.0))
    eta = f", ~{hms(left)} to go" if math.isfinite(left) and rec["step"] < total else ""
    return (f"step {rec['step']}/{total}  loss {rec['loss']:.4f}  {rec['images_per_s']:.0f} img/s  "
            f"{hms(elapsed)} elapsed{eta}")


def train(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False, dataset=None,
          time_limit_s: float | None = None, save_checkpoints: bool = True) -> dict:
    """Train ``cfg`` into folder ``out``; returns a summary (final step, loss, throughput, paths).

    ``dataset`` overrides ``cfg.dataset`` with an object of the same protocol (``(x, label)`` items,
    ``num_classes``, ``image_shape``), e.g. synthetic data for benchmarks. ``time_limit_s`` ends the run
    (with its checkpoint) once that much wall time has passed: "what does a 20-minute run give".
    ``save_checkpoints=False`` writes none (benchmarks only: the CLI always checkpoints).

    Writes ``out/latest.pt`` (atomically: every ``ckpt_every`` steps and whenever the run ends, including
    Ctrl-C/SIGTERM), ``out/metrics.jsonl`` (appended every ``log_every`` steps) and ``out/summary.json``.
    The steps never wait for the device; the loop reads the losses only at its sync points (every record,
    every checkpoint, the end, a stop request). A loss that stops being finite ends the run at the next
    of them: the summary records ``diverged_at_step`` (the first non-finite step) and no weights from it on
    are checkpointed, the log ends on it, and :class:`TrainingDiverged` is raised (the CLI exits with
    :data:`DIVERGED_EXIT`)."""
    run = setup(cfg, out, resume, dataset, time_limit_s)
    cfg, env = run.cfg, run.env
    checkpoints, log = Checkpointer(run, save_checkpoints), MetricsLog(run)
    bar = tqdm(total=cfg.steps, initial=run.start_step, desc=f"train {run.preset.name}", unit="step",
               dynamic_ncols=True, disable=not (env.main and cfg.progress))
    step = run.start_step
    pace = PaceWatch(pace_key(hardware_info()["cpu"], run.preset.name, cfg.batch_size, cfg.amp, cfg.compile == "on",
                              torch.get_num_threads()) if env.device.type == "cpu" and env.main else None)
    with StopRequest(env, time_limit_s) as stop, bar:
        while step < cfg.steps:
            log.add(step + 1, train_step(run, step))
            step += 1
            bar.update(1)
            logging = step % cfg.log_every == 0 or step == cfg.steps
            saving = step % cfg.ckpt_every == 0 or step in cfg.snapshot_steps
            # sync points, the only steps at which the host waits for the device: a record, a checkpoint, the
            # end, or (one process only: ranks must meet at the same steps) a wish to stop
            if not (logging or saving or (env.world == 1 and stop.wanted())):
                continue
            reason = stop.poll(diverged_at=log.read())  # one rank's NaN stops them all
            if reason == StopRequest.DIVERGED:
                step = stop.diverged_at
                log.record(step)  # the log ends on the step that diverged
                break
            stopping = reason != StopRequest.RUNNING
            if logging or stopping:
                rec = log.record(step)
                note = pace.note(rec["images_per_s"])  # far below this machine's usual rate: say why
                if bar.disable and env.main:  # no bar (logs, notebooks): one line per record
                    print(_progress_line(rec, cfg.steps, run.start_step, time_limit_s) + (f"  ({note})" if note else ""),
                          flush=True)
                else:
                    bar.set_postfix(loss=f"{rec['loss']:.4f}", img_s=f"{rec['images_per_s']:.0f}", **({"note": note} if note else {}))
            if stopping:
                break
            if saving and step < cfg.steps:
                checkpoints.save(step, snapshot=step in cfg.snapshot_steps)
        diverged = stop.diverged_at
        if diverged is None:
            # a run always ends with a checkpoint, interrupted or not; a diverged one keeps its last good one
            # (resuming it would diverge again)
            checkpoints.save(step, snapshot=step in cfg.snapshot_steps)
    last_loss = log.last_loss
    wall = time.perf_counter() - log.t_start
    summary = {"preset": run.preset.name, "step": step, "steps": cfg.steps, "loss": last_loss,
               "images_per_s": (step - run.start_step) * cfg.batch_size / max(wall, 1e-9), "wall_s": wall,
               "world_size": env.world, "device": str(env.device), "threads": torch.get_num_threads(),
               "threads_reason": run.threads_reason, "amp": run.cfg.amp, "amp_reason": run.amp_reason,
               "compile": run.cfg.compile,
               "checkpoint": str(checkpoints.path) if checkpoints.path.exists() else None, "interrupted": stop.reason == StopRequest.SIGNALLED,
               "time_limited": stop.reason == StopRequest.TIME_LIMITED, "diverged_at_step": diverged,
               "model_config": config_to_dict(run.model_cfg), "train_config": config_to_dict(cfg),
               "image_shape": list(run.dataset.image_shape)}
    summary.update(pace.finish(summary["images_per_s"], complete=diverged is None and stop.reason == StopRequest.RUNNING
                               or stop.reason == StopRequest.TIME_LIMITED))
    if env.main:
        atomic_write(run.out / "summary.json", lambda f: f.write(json.dumps(summary, indent=2) + "\n"))
    if env.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if diverged is not None:
        raise TrainingDiverged(diverged, last_loss, run.out / "summary.json")
    return summary


def _parser() -> argparse.ArgumentParser:
    D = TrainConfig()  # every default is the config's: one source
    ap = parser("train", "Train a preset (offline shapes by default).")
    ap.add_argument("--preset", default=D.preset, help=f"a name from `python -m dimr zoo` (default {D.preset})")
    ap.add_argument("--out", required=True, help="run folder: latest.pt, metrics.jsonl, summary.json")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out (exactly)")
    ap.add_argument("--steps", type=int, help="total optimiser steps of the run (default: the preset's recipe)")
    ap.add_argument("--batch-size", type=int, help="global batch size (default: the recipe's)")
    ap.add_argument("--grad-accum", type=int, default=D.grad_accum, help="micro-batches accumulated per optimiser step")
    ap.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    ap.add_argument("--weight-decay", type=float, help="AdamW weight decay, TD gates excluded (default: the recipe's)")
    ap.add_argument("--warmup-steps", type=int, help="linear warm-up steps (default: the recipe's)")
    ap.add_argument("--ema-rate", type=float, help="EMA rate of the weights (default: the recipe's)")
    ap.add_argument("--ema-warmup", action=argparse.BooleanOptionalAction, default=None,
                    help="EMA rate min(rate, (1+n)/(10+n)) for short runs (default: the recipe's; on for tiny presets)")
    ap.add_argument("--p-uncond", type=float, help="label-dropout probability for CFG")
    ap.add_argument("--loss-coeffs", type=float, nargs="+", help="α_r, lowest resolution first")
    ap.add_argument("--loss-target", choices=["official", "paper"], default=D.loss_target,
                    help="official k·avgpool_k(ε) targets, or the paper's plain average pooling")
    ap.add_argument("--prediction", choices=PREDICTIONS,
                    help="what the network learns to predict (default: the recipe's; eps is the paper's)")
    ap.add_argument("--loss-weighting", choices=WEIGHTINGS, help="loss weight over time (default: the recipe's)")
    ap.add_argument("--min-snr-gamma", type=float, help="γ of --loss-weighting min_snr (default: the recipe's)")
    ap.add_argument("--time-distribution", choices=TIME_DISTRIBUTIONS,
                    help="where training draws t (default: the recipe's; uniform is the paper's)")
    ap.add_argument("--time-loc", type=float, help="logit-normal location (default: the recipe's)")
    ap.add_argument("--time-scale", type=float, help="logit-normal scale (default: the recipe's)")
    ap.add_argument("--dataset", default=D.dataset, help="shapes (default, offline), fashion-mnist, imagenet, latents")
    ap.add_argument("--data-root", help="folder of the dataset (not needed for shapes)")
    ap.add_argument("--dataset-size", type=int, default=D.dataset_size, help="number of procedural shapes")
    ap.add_argument("--shapes-rotation", choices=ROTATIONS, default=D.shapes_rotation,
                    help="shapes drawn upright (default) or randomly turned within their symmetry (harder)")
    ap.add_argument("--amp", choices=AMP_CHOICES, default=D.amp,
                    help="autocast dtype; auto = bf16 on CUDA and on CPUs with native bf16, else fp32")
    ap.add_argument("--grad-checkpointing", action="store_true", help="activation checkpointing (less memory, one more forward)")
    ap.add_argument("--compile", choices=COMPILE_CHOICES, default=D.compile,
                    help="torch.compile the network; auto = on CPUs for runs of 1,000+ steps (falls back to eager "
                         "if the compiler fails)")
    ap.add_argument("--seed", type=int, default=D.seed, help="seed of initialisation, data order and noise")
    ap.add_argument("--log-every", type=int, default=D.log_every, help="steps between lines of metrics.jsonl")
    ap.add_argument("--ckpt-every", type=int, default=D.ckpt_every, help="steps between checkpoints (one is always written at the end)")
    ap.add_argument("--snapshot-steps", type=int, nargs="+", default=D.snapshot_steps,
                    help="keep a copy of the checkpoint at these steps as step-NNNNNNN.pt (learning curves)")
    ap.add_argument("--num-workers", type=int, default=D.num_workers, help="DataLoader worker processes")
    ap.add_argument("--device", default=D.device, help="auto, cpu or cuda")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--time-limit", type=float, help="stop (with a checkpoint) after this many minutes")
    return ap


def cli(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    cfg = from_namespace(TrainConfig, args, loss_coeffs=tuple(args.loss_coeffs) if args.loss_coeffs else None,
                         snapshot_steps=tuple(args.snapshot_steps), progress=not args.no_progress)
    try:
        summary = train(cfg, args.out, resume=args.resume,
                        time_limit_s=args.time_limit * 60 if args.time_limit else None)
    except (CheckpointError, KeyError, ValueError, FileNotFoundError) as e:
        print(f"dimr train: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"dimr train: {e}", file=sys.stderr)
        return DIVERGED_EXIT
    if int(os.environ.get("RANK", "0")) == 0:
        state = ("interrupted at" if summary["interrupted"] else
                 "reached its time limit at" if summary["time_limited"] else "finished at")
        print(f"{summary['preset']}: {state} step {summary['step']}/{summary['steps']}, loss {summary['loss']:.4f}, "
              f"{summary['images_per_s']:.1f} images/s; checkpoint {summary['checkpoint']}")
    return 130 if summary["interrupted"] else 0
