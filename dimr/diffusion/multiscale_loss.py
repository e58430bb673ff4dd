"""The multi-scale loss of paper eq. (8).

DiMR's R branches each predict the noise at their own resolution (lowest first). The loss is

    L_multi = Σ_r α_r · E ‖ Downsample(ε, r) − ε_θ(x_t, c, r) ‖²                      (8)

with ``Downsample`` by the factor ``k = 2^(R−r)`` and the paper's weights ``α_r = 1/(2^(R−r))² =
1/4^(R−r)`` (Table 4: ``[1/16, 1/4, 1]`` for 3R, ``[1/4, 1]`` for 2R). As in the official code the
squared error is averaged over C, H, W per sample (``mos``), summed over branches with the weights,
and then averaged over the batch.

The downsampled target — paper versus code:

* ``target="official"`` (``sde.py``/``train.py`` ``multi_scale_targets(…, scale_correction=True)``):
  a depthwise k×k convolution with weights ``1/k`` and stride k, i.e. **k · avgpool_k(ε)**. Pooling
  k² independent unit-variance values and multiplying by k keeps the target at unit variance.
* ``target="paper"``: plain average pooling, as the paper's text says; its variance is ``1/k²``.

A weight of 0 means the branch is not trained at all (Table 2 rows 3–5 train only the last branch):
its prediction is not compared with anything, so it takes no part in the graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["MultiScaleLoss", "multiscale_loss", "downsample_noise", "paper_coefficients", "TARGETS"]

TARGETS = ("official", "paper")


def paper_coefficients(num_branches: int) -> tuple[float, ...]:
    """The paper's weights ``α_r = 1/4^(R−r)`` for r = 1..R, lowest resolution first (below eq. 8)."""
    if num_branches < 1:
        raise ValueError(f"need at least one branch, got {num_branches}")
    return tuple(1.0 / 4 ** (num_branches - r) for r in range(1, num_branches + 1))


def downsample_noise(eps: torch.Tensor, k: int, target: str = "official") -> torch.Tensor:
    """The branch target: ``[B, C, H, W] -> [B, C, H/k, W/k]``.

    ``"official"`` returns ``k·avgpool_k(ε)`` (= sum-pool / k, unit variance for white noise);
    ``"paper"`` returns ``avgpool_k(ε)`` (variance ``1/k²``). ``k = 1`` returns ``eps`` itself."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if k < 1:
        raise ValueError(f"downsampling factor must be a positive integer, got {k}")
    if k == 1:
        return eps
    h, w = eps.shape[-2:]
    if h % k or w % k:
        raise ValueError(f"noise of size {h}×{w} cannot be pooled by {k}")
    pooled = F.avg_pool2d(eps, kernel_size=k, stride=k)
    return pooled * k if target == "official" else pooled


@dataclass(frozen=True)
class MultiScaleLoss:
    """Result of :func:`multiscale_loss`.

    ``total``: scalar, the batch mean of eq. (8) — what to backpropagate. ``per_sample``: ``[B]``,
    eq. (8) per sample before the batch mean. ``per_branch``: unweighted batch-mean MSE of each
    *trained* branch, keyed by its resolution ``H_r`` (branches with weight 0 are absent).
    ``weights``: the weight used for each key of ``per_branch``."""

    total: torch.Tensor
    per_sample: torch.Tensor
    per_branch: dict[int, torch.Tensor] = field(default_factory=dict)
    weights: dict[int, float] = field(default_factory=dict)

    def log_dict(self, prefix: str = "loss") -> dict[str, float]:
        """Plain floats for logging: ``{prefix: total, f"{prefix}/{H}px": mse_r, ...}``."""
        out = {prefix: float(self.total.detach())}
        out.update({f"{prefix}/{res}px": float(v.detach()) for res, v in self.per_branch.items()})
        return out


def multiscale_loss(preds: Sequence[torch.Tensor], eps: torch.Tensor, coeffs: Sequence[float],
                    target: str = "official") -> MultiScaleLoss:
    """Eq. (8): ``Σ_r α_r · mean_{C,H,W}(pred_r − target_r)²``, averaged over the batch.

    Args:
        preds: R predictions, lowest resolution first; branch r is ``[B, C, H/k_r, W/k_r]`` with
            ``k_r = H / H_r`` an integer (the network's list output).
        eps: the full-resolution noise ``[B, C, H, W]`` that made ``x_t``.
        coeffs: α_r, one per prediction (``Recipe.loss_coeffs``); 0 skips the branch.
        target: ``"official"`` (k·avgpool) or ``"paper"`` (avgpool), see the module docstring.
    """
    preds = list(preds)
    coeffs = [float(c) for c in coeffs]
    if len(preds) != len(coeffs):
        raise ValueError(f"got {len(preds)} predictions but {len(coeffs)} loss coefficients; "
                         "they pair up lowest resolution first")
    if eps.dim() != 4:
        raise ValueError(f"eps must be [B, C, H, W], got shape {tuple(eps.shape)}")
    if any(c < 0 for c in coeffs):
        raise ValueError(f"loss coefficients must be non-negative, got {coeffs}")
    if not any(c > 0 for c in coeffs):
        raise ValueError("at least one loss coefficient must be positive")
    B, C, H, W = eps.shape
    per_sample = eps.new_zeros(B)
    per_branch, weights = {}, {}
    for r, (pred, coeff) in enumerate(zip(preds, coeffs), start=1):
        if pred.dim() != 4 or pred.shape[:2] != (B, C):
            raise ValueError(f"prediction of branch {r} has shape {tuple(pred.shape)}; expected "
                             f"[{B}, {C}, H_r, W_r] to match eps {tuple(eps.shape)}")
        h, w = pred.shape[-2:]
        if H % h or W % w or H // h != W // w:
            raise ValueError(f"prediction of branch {r} is {h}×{w}, not an integer downscale of the "
                             f"{H}×{W} noise by one factor")
        if coeff == 0.0:
            continue  # untrained branch: not compared, no gradient
        if h in per_branch:
            raise ValueError(f"two trained predictions share the resolution {h}×{w}")
        tgt = downsample_noise(eps, H // h, target)
        mse = (pred - tgt).pow(2).flatten(1).mean(dim=1)  # [B], mean over C, H, W
        per_sample = per_sample + coeff * mse
        per_branch[h] = mse.mean()
        weights[h] = coeff
    return MultiScaleLoss(total=per_sample.mean(), per_sample=per_sample, per_branch=per_branch,
                          weights=weights)
