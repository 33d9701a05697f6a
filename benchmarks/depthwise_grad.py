"""The weight gradient of every depthwise convolution of a backbone: PyTorch's kernel vs the grouped formulation.

    python benchmarks/depthwise_grad.py [--backbone tf_efficientnet_lite0] [--sizes 80,128] [--batch-size 32]

For each depthwise layer (at each input size): its input shape, the output map's positions, the median time of
PyTorch's weight gradient and of :mod:`medtransfer.training.depthwise`'s grouped formulation, their ratio, the
largest relative difference of the two gradients, and what the rule (:func:`use_grouped`: the kernel overhangs the
map) picks. The rule is right where
the pick is the faster one; the last line counts the layers where it is not and the time the rule saves in total.
"""

from __future__ import annotations

import argparse

import timm
import torch
from rich.console import Console
from rich.table import Table

from medtransfer.training.depthwise import _weight_grad_grouped, _weight_grad_torch, is_depthwise, use_grouped
from medtransfer.training.timings import median_ms


def depthwise_inputs(backbone: str, size: int, batch: int):
    model = timm.create_model(backbone).eval().to(memory_format=torch.channels_last)
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((m, i[0].detach(), o.detach())))
             for m in model.modules() if is_depthwise(m)]
    with torch.no_grad():
        model(torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last))
    for h in hooks:
        h.remove()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--sizes", default="80,128")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    table = Table(title=f"depthwise weight gradient · {args.backbone} · batch {args.batch_size} · "
                        f"{torch.get_num_threads()} threads · rule: grouped where the kernel overhangs the map")
    for col in ("size", "channels", "kernel", "stride", "input map", "output map", "torch (ms)", "grouped (ms)",
                "torch / grouped", "max rel diff", "rule picks"):
        table.add_column(col, justify="right")
    wrong, saved, total_torch = 0, 0.0, 0.0
    for size in (int(s) for s in args.sizes.split(",")):
        for m, x, y in depthwise_inputs(args.backbone, size, args.batch_size):
            if type(m).__name__ == "Conv2dSame":
                from timm.layers import pad_same

                x = pad_same(x, m.weight.shape[-2:], m.stride, m.dilation)
                padding = (0, 0)
            else:
                padding = m.padding
            gy = torch.randn_like(y)
            w = m.weight.detach()
            conv = (tuple(m.stride), tuple(padding), tuple(m.dilation))
            t_torch = median_ms(_weight_grad_torch, x, gy, w, *conv, repeats=7) / 1e3
            t_grouped = median_ms(_weight_grad_grouped, x, gy, w, *conv, repeats=7) / 1e3
            a, b = _weight_grad_torch(x, gy, w, *conv), _weight_grad_grouped(x, gy, w, *conv)
            rel = ((a - b).abs().max() / a.abs().max()).item()
            pick = "grouped" if use_grouped(x, w) else "torch"  # x as the convolution gets it in training
            if (pick == "grouped") != (t_grouped < t_torch):
                wrong += 1
            saved += t_torch - (t_grouped if pick == "grouped" else t_torch)
            total_torch += t_torch
            table.add_row(str(size), str(m.in_channels), "×".join(map(str, m.kernel_size)), str(m.stride[0]),
                          f"{x.shape[-2]}×{x.shape[-1]}", f"{y.shape[-2]}×{y.shape[-1]}", f"{1e3 * t_torch:.2f}",
                          f"{1e3 * t_grouped:.2f}", f"{t_torch / t_grouped:.2f}", f"{rel:.1e}", pick)
    Console(width=160).print(table)
    print(f"rule wrong on {wrong} layers · weight-gradient time {1e3 * total_torch:.1f} ms with torch, "
          f"{1e3 * (total_torch - saved):.1f} ms with the rule ({total_torch / max(total_torch - saved, 1e-9):.2f}×)")


if __name__ == "__main__":
    main()
