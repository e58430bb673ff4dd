"""Fashion-MNIST from local IDX files (Debian's ``dataset-fashion-mnist`` package ships them).

The IDX format (LeCun's MNIST page): a 4-byte magic number ``0, 0, dtype code, ndim``, then ``ndim``
big-endian uint32 dimensions, then the values, big-endian, row-major.  Files may be gzipped (detected
from their first two bytes, not their name).

Images are 28×28 grey; :class:`FashionMNIST` pads them with black to 32×32 by default (``pad=2``) so
they fit the power-of-two resolutions of the multi-branch networks, and maps pixels to [−1, 1].
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["DEFAULT_ROOT", "CLASS_NAMES", "SPLIT_FILES", "read_idx", "find_split_files", "FashionMNIST"]

#: Where ``apt-get install dataset-fashion-mnist`` puts the files (Debian/Ubuntu).
DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
#: Base names of the image and label files of each split (each may carry a ``.gz`` suffix).
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file (raw or gzipped) into an array of its declared shape and type.

    Returns native-endian data (uint8 for Fashion-MNIST: images [N, 28, 28], labels [N]).
    Raises ``ValueError`` on a bad magic number, an unknown type code, or a size mismatch.
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (magic number must start with two zero bytes)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX header declares shape {shape} ({expected} bytes of data) "
                         f"but the file holds {len(raw) - header}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def find_split_files(root: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """Paths of the (images, labels) IDX files of ``split`` under ``root``, gzipped or raw.

    Raises ``FileNotFoundError`` naming the expected files and how to get them.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {tuple(SPLIT_FILES)}, got {split!r}")
    root = Path(root)
    found = []
    for base in SPLIT_FILES[split]:
        candidates = [root / base, root / f"{base}.gz"]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            raise FileNotFoundError(
                f"Fashion-MNIST {split} split not found: expected {base} or {base}.gz in {root}. "
                f"Install Debian's package (apt-get install dataset-fashion-mnist, which puts the files "
                f"in {DEFAULT_ROOT}) or pass root= a folder holding the four IDX files.")
        found.append(hit)
    return found[0], found[1]


class FashionMNIST(Dataset):
    """Fashion-MNIST: ``dataset[i] = (image [C, 28+2·pad, 28+2·pad] in [−1, 1], label)``.

    ``channels`` is 1 (grey) or 3 (grey replicated, for RGB networks); ``pad`` black pixels are added on
    every side (default 2: 28 -> 32).  ``label`` is a 0-dim long tensor in [0, 10).
    The whole split is held in memory as uint8 (47 MB for train).
    """

    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES

    def __init__(self, root: str | os.PathLike = DEFAULT_ROOT, split: str = "train", pad: int = 2,
                 channels: int = 1):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        images_path, labels_path = find_split_files(root, split)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"inconsistent IDX files: images {images.shape}, labels {labels.shape}")
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.labels = labels.astype(np.int64)
        self.split, self.pad, self.channels = split, pad, channels
        side = images.shape[1] + 2 * pad
        self.image_shape = (channels, side, images.shape[2] + 2 * pad)
        self.size = side

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(self.images[index].astype(np.float32)) / 127.5 - 1  # [28, 28] in [−1, 1]
        if self.pad:
            x = torch.nn.functional.pad(x, (self.pad,) * 4, value=-1.0)  # black border
        x = x[None].expand(self.channels, -1, -1).contiguous()
        return x, torch.tensor(self.labels[index], dtype=torch.long)
