"""The optimiser side of a training step: AdamW's parameter groups, the learning-rate schedule and the
EMA of the weights, each as the official code has it (``docs/official-code.md`` §5).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .nn.tdln import NODECAY_SUFFIXES

if TYPE_CHECKING:
    from .train import TrainConfig

__all__ = ["param_groups", "build_optimizer", "lr_at", "EMA"]


def param_groups(model: nn.Module, weight_decay: float, decay_time_gates: bool = False) -> list[dict]:
    """The official AdamW groups (docs/official-code.md §5): weight decay on everything except the TD gates
    (``nodecay_weight``/``nodecay_bias``, and the paper-form ``gate_weight``/``gate_bias``).
    Frozen parameters (DiT's fixed positions) are left out."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith(NODECAY_SUFFIXES) and not decay_time_gates else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: "TrainConfig", device: torch.device) -> torch.optim.AdamW:
    """The run's AdamW over :func:`param_groups` of ``model`` at ``cfg``'s learning rate and betas (a resolved
    config: :func:`resolve_config`); ``model`` may be any network with the official parameter names."""
    # fused: one kernel for all parameters instead of a loop over them (the same update, several times faster)
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay, cfg.decay_time_gates), lr=cfg.lr,
                             betas=cfg.betas, eps=1e-8, fused=device.type in ("cpu", "cuda"))


def lr_at(step: int, base_lr: float, warmup_steps: int) -> float:
    """Linear warm-up then constant (official ``LambdaLR(min(step/warmup, 1))``): ``step`` = updates done."""
    return base_lr * (min(step / warmup_steps, 1.0) if warmup_steps > 0 else 1.0)


class EMA:
    """Exponential moving average of the parameters (official: copied at step 0, rate 0.9999, no
    warm-up; ``warmup=True`` uses ``min(rate, (1 + n)/(10 + n))`` for short runs)."""

    def __init__(self, model: nn.Module, rate: float, warmup: bool = False):
        self.rate, self.warmup = rate, warmup
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters()}

    def rate_at(self, step: int) -> float:
        return min(self.rate, (1 + step) / (10 + step)) if self.warmup else self.rate

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        names, params = zip(*model.named_parameters())
        # one fused call over all tensors instead of one small kernel per parameter (same arithmetic)
        torch._foreach_lerp_([self.shadow[n] for n in names], [p.detach() for p in params], 1.0 - self.rate_at(step))

    def state_dict(self, model: nn.Module) -> dict:
        """A full model state dict with EMA parameters (buffers from ``model``)."""
        state = model.state_dict()
        return {k: (self.shadow[k].clone() if k in self.shadow else v.clone()) for k, v in state.items()}

    def load_state_dict(self, state: dict) -> None:
        for n in self.shadow:
            self.shadow[n].copy_(state[n])
