"""The one training loop: every preset, one process or many (``torchrun``), CPU or GPU.

    python -m dimr train --preset DiMR-T/3R --out runs-local/t3r                 # offline shapes, defaults
    python -m dimr train --preset DiMR-T/3R --out runs-local/t3r --steps 6 --resume
    torchrun --nproc_per_node 8 -m dimr train --preset DiMR-XL/2R --dataset latents --data-root …

What it does, per step (paper §3, eq. (8); docs/official-code.md §4):

1. take the step's batch (its indices are a pure function of seed, step and rank: see
   :class:`~dimr.determinism.StepBatchSampler`), drop labels to the null class with probability ``p_uncond`` (CFG);
2. draw t (the recipe's time distribution) and ε ~ N(0, I) from a generator seeded by (seed, step)
   (:func:`~dimr.determinism.draw_noise`), form ``x_t = α_t x_0 + σ_t ε``; the :class:`~dimr.diffusion.Denoiser` feeds the
   network what its family expects (log-SNR for DiMR) and reads its outputs as the recipe's prediction
   target (ε for the paper's recipes, v for the CPU-scale one);
3. backpropagate the multi-scale loss (:func:`training_loss`), AdamW (no weight decay on the TD gates
   ``nodecay_*``), linear warm-up then constant learning rate, EMA of the weights.

Because every random draw is derived from (seed, step) and the checkpoint holds model, EMA,
optimiser, step and RNG states, ``--resume`` continues *exactly*: on CPU, a run killed at any point
and resumed ends bitwise equal to an uninterrupted one.  Checkpoints are written atomically.

Reading order, as the run goes: :func:`setup` returns a :class:`Run` (config, processes, data, network,
EMA and AdamW from :mod:`dimr.optim`, precision); :func:`train_step` is one optimiser step, its draws from
:mod:`dimr.determinism`; :mod:`dimr.bookkeeping` writes and restores ``latest.pt``, appends
``metrics.jsonl`` and turns SIGTERM, Ctrl-C and ``--time-limit`` into one decision that every process takes
after the same step; :func:`train` is the loop that joins them.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .allocator import ENV as HUGE_PAGES_ENV
from .bookkeeping import CHECKPOINT_NAME, Checkpointer, MetricsLog, StopRequest, progress_line
from .checkpoint import CheckpointError
from .cli import parser
from .config import config_to_dict, from_namespace
from .data import build_dataset
from .data.shapes import ROTATIONS
from .device import AMP_CHOICES, auto_precision, autocast_dtype, pick_device, tune_cpu_allocator, use_free_cores
from .determinism import StepBatchSampler, draw_noise
from .diffusion import (PREDICTIONS, TIME_DISTRIBUTIONS, WEIGHTINGS, Denoiser, get_schedule, label_rows, loss_weight,
                        multiscale_loss, null_label)
from .files import atomic_write
from .nn import build_model
from .optim import EMA, build_optimizer, lr_at
from .pace import PaceWatch, pace_key
from .presets import get_preset
from .provenance import hardware_info

__all__ = ["TrainConfig", "resolve_config", "adapt_model_config", "training_loss", "choose_amp", "choose_compile", "Run",
           "setup", "train_step", "TrainingDiverged", "DIVERGED_EXIT", "train", "cli"]

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
#: the fewest CPU threads ``compile="auto"`` compiles with: on one thread (a busy laptop, one run per core)
#: inductor's kernels train the tiny presets at about eager's speed, and a cold compile costs that one thread
#: minutes (``runs/bench/contention-compile-{on,off}-*.json``): a ten-minute run trains more steps eagerly
COMPILE_MIN_THREADS = 2
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


def choose_compile(cfg: TrainConfig, device: torch.device, steps_to_run: int, time_limit_s: float | None,
                   threads: int = 2) -> tuple[bool, str]:
    """Whether this run trains through ``torch.compile``, and why (recorded in ``summary.json``).

    ``"on"``/``"off"`` decide; ``"auto"`` compiles on CPUs (where inductor's fused kernels train the tiny
    presets faster than eager: ``runs/bench/archive/cpu-before-after.json``) when the compile can be repaid:
    at least :data:`COMPILE_MIN_STEPS` steps still to go, no time limit under :data:`COMPILE_MIN_SECONDS`,
    and at least :data:`COMPILE_MIN_THREADS` ``threads`` (the run's CPU threads). On CUDA ``"auto"`` stays
    eager (not measured here)."""
    if cfg.compile != "auto":
        return cfg.compile == "on", "asked for"
    if device.type != "cpu":
        return False, f"auto: eager on {device.type} (compiling is measured on CPUs only)"
    if steps_to_run < COMPILE_MIN_STEPS or (time_limit_s is not None and time_limit_s < COMPILE_MIN_SECONDS):
        return False, (f"auto: eager, too short to repay a compile ({steps_to_run} steps to go"
                       + (f", a {time_limit_s / 60:g}-minute limit)" if time_limit_s is not None else ")"))
    if threads < COMPILE_MIN_THREADS:
        return False, f"auto: eager on {threads} thread (compiling there costs minutes and gains about nothing)"
    return True, f"auto: compiled ({steps_to_run} steps to go on {threads} threads repay the compile)"


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
    compile_reason: str = ""  # why it trains compiled or eager (recorded in summary.json)


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
    compile_auto = cfg.compile == "auto"
    compiled, compile_reason = choose_compile(cfg, env.device, cfg.steps - start_step, time_limit_s, torch.get_num_threads())
    sampler = StepBatchSampler(len(dataset), per_step, start_step, cfg.steps, cfg.seed, env.rank, env.world, cfg.grad_accum)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=env.device.type == "cuda", persistent_workers=False)
    return Run(dataclasses.replace(cfg, compile="on" if compiled else "off"), env, out, preset, dataset, model_cfg,
               schedule, null_class, model, ema, opt, scaler, net, torch.compile(net) if compiled else net, amp_dtype,
               sampler, iter(loader) if batches is None else batches, start_step, compile_auto, amp_reason,
               threads_reason, compile_reason)


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
        run.compile_reason = f"auto: the compiler failed ({type(e).__name__}): eager"
        return training_loss(run.fwd, run.schedule, x0, y, t, eps, run.cfg, run.amp_dtype)


def _show(rec: dict, run: Run, bar, pace: PaceWatch, time_limit_s: float | None) -> None:
    """One log record on screen: the progress bar's postfix or, without a bar (logs, notebooks), one line;
    with a note when the rate is far below this machine's usual one (another process holds the CPU)."""
    note = pace.note(rec["images_per_s"])
    if bar.disable and run.env.main:
        print(progress_line(rec, run.cfg.steps, run.start_step, time_limit_s) + (f"  ({note})" if note else ""), flush=True)
    else:
        bar.set_postfix(loss=f"{rec['loss']:.4f}", img_s=f"{rec['images_per_s']:.0f}", **({"note": note} if note else {}))


def _summary(run: Run, step: int, stop: StopRequest, log: MetricsLog, checkpoints: Checkpointer, pace: PaceWatch) -> dict:
    """What ``summary.json`` says about a finished run: where it stopped and why, its throughput, the
    threads and precision it chose (with the reasons) and the configs it trained."""
    cfg, env, diverged = run.cfg, run.env, stop.diverged_at
    wall = time.perf_counter() - log.t_start
    summary = {"preset": run.preset.name, "step": step, "steps": cfg.steps, "loss": log.last_loss,
               "images_per_s": (step - run.start_step) * cfg.batch_size / max(wall, 1e-9), "wall_s": wall,
               "world_size": env.world, "device": str(env.device), "threads": torch.get_num_threads(),
               "threads_reason": run.threads_reason, "amp": cfg.amp, "amp_reason": run.amp_reason,
               "compile": cfg.compile, "compile_reason": run.compile_reason, "huge_pages": os.environ.get(HUGE_PAGES_ENV) == "1",
               "checkpoint": str(checkpoints.path) if checkpoints.path.exists() else None, "interrupted": stop.reason == StopRequest.SIGNALLED,
               "time_limited": stop.reason == StopRequest.TIME_LIMITED, "diverged_at_step": diverged,
               "model_config": config_to_dict(run.model_cfg), "train_config": config_to_dict(cfg),
               "image_shape": list(run.dataset.image_shape)}
    summary.update(pace.finish(summary["images_per_s"], complete=diverged is None and stop.reason == StopRequest.RUNNING
                               or stop.reason == StopRequest.TIME_LIMITED))
    return summary


def train(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False, dataset=None,
          time_limit_s: float | None = None, save_checkpoints: bool = True) -> dict:
    """Train ``cfg`` into folder ``out``; returns a summary (final step, loss, throughput, paths).

    ``dataset`` overrides ``cfg.dataset`` with an object of the same protocol (``(x, label)`` items,
    ``num_classes``, ``image_shape``), e.g. synthetic data for benchmarks. ``time_limit_s`` ends the run (with
    its checkpoint) after that much wall time; ``save_checkpoints=False`` writes none (benchmarks only).

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
                _show(log.record(step), run, bar, pace, time_limit_s)
            if stopping:
                break
            if saving and step < cfg.steps:
                checkpoints.save(step, snapshot=step in cfg.snapshot_steps)
        diverged = stop.diverged_at
        if diverged is None:
            # a run always ends with a checkpoint, interrupted or not; a diverged one keeps its last good one
            # (resuming it would diverge again)
            checkpoints.save(step, snapshot=step in cfg.snapshot_steps)
    summary = _summary(run, step, stop, log, checkpoints, pace)
    if env.main:
        atomic_write(run.out / "summary.json", lambda f: f.write(json.dumps(summary, indent=2) + "\n"))
    if env.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if diverged is not None:
        raise TrainingDiverged(diverged, log.last_loss, run.out / "summary.json")
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
                    help="torch.compile the network; auto = on CPUs for runs of 1,000+ steps on 2+ threads (falls "
                         "back to eager if the compiler fails)")
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
