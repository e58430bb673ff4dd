"""Precomputed SD-VAE latent moments, as the official latent pipeline trains on them.

The official ImageNet-256 models never see pixels during training: every training image *and its
horizontal flip* is encoded once by the Stable-Diffusion VAE (``sd-vae-ft-ema``) and the encoder's
output *moments* are stored — the mean and log-variance of the diagonal Gaussian posterior, 2·4
channels at 1/8 resolution.  Every training step then draws a fresh ``z = mean + exp(½·logvar)·ε`` and
multiplies it by the scale factor 0.18215 (docs/official-code.md §4, "Latent data": datasets.py:168-181,
train.py:193, autoencoder.py:442-448).  Both orientations are separate items, so the dataset has 2·N items.

On-disk layout written by ``python -m dimr encode-latents`` (one folder):

- ``moments.npy``  [N, 2, 2C, h, w] float32 (or float16): ``moments[i, 0]`` encodes image ``i``,
  ``moments[i, 1]`` its horizontal flip; along axis 2 the first C channels are the mean, the last C
  the log-variance (diffusers' ``latent_dist.parameters``, unclamped).  A plain ``.npy`` file, opened
  memory-mapped, so the dataset costs no RAM and many workers share the page cache.
- ``labels.npy``  [N] int64: class index (sorted class-folder names, as :mod:`dimr.data.imagenet`).
- ``latents.json``: metadata (classes, resolution, VAE, shapes) and ``done``, the number of images
  already written; an interrupted run resumes from there.

Nothing is downloaded: the VAE is read from a local diffusers folder (``config.json`` plus weights).
"""
from __future__ import annotations

import os
import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from ..cli import parser
from ..device import pick_device
from .imagenet import ImageFolderDataset

__all__ = ["SCALE_FACTOR", "FORMAT", "load_vae", "encode_moments", "encode_folder", "sample_latent",
           "LatentDataset", "cli"]

#: Stable Diffusion's latent scale factor (the official ``scale_factor``), so that z has roughly unit std.
SCALE_FACTOR = 0.18215
FORMAT = "dimr-latent-moments-v1"
_META, _MOMENTS, _LABELS = "latents.json", "moments.npy", "labels.npy"


def _hub_offline() -> None:
    """Hugging Face hub offline for this process, set where a VAE is loaded (importing dimr leaves the
    environment alone). huggingface_hub reads ``HF_HUB_OFFLINE`` once, at its import: set before that, a
    missing file is an immediate error instead of seconds of retries against the network; if the hub is
    already imported, its constant is set too. A user's explicit ``HF_HUB_OFFLINE`` is kept."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and os.environ["HF_HUB_OFFLINE"].upper() in ("1", "ON", "YES", "TRUE"):
        constants.HF_HUB_OFFLINE = True


def load_vae(vae_dir: str | os.PathLike, device: str | torch.device = "cpu"):
    """Load a diffusers ``AutoencoderKL`` from a local folder, in eval mode on ``device``.

    Raises ``FileNotFoundError`` with a readable message when the folder or its ``config.json`` is absent.
    """
    vae_dir = Path(vae_dir)
    if not (vae_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"no VAE at {vae_dir}: expected a diffusers AutoencoderKL folder (config.json + weights), "
            f"e.g. stabilityai/sd-vae-ft-ema saved with save_pretrained; nothing is downloaded at run time")
    _hub_offline()
    from diffusers import AutoencoderKL

    try:
        vae = AutoencoderKL.from_pretrained(vae_dir, local_files_only=True, low_cpu_mem_usage=False)
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"could not load the VAE in {vae_dir}: {err}") from err
    return vae.to(device).eval().requires_grad_(False)


@torch.no_grad()
def encode_moments(vae, images: torch.Tensor) -> torch.Tensor:
    """Posterior moments of a batch: images [B, 3, H, W] in [−1, 1] -> [B, 2C, H/f, W/f] (mean ‖ logvar)."""
    return vae.encode(images).latent_dist.parameters


def sample_latent(moments: torch.Tensor, scale_factor: float = SCALE_FACTOR,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``scale_factor · (mean + exp(½·logvar)·ε)``, ε ~ N(0, I), from moments [..., 2C, h, w].

    Returns [..., C, h, w].  logvar is clamped to [−30, 20] as the VAE's own posterior does.
    """
    mean, logvar = moments.chunk(2, dim=-3)
    std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return scale_factor * (mean + std * noise)


def _file_list_digest(dataset: ImageFolderDataset) -> str:
    h = hashlib.sha1()
    for path, label in dataset.samples:
        h.update(f"{path.relative_to(dataset.root).as_posix()}\t{label}\n".encode())
    return h.hexdigest()


def _write_meta(out: Path, meta: dict) -> None:
    tmp = out / (_META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, out / _META)  # atomic: a crash never leaves a half-written progress record


def _open_output(out: Path, meta: dict, dataset, overwrite: bool) -> tuple[np.ndarray, int]:
    """The moments file to write into and how many images it already holds: a new one (with the labels and
    ``meta``), or the one an interrupted run of the same inputs left; other inputs are refused."""
    done = 0
    old_meta = out / _META
    if old_meta.is_file() and not overwrite:
        old = json.loads(old_meta.read_text())
        inputs = ("format", "num_images", "resolution", "moments_shape", "dtype", "files_sha1")
        if any(old.get(k) != meta[k] for k in inputs):
            raise ValueError(f"{out} already holds latents of different inputs (images, resolution, VAE "
                             f"output or dtype differ); pass --overwrite to replace them")
        done = int(old.get("done", 0))
        meta["done"] = done
    if done == 0:
        moments = np.lib.format.open_memmap(out / _MOMENTS, mode="w+", dtype=meta["dtype"],
                                              shape=tuple(meta["moments_shape"]))
        labels = np.array([label for _, label in dataset.samples], dtype=np.int64)
        np.save(out / _LABELS, labels)
        _write_meta(out, meta)
    else:
        moments = np.load(out / _MOMENTS, mmap_mode="r+")
    return moments, done


def encode_folder(images: str | os.PathLike, out: str | os.PathLike, vae_dir: str | os.PathLike,
                  resolution: int = 256, batch_size: int = 32, device: str = "auto", num_workers: int = 0,
                  dtype: str = "float32", overwrite: bool = False, progress: bool = True) -> Path:
    """Encode every image of a class-per-folder tree and its horizontal flip into ``out``.

    Images are center-cropped to ``resolution`` (ADM's ``center_crop_arr``) and mapped to [−1, 1]; the
    on-disk layout is in the module docstring.  Resumes an interrupted run with the same inputs;
    ``overwrite`` starts afresh.  Returns ``out``.
    """
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    device = pick_device(device)  # ValueError for a bad name or an absent GPU
    dataset = ImageFolderDataset(images, size=resolution, random_flip=False)
    vae = load_vae(vae_dir, device)
    n = len(dataset)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    probe = encode_moments(vae, torch.zeros(1, 3, resolution, resolution, device=device))
    shape = [n, 2, *probe.shape[1:]]
    meta = {
        "format": FORMAT, "num_images": n, "num_items": 2 * n, "resolution": resolution,
        "moments_shape": shape, "dtype": dtype, "classes": dataset.classes,
        "files_sha1": _file_list_digest(dataset), "vae": str(Path(vae_dir).resolve()),
        "vae_scaling_factor": float(getattr(vae.config, "scaling_factor", SCALE_FACTOR)),
        "layout": "moments[i, v] = concat(mean, logvar) of image i (v=0) or its horizontal flip (v=1)",
        "done": 0,
    }
    moments, done = _open_output(out, meta, dataset, overwrite)

    if done < n:
        loader = DataLoader(Subset(dataset, range(done, n)), batch_size=batch_size, shuffle=False,
                            num_workers=num_workers)
        with tqdm(total=n, initial=done, desc="encode-latents", unit="img", disable=not progress) as bar:
            for x, _ in loader:
                x = x.to(device)
                b = len(x)
                m = encode_moments(vae, torch.cat([x, x.flip(-1)]))        # [2B, 2C, h, w]
                m = m.float().cpu().numpy().reshape(2, b, *m.shape[1:]).swapaxes(0, 1)
                moments[done:done + b] = m                                  # [B, 2, 2C, h, w]
                moments.flush()
                done += b
                meta["done"] = done
                _write_meta(out, meta)
                bar.update(b)
    elif progress:
        print(f"encode-latents: {out} is already complete ({n} images, {2 * n} items)")
    del moments
    return out


class LatentDataset(Dataset):
    """Training items from an ``encode-latents`` folder: ``dataset[k] = (z [C, h, w], label)``.

    Item ``k`` is image ``k // 2`` in orientation ``k % 2`` (0: as stored, 1: horizontally flipped), so
    the dataset has 2·N items.  Each access draws a fresh ``z = scale_factor·(mean + exp(½·logvar)·ε)``
    with torch's global generator (seeded per DataLoader worker).
    """

    def __init__(self, root: str | os.PathLike, scale_factor: float = SCALE_FACTOR):
        root = Path(root)
        meta_path = root / _META
        if not meta_path.is_file():
            raise FileNotFoundError(f"no latents in {root} (missing {_META}); create them with "
                                    f"python -m dimr encode-latents IMAGES {root} --vae VAE_DIR")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path} is not a {FORMAT} file")
        if meta["done"] != meta["num_images"]:
            raise ValueError(f"latents in {root} are incomplete ({meta['done']}/{meta['num_images']} "
                             f"images); rerun encode-latents with the same arguments to resume")
        self.root, self.meta, self.scale_factor = root, meta, scale_factor
        self.moments = np.load(root / _MOMENTS, mmap_mode="r")   # [N, 2, 2C, h, w]
        self.labels = np.load(root / _LABELS)                     # [N]
        if self.moments.shape[0] != len(self.labels):
            raise ValueError(f"{root}: {self.moments.shape[0]} moments but {len(self.labels)} labels")
        self.class_names = tuple(meta["classes"])
        self.num_classes = len(self.class_names)
        c2, h, w = self.moments.shape[2:]
        self.latent_shape = (c2 // 2, h, w)
        self.image_shape = self.latent_shape

    def __len__(self) -> int:
        return 2 * len(self.labels)

    def item_moments(self, index: int) -> torch.Tensor:
        """The stored moments [2C, h, w] (float32) of item ``index``."""
        image, flip = divmod(int(index), 2)
        if not 0 <= image < len(self.labels):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return torch.from_numpy(np.array(self.moments[image, flip], dtype=np.float32))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = sample_latent(self.item_moments(index), self.scale_factor)
        return z, torch.tensor(self.labels[int(index) // 2], dtype=torch.long)


def _parser() -> argparse.ArgumentParser:
    p = parser("encode-latents", "Encode a class-per-folder image tree and its horizontal flips to SD-VAE latent "
                                 "moments (mean and logvar), resumably, for LatentDataset.")
    p.add_argument("images", help="image folder: IMAGES/<class>/<files>")
    p.add_argument("out", help="output folder (moments.npy, labels.npy, latents.json)")
    p.add_argument("--vae", required=True, help="local diffusers AutoencoderKL folder (e.g. sd-vae-ft-ema)")
    p.add_argument("--resolution", type=int, default=256, help="center-crop size in pixels")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (each also flipped)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader workers decoding images")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="storage dtype")
    p.add_argument("--overwrite", action="store_true", help="discard existing latents in OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def cli(argv: list[str]) -> int:
    """``python -m dimr encode-latents IMAGES OUT --vae DIR [...]``: see :func:`encode_folder`."""
    args = _parser().parse_args(argv)
    try:
        out = encode_folder(args.images, args.out, args.vae, resolution=args.resolution,
                            batch_size=args.batch_size, device=args.device, num_workers=args.num_workers,
                            dtype=args.dtype, overwrite=args.overwrite, progress=not args.quiet)
    except (FileNotFoundError, ValueError) as err:
        print(f"encode-latents: error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"encode-latents: wrote {out}")
    return 0
