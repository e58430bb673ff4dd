"""The Multi-Resolution Network (paper §4.1, Fig. 2): R branches, lowest resolution first, each
handing its features up the feature cascade, each predicting the noise at its own resolution."""
from __future__ import annotations

import torch
from torch import nn

from ..config import DiMRConfig
from .branch import Branch
from .embeddings import init_trunc_normal
from .blocks import AdaLNModulation
from .tdln import TimeValues, time_dependent_modules

__all__ = ["MultiResolutionNetwork", "log_snr_to_tau", "ADALN_TIME_SCALE"]

#: adaLN ablations of the DiMR family embed ``ADALN_TIME_SCALE·τ`` with DiT's 256-d sinusoid, so that
#: τ ∈ (−1, 1] (latent models) spans a range like DiT's integer timesteps.
ADALN_TIME_SCALE = 500.0


def log_snr_to_tau(log_snr: torch.Tensor | float, batch: int, device, dtype=torch.float32) -> torch.Tensor:
    """τ = log_snr / 4, the time fed to every TD-LN in the official code. Returns ``[B]``."""
    tau = torch.as_tensor(log_snr, device=device, dtype=dtype).reshape(-1) / 4.0
    if tau.numel() == 1:
        tau = tau.expand(batch)
    if tau.numel() != batch:
        raise ValueError(f"log_snr has {tau.numel()} values for a batch of {batch}")
    return tau


class MultiResolutionNetwork(nn.Module):
    """DiMR's denoiser.

    ``forward(x: [B, C, H, W], log_snr: [B] or scalar, y: [B] long) -> list[Tensor]`` — one noise
    prediction per branch, **lowest resolution first**: branch r returns ``[B, C, H/2^(R−r), W/2^(R−r)]``.
    The last element is the full-resolution prediction used for sampling.
    """

    def __init__(self, cfg: DiMRConfig):
        super().__init__()
        self.cfg = cfg
        branches, low_dim = [], None
        for r in range(1, cfg.num_branches + 1):
            branch = Branch(cfg, r, low_dim)
            branches.append(branch)
            low_dim = branch.feature_dim
        self.branches = nn.ModuleList(branches)
        # every TD norm's terms, in one order: the forward computes all their values in one batched op
        self.time_dependent = time_dependent_modules(self)
        self.init_weights()

    def init_weights(self) -> None:
        """Official init: Linear/Embedding trunc-normal(0.02) with zero bias, position embeddings
        trunc-normal(0.02), convolutions PyTorch default, TD parameters (p0 = p1, w' = b = 0);
        adaLN-Zero modulations (ablation only) zeroed."""
        init_trunc_normal(self)
        for branch in self.branches:
            nn.init.trunc_normal_(branch.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, AdaLNModulation):
                m.zero_init()

    def set_grad_checkpointing(self, enabled: bool = True) -> "MultiResolutionNetwork":
        """Activation checkpointing for every block (the official code always checkpoints)."""
        for branch in self.branches:
            branch.grad_checkpointing = enabled
        return self

    def forward(self, x: torch.Tensor, log_snr: torch.Tensor | float, y: torch.Tensor) -> list[torch.Tensor]:
        tau = log_snr_to_tau(log_snr, x.shape[0], x.device)
        t = TimeValues(self.time_dependent, tau)  # γ(t), β(t) of every TD norm, eqs. (5)–(6), at once
        t_in = ADALN_TIME_SCALE * tau if self.cfg.time_conditioning == "adaln_zero" else None
        outputs, low = [], None
        last = len(self.branches) - 1
        for r, branch in enumerate(self.branches):
            eps, low = branch(x, t, y, low, t_in, need_features=r < last)
            outputs.append(eps)
        return outputs
