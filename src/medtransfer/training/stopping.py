"""Early stopping: a patience in epochs without a new best, never before the earliest epoch allowed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EarlyStopping:
    """Stop once ``patience`` epochs in a row brought no new best, at epoch ``earliest`` or later (None: never)."""

    patience: int | None
    earliest: int
    since_best: int = 0

    def update(self, improved: bool) -> None:
        self.since_best = 0 if improved else self.since_best + 1

    def should_stop(self, epoch: int) -> bool:
        return self.patience is not None and self.since_best >= self.patience and epoch >= self.earliest
