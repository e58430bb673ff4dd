"""``dimr evaluate``'s phases, called one by one on a tiny checkpoint, give what the composition gives.

A one-step model and a one-epoch classifier (seconds on 2 cores): the numbers mean nothing, the wiring
between the phases is what is tested."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from dimr.evaluate import report as R
from dimr.evaluate.classifier import ClassifierConfig, save_classifier, train_classifier


@pytest.fixture(scope="module")
def quick_classifier(tmp_path_factory):
    clf = train_classifier(ClassifierConfig(train_items=256, epochs=1), progress=False)
    return save_classifier(clf, tmp_path_factory.mktemp("clf") / "shapes-quick.pt")


@pytest.fixture
def config(tiny_checkpoint, quick_classifier, tmp_path):
    return R.EvaluateConfig(checkpoint=str(tiny_checkpoint), num_samples=16, steps=2, batch_size=16,
                            classifier=str(quick_classifier), out=str(tmp_path / "phases"), device="cpu",
                            progress=False)


def _portable(report: dict, out) -> str:
    """The record without what differs between two runs of the same evaluation: times, the folder and the
    threads line, which carries how busy the machine measured at each start (another process may come or go)."""
    report = {k: v for k, v in report.items() if k not in ("timings_s", "config")}
    report["scale"] = {k: v for k, v in report["scale"].items() if k != "threads"}
    return json.dumps(report, sort_keys=True).replace(str(out), "OUT")


def test_phases_one_by_one(config, tmp_path):
    inputs = R.load_inputs(config)
    assert (inputs.dataset, inputs.device, inputs.out) == ("shapes", torch.device("cpu"), tmp_path / "phases")
    assert inputs.classifier is not None and inputs.inception is None and inputs.vit is None
    assert inputs.reference is None and list(inputs.timings) == ["classifier_s"]
    assert inputs.sampler.settings.steps == 2 and inputs.sampler.decode is None

    samples = R.draw_samples(inputs)
    assert samples.images.shape == (16, 32, 32, 3) and samples.images.dtype == np.uint8
    assert list(samples.labels) == [i % 8 for i in range(16)]
    assert samples.npz == inputs.out / "samples.npz" and samples.grid.is_file()

    reference = R.prepare_reference(inputs)
    assert reference.batch.images.shape == (16, 32, 32, 3) and reference.npz == inputs.out / "reference.npz"
    scale = R.scale_summary(inputs, samples, reference)
    w = inputs.sampler.settings.guidance
    assert scale == f"shapes 32×32, 16 samples vs 16, 2 DPM-Solver steps, w={w:g}, CPU"

    fidelity = R.measure_fidelity(inputs, samples, reference, scale)
    assert {f"{k}_shapes_classifier" for k in ("fid", "is", "precision", "recall", "kid")} <= set(fidelity.metrics)
    assert all(m["scale"] == scale for m in fidelity.metrics.values()) and "shapes-classifier" in fidelity.evaluators

    rejection = R.measure_rejection(inputs, samples, scale)
    assert list(rejection.results) == ["offline"] and list(rejection.section) == ["shapes_classifier"]
    assert len(rejection.results["offline"].p_class) == 16
    assert set(rejection.metrics) == {"flagged_fraction_shapes_classifier", "accuracy_shapes_classifier"}

    geometry = R.measure_geometry(inputs, samples, reference, rejection, scale)
    assert 0.0 <= geometry.metrics["geometric_distortion_rate"]["value"] <= 1.0
    assert geometry.section["proxy"]["n"] == 16 and geometry.section["real_n"] == 16
    with np.load(inputs.out / "per_sample.npz") as f:
        assert f["one_minus_iou"].shape == f["p_class"].shape == (16,)

    report = R.assemble_report(inputs, samples, reference, scale, fidelity, rejection, geometry, {"total_s": 0.0})
    assert list(report["metrics"]) == list(fidelity.metrics) + list(rejection.metrics) + list(geometry.metrics)
    assert report["rejection"] is rejection.section and report["geometric_distortion"] is geometry.section
    assert report["scale"]["threads"] == inputs.sampler.threads and inputs.sampler.threads  # how many, and why

    # evaluate_checkpoint is exactly these phases in a row
    whole_out = tmp_path / "whole"
    whole = R.evaluate_checkpoint(dataclasses.replace(config, out=str(whole_out)))
    assert _portable(whole, whole_out) == _portable(report, inputs.out)
    assert list(whole["timings_s"]) == ["classifier_s", "sampling_s", "reference_s", "fidelity_s", "rejection_s",
                                        "geometric_s", "total_s"]
    assert json.loads((whole_out / "metrics.json").read_text())["metrics"] == whole["metrics"]


def test_load_inputs_refuses_bad_inputs_before_any_work(config, tmp_path):
    with pytest.raises(ValueError, match="at least 2"):
        R.load_inputs(dataclasses.replace(config, num_samples=1))
    with pytest.raises(ValueError, match="contradicts"):
        R.load_inputs(dataclasses.replace(config, inception="off", inception_weights="x.pth"))
    with pytest.raises(ValueError, match="1000 ImageNet classes"):
        R.load_inputs(dataclasses.replace(config, vit_weights="v.pth"))
    with pytest.raises(ValueError, match="bad device"):
        R.load_inputs(dataclasses.replace(config, device="nonsense"))
    assert not (tmp_path / "phases").exists()  # nothing written
