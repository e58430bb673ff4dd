"""The depthwise convolution's CPU weight gradient equals PyTorch's, in every layout, size and precision."""
import pytest
import torch
from torch import nn

from dimr.nn.blocks import ConvNeXtBlock
from dimr.nn.depthwise import DepthwiseConv2d, depthwise_weight_grad
from dimr.profile import MacCounter


def _pair(channels: int, k: int, bias: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    ours = DepthwiseConv2d(channels, k, bias=bias)
    ref = nn.Conv2d(channels, channels, k, padding=k // 2, groups=channels, bias=bias)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def _grads(module, x, g, dtype=None):
    x = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        y = module(x)
    y.float().backward(g)
    return y, [x.grad] + [p.grad for p in module.parameters()]


@pytest.mark.parametrize("k,shape,channels_last", [(7, (3, 5, 9, 11), True), (7, (2, 4, 6, 6), False),
                                                    (3, (2, 16, 8, 5), True), (5, (1, 3, 4, 4), False)])
@pytest.mark.parametrize("bias", [True, False])
def test_fp32_gradients_equal_torch(k, shape, channels_last, bias):
    b, c, h, w = shape
    ours, ref = _pair(c, k, bias)
    x = torch.randn(b, h, w, c).permute(0, 3, 1, 2) if channels_last else torch.randn(shape)
    g = torch.randn(shape)
    y, grads = _grads(ours, x, g)
    y_ref, grads_ref = _grads(ref, x, g)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)  # the forward is nn.Conv2d's own
    assert len(grads) == len(grads_ref) == (3 if bias else 2)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_bf16_autocast_matches_torch_within_bf16():
    ours, ref = _pair(32, 7)
    x, g = torch.randn(4, 9, 11, 32).permute(0, 3, 1, 2), torch.randn(4, 32, 9, 11)
    y, grads = _grads(ours, x, g, torch.bfloat16)
    y_ref, grads_ref = _grads(ref, x, g, torch.bfloat16)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    for got, want in zip(grads, grads_ref):
        assert got.dtype == want.dtype  # fp32 leaves get fp32 gradients, through autocast's cast
        torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)


def test_weight_grad_function_is_the_correlation():
    x, g = torch.randn(2, 3, 6, 7), torch.randn(2, 3, 6, 7)
    want = torch.nn.grad.conv2d_weight(x, (3, 1, 5, 5), g, padding=2, groups=3)
    torch.testing.assert_close(depthwise_weight_grad(x, g, 5), want, rtol=1e-5, atol=1e-5)
    # a direct sum for one tap: w[c, i, j] pairs x shifted by (i - p, j - p) with g
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    tap = (xp[:, 1, 0:6, 4:11] * g[:, 1]).sum()
    torch.testing.assert_close(depthwise_weight_grad(x, g, 5)[1, 0, 0, 4], tap, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="odd kernel"):
        depthwise_weight_grad(x, g, 4)
    with pytest.raises(ValueError, match="equal shapes"):
        depthwise_weight_grad(x, g[:, :2], 5)


def test_even_kernel_refused():
    with pytest.raises(ValueError, match="odd"):
        DepthwiseConv2d(8, 4)


def test_no_grad_and_meta_take_the_plain_path():
    ours, ref = _pair(8, 7)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)
    with torch.device("meta"):
        block = ConvNeXtBlock(16)
    with MacCounter() as counter:
        block.dwconv(torch.empty(1, 16, 8, 8, device="meta"))
    assert counter.total == 16 * 8 * 8 * 49
    with MacCounter() as counter:  # the CPU training path runs the same convolution, counted alike
        ours(x.requires_grad_())
    assert counter.total == 8 * 5 * 5 * 49 * 2


def test_convnext_block_keeps_its_parameter_names():
    keys = ConvNeXtBlock(16).state_dict().keys()
    assert {"dwconv.weight", "dwconv.bias"} <= set(keys)
    assert isinstance(ConvNeXtBlock(16).dwconv, nn.Conv2d)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_convnext_block_gradients_equal_plain_conv_with_and_without_checkpointing(checkpointing):
    from dimr.nn.blocks import maybe_checkpoint

    torch.manual_seed(1)
    ours = ConvNeXtBlock(16, norm="ln")
    plain = ConvNeXtBlock(16, norm="ln")
    plain.dwconv = nn.Conv2d(16, 16, 7, padding=3, groups=16)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(2, 8, 8, 16)
    for block in (ours, plain):
        maybe_checkpoint(checkpointing, block, x).square().sum().backward()
    for (name, p), q in zip(ours.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-5, msg=name)
