"""Mixed precision for training steps: which float type the forward pass and the loss run in.

``auto``: on CUDA, automatic mixed precision in bfloat16 where the GPU has it (Ampere and later), else float16 with
a gradient scaler. On a CPU without bf16 units, float32 (bf16 is emulated there). On a CPU with them, whichever of
float32 and bf16 autocast (depthwise layers kept in float32, see :mod:`medtransfer.training.depthwise`) trains the
network faster *on this machine*: measured, bf16 halves a ResNet-18 step on an AVX-512 BF16 CPU, but at the demo's
80 px on EfficientNet-Lite0 it was slower on an AVX-512 BF16 Xeon (cached ``tune:3`` 0.74×, cached ``tune:2`` 0.72×,
``full`` 1.03×) and faster on an AVX-512 BF16 EPYC (cached ``tune:2`` and ``tune:3`` 1.15×, ``full`` 1.18×).
So :func:`settle_cpu_precision` times a training step of the trainable layers (forward, backward and the optimiser's
update, on a copy) both ways the first time a network meets the machine (the frozen layers run in float32 in every
precision), keeps bf16 where it is at least :data:`MARGIN` times faster, and remembers the verdict in
``precision.json`` in the user's cache folder (:mod:`medtransfer.training.timings`); the run's ``model.json`` says
which precision it trained in. Weights, optimiser state, validation and test stay float32,
so a delivered model's predictions equal the run's stored ones whatever the training precision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from medtransfer.errors import ConfigError
from medtransfer.training.timings import Verdicts, compare_ms

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: ``auto`` on a CPU with bf16 units trains in bf16 where a step is at least this many times faster than in float32
MARGIN = 1.1
_VERDICTS = Verdicts("precision.json")  # network case → {"fp32_ms", "bf16_ms", "precision"}, per machine


@dataclass(frozen=True)
class Precision:
    """A resolved precision (``fp32``, ``bf16`` or ``fp16``) on a device type."""

    name: str
    device_type: str

    def autocast(self):
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=_DTYPES[self.name])

    def scaler(self) -> torch.amp.GradScaler:
        """float16 needs its gradients scaled (they underflow); bfloat16 and float32 do not."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "fp16")


def resolve_precision(name: str, device: torch.device | str) -> Precision:
    device = torch.device(device)
    if name not in PRECISIONS:
        raise ConfigError(f"unknown precision {name!r}; use one of {', '.join(PRECISIONS)}")
    cuda = device.type == "cuda"
    if name == "auto":
        name = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if name == "fp16" and not cuda:
        raise ConfigError("precision fp16 needs a CUDA device (CPUs train float16 slowly and without a gradient "
                          "scaler); use bf16 or fp32 on a CPU")
    if name == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU has no bfloat16; use precision fp16 (with a gradient scaler) or auto")
    return Precision(name, device.type)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX); elsewhere PyTorch emulates it, slowly."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return bool(torch.cpu._is_avx512_bf16_supported() or amx())


def settle_cpu_precision(requested: str, device: torch.device | str, case: str,
                         step: Callable[[Precision], None]) -> Precision:
    """The precision to train in: :func:`resolve_precision`'s, except ``auto`` on a CPU with bf16 units, which is
    bf16 if ``step(precision)`` (one training step of the network, on a copy) takes at least :data:`MARGIN` times
    less time under bf16 autocast than in float32 — timed the first time ``case`` meets this machine, remembered."""
    resolved = resolve_precision(requested, device)
    if requested != "auto" or resolved.device_type != "cpu" or not cpu_has_bf16():
        return resolved
    verdict = _VERDICTS.get(case)
    if verdict is None:
        fp32, bf16 = Precision("fp32", "cpu"), Precision("bf16", "cpu")
        t_fp32, t_bf16 = compare_ms([lambda: step(fp32), lambda: step(bf16)])
        verdict = {"fp32_ms": round(t_fp32, 1), "bf16_ms": round(t_bf16, 1),
                   "precision": "bf16" if t_bf16 * MARGIN <= t_fp32 else "fp32"}
        _VERDICTS.put(case, verdict)
    return Precision(verdict["precision"], "cpu")
