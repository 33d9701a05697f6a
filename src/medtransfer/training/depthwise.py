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

Which one is faster depends on the CPU: on a 2-core AVX2 EPYC the grouped form won on every overhanging shape
(1.6–2.2×), on a 2-core AVX-512 Xeon PyTorch's kernel won on all of them (the grouped form 0.79× as fast). So the
mode ``auto`` (the default) times both, once per layer shape on this machine, the first time a trial meets the
shape, and keeps the grouped form only where it is at least :data:`MARGIN` times faster; the verdicts are kept in
memory and in ``depthwise.json`` under the user's cache folder (:func:`choices_file`; see
:mod:`medtransfer.training.timings`), keyed by the CPU, the thread count and the PyTorch version, so every later
trial and study on the machine takes the same path without timing again — a trial's numbers do not depend on a
timing made during it, except the first time. ``True`` forces the grouped form where the kernel overhangs the map
(the fixed rule), ``False`` keeps PyTorch's kernel everywhere. A layer whose shape takes PyTorch's kernel runs
PyTorch's own autograd, not this module's function (whose Python backward cost about 10 % of a cached ``tune:2`` step).

:func:`fast_depthwise` is the context manager the trainer uses: within it, the depthwise convolutions of a module
use this path; on leaving it they are plain PyTorch modules again (the same parameters, so saving, exporting and
loading never see it). Depthwise layers run in float32, also under bf16 autocast: a CPU's bf16 depthwise kernels
are slower than its float32 ones (see :mod:`medtransfer.training.precision`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.layers import Conv2dSame, pad_same
from torch import nn

from medtransfer.training.timings import Verdicts, compare_ms


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


#: ``auto`` keeps the grouped form where it is at least this many times faster than PyTorch's kernel
MARGIN = 1.15
_VERDICTS = Verdicts("depthwise.json")  # shape → {"torch_ms", "grouped_ms", "grouped"}, per machine


def choices_file() -> Path:
    """Where ``auto``'s verdicts are kept: ``depthwise.json`` in :func:`~medtransfer.training.timings.cache_dir`."""
    return _VERDICTS.path


def _shape_key(x, weight, stride, padding, dilation) -> str:
    return "x".join(map(str, x.shape)) + f" k{'x'.join(map(str, weight.shape[-2:]))} s{stride} p{padding} d{dilation}"


def known_verdict(x, weight, stride, padding, dilation) -> bool | None:
    """``auto``'s verdict for this shape on this machine if it has been timed, else None."""
    verdict = _VERDICTS.get(_shape_key(x, weight, stride, padding, dilation))
    return None if verdict is None else bool(verdict["grouped"])


def grouped_pays(x, gy, weight, stride, padding, dilation) -> bool:
    """``auto``'s verdict for this shape on this machine: timed the first time, then remembered (see the module
    docstring). Shapes outside :func:`use_grouped`'s rule are never timed: PyTorch's kernel wins there."""
    if not use_grouped(x, weight):
        return False
    known = known_verdict(x, weight, stride, padding, dilation)
    if known is None:
        with torch.no_grad():
            t_torch, t_grouped = compare_ms([lambda f=f: f(x, gy, weight, stride, padding, dilation)
                                             for f in (_weight_grad_torch, _weight_grad_grouped)], rounds=3)
        known = t_grouped * MARGIN <= t_torch
        _VERDICTS.put(_shape_key(x, weight, stride, padding, dilation),
                      {"torch_ms": round(t_torch, 3), "grouped_ms": round(t_grouped, 3), "grouped": known})
    return known


class _DepthwiseConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, mode):
        ctx.save_for_backward(x, weight)
        ctx.conv = (stride, padding, dilation, bias is not None, mode)
        return F.conv2d(x, weight, bias, stride, padding, dilation, weight.shape[0])

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, has_bias, mode = ctx.conv
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = gw = gb = None
        grouped = use_grouped(x, weight) if mode is True else (
            mode == "auto" and grouped_pays(x, gy, weight, stride, padding, dilation))
        if need_w and grouped:
            gw = _weight_grad_grouped(x, gy, weight, stride, padding, dilation)
            for record in _RECORDS:
                record.grouped.add(_shape_key(x, weight, stride, padding, dilation))
            need_w = False
        if need_x or need_w:
            gx, gw_torch, _ = torch.ops.aten.convolution_backward(
                gy, x, weight, None, stride, padding, dilation, False, [0, 0], weight.shape[0],
                [need_x, need_w, False])
            gw = gw if gw is not None else gw_torch
        if has_bias and need_b:
            gb = gy.sum((0, 2, 3))
        return gx, gw, gb, None, None, None, None


def depthwise_conv2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                     mode: bool | str = True) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, dilation, groups=channels)`` in float32, with the weight
    gradient that ``mode`` picks for this shape (see the module docstring)."""
    with torch.autocast(x.device.type, enabled=False):
        x, weight = x.float(), weight.float()
        bias = bias.float() if bias is not None else None
        # PyTorch's own autograd wherever its kernel is the one taken: no gradient, a kernel that fits the map,
        # and the shapes that ``auto`` timed the faster with it (the custom function costs a Python backward)
        if (not torch.is_grad_enabled() or not (x.requires_grad or weight.requires_grad)
                or mode is False or not use_grouped(x, weight)
                or (mode == "auto" and known_verdict(x, weight, stride, padding, dilation) is False)):
            return F.conv2d(x, weight, bias, stride, padding, dilation, weight.shape[0])
        return _DepthwiseConv2d.apply(x, weight, bias, tuple(stride), tuple(padding), tuple(dilation), mode)


def is_depthwise(m: nn.Module) -> bool:
    return (isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels == m.out_channels
            and m.padding_mode == "zeros" and isinstance(m.padding, tuple))


class _Depthwise(nn.Conv2d):
    """A depthwise :class:`~torch.nn.Conv2d` (or timm's ``Conv2dSame``) through :func:`depthwise_conv2d`; it takes
    the original class's place only inside :func:`fast_depthwise`."""

    same_padding = False
    depthwise_mode: bool | str = True

    def forward(self, x):
        if self.same_padding:
            x = pad_same(x, self.weight.shape[-2:], self.stride, self.dilation)
            return depthwise_conv2d(x, self.weight, self.bias, self.stride, (0, 0), self.dilation, self.depthwise_mode)
        return depthwise_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                                self.depthwise_mode)


_SUBCLASSES: dict[type, type] = {}


def _fast_class(cls: type) -> type | None:
    if cls not in _SUBCLASSES:
        same = issubclass(cls, Conv2dSame)  # timm's TF-style "same" padding, computed per input
        _SUBCLASSES[cls] = (type(f"Fast{cls.__name__}", (_Depthwise, cls), {"same_padding": same})
                            if cls is nn.Conv2d or same else None)
    return _SUBCLASSES[cls]


def valid_mode(mode) -> bool:
    return mode == "auto" or isinstance(mode, bool)


@dataclass
class Swapped:
    """What :func:`fast_depthwise` did: how many layers it swapped, and the shapes whose weight gradient took the
    grouped form inside the block."""

    layers: int = 0
    grouped: set[str] = field(default_factory=set)


_RECORDS: list[Swapped] = []


@contextlib.contextmanager
def fast_depthwise(module: nn.Module, mode: bool | str = True):
    """Within the block, ``module``'s depthwise convolutions use :func:`depthwise_conv2d` with ``mode`` (``auto``,
    ``True``: the fixed rule, ``False``: nothing is swapped); yields a :class:`Swapped`."""
    if not valid_mode(mode):
        raise ValueError(f"fast_depthwise must be 'auto', true or false, not {mode!r}")
    swapped = []
    record = Swapped()
    if mode is not False:
        for m in module.modules():
            fast = _fast_class(type(m)) if is_depthwise(m) else None
            if fast is not None:
                swapped.append((m, type(m)))
                m.__class__ = fast
                m.depthwise_mode = mode
    record.layers = len(swapped)
    _RECORDS.append(record)
    try:
        yield record
    finally:
        _RECORDS.remove(record)
        for m, cls in swapped:
            m.__class__ = cls
            del m.depthwise_mode
