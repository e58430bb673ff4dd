"""Evaluation: sample-quality metrics, the paper's distortion analysis, and the adaLN-Zero PCA.

One module per concept:

* :mod:`~dimr.evaluate.metrics` — FID / IS / precision / recall / KID through torch-fidelity, each
  labelled with the evaluator (feature extractor) that produced it; local Inception weights only.
* :mod:`~dimr.evaluate.classifier` — the offline stand-in classifier (a small CNN trained on our data),
  and :mod:`~dimr.evaluate.extractor`, the same network as a torch-fidelity feature extractor.
* :mod:`~dimr.evaluate.reference` — reference batches of real images, ``.npz`` in the ADM layout.
* :mod:`~dimr.evaluate.rejection` — §5.3's classifier-based rejection (p(class) < 0.2).
* :mod:`~dimr.evaluate.distortion` — geometric distortion on the shapes (1 − IoU to the template).
* :mod:`~dimr.evaluate.degrade` — controlled damage (blur, elastic warp) for checking measures.
* :mod:`~dimr.evaluate.human` — §5.3's human study: annotation widget and averaging rule.
* :mod:`~dimr.evaluate.pca` — Fig. 3 / Fig. 6: PCA of adaLN-Zero scale and shift along sampling.
* :mod:`~dimr.evaluate.report` — ``python -m dimr evaluate``: all of the above for one checkpoint.

Submodules are imported lazily (``import dimr.evaluate`` stays cheap; torch-fidelity and timm load
only when used).
"""
from __future__ import annotations

import importlib

__all__ = ["cli", "EvaluateConfig", "evaluate_checkpoint", "metrics", "classifier", "extractor", "reference",
           "rejection", "distortion", "degrade", "human", "pca", "report"]

_SUBMODULES = {"metrics", "classifier", "extractor", "reference", "rejection", "distortion", "degrade", "human",
               "pca", "report"}


def cli(argv: list[str]) -> int:
    """``python -m dimr evaluate ...`` (see :mod:`dimr.evaluate.report`)."""
    from .report import cli as _cli

    return _cli(argv)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in ("EvaluateConfig", "evaluate_checkpoint"):
        return getattr(importlib.import_module(f"{__name__}.report"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
