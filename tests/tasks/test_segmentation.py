"""Segmentation as a task: a U-Net on the pre-trained encoder's groups, cut by the same strategies, trained for real."""

import json

import numpy as np
import pytest
import torch
from generated import assert_cache_changes_nothing, run_cli, trial_setup

from medtransfer import RunConfig, TrainConfig
from medtransfer.backbones import create_backbone
from medtransfer.data import Augmentation
from medtransfer.data.dataset import ImageTensorDataset
from medtransfer.errors import ConfigError
from medtransfer.metrics.masks import dice_per_image
from medtransfer.run import train
from medtransfer.model.saved import load_model
from medtransfer.strategies import parse_strategy
from medtransfer.engine import build_cache, build_network
from medtransfer.tasks import read_data
from medtransfer.tasks import get_task
from medtransfer.tasks.segmentation import encoder_groups

QUICK = TrainConfig(epochs=3, batch_size=8, patience=None, warmup_epochs=1)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    tensors = dict(module.named_parameters()) | dict(module.named_buffers())
    return {k: v.detach().clone() for k, v in tensors.items()}


def test_encoder_groups_end_at_the_unet_feature_maps():
    backbone = create_backbone(weights="scratch")
    groups, taps = encoder_groups(backbone)
    assert len(groups) == 8 and groups[-1].name == "blocks.6"  # conv_head is not part of the encoder
    assert [groups[t].name for t in taps] == ["blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6"]


def test_a_backbone_whose_feature_maps_are_inside_a_group_is_refused():
    with pytest.raises(ConfigError, match="do not all end a layer group"):
        encoder_groups(create_backbone("resnet18", weights="scratch"))


@pytest.mark.parametrize(("strategy", "decoder"), [("linear", "unet"), ("tune:2", "fpn"), ("full", "unet")])
def test_the_strategy_cuts_the_encoder_and_the_decoder_always_trains(blob_folder, strategy, decoder):
    _, data = read_data(blob_folder)
    config = RunConfig(data=str(blob_folder), strategy=strategy, input_size=64, train=QUICK, task="segmentation",
                       task_options={"decoder": decoder})
    s = parse_strategy(strategy)
    backbone, task, net = build_network(config, s, data, None)
    assert task.head.decoder == decoder
    n = len(task.head.groups(backbone))
    assert net.frozen_groups == s.frozen_groups(n)
    assert all(p.requires_grad for p in net.suffix.head.parameters())
    assert not any(p.requires_grad for p in net.prefix.parameters())
    prefix_before, decoder_before = _snapshot(net.prefix), _snapshot(net.suffix.head)

    images = torch.as_tensor(np.stack([np.asarray(s.load_image()) for s in data.samples[:16]])).permute(0, 3, 1, 2)
    masks = torch.stack([torch.as_tensor(s.load_mask()) for s in data.samples[:16]])
    loader = torch.utils.data.DataLoader(ImageTensorDataset(images, masks), batch_size=8)
    from medtransfer.training import Trainer

    Trainer(task, config.train, torch.device("cpu")).fit(net, loader, loader)
    for k, v in _snapshot(net.prefix).items():  # frozen encoder groups, BatchNorm statistics included
        assert torch.equal(v, prefix_before[k]), k
    assert any(not torch.equal(v, decoder_before[k]) for k, v in _snapshot(net.suffix.head).items())
    out = net.eval()(images[:2])
    assert out.shape == (2, 2, 64, 64)


def test_joint_augmentation_moves_image_and_mask_alike(blob_folder):
    _, data = read_data(blob_folder)
    mask = torch.as_tensor(data.samples[0].load_mask())
    image = (mask * 255).expand(3, -1, -1).clone()  # an image that is its own mask
    aug = Augmentation(rotate_degrees=30, translate=0.1, scale=(0.8, 1.2), brightness=0, contrast=0, hflip=True, vflip=True)
    ds = ImageTensorDataset(image[None], mask[None], get_task("segmentation").codec.augment(aug.build()))
    torch.manual_seed(0)
    moved = 0
    for _ in range(10):
        x, m = ds[0]
        assert set(torch.unique(m).tolist()) <= {0, 1}  # nearest neighbour: no new label values
        agree = ((x[0] > 127) == (m == 1)).float().mean().item()
        assert agree > 0.97
        moved += not torch.equal(m, mask)
    assert moved >= 8
    # intensity transforms touch the image only
    bright = ImageTensorDataset(image[None] // 2, mask[None],
                                get_task("segmentation").codec.augment(Augmentation(0, 0, (1, 1), 0.5, 0.5).build()))
    x, m = bright[0]
    assert torch.equal(m, mask)


def test_dice_per_image_matches_the_metrics_module():
    from medtransfer.metrics.masks import mask_metrics

    rng = np.random.default_rng(0)
    pred = rng.integers(0, 3, (5, 16, 16))
    true = rng.integers(0, 3, (5, 16, 16))
    true[0] = 0
    pred[0] = 0  # both empty: Dice 1
    ours = dice_per_image(pred, true, 3)
    np.testing.assert_allclose(ours, mask_metrics(pred, true, 3)["per_image"]["dice"])


def _setup(folder, **kw):
    return trial_setup(folder, 64, QUICK, **kw)


@pytest.mark.parametrize("strategy", ["linear", "tune:3"])
def test_cached_encoder_maps_give_the_same_training(blob_folder, strategy):
    cfg, prepared, images = _setup(blob_folder, strategy=strategy, seed=1)
    cache = build_cache(cfg, prepared, images, [parse_strategy(strategy)])
    assert cache is not None
    # the skip features within the frozen prefix are cached too: linear reads all five maps
    k = parse_strategy(strategy).frozen_groups(8)
    assert cache.reads[k] == ((2, 3, 4, 6, 8, 8) if strategy == "linear" else (2, 3, 4, 5))
    assert_cache_changes_nothing(cfg, prepared, images, cache, "dice")


def test_cached_views_keep_each_views_mask(blob_folder):
    cfg, prepared, images = _setup(blob_folder, strategy="linear")
    cfg = RunConfig(**{**cfg.__dict__, "augmentation": "strong+hflip+vflip", "cache_views": 3})
    cache = build_cache(cfg, prepared, images, [parse_strategy("linear")])
    views = torch.stack([torch.stack(v) for v in cache.train_targets], 1)  # N×V×H×W
    assert views.shape[1] == 3 and views.ndim == 4
    assert not torch.equal(views[:, 0], views[:, 1])  # each view drew its own geometry, and its mask moved with it


def test_a_pretrained_unet_learns_the_blobs_and_its_run_folder_reloads(blob_folder, tmp_path):
    cfg = RunConfig(data=str(blob_folder), strategy="full", input_size=64, augmentation="light+hflip+vflip",
                    train=TrainConfig(epochs=12, batch_size=4, patience=None))
    result = train(cfg, tmp_path / "run")
    m = result.metrics
    assert m["task"] == "segmentation"
    assert m["test"]["dice"]["value"] > 0.8, m["test"]
    assert set(m["test"]) == {"dice", "iou", "hd95"}
    saved = load_model(tmp_path / "run")
    assert saved.task.name == "segmentation"
    rows = (tmp_path / "run" / "test_predictions.csv").read_text().splitlines()
    assert rows[0] == "sample,dice_foreground" and len(rows) == 1 + m["data"]["counts"]["test"]


def test_cli_trains_a_segmentation_run_and_refuses_the_wrong_task(blob_folder, shape_folder, tmp_path, capsys):
    code, _, err = run_cli(["train", "--task", "segmentation", "--data", blob_folder, "--strategy", "linear",
                              "--epochs", "1", "--input-size", "32", "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "dice" in metrics["test"] and metrics["data"]["counts"]["test"] == 4  # 80/10/10 of 40 images
    code, _, err = run_cli(["train", "--task", "segmentation", "--data", shape_folder, "--out", tmp_path / "x"], capsys)
    assert code == 2 and "segmentation" in err and "Traceback" not in err
    code, _, err = run_cli(["train", "--task", "segmentation", "--data", blob_folder, "--input-size", "48",
                            "--out", tmp_path / "y", "--quiet"], capsys)
    assert code == 2 and "multiple of 32" in err and "e.g. 64" in err and "Traceback" not in err
