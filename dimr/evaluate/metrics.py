"""Sample-quality metrics through torch-fidelity: FID, Inception Score, precision/recall and KID.

The paper reports FID-50K, IS and precision/recall from the ADM TensorFlow evaluation suite
(Dhariwal & Nichol 2021) with Inception-V3 features.  Here the same metrics are computed by
torch-fidelity (its Inception-V3 is a port of the same 2015-12-05 TensorFlow graph) with one of two
*evaluators* — the feature extractor that defines the metric:

* :func:`inception_evaluator` — torch-fidelity's ``inception-v3-compat``, read from a **local** weight
  file (:data:`INCEPTION_WEIGHTS_FILE`).  Nothing is downloaded: without the file,
  :func:`resolve_inception_weights` stops with :class:`MissingWeightsError` naming the file and where
  to put it, *before* any work is done.
* :func:`classifier_evaluator` — the offline classifier of :mod:`dimr.evaluate.classifier`
  (penultimate features for FID / KID / precision / recall, logits for IS).

Every value is a :class:`Metric` that carries its evaluator: keys are ``<metric>_<evaluator key>``
(``fid_shapes_classifier``, ``fid_inception``) and labels read "FID (shapes classifier)"; an
offline-extractor value is never called plain FID, and neither is comparable with the paper's numbers.
Precision and recall follow Kynkäänniemi et al. (k = 3), computed on the same features as FID, as in
the ADM suite (torch-fidelity's own default for precision/recall would be VGG-16; we override it).

For the ADM TensorFlow suite itself, export ``.npz`` batches (:func:`dimr.sample.save_npz`,
:func:`dimr.evaluate.reference.save_reference_npz`) and run its ``evaluator.py`` (see
:func:`adm_suite_command`).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..device import pick_device

__all__ = ["INCEPTION_WEIGHTS_FILE", "INCEPTION_WEIGHTS_URL", "MissingWeightsError", "Evaluator", "Metric",
           "default_inception_weights_path", "resolve_inception_weights", "inception_evaluator",
           "classifier_evaluator", "UInt8Images", "fidelity_metrics", "fid_against_statistics",
           "extract_features", "adm_suite_command"]

#: torch-fidelity's Inception-V3 weights (converted from TensorFlow's 2015-12-05 graph)
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                         + INCEPTION_WEIGHTS_FILE)
ADM_SUITE = "https://github.com/openai/guided-diffusion/tree/main/evaluations"


class MissingWeightsError(FileNotFoundError):
    """A weight file that must be supplied locally (nothing is downloaded at run time)."""


@dataclass(frozen=True)
class Evaluator:
    """The feature extractor a metric is computed with.

    ``extractor``: torch-fidelity's registered name; ``key``: suffix of metric keys; ``label``: what a
    reader sees in brackets; ``weights_path``: the local file it reads; ``description``: one line
    saying what it is (written into ``metrics.json``)."""

    extractor: str
    key: str
    label: str
    weights_path: str
    description: str
    fid_layer: str
    isc_layer: str

    def record(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Metric:
    """One number with its name, evaluator and direction (what ``metrics.json`` stores)."""

    key: str
    value: float
    label: str
    evaluator: str
    higher_is_better: bool

    def record(self) -> dict:
        return asdict(self)


def default_inception_weights_path() -> Path:
    """Where torch-fidelity's cache would hold the file: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE


def resolve_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """The local Inception weight file: ``path`` if given, else torch-fidelity's cache location.

    Raises :class:`MissingWeightsError` (no network attempt) saying which file is needed and where."""
    where = default_inception_weights_path()
    candidate = Path(path) if path is not None else where
    if candidate.is_file():
        return candidate
    said = f"the file you passed, {candidate}, does not exist" if path is not None else f"{where} does not exist"
    raise MissingWeightsError(
        f"Inception-V3 metrics need torch-fidelity's weight file {INCEPTION_WEIGHTS_FILE!r}, and {said}. "
        f"Nothing is downloaded at run time: fetch it once on a connected machine ({INCEPTION_WEIGHTS_URL}) "
        f"and either put it at {where} (torch-fidelity's cache, under $TORCH_HOME) or pass "
        f"--inception-weights PATH. (pytorch-fid's pt_inception-2015-12-05-6726825d.pth holds the same "
        f"weights and works too.)")


def inception_evaluator(weights_path: str | os.PathLike | None = None) -> Evaluator:
    """torch-fidelity's Inception-V3 with a local weight file (:func:`resolve_inception_weights`)."""
    import torch_fidelity

    path = resolve_inception_weights(weights_path)
    return Evaluator("inception-v3-compat", "inception", "Inception-V3, torch-fidelity", str(path),
                     f"torch-fidelity {torch_fidelity.__version__} InceptionV3 (TF 2015-12-05 port), "
                     f"pool-3 2048-d features for FID/KID/precision/recall, logits for IS; weights {path}",
                     fid_layer="2048", isc_layer="logits_unbiased")


def classifier_evaluator(classifier) -> Evaluator:
    """The offline classifier (a :class:`~dimr.evaluate.classifier.TrainedClassifier` saved to a file)."""
    import torch_fidelity

    from .extractor import FID_LAYER, ISC_LAYER, register_classifier_extractor

    if classifier.path is None:
        raise ValueError("the classifier must be saved to a file first (torch-fidelity builds extractors from files)")
    name = register_classifier_extractor(classifier.name)
    c = classifier.config
    return Evaluator(name, name.replace("-", "_"), classifier.label, str(classifier.path),
                     f"torch-fidelity {torch_fidelity.__version__} with dimr's offline {classifier.label} "
                     f"(SmallCNN trained on {c.dataset} at {c.image_size}², held-out accuracy "
                     f"{classifier.heldout_accuracy:.4f}); {c.feature_dim}-d penultimate features for "
                     f"FID/KID/precision/recall, logits for IS; file {classifier.path}",
                     fid_layer=FID_LAYER, isc_layer=ISC_LAYER)


class UInt8Images(Dataset):
    """What torch-fidelity reads: item ``i`` is uint8 ``[3, H, W]`` from uint8 ``[N, H, W, 3]``."""

    def __init__(self, images: np.ndarray):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 [N, H, W, 3] images, got {images.dtype} {images.shape}")
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i].contiguous()


def _common_kwargs(evaluator: Evaluator, batch_size: int, progress: bool, device="auto") -> dict:
    """torch-fidelity's keyword arguments; it runs on CUDA exactly when ``pick_device(device)`` is a GPU."""
    return dict(feature_extractor=evaluator.extractor, feature_extractor_weights_path=evaluator.weights_path,
                feature_layer_fid=evaluator.fid_layer, feature_layer_kid=evaluator.fid_layer,
                feature_layer_prc=evaluator.fid_layer, feature_layer_isc=evaluator.isc_layer,
                cuda=pick_device(device).type == "cuda", batch_size=batch_size, cache=False, save_cpu_ram=True,
                verbose=progress, datasets_download=False)


def _labelled(raw: dict, evaluator: Evaluator) -> dict[str, Metric]:
    """torch-fidelity's result dict -> labelled :class:`Metric` records keyed ``<metric>_<evaluator>``."""
    import torch_fidelity as tf

    names = [  # torch-fidelity key, our metric name, display name, higher is better
        (tf.KEY_METRIC_FID, "fid", "FID", False), (tf.KEY_METRIC_ISC_MEAN, "is", "IS", True),
        (tf.KEY_METRIC_ISC_STD, "is_std", "IS std over splits", None),
        (tf.KEY_METRIC_PRECISION, "precision", "Precision", True), (tf.KEY_METRIC_RECALL, "recall", "Recall", True),
        (tf.KEY_METRIC_KID_MEAN, "kid", "KID", False), (tf.KEY_METRIC_KID_STD, "kid_std", "KID std over subsets", None),
    ]
    out = {}
    for src, name, display, better in names:
        if src in raw:
            key = f"{name}_{evaluator.key}"
            out[key] = Metric(key, float(raw[src]), f"{display} ({evaluator.label})", evaluator.extractor,
                              bool(better) if better is not None else False)
    return out


def fidelity_metrics(samples: np.ndarray, reference: np.ndarray | None, evaluator: Evaluator, fid: bool = True,
                     isc: bool = True, prc: bool = True, kid: bool = True, batch_size: int = 250,
                     progress: bool = True, seed: int = 2020, device="auto") -> dict[str, Metric]:
    """Metrics of ``samples`` (uint8 ``[N, H, W, 3]``) against ``reference`` (uint8 ``[M, H', W', 3]``)
    by ``torch_fidelity.calculate_metrics`` with ``evaluator``'s features.

    IS needs only the samples (``reference`` may be ``None`` when ``fid = prc = kid = False``).  Small
    sets are handled by shrinking IS splits (≤ N) and the KID subset size (1000, or half the smaller
set if that is smaller, so that the 100 KID subsets differ and its std means something).
    Features are computed on ``device`` (:func:`~dimr.device.pick_device`; torch-fidelity knows only
    "CUDA or not"). Returns labelled :class:`Metric` records (see :func:`_labelled`)."""
    import torch_fidelity

    binary = fid or prc or kid
    if binary and reference is None:
        raise ValueError("FID, precision/recall and KID need a reference set")
    n = len(samples)
    m = len(reference) if reference is not None else n
    kw = _common_kwargs(evaluator, batch_size, progress, device)
    raw = torch_fidelity.calculate_metrics(
        input1=UInt8Images(samples), input2=UInt8Images(reference) if binary else None,
        fid=fid, isc=isc, prc=prc, kid=kid, isc_splits=max(1, min(10, n)),
        kid_subset_size=min(1000, max(2, min(n, m) // 2)), kid_subsets=100, rng_seed=seed, **kw)
    return _labelled(raw, evaluator)


def extract_features(images: np.ndarray, evaluator: Evaluator, layer: str | None = None, batch_size: int = 250,
                     progress: bool = True, device="auto") -> torch.Tensor:
    """Features ``[N, D]`` of uint8 ``[N, H, W, 3]`` images from ``evaluator``'s FID layer (or ``layer``),
    through torch-fidelity's own extractor construction and batching."""
    from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

    layer = layer or evaluator.fid_layer
    kw = _common_kwargs(evaluator, batch_size, progress, device)
    fe = create_feature_extractor(evaluator.extractor, [layer], **{k: v for k, v in kw.items() if k != "batch_size"})
    feats = get_featuresdict_from_dataset(UInt8Images(images), fe, batch_size, kw["cuda"], True, progress)
    return feats[layer]


def fid_against_statistics(samples: np.ndarray, mu: np.ndarray, sigma: np.ndarray, evaluator: Evaluator,
                           batch_size: int = 250, progress: bool = True, device="auto") -> Metric:
    """FID of ``samples`` against reference statistics ``(mu [D], sigma [D, D])`` computed with the
    same evaluator (e.g. the ``mu``/``sigma`` of an ADM reference batch, Inception pool-3, D = 2048)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    feats = extract_features(samples, evaluator, batch_size=batch_size, progress=progress, device=device)
    stats = fid_features_to_statistics(feats.double())
    ref = {"mu": np.asarray(mu, dtype=stats["mu"].dtype), "sigma": np.asarray(sigma, dtype=stats["sigma"].dtype)}
    if ref["mu"].shape != stats["mu"].shape:
        raise ValueError(f"reference statistics have dimension {ref['mu'].shape[0]}, the {evaluator.label} "
                         f"features {stats['mu'].shape[0]}: they come from another evaluator")
    raw = fid_statistics_to_metric(stats, ref, progress)
    return _labelled(raw, evaluator)[f"fid_{evaluator.key}"]


def adm_suite_command(reference_npz: str | os.PathLike, samples_npz: str | os.PathLike) -> str:
    """The command that scores the exported batches with the paper's evaluator (ADM's TensorFlow suite,
    ``guided-diffusion/evaluations/evaluator.py``; run it where TensorFlow and its Inception graph live)."""
    return f"python evaluations/evaluator.py {reference_npz} {samples_npz}   # {ADM_SUITE}"
