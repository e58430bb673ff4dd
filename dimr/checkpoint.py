"""Checkpoints: one self-describing file format for training, conversion and sampling.

A checkpoint is a ``torch.save`` dict with ``format = "dimr-checkpoint"``, a ``version``, the model
``config`` (JSON-ready dict), the ``preset`` name, ``model`` and optionally ``ema`` state dicts, and
whatever else the writer adds (optimiser, step, RNG states, training config) — tensors and plain
containers only, so that reading one (:func:`safe_load`, ``torch.load(weights_only=True)``) cannot run
code; a file that needs more is refused with :class:`UnsafeCheckpointError`.

Writes are atomic (:mod:`dimr.files`: temporary sibling, fsync, ``os.replace``), so a crash — even
SIGKILL — leaves either the old checkpoint or the new one, never a torn file.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np

import torch
from torch import nn

from .cli import parser
from .config import config_from_dict, config_to_dict
from .files import atomic_write
from .nn import build_model

__all__ = ["FORMAT", "VERSION", "CheckpointError", "UnsafeCheckpointError", "safe_load", "atomic_save",
           "save_checkpoint", "load_checkpoint", "model_from_checkpoint", "numpy_rng_state", "set_numpy_rng_state",
           "upgrade_checkpoint", "cli"]

FORMAT = "dimr-checkpoint"
#: version 2 holds nothing but tensors and plain containers (RNG states as tensors), so it loads with
#: ``torch.load(weights_only=True)``; version 1 pickled numpy's RNG state (see :func:`upgrade_checkpoint`)
VERSION = 2
#: versions this code reads (a version-1 file only if it needs nothing unsafe)
READABLE_VERSIONS = (1, 2)
UPGRADE_COMMAND = "python -m dimr upgrade-checkpoint"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, of another format, or does not fit the model."""


class UnsafeCheckpointError(CheckpointError):
    """A file that would run code (or build arbitrary objects) if it were unpickled: refused."""


def safe_load(path: str | os.PathLike, map_location="cpu"):
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, so a ``.pt`` someone
    hands you cannot run code. A file that needs more raises :class:`UnsafeCheckpointError` naming it
    (and, for this package's version-1 checkpoints, the one-line upgrade)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"{path} holds objects that only a full unpickling would build, and unpickling can run code: "
            f"refused. If it is a checkpoint of this package written before version {VERSION} and you trust "
            f"where it came from, convert it once with `{UPGRADE_COMMAND} {path}`. ({str(e).splitlines()[0]})") from e


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


#: an exported folder (``python -m dimr export``): weights as safetensors beside a JSON config
EXPORT_FORMAT, EXPORT_WEIGHTS, EXPORT_CONFIG = "dimr-export", "model.safetensors", "config.json"
#: the checkpoint keys an export keeps in its config (everything sampling and evaluation read)
EXPORT_KEYS = ("config", "preset", "recipe", "train_config", "dataset", "step")


def is_export(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by :func:`dimr.export.export_checkpoint`."""
    path = Path(path)
    return path.is_dir() and (path / EXPORT_WEIGHTS).is_file() and (path / EXPORT_CONFIG).is_file()


def load_export(path: str | os.PathLike, map_location="cpu") -> dict:
    """An exported folder read as a checkpoint dict (its weights under ``model``; no optimiser or EMA:
    the exported weights *are* the EMA weights when the run had them)."""
    from safetensors.torch import load_file

    path = Path(path)
    try:
        meta = json.loads((path / EXPORT_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path / EXPORT_CONFIG} is unreadable: {e}") from e
    if meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path / EXPORT_CONFIG} is not a dimr export (format {meta.get('format')!r})")
    device = map_location if isinstance(map_location, str) else "cpu"
    return {"format": FORMAT, "version": VERSION, **{k: meta.get(k) for k in EXPORT_KEYS},
            "model": load_file(path / EXPORT_WEIGHTS, device=device), "ema": None, "path": str(path)}


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read and validate a checkpoint — a ``.pt`` file, a run folder (its ``latest.pt``) or an exported
    folder (:func:`load_export`); every failure is a :class:`CheckpointError` with a reason."""
    path = Path(path)
    if is_export(path):
        return load_export(path, map_location)
    if path.is_dir():
        candidates = sorted(path.glob("*.pt"))
        latest = path / "latest.pt"
        path = latest if latest.exists() else (candidates[-1] if candidates else path / "latest.pt")
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = safe_load(path, map_location)
    except UnsafeCheckpointError:
        raise
    except Exception as e:  # torn, truncated or not a torch file
        raise CheckpointError(f"checkpoint {path} is unreadable (corrupt or not a torch file): {e}") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a dimr checkpoint (official checkpoints need `python -m dimr convert` first)")
    if obj.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{path} has checkpoint version {obj.get('version')}, this code reads versions "
                              f"{', '.join(map(str, READABLE_VERSIONS))}")
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


def numpy_rng_state(state: tuple | None = None) -> dict:
    """numpy's RNG state (``np.random.get_state()`` by default) as plain values and an int64 tensor
    (``weights_only``-loadable)."""
    name, key, pos, has_gauss, cached = np.random.get_state() if state is None else state
    return {"bit_generator": name, "key": torch.from_numpy(np.asarray(key).astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def set_numpy_rng_state(state) -> None:
    """Inverse of :func:`numpy_rng_state` (a version-1 tuple is accepted too)."""
    if isinstance(state, dict):
        state = (state["bit_generator"], state["key"].numpy().astype(np.uint32), state["pos"], state["has_gauss"],
                 state["cached_gaussian"])
    np.random.set_state(state)


def upgrade_checkpoint(path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Rewrite a version-1 checkpoint of this package as version 2 (in place unless ``out``).

    This unpickles the file fully — only do it for a file you trust (one your own runs wrote). Refuses
    files that are not dimr checkpoints; the tensors are copied unchanged."""
    path = Path(path)
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a dimr checkpoint: nothing to upgrade")
    rng = obj.get("rng")
    if isinstance(rng, dict) and isinstance(rng.get("numpy"), tuple):
        rng["numpy"] = numpy_rng_state(rng["numpy"])
    obj.pop("path", None)
    obj["version"] = VERSION
    target = Path(out) if out is not None else path
    atomic_save(obj, target)
    safe_load(target)  # what was written now loads safely
    return target


def _parser():
    ap = parser("upgrade-checkpoint", "Rewrite checkpoints of this package written before version "
                                             f"{VERSION} so that they load with torch.load(weights_only=True). "
                                             "It unpickles each file: use it only on files you trust.")
    ap.add_argument("paths", nargs="+", metavar="PATH", help="checkpoint files (rewritten in place, atomically)")
    return ap


def cli(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    for p in args.paths:
        try:
            print(f"upgraded {upgrade_checkpoint(p)} to checkpoint version {VERSION}")
        except (CheckpointError, FileNotFoundError, pickle.UnpicklingError) as e:
            print(f"dimr upgrade-checkpoint: {e}", file=sys.stderr)
            return 2
    return 0
