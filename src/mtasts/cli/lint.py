"""``mtasts lint KIND INPUT``: check a record, a policy or a report before publishing it."""

from __future__ import annotations

from typing import BinaryIO

import click


@click.command()
@click.argument("kind", type=click.Choice(["sts-record", "policy", "tlsrpt-record", "report"]))
@click.argument("source", metavar="INPUT", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def lint(kind: str, source: BinaryIO, as_json: bool) -> None:
    """Check INPUT (a file, or - for standard input) as a KIND."""
    raise SystemExit(3)
