"""Lists of user-given names (class names) as text a reader can split back into the names.

Joined with ", " alone, BreastMNIST's classes ``malignant`` and ``normal, benign`` read as three. Each name is
put in double quotes (a quote or backslash inside it escaped with a backslash, everything else as it is), so commas
between names and inside names cannot be confused.
"""

from __future__ import annotations

from collections.abc import Iterable


def quoted_name(name) -> str:
    """``"normal, benign"``: ``name`` in double quotes, its own quotes and backslashes escaped."""
    return '"' + str(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


def quoted_names(names: Iterable) -> str:
    """``"malignant", "normal, benign"``: each name quoted, the names separated by ", "."""
    return ", ".join(map(quoted_name, names))
