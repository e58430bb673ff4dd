"""Reference batches: the real images a checkpoint's samples are compared with.

As in the ADM suite, the reference set is drawn from the *training* data: for a checkpoint trained on
the procedural shapes it is items ``0 … N−1`` of the very :class:`~dimr.data.ShapesDataset` it was
trained on (same seed; labels cycle, so every class appears equally often); for file datasets
(Fashion-MNIST, image folders) ``N`` items evenly spaced over the split.  Latent datasets hold no
pixels: pass ``--reference-npz`` instead.

:func:`save_reference_npz` writes the batch in the ADM layout (``arr_0`` uint8 ``[N, H, W, 3]``,
``arr_1`` labels) next to ``samples.npz``, so both can be fed to the TensorFlow suite;
:func:`load_reference_npz` reads such a file back, or an ADM reference batch holding statistics
(``mu``, ``sigma``) instead of, or besides, images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..sample import save_npz, to_uint8

__all__ = ["ReferenceBatch", "dataset_name", "checkpoint_dataset", "reference_batch", "save_reference_npz", "load_reference_npz"]


@dataclass
class ReferenceBatch:
    """Real images (uint8 ``[N, H, W, 3]``, may be ``None`` for statistics-only files), their labels
    (``[N]`` or ``None``), optional Inception statistics (``mu [2048]``, ``sigma [2048, 2048]``), and
    where they came from (a sentence written into ``metrics.json``)."""

    images: np.ndarray | None
    labels: np.ndarray | None
    source: str
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None


def dataset_name(ckpt: dict) -> str:
    """The dataset a checkpoint was trained on, normalised (``"shapes"``, ``"fashion-mnist"``, ...)."""
    info = ckpt.get("dataset") or {}
    tc = ckpt.get("train_config") or {}
    return (info.get("name") or tc.get("dataset") or "shapes").lower().replace("_", "-")


def checkpoint_dataset(ckpt: dict, data_root: str | None = None):
    """Rebuild the dataset a checkpoint was trained on (from its ``dataset`` and ``train_config``)."""
    from ..data import build_dataset

    info = ckpt.get("dataset") or {}
    tc = ckpt.get("train_config") or {}
    name = dataset_name(ckpt)
    root = data_root or tc.get("data_root")
    if name == "shapes":
        size = (info.get("image_shape") or [3, 32, 32])[-1]
        # checkpoints from before the rotation option were trained on randomly turned shapes
        return name, build_dataset("shapes", num_items=int(tc.get("dataset_size", 20_000)), size=size,
                                   seed=int(tc.get("seed", 0)), rotation=tc.get("shapes_rotation", "random"))
    if name == "latents":
        raise ValueError("this checkpoint was trained on SD-VAE latents, which hold no pixels: pass "
                         "--reference-npz with real images (or an ADM reference batch)")
    kw = {"root": root} if root else {}
    if name == "fashion-mnist":
        kw["channels"] = (info.get("image_shape") or [1])[0]
    return name, build_dataset(name, **kw)


def reference_batch(ckpt: dict, n: int, data_root: str | None = None) -> ReferenceBatch:
    """``n`` real training images of the checkpoint's dataset, as uint8 ``[n, H, W, 3]`` (see module doc)."""
    name, ds = checkpoint_dataset(ckpt, data_root)
    if n > len(ds):
        raise ValueError(f"asked for {n} reference images, the dataset has {len(ds)}")
    if name == "shapes":
        idx = np.arange(n)
        how = f"items 0..{n - 1} of the training ShapesDataset (seed {ds.seed}, {ds.size}², palette {ds.palette}, {ds.rotation})"
    else:
        idx = np.linspace(0, len(ds) - 1, n).round().astype(int)
        how = f"{n} items evenly spaced over the {name} training split ({len(ds)} items)"
    pairs = [ds[int(i)] for i in idx]
    x = torch.stack([p[0] for p in pairs])
    y = torch.stack([p[1] for p in pairs]).numpy()
    return ReferenceBatch(to_uint8(x), y, f"real images: {how}")


def save_reference_npz(path: str | os.PathLike, batch: ReferenceBatch) -> Path:
    """Write ``batch`` in the ADM layout (``arr_0`` images, ``arr_1`` labels; plus ``mu``/``sigma`` if set)."""
    path = save_npz(path, batch.images, batch.labels)
    if batch.mu is not None:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        np.savez(path, **arrays, mu=batch.mu, sigma=batch.sigma)
    return path


def load_reference_npz(path: str | os.PathLike) -> ReferenceBatch:
    """Read a reference ``.npz``: images (``arr_0``) and/or Inception statistics (``mu``, ``sigma``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference batch not found: {path}")
    with np.load(path) as f:
        files = set(f.files)
        images = f["arr_0"] if "arr_0" in files else None
        labels = f["arr_1"] if "arr_1" in files else None
        mu = f["mu"] if "mu" in files else None
        sigma = f["sigma"] if "sigma" in files else None
    if images is None and mu is None:
        raise ValueError(f"{path} holds neither images (arr_0) nor statistics (mu, sigma)")
    if images is not None and (images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3):
        raise ValueError(f"{path}: arr_0 must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    what = (f"{len(images)} images" if images is not None else "no images") + (" + statistics" if mu is not None else "")
    return ReferenceBatch(images, labels, f"reference batch {path} ({what})", mu, sigma)
