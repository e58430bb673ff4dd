"""Device choice, the autocast rule and the CPU allocator setting (dimr.device)."""
import platform

import pytest
import torch

from dimr import device as D


def test_auto_autocast_follows_native_bf16(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert D.autocast_dtype("auto", cuda) is torch.bfloat16
    monkeypatch.setattr(D, "cpu_has_native_bf16", lambda: True)
    assert D.autocast_dtype("auto", cpu) is torch.bfloat16
    monkeypatch.setattr(D, "cpu_has_native_bf16", lambda: False)
    assert D.autocast_dtype("auto", cpu) is None  # emulated bf16 is slower than fp32: stay in fp32
    assert D.autocast_dtype("none", cuda) is None and D.autocast_dtype("fp16", cpu) is torch.float16
    with pytest.raises(ValueError, match="amp"):
        D.autocast_dtype("fp8", cpu)


def test_pick_device():
    assert D.pick_device("cpu") == torch.device("cpu")
    assert D.pick_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert D.pick_device(torch.device("cpu")) == torch.device("cpu")  # an already chosen device passes


def test_pick_device_refuses_bad_names_and_absent_gpus(monkeypatch):
    with pytest.raises(ValueError, match="bad device 'nonsense'"):
        D.pick_device("nonsense")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert D.pick_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match=f"device {name} requested but torch sees no CUDA device"):
            D.pick_device(name)


def test_the_allocator_setting_changes_no_result():
    torch.manual_seed(0)
    x = torch.randn(64, 512, 512)
    before = (x * 2).sum()
    accepted = D.tune_cpu_allocator()
    if platform.libc_ver()[0] == "glibc":
        assert accepted is True  # glibc takes both thresholds; elsewhere it is a no-op that says False
    assert D.tune_cpu_allocator() == D.tune_cpu_allocator()  # idempotent
    assert torch.equal((x * 2).sum(), before)




def test_a_run_takes_the_cores_that_are_free():
    assert D.cpu_threads(2, busy_elsewhere=0.1) == 2  # idle: every core, as before
    assert D.cpu_threads(2, busy_elsewhere=1.0) == 1  # one busy process beside it on two cores
    assert D.cpu_threads(2, busy_elsewhere=3.0) == 1  # never fewer than one
    assert D.cpu_threads(16, busy_elsewhere=0.4, ceiling=8) == 8  # never more than torch would use
    assert D.cpu_threads(4, busy_elsewhere=1.6) == 2  # a core busy from half its time on counts as busy


def test_an_explicit_thread_count_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    threads, why = D.use_free_cores(seconds=0.01)
    assert threads == before and why == "OMP_NUM_THREADS=1"


def test_the_load_elsewhere_leaves_this_process_out(monkeypatch):
    """A process busy itself is not "another process": its own ticks are taken out of the machine's."""
    busy = D.busy_cores_elsewhere(seconds=0.05)
    if busy is None:
        pytest.skip("no /proc here")
    ticks = iter([(1000.0, 10.0), (1000.0 + 0.5 * 100, 10.0 + 0.5 * 100)])  # all the machine's work was ours
    monkeypatch.setattr(D, "_proc_busy_ticks", lambda: next(ticks))
    monkeypatch.setattr(D.os, "sysconf", lambda name: 100)
    assert D.busy_cores_elsewhere(seconds=0.5) == 0.0
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(D, "busy_cores_elsewhere", lambda seconds=0.5: 1.0)
    monkeypatch.setattr(D.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(D.torch, "set_num_threads", lambda n: None)
    monkeypatch.setattr(D.torch, "get_num_threads", lambda: 2)
    assert D.use_free_cores() == (1, "1 of 2 cores free (other processes kept 1.0 busy at the start)")
