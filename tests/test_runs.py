"""Run records (dimr.reproduction.runs) and the run plan (dimr.reproduction.reproduce): round trips, atomicity, failures."""
from __future__ import annotations

import json
import os
import textwrap
import time

import pytest

from dimr import files, provenance
from dimr.reproduction import reproduce, runs
from dimr.reproduction.plan import Experiment


def _record(root, experiment="exp", run="cpu", profile="cpu", **kw):
    with runs.recording(root, experiment, run, profile=profile, preset="DiMR-T/3R",
                        parameters={"steps": 3}, feeds=["table2/row6"], scale="toy", **kw) as rec:
        (rec.dir / "figure.txt").write_text("a figure")
        runs.write_metrics(rec.dir, {"fid": runs.metric(12.5, "FID (toy)", "3 steps, CPU")})
        rec.add_metric("loss", 0.25, "final training loss", "3 steps, CPU")
    return rec


def test_round_trip(tmp_path):
    rec = _record(tmp_path)
    assert rec.final_dir == tmp_path / "exp" / "cpu"
    loaded = runs.load_run(rec.final_dir)
    assert loaded["status"] == runs.COMPLETE and loaded["schema"] == runs.SCHEMA_VERSION
    assert (loaded["experiment"], loaded["run"], loaded["profile"], loaded["preset"]) == ("exp", "cpu", "cpu", "DiMR-T/3R")
    assert loaded["parameters"] == {"steps": 3} and loaded["feeds"] == ["table2/row6"]
    assert loaded["metrics"]["fid"] == {"value": 12.5, "label": "FID (toy)", "scale": "3 steps, CPU"}
    assert loaded["metrics"]["loss"]["value"] == 0.25
    assert loaded["hardware"]["cpu"] and loaded["hardware"]["cpu_count"] >= 1
    assert set(loaded["git"]) == {"commit", "dirty", "changed"}
    assert loaded["wall_time_s"] >= 0 and loaded["started"] <= loaded["finished"]
    assert (rec.final_dir / "figure.txt").read_text() == "a figure"
    assert runs.load_run(rec.final_dir / "run.json")["path"] == str(rec.final_dir)
    assert not runs.staging_dir(tmp_path, "exp", "cpu").exists()


def test_list_runs_filters_and_skips_incomplete(tmp_path):
    _record(tmp_path, "a", "cpu", "cpu")
    _record(tmp_path, "a", "small", "small")
    _record(tmp_path, "b", "cpu", "cpu")
    (tmp_path / "b" / "broken").mkdir()
    (tmp_path / "b" / "broken" / "run.json").write_text('{"status": "running"}')
    (tmp_path / "b" / "truncated").mkdir()
    (tmp_path / "b" / "truncated" / "run.json").write_text('{"status": "compl')
    assert [(r["experiment"], r["run"]) for r in runs.list_runs(tmp_path)] == [("a", "cpu"), ("a", "small"), ("b", "cpu")]
    assert [r["run"] for r in runs.list_runs(tmp_path, experiment="a")] == ["cpu", "small"]
    assert [r["experiment"] for r in runs.list_runs(tmp_path, profile="cpu")] == ["a", "b"]
    assert runs.list_runs(tmp_path / "nowhere") == []
    with pytest.raises(ValueError):
        runs.load_run(tmp_path / "b" / "broken")


def test_atomic_write_survives_a_failure_mid_write(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    files.atomic_write_json(path, {"status": "complete", "n": 1})

    real_dump = json.dump

    def dump_then_die(obj, f, **kw):
        f.write('{"status": "complete", "n": ')  # half a record reaches the disk...
        raise OSError("disk full")               # ...then the write dies

    monkeypatch.setattr(json, "dump", dump_then_die)
    with pytest.raises(OSError):
        files.atomic_write_json(path, {"status": "complete", "n": 2})
    monkeypatch.setattr(json, "dump", real_dump)
    assert json.loads(path.read_text()) == {"status": "complete", "n": 1}   # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]              # no temp file left behind


def test_a_failing_run_leaves_no_complete_record(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with runs.recording(tmp_path, "exp", "cpu", profile="cpu") as rec:
            runs.write_metrics(rec.dir, {"fid": runs.metric(1.0, "FID", "toy")})
            raise RuntimeError("boom")
    assert not (tmp_path / "exp" / "cpu").exists()
    assert runs.list_runs(tmp_path) == []
    failed = runs.failed_dir(tmp_path, "exp", "cpu")
    record = json.loads((failed / "run.json").read_text())
    assert record["status"] == runs.FAILED and "boom" in record["error"]
    assert not runs.is_complete(failed)


def test_an_interrupted_run_never_looks_complete(tmp_path):
    """A process killed mid-run leaves only a hidden staging folder whose record says "running"."""
    gen = runs.recording(tmp_path, "exp", "cpu", profile="cpu")
    rec = gen.__enter__()                 # the run starts... and the process dies here (no __exit__)
    stage = runs.staging_dir(tmp_path, "exp", "cpu")
    assert rec.dir == stage and json.loads((stage / "run.json").read_text())["status"] == "running"
    assert runs.list_runs(tmp_path) == [] and not runs.is_complete(tmp_path / "exp" / "cpu")
    _record(tmp_path)                     # the next attempt discards the leftover and completes
    assert [r["run"] for r in runs.list_runs(tmp_path)] == ["cpu"]
    assert not stage.exists()


def test_force_replaces_only_once_the_new_run_is_complete(tmp_path):
    _record(tmp_path)
    with pytest.raises(FileExistsError):
        _record(tmp_path)
    with pytest.raises(RuntimeError):
        with runs.recording(tmp_path, "exp", "cpu", profile="cpu", force=True):
            raise RuntimeError("the new attempt fails")
    assert runs.load_run(tmp_path / "exp" / "cpu")["preset"] == "DiMR-T/3R"   # the old run survives
    with runs.recording(tmp_path, "exp", "cpu", profile="cpu", preset="DiMR-T/2R", force=True):
        pass
    assert runs.load_run(tmp_path / "exp" / "cpu")["preset"] == "DiMR-T/2R"
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == [".cpu.failed", "cpu"]


def test_metrics_need_a_label_and_a_scale(tmp_path):
    with pytest.raises(ValueError):
        runs.metric(1.0, "FID", "")
    with pytest.raises(ValueError):
        runs.write_metrics(tmp_path, {"fid": {"value": 1.0}})
    with pytest.raises(ValueError):
        runs.recording(tmp_path, "../escape", "cpu", profile="cpu").__enter__()


def test_committed_profiles_are_data():
    assert runs.COMMITTED_PROFILES == {"small", "paper"}
    assert runs.PROFILES == ("smoke", "cpu", "small", "paper")
    assert not runs.is_committed_profile("cpu") and runs.is_committed_profile("paper")


# ---------------------------------------------------------------------------------------------
# dimr.reproduction.reproduce: executing a plan with papermill
# ---------------------------------------------------------------------------------------------
NOTEBOOK = textwrap.dedent('''\
    # %% tags=["parameters"]
    profile: str = "smoke"  # the profile
    run_dir: str = "runs/x"  # where the run writes
    steps: int = 3  # toy steps

    # %%
    import os
    import dimr.reproduction.runs as R
    assert os.path.isdir(run_dir), "run_dir is relative to the repository root, the notebook's cwd"
    if steps < 0:
        raise ValueError("negative steps")
    R.write_metrics(run_dir, {"fid": R.metric(10.0 + steps, "FID (toy)", f"{steps} steps, {profile}")})
    ''')


@pytest.fixture
def toy_repo(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "toy.py").write_text(NOTEBOOK)
    return tmp_path


def test_run_plan_executes_records_and_skips(toy_repo):
    plan = {"toy": Experiment("toy", "notebooks/toy.py", {"smoke": {"steps": 2}, "paper": {"steps": 99}},
                              feeds=("table2/row6",), preset_parameter="steps")}
    log = []
    done = reproduce.run_plan("smoke", plan=plan, root=toy_repo, progress=False, log=log.append)
    assert done == [toy_repo / "runs" / "toy" / "smoke"]
    rec = runs.load_run(done[0])
    assert rec["metrics"]["fid"]["value"] == 12.0 and rec["feeds"] == ["table2/row6"]
    assert rec["parameters"] == {"steps": 2} and rec["notebook"] == "toy.ipynb"
    executed = (done[0] / "toy.ipynb").read_text()
    assert '"smoke"' in executed and str(toy_repo) not in executed  # relative paths only
    assert reproduce.run_plan("smoke", plan=plan, root=toy_repo, progress=False, log=log.append) == []
    assert "already recorded" in log[-1]
    assert reproduce.run_plan("cpu", plan=plan, root=toy_repo, progress=False, log=log.append) == []


def test_a_failing_notebook_stops_the_plan_and_records_nothing(toy_repo):
    plan = {"bad": Experiment("bad", "notebooks/toy.py", {"smoke": {"steps": -1}}),
            "good": Experiment("good", "notebooks/toy.py", {"smoke": {"steps": 1}})}
    with pytest.raises(Exception) as err:
        reproduce.run_plan("smoke", plan=plan, root=toy_repo, progress=False, log=lambda *_: None)
    assert "negative steps" in str(err.value)
    assert runs.list_runs(toy_repo / "runs") == []                     # nothing complete, "good" never ran
    failed = runs.failed_dir(toy_repo / "runs", "bad", "smoke")
    assert (failed / "toy.ipynb").exists() and json.loads((failed / "run.json").read_text())["status"] == "failed"


DIVERGING = textwrap.dedent('''\
    # %% tags=["parameters"]
    profile: str = "smoke"  # the profile
    run_dir: str = "runs/x"  # where the run writes
    fail: bool = False  # an evaluation that must not run

    # %%
    import dimr.reproduction.runs as R
    assert not fail, "an evaluation of a diverged training was executed"
    R.write_metrics(run_dir, {R.DIVERGED_METRIC: R.metric(17, "step", "toy")})
    ''')


def test_an_evaluation_of_a_diverged_training_is_skipped(toy_repo, capsys):
    (toy_repo / "notebooks" / "diverging.py").write_text(DIVERGING)
    plan = {"train": Experiment("train", "notebooks/diverging.py", {"smoke": {}}),
            "eval": Experiment("eval", "notebooks/diverging.py", {"smoke": {"fail": True}}, reads="train"),
            "other": Experiment("other", "notebooks/toy.py", {"smoke": {"steps": 1}}, reads="never-run")}
    log = []
    done = reproduce.run_plan("smoke", plan=plan, root=toy_repo, progress=False, log=log.append)
    assert [d.parent.name for d in done] == ["train", "other"]  # a reads= run that did not diverge is run
    assert runs.diverged_at(toy_repo / "runs" / "train" / "smoke") == 17
    assert runs.diverged_at(toy_repo / "runs" / "other" / "smoke") is None
    assert runs.diverged_at(toy_repo / "runs" / "absent" / "smoke") is None
    assert any("eval (smoke): not run" in line and "diverged at step 17" in line for line in log)
    assert not (toy_repo / "runs" / "eval").exists()


def test_plan_validation_and_cli_errors(capsys):
    with pytest.raises(ValueError):
        Experiment("x", "notebooks/x.py", {"huge": {}})
    with pytest.raises(KeyError):
        reproduce.planned("cpu", plan={}, only=["nope"])
    assert reproduce.cli(["--profile", "cpu", "--only", "no-such-experiment"]) == 2
    assert "no-such-experiment" in capsys.readouterr().err
    assert reproduce.cli(["--profile", "smoke", "--list"]) == 0
    with pytest.raises(SystemExit):
        reproduce.cli(["--profile", "enormous"])


def test_book_env_keeps_caches_in_the_repository(tmp_path, monkeypatch):
    for var in ("MPLCONFIGDIR", "TORCH_HOME", "XDG_CACHE_HOME", "IPYTHONDIR", "JUPYTER_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    env = reproduce.book_env(tmp_path)
    assert env["MPLCONFIGDIR"] == str(tmp_path / ".cache" / "matplotlib") and os.path.isdir(env["IPYTHONDIR"])
    assert env["HF_HUB_OFFLINE"] == os.environ.get("HF_HUB_OFFLINE", "1")
    assert env["MPLBACKEND"].endswith("backend_inline")


def test_a_published_record_names_what_a_reader_can_open():
    stage, work = "runs/e/.small.partial", "runs/e/.small.partial/evaluate"
    text = json.dumps({"npz": f"{work}/samples.npz", "out": work, "grid": f"{stage}/grid.png",
                       "notebook": f"{stage}/evaluate.ipynb",
                       "evaluator": "SmallCNN; file /home/u/.cache/dimr/classifier-x.pt", "scale": "32×32, w=2"})
    got = json.loads(runs.portable_record(text, stage, work))
    assert got == {"npz": "<not kept>/samples.npz", "out": "<not kept>", "grid": "runs/e/small/grid.png",
                   "notebook": "runs/e/small/evaluate.ipynb",
                   "evaluator": "SmallCNN; file <external>/classifier-x.pt", "scale": "32×32, w=2"}


def test_git_state_names_changed_code_but_not_run_records(tmp_path):
    import subprocess

    repo = tmp_path / "repo"
    (repo / "runs" / "exp" / "small").mkdir(parents=True)
    (repo / "dimr").mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (repo / "dimr" / "a.py").write_text("x = 1\n")
    (repo / "runs" / "exp" / "small" / "run.json").write_text("{}")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert provenance.git_info(repo)["dirty"] is False
    (repo / "runs" / "exp" / "small" / "run.json").write_text('{"status": "complete"}')  # a record landed
    assert provenance.git_info(repo) == {"commit": provenance.git_info(repo)["commit"], "dirty": False, "changed": []}
    (repo / "dimr" / "a.py").write_text("x = 2\n")  # the code changed
    info = provenance.git_info(repo)
    assert info["dirty"] is True and info["changed"] == ["dimr/a.py"]


def test_follow_prints_a_growing_log_until_the_run_is_recorded(tmp_path):
    import io
    import threading

    log, out, recorded = tmp_path / "train.log", io.StringIO(), threading.Event()

    def trainer():
        for i in range(3):
            with log.open("a") as f:
                f.write(f"step {i}\n")
            time.sleep(0.05)
        recorded.set()

    threading.Thread(target=trainer).start()
    reproduce.follow(log, recorded.is_set, poll_s=0.01, out=out)
    assert out.getvalue() == "step 0\nstep 1\nstep 2\n"
    from dimr.reproduction.plan import build_plan

    plan = build_plan()
    assert str(reproduce.training_log(plan["train-table2-row6"], "smoke")) == "checkpoints/train-table2-row6/smoke/train.log"
    with pytest.raises(KeyError, match="not a training experiment"):
        reproduce.training_log(plan["eval-table2-row6"], "smoke")


def test_committed_profiles_refuse_a_dirty_tree_unless_allowed(toy_repo):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=toy_repo, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", "notebooks")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "toy")
    plan = {"toy": Experiment("toy", "notebooks/toy.py", {"smoke": {"steps": 2}, "paper": {"steps": 3}})}
    (toy_repo / "notebooks" / "toy.py").write_text(NOTEBOOK + "\n# an uncommitted edit\n")
    with pytest.raises(reproduce.DirtyTreeError, match="notebooks/toy.py"):
        reproduce.run_plan("paper", plan=plan, root=toy_repo, progress=False, log=lambda *_: None)
    assert not (toy_repo / "runs" / "toy" / "paper").exists()
    reproduce.run_plan("smoke", plan=plan, root=toy_repo, progress=False, log=lambda *_: None)  # cheap: allowed
    done = reproduce.run_plan("paper", plan=plan, root=toy_repo, progress=False, log=lambda *_: None, allow_dirty=True)
    assert runs.load_run(done[0])["git"]["changed"] == ["notebooks/toy.py"]


def test_a_record_names_no_absolute_path_of_this_machine(tmp_path):
    with runs.recording(tmp_path / "runs", "fm", "small", profile="small",
                        parameters={"data_root": "/usr/share/datasets/fashion-mnist", "checkpoint": "checkpoints/x.pt"}):
        pass
    rec = runs.load_run(tmp_path / "runs" / "fm" / "small")
    assert rec["parameters"] == {"data_root": "<external>/fashion-mnist", "checkpoint": "checkpoints/x.pt"}
