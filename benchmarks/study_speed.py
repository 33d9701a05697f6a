"""How much the frozen-prefix cache saves: the same grid twice in one run, cache on then off.

    python benchmarks/study_speed.py [--data breastmnist] [--input-size 80] [--epochs 14]

BreastMNIST, every strategy, one training fraction (100 %), one seed, fixed epochs (the demo's input size and
epochs by default), no early stopping. Prints, per strategy, the trial's wall time with and without the cache, the
speed-up and the test AUC both ways; then the grid's totals (the cached total includes building the cache) and the
training throughput of `full` next to a plain PyTorch loop over the same model, data, augmentation and loss. Ratios
are measured within this one run.

The "ceiling" column estimates the most any cache of the frozen prefix could save per epoch of that trial: a cache removes
the augmentation and the prefix's forward pass (over the training and the validation images), and nothing else, so
an epoch cannot shrink below its suffix's forward and backward. It is 1 / (1 - share), where share is the time of
those removed steps (timed right after the uncached trial, same batches) over the uncached trial's mean epoch. The
trial's fixed costs (building the network, testing) are outside it. It is an estimate from steps timed on their own:
measured speed-ups can exceed it a little (the cached suffix also runs on warm, contiguous inputs).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from medtransfer import RunConfig, TrainConfig
from medtransfer.data import Augmentation
from medtransfer.engine import (
    TrialImages,
    build_cache,
    build_network,
    image_loader,
    prepare_data,
    run_trial,
)
from medtransfer.strategies import layerwise_strategies, parse_strategy
from medtransfer.study.demo import DEMO_INPUT_SIZE, DEMO_TRAIN


def run_grid(cfg: RunConfig, prepared, images, strategies, cached: bool):
    started = time.perf_counter()
    build = 0.0
    cache = None
    if cached:
        cache = build_cache(cfg, prepared, images, [parse_strategy(s) for s in strategies])
        build = time.perf_counter() - started
    rows = {}
    for s in strategies:
        t = time.perf_counter()
        out = run_trial(RunConfig(**{**cfg.__dict__, "strategy": s}), prepared, images, cache=cache)
        rows[s] = {"seconds": time.perf_counter() - t, "auc": out.test_metrics["auc"]["value"], "cached": out.fit.cached,
                   "history": out.fit.history}
        if not cached:
            rows[s]["prefix_share"] = prefix_share(out, images, prepared, cfg)
    return rows, build, time.perf_counter() - started


@torch.no_grad()
def prefix_share(out, images, prepared, cfg: RunConfig) -> float:
    """Share of an uncached epoch that a cache removes: augmenting the training images and the frozen prefix's
    forward pass over them and over the validation images, timed over the same batches (best of two passes);
    0 for scratch and full."""
    if out.net.frozen_groups == 0:
        return 0.0
    bs = cfg.train.batch_size
    task = out.task
    train = image_loader(task, *images.rows(prepared.split.train), bs,
                         augment=task.codec.augment(Augmentation.preset(cfg.augmentation).build()), shuffle=True, seed=cfg.seed)
    val = image_loader(task, *images.rows(prepared.split.val), 2 * bs)
    passes = []
    for _ in range(2):
        started = time.perf_counter()
        for loader in (train, val):
            for x, _y in loader:
                out.net.prefix(x)
        passes.append(time.perf_counter() - started)
    epoch = np.mean([h["seconds"] for h in out.fit.history])
    return min(min(passes) / epoch, 0.99)


def plain_loop_throughput(cfg: RunConfig, prepared, images, epochs: int) -> float:
    """Images per second of a plain PyTorch loop: timm model, AdamW, the same batches, augmentation, loss and
    weight averaging (EMA) as medtransfer's defaults, written inline."""
    import timm
    from timm.utils import ModelEmaV3

    from medtransfer.backbones.weights import initialise

    data = prepared.data
    targets = data.targets()
    _, task, _ = build_network(cfg, parse_strategy("full"), data, targets[prepared.split.train], prepared.task)
    torch.manual_seed(cfg.seed)
    model = timm.create_model(cfg.backbone, pretrained=False)
    initialise(model, cfg.backbone, "imagenet", "classifier")
    model.reset_classifier(data.num_classes)
    model = model.to(memory_format=torch.channels_last).train()
    cfgm = timm.data.resolve_data_config({}, model=model)
    mean = torch.tensor(cfgm["mean"]).view(1, 3, 1, 1) * 255
    std = torch.tensor(cfgm["std"]).view(1, 3, 1, 1) * 255
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    ema = ModelEmaV3(model, decay=cfg.train.ema_decay, use_warmup=True) if cfg.train.ema_decay else None
    loader = image_loader(task, *images.rows(prepared.split.train), cfg.train.batch_size,
                          augment=task.codec.augment(Augmentation.preset(cfg.augmentation).build()), shuffle=True,
                          seed=cfg.seed)
    seen, seconds = 0, 0.0
    for _ in range(epochs):
        t = time.perf_counter()
        for x, y in loader:
            x = ((x.float().expand(-1, 3, -1, -1) - mean) / std).contiguous(memory_format=torch.channels_last)
            loss = task.scorer.loss(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update(model)
            seen += len(y)
        seconds += time.perf_counter() - t
    return seen / seconds


def ceiling(share: float) -> str:
    return "> 100×" if share >= 0.99 else f"{1 / (1 - share):.1f}×"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="breastmnist")
    p.add_argument("--input-size", type=int, default=DEMO_INPUT_SIZE)
    p.add_argument("--epochs", type=int, default=DEMO_TRAIN.epochs)
    p.add_argument("--augmentation", default="light")
    args = p.parse_args()

    cfg = RunConfig(data=args.data, input_size=args.input_size, augmentation=args.augmentation, device="cpu",
                    train=TrainConfig(epochs=args.epochs, patience=None))
    prepared = prepare_data(cfg)
    images = TrialImages.load(prepared, cfg.input_size)
    from medtransfer.backbones import create_backbone

    strategies = [s.name for s in layerwise_strategies(create_backbone(cfg.backbone, "scratch").num_groups)]
    cached, build, total_cached = run_grid(cfg, prepared, images, strategies, cached=True)
    plain, _, total_plain = run_grid(cfg, prepared, images, strategies, cached=False)
    loop_ips = plain_loop_throughput(cfg, prepared, images, args.epochs)

    console = Console()
    table = Table(title=f"{args.data} at {args.input_size} px, {args.epochs} epochs, one seed, 100 % of train "
                        f"(augmentation {args.augmentation}); cache built once in {build:.1f} s")
    for col in ("strategy", "cached s", "uncached s", "speed-up", "ceiling (est.)", "AUC cached", "AUC uncached"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for s in strategies:
        c, u = cached[s], plain[s]
        table.add_row(s + ("" if c["cached"] else " (not cacheable)"), f"{c['seconds']:.1f}", f"{u['seconds']:.1f}",
                      f"{u['seconds'] / c['seconds']:.1f}×", ceiling(u["prefix_share"]) if c["cached"] else "",
                      f"{c['auc']:.3f}", f"{u['auc']:.3f}")
    table.add_row("whole grid", f"{total_cached:.1f}", f"{total_plain:.1f}", f"{total_plain / total_cached:.2f}×", "", "", "",
                  end_section=True)
    console.print(table)

    def ips(history):
        return sum(h["train_images"] for h in history) / sum(h["train_seconds"] for h in history)

    ours = np.mean([ips(plain["full"]["history"]), ips(cached["full"]["history"])])
    console.print(f"`full` training throughput: medtransfer {ours:.1f} images/s, plain PyTorch loop {loop_ips:.1f} "
                  f"images/s: ratio {ours / loop_ips:.3f}")


if __name__ == "__main__":
    main()
