"""Geometric distortion: a distortion measure that needs no human (on the procedural shapes).

§5.3 of the paper needs humans because for a photograph nobody knows the true geometry.  For the
shapes dataset everybody does: every class is an exact template (:mod:`dimr.data.shapes`).  So each
generated sample of class ``c`` is thresholded into a mask and the template of ``c`` is fitted to it
(centre, radius, rotation: :func:`dimr.data.shapes.fit_template`); its **geometric distortion** is

    d = 1 − IoU(sample mask, best-fitting template of its class),

0 for a perfect shape, near 1 for a blob of the wrong kind.  A sample is *geometrically distorted*
when ``d > DISTORTION_THRESHOLD``.

Threshold.  Real images are not exactly 0: anti-aliasing, thresholding and the finite fit leave a
residue (crosses, stars and rings highest).  ``DISTORTION_THRESHOLD = 0.05`` is about a 5% disagreement
in area — e.g. a corner rounded off or an edge bent by a pixel along a third of the outline at 32² —
and lies above the 99th percentile of real shapes' residue, so that at most about 1% of real images
count as distorted: ``tests/test_evaluate_offline.py`` measures that percentile and that rate on real
shapes with :func:`calibrate_threshold`, which recomputes a quantile on any real set (other sizes,
palettes).

:func:`proxy_agreement` compares the paper's classifier proxy (flagged: ``p(class) < 0.2``) with this
ground truth: precision and recall of "flagged" for "distorted", distortion rates among flagged,
unflagged and all samples, and rank/linear correlation between ``p(class)`` and IoU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DISTORTION_THRESHOLD", "GeometricResult", "geometric_distortion", "calibrate_threshold",
           "distortion_analysis", "proxy_agreement", "COARSE_DISTORTION_THRESHOLD"]

#: 1 − IoU above this is "geometrically distorted" (see the module docstring for the measurement)
DISTORTION_THRESHOLD = 0.05
#: a coarser threshold that still separates tiny models: a fifth of the shape's area wrong counts as
#: "distorted" at 0.15 — e.g. a pentagon drawn as a disc, a star with blunt or missing points — where
#: 0.05 flags nearly every sample a minutes-long CPU run draws
COARSE_DISTORTION_THRESHOLD = 0.15


@dataclass
class GeometricResult:
    """``score``: ``[N]`` 1 − IoU; ``distorted``: ``[N]`` bool (``score > threshold``); ``params``: the
    fitted :class:`~dimr.data.shapes.ShapeParams` of each sample."""

    score: np.ndarray
    distorted: np.ndarray
    threshold: float
    params: list

    @property
    def iou(self) -> np.ndarray:
        return 1.0 - self.score

    @property
    def rate(self) -> float:
        """Fraction of samples geometrically distorted."""
        return float(self.distorted.mean()) if len(self.distorted) else 0.0


def geometric_distortion(images, labels, progress: bool = False) -> tuple[np.ndarray, list]:
    """``1 − IoU`` of each image against its class template: ``([N] float64, [N] ShapeParams)``.

    ``images``: uint8 ``[N, H, W, 3]`` or float ``[N, C, H, W]``; ``labels``: ``[N]`` shape classes.
    About 12–30 ms per 32² image on one CPU core."""
    from ..data.shapes import fit_template

    images = np.asarray(images.cpu() if hasattr(images, "cpu") else images)
    labels = np.asarray(labels).astype(int)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    it = range(len(images))
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="fit templates", unit="img", dynamic_ncols=True)
    scores, params = np.empty(len(images)), []
    for i in it:
        p, iou = fit_template(images[i], int(labels[i]))
        scores[i] = 1.0 - iou
        params.append(p)
    return scores, params


def calibrate_threshold(real_scores: np.ndarray, quantile: float = 0.99) -> float:
    """The ``quantile`` of real images' ``1 − IoU``: a data-driven threshold (false alarm ≈ 1 − quantile)."""
    real_scores = np.asarray(real_scores, dtype=np.float64)
    if real_scores.size == 0:
        raise ValueError("need at least one real score to calibrate")
    return float(np.quantile(real_scores, quantile))


def distortion_analysis(images, labels, threshold: float = DISTORTION_THRESHOLD,
                        progress: bool = False) -> GeometricResult:
    """Score every image (:func:`geometric_distortion`) and call those above ``threshold`` distorted."""
    score, params = geometric_distortion(images, labels, progress)
    return GeometricResult(score, score > threshold, threshold, params)


def _rate(mask: np.ndarray, within: np.ndarray) -> float | None:
    return float(mask[within].mean()) if within.any() else None


def proxy_agreement(flagged: np.ndarray, distorted: np.ndarray, p_class: np.ndarray, iou: np.ndarray) -> dict:
    """How well the classifier proxy tracks geometric ground truth.

    Returns a dict: ``precision`` = P(distorted | flagged) — also the *distortion rate of flagged
    samples*, the quantity §5.3 asks humans for; ``recall`` = P(flagged | distorted); distortion rates
    among ``all`` / ``unflagged`` samples; counts; ``spearman`` and ``pearson`` correlation between
    ``p(class)`` and IoU (``None`` where undefined, e.g. a constant input)."""
    from scipy import stats

    flagged, distorted = np.asarray(flagged, bool), np.asarray(distorted, bool)
    p_class, iou = np.asarray(p_class, float), np.asarray(iou, float)
    n = len(flagged)
    tp = int((flagged & distorted).sum())

    def corr(fn):
        if n < 3 or np.ptp(p_class) == 0 or np.ptp(iou) == 0:
            return None
        return float(fn(p_class, iou)[0])

    return {
        "n": n, "n_flagged": int(flagged.sum()), "n_distorted": int(distorted.sum()), "n_flagged_and_distorted": tp,
        "precision": tp / int(flagged.sum()) if flagged.any() else None,
        "recall": tp / int(distorted.sum()) if distorted.any() else None,
        "distortion_rate_flagged": _rate(distorted, flagged),
        "distortion_rate_unflagged": _rate(distorted, ~flagged),
        "distortion_rate_all": float(distorted.mean()) if n else None,
        "spearman_p_class_iou": corr(stats.spearmanr),
        "pearson_p_class_iou": corr(stats.pearsonr),
    }
