"""The ConvNeXt blocks' depthwise convolution, with a weight gradient that is fast on CPUs.

A depthwise ``k×k`` convolution (stride 1, padding ``k//2``) has the weight gradient

    ∂L/∂w[c, i, j] = Σ_b Σ_{h,w} x[b, c, h+i−p, w+j−p] · g[b, c, h, w]        (p = k//2, zero padding)

On CPUs PyTorch hands this to oneDNN, which (for the channels-last tensors the ConvNeXt blocks pass) runs
a generic grouped-convolution kernel that treats each channel as a 16×16 block: about ten times the time
of the forward pass, a fifth of a one-thread training step of DiMR-T/3R.  But the sum above is itself a
depthwise correlation, one "channel" per (image, channel) pair: the input ``x[b, c]`` correlated with the
kernel ``g[b, c]`` (``H×W``) at padding ``p`` gives a ``k×k`` map, and summing those maps over ``b`` gives
the gradient.  oneDNN's *forward* depthwise kernel computes that several times faster; a one-thread training
step of DiMR-T/3R is about a fifth shorter for it (``python -m dimr bench --before REV --contention 1``,
``runs/bench/before-f033664-dimr-t-3r-busy-1.json``).

:class:`DepthwiseConv2d` is an ``nn.Conv2d`` (same parameters, same state-dict keys, same forward
arithmetic); only its CPU weight gradient takes this route, accumulated in fp32 and rounded once to the
weight's dtype, as oneDNN's own does.  On other devices (cuDNN has a fast depthwise weight gradient) and
without gradients it is a plain ``nn.Conv2d``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..device import autocast_off

__all__ = ["DepthwiseConv2d", "depthwise_weight_grad"]


def depthwise_weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """The weight gradient of a stride-1, ``kernel_size//2``-padded depthwise convolution (equation above).

    Shapes: ``x: [B, C, H, W]``, ``grad_out: [B, C, H, W]`` (any memory format) ``-> [C, 1, k, k]`` in fp32.
    Computed as one depthwise forward convolution over ``B·C`` channels, in fp32 whatever the inputs' dtype."""
    b, c, h, w = x.shape
    if grad_out.shape != x.shape or kernel_size % 2 != 1:
        raise ValueError(f"need an odd kernel and equal shapes, got k={kernel_size}, {tuple(x.shape)} and {tuple(grad_out.shape)}")
    # one image of B·C channels, stored channels-last (the layout oneDNN's depthwise kernel runs fastest on);
    # each operand is laid out and converted to fp32 in one copy
    signal = torch.empty(h, w, b, c, dtype=torch.float32, device=x.device)
    signal.copy_(x.permute(2, 3, 0, 1))
    signal = signal.view(1, h, w, b * c).permute(0, 3, 1, 2)
    kernels = torch.empty(b, c, h, w, dtype=torch.float32, device=x.device)
    kernels.copy_(grad_out)
    kernels = kernels.view(b * c, 1, h, w)
    with autocast_off(x.device.type):
        maps = F.conv2d(signal, kernels, padding=kernel_size // 2, groups=b * c)  # [1, B·C, k, k]
    return maps.reshape(b, c, kernel_size, kernel_size).sum(0).unsqueeze(1)


class _DepthwiseConv(torch.autograd.Function):
    """``F.conv2d(x, w, b, padding=k//2, groups=C)`` whose backward takes the input gradient from
    PyTorch (oneDNN's depthwise kernel is fast there) and the weight gradient from
    :func:`depthwise_weight_grad`."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        k = weight.shape[-1]
        return F.conv2d(x, weight, bias, padding=k // 2, groups=weight.shape[0])

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        k, c = weight.shape[-1], weight.shape[0]
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, [1, 1], [k // 2, k // 2], [1, 1], False, [0, 0], c,
                [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_w = depthwise_weight_grad(x, grad_out, k).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.float().sum((0, 2, 3)).to(weight.dtype)
        return grad_x, grad_w, grad_b


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise ``k×k`` convolution (``groups = channels``, stride 1, padding ``k//2``, ``k`` odd).

    Shapes: ``forward(x: [B, C, H, W]) -> [B, C, H, W]``.  Its parameters and forward are ``nn.Conv2d``'s;
    on a CPU, while gradients are recorded, the weight gradient takes the fast route of the module docstring."""

    def __init__(self, channels: int, kernel_size: int = 7, bias: bool = True):
        if kernel_size % 2 != 1:
            raise ValueError(f"a depthwise kernel keeps the size only when odd, got {kernel_size}")
        super().__init__(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or not torch.is_grad_enabled():
            return super().forward(x)
        weight, bias = self.weight, self.bias
        if torch.is_autocast_enabled("cpu"):  # cast as autocast would cast F.conv2d's arguments
            dtype = torch.get_autocast_dtype("cpu")
            x, weight = x.to(dtype), weight.to(dtype)
            bias = bias.to(dtype) if bias is not None else None
        return _DepthwiseConv.apply(x, weight, bias)
