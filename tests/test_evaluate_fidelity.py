"""Inception weights (missing / passed through), the ADM .npz route, rejection primitives, the ViT loader."""
import urllib.request

import numpy as np
import pytest
import torch

from dimr.evaluate import metrics as M
from dimr.evaluate.reference import ReferenceBatch, load_reference_npz, reference_batch, save_reference_npz
from dimr.evaluate.rejection import MissingWeightsError, class_probability, load_vit_classifier, reject
from dimr.sample import load_npz, save_npz


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to download fails the test loudly."""
    def boom(*a, **k):
        raise AssertionError(f"network access attempted: {a[:1]}")
    monkeypatch.setattr(urllib.request, "urlopen", boom)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", boom)
    monkeypatch.setattr(torch.hub, "download_url_to_file", boom)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from dimr.train import TrainConfig, train

    run = tmp_path_factory.mktemp("run")
    train(TrainConfig(preset="DiMR-T/3R", steps=1, batch_size=2, dataset_size=16, warmup_steps=1, log_every=1,
                      progress=False), run)
    return run


def test_missing_inception_weights_names_the_file_and_place(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(M.MissingWeightsError) as e:
        M.resolve_inception_weights()
    msg = str(e.value)
    assert M.INCEPTION_WEIGHTS_FILE in msg and str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    assert "--inception-weights" in msg
    with pytest.raises(M.MissingWeightsError, match="nope.pth"):
        M.inception_evaluator(tmp_path / "nope.pth")
    # present in torch-fidelity's cache location: found without being passed
    where = tmp_path / "torch" / "hub" / "checkpoints" / M.INCEPTION_WEIGHTS_FILE
    where.parent.mkdir(parents=True)
    where.write_bytes(b"fake")
    assert M.resolve_inception_weights() == where


def test_cli_stops_at_once_without_inception_weights(tiny_run, tmp_path, monkeypatch, capsys, no_network):
    from dimr.evaluate import cli

    def no_sampling(*a, **k):
        raise AssertionError("sampling started before the weights were checked")
    monkeypatch.setattr("dimr.sample.sample_images", no_sampling)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    out = tmp_path / "eval"
    rc = cli(["--checkpoint", str(tiny_run), "--inception-weights", str(tmp_path / "missing.pth"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and M.INCEPTION_WEIGHTS_FILE in err and "missing.pth" in err
    assert "Traceback" not in err and not out.exists()
    rc = cli(["--checkpoint", str(tiny_run), "--inception", "on", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and str(tmp_path / "torch" / "hub" / "checkpoints") in err and not out.exists()


def test_present_inception_path_is_passed_to_torch_fidelity(tmp_path, monkeypatch, no_network):
    import torch_fidelity

    fake = tmp_path / M.INCEPTION_WEIGHTS_FILE
    fake.write_bytes(b"not really weights")
    seen = {}

    def fake_calculate_metrics(**kw):
        seen.update(kw)
        return {torch_fidelity.KEY_METRIC_FID: 1.5, torch_fidelity.KEY_METRIC_ISC_MEAN: 2.0,
                torch_fidelity.KEY_METRIC_PRECISION: 0.5, torch_fidelity.KEY_METRIC_RECALL: 0.25}
    monkeypatch.setattr(torch_fidelity, "calculate_metrics", fake_calculate_metrics)
    ev = M.inception_evaluator(fake)
    u8 = np.zeros((4, 8, 8, 3), np.uint8)
    got = M.fidelity_metrics(u8, u8, ev, kid=False, progress=False)
    assert seen["feature_extractor_weights_path"] == str(fake)
    assert seen["feature_extractor"] == "inception-v3-compat"
    # FID, precision/recall on pool-3 features (as the ADM suite), IS on logits; no VGG download
    assert seen["feature_layer_fid"] == seen["feature_layer_prc"] == "2048" and seen["feature_layer_isc"] == "logits_unbiased"
    assert seen["cache"] is False and seen["datasets_download"] is False
    x = seen["input1"][0]
    assert x.dtype == torch.uint8 and x.shape == (3, 8, 8)
    assert got["fid_inception"].value == 1.5 and got["fid_inception"].label == "FID (Inception-V3, torch-fidelity)"
    assert set(got) == {"fid_inception", "is_inception", "precision_inception", "recall_inception"}


def test_npz_round_trip_and_reference_batches(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(5) % 3
    got_images, got_labels = load_npz(save_npz(tmp_path / "samples.npz", images, labels))
    assert np.array_equal(got_images, images) and np.array_equal(got_labels, labels)
    mu, sigma = rng.normal(size=4), np.eye(4)
    path = save_reference_npz(tmp_path / "reference.npz", ReferenceBatch(images, labels, "test", mu, sigma))
    with np.load(path) as f:  # the ADM layout: arr_0 images, arr_1 labels (+ statistics)
        assert f["arr_0"].dtype == np.uint8 and f["arr_0"].shape == (5, 16, 16, 3)
        assert set(f.files) == {"arr_0", "arr_1", "mu", "sigma"}
    back = load_reference_npz(path)
    assert np.array_equal(back.images, images) and np.array_equal(back.mu, mu) and np.array_equal(back.sigma, sigma)
    np.savez(tmp_path / "stats_only.npz", mu=mu, sigma=sigma)  # an ADM reference with statistics only
    stats = load_reference_npz(tmp_path / "stats_only.npz")
    assert stats.images is None and stats.mu.shape == (4,)
    with pytest.raises(FileNotFoundError):
        load_reference_npz(tmp_path / "absent.npz")


def test_reference_batch_is_the_training_data():
    from dimr.data import ShapesDataset
    from dimr.sample import to_uint8

    def images(ds):
        return to_uint8(torch.stack([ds[i][0] for i in range(10)]))

    ckpt = {"dataset": {"name": "shapes", "num_classes": 8, "image_shape": [3, 32, 32]},
            "train_config": {"dataset": "shapes", "dataset_size": 100, "seed": 3, "shapes_rotation": "upright"}}
    ref = reference_batch(ckpt, 10)
    assert np.array_equal(ref.images, images(ShapesDataset(num_items=100, seed=3)))
    assert list(ref.labels) == [i % 8 for i in range(10)]
    # a checkpoint from before the rotation option was trained on randomly turned shapes
    old = {**ckpt, "train_config": {k: v for k, v in ckpt["train_config"].items() if k != "shapes_rotation"}}
    turned = images(ShapesDataset(num_items=100, seed=3, rotation="random"))
    assert np.array_equal(reference_batch(old, 10).images, turned)
    assert not np.array_equal(turned, ref.images)
    with pytest.raises(ValueError, match="dataset has 100"):
        reference_batch(ckpt, 101)
    with pytest.raises(ValueError, match="reference-npz"):
        reference_batch({"dataset": {"name": "latents"}}, 4)


def test_rejection_primitives_follow_section_5_3():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.19, 0.8, 0.01]])
    p = class_probability(probs, [0, 0, 0])
    assert np.allclose(p, [0.7, 0.1, 0.19])
    assert list(reject(p)) == [False, True, True]
    assert list(reject(np.array([0.2]))) == [False]  # "below a threshold of 0.2": strictly below
    with pytest.raises(ValueError):
        class_probability(probs, [0, 3, 0])


def test_vit_classifier_needs_a_local_file_and_loads_one(tmp_path, no_network):
    import timm

    with pytest.raises(MissingWeightsError, match="--vit-weights"):
        load_vit_classifier(None)
    with pytest.raises(MissingWeightsError, match="absent.pth"):
        load_vit_classifier(tmp_path / "absent.pth", "vit_tiny_patch16_224")
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    torch.save(model.state_dict(), tmp_path / "vit.pth")
    vit = load_vit_classifier(tmp_path / "vit.pth", "vit_tiny_patch16_224")
    for k, v in model.state_dict().items():
        assert torch.equal(v, vit.model.state_dict()[k])
    _, probs = vit.predict(np.zeros((2, 32, 32, 3), np.uint8))
    assert probs.shape == (2, 1000) and torch.allclose(probs.sum(1), torch.ones(2))


def test_cli_rejects_a_vit_for_non_imagenet_labels(tiny_run, tmp_path, capsys):
    from dimr.evaluate import cli

    rc = cli(["--checkpoint", str(tiny_run), "--vit-weights", str(tmp_path / "v.pth"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "1000 ImageNet classes" in capsys.readouterr().err


def test_adm_suite_command_names_both_files():
    cmd = M.adm_suite_command("ref.npz", "samples.npz")
    assert "evaluator.py ref.npz samples.npz" in cmd
