"""Terminal and JSON output shared by every command."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click
import orjson
from rich.console import Console


def console(*, stderr: bool = False, markup: bool = True) -> Console:
    """A rich console: colours and progress on a terminal, plain text in pipes.

    ``markup=False`` for output made of what others wrote (report fields, server
    answers): a ``[/x]`` in it is text, never a rich tag (with markup, one such
    organization name made ``tlsrpt received --reports`` fail)."""
    return Console(stderr=stderr, soft_wrap=True, markup=markup)


def print_json(obj: Any) -> None:
    """Print one JSON document (pretty, keys in insertion order) to standard output."""
    click.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode())


def fail(message: str, *, code: int) -> NoReturn:
    """Print ``mtasts: error: message`` (one line) on standard error and exit with ``code``
    (docs/exit-codes.md). Prefer raising a typed error (ConfigError, ServiceUnavailable,
    MissingDependency): the ``mtasts`` group words it and picks the code."""
    from mtasts.cli.exitcodes import print_error

    print_error(message)
    sys.exit(code)
