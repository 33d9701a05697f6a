"""Reading YAML settings (a study's config file, a ``--task-option`` value) with bounds on what is read.

YAML aliases let a few hundred bytes stand for gigabytes (each ``*name`` repeats a whole node, and nested aliases
multiply), and every later step that walks or quotes the value pays for the expansion. A settings file has no need
for them, so an alias is refused where it stands, and a file larger than :data:`MAX_CONFIG_BYTES` is refused before
it is read.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from medtransfer.errors import ConfigError

YAMLError = yaml.YAMLError

#: the largest config file read; a study's settings fit in a few kilobytes
MAX_CONFIG_BYTES = 1 << 20


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases (``*name``) before they are composed into shared nodes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"an alias (*{event.anchor}) repeats another value; aliases are not read, write the "
                            f"value out", event.start_mark)
        return super().compose_node(parent, index)


def parse_yaml(text: str):
    """``text`` read as YAML (safe tags only, no aliases); raises :class:`yaml.YAMLError`."""
    return yaml.load(text, Loader=_NoAliasLoader)


def read_config_file(path: str | Path):
    """The YAML document in ``path`` (``None`` for an empty file). A missing, special, oversized or invalid file is a
    :class:`~medtransfer.errors.ConfigError` naming it (and the line, for invalid YAML)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    if not path.is_file():  # a folder, or a named pipe that would block the read forever
        raise ConfigError(f"{path}: not a regular file; give a YAML config file")
    with path.open("rb") as f:
        data = f.read(MAX_CONFIG_BYTES + 1)  # never more, whatever the file's size says
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: too large for a config file (over {MAX_CONFIG_BYTES // 2**20} MiB); give a file "
                          f"of settings, not data")
    try:
        return parse_yaml(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text file ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
