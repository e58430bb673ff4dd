"""The official implementation, side by side: its network built from a local checkout and checked equal.

A checkout of github.com/qihao067/DiMR (never committed here) is imported from a temporary copy
(:func:`official_code`), its ``MRModel`` built with the same network (:func:`dimr.convert.official_model_config`)
and initialised by its own code; its state dict, converted by :mod:`dimr.convert`, becomes this package's weights
(:func:`official_side`). Both outputs must agree to :data:`OFFICIAL_TOLERANCE` in fp32 (:func:`check_equivalence`)
before anything compares their speed (``python -m dimr bench --official PATH``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

__all__ = ["OFFICIAL_TOLERANCE", "EquivalenceError", "OfficialCodeError", "official_libs", "official_code", "OfficialNet",
           "official_side", "check_equivalence", "official_commit"]

#: the largest fp32 difference allowed between this package's and the official outputs on the same weights
OFFICIAL_TOLERANCE = 1e-4


#: what the official code warns on every call (its slow TD-parameter path, its checkpoint call): silenced
OFFICIAL_WARNINGS = ("Using slower tdp_torch", "torch.utils.checkpoint: the use_reentrant", "None of the inputs have",
                     "Importing from timm.models.layers")


class EquivalenceError(ValueError):
    """The two networks of a side-by-side run do not compute the same function: nothing is timed."""


class OfficialCodeError(ValueError):
    """The official checkout cannot be found or imported."""


def _forget(package: str) -> None:
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]


def official_libs(path: str | os.PathLike) -> Path:
    """``path/libs``, the official model's package; raises :class:`OfficialCodeError` if ``path`` is no checkout."""
    libs = Path(path).expanduser() / "libs"
    if not (libs / "core" / "blocks.py").is_file():
        raise OfficialCodeError(f"{path} is not a checkout of qihao067/DiMR (no libs/core/blocks.py)")
    return libs


@contextlib.contextmanager
def official_code(path: str | os.PathLike) -> Iterator[type]:
    """The official ``MRModel`` class (``libs/core/blocks.py`` of a checkout of github.com/qihao067/DiMR at
    ``path``), imported from a copy of the checkout's ``libs/`` in a temporary folder put on ``sys.path`` for
    the block: nothing is written into the checkout, and its ``libs`` package is forgotten afterwards. The
    official code's per-call warnings are silenced inside the block (:data:`OFFICIAL_WARNINGS`)."""
    libs = official_libs(path)
    with tempfile.TemporaryDirectory(prefix="dimr-official-") as tmp, warnings.catch_warnings():
        for message in OFFICIAL_WARNINGS:
            warnings.filterwarnings("ignore", message=re.escape(message))
        shutil.copytree(libs, Path(tmp) / "libs", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _forget("libs")
        sys.path.insert(0, tmp)
        try:
            try:
                blocks = importlib.import_module("libs.core.blocks")
            except ImportError as e:
                raise OfficialCodeError(f"cannot import the official model from {path}: {e} "
                                        "(it needs timm and einops)") from e
            yield blocks.MRModel
        finally:
            sys.path.remove(tmp)
            _forget("libs")


class OfficialNet(nn.Module):
    """The official ``MRModel`` called as this package's networks are: ``net(x, log_snr, y)`` →
    ``list[[B, C, H_r, W_r]]`` (its own signature is ``model(x, log_snr=…, y=…)``); ``cfg`` is our config."""

    def __init__(self, model: nn.Module, cfg):
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, x: torch.Tensor, log_snr: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        return self.model(x, log_snr=log_snr, y=y)


def official_side(run, mrmodel: type, seed: int = 0):
    """The official network as a :class:`dimr.train.Run` beside ``run`` (ours), with the same weights.

    The official model is built (seeded by ``seed``) and initialised by its own code; its state dict, converted
    by :func:`dimr.convert.convert_state_dict`, is loaded into ``run.model`` (and ``run.ema``). The returned run
    shares ``run``'s config, schedule and batches, with its own EMA, AdamW (:func:`dimr.train.build_optimizer`)
    and, with compile on, its own compiled denoiser."""
    from .convert import convert_state_dict, official_model_config
    from .diffusion import Denoiser
    from .optim import EMA, build_optimizer

    cfg, device = run.model_cfg, run.env.device
    torch.manual_seed(seed)
    net = OfficialNet(mrmodel(official_model_config(cfg)), cfg).to(device).train()
    run.model.load_state_dict(convert_state_dict(net.model.state_dict(), cfg))
    run.ema.load_state_dict(run.model.state_dict())
    denoiser = Denoiser(net, run.schedule, run.cfg.prediction, run.null_class)
    return dataclasses.replace(
        run, model=net, ema=EMA(net, run.cfg.ema_rate, run.cfg.ema_warmup), opt=build_optimizer(net, run.cfg, device),
        scaler=torch.amp.GradScaler(device.type, enabled=run.amp_dtype is torch.float16), net=denoiser,
        fwd=torch.compile(denoiser) if run.cfg.compile == "on" else denoiser)


@contextlib.contextmanager
def _exact_fp32():
    """No TF32 inside the block (CUDA convolutions use it by default): an fp32 comparison stays fp32."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def check_equivalence(ours: nn.Module, theirs: nn.Module, cfg, device: torch.device | str = "cpu",
                      tolerance: float = OFFICIAL_TOLERANCE, batch: int = 2, seed: int = 0) -> float:
    """The largest |difference| between the outputs of two networks called as ``net(x, log_snr, y)`` on one
    fp32 input (``x: [batch, C, H, W]`` standard normal, a different log-SNR per sample, labels ``i mod K``),
    over every branch output ``[batch, C, H_r, W_r]``. Raises :class:`EquivalenceError` when it exceeds
    ``tolerance``, is not finite, or the outputs' shapes differ. Both networks are back in their mode after."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cfg.in_channels, cfg.image_size, cfg.image_size, generator=g).to(device)
    log_snr, y = torch.linspace(-3.0, 5.0, batch, device=device), torch.arange(batch, device=device) % cfg.num_classes
    modes = ours.training, theirs.training
    ours.eval(), theirs.eval()
    try:
        with torch.no_grad(), _exact_fp32():
            a, b = ours(x, log_snr, y), theirs(x, log_snr, y)
    finally:
        ours.train(modes[0]), theirs.train(modes[1])
    if [o.shape for o in a] != [o.shape for o in b]:
        raise EquivalenceError(f"the networks' outputs have different shapes: {[tuple(o.shape) for o in a]} vs "
                               f"{[tuple(o.shape) for o in b]}")
    diffs = [float((p.float() - q.float()).abs().max()) for p, q in zip(a, b)]
    worst = max(diffs)
    if not worst <= tolerance:  # also catches NaN
        raise EquivalenceError(f"after conversion the two networks' outputs differ by up to {worst:.3g} "
                               f"(per branch, lowest resolution first: {', '.join(f'{d:.3g}' for d in diffs)}; "
                               f"allowed {tolerance:g} in fp32): refusing to time networks that compute different "
                               "things (wrong preset mapping, or an official checkout this package does not match?)")
    return worst


def official_commit(path: str | os.PathLike, given: str | None) -> str | None:
    """``given``, else the checkout's HEAD when ``path`` is the top of a git repository (not inside another one)."""
    if given:
        return given

    def git(*args: str) -> str:
        res = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)
        return res.stdout.strip() if res.returncode == 0 else ""
    top = git("rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() != Path(path).expanduser().resolve():
        return None  # not a repository of its own: a plain copy, or a folder inside another repository
    return git("rev-parse", "HEAD") or None
