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


