"""The exit-code table and the error line (issue 10): docs/exit-codes.md lists exactly
:class:`ExitCode`; an error we do not know keeps its traceback; colours follow the terminal
and NO_COLOR."""

from __future__ import annotations

import errno
import io
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mtasts.cli.exitcodes import ExitCode, classify, colour, one_line
from mtasts.cli.main import LazyGroup
from mtasts.errors import (
    ConfigError,
    MissingDependency,
    PolicyError,
    ServiceUnavailable,
    listen_failed,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "exit-codes.md"


def test_the_documented_table_is_the_enum() -> None:
    rows = re.findall(r"^\| (\d+) \| ([A-Z]+) \|", DOC.read_text(), flags=re.MULTILINE)
    assert [(int(code), name) for code, name in rows] == [(int(c), c.name) for c in ExitCode]


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConfigError("x"), ExitCode.CONFIG),
        (MissingDependency("the cache redis://r", "redis"), ExitCode.UNAVAILABLE),
        (ServiceUnavailable("store down"), ExitCode.TEMPFAIL),
        (PolicyError("mx missing"), ExitCode.FAILED),
        (listen_failed("127.0.0.1:25", OSError(errno.EADDRINUSE, "in use")), ExitCode.TEMPFAIL),
        (listen_failed("10.9.9.9:25", OSError(errno.EADDRNOTAVAIL, "no")), ExitCode.CONFIG),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"), ExitCode.CONFIG),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), ExitCode.TEMPFAIL),
    ],
)
def test_known_errors_get_their_code(exc: BaseException, code: ExitCode) -> None:
    known = classify(exc)
    assert known is not None
    assert known[0] is code


def test_the_missing_extra_names_the_pip_command() -> None:
    text = str(MissingDependency("the cache redis://r", "redis", module="redis-py"))
    assert "pip install 'mtasts[redis]'" in text
    assert "redis://r" in text


@pytest.mark.parametrize("exc", [RuntimeError("bug"), KeyError("k"), OSError("no errno")])
def test_a_bug_is_not_an_operators_mistake(exc: BaseException) -> None:
    assert classify(exc) is None


def test_a_bug_keeps_its_traceback() -> None:
    group = LazyGroup("mtasts", lazy={})

    @group.command("boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    result = CliRunner().invoke(group, ["boom"])
    assert isinstance(result.exception, RuntimeError)  # not swallowed into one line


def test_an_operators_mistake_is_one_line() -> None:
    group = LazyGroup("mtasts", lazy={})

    @group.command("conf")
    def conf() -> None:
        raise ConfigError("mtasts.toml: unknown setting 'x'\n(second line of a driver)")

    result = CliRunner().invoke(group, ["conf"], prog_name="mtasts")
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr == (
        "mtasts: error: mtasts.toml: unknown setting 'x'; (second line of a driver)\n"
    )


def test_one_line_joins_lines() -> None:
    assert one_line("a\n\n  b \r\nc") == "a; b; c"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour(_Tty())
    assert not colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour(_Tty())


def test_usage_errors_are_one_line_too() -> None:
    @click.command()
    @click.argument("domain")
    def need(domain: str) -> None: ...

    group = LazyGroup("mtasts", lazy={})
    group.add_command(need, "need")
    result = CliRunner().invoke(group, ["need"], prog_name="mtasts")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == (
        "mtasts: error: Missing argument 'DOMAIN'. (see 'mtasts need --help')\n"
    )
