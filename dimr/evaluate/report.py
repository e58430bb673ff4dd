"""``python -m dimr evaluate``: one checkpoint in, ``metrics.json`` out.

    python -m dimr evaluate --checkpoint runs-local/t3r/latest.pt --num-samples 1000

What it does, in order — one function per phase, which a reader can call one by one (each number is
labelled in the output with the evaluator that produced it):

1. :func:`load_inputs` checks every weight file it was asked to use *before* any work (Inception,
   ViT): a missing file stops the command at once with a message naming the file and where to put it;
2. :func:`draw_samples` draws ``N`` class-balanced samples with the checkpoint's recipe (DPM-Solver
   steps, CFG weight), writes ``samples.npz`` (ADM layout) and ``grid.png``;
3. :func:`prepare_reference` builds the reference batch (``N`` real training images, or
   ``--reference-npz``) and writes ``reference.npz`` — with ``samples.npz`` ready for the ADM
   TensorFlow suite;
4. :func:`measure_fidelity`: FID / IS / precision / recall / KID through torch-fidelity with the
   offline classifier (trained and cached on first use) and, where asked or needed, with Inception-V3;
5. :func:`measure_rejection`: the rejection analysis of §5.3 (p(class) < :data:`~dimr.evaluate.rejection.REJECTION_THRESHOLD`) with the offline
   classifier and, with ``--vit-weights``, a timm ViT; a grid of flagged samples per classifier;
6. :func:`measure_geometry`: on the shapes dataset, geometric distortion (1 − IoU to the class
   template) of every sample, its rate among flagged and all samples, and how well the classifier
   proxy tracks it.

:func:`assemble_report` gathers ``metrics.json``: every number with its label, evaluator and scale, plus
the run's scale (dataset, resolution, sampler steps, number of samples, hardware).
:func:`evaluate_checkpoint` is these phases in a row.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..checkpoint import CheckpointError, load_checkpoint
from ..cli import parser
from ..config import config_to_dict, from_namespace
from ..device import pick_device
from ..diffusion.dpm_solver import SKIP_TYPES
from ..files import atomic_write_json
from ..provenance import hardware_info
from ..sample import (CheckpointSampler, checkpoint_context, even_labels, sampler_from_checkpoint, save_grid, save_npz,
                      to_uint8)
from .classifier import ClassifierConfig, TrainedClassifier, load_or_train_classifier
from .distortion import (COARSE_DISTORTION_THRESHOLD, DISTORTION_THRESHOLD, GeometricResult, distortion_analysis,
                         proxy_agreement)
from .metrics import (Evaluator, Metric, MissingWeightsError, classifier_evaluator, fid_against_statistics,
                      fidelity_metrics, inception_evaluator)
from .reference import ReferenceBatch, dataset_name, load_reference_npz, reference_batch, save_reference_npz
from .rejection import (DEFAULT_VIT_MODEL, REJECTION_THRESHOLD, RejectionResult, TimmClassifier, load_vit_classifier,
                        rejection_analysis, save_flagged_grid)

__all__ = ["EvaluateConfig", "EvaluationInputs", "Samples", "Reference", "Measurements", "evaluate_checkpoint",
           "load_inputs", "draw_samples", "prepare_reference", "scale_summary", "measure_fidelity",
           "measure_rejection", "measure_geometry", "assemble_report", "format_report", "cli", "OFFLINE_DATASETS",
           "IMAGENET_SCALE"]

#: datasets with an offline classifier (no Inception needed by default)
OFFLINE_DATASETS = ("shapes", "fashion-mnist")
#: datasets whose metrics only mean something with Inception (and whose labels are ImageNet classes)
IMAGENET_SCALE = ("imagenet", "latents")


@dataclass(frozen=True)
class EvaluateConfig:
    """Everything an evaluation depends on. ``None`` fields take the checkpoint recipe's value.

    ``inception``: ``"auto"`` (on for ImageNet-scale data, off for the offline datasets), ``"on"``,
    ``"off"``; ``inception_weights`` implies ``"on"``."""

    checkpoint: str
    num_samples: int = 1000
    batch_size: int = 100
    steps: int | None = None
    skip: str | None = None
    guidance: float | None = None
    seed: int = 0
    out: str | None = None
    inception: str = "auto"
    inception_weights: str | None = None
    classifier: str | None = None
    reference_npz: str | None = None
    vit_weights: str | None = None
    vit_model: str | None = None
    threshold: float = REJECTION_THRESHOLD
    distortion_threshold: float | None = None
    data_root: str | None = None
    vae: str | None = None
    device: str = "auto"
    use_ema: bool = True
    progress: bool = True


@dataclass
class EvaluationInputs:
    """Everything :func:`load_inputs` checked and loaded; the later phases read only this.

    ``sampler`` holds the checkpoint, its recipe context and the denoiser (with the VAE decoder of a
    latent model) on the evaluation device, and the sampler settings; ``dataset`` is the normalised
    training-set name; ``reference`` is the ``--reference-npz`` batch, or ``None`` when
    :func:`prepare_reference` is to draw real training images; ``timings`` holds ``classifier_s``
    when an offline classifier was loaded (or trained)."""

    config: EvaluateConfig
    sampler: CheckpointSampler
    dataset: str
    out: Path
    inception: Evaluator | None = None
    vit: TimmClassifier | None = None
    classifier: TrainedClassifier | None = None
    reference: ReferenceBatch | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def checkpoint(self) -> dict:
        """The loaded checkpoint (``sampler.checkpoint``)."""
        return self.sampler.checkpoint

    @property
    def device(self) -> torch.device:
        """The evaluation device: sampling, torch-fidelity's features and the ViT run there."""
        return self.sampler.device


@dataclass(frozen=True)
class Samples:
    """:func:`draw_samples`' output: uint8 images ``[N, H, W, 3]``, their int64 labels ``[N]``
    (``i mod K``), and the files written (``samples.npz``, ``grid.png``)."""

    images: np.ndarray
    labels: np.ndarray
    npz: Path
    grid: Path


@dataclass(frozen=True)
class Reference:
    """:func:`prepare_reference`' output: the batch (uint8 images ``[M, H, W, 3]`` and labels ``[M]``,
    and/or Inception ``mu [2048]``, ``sigma [2048, 2048]``) and the ``.npz`` that holds it."""

    batch: ReferenceBatch
    npz: Path


@dataclass
class Measurements:
    """What one measuring phase adds to ``metrics.json``: metric records (label, evaluator, scale) by
    key, evaluator descriptions by name, the phase's own section of the record (``rejection``,
    ``geometric_distortion``) and, from :func:`measure_rejection`, the per-classifier results."""

    metrics: dict[str, dict] = field(default_factory=dict)
    evaluators: dict[str, str] = field(default_factory=dict)
    section: dict | None = None
    results: dict[str, RejectionResult] = field(default_factory=dict)


def _hardware(device: torch.device) -> str:
    hw = hardware_info()
    if device.type == "cuda":
        return f"GPU {hw['gpu']}"
    return f"CPU {hw['cpu']} ({torch.get_num_threads()} threads of {hw['cpu_count']} cores)"


def _metric(key: str, value: float, label: str, evaluator: str, higher: bool, scale: str) -> dict:
    return _record(Metric(key, float(value), label, evaluator, higher), scale)


def _record(metric: Metric, scale: str) -> dict:
    return {**metric.record(), "scale": scale}


def _classifier_config(ckpt: dict, data_root: str | None) -> ClassifierConfig:
    name = dataset_name(ckpt)
    c, _, s = (ckpt.get("dataset") or {}).get("image_shape") or (3, 32, 32)
    kw = ()
    root = data_root or (ckpt.get("train_config") or {}).get("data_root")
    if name == "fashion-mnist" and root:
        kw = (("root", str(root)),)
    return ClassifierConfig(dataset=name, data_kw=kw, image_size=int(s), in_channels=3 if name == "shapes" else int(c),
                            train_items=6000 if name == "shapes" else 30_000, epochs=6 if name == "shapes" else 4)


def _say(msg: str) -> None:
    print(f"[dimr evaluate] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Record the wall time of the ``with`` body as ``timings[key]`` (seconds)."""
    start = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - start


def _torch_fidelity_version() -> str:
    """torch-fidelity's version, for the record. The one lazy import of this module: as in
    :mod:`.metrics`, torch-fidelity (the ``eval`` extra) loads only once an evaluation runs."""
    import torch_fidelity

    return torch_fidelity.__version__


def _feature_models(cfg: EvaluateConfig, ckpt: dict, dataset: str,
                    device: torch.device) -> tuple[Evaluator | None, TimmClassifier | None]:
    """The Inception evaluator and the ViT classifier the settings ask for (each ``None`` if not)."""
    want_inception = cfg.inception == "on" or cfg.inception_weights is not None or (
        cfg.inception == "auto" and dataset in IMAGENET_SCALE)
    if cfg.inception == "off" and cfg.inception_weights is not None:
        raise ValueError("--inception off contradicts --inception-weights")
    inception = inception_evaluator(cfg.inception_weights) if want_inception else None
    if cfg.vit_weights is None and cfg.vit_model is None:
        return inception, None
    num_classes = checkpoint_context(ckpt)["num_classes"]
    if num_classes != 1000:
        raise ValueError(f"a ViT classifier predicts the 1000 ImageNet classes; this checkpoint has "
                         f"{num_classes} classes ({dataset})")
    return inception, load_vit_classifier(cfg.vit_weights, cfg.vit_model or DEFAULT_VIT_MODEL, device=device)


def _offline_classifier(cfg: EvaluateConfig, ckpt: dict, num_classes: int) -> TrainedClassifier:
    """The dataset's offline classifier: read from ``cfg.classifier`` or the cache, else trained there."""
    classifier = load_or_train_classifier(_classifier_config(ckpt, cfg.data_root), path=cfg.classifier,
                                          progress=cfg.progress)
    if classifier.num_classes != num_classes:
        raise ValueError(f"classifier {classifier.path} has {classifier.num_classes} classes, "
                         f"the checkpoint {num_classes}")
    return classifier


def load_inputs(cfg: EvaluateConfig) -> EvaluationInputs:
    """Phase 1: check the settings and load every input — the checkpoint and its sampler (network,
    VAE for a latent model), the Inception and ViT weight files, the reference ``.npz``, the offline
    classifier (trained and cached on first use) — and create the output folder.

    Everything that can fail on a bad input fails here, before sampling: raises
    :class:`~dimr.evaluate.metrics.MissingWeightsError`, :class:`~dimr.checkpoint.CheckpointError`,
    ``FileNotFoundError`` or ``ValueError``."""
    if cfg.num_samples < 2:
        raise ValueError("--num-samples must be at least 2")
    if cfg.inception not in ("auto", "on", "off"):
        raise ValueError(f"inception must be auto, on or off, got {cfg.inception!r}")
    ckpt = load_checkpoint(cfg.checkpoint)
    dataset = dataset_name(ckpt)
    device = pick_device(cfg.device)
    inception, vit = _feature_models(cfg, ckpt, dataset, device)
    reference = load_reference_npz(cfg.reference_npz) if cfg.reference_npz else None
    sampler = sampler_from_checkpoint(ckpt, device, use_ema=cfg.use_ema, vae=cfg.vae, steps=cfg.steps,
                                      skip=cfg.skip, guidance=cfg.guidance)
    if reference is None and dataset == "latents":
        raise ValueError("a latent-space checkpoint has no pixel training data here: pass --reference-npz")
    classifier, timings = None, {}
    if dataset in OFFLINE_DATASETS:
        with _timed(timings, "classifier_s"):
            classifier = _offline_classifier(cfg, ckpt, sampler.num_classes)
    elif cfg.classifier is not None:
        raise ValueError(f"no offline classifier for dataset {dataset!r} (only {', '.join(OFFLINE_DATASETS)})")
    out = Path(cfg.out) if cfg.out else Path(ckpt["path"]).parent / "evaluate"
    out.mkdir(parents=True, exist_ok=True)
    return EvaluationInputs(cfg, sampler, dataset, out, inception, vit, classifier, reference, timings)


def draw_samples(inputs: EvaluationInputs) -> Samples:
    """Phase 2: ``N = num_samples`` class-balanced samples (labels ``i mod K``) with the sampler's
    settings, written as ``samples.npz`` (ADM layout: uint8 ``[N, H, W, 3]``, int64 labels ``[N]``)
    and ``grid.png`` (a row of up to 8 samples for each of the first 16 classes)."""
    cfg, sampler = inputs.config, inputs.sampler
    s = sampler.settings
    labels = even_labels(cfg.num_samples, sampler.num_classes)
    _say(f"sampling {cfg.num_samples} images ({s.steps} DPM-Solver steps, w={s.guidance:g}) on {sampler.device}")
    images = sampler.draw(labels=labels, seed=cfg.seed, batch_size=cfg.batch_size, progress=cfg.progress)
    u8, y = to_uint8(images), labels.numpy()
    npz = save_npz(inputs.out / "samples.npz", u8, y)
    per_class = [np.flatnonzero(y == c)[:8] for c in range(min(sampler.num_classes, 16))]  # one row per class
    ncol = max(len(i) for i in per_class)
    grid = save_grid(np.concatenate([u8[i] for i in per_class if len(i) == ncol]), inputs.out / "grid.png", ncol=ncol)
    return Samples(u8, y, npz, grid)


def prepare_reference(inputs: EvaluationInputs) -> Reference:
    """Phase 3: the reference batch — the ``--reference-npz`` one, or ``num_samples`` real training
    images (uint8 ``[N, H, W, 3]``, with labels) written as ``reference.npz``."""
    cfg = inputs.config
    if inputs.reference is not None:
        return Reference(inputs.reference, Path(cfg.reference_npz))
    batch = reference_batch(inputs.checkpoint, cfg.num_samples, cfg.data_root)
    return Reference(batch, save_reference_npz(inputs.out / "reference.npz", batch))


def scale_summary(inputs: EvaluationInputs, samples: Samples, reference: Reference) -> str:
    """The one-line scale every metric carries: dataset, resolution, sample and reference counts,
    sampler steps and CFG weight, CPU or GPU."""
    s, n, res = inputs.sampler.settings, inputs.config.num_samples, int(samples.images.shape[1])
    ref = reference.batch
    versus = len(ref.images) if ref.images is not None else "reference statistics"
    return (f"{inputs.dataset} {res}×{res}, {n} samples vs {versus}, {s.steps} DPM-Solver steps, "
            f"w={s.guidance:g}, {'GPU' if inputs.device.type == 'cuda' else 'CPU'}")


def _inception_metrics(inputs: EvaluationInputs, samples: Samples, ref: ReferenceBatch) -> dict[str, Metric]:
    """Inception-V3 metrics: all against reference images; IS, and FID against ``mu``/``sigma``, without."""
    cfg, ev = inputs.config, inputs.inception
    kw = dict(batch_size=min(cfg.batch_size, 100), progress=cfg.progress, device=inputs.device)
    if ref.images is not None:
        return fidelity_metrics(samples.images, ref.images, ev, **kw)
    got = fidelity_metrics(samples.images, None, ev, fid=False, prc=False, kid=False, **kw)
    if ref.mu is not None:
        m = fid_against_statistics(samples.images, ref.mu, ref.sigma, ev, progress=cfg.progress, device=inputs.device)
        got[m.key] = m
    return got


def measure_fidelity(inputs: EvaluationInputs, samples: Samples, reference: Reference, scale: str) -> Measurements:
    """Phase 4: FID / IS / precision / recall / KID of the samples (uint8 ``[N, H, W, 3]``) against the
    reference through torch-fidelity, with the offline classifier's features and/or Inception-V3's."""
    cfg, ref, found = inputs.config, reference.batch, Measurements()
    if inputs.classifier is not None:
        ev = classifier_evaluator(inputs.classifier)
        found.evaluators[ev.extractor] = ev.description
        if ref.images is None:
            raise ValueError("the offline classifier needs reference images (arr_0), not only statistics")
        got = fidelity_metrics(samples.images, ref.images, ev, batch_size=cfg.batch_size, progress=cfg.progress,
                               device=inputs.device)
        found.metrics.update({key: _record(m, scale) for key, m in got.items()})
    if inputs.inception is not None:
        found.evaluators[inputs.inception.extractor] = inputs.inception.description
        got = _inception_metrics(inputs, samples, ref)
        found.metrics.update({key: _record(m, scale) for key, m in got.items()})
    return found


def measure_rejection(inputs: EvaluationInputs, samples: Samples, scale: str) -> Measurements:
    """Phase 5, §5.3: each classifier's p(requested class) for every sample, the fraction below
    ``threshold`` (flagged, with a grid ``flagged_<classifier>.png``) and the accuracy. ``results``
    keeps each :class:`~dimr.evaluate.rejection.RejectionResult` (arrays ``[N]``) by ``offline``/``vit``."""
    cfg, found = inputs.config, Measurements(section={})
    for name, clf in (("offline", inputs.classifier), ("vit", inputs.vit)):
        if clf is None:
            continue
        res = rejection_analysis(clf, samples.images, samples.labels, cfg.threshold, batch_size=cfg.batch_size)
        key = clf.name.replace("-", "_") if name == "offline" else "vit"
        grid = save_flagged_grid(samples.images, res, inputs.out / f"flagged_{key}.png")
        accuracy = float((res.predicted == samples.labels).mean())
        found.results[name] = res
        found.metrics[f"flagged_fraction_{key}"] = _metric(
            f"flagged_fraction_{key}", res.flagged_fraction,
            f"Flagged fraction, p(class) < {cfg.threshold:g} ({clf.label})", clf.label, False, scale)
        found.metrics[f"accuracy_{key}"] = _metric(
            f"accuracy_{key}", accuracy,
            f"Accuracy: samples classified as their requested class ({clf.label})", clf.label, True, scale)
        found.section[key] = {"classifier": clf.label, "threshold": cfg.threshold, "n_flagged": int(res.flagged.sum()),
                              "flagged_fraction": res.flagged_fraction, "mean_p_class": float(res.p_class.mean()),
                              "accuracy": accuracy, "grid": str(grid) if grid else None}
    return found


_TEMPLATE_FIT = "shape-template fit (dimr.data.shapes.fit_template)"


def _distortion_metrics(geo: GeometricResult, scale: str) -> dict[str, dict]:
    """The distortion rates at ``geo.threshold`` and at the coarse threshold, and the mean 1 − IoU."""
    thr, coarse, score = geo.threshold, COARSE_DISTORTION_THRESHOLD, geo.score
    return {
        "geometric_distortion_rate": _metric(
            "geometric_distortion_rate", geo.rate,
            f"Geometric distortion rate, 1 − IoU > {thr:g} (shape templates)", _TEMPLATE_FIT, False, scale),
        "geometric_distortion_rate_coarse": _metric(
            "geometric_distortion_rate_coarse", float((score > coarse).mean()),
            f"Geometric distortion rate, 1 − IoU > {coarse:g} (shape templates)", _TEMPLATE_FIT, False, scale),
        "geometric_distortion_mean": _metric(
            "geometric_distortion_mean", float(score.mean()), "Mean 1 − IoU (shape templates)", _TEMPLATE_FIT,
            False, scale)}


def measure_geometry(inputs: EvaluationInputs, samples: Samples, reference: Reference, rejection: Measurements,
                     scale: str) -> Measurements:
    """Phase 6, shapes only: every sample's 1 − IoU to its class template (``[N]``), the distortion
    rate among all and (with the offline classifier's ``rejection``) flagged samples, the rate on up
    to 200 real images, and how well the classifier proxy tracks it; writes ``per_sample.npz``."""
    cfg, ref = inputs.config, reference.batch
    thr = cfg.distortion_threshold if cfg.distortion_threshold is not None else DISTORTION_THRESHOLD
    geo = distortion_analysis(samples.images, samples.labels, thr, progress=cfg.progress)
    n_real = min(len(ref.images), 200)
    real = distortion_analysis(ref.images[:n_real], ref.labels[:n_real], thr)
    found = Measurements(metrics=_distortion_metrics(geo, scale), evaluators={
        "shape-template-fit": ("1 − IoU between each sample's Otsu mask and the best-fitting exact "
                               f"template of its class; distorted when > {thr:g}")})
    found.section = {"threshold": thr, "rate_all": geo.rate, "mean_one_minus_iou": float(geo.score.mean()),
                     "median_one_minus_iou": float(np.median(geo.score)), "real_rate": real.rate, "real_n": n_real,
                     "real_mean_one_minus_iou": float(real.score.mean())}
    offline = rejection.results.get("offline")
    if offline is not None:
        agree = proxy_agreement(offline.flagged, geo.distorted, offline.p_class, geo.iou)
        found.section["proxy"] = {"classifier": offline.classifier, **agree}
        if agree["distortion_rate_flagged"] is not None:
            found.metrics["geometric_distortion_rate_flagged"] = _metric(
                "geometric_distortion_rate_flagged", agree["distortion_rate_flagged"],
                f"Geometric distortion rate among flagged samples ({offline.classifier}, shape templates)",
                _TEMPLATE_FIT, False, scale)
    np.savez(inputs.out / "per_sample.npz", labels=samples.labels, one_minus_iou=geo.score,
             **({"p_class": offline.p_class} if offline is not None else {}))
    return found


def assemble_report(inputs: EvaluationInputs, samples: Samples, reference: Reference, scale: str,
                    fidelity: Measurements, rejection: Measurements, geometry: Measurements | None,
                    timings: dict[str, float]) -> dict:
    """Phase 7: the content of ``metrics.json`` — every metric with its label, evaluator and scale, the
    run's scale (dataset, resolution, sampler, hardware, versions), the rejection and distortion
    sections, the ADM-suite command for the exported batches, the timings and the settings."""
    cfg, s, ckpt, ref = inputs.config, inputs.sampler.settings, inputs.checkpoint, reference.batch
    parts = [fidelity, rejection] + ([geometry] if geometry is not None else [])
    return {
        "format": "dimr-metrics", "version": 1,
        "checkpoint": ckpt["path"], "preset": ckpt.get("preset"), "train_step": ckpt.get("step"),
        "scale": {"dataset": inputs.dataset, "resolution": int(samples.images.shape[1]), "num_samples": cfg.num_samples,
                  "num_reference": None if ref.images is None else int(len(ref.images)),
                  "reference": ref.source, "sampler": f"DPM-Solver (order {s.order}, {s.method}, "
                  f"{s.predict} prediction, {s.skip})", "sampler_steps": s.steps,
                  "guidance_weight": s.guidance, "seed": cfg.seed, "hardware": _hardware(inputs.device),
                  "threads": inputs.sampler.threads,
                  "torch": torch.__version__, "torch_fidelity": _torch_fidelity_version(), "summary": scale},
        "metrics": {k: v for part in parts for k, v in part.metrics.items()},
        "evaluators": {k: v for part in parts for k, v in part.evaluators.items()},
        "rejection": rejection.section,
        "geometric_distortion": geometry.section if geometry is not None else None,
        "adm_suite": {"samples_npz": str(samples.npz), "reference_npz": str(reference.npz),
                      "evaluator": "ADM TensorFlow evaluation suite (guided-diffusion/evaluations) — not run here",
                      "command": f"python evaluations/evaluator.py {reference.npz} {samples.npz}"},
        "skipped": {} if inputs.inception is not None else {
            "inception": "Inception-V3 metrics not requested (offline dataset); pass --inception-weights PATH "
                         "or --inception on to add them"},
        "timings_s": timings,
        "config": config_to_dict(cfg),
    }


def evaluate_checkpoint(cfg: EvaluateConfig) -> dict:
    """Run the whole evaluation (module docstring), phase by phase, and write ``<out>/metrics.json``;
    returns its content. Bad inputs raise in :func:`load_inputs`, before sampling starts."""
    start = time.perf_counter()
    inputs = load_inputs(cfg)
    timings = dict(inputs.timings)
    with _timed(timings, "sampling_s"):
        samples = draw_samples(inputs)
    with _timed(timings, "reference_s"):
        reference = prepare_reference(inputs)
    scale = scale_summary(inputs, samples, reference)
    with _timed(timings, "fidelity_s"):
        fidelity = measure_fidelity(inputs, samples, reference, scale)
    with _timed(timings, "rejection_s"):
        rejection = measure_rejection(inputs, samples, scale)
    geometry = None
    if inputs.dataset == "shapes":
        with _timed(timings, "geometric_s"):
            geometry = measure_geometry(inputs, samples, reference, rejection, scale)
    timings["total_s"] = time.perf_counter() - start
    report = assemble_report(inputs, samples, reference, scale, fidelity, rejection, geometry, timings)
    atomic_write_json(inputs.out / "metrics.json", report)
    return report


def format_report(report: dict) -> str:
    """The human-readable summary ``cli`` prints: one line per metric, with its label."""
    lines = [f"{report['scale']['summary']} — {report['scale']['hardware']}"]
    width = max((len(m["label"]) for m in report["metrics"].values()), default=10)
    for m in report["metrics"].values():
        lines.append(f"  {m['label']:<{width}}  {m['value']:.4g}")
    geo = report.get("geometric_distortion") or {}
    if geo.get("proxy"):
        p = geo["proxy"]
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"  classifier proxy vs geometry: precision {fmt(p['precision'])}, recall {fmt(p['recall'])}, "
                     f"Spearman(p(class), IoU) {fmt(p['spearman_p_class_iou'])}; real-image distortion rate "
                     f"{geo['real_rate']:.3f} (n={geo['real_n']})")
    lines.append(f"  wall time {report['timings_s']['total_s']:.0f} s "
                 f"(sampling {report['timings_s']['sampling_s']:.0f} s)")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    ap = parser("evaluate", __doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a dimr checkpoint file or run folder")
    ap.add_argument("--num-samples", type=int, default=1000, help="generated samples, spread evenly over the classes")
    ap.add_argument("--batch-size", type=int, default=100,
                    help="samples per sampler batch (CFG doubles it; 100 is fastest on 2 CPU cores)")
    ap.add_argument("--steps", type=int, help="DPM-Solver steps (default: the recipe's)")
    ap.add_argument("--skip", choices=SKIP_TYPES,
                    help="DPM-Solver time grid (default: the recipe's)")
    ap.add_argument("--guidance", type=float, help="CFG weight w (default: the recipe's 1 + scale)")
    ap.add_argument("--seed", type=int, default=0, help="sample seed")
    ap.add_argument("--out", help="output folder (default: CHECKPOINT_DIR/evaluate)")
    ap.add_argument("--inception", choices=["auto", "on", "off"], default="auto",
                    help="Inception-V3 metrics: auto = on for ImageNet-scale data, off for offline datasets")
    ap.add_argument("--inception-weights", help="local torch-fidelity Inception file (implies --inception on)")
    ap.add_argument("--classifier", help="offline classifier file, trained and written there if absent (default: "
                                         "$XDG_CACHE_HOME/dimr, else the repo's or ./.cache/dimr)")
    ap.add_argument("--reference-npz", help="reference batch (.npz, ADM layout; images and/or mu/sigma)")
    ap.add_argument("--vit-weights", help="local timm ViT checkpoint for the §5.3 rejection (ImageNet runs)")
    ap.add_argument("--vit-model", help="timm model name of --vit-weights (default vit_base_patch16_224)")
    ap.add_argument("--threshold", type=float, default=REJECTION_THRESHOLD,
                    help=f"rejection threshold on p(class) (paper: {REJECTION_THRESHOLD:g})")
    ap.add_argument("--distortion-threshold", type=float, help=f"1 − IoU threshold (default {DISTORTION_THRESHOLD:g})")
    ap.add_argument("--data-root", help="dataset folder (file datasets)")
    ap.add_argument("--vae", help="local SD-VAE folder (latent models)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:K")
    ap.add_argument("--no-ema", action="store_true", help="evaluate the raw weights instead of the EMA")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap


def cli(argv: list[str]) -> int:
    """``python -m dimr evaluate --checkpoint CKPT [...]``: prints the summary, writes ``metrics.json``."""
    args = _parser().parse_args(argv)
    cfg = from_namespace(EvaluateConfig, args, use_ema=not args.no_ema, progress=not args.no_progress)
    try:
        report = evaluate_checkpoint(cfg)
    except (MissingWeightsError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"dimr evaluate: {e}", file=sys.stderr)
        return 2
    if report["scale"].get("threads"):
        print(f"threads: {report['scale']['threads']}", file=sys.stderr)
    print(format_report(report))
    print(f"-> {Path(report['adm_suite']['samples_npz']).parent / 'metrics.json'}")
    return 0
