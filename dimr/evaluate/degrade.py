"""Known degradations of real images, to check that a measure moves the right way.

A distortion measure (or FID) that does not grow when real images are progressively damaged
measures nothing.  Two controlled damages, both deterministic for a seed:

* :func:`gaussian_blur` — isotropic Gaussian blur of standard deviation ``sigma`` pixels
  (destroys edges and corners: the "soft" failure of an under-trained model);
* :func:`elastic_warp` — a smooth random displacement field (a 4×4 grid of Gaussian offsets,
  bicubically upsampled) of amplitude ``strength`` pixels: bends straight edges and moves corners,
  the geometric failure that §5.3 calls distortion.

Both take and return float images ``[N, C, H, W]`` in [−1, 1].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

__all__ = ["gaussian_blur", "elastic_warp", "degrade"]


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur ``x [N, C, H, W]`` with a Gaussian of std ``sigma`` pixels, truncated at 3σ (reflect padding;
    torchvision's ``gaussian_blur``)."""
    if sigma <= 0:
        return x.clone()
    size = 2 * max(1, math.ceil(3 * sigma)) + 1
    return TF.gaussian_blur(x, kernel_size=[size, size], sigma=[float(sigma), float(sigma)])


def elastic_warp(x: torch.Tensor, strength: float, seed: int = 0, grid: int = 4) -> torch.Tensor:
    """Warp ``x [N, C, H, W]`` by a smooth random field of amplitude ``strength`` pixels.

    The field's shape is fixed by ``seed`` (one per image), so increasing ``strength`` scales the same
    displacements: the damage grows monotonically with it."""
    n, _, h, w = x.shape
    if strength <= 0:
        return x.clone()
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 2, grid, grid, generator=g, dtype=x.dtype)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)  # [N, 2, H, W], ~unit std
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, dtype=x.dtype), torch.linspace(-1, 1, w, dtype=x.dtype),
                            indexing="ij")
    base = torch.stack([xs, ys], dim=-1).expand(n, h, w, 2)
    offset = field.permute(0, 2, 3, 1) * strength * torch.tensor([2.0 / w, 2.0 / h], dtype=x.dtype)
    return F.grid_sample(x, base + offset, mode="bilinear", padding_mode="border", align_corners=True)


def degrade(x: torch.Tensor, kind: str, strength: float, seed: int = 0) -> torch.Tensor:
    """``kind`` is ``"blur"`` (``strength`` = σ in pixels) or ``"warp"`` (amplitude in pixels)."""
    if kind == "blur":
        return gaussian_blur(x, strength)
    if kind == "warp":
        return elastic_warp(x, strength, seed)
    raise ValueError(f"kind must be 'blur' or 'warp', got {kind!r}")
