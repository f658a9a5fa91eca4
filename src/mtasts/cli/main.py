"""The ``mtasts`` command: a thin click group; each subcommand lives in its own module."""

from __future__ import annotations

import click

from mtasts import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mtasts")
def cli() -> None:
    """MTA-STS (RFC 8461) and SMTP TLS Reporting (RFC 8460) for senders and receiving domains.

    \b
    Exit codes: 0 success; 1 the input or domain is invalid / failed;
    2 usage error; 3 could not be determined (the `check` command follows the
    monitoring-plugin convention 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    """


def _register() -> None:
    # One line per command module; each module owns its command and its help text.
    from mtasts.cli import lint

    cli.add_command(lint.lint)
    cli.add_command(__import__("mtasts.cli.tlsrpt", fromlist=["tlsrpt"]).tlsrpt)
    from mtasts.cli.lab import lab as lab_group

    cli.add_command(lab_group)
    cli.add_command(__import__("mtasts.cli.check", fromlist=["check"]).check)
    cli.add_command(__import__("mtasts.cli.policy", fromlist=["policy"]).policy)
    cli.add_command(__import__("mtasts.cli.serve", fromlist=["serve"]).serve)
    cli.add_command(__import__("mtasts.cli.query", fromlist=["query"]).query)
    __import__("mtasts.cli.daemon", fromlist=["register"]).register(cli)  # daemon, cache


_register()


def main() -> None:
    cli(prog_name="mtasts")
