"""``python -m dimr evaluate``: one checkpoint in, ``metrics.json`` out.

    python -m dimr evaluate --checkpoint runs-local/t3r/latest.pt --num-samples 1000

What it does, in order (each step labelled in the output with the evaluator that produced it):

1. checks every weight file it was asked to use *before* any work (Inception, ViT): a missing file
   stops the command at once with a message naming the file and where to put it;
2. draws ``N`` class-balanced samples with the checkpoint's recipe (DPM-Solver steps, CFG weight),
   writes ``samples.npz`` (ADM layout) and ``grid.png``;
3. builds the reference batch (``N`` real training images, or ``--reference-npz``) and writes
   ``reference.npz`` — with ``samples.npz`` ready for the ADM TensorFlow suite;
4. FID / IS / precision / recall / KID through torch-fidelity with the offline classifier
   (trained and cached on first use) and, where asked or needed, with Inception-V3;
5. the rejection analysis of §5.3 (p(class) < 0.2) with the offline classifier and, with
   ``--vit-weights``, a timm ViT; a grid of flagged samples per classifier;
6. on the shapes dataset, geometric distortion (1 − IoU to the class template) of every sample, its
   rate among flagged and all samples, and how well the classifier proxy tracks it.

``metrics.json`` holds every number with its label, evaluator and scale, plus the run's scale
(dataset, resolution, sampler steps, number of samples, hardware).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import CheckpointError
from ..config import from_namespace
from ..device import pick_device
from ..diffusion.dpm_solver import SKIP_TYPES
from .metrics import Metric, MissingWeightsError

__all__ = ["EvaluateConfig", "evaluate_checkpoint", "cli", "OFFLINE_DATASETS", "IMAGENET_SCALE"]

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
    threshold: float = 0.2
    distortion_threshold: float | None = None
    data_root: str | None = None
    vae: str | None = None
    device: str = "auto"
    use_ema: bool = True
    progress: bool = True


def _hardware(device: torch.device) -> str:
    from ..runs import hardware_info

    hw = hardware_info()
    if device.type == "cuda":
        return f"GPU {hw['gpu']}"
    return f"CPU {hw['cpu']} ({torch.get_num_threads()} threads of {hw['cpu_count']} cores)"


def _metric(key: str, value: float, label: str, evaluator: str, higher: bool, scale: str) -> dict:
    return {**Metric(key, float(value), label, evaluator, higher).record(), "scale": scale}


def _dataset_name(ckpt: dict) -> str:
    info = ckpt.get("dataset") or {}
    tc = ckpt.get("train_config") or {}
    return (info.get("name") or tc.get("dataset") or "shapes").lower().replace("_", "-")


def _classifier_config(ckpt: dict, data_root: str | None):
    from .classifier import ClassifierConfig

    name = _dataset_name(ckpt)
    c, _, s = (ckpt.get("dataset") or {}).get("image_shape") or (3, 32, 32)
    kw = ()
    root = data_root or (ckpt.get("train_config") or {}).get("data_root")
    if name == "fashion-mnist" and root:
        kw = (("root", str(root)),)
    return ClassifierConfig(dataset=name, data_kw=kw, image_size=int(s), in_channels=3 if name == "shapes" else int(c),
                            train_items=6000 if name == "shapes" else 30_000, epochs=6 if name == "shapes" else 4)


def _say(msg: str) -> None:
    print(f"[dimr evaluate] {msg}", file=sys.stderr, flush=True)


def evaluate_checkpoint(cfg: EvaluateConfig) -> dict:
    """Run the whole evaluation (module docstring) and write ``<out>/metrics.json``; returns its content.

    Raises :class:`~dimr.evaluate.metrics.MissingWeightsError`, :class:`~dimr.checkpoint.CheckpointError`,
    ``FileNotFoundError`` or ``ValueError`` for bad inputs — all before sampling starts."""
    from ..checkpoint import load_checkpoint
    from ..diffusion.guidance import weight_from_scale
    from ..runs import atomic_write_json
    from ..sample import (SamplerConfig, checkpoint_context, denoiser_from_checkpoint, even_labels, sample_images,
                          save_grid, save_npz, to_uint8)
    from .metrics import classifier_evaluator, fid_against_statistics, fidelity_metrics, inception_evaluator
    from .reference import load_reference_npz, reference_batch, save_reference_npz
    from .rejection import DEFAULT_VIT_MODEL, load_vit_classifier, rejection_analysis, save_flagged_grid

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    if cfg.num_samples < 2:
        raise ValueError("--num-samples must be at least 2")
    if cfg.inception not in ("auto", "on", "off"):
        raise ValueError(f"inception must be auto, on or off, got {cfg.inception!r}")

    # 1. everything that can fail on a missing file fails here, before any work
    ckpt = load_checkpoint(cfg.checkpoint)
    ctx = checkpoint_context(ckpt)
    dataset = _dataset_name(ckpt)
    want_inception = cfg.inception == "on" or cfg.inception_weights is not None or (
        cfg.inception == "auto" and dataset in IMAGENET_SCALE)
    if cfg.inception == "off" and cfg.inception_weights is not None:
        raise ValueError("--inception off contradicts --inception-weights")
    inception = inception_evaluator(cfg.inception_weights) if want_inception else None
    vit = None
    if cfg.vit_weights is not None or cfg.vit_model is not None:
        if ctx["num_classes"] != 1000:
            raise ValueError(f"a ViT classifier predicts the 1000 ImageNet classes; this checkpoint has "
                             f"{ctx['num_classes']} classes ({dataset})")
        vit = load_vit_classifier(cfg.vit_weights, cfg.vit_model or DEFAULT_VIT_MODEL)
    reference = load_reference_npz(cfg.reference_npz) if cfg.reference_npz else None
    if ctx["latent"] and not cfg.vae:
        raise CheckpointError("this is a latent model: pass --vae DIR (a local sd-vae-ft-ema folder) to decode")
    if reference is None and dataset == "latents":
        raise ValueError("a latent-space checkpoint has no pixel training data here: pass --reference-npz")
    device = pick_device(cfg.device)
    decode = None
    if ctx["latent"]:
        from ..data.latents import SCALE_FACTOR, load_vae

        vae = load_vae(cfg.vae, device=device)
        decode = lambda z: vae.decode(z / SCALE_FACTOR).sample  # noqa: E731
    classifier = None
    if dataset in OFFLINE_DATASETS:
        from .classifier import load_or_train_classifier

        t = time.perf_counter()
        classifier = load_or_train_classifier(_classifier_config(ckpt, cfg.data_root), path=cfg.classifier,
                                              progress=cfg.progress)
        if classifier.num_classes != ctx["num_classes"]:
            raise ValueError(f"classifier {classifier.path} has {classifier.num_classes} classes, "
                             f"the checkpoint {ctx['num_classes']}")
        timings["classifier_s"] = time.perf_counter() - t
    elif cfg.classifier is not None:
        raise ValueError(f"no offline classifier for dataset {dataset!r} (only {', '.join(OFFLINE_DATASETS)})")

    out = Path(cfg.out) if cfg.out else Path(ckpt["path"]).parent / "evaluate"
    out.mkdir(parents=True, exist_ok=True)

    # 2. samples
    denoiser = denoiser_from_checkpoint(ckpt, use_ema=cfg.use_ema, device=device)
    w = cfg.guidance if cfg.guidance is not None else weight_from_scale(ctx["cfg_scale"])
    sampler = SamplerConfig(steps=cfg.steps or ctx["steps"], skip=cfg.skip or ctx["skip"], guidance=w)
    labels = even_labels(cfg.num_samples, ctx["num_classes"])
    _say(f"sampling {cfg.num_samples} images ({sampler.steps} DPM-Solver steps, w={w:g}) on {device}")
    t = time.perf_counter()
    images = sample_images(denoiser, labels, sampler, seed=cfg.seed, batch_size=cfg.batch_size, device=device, decode=decode,
                           progress=cfg.progress)
    timings["sampling_s"] = time.perf_counter() - t
    u8, y = to_uint8(images), labels.numpy()
    samples_npz = save_npz(out / "samples.npz", u8, y)
    k = ctx["num_classes"]
    per_class = [np.flatnonzero(y == c)[:8] for c in range(min(k, 16))]  # one row per class
    ncol = max(len(i) for i in per_class)
    save_grid(np.concatenate([u8[i] for i in per_class if len(i) == ncol]), out / "grid.png", ncol=ncol)

    # 3. reference batch
    t = time.perf_counter()
    if reference is None:
        reference = reference_batch(ckpt, cfg.num_samples, cfg.data_root)
        reference_npz = save_reference_npz(out / "reference.npz", reference)
    else:
        reference_npz = Path(cfg.reference_npz)
    timings["reference_s"] = time.perf_counter() - t

    resolution = int(u8.shape[1])
    scale = (f"{dataset} {resolution}×{resolution}, {cfg.num_samples} samples vs "
             f"{len(reference.images) if reference.images is not None else 'reference statistics'}, "
             f"{sampler.steps} DPM-Solver steps, w={w:g}, {'GPU' if device.type == 'cuda' else 'CPU'}")
    metrics: dict[str, dict] = {}
    evaluators: dict[str, str] = {}

    # 4. torch-fidelity metrics
    t = time.perf_counter()
    if classifier is not None:
        ev = classifier_evaluator(classifier)
        evaluators[ev.extractor] = ev.description
        if reference.images is None:
            raise ValueError("the offline classifier needs reference images (arr_0), not only statistics")
        for key, m in fidelity_metrics(u8, reference.images, ev, batch_size=cfg.batch_size,
                                       progress=cfg.progress).items():
            metrics[key] = {**m.record(), "scale": scale}
    if inception is not None:
        evaluators[inception.extractor] = inception.description
        if reference.images is not None:
            got = fidelity_metrics(u8, reference.images, inception, batch_size=min(cfg.batch_size, 100),
                                   progress=cfg.progress)
        else:
            got = fidelity_metrics(u8, None, inception, fid=False, prc=False, kid=False,
                                   batch_size=min(cfg.batch_size, 100), progress=cfg.progress)
        if reference.images is None and reference.mu is not None:
            m = fid_against_statistics(u8, reference.mu, reference.sigma, inception, progress=cfg.progress)
            got[m.key] = m
        for key, m in got.items():
            metrics[key] = {**m.record(), "scale": scale}
    timings["fidelity_s"] = time.perf_counter() - t

    # 5. rejection (§5.3)
    t = time.perf_counter()
    rejection, results = {}, {}
    for name, clf in (("offline", classifier), ("vit", vit)):
        if clf is None:
            continue
        res = rejection_analysis(clf, u8, y, cfg.threshold, batch_size=cfg.batch_size)
        key_suffix = clf.name.replace("-", "_") if name == "offline" else "vit"
        grid = save_flagged_grid(u8, res, out / f"flagged_{key_suffix}.png")
        results[name] = res
        metrics[f"flagged_fraction_{key_suffix}"] = _metric(
            f"flagged_fraction_{key_suffix}", res.flagged_fraction,
            f"Flagged fraction, p(class) < {cfg.threshold:g} ({clf.label})", clf.label, False, scale)
        accuracy = float((res.predicted == y).mean())
        metrics[f"accuracy_{key_suffix}"] = _metric(
            f"accuracy_{key_suffix}", accuracy,
            f"Accuracy: samples classified as their requested class ({clf.label})", clf.label, True, scale)
        rejection[key_suffix] = {"classifier": clf.label, "threshold": cfg.threshold,
                                 "n_flagged": int(res.flagged.sum()), "flagged_fraction": res.flagged_fraction,
                                 "mean_p_class": float(res.p_class.mean()),
                                 "accuracy": accuracy,
                                 "grid": str(grid) if grid else None}
    timings["rejection_s"] = time.perf_counter() - t

    # 6. geometric distortion (shapes only)
    geometric = None
    if dataset == "shapes":
        from .distortion import COARSE_DISTORTION_THRESHOLD, DISTORTION_THRESHOLD, distortion_analysis, proxy_agreement

        t = time.perf_counter()
        thr = cfg.distortion_threshold if cfg.distortion_threshold is not None else DISTORTION_THRESHOLD
        geo = distortion_analysis(u8, y, thr, progress=cfg.progress)
        n_real = min(len(reference.images), 200)
        real = distortion_analysis(reference.images[:n_real], reference.labels[:n_real], thr)
        ev_name = "shape-template fit (dimr.data.shapes.fit_template)"
        evaluators["shape-template-fit"] = ("1 − IoU between each sample's Otsu mask and the best-fitting exact "
                                            f"template of its class; distorted when > {thr:g}")
        metrics["geometric_distortion_rate"] = _metric(
            "geometric_distortion_rate", geo.rate, f"Geometric distortion rate, 1 − IoU > {thr:g} (shape templates)",
            ev_name, False, scale)
        coarse = COARSE_DISTORTION_THRESHOLD
        metrics["geometric_distortion_rate_coarse"] = _metric(
            "geometric_distortion_rate_coarse", float((geo.score > coarse).mean()),
            f"Geometric distortion rate, 1 − IoU > {coarse:g} (shape templates)", ev_name, False, scale)
        metrics["geometric_distortion_mean"] = _metric(
            "geometric_distortion_mean", float(geo.score.mean()), "Mean 1 − IoU (shape templates)", ev_name, False, scale)
        geometric = {"threshold": thr, "rate_all": geo.rate, "mean_one_minus_iou": float(geo.score.mean()),
                     "median_one_minus_iou": float(np.median(geo.score)),
                     "real_rate": real.rate, "real_n": n_real, "real_mean_one_minus_iou": float(real.score.mean())}
        if "offline" in results:
            res = results["offline"]
            agree = proxy_agreement(res.flagged, geo.distorted, res.p_class, geo.iou)
            geometric["proxy"] = {"classifier": res.classifier, **agree}
            if agree["distortion_rate_flagged"] is not None:
                metrics["geometric_distortion_rate_flagged"] = _metric(
                    "geometric_distortion_rate_flagged", agree["distortion_rate_flagged"],
                    f"Geometric distortion rate among flagged samples ({res.classifier}, shape templates)",
                    ev_name, False, scale)
        np.savez(out / "per_sample.npz", labels=y, one_minus_iou=geo.score,
                 **({"p_class": results["offline"].p_class} if "offline" in results else {}))
        timings["geometric_s"] = time.perf_counter() - t

    timings["total_s"] = time.perf_counter() - t_start
    import torch_fidelity

    report = {
        "format": "dimr-metrics", "version": 1,
        "checkpoint": ckpt["path"], "preset": ckpt.get("preset"), "train_step": ckpt.get("step"),
        "scale": {"dataset": dataset, "resolution": resolution, "num_samples": cfg.num_samples,
                  "num_reference": None if reference.images is None else int(len(reference.images)),
                  "reference": reference.source, "sampler": f"DPM-Solver (order {sampler.order}, {sampler.method}, "
                  f"{sampler.predict} prediction, {sampler.skip})", "sampler_steps": sampler.steps,
                  "guidance_weight": w, "seed": cfg.seed, "hardware": _hardware(device),
                  "torch": torch.__version__, "torch_fidelity": torch_fidelity.__version__, "summary": scale},
        "metrics": metrics,
        "evaluators": evaluators,
        "rejection": rejection,
        "geometric_distortion": geometric,
        "adm_suite": {"samples_npz": str(samples_npz), "reference_npz": str(reference_npz),
                      "evaluator": "ADM TensorFlow evaluation suite (guided-diffusion/evaluations) — not run here",
                      "command": f"python evaluations/evaluator.py {reference_npz} {samples_npz}"},
        "skipped": {} if inception is not None else {
            "inception": "Inception-V3 metrics not requested (offline dataset); pass --inception-weights PATH "
                         "or --inception on to add them"},
        "timings_s": timings,
        "config": dataclasses.asdict(cfg),
    }
    atomic_write_json(out / "metrics.json", report)
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
    ap = argparse.ArgumentParser(prog="python -m dimr evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a dimr checkpoint file or run folder")
    ap.add_argument("--num-samples", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=100,
                    help="samples per sampler batch (CFG doubles it; 100 is fastest on 2 CPU cores)")
    ap.add_argument("--steps", type=int, help="DPM-Solver steps (default: the recipe's)")
    ap.add_argument("--skip", choices=SKIP_TYPES,
                    help="DPM-Solver time grid (default: the recipe's)")
    ap.add_argument("--guidance", type=float, help="CFG weight w (default: the recipe's 1 + scale)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="output folder (default: CHECKPOINT_DIR/evaluate)")
    ap.add_argument("--inception", choices=["auto", "on", "off"], default="auto",
                    help="Inception-V3 metrics: auto = on for ImageNet-scale data, off for offline datasets")
    ap.add_argument("--inception-weights", help="local torch-fidelity Inception file (implies --inception on)")
    ap.add_argument("--classifier", help="offline classifier file, trained and written there if absent (default: "
                                         "$XDG_CACHE_HOME/dimr, else the repo's or ./.cache/dimr)")
    ap.add_argument("--reference-npz", help="reference batch (.npz, ADM layout; images and/or mu/sigma)")
    ap.add_argument("--vit-weights", help="local timm ViT checkpoint for the §5.3 rejection (ImageNet runs)")
    ap.add_argument("--vit-model", help="timm model name of --vit-weights (default vit_base_patch16_224)")
    ap.add_argument("--threshold", type=float, default=0.2, help="rejection threshold on p(class) (paper: 0.2)")
    ap.add_argument("--distortion-threshold", type=float, help="1 − IoU threshold (default 0.05)")
    ap.add_argument("--data-root", help="dataset folder (file datasets)")
    ap.add_argument("--vae", help="local SD-VAE folder (latent models)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-ema", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
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
    print(format_report(report))
    print(f"-> {Path(report['adm_suite']['samples_npz']).parent / 'metrics.json'}")
    return 0
