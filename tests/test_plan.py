"""The run plan's shape: what `make book` (the cpu profile) trains, and the 10-minute runs of the README."""

import dimr.reproduction.plan as plan
from dimr.presets import get_preset

PLAN = plan.build_plan()


def test_the_cpu_profile_trains_the_two_ends_of_table2_for_equal_calibrated_steps():
    cpu = [name for name, e in PLAN.items() if "cpu" in e.parameters]
    assert set(cpu) == {plan.CALIBRATION} | {f"{kind}-table2-row{r}" for kind in ("train", "eval") for r in plan.CPU_ROWS}
    assert cpu[0] == plan.CALIBRATION  # the plan runs in order: the calibration before the trainings that read it
    assert set(plan.CPU_ROWS) == {1, 6}
    assert 5 <= plan.CPU_MINUTES <= 10  # long enough to learn, short enough for `make book` in 30 minutes
    calibrated = PLAN[plan.CALIBRATION].parameters["cpu"]
    assert calibrated["minutes_each"] == plan.CPU_MINUTES
    trained = set()
    for r in plan.CPU_ROWS:
        params = PLAN[f"train-table2-row{r}"].parameters["cpu"]
        assert params["steps_from"] == plan.CALIBRATION and params["batch_size"] is None  # the recipe's batch
        assert params["time_limit_minutes"] > plan.CPU_MINUTES  # a guard only: the steps decide
        assert params["preset"] in calibrated["presets"]
        trained.add(get_preset(params["preset"]).model)
    # the rows are the tiny U-ViT and DiMR presets, so `make book` trains what the README's first example trains
    assert trained == {get_preset("U-ViT-T/4").model, get_preset("DiMR-T/3R").model}
    assert get_preset("Table2-T/row6").recipe == get_preset("DiMR-T/3R").recipe


def test_the_ten_minute_runs_use_every_default():
    for slug, preset in (("dimr-t3r", "DiMR-T/3R"), ("uvit-t4", "U-ViT-T/4")):
        params = PLAN[f"train-{slug}-10min"].parameters["small"]
        assert params["preset"] == preset and params["time_limit_minutes"] == 10.0 and params["batch_size"] is None
        assert not {"lr", "warmup_steps", "ema_rate"} & set(params)  # nothing but the recipe
        assert PLAN[f"eval-{slug}-10min"].parameters["small"]["num_samples"] >= 500
