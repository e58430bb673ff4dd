"""The one place that knows what a network is fed and what it predicts (after EDM's preconditioners).

Every network of this package is called ``net(x_t, noise_level, y) -> list[Tensor]`` (one output per
branch, lowest resolution first).  Two things about that call differ between families and recipes,
and this module is the only one that knows them:

* **what the network is fed as its noise level** — log-SNR for DiMR (the official proxy ``8t − 4`` on
  the discrete latent schedule), ``999·t`` for U-ViT and DiT (``Schedule.network_input``, chosen by
  ``ModelConfig.noise_input``); and its **null label** for classifier-free guidance (:func:`null_label`);
* **what the network was trained to predict** (``prediction``):

  ==========  ==============================  ==================================================
  ``"eps"``   ε (the paper's; every paper       ``x̂₀ = (x_t − σ_t ε̂)/α_t``
              preset)
  ``"v"``     v = α_t ε − σ_t x₀ (Salimans &    ``ε̂ = σ_t x_t + α_t v̂``,  ``x̂₀ = α_t x_t − σ_t v̂``
              Ho 2022)
  ``"x0"``    x₀                               ``ε̂ = (x_t − α_t x̂₀)/σ_t``
  ==========  ==============================  ==================================================

:class:`Denoiser` wraps a network with a schedule and a prediction type.  It takes continuous time
``t`` and returns whichever quantity its caller asks for — ε̂ for the solvers and guidance
(:meth:`Denoiser.eps`), x̂₀ or v̂ (:meth:`Denoiser.predict`), or the raw per-branch outputs for the
multi-scale loss (``forward``).  Training, the loss, sampling and guidance go through it; nothing
else converts.  All conversions are affine in the network output with coefficients that depend only
on ``t`` — so guidance (a linear combination of two outputs at the same ``x_t, t``) gives the same
result whichever quantity it combines.
"""
from __future__ import annotations

import torch
from torch import nn

from .schedules import Schedule, _broadcast_to

__all__ = ["PREDICTIONS", "Denoiser", "null_label", "label_rows", "data_classes", "convert_prediction"]

#: what a network may be trained to predict (``Recipe.prediction``)
PREDICTIONS = ("eps", "v", "x0")


def null_label(model_cfg, num_data_classes: int) -> int | None:
    """The label index that means "no class" (CFG's unconditional input), or ``None`` if the network has none.

    DiT's label table always carries its own extra row (index ``K`` for ``K`` data classes).  DiMR and
    U-ViT get one only when trained with label dropout: then ``num_classes = K + 1`` and the null
    label is ``K`` (official: 1000 of 1001)."""
    if model_cfg.arch == "dit":
        return num_data_classes
    return num_data_classes if model_cfg.num_classes == num_data_classes + 1 else None


def label_rows(model_cfg, num_data_classes: int, label_dropout: bool) -> int:
    """``num_classes`` of a network for ``K`` data classes: ``K + 1`` when it trains with CFG's label dropout (row
    ``K`` is :func:`null_label`), else ``K``; DiT's label table carries its null row itself, so always ``K``."""
    return num_data_classes + (1 if label_dropout and model_cfg.arch != "dit" else 0)


def data_classes(model_cfg, label_dropout: bool) -> int:
    """The data classes ``K`` of a network whose ``num_classes`` is :func:`label_rows` of them (the inverse)."""
    return model_cfg.num_classes - (1 if label_dropout and model_cfg.arch != "dit" else 0)


def convert_prediction(out: torch.Tensor, x_t: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
                       source: str, target: str) -> torch.Tensor:
    """Turn a prediction of kind ``source`` into one of kind ``target`` (both in :data:`PREDICTIONS`).

    ``out, x_t: [B, C, H, W]``; ``alpha, sigma``: ``[B]`` or scalars (α_t, σ_t at the sample's time).
    Returns ``[B, C, H, W]``; the identity when ``source == target``."""
    for name in (source, target):
        if name not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {name!r}")
    if source == target:
        return out
    a, s = _broadcast_to(alpha.to(out.dtype), out), _broadcast_to(sigma.to(out.dtype), out)
    if source == "eps":
        eps, x0 = out, (x_t - s * out) / a
    elif source == "x0":
        eps, x0 = (x_t - a * out) / s, out
    else:  # v
        eps, x0 = s * x_t + a * out, a * x_t - s * out
    return {"eps": eps, "x0": x0, "v": a * eps - s * x0}[target]


class Denoiser(nn.Module):
    """A network seen as a function of ``(x_t, t, y)``: fed its family's noise level, read as ``prediction``.

    Args:
        net: ``net(x, noise_level, y) -> list[Tensor]`` (or a tensor); must have ``.cfg`` unless
            ``noise_input`` is given (a compiled or DDP-wrapped network: pass ``noise_input``).
        schedule: the diffusion's :mod:`~dimr.diffusion.schedules` schedule.
        prediction: what ``net`` was trained to predict, one of :data:`PREDICTIONS`.
        null_class: the null label for guidance (:func:`null_label`); ``None``: guidance is refused.
        noise_input: ``"log_snr"`` or ``"t999"``; default ``net.cfg.noise_input``.
    """

    def __init__(self, net: nn.Module, schedule: Schedule, prediction: str = "eps",
                 null_class: int | None = None, noise_input: str | None = None):
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        self.net, self.schedule, self.prediction, self.null_class = net, schedule, prediction, null_class
        self.noise_input = noise_input or net.cfg.noise_input

    @property
    def cfg(self):
        """The wrapped network's config (shapes, classes)."""
        return self.net.cfg

    def noise_level(self, t: torch.Tensor) -> torch.Tensor:
        """What the network is fed at continuous times ``t: [B]`` (``Schedule.network_input``)."""
        return self.schedule.network_input(t, self.noise_input)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """The network's own outputs (kind ``prediction``), one per branch, lowest resolution first.

        ``x_t: [B, C, H, W]``, ``t: [B]`` continuous times, ``y: [B]`` labels -> ``list[[B, C, H_r, W_r]]``."""
        out = self.net(x_t, self.noise_level(t).to(x_t.device), y)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor, kind: str = "eps") -> torch.Tensor:
        """The full-resolution prediction of ``kind`` (``"eps"``, ``"x0"`` or ``"v"``): ``[B, C, H, W]``."""
        out = self(x_t, t, y)[-1].float()  # through __call__: hooks on the denoiser see every network batch
        return self.convert(out, x_t.float(), t, kind)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """ε̂(x_t, t, y) at full resolution, ``[B, C, H, W]`` (what the solvers and guidance use)."""
        return self.predict(x_t, t, y, "eps")

    def convert(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, kind: str) -> torch.Tensor:
        """A full-resolution output of this denoiser's ``prediction`` as ``kind`` (:func:`convert_prediction`)."""
        t = torch.as_tensor(t, device=x_t.device, dtype=torch.float32)
        return convert_prediction(out, x_t, self.schedule.alpha(t), self.schedule.sigma(t), self.prediction, kind)
