"""A network that cannot be built from the task options a user gave is the user's to fix, not a crash.

Options whose invalid values are known are refused up front (each task's ``Options.problems``); this catches the
rest where they surface, in the construction of the network, and names the options. Only that call is guarded, and
only when options were given, so a failure with the defaults still shows as the programming error it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from medtransfer.errors import ConfigError, MedTransferError, shorten

#: what a constructor raises for values it cannot take (torch and torchvision check with ValueError, RuntimeError
#: and assert); other exceptions are programming errors whatever the options
_VALUE_ERRORS = (ValueError, RuntimeError, AssertionError)


@contextmanager
def network_from_options(options: dict, task: str) -> Iterator[None]:
    """Turn a failure inside the block into a :class:`ConfigError` naming ``options`` (``{name: value}``), with the
    original message appended, when any were given."""
    try:
        yield
    except _VALUE_ERRORS as e:
        if not options or isinstance(e, MedTransferError):
            raise
        given = ", ".join(f"{k}={shorten(v)}" for k, v in options.items())  # keys are known option names
        reason = " ".join(str(e).split())[:300] or type(e).__name__
        raise ConfigError(f"the {task} network cannot be built with the task option(s) {given} ({reason}). "
                          f"Change or remove these --task-option values.") from e
