"""User-facing errors.

Every error a user can cause or fix (a bad file, a wrong flag, a diverging run) is a :class:`MedTransferError`.
The CLI prints its message on one line and exits with code 2; the Python API lets it propagate. Messages name the
file, column or value at fault and say what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MedTransferError(Exception):
    """An error the user can act on. ``str(err)`` is a complete one-line message."""


class DataError(MedTransferError, ValueError):
    """Input data that cannot be read or does not make a valid dataset."""


class ConfigError(MedTransferError, ValueError):
    """A parameter, flag or configuration value that is not valid."""


class ExportError(MedTransferError, RuntimeError):
    """An exported model that does not compute what the saved one does."""


class TrainingDiverged(MedTransferError, RuntimeError):
    """The loss became non-finite. The best checkpoint so far has been kept."""

    def __init__(self, message: str, epoch: int, best_epoch: int | None):
        super().__init__(message)
        self.epoch = epoch
        self.best_epoch = best_epoch


def did_you_mean(value: str, choices: Iterable[str], n: int = 3) -> str:
    """`` (did you mean 'a', 'b'?)`` for the closest choices, or an empty string."""
    close = difflib.get_close_matches(value, list(choices), n=n, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + ", ".join(repr(c) for c in close) + "?)"


def parameter_error(name: str, owner: str, must: str, got) -> str:
    """The one form of a parameter error, as scikit-learn words it:
    ``The 'lr' parameter of TrainConfig must be a number > 0. Got -1 instead.``"""
    return f"The {name!r} parameter of {owner} must be {must}. Got {got!r} instead."


def raise_problems(problems: list[str]) -> None:
    """Raise one :class:`ConfigError` listing every problem (one per line), if there are any."""
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else
                          f"{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems))
