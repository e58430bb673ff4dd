"""The offline stand-in for the paper's pretrained classifiers: a small CNN trained on our own data.

The paper measures generated images with networks trained on ImageNet: Inception-V3 for FID / IS /
precision / recall (§5.1), a pretrained ViT for the rejection analysis of §5.3.  Neither exists
offline, and neither knows our procedural shapes.  So this module trains a tiny classifier on the
dataset a checkpoint was trained on (``shapes`` by default, or any class-conditional dataset
:func:`dimr.data.build_dataset` builds, e.g. ``fashion-mnist``), and the rest of
:mod:`dimr.evaluate` uses it in both roles: its penultimate features replace Inception's pool-3
features, its logits replace Inception's logits (IS) and the ViT's (rejection).  Every number it
produces is labelled with its name; it is never reported as plain FID.

Architecture (:class:`SmallCNN`): three stages of two 3×3 conv + ReLU with 2× max-pool between
them (16 → 32 → 64 channels at 32², 16², 8²), global average pooling, ``Linear(64, 128)`` and a
LayerNorm without affine (the 128-d *penultimate* features, zero mean and unit RMS per image),
``Linear(128, K)`` (logits).  ≈ 80k parameters.

Training (:func:`train_classifier`) is deterministic (seeded initialisation and shuffling, a fixed
rendered training set), takes ≈ 20 s on two idle CPU cores (shapes; ≈ 35 s for Fashion-MNIST), and is cached to a file whose
name holds a hash of the configuration (:func:`load_or_train_classifier`).  Mild noise augmentation
keeps it from relying on exact anti-aliasing, which generated samples do not reproduce.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import UnsafeCheckpointError, atomic_save, safe_load

__all__ = ["ClassifierConfig", "SmallCNN", "TrainedClassifier", "default_cache_dir", "classifier_path",
           "to_classifier_input", "render_split", "train_classifier", "load_classifier",
           "load_or_train_classifier", "supported_datasets"]

FORMAT = "dimr-classifier"


@dataclass(frozen=True)
class ClassifierConfig:
    """What the offline classifier is trained on and how; every field enters the cache file's name.

    ``dataset`` is a :func:`dimr.data.build_dataset` name; ``data_kw`` its keyword arguments as a
    sorted tuple of pairs (e.g. ``(("palette", "white"),)`` for shapes, ``(("root", "/path"),)``).
    ``train_items``: shapes rendered for training (``None`` = the whole split for file datasets).
    """

    dataset: str = "shapes"
    data_kw: tuple = ()
    image_size: int = 32
    in_channels: int = 3
    train_items: int | None = 6000
    epochs: int = 6
    batch_size: int = 64
    lr: float = 3e-3
    noise_std: float = 0.1  # max std of the additive Gaussian noise augmentation, in [−1, 1] units
    seed: int = 0
    widths: tuple[int, int, int] = (16, 32, 64)
    feature_dim: int = 128

    def key(self) -> str:
        """A short stable hash of the configuration (names the cache file)."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str).encode()
        return hashlib.sha1(blob).hexdigest()[:10]


class SmallCNN(nn.Module):
    """``forward(x: [B, C, S, S] in [−1, 1]) -> (features [B, feature_dim], logits [B, K])``."""

    def __init__(self, in_channels: int, num_classes: int, widths=(16, 32, 64), feature_dim: int = 128):
        super().__init__()
        layers, c = [], in_channels
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(inplace=True),
                       nn.Conv2d(w, w, 3, padding=1), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.body = nn.Sequential(*layers)
        # The penultimate features are layer-normalised (no affine): every image's feature vector has
        # zero mean and unit RMS, so features and logits stay bounded on any input, however far from
        # the training data (a plain ReLU net's activations grow with the input's contrast and, on
        # noise-like samples, overflow the softmax of the Inception Score).
        self.penultimate = nn.Sequential(nn.Linear(c, feature_dim), nn.LayerNorm(feature_dim, elementwise_affine=False))
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x).mean(dim=(2, 3))  # global average pooling: [B, widths[-1]]
        feats = self.penultimate(h)
        return feats, self.head(feats)


@dataclass
class TrainedClassifier:
    """A trained :class:`SmallCNN` with what it was trained on.

    ``name`` (e.g. ``"shapes-classifier"``) is the feature extractor's name; ``label`` (e.g.
    ``"shapes classifier"``) is what every metric computed with it carries.
    """

    model: SmallCNN
    config: ClassifierConfig
    num_classes: int
    class_names: list[str]
    heldout_accuracy: float
    path: str | None = None
    train_seconds: float | None = None

    @property
    def name(self) -> str:
        return f"{self.config.dataset}-classifier"

    @property
    def label(self) -> str:
        return f"{self.config.dataset.replace('-', ' ').replace('_', ' ')} classifier"

    @torch.no_grad()
    def predict(self, images, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """``images`` (see :func:`to_classifier_input`) -> ``(features [N, F], probabilities [N, K])``."""
        self.model.eval()
        feats, probs = [], []
        for start in range(0, len(images), batch_size):
            x = to_classifier_input(images[start:start + batch_size], self.config.image_size, self.config.in_channels)
            f, logits = self.model(x)
            feats.append(f)
            probs.append(logits.softmax(dim=1))
        return torch.cat(feats), torch.cat(probs)


def supported_datasets() -> tuple[str, ...]:
    """Datasets the offline classifier can be trained on (class-conditional image datasets)."""
    return ("shapes", "fashion-mnist")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dimr`` when set; else ``.cache/dimr`` in the repository root when run inside
    this repository (a folder above the working directory holding ``_toc.yml`` and ``dimr/``, so that
    notebooks executed in ``notebooks/`` share the cache), else ``./.cache/dimr``.  Never the home
    folder implicitly."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "dimr"
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "dimr").is_dir():
            return folder / ".cache" / "dimr"
    return here / ".cache" / "dimr"


def classifier_path(config: ClassifierConfig, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache file of ``config``: ``<cache_dir>/classifier-<dataset>-<hash>.pt``."""
    return Path(cache_dir or default_cache_dir()) / f"classifier-{config.dataset}-{config.key()}.pt"


def to_classifier_input(images, size: int | None, channels: int) -> torch.Tensor:
    """Any image batch -> float ``[N, channels, size, size]`` in [−1, 1].

    Accepts uint8 ``[N, H, W, 3]`` (numpy or torch, the ADM ``.npz`` layout), uint8 ``[N, C, H, W]``
    (torch-fidelity's layout), or float ``[N, C, H, W]`` in [−1, 1] (the sampler's output).  Grey and
    RGB are converted as needed (mean of RGB; grey repeated); other sizes are resized (bilinear,
    antialiased) unless ``size`` is ``None``."""
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images [N, ...] with 4 dims, got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)
        x = x.float() / 127.5 - 1
    x = x.float()
    if x.shape[1] != channels:
        if x.shape[1] == 3 and channels == 1:
            x = x.mean(dim=1, keepdim=True)
        elif x.shape[1] == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:
            raise ValueError(f"cannot convert {x.shape[1]} channels to {channels}")
    if size is not None and x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.contiguous()


def _build(config: ClassifierConfig, split: str):
    from ..data import build_dataset

    kw = dict(config.data_kw)
    if config.dataset == "shapes":
        # every rotation, so the classifier judges samples of upright and of randomly turned shapes alike
        kw.setdefault("rotation", "random")
        # held-out items come from another seed: disjoint draws, not just other indices
        seed = config.seed * 2 + (0 if split == "train" else 1) + 10_000
        n = config.train_items if split == "train" else 2000
        return build_dataset("shapes", num_items=n or 6000, size=config.image_size, seed=seed, **kw)
    if config.dataset == "fashion-mnist":
        return build_dataset("fashion-mnist", split=split, channels=config.in_channels, **kw)
    raise ValueError(f"no offline classifier for dataset {config.dataset!r}; supported: {', '.join(supported_datasets())}")


def render_split(config: ClassifierConfig, split: str,
                 limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor, object]:
    """The classifier's ``train`` or ``heldout`` data as tensors: ``(x [N, C, S, S] in [−1, 1], y [N], dataset)``."""
    ds = _build(config, "train" if split == "train" else "test")
    n = len(ds) if limit is None else min(limit, len(ds))
    if split == "train" and config.train_items is not None:
        n = min(n, config.train_items)
    if hasattr(ds, "images") and hasattr(ds, "labels"):  # in-memory file datasets: index in bulk
        xs = torch.stack([ds[i][0] for i in range(n)])
        ys = torch.as_tensor(ds.labels[:n], dtype=torch.long)
    else:
        pairs = [ds[i] for i in range(n)]
        xs, ys = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
    return to_classifier_input(xs, config.image_size, config.in_channels), ys, ds


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch])[1].argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return correct / len(x)


def train_classifier(config: ClassifierConfig = ClassifierConfig(), progress: bool = True) -> TrainedClassifier:
    """Train :class:`SmallCNN` on ``config.dataset`` (Adam, cosine learning-rate decay, noise
    augmentation) and measure its accuracy on held-out data. Deterministic for a given config and
    thread count."""
    g = torch.Generator().manual_seed(config.seed)
    x, y, ds = render_split(config, "train")
    xh, yh, _ = render_split(config, "heldout", limit=2000)
    k = int(ds.num_classes)
    torch.manual_seed(config.seed)
    model = SmallCNN(config.in_channels, k, config.widths, config.feature_dim)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps = config.epochs * ((len(x) + config.batch_size - 1) // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.15)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc=f"train {config.dataset} classifier", unit="step", dynamic_ncols=True)
    t0 = time.perf_counter()
    model.train()
    for _ in range(config.epochs):
        perm = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), config.batch_size):
            idx = perm[start:start + config.batch_size]
            xb = x[idx]
            if config.noise_std > 0:  # per-image noise level in [0, noise_std]
                sigma = torch.rand(len(idx), 1, 1, 1, generator=g) * config.noise_std
                xb = xb + sigma * torch.randn(xb.shape, generator=g)
            loss = F.cross_entropy(model(xb)[1], y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    acc = _accuracy(model, xh, yh)
    model.eval()
    return TrainedClassifier(model, config, k, list(getattr(ds, "class_names", [str(i) for i in range(k)])),
                             acc, train_seconds=seconds)


def save_classifier(clf: TrainedClassifier, path: str | os.PathLike) -> Path:
    """Write ``clf`` atomically (state dict + config + held-out accuracy)."""
    obj = {"format": FORMAT, "config": dataclasses.asdict(clf.config), "state": clf.model.state_dict(),
           "num_classes": clf.num_classes, "class_names": clf.class_names,
           "heldout_accuracy": clf.heldout_accuracy, "train_seconds": clf.train_seconds}
    path = atomic_save(obj, path)
    clf.path = str(path)
    return path


def load_classifier(path: str | os.PathLike) -> TrainedClassifier:
    """Read a classifier written by :func:`save_classifier`; ``FileNotFoundError``/``ValueError`` on bad files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classifier file not found: {path}")
    try:
        obj = safe_load(path)  # tensors and plain values only: a file that would run code is refused
    except UnsafeCheckpointError as e:
        raise ValueError(f"{path} is not a safe classifier file (it needs unpickling beyond tensors): {e}") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"{path} is not a dimr classifier file")
    cfg = dict(obj["config"])
    cfg["data_kw"] = tuple(tuple(p) for p in cfg["data_kw"])
    cfg["widths"] = tuple(cfg["widths"])
    config = ClassifierConfig(**cfg)
    model = SmallCNN(config.in_channels, obj["num_classes"], config.widths, config.feature_dim)
    model.load_state_dict(obj["state"])
    model.eval()
    return TrainedClassifier(model, config, obj["num_classes"], list(obj["class_names"]), obj["heldout_accuracy"],
                             path=str(path), train_seconds=obj.get("train_seconds"))


def load_or_train_classifier(config: ClassifierConfig = ClassifierConfig(), path: str | os.PathLike | None = None,
                             cache_dir: str | os.PathLike | None = None, progress: bool = True) -> TrainedClassifier:
    """The classifier at ``path`` (default: :func:`classifier_path` of ``config``), trained and
    saved there first if the file does not exist."""
    path = Path(path) if path is not None else classifier_path(config, cache_dir)
    if path.is_file():
        return load_classifier(path)
    clf = train_classifier(config, progress=progress)
    save_classifier(clf, path)
    return clf
