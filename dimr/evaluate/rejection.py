"""Classifier-based rejection (paper §5.3, Fig. 5; after Razavi et al. 2019).

The paper generates 80K images per model, classifies each with a pretrained ViT, and calls an image
*low-fidelity or potentially distorted* when the classifier's probability of the class it was
generated for is below **0.2** (:data:`REJECTION_THRESHOLD`).  The flagged images are only
*analysed* (shown in Fig. 5, then judged by humans, :mod:`dimr.evaluate.human`); no metric is computed
on a filtered set — neither here.

Two classifiers can play the ViT's part:

* :class:`TimmClassifier` — a timm model (ImageNet-1k head) from a **local** weight file, for
  ImageNet-scale runs as in the paper (:func:`load_vit_classifier`; a missing file stops with a
  clear :class:`~dimr.evaluate.metrics.MissingWeightsError`, nothing is downloaded).  The paper does
  not say which ViT; pass ``--vit-model`` with the timm name matching your file.
* the offline classifier (:class:`~dimr.evaluate.classifier.TrainedClassifier`) on our own datasets.

Both expose ``predict(images) -> (features or None, probabilities [N, K])`` and a ``label``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..device import pick_device
from .metrics import MissingWeightsError

__all__ = ["REJECTION_THRESHOLD", "DEFAULT_VIT_MODEL", "RejectionResult", "class_probability", "reject",
           "rejection_analysis", "save_flagged_grid", "TimmClassifier", "load_vit_classifier"]

#: p(requested class) below this flags an image as low-fidelity / potentially distorted (§5.3)
REJECTION_THRESHOLD = 0.2
#: a timm ViT with an ImageNet-1k head; the paper cites Dosovitskiy et al. without naming a variant
DEFAULT_VIT_MODEL = "vit_base_patch16_224"


@dataclass
class RejectionResult:
    """Per-image results of the rejection procedure.

    ``p_class``: ``[N]`` the classifier's probability of the requested class; ``predicted``: ``[N]`` its
    argmax; ``flagged``: ``[N]`` bool, ``p_class < threshold``; ``classifier``: its label."""

    p_class: np.ndarray
    predicted: np.ndarray
    flagged: np.ndarray
    threshold: float
    classifier: str

    @property
    def flagged_fraction(self) -> float:
        """The fraction of images flagged (``0`` for an empty set)."""
        return float(self.flagged.mean()) if len(self.flagged) else 0.0


def class_probability(probs: torch.Tensor | np.ndarray, labels) -> np.ndarray:
    """``probs [N, K]``, ``labels [N]`` -> ``p(labels[i] | image i)``: ``[N]``."""
    p = torch.as_tensor(np.asarray(probs) if not isinstance(probs, torch.Tensor) else probs)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if p.ndim != 2 or y.shape != (p.shape[0],):
        raise ValueError(f"expected probs [N, K] and labels [N], got {tuple(p.shape)} and {tuple(y.shape)}")
    if int(y.min()) < 0 or int(y.max()) >= p.shape[1]:
        raise ValueError(f"labels must be in [0, {p.shape[1]}) for a classifier with {p.shape[1]} classes")
    return p.gather(1, y[:, None])[:, 0].double().numpy()


def reject(p_class: np.ndarray, threshold: float = REJECTION_THRESHOLD) -> np.ndarray:
    """``p_class [N]`` -> flagged ``[N]`` bool: ``p_class < threshold`` (strictly below, §5.3)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    return np.asarray(p_class) < threshold


def rejection_analysis(classifier, images, labels, threshold: float = REJECTION_THRESHOLD,
                       batch_size: int = 250) -> RejectionResult:
    """Classify ``images`` (uint8 ``[N, H, W, 3]`` or float ``[N, C, H, W]`` in [−1, 1]) and flag
    those whose probability of their requested ``labels [N]`` is below ``threshold``."""
    _, probs = classifier.predict(images, batch_size=batch_size)
    p = class_probability(probs, labels)
    return RejectionResult(p, probs.argmax(1).numpy(), reject(p, threshold), threshold, classifier.label)


def save_flagged_grid(images: np.ndarray, result: RejectionResult, path: str | os.PathLike, max_images: int = 64,
                      ncol: int = 8, order: str = "lowest") -> Path | None:
    """A PNG grid of flagged images (uint8 ``[N, H, W, 3]``): the ``max_images`` with the lowest
    ``p_class`` (``order="lowest"``) or the first ones in sample order (``"first"``, an unbiased look,
    as Fig. 5's random picks).  Returns ``None`` when nothing is flagged (no file is written)."""
    from ..sample import save_grid

    idx = np.flatnonzero(result.flagged)
    if idx.size == 0:
        return None
    if order == "lowest":
        idx = idx[np.argsort(result.p_class[idx], kind="stable")]
    idx = idx[:max_images]
    return save_grid(np.asarray(images)[idx], path, ncol=min(ncol, len(idx)))


class TimmClassifier:
    """A timm image classifier used as in §5.3: ``predict(images) -> (None, probabilities [N, K])``.

    Images (uint8 ``[N, H, W, 3]`` / ``[N, 3, H, W]`` or float in [−1, 1]) are resized (bicubic) to
    the model's input size and normalised with its pretrained mean/std; the model runs on ``device``
    (:func:`~dimr.device.pick_device`)."""

    def __init__(self, model, model_name: str, weights_path: str, device="cpu"):
        from timm.data import resolve_model_data_config

        self.device = pick_device(device)
        self.model, self.model_name, self.weights_path = model.eval().to(self.device), model_name, weights_path
        cfg = resolve_model_data_config(model)
        self.input_size = tuple(cfg["input_size"][-2:])
        self.mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
        self.label = f"ViT classifier ({model_name})"

    @torch.no_grad()
    def predict(self, images, batch_size: int = 64) -> tuple[None, torch.Tensor]:
        from .classifier import to_classifier_input

        out = []
        for start in range(0, len(images), batch_size):
            x = to_classifier_input(images[start:start + batch_size], None, 3)  # [−1, 1], own size
            x = F.interpolate((x + 1) / 2, size=self.input_size, mode="bicubic", align_corners=False,
                              antialias=True).clamp(0, 1)
            x = ((x - self.mean) / self.std).to(self.device)
            out.append(self.model(x).float().softmax(dim=1).cpu())
        return None, torch.cat(out)


def load_vit_classifier(weights_path: str | os.PathLike | None, model_name: str = DEFAULT_VIT_MODEL,
                        device="cpu") -> TimmClassifier:
    """``timm.create_model(model_name, pretrained=True, pretrained_cfg_overlay=dict(file=weights_path))``.

    Raises :class:`MissingWeightsError` when no local file is given or it does not exist (timm would
    otherwise try to download)."""
    if weights_path is None or not Path(weights_path).is_file():
        said = "no --vit-weights file was given" if weights_path is None else f"{weights_path} does not exist"
        raise MissingWeightsError(
            f"the rejection analysis with a ViT needs a local timm checkpoint for {model_name!r} "
            f"(ImageNet-1k head, .safetensors/.pth/.bin) and {said}. Nothing is downloaded at run time: "
            f"save the weights on a connected machine (e.g. timm.create_model({model_name!r}, pretrained=True) "
            f"then torch.save(model.state_dict(), 'vit.pth')) and pass --vit-weights PATH --vit-model NAME.")
    import timm

    try:
        model = timm.create_model(model_name, pretrained=True, pretrained_cfg_overlay=dict(file=str(weights_path)))
    except RuntimeError as e:  # keys or shapes that do not fit the named architecture
        raise ValueError(f"{weights_path} does not fit timm model {model_name!r}: {e}") from None
    return TimmClassifier(model, model_name, str(weights_path), device)
