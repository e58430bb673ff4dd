"""Checkpoint → sampler → images: the one path (:func:`dimr.sample.sampler_from_checkpoint`) and the CLI on it."""
import pytest
import torch

from dimr.checkpoint import CheckpointError, load_checkpoint
from dimr.diffusion.guidance import weight_from_scale
from dimr.sample import (SamplerConfig, checkpoint_context, cli, denoiser_from_checkpoint, even_labels, load_npz,
                         recipe_sampler, sample_images, sampler_from_checkpoint, to_uint8)


def test_recipe_sampler_takes_the_recipe_unless_told():
    ctx = {"steps": 12, "skip": "logSNR", "cfg_scale": 0.5}
    assert recipe_sampler(ctx) == SamplerConfig(steps=12, skip="logSNR", guidance=weight_from_scale(0.5))
    assert recipe_sampler(ctx, steps=None).steps == 12  # None means "the recipe's", as on the command lines
    with pytest.raises(ValueError, match="at least 1"):
        recipe_sampler(ctx, steps=0)
    given = recipe_sampler(ctx, steps=3, skip="time_uniform", guidance=1.0, order=2, method="multistep")
    assert given == SamplerConfig(steps=3, order=2, method="multistep", skip="time_uniform", guidance=1.0)


def test_sampler_draws_what_the_pieces_draw(tiny_checkpoint):
    sampler = sampler_from_checkpoint(tiny_checkpoint, device="cpu", steps=2)
    ckpt = load_checkpoint(tiny_checkpoint)
    assert sampler.device == torch.device("cpu") and sampler.decode is None and sampler.num_classes == 8
    assert sampler.settings == recipe_sampler(checkpoint_context(ckpt), steps=2)
    images = sampler.draw(8, seed=3, progress=False)
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    by_hand = sample_images(denoiser_from_checkpoint(ckpt), even_labels(8, 8), sampler.settings, seed=3, progress=False)
    assert torch.equal(images, by_hand)
    labels = torch.tensor([5, 5, 1])
    assert torch.equal(sampler.draw(labels=labels, seed=3, batch_size=2, progress=False),
                       sampler.draw(labels=labels, seed=3, batch_size=3, progress=False))  # batching changes nothing
    with pytest.raises(ValueError, match="n or labels"):
        sampler.draw()


def test_sample_cli_writes_what_the_sampler_draws(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "samples"
    rc = cli(["--checkpoint", str(tiny_checkpoint), "--out", str(out), "--num-samples", "8", "--steps", "2",
              "--seed", "3", "--device", "cpu", "--no-progress"])
    assert rc == 0 and "8 samples (steps=2" in capsys.readouterr().out
    images, labels = load_npz(out / "samples.npz")
    expected = sampler_from_checkpoint(tiny_checkpoint, device="cpu", steps=2).draw(8, seed=3, progress=False)
    assert (images == to_uint8(expected)).all() and list(labels) == list(range(8))
    assert (out / "grid.png").is_file()


def test_latent_model_without_vae_and_bad_device_are_refused(tiny_checkpoint, tmp_path, capsys):
    ckpt = load_checkpoint(tiny_checkpoint)
    ckpt["recipe"] = {**(ckpt.get("recipe") or {}), "latent": True}
    with pytest.raises(CheckpointError, match="--vae DIR"):
        sampler_from_checkpoint(ckpt, device="cpu")
    latent = tmp_path / "latent.pt"
    torch.save(ckpt, latent)
    assert cli(["--checkpoint", str(latent), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "--vae DIR" in capsys.readouterr().err
    assert cli(["--checkpoint", str(tiny_checkpoint), "--device", "nonsense", "--out", str(tmp_path / "o")]) == 2
    assert "bad device 'nonsense'" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_on_a_busy_cpu_the_sampler_takes_the_free_cores_and_says_so(tiny_checkpoint, monkeypatch, capsys, tmp_path):
    """The library's one path to a sampler decides the threads, so the evaluation notebook and `dimr evaluate`
    get what `dimr sample` gets (a notebook that only called the library once drew with every core, spinning)."""
    import dimr.device as D

    set_to = []
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(D, "busy_cores_elsewhere", lambda seconds=0.5: 1.0)
    monkeypatch.setattr(D.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(D.torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(D.torch, "set_num_threads", set_to.append)
    sampler = sampler_from_checkpoint(tiny_checkpoint, device="cpu", steps=2)
    assert set_to == [1] and sampler.threads == "1 of 2 cores free (other processes kept 1.0 busy at the start)"
    assert cli(["--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "s"), "--num-samples", "8", "--steps",
                "1", "--device", "cpu", "--no-progress"]) == 0
    assert "threads: 1 of 2 cores free" in capsys.readouterr().err
