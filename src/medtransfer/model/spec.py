"""What a saved model's ``model.json`` must hold, checked as a table when the model is loaded.

``predict`` and ``export`` trust the spec for the geometry of every image (input size, channels, window, slicing
axis); a value that was edited or damaged would fail deep inside (a negative resize, a traceback) or, worse, work
and give other numbers. Each key the delivery path reads is checked for type and range, and the first problem is
named with the key, the value and what it must be, before any output is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from medtransfer.errors import DataError, shorten

#: the keys every saved model has (models of every version since the format began)
REQUIRED = ("backbone", "strategy", "class_names", "input_size")


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _text(v) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _names(v) -> bool:
    return isinstance(v, list) and bool(v) and all(_text(n) for n in v) and len(set(v)) == len(v)


def _numbers(v, n: int | None = None, positive: bool = False) -> bool:
    return (isinstance(v, list) and bool(v) and (n is None or len(v) == n)
            and all(_number(x) and (x > 0 or not positive) for x in v))


#: key -> (check of its value, what it must be); optional keys are checked where present
CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "backbone": (_text, "a timm model name"),
    "strategy": (_text, "a strategy name such as linear or tune:2"),
    "class_names": (_names, "a non-empty list of distinct class names"),
    "input_size": (lambda v: _int(v) and 16 <= v <= 1024, "an integer between 16 and 1024 (pixels)"),
    "task": (_text, "a task name such as classification"),
    "channels": (lambda v: v is None or (_int(v) and v in (1, 3)), "1 (gray) or 3 (RGB)"),
    "label_kind": (lambda v: v in ("binary", "multiclass", "multilabel"), "binary, multiclass or multilabel"),
    "calibration_method": (lambda v: v in ("temperature", "none"), "temperature or none"),
    "temperature": (lambda v: _number(v) and v > 0, "a number > 0"),
    "window": (lambda v: v is None or (_numbers(v, 2) and v[1] > 0), "null or [centre, width] with width > 0"),
    "axis": (lambda v: _int(v) and 0 <= v <= 2, "0, 1 or 2"),
    "mean": (lambda v: _numbers(v), "a list of numbers"),
    "std": (lambda v: _numbers(v, positive=True), "a list of numbers > 0"),
    "complete": (lambda v: isinstance(v, bool), "true or false"),
}


def spec_problems(spec: dict) -> list[str]:
    """Every problem with ``spec``'s values, one phrase each (``'input_size' must be …, not -1``)."""
    problems = []
    for key, (ok, must) in CHECKS.items():
        if key in spec and not ok(spec[key]):
            problems.append(f"{key!r} must be {must}, not {shorten(spec[key])}")
    return problems


def check_spec(spec: dict, meta: Path) -> None:
    """Raise a :class:`~medtransfer.errors.DataError` naming ``meta`` (the ``model.json``), the key and the problem
    when a required key is missing or a value is of the wrong type or out of range."""
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        raise DataError(f"{meta}: the key(s) {', '.join(missing)} are missing; the file was edited or damaged")
    problems = spec_problems(spec)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise DataError(f"{meta}: {problems[0]}{more}; the file was edited or damaged. Restore it, or train again")
