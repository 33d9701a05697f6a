"""Fine-tuning strategies: which layer groups train, and from which weights.

With a backbone of ``N`` layer groups (shallow to deep) plus a new head:

================  =========================================  ===================
strategy          trainable                                  initial weights
================  =========================================  ===================
``scratch``       all N groups + head                        random
``linear``        head only                                  pre-trained
``tune:K``        the top K groups + head (1 <= K < N)       pre-trained
``full``          all N groups + head                        pre-trained
``surgical:i``    group i only (1 = shallowest) + head       pre-trained
``lp-ft``         head first (linear probe), then all + head pre-trained
================  =========================================  ===================

Frozen groups are frozen completely: no gradient, not in the optimiser, BatchNorm in eval mode (running statistics
unchanged). That is what makes their output a fixed function of the image, which the frozen-prefix cache relies on.

The last two are not the paper's and not in the default list; a study includes them when named in ``strategies``.
``surgical:i`` (Lee et al., *Surgical fine-tuning improves adaptation to distribution shifts*, ICLR 2023) tunes one
group, counted from the input: which group is best depends on the kind of shift (input-level shifts favour the first
groups). The groups above it stay frozen in place: gradients pass through them to group i, their weights and
statistics do not change. ``lp-ft`` (Kumar et al., *Fine-tuning can distort pretrained features*, ICLR 2022) trains
the new head on the frozen backbone first, then fine-tunes everything starting from that head, so that the early
large gradients of a random head do not distort the pre-trained features.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from medtransfer.errors import ConfigError

_DEPTH = re.compile(r"^(tune|surgical):(\d+)$")


@dataclass(frozen=True, order=True)
class Strategy:
    """A fine-tuning strategy; build with :func:`parse_strategy`."""

    kind: Literal["scratch", "linear", "tune", "full", "surgical", "lp-ft"]
    depth: int = 0  # K for ``tune:K``, i for ``surgical:i``

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.depth}" if self.kind in ("tune", "surgical") else self.kind

    @property
    def pretrained(self) -> bool:
        return self.kind != "scratch"

    def trainable_groups(self, num_groups: int) -> int:
        """How many of the ``num_groups`` backbone groups train (``tune:K``: the K deepest; ``surgical:i``: one)."""
        self.validate(num_groups)
        return {"scratch": num_groups, "full": num_groups, "lp-ft": num_groups, "linear": 0, "surgical": 1}.get(
            self.kind, self.depth)

    def frozen_groups(self, num_groups: int) -> int:
        """How many groups, from the input, form the frozen prefix (the part a cache can stand in for). A surgical
        strategy's groups above the tuned one are frozen too, but stay in the network after it."""
        if self.kind == "surgical":
            self.validate(num_groups)
            return self.depth - 1
        return num_groups - self.trainable_groups(num_groups)

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages trained before this strategy's own, in order; each hands its head to the next, and the last
        to this strategy's network (``lp-ft``: a linear probe)."""
        return (Stage("linear_probe", Strategy("linear")),) if self.kind == "lp-ft" else ()

    @property
    def cacheable(self) -> bool:
        """Whether its trials may read the frozen-prefix cache (a prefix of at least one frozen group, or the
        backbone's whole output for ``linear``)."""
        return self.kind in ("linear", "tune") or (self.kind == "surgical" and self.depth >= 2)

    def validate(self, num_groups: int) -> None:
        if self.kind == "tune" and not 1 <= self.depth <= num_groups - 1:
            raise ConfigError(
                f"strategy {self.name!r}: K must be between 1 and {num_groups - 1} for a backbone with {num_groups} "
                f"layer groups (use 'full' to tune all {num_groups}, 'linear' for the head only)"
            )
        if self.kind == "surgical" and not 1 <= self.depth <= num_groups:
            raise ConfigError(f"strategy {self.name!r}: i must be between 1 (the shallowest group) and {num_groups} "
                              f"for a backbone with {num_groups} layer groups")

    @property
    def depth_order(self) -> tuple[int, int]:
        """The order of tables and plots: scratch, linear, tune:1, tune:2, …, full (shallow to deep tuning), then
        surgical:1, surgical:2, … and lp-ft."""
        return {"scratch": (0, 0), "linear": (1, 0), "tune": (2, self.depth), "full": (3, 0),
                "surgical": (4, self.depth), "lp-ft": (5, 0)}[self.kind]

    @property
    def cost_order(self) -> tuple[int, int, int]:
        """The tie-break of a recommendation, cheapest first: fewer trained groups first (a surgical strategy trains
        one, after tune:1), two-stage lp-ft after full, scratch last."""
        return {"linear": (0, 0, 0), "tune": (1, self.depth, 0), "surgical": (1, 1, self.depth), "full": (2, 0, 0),
                "lp-ft": (2, 0, 1), "scratch": (3, 0, 0)}[self.kind]

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Stage:
    """A training stage that comes before a strategy's own: its network is cut for ``strategy``; ``name`` is its
    record in the saved model's spec."""

    name: str
    strategy: Strategy


def parse_strategy(text: str | Strategy) -> Strategy:
    """``'scratch'``, ``'linear'``, ``'tune:K'``, ``'full'``, ``'surgical:i'`` or ``'lp-ft'`` as a :class:`Strategy`."""
    if isinstance(text, Strategy):
        return text
    t = str(text).strip().lower()
    if t in ("scratch", "linear", "full", "lp-ft"):
        return Strategy(t)  # type: ignore[arg-type]
    m = _DEPTH.match(t)
    if m:
        return Strategy(m.group(1), int(m.group(2)))  # type: ignore[arg-type]
    raise ConfigError(f"unknown strategy {text!r}; use scratch, linear, tune:K (K = number of top groups), full, "
                      f"surgical:i (group i from the input) or lp-ft")


def by_depth(names) -> list[str]:
    """Strategy names sorted shallow to deep (:attr:`Strategy.depth_order`)."""
    return sorted(names, key=lambda n: parse_strategy(n).depth_order)


def layerwise_strategies(num_groups: int) -> list[Strategy]:
    """The paper's layer-wise scheme: scratch, linear, tune:1 … tune:N-1, full."""
    return [Strategy("scratch"), Strategy("linear")] + [Strategy("tune", k) for k in range(1, num_groups)] + [Strategy("full")]
