"""The options several commands take, declared once: the same name, range and wording
wherever they appear (``--json``, ``--timeout`` of a live check, counts and thresholds,
choices from an enum, files that must exist)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[F], F]


def json_option(help: str = "Print JSON.") -> Decorator[Any]:
    """``--json`` (the ``as_json`` parameter): docs/json.md's conventions."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def timeout_option(help: str) -> Decorator[Any]:
    """``--timeout``: seconds allowed for a live check (``mtasts check``'s; default 90)."""
    return click.option("--timeout", type=click.FloatRange(1, 600), default=None, help=help)


def at_least(
    name: str,
    minimum: int,
    *,
    help: str,
    default: int | None = None,
    maximum: int | None = None,
) -> Decorator[Any]:
    """A whole number from ``minimum`` (to ``maximum``); a default is shown in --help."""
    return click.option(
        name,
        type=click.IntRange(minimum, maximum),
        default=default,
        show_default=default is not None,
        help=help,
    )


def choice_of(name: str, values: Iterable[Enum], *, default: Enum, help: str) -> Decorator[Any]:
    """One of an enum's values, its default shown in --help (the parameter is the value)."""
    return click.option(
        name,
        type=click.Choice([v.value for v in values]),
        default=default.value,
        show_default=True,
        help=help,
    )


def existing_file(name: str, *, help: str, dest: str | None = None) -> Decorator[Any]:
    """A file that must exist (a :class:`~pathlib.Path`): click names a missing one."""
    decls = (name, dest) if dest else (name,)
    return click.option(
        *decls, type=click.Path(exists=True, dir_okay=False, path_type=Path), help=help
    )
