"""SD-VAE latent moments: the encode-latents CLI on a tiny random VAE, and LatentDataset."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import dimr.data.latents as latents
from dimr.__main__ import main as dimr_main
from dimr.data import build_dataset
from dimr.data.imagenet import ImageFolderDataset
from dimr.data.latents import SCALE_FACTOR, LatentDataset, cli

diffusers = pytest.importorskip("diffusers")

N_IMAGES = 5


def _tiny_vae(symmetric: bool = False):
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(block_out_channels=(32,), layers_per_block=1, latent_channels=4,
                                  norm_num_groups=32, sample_size=32)
    if symmetric:  # left-right symmetric kernels make the encoder exactly flip-equivariant
        with torch.no_grad():
            for m in vae.modules():
                if isinstance(m, torch.nn.Conv2d):
                    m.weight.copy_((m.weight + m.weight.flip(-1)) / 2)
    return vae.eval()


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """A 5-image folder (2 classes), a tiny VAE, and the CLI's output (batch 2: a ragged last batch)."""
    base = tmp_path_factory.mktemp("latents")
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        cls = base / "images" / ("dog" if i < 3 else "cat")
        cls.mkdir(parents=True, exist_ok=True)
        # A left-right asymmetric image (gradient) plus noise, so flips are distinguishable.
        h, w = 36 + 4 * i, 48
        arr = (np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3)) * 0.6
               + rng.integers(0, 100, (h, w, 3))).astype(np.uint8)
        Image.fromarray(arr).save(cls / f"{i}.png")
    vae = _tiny_vae()
    vae.save_pretrained(base / "vae")
    rc = cli([str(base / "images"), str(base / "out"), "--vae", str(base / "vae"), "--resolution", "32",
              "--batch-size", "2", "--quiet"])
    assert rc == 0
    return base, vae


def test_layout(encoded):
    base, _ = encoded
    moments = np.load(base / "out" / "moments.npy", mmap_mode="r")
    labels = np.load(base / "out" / "labels.npy")
    meta = json.loads((base / "out" / "latents.json").read_text())
    assert moments.shape == (N_IMAGES, 2, 8, 32, 32) and moments.dtype == np.float32
    assert labels.tolist() == [0, 0, 1, 1, 1]  # "cat" < "dog"
    assert meta["classes"] == ["cat", "dog"] and meta["done"] == N_IMAGES and meta["num_items"] == 2 * N_IMAGES


def test_moments_are_the_encodings_of_each_image_and_its_flip(encoded):
    base, vae = encoded
    moments = torch.from_numpy(np.load(base / "out" / "moments.npy"))
    images = ImageFolderDataset(base / "images", size=32)
    x = torch.stack([images[i][0] for i in range(N_IMAGES)])
    with torch.no_grad():
        direct = vae.encode(x).latent_dist.parameters
        flipped = vae.encode(x.flip(-1)).latent_dist.parameters
    torch.testing.assert_close(moments[:, 0], direct, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(moments[:, 1], flipped, atol=1e-4, rtol=1e-4)
    assert (moments[:, 0] - moments[:, 1]).abs().mean() > 1e-2  # the two orientations differ


def test_flip_equivariant_vae_gives_mirrored_moments(encoded, tmp_path):
    base, _ = encoded
    _tiny_vae(symmetric=True).save_pretrained(tmp_path / "vae")
    assert dimr_main(["encode-latents", str(base / "images"), str(tmp_path / "out"), "--vae",
                      str(tmp_path / "vae"), "--resolution", "32", "--quiet"]) == 0
    m = torch.from_numpy(np.load(tmp_path / "out" / "moments.npy"))
    torch.testing.assert_close(m[:, 1], m[:, 0].flip(-1), atol=1e-4, rtol=1e-4)
    assert (m[:, 1] - m[:, 0]).abs().mean() > 1e-2


def test_latent_dataset_samples_from_the_moments(encoded):
    base, _ = encoded
    ds = LatentDataset(base / "out")
    assert len(ds) == 2 * N_IMAGES and ds.latent_shape == (4, 32, 32) and ds.num_classes == 2
    assert [int(ds[k][1]) for k in range(len(ds))] == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    torch.manual_seed(0)
    m = ds.item_moments(7)
    mean, std = m[:4], torch.exp(0.5 * m[4:])
    draws = torch.stack([ds[7][0] for _ in range(64)])           # [64, 4, 32, 32]
    assert draws.shape == (64, 4, 32, 32) and not torch.equal(draws[0], draws[1])
    eps = (draws / SCALE_FACTOR - mean) / std                     # must be standard normal
    assert eps.mean().abs() < 0.01 and (eps.std() - 1).abs() < 0.01
    assert isinstance(build_dataset("latents", root=base / "out"), LatentDataset)


def test_scale_factor(encoded, tmp_path):
    base, _ = encoded
    out = tmp_path / "out"
    shutil.copytree(base / "out", out)
    moments = np.load(out / "moments.npy", mmap_mode="r+")
    moments[:, :, 4:] = -30.0  # (almost) zero variance: z is the scaled mean
    moments.flush()
    del moments
    ds = LatentDataset(out)
    m = ds.item_moments(3)
    torch.testing.assert_close(ds[3][0], SCALE_FACTOR * m[:4], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(LatentDataset(out, scale_factor=1.0)[3][0], m[:4], atol=1e-6, rtol=1e-5)
    moments = np.load(out / "moments.npy", mmap_mode="r+")
    moments[:, :, 4:] = 2 * np.log(2.0)  # std 2
    moments.flush()
    del moments
    noise = LatentDataset(out)[3][0] - SCALE_FACTOR * m[:4]
    assert noise.std() == pytest.approx(2 * SCALE_FACTOR, rel=0.03)


def test_resume_and_overwrite(encoded, tmp_path):
    base, _ = encoded
    out = tmp_path / "out"
    shutil.copytree(base / "out", out)
    reference = np.load(out / "moments.npy")
    # Simulate an interruption after 2 images: later rows lost.
    meta = json.loads((out / "latents.json").read_text())
    meta["done"] = 2
    (out / "latents.json").write_text(json.dumps(meta))
    moments = np.load(out / "moments.npy", mmap_mode="r+")
    moments[2:] = 0
    moments.flush()
    del moments
    with pytest.raises(ValueError, match="incomplete"):
        LatentDataset(out)
    args = [str(base / "images"), str(out), "--vae", str(base / "vae"), "--resolution", "32", "--quiet"]
    assert cli(args) == 0
    np.testing.assert_allclose(np.load(out / "moments.npy"), reference, atol=1e-5)
    assert json.loads((out / "latents.json").read_text())["done"] == N_IMAGES
    # Different inputs are refused unless --overwrite.
    other = args[:4] + ["--resolution", "16", "--quiet"]
    assert cli(other) == 2
    assert cli(other[:-1] + ["--dtype", "float16", "--overwrite", "--quiet"]) == 0
    m16 = np.load(out / "moments.npy")
    assert m16.dtype == np.float16 and m16.shape == (N_IMAGES, 2, 8, 16, 16)


def test_clear_errors(encoded, tmp_path, capsys):
    base, _ = encoded
    rc = cli([str(base / "images"), str(tmp_path / "o"), "--vae", str(tmp_path / "no-vae"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "no VAE" in err and "Traceback" not in err
    rc = cli([str(tmp_path / "no-images"), str(tmp_path / "o"), "--vae", str(base / "vae"), "--quiet"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="encode-latents"):
        LatentDataset(tmp_path)
    assert latents.SCALE_FACTOR == 0.18215
