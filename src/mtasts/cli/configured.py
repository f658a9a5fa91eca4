"""The settings tree for a command: mtasts.toml < ``MTASTS_*`` < the command's options.

Commands give their options as ``{"tlsrpt.organization": ("--organization", value)}``
(``None`` = not given) and get the typed tree back; a configuration mistake is a
ConfigError naming file, line, key and what is expected, which the ``mtasts`` group
prints as one line with exit code 78 (docs/exit-codes.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mtasts.settings.tree import Tree, current, load


def settings_tree(options: Mapping[str, tuple[str, Any]] | None = None) -> Tree:
    """The tree of this process with ``options`` (dotted key -> (option, value)) on top."""
    given = {key: value for key, (_, value) in (options or {}).items() if value is not None}
    if not given:
        return current()
    names = {key: option for key, (option, _) in (options or {}).items()}
    return load(overrides=given, option_names=names)
