"""The training run's progress bar (rich), or nothing when no progress display is given."""

from __future__ import annotations


class EpochBar:
    """One bar over every training step of a run; ``done_epochs`` are already behind it (a resumed run)."""

    def __init__(self, progress, epochs: int, steps_per_epoch: int, done_epochs: int = 0):
        self.progress, self.epochs = progress, epochs
        self.bar = (progress.add_task("epoch", total=epochs * steps_per_epoch, completed=done_epochs * steps_per_epoch)
                    if progress is not None else None)

    def step(self, epoch: int, mean_loss: float) -> None:
        if self.bar is not None:
            self.progress.update(self.bar, advance=1, description=f"epoch {epoch}/{self.epochs} loss {mean_loss:.3f}")

    def epoch_done(self, epoch: int, train_loss: float, label: str, score: float, best_score: float,
                   best_epoch: int) -> None:
        if self.bar is not None:
            self.progress.update(self.bar, description=f"epoch {epoch}/{self.epochs} loss {train_loss:.3f} val {label} "
                                                       f"{score:.3f} (best {best_score:.3f} @ {best_epoch})")

    def close(self) -> None:
        if self.bar is not None:
            self.progress.remove_task(self.bar)
