"""The ``mtasts`` command: a thin click group; each subcommand lives in its own module.

The group is lazy: ``mtasts --version`` and ``mtasts --help`` import nothing but click,
and a subcommand's module (with httpx, dnspython, SQLAlchemy, cryptography, ...) is
imported only when that subcommand runs. The help list shows each command's one-line
summary from ``COMMANDS`` below; tests/cli/test_main.py keeps it equal to the summary the
command itself gives.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from mtasts import __version__

# name -> (module, attribute, the first paragraph of the command's help). One line per
# command; each module owns its command and its full help text. A new top-level command
# is one more entry here (never an import at module level: `--help` must stay light).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "acme": (
        "mtasts.cli.acme",
        "acme",
        "Certificates of `serve policy --acme`: status, renew now, revoke.",
    ),
    "advise": (
        "mtasts.cli.advise",
        "advise",
        "Say whether DOMAIN can switch to enforce: READY, NOT READY or CANNOT TELL.",
    ),
    "alerts": (
        "mtasts.cli.alerts",
        "alerts",
        "Alerts on the received TLS-RPT reports: rules, e-mail, webhook, Apprise.",
    ),
    "cache": (
        "mtasts.cli.daemon",
        "cache",
        "Show, purge or refresh one domain's cached MTA-STS policy.",
    ),
    "check": (
        "mtasts.cli.check",
        "check",
        "Check DOMAIN's MTA-STS record, policy host, policy, every MX's STARTTLS, and TLS-RPT.",
    ),
    "config": (
        "mtasts.cli.config",
        "config",
        "Show, check or write mtasts.toml, the settings of every command.",
    ),
    "daemon": (
        "mtasts.cli.daemon",
        "daemon",
        "Serve MTA-STS (and DANE-first) TLS policies to Postfix over socketmap.",
    ),
    "init": (
        "mtasts.cli.config",
        "init",
        "Write a commented mtasts.toml, every setting with its default.",
    ),
    "lab": (
        "mtasts.cli.lab",
        "lab",
        "The lab: real DNS, HTTPS and SMTP servers on loopback, as a scenario describes.",
    ),
    "lint": (
        "mtasts.cli.lint",
        "lint",
        "Check INPUT (a file path, or - for standard input) as a KIND.",
    ),
    "monitor": (
        "mtasts.cli.monitor",
        "monitor",
        "Watch domains over time: drift, policy changes without a new id, certificates.",
    ),
    "policy": (
        "mtasts.cli.policy",
        "policy",
        "Write MTA-STS policies and the DNS records that publish them.",
    ),
    "query": (
        "mtasts.cli.query",
        "query",
        "Discover, fetch and validate DOMAIN's MTA-STS policy as a sending MTA does.",
    ),
    "serve": ("mtasts.cli.serve", "serve", "Run mtasts servers."),
    "tlsrpt": (
        "mtasts.cli.tlsrpt",
        "tlsrpt",
        "SMTP TLS Reporting (RFC 8460) for a sending MTA: collect, show, send.",
    ),
    "web": (
        "mtasts.cli.web",
        "web",
        "Serve the dashboard and JSON API over the received TLS-RPT reports.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's lazy-loading pattern)."""

    def __init__(self, *args: object, lazy: dict[str, tuple[str, str, str]], **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, attribute, _ = self.lazy[cmd_name]
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}.{attribute} is not a click command")
        self.add_command(command, cmd_name)
        return command

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run, turning an operator's mistake into one line and its exit code.

        Every error is written ``mtasts: error: ...`` on standard error (click's own usage
        errors too); :mod:`mtasts.cli.exitcodes` says which code each kind gets. An error
        it does not know is a bug: its traceback is kept.
        """
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.Abort:
            click.echo("mtasts: interrupted", err=True)
            sys.exit(130)
        except click.UsageError as exc:
            _usage_error(exc)
        except click.ClickException as exc:
            from mtasts.cli.exitcodes import print_error

            print_error(exc.format_message())
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            _closed_pipe()
        except Exception as exc:
            from mtasts.cli.exitcodes import classify, print_error

            known = classify(exc)
            if known is None:
                raise
            print_error(known[1])
            sys.exit(int(known[0]))
        sys.exit(result if isinstance(result, int) else 0)

    def summary_command(self, cmd_name: str) -> click.Command:
        """The loaded command, or a stand-in carrying only its name and summary."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        return click.Command(cmd_name, help=self.lazy[cmd_name][2])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.summary_command(name)
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="mtasts")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The settings file for every command (default: $MTASTS_CONFIG, else "
    "/etc/mtasts/mtasts.toml when it exists).",
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """MTA-STS (RFC 8461) and SMTP TLS Reporting (RFC 8460) for senders and receiving domains.

    Settings: mtasts.toml (--config), then MTASTS_<SECTION>_<KEY> variables, then each
    command's options; `mtasts config show` prints them and where each came from.

    \b
    Exit codes (every command; docs/exit-codes.md):
      0 success    1 failed (the answer is no)    2 usage error
      3 could not be determined    69 optional dependency missing
      75 unreachable or busy: try again later    78 configuration error
    `check` follows the monitoring-plugin convention: 0 OK, 1 WARNING,
    2 CRITICAL, 3 UNKNOWN (its own errors included).
    """
    if config_file is not None:
        from mtasts.settings.tree import use_file  # only then: --version stays light

        use_file(config_file)
        ctx.call_on_close(lambda: use_file(None))


def _usage_error(exc: click.UsageError) -> NoReturn:
    from mtasts.cli.exitcodes import print_error

    where = exc.ctx.command_path if exc.ctx is not None else "mtasts"
    print_error(f"{exc.format_message()} (see '{where} --help')")
    sys.exit(exc.exit_code)


def _closed_pipe() -> NoReturn:
    """The reader of our output went away (``mtasts ... | head``): stop quietly."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1)


def main() -> None:
    cli(prog_name="mtasts")
