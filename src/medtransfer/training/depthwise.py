"""A faster weight gradient for depthwise convolutions whose kernel overhangs the feature map.

On CPUs, PyTorch's weight gradient of a depthwise convolution becomes very slow when the kernel is larger than the
input map, which is where EfficientNet's deepest 5×5 layers are at small input sizes: 1152 channels, a 5×5 kernel
on a 3×3 map at batch 32 take 42 ms, the same layer with a 3×3 kernel 0.6 ms (measured, 2 threads; forward
0.14 ms). The same gradient is a grouped convolution of the padded input with the output's gradient as the
kernel, one group per channel, the batch as the input channels (``dW[c] = Σ_n xpad[n, c] ⋆ dy[n, c]``): 23 ms
there, and slower than PyTorch's kernel everywhere else. :func:`depthwise_conv2d` runs the forward and the input
gradient through PyTorch, and the weight gradient as that grouped convolution where the kernel overhangs the
map (:func:`use_grouped`, a fixed rule from ``benchmarks/depthwise_grad.py``, so that a trial's numbers never
depend on a timing). Both compute the same sums in a different order: they agree within float tolerance (tested
for every depthwise shape of the bundled backbones and a few common ones).

:func:`fast_depthwise` is the context manager the trainer uses: within it, the depthwise convolutions of a module
use this path; on leaving it they are plain PyTorch modules again (the same parameters, so saving, exporting and
loading never see it). Depthwise layers run in float32, also under bf16 autocast: a CPU's bf16 depthwise kernels
are slower than its float32 ones (see :mod:`medtransfer.training.precision`).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from timm.layers import Conv2dSame, pad_same
from torch import nn


def _weight_grad_grouped(x, gy, weight, stride, padding, dilation):
    n, c = x.shape[:2]
    kh, kw = weight.shape[-2:]
    xp = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    inputs = xp.transpose(0, 1).reshape(1, c * n, xp.shape[-2], xp.shape[-1])  # channel-major, batch as channels
    kernel = gy.transpose(0, 1).reshape(c, n, gy.shape[-2], gy.shape[-1])
    # the forward's stride spaces the kernel (dilation) and its dilation steps the output (stride)
    out = F.conv2d(inputs, kernel, None, dilation, 0, stride, c)
    return out[0, :, :kh, :kw].reshape(c, 1, kh, kw)


def _weight_grad_torch(x, gy, weight, stride, padding, dilation):
    return torch.ops.aten.convolution_backward(gy, x, weight, None, stride, padding, dilation, False, [0, 0],
                                               weight.shape[0], [False, True, False])[1]


def use_grouped(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """The rule: the grouped formulation on CPUs where the kernel is larger than the input map (``x`` as the
    convolution gets it, before its own zero padding)."""
    kh, kw = weight.shape[-2:]
    return x.device.type == "cpu" and (kh > x.shape[-2] or kw > x.shape[-1])


class _DepthwiseConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.conv = (stride, padding, dilation, bias is not None)
        return F.conv2d(x, weight, bias, stride, padding, dilation, weight.shape[0])

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, has_bias = ctx.conv
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = gw = gb = None
        if need_w and use_grouped(x, weight):
            gw = _weight_grad_grouped(x, gy, weight, stride, padding, dilation)
            need_w = False
        if need_x or need_w:
            gx, gw_torch, _ = torch.ops.aten.convolution_backward(
                gy, x, weight, None, stride, padding, dilation, False, [0, 0], weight.shape[0],
                [need_x, need_w, False])
            gw = gw if gw is not None else gw_torch
        if has_bias and need_b:
            gb = gy.sum((0, 2, 3))
        return gx, gw, gb, None, None, None


def depthwise_conv2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1)) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, dilation, groups=channels)`` in float32, with the faster
    weight gradient for this shape (see the module docstring)."""
    with torch.autocast(x.device.type, enabled=False):
        x, weight = x.float(), weight.float()
        bias = bias.float() if bias is not None else None
        if not torch.is_grad_enabled() or not (x.requires_grad or weight.requires_grad):
            return F.conv2d(x, weight, bias, stride, padding, dilation, weight.shape[0])
        return _DepthwiseConv2d.apply(x, weight, bias, tuple(stride), tuple(padding), tuple(dilation))


def is_depthwise(m: nn.Module) -> bool:
    return (isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels == m.out_channels
            and m.padding_mode == "zeros" and isinstance(m.padding, tuple))


class _Depthwise(nn.Conv2d):
    """A depthwise :class:`~torch.nn.Conv2d` (or timm's ``Conv2dSame``) through :func:`depthwise_conv2d`; it takes
    the original class's place only inside :func:`fast_depthwise`."""

    same_padding = False

    def forward(self, x):
        if self.same_padding:
            x = pad_same(x, self.weight.shape[-2:], self.stride, self.dilation)
            return depthwise_conv2d(x, self.weight, self.bias, self.stride, (0, 0), self.dilation)
        return depthwise_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


_SUBCLASSES: dict[type, type] = {}


def _fast_class(cls: type) -> type | None:
    if cls not in _SUBCLASSES:
        same = issubclass(cls, Conv2dSame)  # timm's TF-style "same" padding, computed per input
        _SUBCLASSES[cls] = (type(f"Fast{cls.__name__}", (_Depthwise, cls), {"same_padding": same})
                            if cls is nn.Conv2d or same else None)
    return _SUBCLASSES[cls]


@contextlib.contextmanager
def fast_depthwise(module: nn.Module, enabled: bool = True):
    """Within the block, ``module``'s depthwise convolutions use :func:`depthwise_conv2d`."""
    swapped = []
    if enabled:
        for m in module.modules():
            fast = _fast_class(type(m)) if is_depthwise(m) else None
            if fast is not None:
                swapped.append((m, type(m)))
                m.__class__ = fast
    try:
        yield len(swapped)
    finally:
        for m, cls in swapped:
            m.__class__ = cls
