"""Networks: the multi-resolution DiMR denoiser and the baselines the paper compares against."""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..config import DiMRConfig, DiTConfig, UViTConfig
from .baselines import DiT, UViT
from .network import MultiResolutionNetwork

__all__ = ["build_model", "MultiResolutionNetwork", "UViT", "DiT"]


def build_model(cfg, device: str | torch.device | None = None) -> nn.Module:
    """Instantiate the network a config describes (on ``device``; ``"meta"`` builds shapes only).

    Every model returned has ``forward(x, noise_level, y) -> list[Tensor]`` (lowest resolution first)."""
    classes = {DiMRConfig: MultiResolutionNetwork, UViTConfig: UViT, DiTConfig: DiT}
    if type(cfg) not in classes:
        raise TypeError(f"no network for config type {type(cfg).__name__}")
    with torch.device(device) if device is not None else contextlib.nullcontext():
        return classes[type(cfg)](cfg)

