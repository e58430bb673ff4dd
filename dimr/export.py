"""``python -m dimr export``: share a model the way the field does — safetensors weights + JSON config.

    python -m dimr export --checkpoint checkpoints/t3r --out exported/dimr-t3r
    python -m dimr sample --checkpoint exported/dimr-t3r --num-samples 64      # a folder works wherever a checkpoint does

The folder holds ``model.safetensors`` (the EMA weights, or the raw weights of a run without EMA: what
sampling uses) and ``config.json`` (the model config, preset, recipe, training config, dataset and step).
Loading it back is one call — :func:`from_pretrained` (as ``diffusers``' ``from_pretrained`` with a
local folder) or any function that takes a checkpoint — and runs no code: safetensors holds tensors
only, JSON holds values only.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

from .checkpoint import (EXPORT_CONFIG, EXPORT_FORMAT, EXPORT_KEYS, EXPORT_WEIGHTS, CheckpointError, load_checkpoint,
                         model_from_checkpoint)
from .cli import parser
from .files import atomic_write

__all__ = ["export_checkpoint", "from_pretrained", "cli"]


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, use_ema: bool = True) -> Path:
    """Write ``checkpoint``'s weights (EMA when present and ``use_ema``) and configs into folder ``out``."""
    from safetensors.torch import save

    ckpt = load_checkpoint(checkpoint)
    which = "ema" if use_ema and ckpt.get("ema") is not None else "model"
    # safetensors stores each tensor once, contiguous and unshared: copy views out of their storage
    state = {k: v.detach().contiguous().clone() for k, v in ckpt[which].items()}
    out = Path(out)
    meta = {"format": EXPORT_FORMAT, "version": 1, **{k: ckpt.get(k) for k in EXPORT_KEYS},
            "weights": which,
            "source": Path(ckpt["path"]).name}
    atomic_write(out / EXPORT_WEIGHTS, lambda f: f.write(save(state, metadata={"format": "pt"})), binary=True)
    atomic_write(out / EXPORT_CONFIG, lambda f: f.write(json.dumps(meta, indent=2) + "\n"))
    return out


def from_pretrained(folder: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The exported model, built from its config with its weights loaded strictly, in eval mode."""
    return model_from_checkpoint(folder, device=device)


def _parser():
    ap = parser("export", "Write a checkpoint's weights as safetensors plus a JSON config (a folder that "
                          "loads back with one call and that sample/evaluate accept as --checkpoint).")
    ap.add_argument("--checkpoint", required=True, help="a .pt checkpoint or a run folder (its latest.pt)")
    ap.add_argument("--out", required=True, help="folder to write model.safetensors and config.json into")
    ap.add_argument("--raw-weights", action="store_true", help="export the raw weights instead of the EMA weights")
    return ap


def cli(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        out = export_checkpoint(args.checkpoint, args.out, use_ema=not args.raw_weights)
    except CheckpointError as e:
        print(f"dimr export: {e}", file=sys.stderr)
        return 2
    print(f"exported {args.checkpoint} to {out}/ ({EXPORT_WEIGHTS}, {EXPORT_CONFIG})")
    return 0
