"""ImageNet-style image folders (one sub-folder per class), preprocessed as ADM and U-ViT do.

Preprocessing (ADM's ``center_crop_arr``, which U-ViT and DiMR inherit for ImageNet): while the short
side is at least twice the target, halve the image with a BOX filter (cheap anti-aliasing for large
downscales); then resize with BICUBIC so the short side equals the target; then take the centre
square.  Optionally flip horizontally with probability ½ (the pixel-space training augmentation;
latent training instead stores both orientations, see :mod:`dimr.data.latents`).

Class indices follow the sorted sub-folder names; files within a class are sorted too, so item
``i`` is the same file on every machine.  (The scan is this module's, not torchvision's
``ImageFolder``: that one would take hidden folders such as ``.ipynb_checkpoints`` for classes and
fail on a class folder without images; torchvision does draw the sample grids and the blur of
:mod:`dimr.evaluate.degrade`.)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

__all__ = ["IMAGE_EXTENSIONS", "center_crop_arr", "scan_image_folder", "ImageFolderDataset"]

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")


def center_crop_arr(image: Image.Image, size: int) -> np.ndarray:
    """ADM's center crop: BOX-halve while ``min side ≥ 2·size``, BICUBIC to ``min side = size``, crop.

    ``image``: a PIL image of any size (converted to RGB). Returns uint8 [size, size, 3].
    """
    image = image.convert("RGB")
    while min(image.size) >= 2 * size:
        image = image.resize((image.width // 2, image.height // 2), resample=Image.BOX)
    scale = size / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), resample=Image.BICUBIC)
    arr = np.asarray(image)
    top, left = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
    return arr[top:top + size, left:left + size].copy()  # own, writable memory


def scan_image_folder(root: str | os.PathLike) -> tuple[list[str], list[tuple[Path, int]]]:
    """``(class names, [(file, class index), ...])`` of a class-per-sub-folder tree, all sorted.

    Images are found recursively inside each class folder. Raises ``FileNotFoundError`` /
    ``ValueError`` with a readable message when the folder is missing, has no class folders, or no images.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{root} has no class sub-folders; expected {root}/<class name>/<image files>")
    samples = []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        samples += [(p, index) for p in files]
    if not samples:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under the class folders of {root}")
    return classes, samples


class ImageFolderDataset(Dataset):
    """``dataset[i] = (image [3, size, size] in [−1, 1], label)`` from a class-per-folder tree.

    ``random_flip``: flip horizontally with probability ½ (drawn from torch's global generator, which
    the DataLoader seeds per worker).  ``label`` is a 0-dim long tensor; ``classes`` lists the folder
    names in label order and ``class_to_idx`` maps them back.
    """

    def __init__(self, root: str | os.PathLike, size: int = 64, random_flip: bool = False):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.root = Path(root)
        self.classes, self.samples = scan_image_folder(root)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.num_classes = len(self.classes)
        self.class_names = tuple(self.classes)
        self.size, self.random_flip = size, random_flip
        self.image_shape = (3, size, size)

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> np.ndarray:
        """The preprocessed (unflipped) image ``index`` as uint8 [size, size, 3]."""
        path, _ = self.samples[index]
        with Image.open(path) as image:
            return center_crop_arr(image, self.size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        arr = self.load(index)
        x = torch.from_numpy(arr).permute(2, 0, 1).float() / 127.5 - 1  # [3, size, size] in [−1, 1]
        if self.random_flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, torch.tensor(self.samples[index][1], dtype=torch.long)
