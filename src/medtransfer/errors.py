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
