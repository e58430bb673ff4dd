import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from dimr.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from dimr.nn import build_model
from dimr.presets import get_preset
from dimr.bookkeeping import snapshot_name
from dimr.determinism import StepBatchSampler
from dimr.optim import EMA, lr_at, param_groups
from dimr.train import TrainConfig, train

# fp32 pinned: `amp="auto"` times fp32 against bf16 on CPUs with native bf16, and two runs compared
# bitwise must not depend on which of them a busy moment of the machine favoured
TINY = dict(preset="DiMR-T/3R", dataset_size=64, batch_size=4, warmup_steps=2, log_every=1, ckpt_every=1000,
            progress=False, seed=3, amp="none")


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_param_groups_exclude_only_time_gates_from_decay():
    model = build_model(get_preset("DiMR-T/2R").model)
    decay, no_decay = param_groups(model, 0.03)
    names = {id(p): n for n, p in model.named_parameters()}
    assert no_decay["weight_decay"] == 0 and decay["weight_decay"] == 0.03
    assert all(names[id(p)].endswith(("nodecay_weight", "nodecay_bias")) for p in no_decay["params"])
    assert any(names[id(p)].endswith("param0") for p in decay["params"])  # p0/p1 are decayed (official)
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_lr_warmup_then_constant():
    assert lr_at(0, 1e-3, 10) == 0.0
    assert lr_at(5, 1e-3, 10) == pytest.approx(5e-4)
    assert lr_at(10, 1e-3, 10) == lr_at(10_000, 1e-3, 10) == 1e-3


def test_ema_update_and_warmup():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, rate=0.9)
    with torch.no_grad():
        model.weight.add_(1.0)
    before = ema.shadow["weight"].clone()
    ema.update(model, step=0)
    torch.testing.assert_close(ema.shadow["weight"], 0.9 * before + 0.1 * model.weight)
    assert EMA(model, 0.9999, warmup=True).rate_at(0) == pytest.approx(0.1)


def test_sampler_is_a_pure_function_of_step_and_shards_across_ranks():
    one = StepBatchSampler(10, 4, 0, 5, seed=1)
    two = [StepBatchSampler(10, 2, 0, 5, seed=1, rank=r, world=2) for r in (0, 1)]
    for step in range(5):
        assert one.indices(step) == two[0].indices(step) + two[1].indices(step)
    epoch0 = [i for s in range(0, 2) for i in one.indices(s)] + one.indices(2)[:2]
    assert sorted(epoch0) == list(range(10))  # a permutation per epoch, no repeats within it
    resumed = list(StepBatchSampler(10, 4, 3, 5, seed=1))
    assert resumed == [one.indices(3), one.indices(4)]


def test_training_reduces_the_loss(tmp_path):
    s = train(TrainConfig(**{**TINY, "steps": 30, "lr": 2e-3}), tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 30 and s["step"] == 30
    first, last = sum(l["loss"] for l in lines[:5]) / 5, sum(l["loss"] for l in lines[-5:]) / 5
    assert last < 0.8 * first
    assert {"loss/8px", "loss/16px", "loss/32px", "lr", "images_per_s"} <= set(lines[0])


def test_resume_is_bitwise_exact(tmp_path):
    full = train(TrainConfig(**TINY, steps=6), tmp_path / "full")
    train(TrainConfig(**TINY, steps=3), tmp_path / "split")
    train(TrainConfig(**TINY, steps=6), tmp_path / "split", resume=True)
    a, b = load_checkpoint(tmp_path / "full" / "latest.pt"), load_checkpoint(tmp_path / "split" / "latest.pt")
    assert a["step"] == b["step"] == full["step"] == 6
    assert states_equal(a["model"], b["model"]) and states_equal(a["ema"], b["ema"])
    steps = [json.loads(x)["step"] for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_a_snapshot_at_step_k_is_the_state_a_k_step_run_ends_with(tmp_path):
    """Learning curves evaluate snapshots of one long run as if they were shorter runs: that holds only
    if nothing in the run depends on its total length (learning rate, EMA, data order, noise)."""
    train(TrainConfig(**{**TINY, "ckpt_every": 5}, steps=7, snapshot_steps=(3, 7)), tmp_path / "long")
    train(TrainConfig(**TINY, steps=3), tmp_path / "short")
    snap, short = load_checkpoint(tmp_path / "long" / snapshot_name(3)), load_checkpoint(tmp_path / "short" / "latest.pt")
    assert snap["step"] == short["step"] == 3
    assert states_equal(snap["model"], short["model"]) and states_equal(snap["ema"], short["ema"])
    assert states_equal(load_checkpoint(tmp_path / "long" / snapshot_name(7))["model"],
                        load_checkpoint(tmp_path / "long" / "latest.pt")["model"])
    assert sorted(p.name for p in (tmp_path / "long").glob("step-*.pt")) == [snapshot_name(3), snapshot_name(7)]


def test_resume_after_sigkill_is_bitwise_exact(tmp_path):
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "dimr", "train", "--preset", "DiMR-T/3R", "--out", str(run), "--steps", "400",
           "--batch-size", "4", "--dataset-size", "64", "--warmup-steps", "2", "--seed", "3", "--ckpt-every", "1",
           "--log-every", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline:
        metrics = run / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(run / "latest.pt")["step"]
    assert 2 <= killed_at < 400
    total = killed_at + 3
    chosen = load_checkpoint(run / "latest.pt")["train_config"]["amp"]  # the CLI's "auto", made concrete
    assert chosen in ("none", "bf16")
    train(TrainConfig(**{**TINY, "amp": "auto"}, steps=total), run, resume=True)  # keeps the run's choice
    train(TrainConfig(**{**TINY, "amp": chosen}, steps=total), tmp_path / "straight")
    a, b = load_checkpoint(run / "latest.pt"), load_checkpoint(tmp_path / "straight" / "latest.pt")
    assert states_equal(a["model"], b["model"]) and states_equal(a["ema"], b["ema"])
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no torn temporary files left


def test_auto_precision_is_what_the_device_can_do_and_says_why(monkeypatch, tmp_path):
    """The same command trains with the same numerics on every run of a machine: no timing decides."""
    import dimr.device as D
    import dimr.train as T

    cfg = T.resolve_config(TrainConfig(preset="DiMR-T/3R", amp="auto"))
    monkeypatch.setattr(D, "cpu_has_native_bf16", lambda: True)
    choice, why = T.choose_amp(cfg, torch.device("cpu"))
    assert choice == "bf16" and "native bf16" in why
    assert [T.choose_amp(cfg, torch.device("cpu"))[0] for _ in range(5)] == ["bf16"] * 5
    monkeypatch.setattr(D, "cpu_has_native_bf16", lambda: False)
    choice, why = T.choose_amp(cfg, torch.device("cpu"))
    assert choice == "none" and "fp32" in why
    assert T.choose_amp(dataclasses.replace(cfg, amp="bf16"), torch.device("cpu")) == ("bf16", "asked for")
    summary = train(TrainConfig(**{**TINY, "amp": "auto"}, steps=1), tmp_path / "run")
    assert summary["amp"] == "none" and "fp32" in summary["amp_reason"]  # recorded in the run


def test_mismatched_corrupt_and_existing_checkpoints_get_clear_errors(tmp_path):
    train(TrainConfig(**TINY, steps=2), tmp_path / "a")
    with pytest.raises(CheckpointError, match=r"lr: checkpoint"):
        train(TrainConfig(**{**TINY, "lr": 0.5}, steps=4), tmp_path / "a", resume=True)
    with pytest.raises(CheckpointError, match="pass --resume"):
        train(TrainConfig(**TINY, steps=4), tmp_path / "a")
    ckpt = tmp_path / "a" / "latest.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="unreadable"):
        train(TrainConfig(**TINY, steps=4), tmp_path / "a", resume=True)
    res = subprocess.run([sys.executable, "-m", "dimr", "train", "--out", str(tmp_path / "a"), "--resume",
                          "--steps", "4", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "unreadable" in res.stderr and "Traceback" not in res.stderr


def test_cli_defaults_then_sample_grid(tmp_path):
    out = tmp_path / "cli"
    res = subprocess.run([sys.executable, "-m", "dimr", "train", "--preset", "DiMR-T/3R", "--out", str(out),
                          "--steps", "3", "--batch-size", "4", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "finished at step 3/3" in res.stdout
    res = subprocess.run([sys.executable, "-m", "dimr", "train", "--preset", "DiMR-T/3R", "--out", str(out),
                          "--steps", "6", "--batch-size", "4", "--resume", "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "step 6/6" in res.stdout, res.stderr
    assert load_checkpoint(out / "latest.pt")["train_config"]["shapes_rotation"] == "upright"  # the default
    res = subprocess.run([sys.executable, "-m", "dimr", "train", "--preset", "DiMR-T/3R", "--out", str(out),
                          "--steps", "8", "--batch-size", "4", "--resume", "--shapes-rotation", "random",
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "shapes_rotation" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, "-m", "dimr", "sample", "--checkpoint", str(out / "latest.pt"),
                          "--num-samples", "16", "--steps", "4", "--out", str(tmp_path / "s"), "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    from PIL import Image
    from dimr.sample import load_npz
    images, labels = load_npz(tmp_path / "s" / "samples.npz")
    assert images.shape == (16, 32, 32, 3) and images.dtype.name == "uint8"
    assert sorted(set(labels.tolist())) == list(range(8))
    assert Image.open(tmp_path / "s" / "grid.png").size[0] > 64


def test_checkpoint_holds_everything_needed(tmp_path):
    train(TrainConfig(**TINY, steps=2), tmp_path / "r")
    ckpt = load_checkpoint(tmp_path / "r")
    assert {"model", "ema", "optimizer", "step", "rng", "train_config", "config", "preset", "recipe"} <= set(ckpt)
    assert ckpt["config"]["num_classes"] == 9  # 8 shapes + the CFG null label
    model = model_from_checkpoint(ckpt)
    assert model.cfg.image_size == 32


def test_the_checkpoint_ema_is_the_average_not_the_weights(tmp_path):
    """The checkpoint's EMA is a running average, not a copy of the weights; the tiny recipe turns EMA
    warm-up on (rate (1+n)/(10+n) early), the paper's recipes do not, and an explicit choice wins."""
    from dimr.train import resolve_config

    assert resolve_config(TrainConfig(preset="DiMR-T/3R")).ema_warmup is True
    assert resolve_config(TrainConfig(preset="DiMR-XL/2R")).ema_warmup is False
    assert resolve_config(TrainConfig(preset="DiMR-T/3R", ema_warmup=False)).ema_warmup is False
    train(TrainConfig(**TINY, steps=4), tmp_path / "r")
    ckpt = load_checkpoint(tmp_path / "r")
    assert ckpt["train_config"]["ema_warmup"] is True
    assert not states_equal(ckpt["model"], ckpt["ema"])
    raw, avg = model_from_checkpoint(ckpt, use_ema=False), model_from_checkpoint(ckpt)
    assert any(not torch.equal(a, b) for a, b in zip(raw.parameters(), avg.parameters()))


def test_torchrun_two_cpu_processes_match_one_process(tmp_path):
    """DDP over gloo: 2 processes × 2 samples train the same run as 1 process × 4 (float tolerance).
    In fp32: bf16 autocast would round a sample differently in a batch of 2 and of 4, which is no DDP property."""
    args = ["--preset", "DiMR-T/3R", "--steps", "3", "--batch-size", "4", "--dataset-size", "64",
            "--warmup-steps", "2", "--seed", "3", "--no-progress", "--device", "cpu", "--amp", "none"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                          "-m", "dimr", "train", "--out", str(tmp_path / "ddp"), *args],
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["step"] == 3
    train(TrainConfig(**{**TINY, "steps": 3, "amp": "none"}), tmp_path / "single")
    a = load_checkpoint(tmp_path / "ddp")["model"]
    b = load_checkpoint(tmp_path / "single")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def test_noise_draws_are_per_step_and_shard_exactly():
    """One generator per step for the global batch: two ranks' rows are the one-process rows, in order."""
    from dimr.diffusion import VPLinearSchedule
    from dimr.determinism import draw_noise
    from dimr.train import resolve_config

    cfg = resolve_config(TrainConfig(preset="DiMR-T/3R", batch_size=8, p_uncond=0.5, seed=1))
    sch, y = VPLinearSchedule(), torch.arange(8) % 3
    one = StepBatchSampler(64, 8, 0, 10, 1)
    whole = draw_noise(5, one.sample_ids(5), y, (3, 4, 4), sch, cfg, 8)
    parts = [draw_noise(5, StepBatchSampler(64, 4, 0, 10, 1, rank=r, world=2).sample_ids(5), y[4 * r:4 * r + 4],
                        (3, 4, 4), sch, cfg, 8) for r in range(2)]
    for i in range(3):
        assert torch.equal(whole[i], torch.cat([p[i] for p in parts]))
    assert bool((whole[0] == 8).any()) and bool((whole[0] != 8).any())  # some labels dropped, some kept
    again = draw_noise(5, one.sample_ids(5), y, (3, 4, 4), sch, cfg, 8)
    other = draw_noise(6, one.sample_ids(6), y, (3, 4, 4), sch, cfg, 8)
    assert torch.equal(again[2], whole[2]) and not torch.equal(other[2], whole[2])
    with pytest.raises(ValueError, match="not in step"):
        draw_noise(4, one.sample_ids(5), y, (3, 4, 4), sch, cfg, 8)


def test_the_prediction_target_is_recorded_and_read_back(tmp_path):
    from dimr.sample import checkpoint_context, denoiser_from_checkpoint
    from dimr.train import resolve_config

    assert resolve_config(TrainConfig(preset="DiMR-XL/2R")).prediction == "eps"  # the paper's recipes keep ε
    with pytest.raises(ValueError, match="prediction"):
        resolve_config(TrainConfig(preset="DiMR-T/3R", prediction="score"))
    train(TrainConfig(**TINY, steps=2, prediction="x0", loss_weighting="min_snr", time_distribution="logit_normal"),
          tmp_path / "r")
    ckpt = load_checkpoint(tmp_path / "r")
    assert ckpt["train_config"]["prediction"] == "x0" and ckpt["train_config"]["loss_weighting"] == "min_snr"
    assert checkpoint_context(ckpt)["prediction"] == "x0"
    assert denoiser_from_checkpoint(ckpt).prediction == "x0"
    # a checkpoint written before the option existed is read, sampled and resumed as ε
    for key in ("prediction", "loss_weighting", "min_snr_gamma", "time_distribution", "time_loc", "time_scale"):
        ckpt["train_config"].pop(key)
        ckpt["recipe"].pop(key)
    ckpt.pop("path")
    old = tmp_path / "old" / "latest.pt"
    old.parent.mkdir()
    torch.save(ckpt, old)
    assert checkpoint_context(load_checkpoint(old))["prediction"] == "eps"
    s = train(TrainConfig(**TINY, steps=3, prediction="eps", loss_weighting="uniform", time_distribution="uniform"),
              old.parent, resume=True)
    assert s["step"] == 3
    with pytest.raises(CheckpointError, match="prediction"):
        train(TrainConfig(**TINY, steps=4, prediction="v", loss_weighting="uniform", time_distribution="uniform"),
              old.parent, resume=True)


def test_compile_auto_only_for_long_cpu_runs_on_several_threads_and_flags_stay_readable():
    import dimr.train as T

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    auto = T.resolve_config(TrainConfig(preset="DiMR-T/3R"))
    assert auto.compile == "auto"

    def compiles(cfg, device, steps, limit, threads=2):
        yes, why = T.choose_compile(cfg, device, steps, limit, threads)
        assert isinstance(yes, bool) and why  # every choice says why (summary.json's compile_reason)
        return yes

    assert compiles(auto, cpu, T.COMPILE_MIN_STEPS, None)
    assert not compiles(auto, cpu, T.COMPILE_MIN_STEPS - 1, None)  # a short run would mostly compile
    assert not compiles(auto, cpu, 10**6, T.COMPILE_MIN_SECONDS - 1)  # so would a short time limit
    assert compiles(auto, cpu, 10**6, T.COMPILE_MIN_SECONDS)
    assert not compiles(auto, cuda, 10**6, None)  # not measured on GPUs: eager
    # one thread (a busy machine, one run per core): eager, however long the run
    assert not compiles(auto, cpu, 10**6, None, threads=T.COMPILE_MIN_THREADS - 1)
    assert "1 thread" in T.choose_compile(auto, cpu, 10**6, None, 1)[1]
    assert compiles(auto, cpu, 10**6, None, threads=T.COMPILE_MIN_THREADS)
    on, off = dataclasses.replace(auto, compile="on"), dataclasses.replace(auto, compile="off")
    assert compiles(on, cpu, 1, 1.0, threads=1) and compiles(on, cuda, 1, None)  # asked for: it stands
    assert T.choose_compile(on, cpu, 1, 1.0, 1) == (True, "asked for")
    assert not compiles(off, cpu, 10**6, None)
    # checkpoints written while the field was a flag still resolve
    assert T.resolve_config(TrainConfig(compile=True)).compile == "on"
    assert T.resolve_config(TrainConfig(compile=False)).compile == "off"
    with pytest.raises(ValueError, match="compile must be one of"):
        T.resolve_config(TrainConfig(compile="sometimes"))


def test_a_failing_compiler_falls_back_to_eager_only_when_auto(tmp_path, monkeypatch):
    import dimr.train as T

    def broken_compile(net):
        def fails(*args, **kwargs):
            raise RuntimeError("no C++ compiler")
        return fails

    monkeypatch.setattr(T.torch, "compile", broken_compile)
    monkeypatch.setattr(T, "COMPILE_MIN_STEPS", 1)
    monkeypatch.setattr(T, "COMPILE_MIN_THREADS", 1)
    summary = train(TrainConfig(**TINY, steps=2, compile="auto"), tmp_path / "auto")
    assert summary["step"] == 2 and summary["compile"] == "off"
    assert "compiler failed (RuntimeError)" in summary["compile_reason"]
    assert load_checkpoint(tmp_path / "auto" / "latest.pt")["train_config"]["compile"] == "off"
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):  # asked for explicitly: the error stands
        train(TrainConfig(**TINY, steps=2, compile="on"), tmp_path / "on")


@pytest.mark.slow
@pytest.mark.skipif(not any(map(shutil.which, ("g++", "c++", "clang++"))),
                    reason="torch.compile on CPU needs a C++ compiler (auto falls back to eager without one)")
def test_compiled_training_matches_eager(tmp_path):
    # the compiled graph is the same maths: a few fp32 steps agree with eager up to summation order
    # (DiMR-T/2R: the smaller graph compiles in about a minute on two cores)
    small = {**TINY, "preset": "DiMR-T/2R"}
    eager = train(TrainConfig(**small, steps=3, compile="off"), tmp_path / "eager")
    compiled = train(TrainConfig(**small, steps=3, compile="on"), tmp_path / "compiled")
    assert eager["compile"] == "off" and compiled["compile"] == "on"
    # per-step losses (the compiled forward, and its backward through two Adam updates) agree; parameters
    # are not compared: Adam's first updates are ≈ lr·sign(g), so a gradient that is zero up to rounding
    # may move either way
    losses = [[json.loads(x)["loss"] for x in (tmp_path / r / "metrics.jsonl").read_text().splitlines()]
              for r in ("eager", "compiled")]
    assert len(losses[0]) == 3
    torch.testing.assert_close(torch.tensor(losses[1]), torch.tensor(losses[0]), rtol=1e-4, atol=0)


def _two_gloo_processes(out, port: int, *extra: str):
    """Ranks 0 and 1 of a 2-process run, started directly (not by torchrun, which would forward a signal
    to both): the test can signal rank 0 alone."""
    args = [sys.executable, "-m", "dimr", "train", "--preset", "DiMR-T/3R", "--out", str(out), "--batch-size", "4",
            "--dataset-size", "64", "--warmup-steps", "2", "--seed", "3", "--no-progress", "--device", "cpu",
            "--amp", "none", "--compile", "off", "--log-every", "1", *extra]
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def _wait_all(procs, timeout: float = 180) -> list[int]:
    try:
        return [p.wait(timeout=timeout) for p in procs]
    except subprocess.TimeoutExpired:  # a rank waits in a collective the other never joins: the bug this guards
        for p in procs:
            p.kill()
        pytest.fail("a rank hung after the stop: " + " | ".join(p.stderr.read()[-800:] for p in procs))


def test_a_stop_on_rank_0_alone_stops_every_rank_at_the_same_step(tmp_path):
    """SIGTERM reaches rank 0 only: both ranks finish the same step, checkpoint, and exit 130; a time limit
    (rank 0's clock) ends both with 0. Before the stop was agreed by all-reduce, rank 0 waited in the
    checkpoint barrier while rank 1 waited in the next step's gradient all-reduce, for ever."""
    out = tmp_path / "signalled"
    procs = _two_gloo_processes(out, 29541, "--steps", "100000")
    deadline = time.time() + 240
    while time.time() < deadline and not (out / "metrics.jsonl").exists():
        time.sleep(0.1)
    while time.time() < deadline and len((out / "metrics.jsonl").read_text().splitlines()) < 3:
        time.sleep(0.1)
    procs[0].send_signal(signal.SIGTERM)
    assert _wait_all(procs) == [130, 130]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and 3 <= summary["step"] < 100000
    assert load_checkpoint(out / "latest.pt")["step"] == summary["step"]

    procs = _two_gloo_processes(tmp_path / "timed", 29542, "--steps", "100000", "--time-limit", "0.05")
    assert _wait_all(procs) == [0, 0]
    summary = json.loads((tmp_path / "timed" / "summary.json").read_text())
    assert summary["time_limited"] and not summary["interrupted"] and summary["step"] >= 1


def test_sigint_finishes_the_step_and_checkpoints(tmp_path):
    """Ctrl-C is a request: the step in flight completes, the checkpoint holds it, the CLI exits 130; the
    run then resumes from exactly that step."""
    out = tmp_path / "ctrl-c"
    cmd = [sys.executable, "-m", "dimr", "train", "--preset", "DiMR-T/3R", "--out", str(out), "--steps", "100000",
           "--batch-size", "4", "--dataset-size", "64", "--warmup-steps", "2", "--seed", "3", "--ckpt-every", "100000",
           "--log-every", "1", "--no-progress", "--amp", "none", "--compile", "off"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not ((out / "metrics.jsonl").exists()
                                          and len((out / "metrics.jsonl").read_text().splitlines()) >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130, proc.stderr.read()[-2000:]
    step = load_checkpoint(out / "latest.pt")["step"]
    logged = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert step >= 2 and logged[-1] == step  # the checkpoint is the last step the log saw: nothing half-done
    summary = train(TrainConfig(**TINY, steps=step + 1), out, resume=True)
    assert summary["step"] == step + 1


def test_the_diverged_step_is_exact_when_the_loop_reads_the_device_only_every_few_steps(tmp_path):
    """The steps leave their losses on the device and the loop reads them at its sync points (here every 7th
    step): the run still names the first non-finite step, the one a loop that reads every step finds."""
    from dimr.train import TrainingDiverged

    found = {}
    for log_every in (1, 7):
        cfg = TrainConfig(**{**TINY, "lr": 1e30, "warmup_steps": 0, "compile": "off", "log_every": log_every},
                          steps=50)
        with pytest.raises(TrainingDiverged) as err:
            train(cfg, tmp_path / str(log_every))
        summary = json.loads((tmp_path / str(log_every) / "summary.json").read_text())
        log = [json.loads(line) for line in (tmp_path / str(log_every) / "metrics.jsonl").read_text().splitlines()]
        assert summary["diverged_at_step"] == summary["step"] == err.value.step == log[-1]["step"]
        assert summary["checkpoint"] is None  # nothing was checkpointed before it (ckpt_every 1000)
        found[log_every] = err.value.step
    assert found[7] == found[1] and found[1] % 7 != 0  # named exactly, not rounded to the sync point


def test_a_loss_that_stops_being_finite_ends_the_run_as_diverged(tmp_path):
    """An absurd learning rate makes the loss NaN within a couple of steps: the run stops on that step,
    the summary and the log say so, the NaN weights are not checkpointed, and the CLI exits with its own code."""
    from dimr.train import DIVERGED_EXIT, TrainingDiverged

    cfg = TrainConfig(**{**TINY, "lr": 1e30, "warmup_steps": 0, "ckpt_every": 1, "compile": "off"}, steps=50)
    with pytest.raises(TrainingDiverged) as err:
        train(cfg, tmp_path / "a")
    step = err.value.step
    assert 1 < step < 50 and "diverged" in str(err.value)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["diverged_at_step"] == summary["step"] == step and summary["image_shape"] == [3, 32, 32]
    log = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == step and log[-1]["loss"] != log[-1]["loss"]  # NaN
    saved = load_checkpoint(tmp_path / "a" / "latest.pt")
    assert saved["step"] == step - 1  # the last finite step's weights
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())
    res = subprocess.run([sys.executable, "-m", "dimr", "train", "--out", str(tmp_path / "b"), "--steps", "50",
                          "--batch-size", "4", "--lr", "1e30", "--warmup-steps", "0", "--amp", "none",
                          "--compile", "off", "--dataset-size", "64", "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == DIVERGED_EXIT and "diverged" in res.stderr and "Traceback" not in res.stderr
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["checkpoint"] is None  # none before it
