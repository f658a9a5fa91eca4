"""`mtasts check` argument errors follow the monitoring-plugin convention too."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

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


def _check_on_a_terminal(no_color: bool) -> bytes:
    """``mtasts check`` of one domain with standard error on a pseudo-terminal (DNS is
    a closed port: the check ends UNKNOWN after its short timeouts); what the terminal got."""
    master, slave = pty.openpty()
    env = {
        **os.environ,
        "MTASTS_NAMESERVER": "127.0.0.1:9",
        "MTASTS_TIMEOUT_DNS": "0.3",
        "MTASTS_CONFIG": "",
    }
    env.pop("NO_COLOR", None)
    if no_color:
        env["NO_COLOR"] = "1"
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from mtasts.cli.main import main; main()",
                "check",
                "a.test",
                "--timeout",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        os.close(slave)
    assert done.returncode == 3  # UNKNOWN: DNS did not answer
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other end is closed: all read
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return seen


def test_one_domain_shows_progress_on_a_terminal_but_not_with_no_color() -> None:
    """A check can take a minute: a single domain shows a spinner on a terminal too (it
    showed nothing), and NO_COLOR turns progress off like colours."""
    with ThreadPoolExecutor(2) as pool:
        shown, plain = pool.map(_check_on_a_terminal, (False, True))
    assert b"checking a.test" in shown
    assert b"\x1b[" in shown
    assert plain == b""
