"""Every random draw of a training run as a function of (seed, step): why ``--resume`` is exact.

The batch a step takes (:class:`StepBatchSampler`) and its label dropout, times and noise
(:func:`draw_noise`) are computed from the run's seed and the step's number, never from a generator
that has advanced through earlier steps; the global RNG states a checkpoint carries (:func:`rng_state`)
cover what is left (dropout, data augmentation). So a run killed at any step and resumed draws exactly
what the uninterrupted run drew, and ``torchrun`` with K processes draws what one process draws.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING

import torch
from torch.utils.data import Sampler

from .checkpoint import numpy_rng_state, set_numpy_rng_state
from .diffusion import draw_training_t, drop_labels

if TYPE_CHECKING:
    from .train import TrainConfig

__all__ = ["StepBatchSampler", "draw_noise", "rng_state", "set_rng_state"]


def _seed_for(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix-style), so per-step generators never collide."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (int(p) + 0x9E3779B97F4A7C15 + (x << 6) + (x >> 2))) & 0xFFFFFFFFFFFFFFFF
        x = (x * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return x & 0x7FFFFFFFFFFFFFFF


class StepBatchSampler(Sampler):
    """Index lists for steps ``start..total-1``: sample ``k`` of the run (counted over steps,
    accumulation micro-steps and ranks) is item ``perm_e[k mod N]`` with ``e = k // N`` and ``perm_e`` a
    permutation seeded by (seed, e). A pure function of (seed, step, rank): resumable and DDP-sharded."""

    def __init__(self, n_items: int, local_batch: int, start_step: int, total_steps: int, seed: int,
                 rank: int = 0, world: int = 1, accum: int = 1):
        self.n, self.local, self.start, self.total = n_items, local_batch, start_step, total_steps
        self.seed, self.rank, self.world, self.accum = seed, rank, world, accum
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            g = torch.Generator().manual_seed(_seed_for(self.seed, 0xDA7A, epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def sample_ids(self, step: int, micro: int = 0) -> range:
        """Run-global ids ``k`` of the samples this rank takes at (step, micro)."""
        first = ((step * self.accum + micro) * self.world + self.rank) * self.local
        return range(first, first + self.local)

    def indices(self, step: int, micro: int = 0) -> list[int]:
        return [int(self._perm(k // self.n)[k % self.n]) for k in self.sample_ids(step, micro)]

    def __iter__(self):
        for step in range(self.start, self.total):
            for micro in range(self.accum):
                yield self.indices(step, micro)

    def __len__(self) -> int:
        return (self.total - self.start) * self.accum


def draw_noise(step: int, sample_ids: range, y: torch.Tensor, shape, schedule, cfg: "TrainConfig",
               null_class: int | None):
    """Label dropout, diffusion time and noise for the samples ``sample_ids`` of optimiser step ``step``.

    All draws of a step come from one generator seeded by (seed, step), made for the step's whole
    *global* batch (``cfg.batch_size`` samples, run-global ids ``step·batch_size …``); each process and
    accumulation micro-step takes its own rows. So the draws do not depend on how samples are split over
    processes — ``torchrun`` with K processes trains the same run as one process (up to float summation
    order) — and a resumed run draws exactly what the uninterrupted one drew.
    ``y: [b]``; returns ``(y [b], t [b], eps [b, *shape])`` on the CPU."""
    g = torch.Generator().manual_seed(_seed_for(cfg.seed, 0x5EED, step))
    n = cfg.batch_size
    rows = torch.tensor([k - step * n for k in sample_ids])
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= n):
        raise ValueError(f"sample ids {sample_ids} are not in step {step}'s batch of {n}")
    uniform = torch.rand(n, generator=g)[rows]
    t = draw_training_t(schedule, n, g, cfg.time_distribution, cfg.time_loc, cfg.time_scale)[rows]
    eps = torch.randn((n, *shape), generator=g)[rows]
    return drop_labels(y.cpu(), cfg.p_uncond, null_class, uniform=uniform), t, eps


def rng_state() -> dict:
    """Every global random state a checkpoint carries: torch, NumPy, Python and (with CUDA) every GPU."""
    state = {"torch": torch.get_rng_state(), "numpy": numpy_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    set_numpy_rng_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
