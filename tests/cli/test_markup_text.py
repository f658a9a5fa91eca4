"""What others wrote (a policy under lint, a domain's records in `check`, a report's
fields) is printed as text: a `[/x]` in it is never read as a rich tag, which raised
MarkupError and ended the command with a traceback."""

from __future__ import annotations

from click.testing import CliRunner
from rich.console import Console

from mtasts.check.finding import DomainReport, Finding, Severity
from mtasts.cli.check import _table
from mtasts.cli.main import cli

HOSTILE = "[/x] [bold]not bold[/bold] [link=https://evil.example]x[/link]"


def test_lint_prints_a_hostile_value_as_it_is() -> None:
    policy = f"version: STSv1\nmode: {HOSTILE}\nmx: a.example\nmax_age: 86400\n"
    res = CliRunner().invoke(cli, ["lint", "policy", "-"], input=policy, env={"COLUMNS": "300"})
    assert res.exit_code == 1, res.output
    assert HOSTILE in res.output


def test_check_table_prints_a_hostile_finding_as_it_is() -> None:
    finding = Finding("sts.record", Severity.CRITICAL, f"TXT says {HOSTILE}", rfc="RFC 8461 §3.1")
    out = Console(width=400, record=True, color_system=None)
    out.print(_table(DomainReport("example.com", (finding,)), problems_only=False))
    text = out.export_text()
    assert f"TXT says {HOSTILE}" in text
    assert "(RFC 8461 §3.1)" in text
