"""Checkpoints: one self-describing file format for training, conversion and sampling.

A checkpoint is a ``torch.save`` dict with ``format = "dimr-checkpoint"``, a ``version``, the model
``config`` (JSON-ready dict), the ``preset`` name, ``model`` and optionally ``ema`` state dicts, and
whatever else the writer adds (optimiser, step, RNG states, training config).

Writes are atomic (:mod:`dimr.files`: temporary sibling, fsync, ``os.replace``), so a crash — even
SIGKILL — leaves either the old checkpoint or the new one, never a torn file.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .config import config_from_dict, config_to_dict
from .files import atomic_write
from .nn import build_model

__all__ = ["FORMAT", "VERSION", "CheckpointError", "atomic_save", "save_checkpoint", "load_checkpoint", "model_from_checkpoint"]

FORMAT = "dimr-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, of another format, or does not fit the model."""


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically (:func:`dimr.files.atomic_write`)."""
    return atomic_write(path, lambda f: torch.save(obj, f), binary=True)


def save_checkpoint(path, model_config, model_state: dict, preset: str | None = None, ema_state: dict | None = None,
                    **extra) -> Path:
    """Write a checkpoint (atomically). ``extra`` keys (``optimizer``, ``step``, ``rng``, ``train_config``,
    …) are stored as given."""
    obj = {"format": FORMAT, "version": VERSION, "config": config_to_dict(model_config), "preset": preset,
           "model": model_state, "ema": ema_state, **extra}
    return atomic_save(obj, path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read and validate a checkpoint; every failure is a :class:`CheckpointError` with a reason."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.pt"))
        latest = path / "latest.pt"
        path = latest if latest.exists() else (candidates[-1] if candidates else path / "latest.pt")
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torn, truncated or not a torch file
        raise CheckpointError(f"checkpoint {path} is unreadable (corrupt or not a torch file): {e}") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a dimr checkpoint (official checkpoints need `python -m dimr convert` first)")
    if obj.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {obj.get('version')}, this code reads version {VERSION}")
    obj["path"] = str(path)
    return obj


def model_from_checkpoint(ckpt: dict | str | os.PathLike, use_ema: bool = True, device="cpu") -> nn.Module:
    """Build the checkpoint's model and load its (EMA, when present and asked for) weights, strictly."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    cfg = config_from_dict(ckpt["config"])
    model = build_model(cfg)
    state = ckpt["ema"] if use_ema and ckpt.get("ema") is not None else ckpt["model"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {ckpt.get('path', '')} does not fit its own config: {e}") from e
    return model.to(device).eval()
