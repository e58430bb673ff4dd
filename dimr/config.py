"""Frozen dataclasses that describe every model this package builds, and their JSON round trip.

* :class:`BranchConfig` / :class:`DiMRConfig` — the multi-resolution network (paper §4, Table 3).
* :class:`UViTConfig` — U-ViT (Bao et al.), the time-token baseline, optionally with adaLN-Zero.
* :class:`DiTConfig` — DiT (Peebles & Xie), the adaLN-Zero baseline.

What a network is *fed* as its noise level differs between families; ``noise_input`` names it so
that :mod:`dimr.diffusion` converts in one place: ``"log_snr"`` for DiMR (the official code feeds
log-SNR and uses τ = log_snr/4 inside TD-LN) and ``"t999"`` for U-ViT / DiT (time scaled to [0, 999]).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = ["BranchConfig", "DiMRConfig", "UViTConfig", "DiTConfig", "ModelConfig", "config_to_dict", "config_from_dict",
           "from_namespace"]


@dataclass(frozen=True)
class BranchConfig:
    """One resolution branch r: ``block`` is ``"transformer"`` (r = 1) or ``"convnext"`` (r > 1);
    ``depth`` is N_r as written in Table 3 (the official code builds ``N//2·2 + 1`` blocks)."""

    block: str
    dim: int
    depth: int
    heads: int = 0
    kernel_size: int = 7

    def __post_init__(self):
        if self.block not in ("transformer", "convnext"):
            raise ValueError(f"branch block must be 'transformer' or 'convnext', got {self.block!r}")
        if self.block == "transformer" and (self.heads <= 0 or self.dim % self.heads):
            raise ValueError(f"a transformer branch needs heads dividing dim, got dim={self.dim}, heads={self.heads}")
        if self.dim <= 0 or self.depth <= 0:
            raise ValueError("branch dim and depth must be positive")


@dataclass(frozen=True)
class DiMRConfig:
    """The multi-resolution network.

    Faithful defaults are the official code's; each switch names the paper's reading too:

    - ``block_norm``: ``"tdrmsn"`` (official) | ``"tdln"`` (paper: "replace all LNs with TD-LN") |
      ``"ln"`` (time-blind, with ``time_conditioning="adaln_zero"``: Table 2 row 3).
    - ``tdp_form``: ``"official"`` per-channel gates | ``"paper"`` one scalar gate per norm, eqs. (5)–(7).
    - ``cascade``: ``"all"`` (official: every block's output is concatenated and upsampled) |
      ``"last"`` (paper: the last block's output only).
    - ``odd_depth``: official builds ``N//2·2 + 1`` blocks (an even N gets one more).
    - ``mlp``/``mlp_ratio``: GeGLU at 2× (official) or GELU at 4× (Table 2 rows 1–4).
    - ``top_patch``: the last branch's patch size, 1 in the paper (it works at full resolution).
      Beyond the paper, for the claims study's one-branch ablation: every branch's patchify and head
      scale by it, so branch r sees tokens of ``top_patch·2^(R−r)`` pixels and its head unpatchifies
      them back to resolution ``image_size/2^(R−r)`` (Linear → pixel shuffle → Conv3×3, U-ViT's head).
    """

    image_size: int
    in_channels: int
    num_classes: int
    branches: tuple[BranchConfig, ...]
    mlp: str = "geglu"
    mlp_ratio: float = 2.0
    block_norm: str = "tdrmsn"
    time_conditioning: str = "tdln"
    tdp_form: str = "official"
    cascade: str = "all"
    odd_depth: bool = True
    upcast_attention: bool = True
    dropout: float = 0.0
    top_patch: int = 1
    arch: str = field(default="dimr", init=False)

    def __post_init__(self):
        object.__setattr__(self, "branches", tuple(
            b if isinstance(b, BranchConfig) else BranchConfig(**b) for b in self.branches))
        R = len(self.branches)
        if R < 1:
            raise ValueError("a DiMR network needs at least one branch")
        if self.branches[0].block != "transformer" or any(b.block != "convnext" for b in self.branches[1:]):
            raise ValueError("DiMR puts a transformer branch at the lowest resolution and convnext branches above it")
        if self.top_patch < 1 or self.image_size % (self.top_patch * 2 ** (R - 1)):
            raise ValueError(f"image_size {self.image_size} must be divisible by top_patch·2^(R-1) = "
                             f"{self.top_patch}·{2 ** (R - 1)} (top_patch ≥ 1)")
        if self.time_conditioning not in ("tdln", "adaln_zero"):
            raise ValueError(f"time_conditioning must be 'tdln' or 'adaln_zero', got {self.time_conditioning!r}")
        if self.cascade not in ("all", "last"):
            raise ValueError(f"cascade must be 'all' or 'last', got {self.cascade!r}")
        if self.time_conditioning == "tdln" and self.block_norm not in ("tdrmsn", "tdln"):
            raise ValueError("TD time conditioning needs a time-dependent block norm (tdrmsn or tdln)")

    @property
    def num_branches(self) -> int:
        return len(self.branches)

    def patch_size(self, r: int) -> int:
        """Patchify kernel = stride = 2^(R−r) for branch r ∈ {1..R} (paper §4.1), times ``top_patch``."""
        return self.top_patch * 2 ** (self.num_branches - r)

    def resolution(self, r: int) -> int:
        """Side of branch r's token grid."""
        return self.image_size // self.patch_size(r)

    def output_resolution(self, r: int) -> int:
        """Side of branch r's prediction, ``image_size/2^(R−r)`` (its token grid unless ``top_patch`` > 1)."""
        return self.resolution(r) * self.top_patch

    def built_depth(self, r: int) -> int:
        n = self.branches[r - 1].depth
        return n // 2 * 2 + 1 if self.odd_depth else n

    @property
    def noise_input(self) -> str:
        return "log_snr"

    @property
    def num_outputs(self) -> int:
        return self.num_branches


@dataclass(frozen=True)
class UViTConfig:
    """U-ViT: all tokens (time, label, patches) in one Transformer with long skips.

    ``time_conditioning="time_token"`` is U-ViT; ``"adaln_zero"`` is Table 2 row 2 (each block gets a
    two-layer modulation MLP, the time token is dropped)."""

    image_size: int
    in_channels: int
    patch_size: int
    dim: int
    depth: int
    heads: int
    num_classes: int
    mlp_ratio: float = 4.0
    qkv_bias: bool = False
    conv_head: bool = True
    time_conditioning: str = "time_token"
    upcast_attention: bool = False
    arch: str = field(default="uvit", init=False)

    def __post_init__(self):
        if self.image_size % self.patch_size or self.dim % self.heads:
            raise ValueError("U-ViT needs patch_size | image_size and heads | dim")
        if self.time_conditioning not in ("time_token", "adaln_zero"):
            raise ValueError(f"U-ViT time_conditioning must be 'time_token' or 'adaln_zero', got {self.time_conditioning!r}")

    @property
    def noise_input(self) -> str:
        return "t999"

    @property
    def num_outputs(self) -> int:
        return 1


@dataclass(frozen=True)
class DiTConfig:
    """DiT with adaLN-Zero blocks; ``learn_sigma`` doubles the output channels (DiT's default)."""

    image_size: int
    in_channels: int
    patch_size: int
    dim: int
    depth: int
    heads: int
    num_classes: int
    mlp_ratio: float = 4.0
    learn_sigma: bool = True
    arch: str = field(default="dit", init=False)

    def __post_init__(self):
        if self.image_size % self.patch_size or self.dim % self.heads:
            raise ValueError("DiT needs patch_size | image_size and heads | dim")

    @property
    def noise_input(self) -> str:
        return "t999"

    @property
    def num_outputs(self) -> int:
        return 1


ModelConfig = Union[DiMRConfig, UViTConfig, DiTConfig]
_ARCHS = {"dimr": DiMRConfig, "uvit": UViTConfig, "dit": DiTConfig}


def config_to_dict(cfg: Any) -> dict:
    """A JSON-ready dict of any config dataclass (nested dataclasses and tuples included)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_from_dict(d: dict) -> ModelConfig:
    """Inverse of :func:`config_to_dict` for model configs (dispatches on ``arch``)."""
    d = dict(d)
    arch = d.pop("arch", None)
    if arch not in _ARCHS:
        raise ValueError(f"unknown model arch {arch!r}; expected one of {sorted(_ARCHS)}")
    cls = _ARCHS[arch]
    if cls is DiMRConfig:
        d["branches"] = tuple(BranchConfig(**b) for b in d["branches"])
    return cls(**d)


def from_namespace(cls, ns, **overrides):
    """A config dataclass ``cls`` from parsed command-line arguments: each field takes the attribute
    of ``ns`` with its name (fields the parser lacks keep their defaults); ``overrides`` win.  So a
    command line and the dataclass it fills cannot drift apart field by field."""
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if f.init and hasattr(ns, f.name)}
    return cls(**{**values, **overrides})
