"""Terminal and JSON output shared by every command."""

from __future__ import annotations

from typing import Any

import click
import orjson
from rich.console import Console


def console(*, stderr: bool = False) -> Console:
    """A rich console: colours and progress on a terminal, plain text in pipes."""
    return Console(stderr=stderr, soft_wrap=True)


def print_json(obj: Any) -> None:
    """Print one JSON document (pretty, keys in insertion order) to standard output."""
    click.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode())
