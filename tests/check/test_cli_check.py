"""`mtasts check` argument errors follow the monitoring-plugin convention too."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mtasts.cli.main import cli


@pytest.mark.parametrize(
    "args",
    [
        ["check"],  # defect: no domain given
        ["check", "--timeout", "0", "example.com"],  # defect: timeout out of range
        ["check", "--no-such-option", "example.com"],  # defect: unknown option
    ],
)
def test_usage_errors_exit_unknown_not_critical(args: list[str]) -> None:
    """Bad arguments exit 3 (UNKNOWN), as Nagios/Icinga plugins must: click's usual 2
    would page someone with CRITICAL for a typo in the monitoring configuration."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("mtasts: error: ")
    assert result.stderr.count("\n") == 1
