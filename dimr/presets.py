"""The model zoo: named presets built from frozen dataclasses.

Each :class:`Preset` carries the network config, the training recipe of Table 4 (or the baseline's
own paper where Table 4 is silent), and the numbers the paper prints for it, with where it prints
them.  Nothing here is measured: :mod:`dimr.profile` measures, and the zoo shows both side by side.

Sources cited below: "Table N" / "App. B" / "Limitations" are the DiMR paper (arXiv 2406.09416);
"README" is the official repository's README (qihao067/DiMR); ``docs/official-code.md`` records what
the official code does and the counts of its models.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .config import BranchConfig, DiMRConfig, DiTConfig, ModelConfig, UViTConfig

__all__ = ["Recipe", "PaperValue", "Preset", "PRESETS", "get_preset", "preset_names", "register"]


@dataclass(frozen=True)
class Recipe:
    """How a preset is trained and sampled (Table 4 columns; U-ViT's paper for U-ViT rows).

    ``schedule``: ``"vp_linear"`` (continuous VP, β 0.1→20, pixel models as U-ViT) or
    ``"sd_scaled_linear"`` (discrete Stable-Diffusion schedule, the official latent models).
    ``loss_coeffs``: α_r of eq. (8), lowest resolution first; ``(0, …, 0, 1)`` trains the last branch only.
    ``cfg_scale``: the official ``scale`` (guidance weight w = 1 + scale); 0 disables guidance.
    """

    resolution: int
    latent: bool
    loss_coeffs: tuple[float, ...]
    schedule: str
    batch_size: int = 1024
    iterations: int = 300_000
    warmup_steps: int = 5_000
    optimizer: str = "AdamW"
    lr: float = 3e-4
    weight_decay: float = 0.03
    betas: tuple[float, float] = (0.99, 0.99)
    ema_rate: float = 0.9999
    #: ``min(rate, (1+n)/(10+n))`` for the first steps; off in the paper's recipes (docs/official-code.md §5: the
    #: official EMA is copied at step 0 with a fixed rate), on for the CPU-scale presets: in a 1,500-step run a
    #: fixed 0.999 would still give the random initial weights 0.999^1500 ≈ 22% of the average.
    ema_warmup: bool = False
    p_uncond: float = 0.0
    #: what the network is trained to predict: ``"eps"`` (the paper's), ``"v"`` or ``"x0"``
    #: (:mod:`dimr.diffusion.denoiser`); loss weighting over time and where training draws its times
    #: (:mod:`dimr.diffusion.multiscale_loss`, :func:`dimr.diffusion.schedules.draw_training_t`)
    prediction: str = "eps"
    loss_weighting: str = "uniform"
    min_snr_gamma: float = 5.0
    time_distribution: str = "uniform"
    time_loc: float = 0.0
    time_scale: float = 1.0
    cfg_scale: float = 0.0
    sampler: str = "DPM-Solver"
    sampling_steps: int = 50
    #: DPM-Solver's time grid: ``"time_uniform"`` (official) or ``"logSNR"``
    sampling_skip: str = "time_uniform"
    latent_shape: tuple[int, int, int] | None = None
    image_decoder: str | None = None
    #: Table 4's training hardware and wall time: ``training_gpus`` × ``training_gpu`` for ``training_hours``
    training_gpus: int | None = None
    training_gpu: str | None = None
    training_hours: float | None = None
    source: str = "Table 4"

    @property
    def training_devices(self) -> str | None:
        """``"16 A100"`` as Table 4 prints it, or None."""
        return f"{self.training_gpus} {self.training_gpu}" if self.training_gpus else None

    @property
    def training_time(self) -> str | None:
        """``"172 hours"`` as Table 4 prints it, or None."""
        return f"{self.training_hours:g} hours" if self.training_hours else None


@dataclass(frozen=True)
class PaperValue:
    """A number printed in the paper (or README), with where it is printed."""

    value: float
    where: str


@dataclass(frozen=True)
class Preset:
    """A named model: its config, its recipe, and what the paper says about it.

    ``paper_params`` is in millions; more than one entry means the paper prints different numbers
    for the same model (DiMR-M/3R, DiMR-XL/3R).  ``official_params`` is the count measured by
    instantiating the official code (docs/official-code.md §7; the acceptance target, to 0.1%)."""

    name: str
    model: ModelConfig
    recipe: Recipe | None
    description: str
    paper_params: tuple[PaperValue, ...] = ()
    paper_gmacs: tuple[PaperValue, ...] = ()
    official_params: int | None = None
    official_gmacs: float | None = None
    table2_row: int | None = None
    notes: str = ""


PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    if preset.name in PRESETS:
        raise ValueError(f"preset {preset.name!r} is already registered")
    PRESETS[preset.name] = preset
    return preset


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """Look a preset up by name (exact, then case-insensitive); unknown names list the zoo."""
    if name in PRESETS:
        return PRESETS[name]
    folded = {k.lower(): v for k, v in PRESETS.items()}
    if name.lower() in folded:
        return folded[name.lower()]
    raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")


def _pv(*pairs) -> tuple[PaperValue, ...]:
    return tuple(PaperValue(v, w) for v, w in pairs)


def _dimr(image_size, in_channels, num_classes, depths, dims, heads, **kw) -> DiMRConfig:
    branches = [BranchConfig("transformer", dims[0], depths[0], heads)]
    branches += [BranchConfig("convnext", d, n) for d, n in zip(dims[1:], depths[1:])]
    return DiMRConfig(image_size=image_size, in_channels=in_channels, num_classes=num_classes,
                      branches=tuple(branches), **kw)


def _pixel64(loss_coeffs, gpus: int | None = None, hours: float | None = None) -> Recipe:
    return Recipe(resolution=64, latent=False, loss_coeffs=loss_coeffs, schedule="vp_linear", lr=3e-4,
                  iterations=300_000, sampling_steps=50, training_gpus=gpus, training_gpu="A100" if gpus else None,
                  training_hours=hours)


def _latent(resolution, loss_coeffs, latent_hw, gpus: int | None = None, hours: float | None = None,
            source="Table 4") -> Recipe:
    return Recipe(resolution=resolution, latent=True, loss_coeffs=loss_coeffs, schedule="sd_scaled_linear",
                  lr=2e-4, iterations=1_000_000, sampling_steps=250, p_uncond=0.1, cfg_scale=0.4,
                  latent_shape=(latent_hw, latent_hw, 4), image_decoder="sd-vae-ft-ema",
                  training_gpus=gpus, training_gpu="A100" if gpus else None, training_hours=hours, source=source)


# ---------------------------------------------------------------------------------------------
# DiMR family (Table 3; official configs for XL/2R and G/2R)
# ---------------------------------------------------------------------------------------------
M3R = _dimr(64, 3, 1000, (15, 8, 8), (768, 384, 192), 12)
register(Preset(
    "DiMR-M/3R", M3R, _pixel64((1 / 16, 1 / 4, 1), 8, 62),
    "DiMR medium, 3 branches, ImageNet 64×64 pixels (Table 3)",
    paper_params=_pv((133, "Tables 3–5"), (132.7, "App. B"), (132.9, "Table 2 row 6")),
    paper_gmacs=_pv((54, "Table 5")), official_params=132_827_913, official_gmacs=53.58, table2_row=6,
    notes="The paper prints several sizes for this model (paper_params); which of them the count rounds to "
          "depends on the block norm, TD-RMSNorm (the released configs, this preset) or TD-LN (the paper's "
          "text): the tables' notes give both counts."))
register(Preset(
    "DiMR-L/3R", _dimr(64, 3, 1000, (33, 17, 17), (768, 384, 192), 12),
    _pixel64((1 / 16, 1 / 4, 1), 16, 80),
    "DiMR large, 3 branches, ImageNet 64×64 pixels (Table 3)",
    paper_params=_pv((284, "Tables 3–5"), (284.0, "App. B")), paper_gmacs=_pv((111, "Table 5")),
    official_params=284_137_737, official_gmacs=110.68))
register(Preset(
    "DiMR-XL/2R", _dimr(32, 4, 1001, (39, 20), (960, 480), 16),
    _latent(256, (1 / 4, 1), 32, 16, 172),
    "DiMR extra-large, 2 branches, ImageNet 256×256 via 32×32×4 SD-VAE latents (official config)",
    paper_params=_pv((505, "Tables 1, 3, 4, 6")), paper_gmacs=_pv((160, "Tables 1, 6")),
    official_params=505_046_408, official_gmacs=160.23))
register(Preset(
    "DiMR-XL/3R", _dimr(64, 4, 1001, (39, 20, 20), (960, 480, 240), 16),
    _latent(512, (1 / 16, 1 / 4, 1), 64, 16, 288),
    "DiMR extra-large, 3 branches, ImageNet 512×512 via 64×64×4 SD-VAE latents (Table 3)",
    paper_params=_pv((525, "Tables 1, 3, 4, 7"), (524.8, "Limitations")), paper_gmacs=_pv((206, "Tables 1, 7")),
    official_params=525_027_372, official_gmacs=206.19))
register(Preset(
    "DiMR-G/2R", _dimr(32, 4, 1001, (57, 29), (1152, 576), 16),
    _latent(256, (1 / 4, 1), 32, source="official config + README"),
    "DiMR giant, 2 branches, ImageNet 256×256 latents (official config; README: FID 1.63)",
    paper_params=_pv((1056, "README (1.06B)")), paper_gmacs=_pv((331, "README")),
    official_params=1_056_352_904, official_gmacs=331.19))

# Tiny members of the family for CPU-scale work: same design, a million-odd parameters, 32×32 RGB
# inputs, 8 shape classes + 1 null label (the offline default dataset of dimr.data).
#: CPU-scale recipe, chosen by measurement (``scripts/compare_cpu_recipes.py``, recorded in
#: ``runs/ablation-cpu-recipe/cpu.json``; every candidate trained on the same number of images):
#: * ``prediction="x0"``: the paper's ε target leaves a short run unable to draw the high-noise end
#:   (``runs/diagnose-dimr-t3r-20min``); a network that predicts the clean image is well conditioned
#:   there, and at equal training images x₀ drew more recognisable shapes than v, which beat ε;
#: * batch 16 at learning rate 2e-3: a short run needs optimiser steps more than large batches (for the
#:   same images, batch 16 beat 32 and 64 although a step of 16 images runs at fewer images/s);
#: * Adam's β = (0.9, 0.999), not the official (0.99, 0.99): after 300 steps of DiMR-T/3R the 32-px loss
#:   is about half (``runs/ablation-adam-betas/cpu.json``); a slow first moment costs little over 300k
#:   steps but most of a 1,000-step run;
#: * EMA warm-up (below); bf16 autocast where the CPU has native bf16 (``dimr.device``).
_tiny_recipe = dict(resolution=32, latent=False, schedule="vp_linear", batch_size=16, iterations=6000,
                    warmup_steps=100, lr=2e-3, betas=(0.9, 0.999), ema_rate=0.999, ema_warmup=True,
                    p_uncond=0.1, cfg_scale=1.0, prediction="x0",
                    # 10 DPM-Solver-3 steps keep `dimr evaluate` on 1,000 samples within 5 minutes of 2 cores
                    sampling_steps=10, source="this repo (CPU scale)")
register(Preset(
    "DiMR-T/2R", _dimr(32, 3, 9, (5, 2), (128, 64), 4),
    Recipe(loss_coeffs=(1 / 4, 1), **_tiny_recipe),
    "Tiny DiMR, 2 branches (16×16 Transformer, 32×32 ConvNeXt), for CPU runs on the offline shapes"))
register(Preset(
    "DiMR-T/3R", _dimr(32, 3, 9, (5, 2, 2), (128, 64, 32), 4),
    Recipe(loss_coeffs=(1 / 16, 1 / 4, 1), **_tiny_recipe),
    "Tiny DiMR, 3 branches (8×8 Transformer, 16×16 and 32×32 ConvNeXt), for CPU runs on the offline shapes"))

# ---------------------------------------------------------------------------------------------
# Baselines (U-ViT and DiT configs as their papers / repositories define them)
# ---------------------------------------------------------------------------------------------
UVIT_M4 = UViTConfig(image_size=64, in_channels=3, patch_size=4, dim=768, depth=16, heads=12, num_classes=1000)
_uvit_recipe64 = Recipe(resolution=64, latent=False, loss_coeffs=(1,), schedule="vp_linear", lr=3e-4,
                        sampling_steps=50, source="U-ViT (Bao et al. 2023)")
register(Preset(
    "U-ViT-M/4", UVIT_M4, _uvit_recipe64, "U-ViT medium, patch 4, ImageNet 64×64 (Table 2 row 1 baseline)",
    paper_params=_pv((131, "Table 5"), (130.9, "Table 2 row 1")), paper_gmacs=_pv((35, "Table 5")),
    official_params=130_940_292, official_gmacs=35.27, table2_row=1))
register(Preset(
    "U-ViT-L/4", UViTConfig(image_size=64, in_channels=3, patch_size=4, dim=1024, depth=20, heads=16, num_classes=1000),
    _uvit_recipe64, "U-ViT large, patch 4, ImageNet 64×64",
    paper_params=_pv((287, "Table 5")), paper_gmacs=_pv((77, "Table 5")),
    official_params=286_827_652, official_gmacs=76.53))
_uvit_latent = dict(latent=True, loss_coeffs=(1,), schedule="sd_scaled_linear", lr=2e-4, p_uncond=0.1,
                    cfg_scale=0.4, image_decoder="sd-vae-ft-ema", source="U-ViT (Bao et al. 2023)")
register(Preset(
    "U-ViT-H/2", UViTConfig(image_size=32, in_channels=4, patch_size=2, dim=1152, depth=28, heads=16, num_classes=1001,
                            conv_head=False),
    Recipe(resolution=256, latent_shape=(32, 32, 4), **_uvit_latent),
    "U-ViT huge, patch 2, ImageNet 256×256 latents",
    paper_params=_pv((501, "Tables 1, 6")), paper_gmacs=_pv((133, "Tables 1, 6")),
    official_params=500_832_016, official_gmacs=133.28))
register(Preset(
    "U-ViT-H/4", UViTConfig(image_size=64, in_channels=4, patch_size=4, dim=1152, depth=28, heads=16, num_classes=1001,
                            conv_head=False),
    Recipe(resolution=512, latent_shape=(64, 64, 4), **_uvit_latent),
    "U-ViT huge, patch 4, ImageNet 512×512 latents",
    paper_params=_pv((501, "Tables 1, 7")), paper_gmacs=_pv((133, "Tables 1, 7")),
    official_params=500_942_656, official_gmacs=133.31))
register(Preset(
    "U-ViT-L/2", UViTConfig(image_size=32, in_channels=4, patch_size=2, dim=1024, depth=20, heads=16, num_classes=1001),
    Recipe(resolution=256, latent_shape=(32, 32, 4), **_uvit_latent),
    "U-ViT large, patch 2, ImageNet 256×256 latents",
    paper_params=_pv((287, "Table 6")), paper_gmacs=_pv((77, "Table 6")),
    official_params=286_763_172, official_gmacs=76.51))
register(Preset(
    "DiT-XL/2", DiTConfig(image_size=32, in_channels=4, patch_size=2, dim=1152, depth=28, heads=16, num_classes=1000),
    Recipe(resolution=256, latent=True, loss_coeffs=(1,), schedule="sd_scaled_linear", lr=1e-4, batch_size=256,
           iterations=7_000_000, warmup_steps=0, weight_decay=0.0, betas=(0.9, 0.999), p_uncond=0.1, cfg_scale=0.5,
           sampler="DDPM", sampling_steps=250, latent_shape=(32, 32, 4), image_decoder="sd-vae-ft-ema",
           source="DiT (Peebles & Xie 2023)"),
    "DiT extra-large, patch 2, ImageNet 256×256 latents (adaLN-Zero)",
    paper_params=_pv((675, "Tables 1, 6")), paper_gmacs=_pv((119, "Tables 1, 6")),
    official_params=675_129_632, official_gmacs=118.69))

# ---------------------------------------------------------------------------------------------
# Table 2: the ablation path from U-ViT-M/4 to DiMR-M/3R (ImageNet 64×64, no CFG)
# ---------------------------------------------------------------------------------------------
_last_only = (0.0, 0.0, 1.0)
_TABLE2 = [
    (1, "U-ViT-M/4 (time token)", UVIT_M4, (1,), 130.9, 130_940_292,
     "Baseline: U-ViT-M/4 with its time token."),
    (2, "U-ViT-M/4 + adaLN-Zero", dataclasses.replace(UVIT_M4, time_conditioning="adaln_zero"), (1,), 202.4, None,
     "Time token replaced by adaLN-Zero: every block gets a two-layer modulation MLP "
     "Linear(d,d)→SiLU→Linear(d,6d) and the conditioning is MLP(sinusoid(t)) + label embedding. "
     "The paper does not give the recipe; this construction reproduces its printed size (docs/official-code.md §8)."),
    (3, "multi-branch + adaLN-Zero", dataclasses.replace(M3R, mlp="gelu", mlp_ratio=4.0, block_norm="ln",
                                                       time_conditioning="adaln_zero"), _last_only, 217.9, None,
     "Multi-branch network, 4× GELU MLPs, affine LN in blocks, non-affine LN in the heads, DiT-style "
     "adaLN-Zero in every block and a DiT timestep embedder per branch (docs/official-code.md §8)."),
    (4, "multi-branch + TD-LN", dataclasses.replace(M3R, mlp="gelu", mlp_ratio=4.0), _last_only, 154.0, None,
     "Multi-branch network with TD norms and 4× GELU MLPs."),
    (5, "multi-branch + TD-LN + GLU", M3R, _last_only, 132.9, 132_827_913,
     "Row 4 with GeGLU (2×) MLPs; trained on the last branch's loss only."),
    (6, "DiMR-M/3R (+ multi-scale loss)", M3R, (1 / 16, 1 / 4, 1), 132.9, 132_827_913,
     "Row 5 trained with the multi-scale loss of eq. (8): DiMR-M/3R."),
]
for row, label, cfg, coeffs, params, official, note in _TABLE2:
    base = _uvit_recipe64 if cfg.arch == "uvit" else _pixel64(coeffs)
    register(Preset(
        f"Table2/row{row}", cfg, dataclasses.replace(base, loss_coeffs=coeffs, source="Table 2 (ImageNet 64×64)"),
        f"Table 2 row {row}: {label}", paper_params=_pv((params, f"Table 2 row {row}")),
        official_params=official, table2_row=row, notes=note))

# ---------------------------------------------------------------------------------------------
# CPU-scale baselines and the Table 2 ablation path at CPU scale (32×32 shapes, 8 classes + null).
# Same design switches as the full-size rows; sizes chosen so every row trains on 2 cores.
# ---------------------------------------------------------------------------------------------
UVIT_T4 = UViTConfig(image_size=32, in_channels=3, patch_size=4, dim=128, depth=6, heads=4, num_classes=9)
_tiny_base = dict(_tiny_recipe, source="this repo (CPU scale)")
register(Preset(
    "U-ViT-T/4", UVIT_T4, Recipe(loss_coeffs=(1,), **_tiny_base),
    "Tiny U-ViT (time token), patch 4 on 32×32: the CPU-scale counterpart of U-ViT-M/4"))
for _patch in (2, 1):  # the patch-size sweep of the claims study (dimr.reproduction.study, claim C1): same width and depth
    register(Preset(
        f"U-ViT-T/{_patch}", dataclasses.replace(UVIT_T4, patch_size=_patch), Recipe(loss_coeffs=(1,), **_tiny_base),
        f"Tiny U-ViT (time token), patch {_patch} on 32×32: {(32 // _patch) ** 2} tokens, for the patch-size sweep"))
register(Preset(
    "DiT-T/2", DiTConfig(image_size=32, in_channels=3, patch_size=2, dim=128, depth=6, heads=4, num_classes=8),
    Recipe(loss_coeffs=(1,), **_tiny_base),
    "Tiny DiT (adaLN-Zero), patch 2 on 32×32: an adaLN-Zero model to train offline for the PCA of Fig. 3/6"))
T3R = get_preset("DiMR-T/3R").model
_tiny_last_only = (0.0, 0.0, 1.0)
_TABLE2_TINY = [
    (1, UVIT_T4, (1,)),
    (2, dataclasses.replace(UVIT_T4, time_conditioning="adaln_zero"), (1,)),
    (3, dataclasses.replace(T3R, mlp="gelu", mlp_ratio=4.0, block_norm="ln", time_conditioning="adaln_zero"), _tiny_last_only),
    (4, dataclasses.replace(T3R, mlp="gelu", mlp_ratio=4.0), _tiny_last_only),
    (5, T3R, _tiny_last_only),
    (6, T3R, (1 / 16, 1 / 4, 1)),
]
for row, cfg, coeffs in _TABLE2_TINY:
    register(Preset(
        f"Table2-T/row{row}", cfg, Recipe(loss_coeffs=coeffs, **_tiny_base),
        f"Table 2 row {row} at CPU scale: {_TABLE2[row - 1][1]}", table2_row=row,
        notes="CPU-scale stand-in for the ablation row (32×32 shapes); compare rows with each other, not with ImageNet."))

# ---------------------------------------------------------------------------------------------
# Beyond the paper: one change at a time from DiMR-T/3R (the claims study's leave-one-out), and Table 2's
# row 4 with the paper's TD-LN. Table 2 changes several things per row; each of these changes one.
# (Dropping the multi-scale loss alone is Table2-T/row5.)
# ---------------------------------------------------------------------------------------------
_LEAVE_ONE_OUT = [
    ("DiMR-T/3R-adaLN", dataclasses.replace(T3R, time_conditioning="adaln_zero", block_norm="ln"),
     "DiMR-T/3R with adaLN-Zero (and affine LN) in every block instead of the TD norms; all else kept"),
    ("DiMR-T/3R-MLP", dataclasses.replace(T3R, mlp="gelu", mlp_ratio=4.0),
     "DiMR-T/3R with 4× GELU MLPs instead of 2× GeGLU; all else kept"),
    # 11 blocks: the depth at which one branch costs about what DiMR-T/3R's three do (profile.count_gmacs:
    # 0.141 against 0.136 GMACs per image); a token covers 4×4 pixels, like the lowest branch's
    ("DiMR-T/1R", dataclasses.replace(T3R, branches=(BranchConfig("transformer", 128, 11, 4),), top_patch=4),
     "one branch: DiMR-T/3R's Transformer branch (TD norms, GeGLU, 4×4-pixel tokens) deepened to about its "
     "GMACs, with no ConvNeXt branches and so no multi-scale loss"),
]
for _name, _cfg, _what in _LEAVE_ONE_OUT:
    register(Preset(_name, _cfg, Recipe(loss_coeffs=(1 / 16, 1 / 4, 1)[-_cfg.num_branches:], **_tiny_base),
                    f"Leave-one-out from DiMR-T/3R (beyond the paper): {_what}",
                    notes="CPU-scale ablation of the claims study; not a model of the paper."))
register(Preset(
    "Table2-T/row4-TDLN", dataclasses.replace(T3R, mlp="gelu", mlp_ratio=4.0, block_norm="tdln"),
    Recipe(loss_coeffs=_tiny_last_only, **_tiny_base),
    "Table 2 row 4 at CPU scale with TD-LN (the paper's text) instead of TD-RMSNorm (the released code): "
    "row 3 → this row changes the time conditioning alone",
    notes="Beyond the paper: isolates adaLN-Zero → TD-LN from LN → RMSNorm."))
