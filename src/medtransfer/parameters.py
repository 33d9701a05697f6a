"""The table every config class is validated from, and the command line's flags are made from.

A setting is a dataclass field made with :func:`setting`: its metadata holds a :class:`Rule` (what the value must
be, in words for the error), an optional :class:`Flag` (its help and the commands that take it), and an optional
``normalise`` step (e.g. a strategy's canonical name) applied once every rule has passed. As scikit-learn's
``_parameter_constraints``, the rules only read: :func:`table_problems` lists every broken rule, one sentence each,
and changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from medtransfer.errors import ConfigError, parameter_error

__all__ = ["Flag", "Rule", "default_of", "is_int", "is_number", "normalised", "one_of", "parses", "setting", "settings_of", "table_problems"]

_KEY = "medtransfer"


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Rule:
    """What a setting's value must be: ``check(value)`` says whether it is, ``must`` says it in words (a callable
    when the words are only known later, e.g. the registered tasks). ``problems``, when given, replaces both: called
    as ``problems(name, owner, value)``, it returns whole sentences (e.g. a nested config's own)."""

    check: Callable[[Any], bool] | None = None
    must: str | Callable[[], str] = ""
    problems: Callable[[str, str, Any], list[str]] | None = None

    def broken(self, name: str, owner: str, value) -> list[str]:
        if self.problems is not None:
            return self.problems(name, owner, value)
        if self.check(value):
            return []
        return [parameter_error(name, owner, self.must() if callable(self.must) else self.must, value)]


def parses(parse: Callable[[Any], Any], must: str) -> Rule:
    """The value is one that ``parse`` takes without a :class:`~medtransfer.errors.ConfigError`; ``must`` may quote
    the error as ``{error}``."""
    def problems(name: str, owner: str, value) -> list[str]:
        try:
            parse(value)
        except ConfigError as e:
            return [parameter_error(name, owner, must.format(error=e), value)]
        return []
    return Rule(problems=problems)


def one_of(values, what: str = "") -> Rule:
    """The value is one of ``values`` (``what`` replaces their list in the message)."""
    return Rule(lambda v: isinstance(v, str | int | float | None) and v in values,
                what or f"one of {', '.join(map(str, values))}")


@dataclass(frozen=True)
class Flag:
    """A setting's command-line flag: its ``help`` (``{default}`` is replaced by the setting's default,
    ``{recipes}`` by the tasks' recipes for it), the ``commands`` that take it, the value's ``type`` there, its
    ``names`` (default: ``--the-setting``) and ``parse``, which turns the flag's value into the setting's (raising
    :class:`~medtransfer.errors.ConfigError` for bad text). ``to`` says where the value goes when it is not the
    setting of the same name (e.g. ``source_options.axis``); ``default`` is the flag's own default (None: the
    setting's, so that config files and recipes still fill what no flag gave)."""

    type: Any
    help: str
    commands: tuple[str, ...] = ("train", "study")
    names: tuple[str, ...] = ()
    parse: Callable[[Any], Any] | None = None
    to: str = ""
    default: Any = None
    metavar: str | None = None


@dataclass(frozen=True)
class Setting:
    """A field's entry in the table (kept in the field's ``metadata``)."""

    rule: Rule | None
    flag: Flag | None
    normalise: Callable[[Any], Any] | None


def setting(default=dataclasses.MISSING, *, factory=dataclasses.MISSING, rule: Rule | None = None,
            flag: Flag | None = None, normalise: Callable[[Any], Any] | None = None):
    """A dataclass field with its entry in the table."""
    return dataclasses.field(default=default, default_factory=factory,
                             metadata={_KEY: Setting(rule, flag, normalise)})


def settings_of(cls) -> Iterator[tuple[dataclasses.Field, Setting]]:
    """The fields of ``cls`` (a dataclass or an instance) that have an entry, in their order."""
    for f in dataclasses.fields(cls):
        if _KEY in f.metadata:
            yield f, f.metadata[_KEY]


def default_of(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def table_problems(obj, owner: str | None = None) -> list[str]:
    """Every rule of ``obj``'s table that its values break, one sentence each; ``obj`` is not changed."""
    owner = owner or type(obj).__name__
    return [p for f, s in settings_of(obj) if s.rule is not None
            for p in s.rule.broken(f.name, owner, getattr(obj, f.name))]


def normalised(obj) -> dict:
    """The settings of ``obj`` whose value has a canonical form (a list for a count, a strategy's name), as
    ``{name: canonical value}``; only meaningful once :func:`table_problems` found nothing."""
    return {f.name: s.normalise(getattr(obj, f.name)) for f, s in settings_of(obj) if s.normalise is not None}
