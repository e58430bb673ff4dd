"""The claims study's statistics and verdicts, on synthetic records (dimr.reproduction.study)."""
import json
import math

import pytest

from dimr.reproduction import study
from dimr.reproduction.plan import build_plan
from dimr.bookkeeping import snapshot_name

PLAN = build_plan()


@pytest.mark.parametrize("treatment, higher, word", [
    ({0: 0.60, 1: 0.71, 2: 0.52}, True, "supported"),  # every seed better by 0.10 ± 0.01
    ({0: 0.40, 1: 0.49, 2: 0.30}, True, "contradicted"),
    ({0: 0.55, 1: 0.56, 2: 0.47}, True, "inconclusive"),  # +0.05, −0.05, +0.05
    ({0: 0.40, 1: 0.49, 2: 0.30}, False, "supported"),  # lower is better: the same numbers now support
])
def test_paired_verdicts_in_the_papers_direction(treatment, higher, word):
    baseline = {0: 0.50, 1: 0.61, 2: 0.42}
    diff, verdict = study.paired_verdict(baseline, treatment, higher)
    assert verdict == word and diff.n == 3


def test_pairing_uses_only_shared_seeds_and_needs_two():
    diff, word = study.paired_verdict({0: 1.0, 1: 2.0}, {1: 3.0, 2: 9.0}, True)
    assert word == "not enough seeds" and diff.n == 1 and diff.mean == pytest.approx(1.0)
    # paired, not pooled: a large spread between seeds does not hide a consistent difference
    _, word = study.paired_verdict({0: 0.1, 1: 0.5, 2: 0.9}, {0: 0.12, 1: 0.52, 2: 0.93}, True)
    assert word == "supported"


def _write(root, exp, profile, metrics, parameters, commit="c0"):
    folder = root / exp / profile
    folder.mkdir(parents=True, exist_ok=True)
    rec = {"status": "complete", "experiment": exp, "run": profile, "profile": profile, "parameters": parameters,
           "git": {"commit": commit, "dirty": False},
           "metrics": {k: {"value": v, "label": k, "scale": "synthetic"} for k, v in metrics.items()}}
    (folder / "run.json").write_text(json.dumps(rec))


def _record(root, slug, seed, metrics, profile="small", steps=study.STUDY_STEPS, **changed):
    """A synthetic evaluation record with the parameters the plan gives it (``changed`` overrides them)."""
    exp = study.experiment_names(slug, seed, steps)[1]
    params = {**PLAN[exp].parameters["small"], **changed}
    _write(root, exp, profile, metrics, params)


def _training(root, slug, seed, metrics=None, commit="c0", **changed):
    exp = study.experiment_names(slug, seed)[0]
    _write(root, exp, "small", metrics or {"steps": 1.0}, {**PLAN[exp].parameters["small"], **changed}, commit)


def test_judge_reads_records_and_reports_progress(tmp_path):
    for seed, (a, b) in enumerate([(0.30, 0.20), (0.35, 0.22), (0.28, 0.19)]):
        _record(tmp_path, "row5", seed, {"geometric_distortion_rate_coarse": a, "accuracy_shapes_classifier": 0.5,
                                         "fid_shapes_classifier": 10.0 + seed})
        _record(tmp_path, "row6", seed, {"geometric_distortion_rate_coarse": b, "accuracy_shapes_classifier": 0.5,
                                         "fid_shapes_classifier": 12.0 + seed})
    _record(tmp_path, "row6", 0, {"accuracy_shapes_classifier": 0.9}, profile="smoke")  # other profiles are ignored
    records = study.collect(tmp_path)
    assert set(records) == {(c, s) for c in ("row5", "row6") for s in range(3)}
    claim = next(c for c in study.CLAIMS if c.key == "C3")
    verdicts = {v.metric: v for v in study.judge(claim, records)}
    assert verdicts["distortion_rate"].verdict == "supported"  # lower in every seed
    assert verdicts["fid"].verdict == "contradicted"  # higher FID in every seed, by 2
    assert verdicts["fid"].difference.mean == pytest.approx(-2.0)
    assert verdicts["accuracy"].verdict == "inconclusive"  # identical: the interval is [0, 0]
    assert verdicts["distortion_mean"].verdict == "not enough seeds"  # not recorded at all
    done, left = study.progress(records)
    assert len(done) == 6 and len(done) + len(left) == sum(len(seeds) for _, _, seeds in study.arms().values())


def test_every_configuration_seed_and_length_is_planned_at_the_small_profile():
    for slug, conf in study.CONFIGS.items():
        for seed in conf.seeds:
            train_exp, _ = study.experiment_names(slug, seed)
            params = PLAN[train_exp].parameters["small"]
            assert params["preset"] == conf.preset and params["seed"] == seed and params["dataset"] == conf.dataset
            assert params["steps"] == conf.train_steps(seed) and params["batch_size"] is None  # the recipe's batch
            assert params["amp"] == study.STUDY_AMP  # pinned: the recipe does not depend on the machine
            assert params.get("prediction") == conf.prediction
            snapshots = conf.snapshots(seed)
            assert study.STUDY_STEPS in snapshots and params.get("snapshot_steps", [study.STUDY_STEPS]) == list(snapshots)
            for steps in snapshots:
                ev = PLAN[study.experiment_names(slug, seed, steps)[1]].parameters["small"]
                assert ev["seed"] == seed and ev["num_samples"] == study.STUDY_SAMPLES
                assert ev["checkpoint"] == params["checkpoint_dir"] + "/" + (
                    "latest.pt" if steps == snapshots[-1] else snapshot_name(steps))
    arms = study.arms()
    for claim in study.CLAIMS:
        assert study.resolve(claim.baseline) in arms and study.resolve(claim.treatment) in arms
        assert set(claim.metrics) <= set(study.METRICS) and claim.primary == claim.metrics[0]


def test_the_declared_design():
    """What issue 26 declared before its runs: changing any of it is changing the study, not fixing a bug."""
    decided = {"row1", "row2", "row3", "row4", "row5", "row6", "uvit-t2", "dimr-t2r", "row4-tdln", "loo-adaln",
               "loo-mlp", "loo-1branch"}
    assert all(len(study.CONFIGS[c].seeds) >= 8 for c in decided)
    assert all(len(set(study.CURVE_SEEDS) & set(study.CONFIGS[c].seeds)) >= 3 and study.CONFIGS[c].curve
               for c in ("row1", "row6", "uvit-t2", "loo-adaln", "loo-mlp", "loo-1branch"))
    assert study.ALPHA == 0.05 and {c.primary for c in study.CLAIMS if "fmnist" not in c.key} == {"distortion_mean"}
    assert [c.key for c in study.CLAIMS if not c.beyond] == ["C1", "C1-p2", "C1-fmnist", "C2", "C3", "C4"]
    assert next(c for c in study.CLAIMS if c.key == "C2").equivalence_margin == 0.02


def test_the_compute_matched_arm_comes_from_the_gmacs():
    from dimr.presets import get_preset
    from dimr.profile import count_gmacs

    ratio = count_gmacs(get_preset("DiMR-T/3R").model) / count_gmacs(get_preset("U-ViT-T/4").model)
    assert study.compute_ratio() == pytest.approx(ratio) and 1.1 < ratio < 1.5
    assert study.matched_steps() == round(study.STUDY_STEPS * ratio)
    assert study.matched_steps() in study.CONFIGS["row1"].snapshots(study.CURVE_SEEDS[0])
    claim = next(c for c in study.CLAIMS if c.key == "C1-matched")
    assert study.resolve(claim.baseline) == f"row1@{study.matched_steps()}" and claim.treatment == "row6"


def test_table2_reads_the_study_as_mean_and_interval(tmp_path):
    from dimr.reproduction import tables

    for seed, acc in enumerate([0.50, 0.60, 0.70]):
        _record(tmp_path, "row6", seed, {"accuracy_shapes_classifier": acc, "geometric_distortion_rate_coarse": 0.2})
    _record(tmp_path, "row5", 0, {"accuracy_shapes_classifier": 0.4})
    cells = {r["#"]: r["Claims study (this repo)"] for r in tables.table2(runs_root=tmp_path).rows}
    half = 4.302653 * 0.1 / math.sqrt(3)  # s = 0.1 over three seeds
    assert f"classifier accuracy **0.6** ± {half:.2g}" in cells["6"] and "(n = 3)" in cells["6"]
    assert "1 − IoU > 0.15 **0.2** ± 0" in cells["6"] and "FID" not in cells["6"]  # FID not recorded: not shown
    assert "classifier accuracy **0.4** (n = 1)" in cells["5"]  # one seed: no interval to give
    assert cells["1"].startswith(f"not run yet (0 of {len(study.SEEDS)} seeds)")


def _diverged_training(root, slug, seed, step):
    _training(root, slug, seed, {"training_diverged_at_step": step, "steps": step})


def test_a_diverged_seed_is_an_outcome_that_leaves_the_means(tmp_path):
    from dimr.reproduction import tables

    for seed, (a, b) in enumerate([(0.30, 0.20), (0.35, 0.22)]):
        _record(tmp_path, "row5", seed, {"geometric_distortion_rate_coarse": a, "accuracy_shapes_classifier": 0.5})
        _record(tmp_path, "row6", seed, {"geometric_distortion_rate_coarse": b, "accuracy_shapes_classifier": 0.6})
    _record(tmp_path, "row5", 2, {"geometric_distortion_rate_coarse": 0.31, "accuracy_shapes_classifier": 0.5})
    _diverged_training(tmp_path, "row6", 2, 3420)
    _diverged_training(tmp_path, "row4", 0, 17)
    records = study.collect(tmp_path)
    assert records[("row6", 2)]["diverged_at_step"] == 3420 and records[("row6", 2)]["values"] == {}
    assert study.diverged_seeds(records, "row6") == {2: 3420} and study.diverged_seeds(records, "row5") == {}
    # what the chapters read evaluations from: every seed but the diverged ones
    assert set(study.evaluated(records)) == {("row5", 0), ("row5", 1), ("row5", 2), ("row6", 0), ("row6", 1)}
    assert study.metric_values(records, "row6", "accuracy") == {0: 0.6, 1: 0.6}
    done, _ = study.progress(records)
    assert ("row6", 2) in done and ("row4", 0) in done
    claim = next(c for c in study.CLAIMS if c.key == "C3")
    rate = next(v for v in study.judge(claim, records) if v.metric == "distortion_rate")
    # a diverged seed counts as a failure of its configuration: row 6's seed 2 scores the worst rate, 1
    assert rate.difference.n == 3 and study.metric_values(records, "row6", "distortion_rate", failures=True)[2] == 1.0
    assert rate.difference.mean == pytest.approx((0.10 + 0.13 + (0.31 - 1.0)) / 3)
    line = next(r for r in study.scorecard(records) if r.claim.key == "C3")
    assert line.diverged == ("treatment seed 2 diverged at step 3,420",)
    # an unbounded metric's failure is the worst value any valid record reached
    _record(tmp_path, "row3", 0, {"fid_shapes_classifier": 41.0})
    assert study.metric_values(study.collect(tmp_path), "row6", "fid", failures=True) == {2: 41.0}
    cells = {r["#"]: r["Claims study (this repo)"] for r in tables.table2(runs_root=tmp_path).rows}
    assert "(n = 2; seed 2 diverged at step 3,420)" in cells["6"]
    assert cells["4"].startswith(f"no seed evaluated (0 of {len(study.SEEDS)} seeds; seed 0 diverged at step 17)")
    # an evaluation on record wins over a training record (a run trained again after a fix)
    _record(tmp_path, "row4", 0, {"accuracy_shapes_classifier": 0.4})
    assert "diverged_at_step" not in study.collect(tmp_path)[("row4", 0)]


def test_a_record_that_disagrees_with_the_study_counts_nowhere(tmp_path):
    _record(tmp_path, "row6", 0, {"geometric_distortion_mean": 0.1})
    _record(tmp_path, "row6", 1, {"geometric_distortion_mean": 0.1}, num_samples=500)  # a smaller evaluation
    _record(tmp_path, "row6", 2, {"geometric_distortion_mean": 0.1, "checkpoint_step": 3000})  # a shorter model
    _training(tmp_path, "row5", 0, amp="none")  # fp32, not the study's pinned bf16
    _record(tmp_path, "row5", 0, {"geometric_distortion_mean": 0.2})
    _training(tmp_path, "row5", 1, steps=2000)
    _record(tmp_path, "row5", 1, {"geometric_distortion_mean": 0.2})
    _training(tmp_path, "row5", 2, {"steps": 4000.0, "resumed_from_step": 1500.0}, commit="c1")
    _record(tmp_path, "row5", 2, {"geometric_distortion_mean": 0.2})
    records = study.collect(tmp_path)
    bad = study.rejected(records)
    assert set(bad) == {("row6", 1), ("row6", 2), ("row5", 0), ("row5", 1)}
    assert "num_samples" in bad[("row6", 1)][0] and "step 3000" in bad[("row6", 2)][0]
    assert "amp" in bad[("row5", 0)][0] and "steps" in bad[("row5", 1)][0]
    assert study.metric_values(records, "row6", "distortion_mean") == {0: 0.1}  # the others count nowhere
    assert set(study.evaluated(records)) == {("row6", 0), ("row5", 2)}
    notes = records[("row5", 2)]["notes"]  # valid, with what a reader should know
    assert "training resumed from step 1500" in notes and "training and evaluation ran on different commits" in notes
    assert study.code_states(records)["c0"]
    done, _ = study.progress(records)
    assert set(done) == {("row6", 0), ("row5", 2)}


def test_learning_curve_snapshots_are_arms_of_their_own(tmp_path):
    seed = study.CURVE_SEEDS[0]
    for steps, value in ((1000, 0.3), (4000, 0.2), (8000, 0.15)):
        _record(tmp_path, "row6", seed, {"geometric_distortion_mean": value, "checkpoint_step": steps}, steps=steps)
    _training(tmp_path, "row6", seed)
    records = study.collect(tmp_path)
    assert study.metric_values(records, "row6@1000", "distortion_mean") == {seed: 0.3}
    assert study.metric_values(records, "row6", "distortion_mean") == {seed: 0.2}  # the study's own length
    assert study.metric_values(records, "row6@8000", "distortion_mean") == {seed: 0.15}
    assert not study.rejected(records)
    # a training that diverged at step 3,000 leaves the 1k and 2k snapshots, and fails every later length
    _diverged_training(tmp_path, "row1", seed, 3000)
    lost = {k for k, rec in study.collect(tmp_path).items() if "diverged_at_step" in rec}
    assert lost == {(study.arm("row1", k), seed) for k in study.CONFIGS["row1"].snapshots(seed) if k >= 3000}


def _claim_records(root, pairs: list[tuple[str, str, list[float]]]):
    """Baseline arms at mean 1 − IoU 0.3 and treatments better by the given per-seed differences."""
    written = set()
    for base, treat, diffs in pairs:
        for seed, d in enumerate(diffs):
            if (base, seed) not in written:
                _record(root, base, seed, {"geometric_distortion_mean": 0.3})
                written.add((base, seed))
            _record(root, treat, seed, {"geometric_distortion_mean": 0.3 - d})
            written.add((treat, seed))


def test_the_scorecard_corrects_within_each_family_and_says_underpowered(tmp_path):
    clear = [0.10, 0.11, 0.09, 0.10, 0.12, 0.10, 0.09, 0.11]  # a large, steady effect over eight seeds
    noisy = [0.05, -0.04, 0.06, -0.03]  # small and noisy: more seeds would be needed
    _claim_records(tmp_path, [("row5", "row6", clear), ("row4", "row5", noisy)])
    lines = {r.claim.key: r for r in study.scorecard(study.collect(tmp_path))}
    c3, c4 = lines["C3"], lines["C4"]
    assert c3.verdict == "supported" and c3.p_holm <= c3.p * study.family_size(c3.claim) + 1e-12
    assert c3.p_holm >= c3.p  # Holm never makes a p smaller
    assert c4.verdict == "inconclusive (underpowered)" and c4.seeds_needed > 4
    assert lines["C1"].verdict == "not enough seeds"
    # the paper's claims and the added questions are separate families
    paper = [c for c in study.CLAIMS if not c.beyond]
    assert study.family_size(c3.claim) == len(paper) + sum(c.equivalence_margin is not None for c in paper)
    assert study.family(lines["L-TD"].claim) == [c for c in study.CLAIMS if c.beyond]


def test_c2_is_judged_as_an_equivalence_too(tmp_path):
    same = [0.001, -0.002, 0.0015, 0.0005, -0.001, 0.002, 0.0, -0.0005]  # row 4 within ±0.002 of row 3
    _claim_records(tmp_path, [("row3", "row4", same)])
    c2 = next(r for r in study.scorecard(study.collect(tmp_path)) if r.claim.key == "C2")
    assert c2.verdict.startswith("inconclusive") and c2.equivalence == "equivalent within ±0.02"
    assert c2.equivalence_p_holm < study.ALPHA
    far = [0.05, 0.06, 0.055, 0.052, 0.049, 0.061, 0.058, 0.05]  # row 4 clearly better: not "the same"
    _claim_records(tmp_path / "far", [("row3", "row4", far)])
    c2 = next(r for r in study.scorecard(study.collect(tmp_path / "far")) if r.claim.key == "C2")
    assert c2.verdict == "supported" and c2.equivalence.startswith("not shown equivalent")


def test_an_accuracy_difference_interval_stays_within_what_accuracies_allow(tmp_path):
    for seed, (a, b) in enumerate([(0.0, 0.95), (0.05, 1.0), (0.0, 0.7)]):
        _record(tmp_path, "row5", seed, {"accuracy_shapes_classifier": a})
        _record(tmp_path, "row6", seed, {"accuracy_shapes_classifier": b})
    claim = next(c for c in study.CLAIMS if c.key == "C3")
    acc = next(v for v in study.judge(claim, study.collect(tmp_path)) if v.metric == "accuracy")
    assert acc.difference.hi == 1.0 and acc.difference.lo > 0  # unclipped, the t interval would pass 1
