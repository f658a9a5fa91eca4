"""``mtasts lab``: run the simulated mail internet for a command or for a person.

``lab run --scenario FILE -- COMMAND ...`` starts the lab, runs COMMAND with the lab's
settings (MTASTS_NAMESERVER, MTASTS_CA_FILE, MTASTS_HTTPS_PORT, MTASTS_SMTP_PORT) added
to its environment, stops every server and exits with COMMAND's exit status (127: not
found, 126: not executable, 128+N: ended by signal N). ``lab up --scenario FILE`` runs
until Ctrl-C and prints the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from mtasts.cli.exitcodes import print_error
from mtasts.lab import Lab, Scenario

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

scenario_option = click.option(
    "--scenario",
    "-s",
    "scenario_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    envvar="MTASTS_LAB_SCENARIO",
    help="Scenario TOML file (see examples/scenarios/demo.toml). Env: MTASTS_LAB_SCENARIO.",
)


def _load(path: Path) -> Scenario:
    return Scenario.load(path)  # a ConfigError: one line from the `mtasts` group


def _on_signals(handler: Callable[[int], None]) -> Callable[[], None]:
    """Installs ``handler`` for SIGINT/SIGTERM/SIGHUP; returns the undo function."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in _SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handler, sig)
            installed.append(sig)

    def undo() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return undo


@click.group("lab")
def lab() -> None:
    """The lab: real DNS, HTTPS and SMTP servers on loopback, as a scenario describes."""


@lab.command("run", context_settings={"ignore_unknown_options": True})
@scenario_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(scenario_path: Path, command: tuple[str, ...]) -> None:
    """Start the lab, run COMMAND against it, stop the lab; exit with COMMAND's status.

    Write `--` before COMMAND so its options are not read as ours.
    """
    sys.exit(asyncio.run(_run(_load(scenario_path), command)))


async def _run(scenario: Scenario, command: tuple[str, ...]) -> int:
    async with Lab(scenario) as running:
        env = {**os.environ, **running.env}
        signals: list[int] = []
        child: asyncio.subprocess.Process | None = None

        def forward(sig: int) -> None:
            signals.append(sig)
            if child is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, sig)

        undo = _on_signals(forward)  # before the child starts: no signal slips through
        try:
            try:
                # A session of its own: the whole group can be signalled and cleaned up.
                child = await asyncio.create_subprocess_exec(
                    *command, env=env, start_new_session=True
                )
            except FileNotFoundError:
                print_error(f"{command[0]}: command not found")
                return 127
            except PermissionError:
                print_error(f"{command[0]}: not executable")
                return 126
            for sig in signals:  # arrived while the child was starting
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, sig)
            code = await child.wait()
        finally:
            undo()
            if child is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGTERM)  # whatever the command left running
    if code < 0:
        return 128 - code
    return code


@lab.command("up")
@scenario_option
def up(scenario_path: Path) -> None:
    """Run the lab in the foreground until Ctrl-C, printing its settings."""
    asyncio.run(_up(_load(scenario_path)))


async def _up(scenario: Scenario) -> None:
    stop = asyncio.Event()
    async with Lab(scenario) as running:
        out = Console(soft_wrap=True)
        for key, value in running.env.items():
            click.echo(f"export {key}={shlex.quote(value)}")
        table = Table(title="mtasts lab", show_lines=False)
        for column in ("host", "address", "service"):
            table.add_column(column)
        for row in running.describe():
            table.add_row(*row)
        out.print(table)
        click.echo("Lab running; Ctrl-C stops it.", err=True)
        undo = _on_signals(lambda _sig: stop.set())
        try:
            await stop.wait()
        finally:
            undo()
    click.echo("Lab stopped.", err=True)
