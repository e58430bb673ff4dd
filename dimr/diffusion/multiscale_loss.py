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

Other prediction targets (an option of this repo, not the paper's; :mod:`dimr.diffusion.denoiser`).
Each target is a fixed linear function of ``(x₀, ε)`` at full resolution, so each branch's target is
that same function of the *downsampled* components: ``D_ε(ε)`` as above (k·avgpool or avgpool) and
``D_x(x₀) = avgpool_k(x₀)`` (the image at the branch's resolution, its pixel scale unchanged):

* ``"eps"``: ``D_ε(ε)`` — eq. (8) as printed;
* ``"x0"``: ``avgpool_k(x₀)``;
* ``"v"``:  ``α_t·D_ε(ε) − σ_t·avgpool_k(x₀)``; with the official ``D_ε`` both parts keep the variance
  they have at full resolution, so a branch's v target has the same scale as the full-resolution one.

Loss weighting over time (per sample, the same for every branch; :func:`loss_weight`): ``"uniform"``
(the paper's) or ``"min_snr"`` (min-SNR-γ, Hang et al. 2023: the ε-loss weight ``min(SNR, γ)/SNR``,
i.e. ``min(SNR, γ)/(SNR + 1)`` on a v-loss and ``min(SNR, γ)`` on an x₀-loss).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["MultiScaleLoss", "multiscale_loss", "downsample_noise", "downsample_image", "branch_target", "loss_weight",
           "paper_coefficients", "TARGETS", "WEIGHTINGS"]

TARGETS = ("official", "paper")
#: loss weightings over time (``Recipe.loss_weighting``)
WEIGHTINGS = ("uniform", "min_snr")


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


def downsample_image(x0: torch.Tensor, k: int) -> torch.Tensor:
    """The clean image at a branch's resolution: ``avgpool_k(x₀)``, ``[B, C, H, W] -> [B, C, H/k, W/k]``."""
    return x0 if k == 1 else F.avg_pool2d(x0, kernel_size=k, stride=k)


def branch_target(x0: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor, k: int,
                  prediction: str = "eps", noise_target: str = "official") -> torch.Tensor:
    """The target of a branch that downsamples by ``k``, for a network trained to predict ``prediction``.

    ``x0, eps: [B, C, H, W]``; ``alpha, sigma: [B]`` (α_t, σ_t). Returns ``[B, C, H/k, W/k]``: ``D_ε(ε)``,
    ``avgpool_k(x₀)`` or ``α·D_ε(ε) − σ·avgpool_k(x₀)`` (module docstring)."""
    if prediction == "eps":
        return downsample_noise(eps, k, noise_target)
    if prediction == "x0":
        return downsample_image(x0, k)
    if prediction == "v":
        e, x = downsample_noise(eps, k, noise_target), downsample_image(x0, k)
        view = (-1,) + (1,) * (e.dim() - 1)
        return alpha.reshape(view).to(e) * e - sigma.reshape(view).to(e) * x
    raise ValueError(f"prediction must be eps, v or x0, got {prediction!r}")


def loss_weight(snr: torch.Tensor, prediction: str = "eps", weighting: str = "uniform",
                gamma: float = 5.0) -> torch.Tensor | None:
    """Per-sample loss weight ``[B]`` from the SNR ``α²/σ²`` at each sample's time, or ``None`` (uniform).

    ``"min_snr"`` weights every prediction kind as min-SNR-γ weights the ε-loss, ``min(SNR, γ)/SNR``
    (Hang et al. 2023, eq. 9 and its v / x₀ forms)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"loss weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if weighting == "uniform":
        return None
    clipped = snr.clamp(max=gamma)
    if prediction == "eps":
        return clipped / snr
    if prediction == "v":
        return clipped / (snr + 1.0)
    if prediction == "x0":
        return clipped
    raise ValueError(f"prediction must be eps, v or x0, got {prediction!r}")


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

    def log_tensors(self, prefix: str = "loss") -> dict[str, torch.Tensor]:
        """What to log, still on the device (reading it would wait for the device): ``{prefix: total,
        f"{prefix}/{H}px": mse_r, ...}``, detached scalars."""
        out = {prefix: self.total.detach()}
        out.update({f"{prefix}/{res}px": v.detach() for res, v in self.per_branch.items()})
        return out

    def log_dict(self, prefix: str = "loss") -> dict[str, float]:
        """:meth:`log_tensors` as plain floats."""
        return {k: float(v) for k, v in self.log_tensors(prefix).items()}


def multiscale_loss(preds: Sequence[torch.Tensor], eps: torch.Tensor, coeffs: Sequence[float],
                    target: str = "official", *, prediction: str = "eps", x0: torch.Tensor | None = None,
                    alpha: torch.Tensor | None = None, sigma: torch.Tensor | None = None,
                    weight: torch.Tensor | None = None) -> MultiScaleLoss:
    """Eq. (8): ``Σ_r α_r · w(t) · mean_{C,H,W}(pred_r − target_r)²``, averaged over the batch.

    Args:
        preds: R predictions, lowest resolution first; branch r is ``[B, C, H/k_r, W/k_r]`` with
            ``k_r = H / H_r`` an integer (the network's list output).
        eps: the full-resolution noise ``[B, C, H, W]`` that made ``x_t``.
        coeffs: α_r, one per prediction (``Recipe.loss_coeffs``); 0 skips the branch.
        target: ``"official"`` (k·avgpool) or ``"paper"`` (avgpool) noise downsampling, see the module docstring.
        prediction: what the network predicts (``"eps"``, ``"v"``, ``"x0"``); ``"v"`` and ``"x0"`` need
            ``x0: [B, C, H, W]`` and ``alpha, sigma: [B]`` (:func:`branch_target`).
        weight: optional per-sample weight ``[B]`` (:func:`loss_weight`); ``None`` = 1 (the paper's).
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
    if prediction != "eps" and (x0 is None or alpha is None or sigma is None):
        raise ValueError(f"a {prediction!r} target needs x0, alpha and sigma")
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
        tgt = branch_target(x0, eps, alpha, sigma, H // h, prediction, target)
        mse = (pred - tgt).pow(2).flatten(1).mean(dim=1)  # [B], mean over C, H, W
        per_sample = per_sample + coeff * (mse if weight is None else weight * mse)
        per_branch[h] = mse.mean()
        weights[h] = coeff
    return MultiScaleLoss(total=per_sample.mean(), per_sample=per_sample, per_branch=per_branch,
                          weights=weights)
