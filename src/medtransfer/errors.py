"""User-facing errors.

Every error a user can cause or fix (a bad file, a wrong flag, a diverging run) is a :class:`MedTransferError`.
The CLI prints its message on one line and exits with code 2; the Python API lets it propagate. Messages name the
file, column or value at fault and say what to do.
"""

from __future__ import annotations

import difflib
import reprlib
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


#: the longest a quoted value may be in a message: a config value may be megabytes long (or a shared YAML node that
#: repeats into gigabytes), and a message must stay one readable line
QUOTE_LIMIT = 80
#: the most problems one error lists; the rest are counted
PROBLEM_LIMIT = 10


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxstring, _SHORT_REPR.maxother, _SHORT_REPR.maxlong = 3, QUOTE_LIMIT, QUOTE_LIMIT, 40
_SHORT_REPR.maxlist = _SHORT_REPR.maxtuple = _SHORT_REPR.maxdict = _SHORT_REPR.maxset = 8


def shorten(value, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters with an ellipsis. Long lists and mappings are cut before they
    are repr'd in full, so quoting a huge value costs no more than quoting a small one."""
    text = _SHORT_REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parameter_error(name: str, owner: str, must: str, got) -> str:
    """The one form of a parameter error, as scikit-learn words it:
    ``The 'lr' parameter of TrainConfig must be a number > 0. Got -1 instead.`` Name and value are quoted
    through :func:`shorten`."""
    return f"The {shorten(name)} parameter of {owner} must be {must}. Got {shorten(got)} instead."


def raise_problems(problems: list[str]) -> None:
    """Raise one :class:`ConfigError` listing every problem (one per line, the first :data:`PROBLEM_LIMIT`), if
    there are any."""
    if not problems:
        return
    if len(problems) == 1:
        raise ConfigError(problems[0])
    shown = problems[:PROBLEM_LIMIT]
    more = f"\n  … and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    raise ConfigError(f"{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in shown) + more)
