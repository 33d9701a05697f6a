"""Training throughput (images / second of a training step) of a plain PyTorch loop and of our trials, one run.

    python benchmarks/train_speed.py [--data breastmnist] [--input-size 80] [--backbone tf_efficientnet_lite0]
                                     [--epochs 4] [--threads N] [--precision auto|fp32|bf16]
                                     [--fast-depthwise auto|on|off]

The demo's data and input size and the default backbone. Rows:

- ``plain``: the reference, a timm model trained the way a plain PyTorch loop does it (fp32, the default memory
  format, AdamW, cross-entropy, batches of the decoded images, no augmentation, no validation);
- ``full``, ``tune:2``, ``tune:3`` uncached, ``tune:2``, ``tune:3`` and ``linear`` cached: real trials
  (:func:`medtransfer.engine.trial.run_trial` at the product's defaults, augmentation on), each **before** (fp32,
  BatchNorm not folded, PyTorch's depthwise weight gradient) and **after** (the defaults: ``precision=auto``,
  BatchNorm folded into the frozen layers, ``fast_depthwise=auto``: the grouped depthwise weight gradient on the
  overhanging shapes where it was timed faster on this machine; ``--fast-depthwise on|off`` forces it; on a CPU
  with bf16 units, ``auto`` precision is bf16 for the networks it timed faster in it). A trial's throughput is that
  of its fastest epoch after the first (``train_images / train_seconds``: the loader, forward, backward and
  optimiser step; not validation): the first epoch's warm-up (and ``auto``'s timings) left out, and the fastest, as
  timeit reads a benchmark, because an epoch of BreastMNIST's cached trials lasts a second or two and a busy moment
  of the machine slows one by a quarter.

One process, one setting after another, so the ratios are measured under the same load. The last lines, readable by a
script: ``bar full_vs_plain R`` (our ``full``, after, over ``plain``), ``bar tune2_cached_vs_uncached_fp32 R`` and
``bar tune3_cached_vs_uncached_fp32 R`` (cached, after, over uncached, before).
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from medtransfer import RunConfig, TrainConfig
from medtransfer.strategies import parse_strategy
from medtransfer.engine import TrialImages, build_cache, prepare_data, run_trial

BEFORE = {"precision": "fp32", "fold_batchnorm": False, "fast_depthwise": False}
AFTER = {"precision": "auto", "fold_batchnorm": True, "fast_depthwise": "auto"}  # the product's defaults
ROWS = [("full", False), ("tune:3", False), ("tune:2", False), ("tune:3", True), ("tune:2", True), ("linear", True)]


def plain_loop(images: torch.Tensor, labels: torch.Tensor, backbone: str, batch_size: int, steps: int,
               epochs: int) -> float:
    """Images per second of fp32 training steps of a timm model: the fastest of ``epochs - 1`` rounds of ``steps``
    steps, after a first round to warm up (as the trials' rows are read)."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model(backbone, num_classes=int(labels.max()) + 1).train()
    cfg = model.pretrained_cfg
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    order = torch.randperm(len(images))
    rounds = []
    for _ in range(max(2, epochs)):
        seconds = 0.0
        for step in range(steps):
            idx = order[(step * batch_size) % (len(images) - batch_size):][:batch_size]
            started = time.perf_counter()
            x = images[idx].float().div(255).expand(-1, 3, -1, -1)
            loss = torch.nn.functional.cross_entropy(model((x - mean) / std), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seconds += time.perf_counter() - started
        rounds.append(steps * batch_size / seconds)
    return max(rounds[1:])


def trial_speed(config: RunConfig, prepared, images, cached: bool) -> float:
    cache = build_cache(config, prepared, images, [parse_strategy(config.strategy)]) if cached else None
    outcome = run_trial(config, prepared, images, cache=cache)
    assert outcome.fit.cached == cached, "the cache was not used"
    return max(h["train_images"] / h["train_seconds"] for h in outcome.fit.history[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="breastmnist")
    parser.add_argument("--input-size", type=int, default=80)
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", default="auto", help="the precision of the 'after' rows (default auto)")
    parser.add_argument("--fast-depthwise", choices=("auto", "on", "off"), default="auto",
                        help="the depthwise weight gradient of the 'after' rows (default auto)")
    args = parser.parse_args()
    AFTER.update(precision=args.precision,
                 fast_depthwise={"auto": "auto", "on": True, "off": False}[args.fast_depthwise])
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=160)
    train = TrainConfig(epochs=args.epochs, patience=None, warmup_epochs=1)
    base = RunConfig(data=args.data, input_size=args.input_size, backbone=args.backbone, train=train, device="cpu")
    prepared = prepare_data(base)
    images = TrialImages.load(prepared, args.input_size)
    train_images, train_targets = images.rows(prepared.split.train)
    steps = max(10, len(prepared.split.train) // train.batch_size)

    speeds: dict[tuple[str, bool, str], float] = {}
    plain = plain_loop(train_images, torch.as_tensor(train_targets).long().view(-1), args.backbone, train.batch_size,
                       steps, args.epochs)
    console.print(f"plain: {plain:.1f} images/s")
    for strategy, cached in ROWS:
        for when, settings in (("before", BEFORE), ("after", AFTER)):
            config = RunConfig(**{**base.__dict__, "strategy": strategy, **settings})
            speeds[strategy, cached, when] = trial_speed(config, prepared, images, cached)
            console.print(f"{strategy} {'cached' if cached else 'uncached'} {when}: "
                          f"{speeds[strategy, cached, when]:.1f} images/s")

    table = Table(title=f"training throughput · {args.data} · {args.backbone} · {args.input_size} px · "
                        f"{torch.get_num_threads()} threads (images / s)")
    for col in ("run", "before", "after", "after / before", "after / plain"):
        table.add_column(col, justify="left" if col == "run" else "right")
    table.add_row("plain timm fp32 loop", f"{plain:.1f}", "", "", "1.00")
    for strategy, cached in ROWS:
        b, a = speeds[strategy, cached, "before"], speeds[strategy, cached, "after"]
        table.add_row(f"{strategy} {'cached' if cached else 'uncached'}", f"{b:.1f}", f"{a:.1f}", f"{a / b:.2f}",
                      f"{a / plain:.2f}")
    console.print(table)
    print(f"bar full_vs_plain {speeds['full', False, 'after'] / plain:.3f}")
    for k in (2, 3):
        ratio = speeds[f"tune:{k}", True, "after"] / speeds[f"tune:{k}", False, "before"]
        print(f"bar tune{k}_cached_vs_uncached_fp32 {ratio:.3f}")


if __name__ == "__main__":
    main()
