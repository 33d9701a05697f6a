"""A fingerprint of exactly what a run or a study read: every sample's decoded pixels and target, and its split.

Samples are keyed by a one-way hash of their reference relative to the data source (so moving the data folder
changes nothing, and no file name is stored in clear); each value hashes the decoded, resized image, the target and
the split the sample is in. Comparing two fingerprints says how many samples were added, removed or modified.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def _h(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(p)
    return h.hexdigest()


def _relative(ref: str, root: str) -> str:
    base = Path(root).expanduser()
    if base.exists():
        try:
            return os.path.relpath(ref, base if base.is_dir() else base.parent)
        except ValueError:  # another drive
            return ref
    return ref


def _target_bytes(target) -> bytes:
    a = np.asarray(target.numpy() if hasattr(target, "numpy") else target)
    return f"{a.dtype}{a.shape}".encode() + np.ascontiguousarray(a).tobytes()


@dataclass(frozen=True)
class DataFingerprint:
    samples: dict[str, str]  # hashed reference -> hash of pixels, target and split

    @classmethod
    def of(cls, refs: list[str], root: str, images, targets, splits: list[str]) -> DataFingerprint:
        """``images[i]`` (a tensor or array), ``targets[i]`` and ``splits[i]`` belong to ``refs[i]``."""
        samples = {}
        for i, ref in enumerate(refs):
            pixels = images[i]
            pixels = pixels.numpy() if hasattr(pixels, "numpy") else np.asarray(pixels)
            samples[_h(_relative(ref, root).encode())] = _h(np.ascontiguousarray(pixels).tobytes(),
                                                            _target_bytes(targets[i]), splits[i].encode())
        return cls(samples)

    @property
    def digest(self) -> str:
        return _h(json.dumps(sorted(self.samples.items())).encode())

    def to_json(self) -> str:
        return json.dumps(self.samples, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DataFingerprint:
        return cls(json.loads(text))

    def differences(self, newer: DataFingerprint) -> dict[str, int]:
        """How ``newer`` differs: samples added, removed and modified (pixels, target or split)."""
        old, new = self.samples, newer.samples
        return {"added": len(new.keys() - old.keys()), "removed": len(old.keys() - new.keys()),
                "modified": sum(old[k] != new[k] for k in old.keys() & new.keys())}

    @staticmethod
    def describe(diff: dict[str, int]) -> str:
        """'3 added, 1 modified'."""
        return ", ".join(f"{n} {what}" for what, n in diff.items() if n) or "no change"
