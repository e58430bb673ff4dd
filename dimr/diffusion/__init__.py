"""Diffusion: noise schedules, the multi-scale loss (eq. 8), classifier-free guidance, DPM-Solver.

* :mod:`.schedules` — the one place that maps time t to α_t, σ_t, the log-SNR and what a network
  is fed (``VPLinearSchedule``, ``SDScaledLinearSchedule``, ``get_schedule``).
* :mod:`.denoiser` — the one place that feeds a network its noise level and converts what it
  predicts (ε, v or x₀) into what the caller needs (``Denoiser``).
* :mod:`.multiscale_loss` — eq. (8) with the official (k·avgpool) or paper (avgpool) targets, for
  ε, v or x₀ prediction, with an optional weighting over time.
* :mod:`.guidance` — label dropout, the guided prediction from one doubled-batch forward,
  ``guided_model_fn`` for the solvers.
* :mod:`.dpm_solver` — DPM-Solver / DPM-Solver++ (orders 1–3, singlestep and multistep, "fast" and
  full-order step allocations) as pure functions: grids, step allocations, short sampling loops, and an
  optional diffusers route.
"""
from . import analytic
from .dpm_solver import (
    ALLOCATIONS,
    SKIP_TYPES,
    EpsFn,
    diffusers_scheduler,
    first_order_update,
    get_singlestep_time_steps,
    get_time_steps,
    multistep_orders,
    multistep_update,
    sample_diffusers,
    sample_dpm_solver,
    sample_multistep,
    sample_singlestep,
    singlestep_grid,
    singlestep_orders,
    singlestep_update,
    step_orders,
    trained_betas,
)
from .guidance import (
    apply_guidance,
    cosine_ramp_weight,
    drop_labels,
    guided_model_fn,
    guided_prediction,
    model_eps_fn,
    weight_from_scale,
)
from .denoiser import PREDICTIONS, Denoiser, convert_prediction, data_classes, label_rows, null_label
from .multiscale_loss import (
    WEIGHTINGS,
    MultiScaleLoss,
    branch_target,
    downsample_image,
    downsample_noise,
    loss_weight,
    multiscale_loss,
    paper_coefficients,
)
from .schedules import (
    NOISE_INPUTS,
    SCHEDULES,
    TIME_DISTRIBUTIONS,
    Schedule,
    SDScaledLinearSchedule,
    VPLinearSchedule,
    draw_training_t,
    get_schedule,
    sd_scaled_linear_betas,
)

__all__ = [
    "analytic",
    # schedules
    "VPLinearSchedule", "SDScaledLinearSchedule", "Schedule", "SCHEDULES", "NOISE_INPUTS", "get_schedule",
    "sd_scaled_linear_betas", "TIME_DISTRIBUTIONS", "draw_training_t",
    # the denoiser: noise level in, any prediction out
    "Denoiser", "PREDICTIONS", "convert_prediction", "null_label", "label_rows", "data_classes",
    # multi-scale loss
    "multiscale_loss", "MultiScaleLoss", "downsample_noise", "downsample_image", "branch_target", "loss_weight",
    "paper_coefficients", "WEIGHTINGS",
    # guidance
    "drop_labels", "weight_from_scale", "cosine_ramp_weight", "apply_guidance", "guided_prediction",
    "guided_model_fn", "model_eps_fn",
    # solver
    "EpsFn", "sample_dpm_solver", "SKIP_TYPES", "ALLOCATIONS", "get_time_steps", "singlestep_grid",
    "get_singlestep_time_steps", "step_orders", "singlestep_orders", "multistep_orders", "sample_singlestep",
    "sample_multistep", "first_order_update", "singlestep_update", "multistep_update", "diffusers_scheduler",
    "sample_diffusers", "trained_betas",
]
