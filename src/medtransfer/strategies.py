"""Fine-tuning strategies: which layer groups train, and from which weights.

With a backbone of ``N`` layer groups (shallow to deep) plus a new head:

============  =====================================  ===================
strategy      trainable                              initial weights
============  =====================================  ===================
``scratch``   all N groups + head                    random
``linear``    head only                              pre-trained
``tune:K``    the top K groups + head (1 <= K < N)   pre-trained
``full``      all N groups + head                    pre-trained
============  =====================================  ===================

Frozen groups are frozen completely: no gradient, not in the optimiser, BatchNorm in eval mode (running statistics
unchanged). That is what makes their output a fixed function of the image, which the frozen-prefix cache relies on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from medtransfer.errors import ConfigError

_TUNE = re.compile(r"^tune:(\d+)$")


@dataclass(frozen=True, order=True)
class Strategy:
    """A fine-tuning strategy; build with :func:`parse_strategy`."""

    kind: Literal["scratch", "linear", "tune", "full"]
    depth: int = 0  # K for ``tune:K``

    @property
    def name(self) -> str:
        return f"tune:{self.depth}" if self.kind == "tune" else self.kind

    @property
    def pretrained(self) -> bool:
        return self.kind != "scratch"

    def trainable_groups(self, num_groups: int) -> int:
        """How many of the ``num_groups`` backbone groups train (counted from the deepest)."""
        self.validate(num_groups)
        return {"scratch": num_groups, "full": num_groups, "linear": 0}.get(self.kind, self.depth)

    def frozen_groups(self, num_groups: int) -> int:
        return num_groups - self.trainable_groups(num_groups)

    def validate(self, num_groups: int) -> None:
        if self.kind == "tune" and not 1 <= self.depth <= num_groups - 1:
            raise ConfigError(
                f"strategy {self.name!r}: K must be between 1 and {num_groups - 1} for a backbone with {num_groups} "
                f"layer groups (use 'full' to tune all {num_groups}, 'linear' for the head only)"
            )

    @property
    def depth_order(self) -> tuple[int, int]:
        """The order of tables and plots: scratch, linear, tune:1, tune:2, …, full (shallow to deep tuning)."""
        return {"scratch": (0, 0), "linear": (1, 0), "tune": (2, self.depth), "full": (3, 0)}[self.kind]

    @property
    def cost_order(self) -> tuple[int, int]:
        """The tie-break of a recommendation: fewer trained groups first, pre-trained before scratch."""
        return {"linear": (0, 0), "tune": (1, self.depth), "full": (2, 0), "scratch": (3, 0)}[self.kind]

    def __str__(self) -> str:
        return self.name


def parse_strategy(text: str | Strategy) -> Strategy:
    """``'scratch'``, ``'linear'``, ``'tune:K'`` or ``'full'`` as a :class:`Strategy`."""
    if isinstance(text, Strategy):
        return text
    t = str(text).strip().lower()
    if t in ("scratch", "linear", "full"):
        return Strategy(t)  # type: ignore[arg-type]
    m = _TUNE.match(t)
    if m:
        return Strategy("tune", int(m.group(1)))
    raise ConfigError(f"unknown strategy {text!r}; use scratch, linear, tune:K (K = number of top groups) or full")


def by_depth(names) -> list[str]:
    """Strategy names sorted shallow to deep (:attr:`Strategy.depth_order`)."""
    return sorted(names, key=lambda n: parse_strategy(n).depth_order)


def layerwise_strategies(num_groups: int) -> list[Strategy]:
    """The paper's layer-wise scheme: scratch, linear, tune:1 … tune:N-1, full."""
    return [Strategy("scratch"), Strategy("linear")] + [Strategy("tune", k) for k in range(1, num_groups)] + [Strategy("full")]
