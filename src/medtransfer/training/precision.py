"""Mixed precision for training steps: which float type the forward pass and the loss run in.

``auto``: on CUDA, automatic mixed precision in bfloat16 where the GPU has it (Ampere and later), else float16 with
a gradient scaler; on a CPU, float32 — measured on an AVX-512 BF16 CPU, bf16 autocast halves a ResNet-18 step but
slows the default backbone's (EfficientNet-Lite0: depthwise convolutions, 0.74×), so it is opt-in there
(``bf16``). Measured again on a Xeon with AVX-512 BF16 at the demo's 80 px with depthwise layers kept in float32:
cached ``tune:3`` 0.74×, cached ``tune:2`` 0.72×, ``full`` 1.03× (README). Weights, optimiser state, validation and test stay float32, so a delivered model's predictions equal
the run's stored ones whatever the training precision.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from medtransfer.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


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
