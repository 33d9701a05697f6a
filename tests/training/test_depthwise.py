"""The depthwise weight gradient's second formulation: the same gradients as PyTorch's, for every depthwise shape of
the bundled backbones and a few common ones, a trainer path that leaves the modules as they were, and ``auto``'s
verdicts: timed once per shape, kept on disk, followed by every later process."""

import json

import pytest
import timm
import torch

from medtransfer.training import depthwise
from medtransfer.training.depthwise import (
    _weight_grad_torch,
    _weight_grad_grouped,
    choices_file,
    depthwise_conv2d,
    fast_depthwise,
    is_depthwise,
)
from medtransfer.training.timings import Verdicts, machine_key


def _depthwise_calls(model, size):
    """(module, padded input, output) of each depthwise convolution in one forward pass."""
    seen = []

    def hook(m, inputs, output):
        x = inputs[0]
        if type(m).__name__ == "Conv2dSame":
            from timm.layers import pad_same

            x = pad_same(x, m.weight.shape[-2:], m.stride, m.dilation)
        seen.append((m, x.detach(), output.detach()))

    hooks = [m.register_forward_hook(hook) for m in model.modules() if is_depthwise(m)]
    with torch.no_grad():
        model.eval()(torch.randn(2, 3, size, size).contiguous(memory_format=torch.channels_last))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2",
                                  "efficientnet_b0", "mobilenetv3_large_100"])
def test_grouped_weight_gradient_equals_pytorchs_for_every_depthwise_shape(name):
    model = timm.create_model(name).to(memory_format=torch.channels_last)
    calls = [c for size in (32, 80, 128) for c in _depthwise_calls(model, size)]
    assert len(calls) >= 3 * 9
    g = torch.Generator().manual_seed(0)
    for m, x, y in calls:
        padding = (0, 0) if type(m).__name__ == "Conv2dSame" else m.padding
        gy = torch.randn(y.shape, generator=g)
        conv = (tuple(m.stride), tuple(padding), tuple(m.dilation))
        expected = _weight_grad_torch(x, gy, m.weight.detach(), *conv)
        got = _weight_grad_grouped(x, gy, m.weight.detach(), *conv)
        assert got.shape == m.weight.shape
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())


@pytest.mark.parametrize("size", [3, 40])  # a map the 5×5 kernel overhangs (grouped) and a large one (PyTorch's)
def test_depthwise_conv2d_gradients_match_conv2d(size):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 16, size, size, generator=g, requires_grad=True)
    w = torch.randn(16, 1, 5, 5, generator=g, requires_grad=True)
    b = torch.randn(16, generator=g, requires_grad=True)
    gy = torch.randn(4, 16, size, size, generator=g)
    ours = torch.autograd.grad(depthwise_conv2d(x, w, b, (1, 1), (2, 2)), (x, w, b), gy)
    theirs = torch.autograd.grad(torch.nn.functional.conv2d(x, w, b, 1, 2, 1, 16), (x, w, b), gy)
    for a, e in zip(ours, theirs):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)


def test_fast_depthwise_trains_the_same_and_puts_the_modules_back():
    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=2).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    classes = {n: type(m) for n, m in model.named_modules()}
    keys = list(model.state_dict())

    def grads():
        model.zero_grad()
        model.train()(x).sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    with fast_depthwise(model) as swapped:
        assert swapped.layers == sum(is_depthwise(m) for m in model.modules()) == 16
        assert all(type(m).__name__.startswith("Fast") for m in model.modules() if is_depthwise(m))
        fast = grads()
        with torch.autocast("cpu", dtype=torch.bfloat16):  # depthwise layers stay float32 under autocast
            conv = next(m for m in model.modules() if is_depthwise(m))
            assert conv(torch.randn(2, conv.in_channels, 8, 8)).dtype == torch.float32
    assert {n: type(m) for n, m in model.named_modules()} == classes
    assert list(model.state_dict()) == keys
    for n in plain:
        torch.testing.assert_close(fast[n], plain[n], rtol=1e-3, atol=1e-4 * plain[n].abs().max().item() + 1e-7)


def _deep_layer_step(model, x):
    model.zero_grad()
    model.train()(x).sum().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_auto_times_each_overhanging_shape_once_and_keeps_the_verdict(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTRANSFER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(depthwise, "_VERDICTS", Verdicts("depthwise.json"))
    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=2).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 64, 64).contiguous(memory_format=torch.channels_last)  # 2×2 deepest maps: 5×5 overhangs
    plain = _deep_layer_step(model, x)
    with fast_depthwise(model, "auto") as swapped:
        auto = _deep_layer_step(model, x)
    verdicts = json.loads(choices_file().read_text())[machine_key()]
    # only the shapes whose kernel overhangs the map are timed: the 3×3 and 5×5 layers on the 2×2 and 4×4 maps
    assert verdicts and all(int(shape.split(" k")[1][0]) > int(shape.split("x")[2]) for shape in verdicts)
    assert all(set(v) == {"torch_ms", "grouped_ms", "grouped"} and v["torch_ms"] > 0 for v in verdicts.values())
    assert swapped.grouped == {s for s, v in verdicts.items() if v["grouped"]}
    for n in plain:
        torch.testing.assert_close(auto[n], plain[n], rtol=1e-3, atol=1e-4 * plain[n].abs().max().item() + 1e-7)

    # a later process follows the file without timing again: a verdict written there is what it does
    forced = {s: {"torch_ms": 1.0, "grouped_ms": 2.0, "grouped": not v["grouped"]} for s, v in verdicts.items()}
    choices_file().write_text(json.dumps({machine_key(): forced}))
    monkeypatch.setattr(depthwise, "_VERDICTS", Verdicts("depthwise.json"))
    monkeypatch.setattr(depthwise, "compare_ms", lambda *a, **k: pytest.fail("timed a shape the file knows"))
    with fast_depthwise(model, "auto") as again:
        _deep_layer_step(model, x)
    assert again.grouped == {s for s, v in forced.items() if v["grouped"]}
    with fast_depthwise(model, False) as off:
        _deep_layer_step(model, x)
    assert off.layers == 0 and not off.grouped


def test_a_bad_mode_is_refused_with_the_choices():
    from medtransfer.config import RunConfig
    from medtransfer.errors import ConfigError

    with pytest.raises(ConfigError, match="fast_depthwise.*auto"):
        RunConfig(data="x", fast_depthwise="sometimes")
    with pytest.raises(ValueError, match="'auto', true or false"):
        with fast_depthwise(torch.nn.Conv2d(4, 4, 3, groups=4), "yes"):
            pass
