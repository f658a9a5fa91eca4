"""Terminal and JSON output shared by every command."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click
import orjson
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from mtasts.cli.exitcodes import ExitCode

#: The colour of a level wherever one is shown: ``check``'s findings and domains,
#: ``advise``'s verdict and live checks, ``monitor``'s conditions (plain in pipes).
TONE = {"ok": "green", "warning": "yellow", "critical": "bold red", "unknown": "magenta"}


def console(*, stderr: bool = False, markup: bool = True) -> Console:
    """A rich console: colours and progress on a terminal, plain text in pipes.

    ``markup=False`` for output made of what others wrote (report fields, server
    answers): a ``[/x]`` in it is text, never a rich tag (with markup, one such
    organization name made ``tlsrpt received --reports`` fail)."""
    return Console(stderr=stderr, soft_wrap=True, markup=markup)


def toned(text: str, level: str) -> str:
    """``text`` (rich markup, escaped by the caller) in the colour of ``level``; a level
    without a colour leaves it plain."""
    style = TONE.get(level)
    return f"[{style}]{text}[/]" if style else text


def titled(title: str) -> Table:
    """A table with its title on the left, above the columns."""
    return Table(title=title, title_justify="left")


def checks_table(title: str, text: str) -> Table:
    """A table of checks: a level's label, the check's id, then ``text`` (``check``'s
    findings, ``advise``'s live checks)."""
    table = titled(title)
    table.add_column("", no_wrap=True)
    table.add_column("check", overflow="fold", style="cyan")
    table.add_column(text, overflow="fold")
    return table


def print_json(obj: Any) -> None:
    """Print one JSON document (pretty, keys in insertion order) to standard output."""
    click.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode())


def fail(message: str, *, code: ExitCode) -> NoReturn:
    """Print ``mtasts: error: message`` (one line) on standard error and exit with
    ``code``, one of docs/exit-codes.md. Prefer raising a typed error (ConfigError,
    ServiceUnavailable, MissingDependency): the ``mtasts`` group words it and picks the
    code; this is for a command whose own convention decides (``check``'s UNKNOWN)."""
    from mtasts.cli.exitcodes import print_error

    print_error(message)
    sys.exit(int(code))
