"""The ``mtasts`` group: ``--version`` and ``--help`` import no heavy module (issue 10),
and the lazy help list says what each command says of itself."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mtasts.cli.main import COMMANDS, LazyGroup, cli

# What the subcommands pull in; none of it is needed to print the version or the help.
HEAVY = {
    "httpx",
    "httpcore",
    "sqlalchemy",
    "aiosqlite",
    "dns",
    "aiosmtpd",
    "cryptography",
    "trustme",
    "dkim",
    "rich",
    "orjson",
    "yaml",
    "prometheus_client",
    "redis",
    "asyncpg",
    "uvloop",
    "asyncio",
    "ssl",
}

PROBE = """
import json, sys
from mtasts.cli.main import main
out, sys.argv = sys.argv[1], ["mtasts", *sys.argv[2:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["-h"]])
def test_version_and_help_import_no_heavy_module(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "mtasts" in done.stdout
    seen = json.loads(out.read_text())
    assert seen["code"] == 0
    modules = set(seen["modules"])
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == []
    ours = sorted(m for m in modules if m.split(".")[0] == "mtasts")
    assert ours == ["mtasts", "mtasts.cli", "mtasts.cli.main"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_summary_is_the_commands_own(name: str) -> None:
    """The stand-in summary in COMMANDS gives the same one-liner as the command, at any
    terminal width, so the lazy help list never drifts from the modules' help texts."""
    module, attribute, _ = COMMANDS[name]
    real = getattr(importlib.import_module(module), attribute)
    assert isinstance(real, click.Command)
    assert real.name == name
    stand_in = LazyGroup("probe", lazy=COMMANDS).summary_command(name)
    for limit in (30, 45, 62, 200):
        assert stand_in.get_short_help_str(limit) == real.get_short_help_str(limit), (
            f"the summary of {name!r} in COMMANDS (src/mtasts/cli/main.py) differs from the "
            "first paragraph of its help: copy it over"
        )


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:")[1].split()
    for name in COMMANDS:
        assert name in listed


def test_subcommand_loads_when_run() -> None:
    result = CliRunner().invoke(cli, ["tlsrpt", "--help"], prog_name="mtasts")
    assert result.exit_code == 0, result.output
    assert "Usage: mtasts tlsrpt" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.output
