"""Data: the offline procedural shapes (the default), Fashion-MNIST, ImageNet-style folders, SD-VAE latents.

Every dataset yields ``(x, label)`` with ``x`` a float tensor in [−1, 1] ([C, H, W]; for latents the
scaled latent ``z``) and ``label`` a 0-dim long tensor in ``[0, num_classes)``; each exposes
``num_classes``, ``class_names`` and ``image_shape``.  Labels are the data's own: the extra "null"
label of classifier-free guidance (index ``num_classes``) is the training loop's business.

:func:`build_dataset` picks one by name; ``"shapes"`` needs no files and is the default.
"""
from __future__ import annotations

import inspect

from torch.utils.data import Dataset

from .fashion_mnist import FashionMNIST, read_idx
from .imagenet import ImageFolderDataset, center_crop_arr
from .latents import SCALE_FACTOR, LatentDataset
from .shapes import (CLASS_NAMES, NUM_CLASSES, ShapeItem, ShapeParams, ShapesDataset, fit_template,
                     render_image, render_mask)

__all__ = [
    "DATASETS", "build_dataset",
    "ShapesDataset", "ShapeParams", "ShapeItem", "CLASS_NAMES", "NUM_CLASSES", "render_mask",
    "render_image", "fit_template",
    "FashionMNIST", "read_idx", "ImageFolderDataset", "center_crop_arr", "LatentDataset", "SCALE_FACTOR",
]

#: Dataset names accepted by :func:`build_dataset`, with the class each builds.
DATASETS = {
    "shapes": ShapesDataset,
    "fashion-mnist": FashionMNIST,
    "imagenet": ImageFolderDataset,
    "latents": LatentDataset,
}


def build_dataset(name: str = "shapes", **kw) -> Dataset:
    """Build a dataset by name, passing ``kw`` to its constructor.

    ``"shapes"``: :class:`ShapesDataset` (num_items, size, seed, palette, ...), no files needed;
    ``"fashion-mnist"``: :class:`FashionMNIST` (root, split, pad, channels);
    ``"imagenet"``: :class:`ImageFolderDataset` (root, size, random_flip);
    ``"latents"``: :class:`LatentDataset` (root, scale_factor).
    Names are case-insensitive; ``_`` and ``-`` are interchangeable.
    """
    key = name.lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    cls = DATASETS[key]
    signature = inspect.signature(cls)
    try:
        signature.bind(**kw)
    except TypeError as err:  # a misspelt keyword: say which dataset and what it accepts
        raise TypeError(f"build_dataset({name!r}): {err}; {cls.__name__} accepts: "
                        f"{', '.join(signature.parameters)}") from None
    return cls(**kw)
