"""The options several commands take, declared once: the same name, range and wording
wherever they appear (``--json``, ``--timeout`` of a live check, counts and thresholds,
choices from an enum, files that must exist, the resolver's ``--nameserver``,
``--ca-file`` and ``--cache``).

Options that set a key of the settings tree (mtasts.toml < ``MTASTS_*`` < the option)
are made with :func:`setting_option`: such an option is not passed to the command's
function; it records ``{dotted key: (option, value)}`` in the click context, and the
command reads them all with :func:`given` to hand them to
:func:`mtasts.settings.tree.load`. The value is checked and typed by the key's field
definition, like the file's and the environment's, and its origin is ``option --NAME``;
an option that was not given (None, or an empty repeat) overrides nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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


def config_option(help: str) -> Decorator[Any]:
    """``--config FILE`` (the ``config_file`` parameter): mtasts.toml, which need not exist
    (a missing default is no error; a missing named file is the settings' to report)."""
    return click.option(
        "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help=help
    )


def existing_file(name: str, *, help: str, dest: str | None = None) -> Decorator[Any]:
    """A file that must exist (a :class:`~pathlib.Path`): click names a missing one."""
    decls = (name, dest) if dest else (name,)
    return click.option(
        *decls, type=click.Path(exists=True, dir_okay=False, path_type=Path), help=help
    )


_META = "mtasts.settings.options"


def setting_option(key: str, *decls: str, **attrs: Any) -> Callable[[F], F]:
    """A click option (``decls`` and ``attrs`` as for :func:`click.option`) for ``key``."""
    name = next(d for d in decls if d.startswith("-")).split("/")[0]

    def remember(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value == ():  # a repeatable option not given
            value = None
        elif isinstance(value, tuple):
            value = list(value)
        ctx.meta.setdefault(_META, {})[key] = (name, value)
        return value

    attrs.setdefault("expose_value", False)
    return click.option(*decls, callback=remember, **attrs)


def given(ctx: click.Context | None = None) -> dict[str, tuple[str, Any]]:
    """The command's :func:`setting_option` values: dotted key -> (option, value)."""
    ctx = ctx or click.get_current_context()
    return dict(ctx.meta.get(_META, {}))


def values(options: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    """``{key: value}`` of ``options`` (for :func:`mtasts.settings.tree.load`'s overrides)."""
    return {key: value for key, (_, value) in options.items()}


def names(options: Mapping[str, tuple[str, Any]]) -> dict[str, str]:
    """``{key: option}`` of ``options`` (``load``'s option_names)."""
    return {key: name for key, (name, _) in options.items()}


def resolver_options(f: F) -> F:
    """``--nameserver``, ``--ca-file`` and ``--cache``: the policy resolver's keys, for
    every command that looks MTA-STS policies up."""
    f = setting_option(
        "cache.url",
        "--cache",
        metavar="URL",
        help="Policy cache: memory: (default), sqlite:///PATH, redis://HOST:PORT/DB or "
        "postgresql://USER@HOST/DB. Env MTASTS_CACHE; [cache] url.",
    )(f)
    f = setting_option(
        "ca_file",
        "--ca-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="PEM file of CAs trusted for policy hosts (default: the system store). "
        "Env MTASTS_CA_FILE.",
    )(f)
    return setting_option(
        "nameserver",
        "--nameserver",
        metavar="HOST:PORT",
        help="DNS server to ask (default: /etc/resolv.conf). Env MTASTS_NAMESERVER.",
    )(f)
