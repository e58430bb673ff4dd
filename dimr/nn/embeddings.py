"""Embeddings shared by the networks: sinusoidal features, DiT's timestep MLP, and the central
weight initialisation that the official code (and U-ViT) apply."""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["sinusoidal_embedding", "TimestepEmbedder", "init_trunc_normal"]


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0, order: str = "cos_sin") -> torch.Tensor:
    """Transformer-style features of a scalar per sample.

    ``t: [B] -> [B, dim]`` with frequencies ``exp(−ln(max_period)·i/(dim/2))``; ``order`` is
    ``"cos_sin"`` (DiT and U-ViT both put the cosine half first)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float().reshape(-1, 1) * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedder(nn.Module):
    """DiT's timestep embedder: 256-d sinusoid → ``Linear(256, d)`` → SiLU → ``Linear(d, d)``.

    Shapes: ``[B] -> [B, d]``."""

    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(t, self.freq_dim).to(self.mlp[0].weight.dtype))


def init_trunc_normal(module: nn.Module, std: float = 0.02) -> None:
    """The official DiMR / U-ViT initialisation: every ``nn.Linear`` and ``nn.Embedding`` weight
    trunc-normal(std), Linear biases zero; convolutions keep PyTorch's default; LayerNorms (1, 0)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.trunc_normal_(m.weight, std=std)
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
