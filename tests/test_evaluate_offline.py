"""The offline evaluator end to end: classifier, torch-fidelity metrics, degradation, rejection, CLI.

One classifier (the default configuration, ≈ 20 s on 2 cores) is trained per module in a tmp dir.
"""
import json

import numpy as np
import pytest
import torch

from dimr.data import ShapesDataset
from dimr.evaluate.classifier import (ClassifierConfig, load_classifier, load_or_train_classifier, save_classifier,
                                      train_classifier)
from dimr.evaluate.degrade import degrade
from dimr.evaluate.distortion import (DISTORTION_THRESHOLD, calibrate_threshold, distortion_analysis,
                                     geometric_distortion, proxy_agreement)
from dimr.evaluate.metrics import classifier_evaluator, fid_against_statistics, fidelity_metrics
from dimr.evaluate.rejection import rejection_analysis, save_flagged_grid
from dimr.sample import load_npz, to_uint8


def _real(n: int, seed: int):
    ds = ShapesDataset(num_items=n, seed=seed)
    pairs = [ds[i] for i in range(n)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]).numpy()


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    path = tmp_path_factory.mktemp("clf") / "shapes.pt"
    return load_or_train_classifier(ClassifierConfig(), path=path, progress=False)


@pytest.fixture(scope="module")
def real96():
    return _real(96, seed=5)


@pytest.fixture(scope="module")
def reference96():
    x, _ = _real(96, seed=6)
    return to_uint8(x)


def test_classifier_is_accurate_on_heldout_real_shapes(classifier):
    assert classifier.heldout_accuracy > 0.95
    x, y = _real(400, seed=4242)  # a seed neither training nor the built-in held-out set uses
    _, probs = classifier.predict(to_uint8(x))
    assert (probs.argmax(1).numpy() == y).mean() > 0.95
    assert sum(p.numel() for p in classifier.model.parameters()) < 500_000


def test_classifier_file_round_trip_and_deterministic_training(classifier, tmp_path):
    again = load_classifier(classifier.path)
    for k, v in classifier.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k])
    tiny = ClassifierConfig(train_items=64, epochs=1)
    a, b = train_classifier(tiny, progress=False), train_classifier(tiny, progress=False)
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    save_classifier(a, tmp_path / "a.pt")
    assert load_or_train_classifier(tiny, path=tmp_path / "a.pt").heldout_accuracy == a.heldout_accuracy


def test_identical_sets_give_zero_fid_and_labelled_keys(classifier, real96):
    u8 = to_uint8(real96[0])
    m = fidelity_metrics(u8, u8, classifier_evaluator(classifier), progress=False)
    assert abs(m["fid_shapes_classifier"].value) < 1e-3
    assert m["precision_shapes_classifier"].value == 1.0 and m["recall_shapes_classifier"].value == 1.0
    assert set(m) == {f"{k}_shapes_classifier" for k in ("fid", "is", "is_std", "precision", "recall", "kid", "kid_std")}
    assert m["fid_shapes_classifier"].label == "FID (shapes classifier)"
    assert all("(shapes classifier)" in v.label for v in m.values())
    # IS of a balanced, confidently classified set of 8 classes is close to 8
    assert m["is_shapes_classifier"].value > 4


def test_fid_against_reference_statistics(classifier, real96, reference96):
    from dimr.evaluate.metrics import extract_features

    ev = classifier_evaluator(classifier)
    feats = extract_features(reference96, ev, progress=False).double().numpy()
    mu, sigma = feats.mean(0), np.cov(feats, rowvar=False)
    from_stats = fid_against_statistics(to_uint8(real96[0]), mu, sigma, ev, progress=False)
    from_images = fidelity_metrics(to_uint8(real96[0]), reference96, ev, isc=False, prc=False, kid=False,
                                   progress=False)["fid_shapes_classifier"]
    assert from_stats.value == pytest.approx(from_images.value, rel=1e-3, abs=1e-3)
    with pytest.raises(ValueError, match="dimension"):
        fid_against_statistics(reference96, mu[:10], sigma[:10, :10], ev, progress=False)


@pytest.mark.parametrize("kind,levels", [("blur", (0.0, 1.2, 2.0)), ("warp", (0.0, 1.5, 3.0))])
def test_degradation_raises_fid_and_geometric_distortion_monotonically(classifier, real96, reference96, kind, levels):
    x, y = real96
    ev = classifier_evaluator(classifier)
    fids, geo = [], []
    for s in levels:
        u8 = to_uint8(degrade(x, kind, s, seed=1))
        fids.append(fidelity_metrics(u8, reference96, ev, isc=False, prc=False, kid=False,
                                     progress=False)["fid_shapes_classifier"].value)
        geo.append(distortion_analysis(u8, y).score.mean())
    assert all(a < b for a, b in zip(fids, fids[1:])), fids
    assert all(a < b for a, b in zip(geo, geo[1:])), geo
    assert geo[0] < DISTORTION_THRESHOLD < geo[-1]


def test_rejection_flags_degraded_samples_more_than_real(classifier, real96, tmp_path):
    x, y = real96
    real = rejection_analysis(classifier, to_uint8(x), y)
    assert real.threshold == 0.2 and real.flagged_fraction <= 0.02
    assert save_flagged_grid(to_uint8(x), real, tmp_path / "none.png") is None or real.flagged.any()
    for kind, s in (("blur", 2.0), ("warp", 3.0)):
        u8 = to_uint8(degrade(x, kind, s, seed=1))
        bad = rejection_analysis(classifier, u8, y)
        assert bad.flagged_fraction > real.flagged_fraction + 0.2
        assert np.all(bad.flagged == (bad.p_class < 0.2))
        grid = save_flagged_grid(u8, bad, tmp_path / f"{kind}.png")
        assert grid is not None and grid.stat().st_size > 0
    # pooled over damage levels, lower p(class) goes with lower IoU (within one level it need not)
    u8 = np.concatenate([to_uint8(degrade(x, "warp", s, seed=1)) for s in (0.0, 1.5, 3.0)])
    ys = np.tile(y, 3)
    res, geo = rejection_analysis(classifier, u8, ys), distortion_analysis(u8, ys)
    agree = proxy_agreement(res.flagged, geo.distorted, res.p_class, geo.iou)
    assert agree["n"] == 288 and agree["n_flagged"] == int(res.flagged.sum())
    assert agree["spearman_p_class_iou"] > 0.1
    assert agree["precision"] == agree["distortion_rate_flagged"] > agree["distortion_rate_all"]


def test_geometric_threshold_rarely_calls_real_shapes_distorted(real96):
    x, y = real96
    assert distortion_analysis(to_uint8(x), y).rate == 0.0


def test_the_threshold_lies_above_the_residue_of_real_shapes():
    """What dimr.evaluate.distortion's docstring says of DISTORTION_THRESHOLD, measured: real shapes' 1 − IoU
    has its 99th percentile below the threshold, and at most about 1% of them count as distorted."""
    x, y = _real(400, seed=7)
    scores, _ = geometric_distortion(to_uint8(x), y)
    assert calibrate_threshold(scores, 0.99) < DISTORTION_THRESHOLD
    assert (scores > DISTORTION_THRESHOLD).mean() <= 0.01
    assert 0.0 < calibrate_threshold(scores, 0.5) < calibrate_threshold(scores, 0.99)  # a residue, not zero


def test_evaluate_cli_end_to_end(classifier, tmp_path, capsys):
    from dimr.evaluate import cli
    from dimr.train import TrainConfig, train

    run = tmp_path / "run"
    train(TrainConfig(preset="DiMR-T/3R", steps=2, batch_size=4, dataset_size=64, warmup_steps=1, log_every=1,
                      progress=False), run)
    out = tmp_path / "eval"
    rc = cli(["--checkpoint", str(run), "--num-samples", "16", "--steps", "3", "--batch-size", "16",
              "--classifier", str(classifier.path), "--out", str(out), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "FID (shapes classifier)" in printed and "Geometric distortion rate" in printed
    report = json.loads((out / "metrics.json").read_text())
    m = report["metrics"]
    for key in ("fid", "is", "precision", "recall", "kid", "flagged_fraction"):
        assert f"{key}_shapes_classifier" in m, key
        assert "(shapes classifier)" in m[f"{key}_shapes_classifier"]["label"]
        assert m[f"{key}_shapes_classifier"]["scale"].startswith("shapes 32×32, 16 samples")
    assert "fid" not in m and "fid_inception" not in m  # never plain FID; no Inception offline by default
    assert 0.0 <= m["geometric_distortion_rate"]["value"] <= 1.0
    scale = report["scale"]
    assert (scale["dataset"], scale["resolution"], scale["num_samples"], scale["sampler_steps"]) == ("shapes", 32, 16, 3)
    assert scale["hardware"] and scale["sampler"].startswith("DPM-Solver")
    assert "shapes-classifier" in report["evaluators"] and "inception" in report["skipped"]
    images, labels = load_npz(report["adm_suite"]["samples_npz"])
    ref, ref_labels = load_npz(report["adm_suite"]["reference_npz"])
    assert images.shape == ref.shape == (16, 32, 32, 3) and list(labels) == list(ref_labels) == [i % 8 for i in range(16)]
    assert report["geometric_distortion"]["proxy"]["n"] == 16
