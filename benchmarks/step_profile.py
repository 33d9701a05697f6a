"""Where one cached ``tune:K`` training step spends its time: forward, backward, optimiser, and the top operators.

    python benchmarks/step_profile.py [--strategy tune:3] [--input-size 80] [--batch-size 32] [--precision fp32]

The trainable suffix of the default backbone (ImageNet weights, offline) on a batch of frozen-prefix outputs, as a
cached trial trains it: the median of 10 steps of forward, backward and AdamW, each part timed on its own, then
``torch.profiler``'s self time per operator over 5 steps (the largest 12, and the convolutions' forward and
backward split into depthwise and dense by the layer's groups). Also the frozen prefix's forward (BatchNorm folded,
as an uncached trial runs it), which is all a cached step saves: ``(prefix + step) / step`` bounds how much faster
a cached step can be than an uncached one with these kernels. The depthwise gradient and AdamW as trials take them
(``fast_depthwise`` auto, fused AdamW).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections import defaultdict

import torch
from rich.console import Console
from rich.table import Table

from medtransfer.backbones import create_backbone
from medtransfer.strategies import parse_strategy
from medtransfer.tasks import get_task
from medtransfer.training.depthwise import fast_depthwise
from medtransfer.training.precision import resolve_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="tune:3")
    parser.add_argument("--input-size", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    torch.manual_seed(0)
    task = get_task("classification").from_spec({"class_names": ["a", "b"], "label_kind": "binary"})
    net = task.head.build_network(create_backbone(), parse_strategy(args.strategy))
    net = net.to(memory_format=torch.channels_last)  # as a trial runs it
    net.train()
    x = torch.rand(args.batch_size, 3, args.input_size, args.input_size).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        features = net.prefix(x)
    y = torch.randint(0, 2, (args.batch_size,))
    params = [p for p in net.suffix.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)  # as build_optimizer makes it on a CPU
    precision = resolve_precision(args.precision, "cpu")
    kept = contextlib.ExitStack()  # held to the end: the depthwise layers as trials run them
    kept.enter_context(fast_depthwise(net.suffix, "auto"))

    def forward():
        with precision.autocast():
            return torch.nn.functional.cross_entropy(net.suffix(features).float(), y)

    parts = defaultdict(list)
    for step in range(13):
        t0 = time.perf_counter()
        loss = forward()
        t1 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        if step >= 3:
            for name, t in (("forward", t1 - t0), ("backward", t2 - t1), ("optimiser", t3 - t2), ("step", t3 - t0)):
                parts[name].append(t * 1000)
    folded = net.prefix.folded(x)  # the frozen layers as an uncached trial runs them: what the cache saves a step
    prefix = []
    with torch.no_grad():
        for step in range(8):
            t0 = time.perf_counter()
            folded(x)  # float32 in every precision, as trials run the frozen layers
            if step >= 2:
                prefix.append((time.perf_counter() - t0) * 1000)
    console = Console(width=140)
    console.print(f"{args.strategy} cached · {args.input_size} px · batch {args.batch_size} · {args.precision} · "
                  f"{torch.get_num_threads()} threads: " + ", ".join(
                      f"{k} {statistics.median(v):.1f} ms" for k, v in parts.items()))
    pre, stp = statistics.median(prefix), statistics.median(parts["step"])
    console.print(f"frozen prefix forward {pre:.1f} ms: with these kernels a cached step can be at most "
                  f"(prefix + step) / step = {(pre + stp) / stp:.2f}× as fast as an uncached one")

    depthwise = {m.weight.shape[0] for m in net.suffix.modules()
                 if isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels}
    with torch.profiler.profile(record_shapes=True) as prof:
        for _ in range(5):
            loss = forward()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    by_kind = defaultdict(float)
    for event in prof.events():
        if "convolution" not in event.name or event.cpu_parent is not None and "convolution" in event.cpu_parent.name:
            continue
        shapes = event.input_shapes or []
        weight = next((s for s in shapes if len(s) == 4 and s[1] == 1), None)
        kind = "depthwise" if weight and weight[0] in depthwise else "dense"
        phase = "backward" if "backward" in event.name else "forward"
        by_kind[f"{phase} {kind} convolutions"] += event.cpu_time_total / 1000 / 5
    table = Table(title="per step, ms (profiler)")
    table.add_column("operator / part")
    table.add_column("ms", justify="right")
    for name, ms in sorted(by_kind.items()):
        table.add_row(name, f"{ms:.1f}")
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
    for e in ops:
        table.add_row(f"self: {e.key}", f"{e.self_cpu_time_total / 1000 / 5:.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
