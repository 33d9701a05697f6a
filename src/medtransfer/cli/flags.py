"""The commands' flags, made from the table of settings: each flag is declared once, either on its setting (a
:class:`~medtransfer.parameters.Flag` in the field's metadata, see :mod:`medtransfer.config`) or below when it says
how to run rather than what (the device, the executor, a source's column names), and :func:`takes_flags` gives a
command every flag that names it. :func:`read_flags` turns the values given into the settings' layout."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Optional

import typer

from medtransfer.config import RunConfig, Settings
from medtransfer.errors import ConfigError, raise_problems
from medtransfer.parameters import Flag, default_of, settings_of
from medtransfer.study.config import StudyConfig
from medtransfer.training.config import TrainConfig

_RUNS = ("train", "study", "evaluate", "demo", "predict")


def _task_option_pairs(pairs: list[str]) -> dict:
    """``["decoder=fpn", "depth=3"]`` as ``{"decoder": "fpn", "depth": 3}`` (values read as YAML scalars)."""
    from medtransfer.config_files import YAMLError, parse_yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--task-option {pair!r}: give KEY=VALUE, e.g. decoder=fpn")
        try:
            out[key.strip()] = parse_yaml(value)
        except YAMLError:
            out[key.strip()] = value
    return out


def _window(text: str) -> tuple[float, float]:
    try:
        c, w = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--window {text!r}: give CENTRE,WIDTH, e.g. 40,400") from None
    return c, w


def _axis(axis: int) -> int:
    if axis not in (0, 1, 2):
        raise ConfigError(f"--axis {axis}: choose 0, 1 or 2 (the volume axis NIfTI volumes are sliced along)")
    return axis


#: The flags that are not settings of a run or a study: where and how it runs, and the parts of mappings
#: (``source_options``, ``task_options``) and of ``augmentation`` that have a flag of their own.
COMMAND_FLAGS: dict[str, Flag] = {
    "hit": Flag(str, "Detection: when a detection finds a true box for the FROC, 'iou' (IoU >= 0.5, default) or "
                     "'centre' (its centre inside the box); the same as --task-option hit=….", to="task_options.hit"),
    "task_option": Flag(list[str], "A task's own setting as KEY=VALUE, repeatable (e.g. decoder=fpn, "
                                   "detector=retinanet).", names=("--task-option",), parse=_task_option_pairs,
                        to="task_options"),
    "hflip": Flag(bool, "Allow left-right flips (off: anatomy has sides).", default=False),
    "vflip": Flag(bool, "Allow up-down flips (e.g. endoscopy, microscopy).", default=False),
    "label_column": Flag(str, "CSV label column (default: 'label').", ("train", "study", "evaluate"),
                         to="source_options.label_column"),
    "path_column": Flag(str, "CSV image-path column (default: 'path').", ("train", "study", "evaluate"),
                        to="source_options.path_column"),
    "window": Flag(str, "DICOM window as CENTRE,WIDTH (default: from the header).", ("train", "study", "evaluate"),
                   parse=_window, to="source_options.window"),
    "axis": Flag(int, "NIfTI volumes: the axis they are sliced along, 0, 1 or 2 (default 2).",
                 ("train", "study", "evaluate"), parse=_axis, to="source_options.axis"),
    "device": Flag(str, "auto (CUDA when present), cpu, cuda or cuda:N.", _RUNS, default="auto"),
    "cache_memory": Flag(str, "RAM for the cache, e.g. 4GB or 0.25 (default: a quarter of free RAM).", ("study",)),
    "executor": Flag(str, "Where trials run: auto (processes on a CPU with 2+ cores, else local), local (this "
                          "process, one after another), processes (--workers on this machine) or ray (a Ray cluster "
                          "at --ray-address, or a local Ray).", ("study", "demo"), default="auto"),
    "workers": Flag(int, "Worker processes (processes executor; default: cores ÷ threads).", ("study", "demo")),
    "threads_per_worker": Flag(int, "Torch threads per trial (processes and ray: default 1; local: torch's "
                                    "default).", ("study", "demo")),
    "ray_address": Flag(str, "An existing Ray cluster, e.g. ray://head:10001 or auto (ray executor; default: start "
                             "a local Ray).", ("study",)),
    "gpus_per_trial": Flag(float, "GPUs per trial on Ray, e.g. 0.5 to run two trials on each GPU (default: 1 when "
                                  "the cluster has GPUs).", ("study",)),
    "quiet": Flag(bool, "No progress bars.", ("train", "study", "demo", "predict"), default=False),
}


@dataclass(frozen=True)
class _Entry:
    """One flag of a command: its parameter name, its declaration, where its value goes and the help's default."""

    name: str
    flag: Flag
    to: str
    default: Any
    recipe_of: str | None  # the recipe key that may set the setting otherwise, "train.lr" for a training setting


def _entries() -> Iterator[_Entry]:
    """Every flag, settings first (in the order of their classes' fields), then the command flags."""
    seen = set()
    for cls, prefix in ((Settings, ""), (RunConfig, ""), (StudyConfig, ""), (TrainConfig, "train.")):
        for f, s in settings_of(cls):
            if s.flag is None or f.name in seen:
                continue
            seen.add(f.name)
            yield _Entry(f.name, s.flag, s.flag.to or prefix + f.name, default_of(f), prefix + f.name)
    for name, flag in COMMAND_FLAGS.items():
        yield _Entry(name, flag, flag.to or name, flag.default, None)


def flags_for(command: str) -> list[_Entry]:
    return [e for e in _entries() if command in e.flag.commands]


def _help(entry: _Entry) -> str:
    from medtransfer.tasks import get_task, task_names

    notes = []
    if entry.recipe_of is not None and "{recipes}" in entry.flag.help:
        key = entry.recipe_of.removeprefix("train.")
        for t in task_names():
            recipe = get_task(t).inputs.recipe.get("train", {}) if entry.recipe_of.startswith("train.") else get_task(t).inputs.recipe
            if key in recipe:
                notes.append(f"; {t}: {recipe[key]}")
    return entry.flag.help.format(default=entry.default, recipes="".join(notes), tasks=", ".join(task_names()))


def _parameter(entry: _Entry) -> inspect.Parameter:
    flag = entry.flag
    option = typer.Option(*flag.names, help=_help(entry), metavar=flag.metavar)  # no names: typer's, from the name
    kind = flag.type if flag.default is not None else Optional[flag.type]  # noqa: UP007 (typer reads Optional)
    return inspect.Parameter(entry.name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[kind, option],
                             default=flag.default)


def takes_flags(command: str):
    """Give the decorated command every flag that names ``command``; it receives their values in ``**flags``."""
    def decorate(func):
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        made = [_parameter(e) for e in flags_for(command)]

        @functools.wraps(func)
        def command_fn(**values):
            return func(**values)

        command_fn.__signature__ = signature.replace(parameters=own + made)
        command_fn.__annotations__ = {p.name: p.annotation for p in own + made}
        return command_fn
    return decorate


def _put(out: dict, to: str, value) -> None:
    """``out[to] = value``, a dotted ``to`` into a nested mapping, a mapping merged into the one already there."""
    *path, key = to.split(".")
    for part in path:
        out = out.setdefault(part, {})
    out[key] = {**out[key], **value} if isinstance(value, dict) and isinstance(out.get(key), dict) else value


def read_flags(command: str, values: dict) -> dict:
    """The values of ``command``'s flags as settings: a flag not given is left out (so a config file or the task's
    recipe fills it), nested settings are mappings (``train``, ``source_options``, ``task_options``), and the flips
    are part of ``augmentation``. Every flag that cannot be read is reported at once."""
    out: dict = {}
    problems = []
    for entry in flags_for(command):
        value = values.get(entry.name)
        if value is None:
            continue
        try:
            _put(out, entry.to, entry.flag.parse(value) if entry.flag.parse else value)
        except ConfigError as e:
            problems.append(str(e))
    raise_problems(problems)
    hflip, vflip = out.pop("hflip", False), out.pop("vflip", False)
    if hflip or vflip:  # the flips are part of the preset's name
        out["augmentation"] = (out.get("augmentation") or default_of(Settings.__dataclass_fields__["augmentation"])
                               ) + ("+hflip" if hflip else "") + ("+vflip" if vflip else "")
    return out
