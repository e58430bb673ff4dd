"""Fashion-MNIST: the IDX parser on files written here, and the real data where Debian installed it."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from dimr.data import build_dataset
from dimr.data.fashion_mnist import DEFAULT_ROOT, SPLIT_FILES, FashionMNIST, read_idx

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """An IDX file by the book: 0, 0, type code, ndim; big-endian uint32 dims; big-endian data."""
    header = bytes([0, 0, _CODES[array.dtype.type], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    a = (rng.normal(size=(3, 5, 7)) * 100).astype(dtype)
    # The gzip check looks at the bytes, not the name.
    out = read_idx(write_idx(tmp_path / "x-idx3-ubyte", a, gz=gz))
    assert out.shape == (3, 5, 7) and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, a)


def test_read_idx_rejects_bad_files(tmp_path):
    good = write_idx(tmp_path / "good", np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    raw = good.read_bytes()
    (tmp_path / "truncated").write_bytes(raw[:-1])
    (tmp_path / "magic").write_bytes(b"\x01" + raw[1:])
    (tmp_path / "code").write_bytes(raw[:2] + b"\x07" + raw[3:])
    for name, match in [("truncated", "declares shape"), ("magic", "not an IDX"), ("code", "type code")]:
        with pytest.raises(ValueError, match=match):
            read_idx(tmp_path / name)


def _tiny_root(tmp_path, n=6):
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 10:18, 5:9] = 255
    images[:, 0, 0] = np.arange(n)  # tell the items apart
    labels = (np.arange(n) * 3 % 10).astype(np.uint8)
    for split, (img_name, lab_name) in SPLIT_FILES.items():
        write_idx(tmp_path / f"{img_name}.gz", images, gz=True)
        write_idx(tmp_path / lab_name, labels)  # mixed raw and gzipped files are fine
    return images, labels


def test_dataset_on_tiny_files(tmp_path):
    images, labels = _tiny_root(tmp_path)
    ds = FashionMNIST(tmp_path, split="train")
    assert len(ds) == 6 and ds.num_classes == 10
    x, y = ds[4]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32 and int(y) == labels[4] and y.dtype == torch.long
    assert x[0, 12, 10] == 1 and x[0, 2, 2] == pytest.approx(4 / 127.5 - 1)  # pixel (0, 0) moved by pad 2
    assert (x[0, :2] == -1).all() and (x[0, :, -2:] == -1).all()  # black padding
    x3, _ = FashionMNIST(tmp_path, split="test", pad=0, channels=3)[4]
    assert x3.shape == (3, 28, 28) and torch.equal(x3[0], x3[2])
    assert torch.equal(x3[0], x[0, 2:30, 2:30])
    assert isinstance(build_dataset("fashion_mnist", root=tmp_path, split="test"), FashionMNIST)


def test_missing_files_name_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        FashionMNIST(tmp_path)
    with pytest.raises(ValueError):
        FashionMNIST(tmp_path, split="validation")


@pytest.mark.skipif(not (Path(DEFAULT_ROOT) / "t10k-labels-idx1-ubyte.gz").exists()
                    and not (Path(DEFAULT_ROOT) / "t10k-labels-idx1-ubyte").exists(),
                    reason=f"Fashion-MNIST not installed in {DEFAULT_ROOT} (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist():
    train = FashionMNIST()  # the default root is Debian's location
    test = FashionMNIST(split="test", channels=3)
    assert len(train) == 60_000 and len(test) == 10_000
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # the published order
    assert np.bincount(test.labels).tolist() == [1000] * 10
    # The published training-set pixel mean is 0.2860 (in [0, 1]).
    assert train.images.mean() / 255 == pytest.approx(0.2860, abs=5e-4)
    x, y = test[0]
    assert x.shape == (3, 32, 32) and -1 <= x.min() and x.max() <= 1 and 0 <= int(y) < 10
