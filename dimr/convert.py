"""Official DiMR checkpoints → this package (and back).

The official ``MRModel`` (qihao067/DiMR, ``libs/core/blocks.py``) names its parameters
``stages.<s>.…``; this package names them ``branches.<s>.…``.  The mapping is a short table of
rules (see :data:`RULES`; ``tests/data/official-dimr-xl-2r-state-dict.tsv`` lists the official
layout; docs/official-code.md §10).  Values are copied unchanged: this package's cascade upsample uses the official
pixel-shuffle channel order (:func:`dimr.nn.branch.pixel_shuffle_channels_last`), its TD parameters
use the official ``param0/param1/nodecay_*`` names, and its position embeddings keep the official
``[H·W, C]`` row order.

Conversion is all-or-nothing: a key without a counterpart, a missing key or a shape that differs
raises :class:`ConversionError` naming the first offending key — never a partial load.

:func:`official_model_config` goes the other way for the architecture: the official ``MRModel``
config (attribute bags shaped like its ``configs/*.py``) of a :class:`~dimr.config.DiMRConfig`, so the
official code can build the same network (``python -m dimr bench --official`` does).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch
from torch import nn

from .cli import parser
from .config import DiMRConfig
from .nn import build_model

__all__ = ["RULES", "ConversionError", "official_to_ours_key", "ours_to_official_key", "from_official",
           "convert_state_dict", "to_official", "load_official_state_dict", "OfficialArgs", "official_model_config",
           "cli"]


class ConversionError(ValueError):
    """An official state dict that does not fit the requested preset."""


# (official template, our template, branch kind it applies to: None = any, "transformer", "convnext")
RULES: list[tuple[str, str, str | None]] = [
    ("stages.{S}.input_layer.1.{P}", "branches.{S}.patchify.{P}", None),
    ("stages.{S}.input_layer.3.position_embeddings.weight", "branches.{S}.pos_embed", None),
    ("stages.{S}.class_embeds.weight", "branches.{S}.class_embed.weight", "transformer"),
    ("stages.{S}.upsample.0.{R}", "branches.{S}.upsample.norm_in.{R}", None),
    ("stages.{S}.upsample.1.kernel.{P}", "branches.{S}.upsample.proj.{P}", None),
    ("stages.{S}.upsample.2.{R}", "branches.{S}.upsample.norm_out.{R}", None),
    ("stages.{S}.output_layer.0.{R}", "branches.{S}.head.norm.{R}", None),
    ("stages.{S}.output_layer.2.{P}", "branches.{S}.head.conv.{P}", None),
    ("stages.{S}.skip_denses.{I}.{P}", "branches.{S}.skip_linears.{I}.{P}", None),
    ("stages.{S}.blocks.{I}.block1.norm.{R}", "branches.{S}.blocks.{I}.norm1.{R}", "transformer"),
    ("stages.{S}.blocks.{I}.block1.query_key_value.weight", "branches.{S}.blocks.{I}.attn.qkv.weight", "transformer"),
    ("stages.{S}.blocks.{I}.block1.dense.{P}", "branches.{S}.blocks.{I}.attn.proj.{P}", "transformer"),
    ("stages.{S}.blocks.{I}.block2.norm.{R}", "branches.{S}.blocks.{I}.norm2.{R}", "transformer"),
    ("stages.{S}.blocks.{I}.block1.1.{P}", "branches.{S}.blocks.{I}.dwconv.{P}", "convnext"),
    ("stages.{S}.blocks.{I}.block2.norm.{R}", "branches.{S}.blocks.{I}.norm.{R}", "convnext"),
    ("stages.{S}.blocks.{I}.block2.{W}.{P}", "branches.{S}.blocks.{I}.mlp.{W}.{P}", None),
]

_FIELDS = {"S": r"(?P<S>\d+)", "I": r"(?P<I>\d+)", "P": r"(?P<P>weight|bias)", "R": r"(?P<R>[\w.]+)",
           "W": r"(?P<W>w[012])"}


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for name, group in _FIELDS.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), group)
    return re.compile(pattern + r"\Z")


_COMPILED = [(_compile(o), o, _compile(u), u, kind) for o, u, kind in RULES]


def _branch_kind(cfg: DiMRConfig, s: str) -> str | None:
    i = int(s)
    return cfg.branches[i].block if i < cfg.num_branches else None


def _translate(key: str, cfg: DiMRConfig, to_ours: bool) -> str | None:
    for o_re, o_tpl, u_re, u_tpl, kind in _COMPILED:
        src_re, dst_tpl = (o_re, u_tpl) if to_ours else (u_re, o_tpl)
        m = src_re.match(key)
        if m and (kind is None or _branch_kind(cfg, m.group("S")) == kind):
            return dst_tpl.format(**m.groupdict())
    return None


def official_to_ours_key(key: str, cfg: DiMRConfig) -> str | None:
    """``stages.0.blocks.3.block1.dense.weight -> branches.0.blocks.3.attn.proj.weight`` (None if unknown)."""
    return _translate(key, cfg, to_ours=True)


def ours_to_official_key(key: str, cfg: DiMRConfig) -> str | None:
    """The inverse of :func:`official_to_ours_key`."""
    return _translate(key, cfg, to_ours=False)


def _check_convertible(cfg) -> DiMRConfig:
    if not isinstance(cfg, DiMRConfig):
        raise ConversionError(f"official checkpoints are DiMR networks; preset config is {type(cfg).__name__}")
    off = {"time_conditioning": "tdln", "tdp_form": "official", "cascade": "all", "mlp": "geglu", "odd_depth": True}
    for name, want in off.items():
        if getattr(cfg, name) != want:
            raise ConversionError(f"the official code has no counterpart for {name}={getattr(cfg, name)!r} (it uses {want!r})")
    return cfg


class OfficialArgs:
    """An attribute bag of the shape the official configs use (their ``Args``): ``OfficialArgs(dim=960).dim``."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"OfficialArgs({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


#: this package's block norms as the official ``norm_type`` names them (its "LN" is the time-dependent LayerNorm)
OFFICIAL_NORM_TYPES = {"tdrmsn": "TDRMSN", "tdln": "LN"}


def official_model_config(cfg: DiMRConfig) -> OfficialArgs:
    """The official ``MRModel(config)`` argument that builds the network ``cfg`` describes.

    One stage per branch, lowest resolution first: patchify kernel ``input_feature_ratio = 2^(R−r)``,
    ``max_height = max_width`` the branch's token grid, ``hidden_dim = mlp_ratio·dim`` (GeGLU), ``num_blocks``
    the Table 3 depth (the official code builds ``N//2·2 + 1`` blocks, as ``odd_depth``), a 3×3 output conv.
    Raises :class:`ConversionError` for options the official code lacks (it fixes TD time conditioning,
    per-channel TD gates, the cascade of every block, GeGLU, odd depths and fp32 attention)."""
    cfg = _check_convertible(cfg)
    if not cfg.upcast_attention:
        raise ConversionError("the official code has no counterpart for upcast_attention=False (it always "
                              "computes attention in fp32)")
    stages = []
    for r, branch in enumerate(cfg.branches, start=1):
        common = dict(dim=branch.dim, hidden_dim=int(round(branch.dim * cfg.mlp_ratio)), num_blocks=branch.depth,
                      max_height=cfg.resolution(r), max_width=cfg.resolution(r), image_input_ratio=1,
                      input_feature_ratio=cfg.patch_size(r), final_kernel_size=3, dropout_prob=cfg.dropout)
        if branch.block == "transformer":
            stages.append(OfficialArgs(block_type="TransformerBlock", num_attention_heads=branch.heads, **common))
        else:
            stages.append(OfficialArgs(block_type="ConvNeXtBlock", kernel_size=branch.kernel_size, **common))
    return OfficialArgs(channels=cfg.in_channels, num_classes=cfg.num_classes, block_grad_to_lowres=False,
                        norm_type=OFFICIAL_NORM_TYPES[cfg.block_norm], stage_configs=stages)


def _strip_wrappers(state: dict) -> dict:
    """Accept raw state dicts and the usual wrappers (``{"model": …}``, DDP's ``module.``, compile's ``_orig_mod.``)."""
    for key in ("state_dict", "model", "nnet_ema", "nnet"):
        if key in state and isinstance(state[key], dict) and not isinstance(state[key], torch.Tensor):
            state = state[key]
            break
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "_orig_mod."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


def _resolve_config(preset_or_config):
    if isinstance(preset_or_config, str):
        from .presets import get_preset
        return get_preset(preset_or_config).model
    return getattr(preset_or_config, "model", preset_or_config)


def convert_state_dict(official: dict, preset_or_config) -> dict:
    """Official-layout state dict → this package's state dict, validated key by key and shape by shape.

    Raises :class:`ConversionError` naming the first key that has no counterpart, is missing, or has
    the wrong shape."""
    cfg = _check_convertible(_resolve_config(preset_or_config))
    official = _strip_wrappers(official)
    expected = build_model(cfg, device="meta").state_dict()
    converted = {}
    for key, value in official.items():
        ours = official_to_ours_key(key, cfg)
        if ours is None or ours not in expected:
            raise ConversionError(f"official key {key!r} has no counterpart in this preset "
                                  f"(a state dict of another preset or another model?)")
        if tuple(value.shape) != tuple(expected[ours].shape):
            raise ConversionError(f"official key {key!r} has shape {tuple(value.shape)}, the preset expects "
                                  f"{tuple(expected[ours].shape)} for {ours!r} (wrong preset?)")
        converted[ours] = value
    for ours in expected:
        if ours not in converted:
            raise ConversionError(f"official state dict lacks {ours_to_official_key(ours, cfg)!r} "
                                  f"(needed for {ours!r}): truncated checkpoint or another preset?")
    return converted


def from_official(state_dict: dict, preset) -> nn.Module:
    """Build this package's model for ``preset`` (name, :class:`~dimr.presets.Preset` or config) and
    load the official-layout ``state_dict`` into it (strictly)."""
    cfg = _resolve_config(preset)
    model = build_model(cfg)
    model.load_state_dict(convert_state_dict(state_dict, cfg), strict=True)
    return model


def to_official(state_dict: dict, preset) -> dict:
    """This package's state dict → the official layout (the inverse of :func:`convert_state_dict`)."""
    cfg = _check_convertible(_resolve_config(preset))
    out = {}
    for key, value in state_dict.items():
        official = ours_to_official_key(key, cfg)
        if official is None:
            raise ConversionError(f"key {key!r} has no official counterpart")
        out[official] = value
    return out


def load_official_state_dict(path: str | Path) -> dict:
    """Read an official checkpoint file (``nnet_ema.pth``/``nnet.pth``) or a checkpoint folder holding one."""
    path = Path(path)
    if path.is_dir():
        for name in ("nnet_ema.pth", "nnet.pth"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise ConversionError(f"{path} holds neither nnet_ema.pth nor nnet.pth")
    if not path.exists():
        raise ConversionError(f"official checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConversionError(f"cannot read {path} as a torch state dict: {e}") from e


def _parser() -> argparse.ArgumentParser:
    ap = parser("convert", "Convert an official DiMR checkpoint to this package's checkpoint format.")
    ap.add_argument("--checkpoint", required=True, help="official nnet_ema.pth / nnet.pth, or their folder")
    ap.add_argument("--preset", required=True, help="e.g. DiMR-XL/2R or DiMR-G/2R")
    ap.add_argument("--out", required=True, help="where to write this package's checkpoint")
    return ap


def cli(argv: list[str]) -> int:
    """``python -m dimr convert --checkpoint nnet_ema.pth --preset DiMR-XL/2R --out dimr-xl-2r.pt``"""
    from .checkpoint import save_checkpoint
    from .presets import get_preset

    args = _parser().parse_args(argv)
    try:
        preset = get_preset(args.preset)
        state = convert_state_dict(load_official_state_dict(args.checkpoint), preset.model)
    except (KeyError, ConversionError) as e:
        print(f"dimr convert: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    save_checkpoint(args.out, preset.model, state, preset=preset.name, ema_state=state, step=0,
                    source={"official_checkpoint": str(args.checkpoint)})
    n = sum(v.numel() for v in state.values())
    print(f"converted {len(state)} tensors ({n:,} parameters) for {preset.name} -> {args.out}")
    return 0
