"""ImageNet-style folders: ADM's center crop, class mapping, flips, errors."""
import numpy as np
import pytest
import torch
from PIL import Image

from dimr.data import build_dataset
from dimr.data.imagenet import ImageFolderDataset, center_crop_arr


def test_center_crop_box_halves_large_images():
    # 256 -> 128 -> 64 by BOX halving (min side ≥ 2·64 twice), then no resize: 4×4 block means.
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    out = center_crop_arr(Image.fromarray(arr), 64)
    block_mean = arr.reshape(64, 4, 64, 4, 3).astype(np.float64).mean(axis=(1, 3))
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    # PIL's BOX rounds each 2×2 mean up by < 1 grey level, twice; a direct BICUBIC resize is ~30 off.
    assert np.abs(out - block_mean).max() <= 2.0


@pytest.mark.parametrize("wide", [True, False])
def test_center_crop_keeps_the_centre(wide):
    # Left/top half red, right/bottom half blue: the centre crop keeps half of each.
    h, w = (80, 200) if wide else (200, 80)
    arr = np.zeros((h, w, 3), np.uint8)
    if wide:
        arr[:, : w // 2, 0] = 255
        arr[:, w // 2:, 2] = 255
    else:
        arr[: h // 2, :, 0] = 255
        arr[h // 2:, :, 2] = 255
    out = center_crop_arr(Image.fromarray(arr), 32)
    if not wide:
        out = out.transpose(1, 0, 2)
    assert out.shape == (32, 32, 3)
    assert (out[:, :14, 0] > 240).all() and (out[:, :14, 2] < 15).all()
    assert (out[:, 18:, 2] > 240).all() and (out[:, 18:, 0] < 15).all()


def test_center_crop_upscales_small_images_and_converts_to_rgb():
    grey = Image.fromarray(np.full((20, 24), 100, np.uint8), mode="L")
    out = center_crop_arr(grey, 32)
    assert out.shape == (32, 32, 3) and np.abs(out.astype(int) - 100).max() <= 1


def _make_folder(root, sizes=((40, 50), (64, 30), (33, 33))):
    rng = np.random.default_rng(1)
    for cls in ("zebra", "apple", "mango"):  # not in sorted order on purpose
        (root / cls).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i}.{'png' if i % 2 else 'jpg'}")
    (root / "apple" / "notes.txt").write_text("not an image")
    return root


def test_folder_dataset(tmp_path):
    root = _make_folder(tmp_path / "imgs")
    ds = ImageFolderDataset(root, size=32)
    assert ds.classes == ["apple", "mango", "zebra"] and ds.class_to_idx["zebra"] == 2
    assert len(ds) == 9 and ds.num_classes == 3
    labels = [int(ds[i][1]) for i in range(9)]
    assert labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    x, y = ds[4]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.long
    assert -1 <= x.min() and x.max() <= 1 and x.std() > 0.3
    expected = torch.from_numpy(center_crop_arr(Image.open(ds.samples[4][0]), 32)).permute(2, 0, 1) / 127.5 - 1
    assert torch.allclose(x, expected.float())
    assert torch.equal(ds[4][0], x)  # no augmentation: deterministic
    assert isinstance(build_dataset("imagenet", root=root, size=16), ImageFolderDataset)


def test_random_flip(tmp_path):
    ds = ImageFolderDataset(_make_folder(tmp_path / "imgs"), size=32, random_flip=True)
    plain = torch.from_numpy(ds.load(1)).permute(2, 0, 1).float() / 127.5 - 1
    torch.manual_seed(0)
    seen = {"plain": 0, "flipped": 0}
    for _ in range(40):
        x = ds[1][0]
        if torch.equal(x, plain):
            seen["plain"] += 1
        else:
            assert torch.equal(x, plain.flip(-1))
            seen["flipped"] += 1
    assert seen["plain"] >= 8 and seen["flipped"] >= 8


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataset(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    with pytest.raises(ValueError, match="class sub-folders"):
        ImageFolderDataset(tmp_path / "flat")
    (tmp_path / "flat" / "cls").mkdir()
    with pytest.raises(ValueError, match="no images"):
        ImageFolderDataset(tmp_path / "flat")
