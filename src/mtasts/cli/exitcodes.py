"""Exit codes of every ``mtasts`` command, and the one-line error an operator sees.

docs/exit-codes.md shows this table (tests/cli/test_exit_codes.py keeps the two equal).
The numbers above 63 are those of sysexits.h, which mail software (Postfix, sendmail)
and systemd already know: 75 means "try again later" and 78 "fix the configuration".

An operator's mistake (a missing file, a malformed URL, an unreachable store, a port in
use, a missing optional dependency, a bad setting) is ONE line on standard error,
``mtasts: error: <what, and what to do>``, and one of these codes: :func:`classify`
decides which. Anything it does not know is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from enum import IntEnum
from typing import TextIO

import click

from mtasts.errors import (
    ConfigError,
    DnsError,
    DomainNameError,
    MissingDependency,
    MtastsError,
    ServiceUnavailable,
)

PREFIX = "mtasts: error: "


class ExitCode(IntEnum):
    """What the exit status of any ``mtasts`` command means."""

    #: success (``check``: every domain OK)
    OK = 0
    #: the command ran and its answer is "no": an input is invalid (``lint``), a report is
    #: still pending (``tlsrpt send``), an entry was not found (``cache show``), counters
    #: went to the spool (``tlsrpt collect``); ``check``: WARNING. Also an unexpected
    #: internal error, shown with a Python traceback (please report it)
    FAILED = 1
    #: the command line is wrong: an unknown option, a missing argument, a value of the
    #: wrong form, an option naming a file that does not exist; ``check``: CRITICAL
    USAGE = 2
    #: could not be determined (``query``: DNS failed, try later); ``check``: UNKNOWN, which
    #: is also what ``check`` exits with for any error of its own (monitoring convention)
    UNKNOWN = 3
    #: an optional dependency is missing: the message gives the pip command (EX_UNAVAILABLE)
    UNAVAILABLE = 69
    #: something needed is unreachable or busy right now: a store, a cache, DNS, the
    #: daemon, an address in use; running the same command later may work (EX_TEMPFAIL)
    TEMPFAIL = 75
    #: the configuration is wrong: a setting, a URL, or a file or directory it names is
    #: missing, unreadable or unwritable; fix it, then run again (EX_CONFIG)
    CONFIG = 78
    #: stopped by Ctrl-C (128 + SIGINT)
    INTERRUPTED = 130


# errno values that mean "not reachable now" rather than "configured wrong".
_TRANSIENT = frozenset(
    {
        errno.EADDRINUSE,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EAGAIN,
        errno.ENOSPC,
    }
)

# What to do about an OSError on a file or directory the operator named.
_FILE_HINTS = {
    errno.ENOENT: "check the path, or create it",
    errno.EACCES: "give the user running mtasts access, or choose another path",
    errno.EPERM: "give the user running mtasts access, or choose another path",
    errno.EROFS: "choose a path on a writable file system",
    errno.EISDIR: "name a file, not a directory",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
}


def classify(exc: BaseException) -> tuple[ExitCode, str] | None:
    """The exit code and the one-line message for ``exc``; ``None``: a bug (traceback)."""
    if isinstance(exc, MissingDependency):
        return ExitCode.UNAVAILABLE, str(exc)
    if isinstance(exc, ConfigError):
        return ExitCode.CONFIG, str(exc)
    if isinstance(exc, ServiceUnavailable | DnsError):
        return ExitCode.TEMPFAIL, str(exc)
    if isinstance(exc, DomainNameError):
        return ExitCode.USAGE, str(exc)
    if isinstance(exc, MtastsError):
        if exc.code.endswith(("unavailable", ".unreachable")):
            return ExitCode.TEMPFAIL, str(exc)
        return ExitCode.FAILED, str(exc)
    if isinstance(exc, OSError):
        return _os_error(exc)
    return None


def _os_error(exc: OSError) -> tuple[ExitCode, str] | None:
    what = exc.strerror or str(exc)
    if exc.filename is not None:
        target = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
        hint = _FILE_HINTS.get(exc.errno or 0)
        code = ExitCode.TEMPFAIL if exc.errno in _TRANSIENT else ExitCode.CONFIG
        return code, f"{target}: {what}" + (f": {hint}" if hint else "")
    if exc.errno in _TRANSIENT:
        return ExitCode.TEMPFAIL, str(exc)
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES, errno.EPERM):
        return ExitCode.CONFIG, str(exc)
    return None


def one_line(message: str) -> str:
    """``message`` on one line (a driver's multi-line text joined with "; ")."""
    return "; ".join(part.strip() for part in message.splitlines() if part.strip())


def colour(stream: TextIO) -> bool:
    """Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def print_error(message: str) -> None:
    """Print ``mtasts: error: message`` as one line on standard error."""
    stream = sys.stderr
    label = click.style("error:", fg="red", bold=True) if colour(stream) else "error:"
    click.echo(f"mtasts: {label} {one_line(message)}", file=stream, color=colour(stream))


def print_warning(message: str) -> None:
    """Print ``mtasts: warning: message`` as one line on standard error."""
    stream = sys.stderr
    label = click.style("warning:", fg="yellow", bold=True) if colour(stream) else "warning:"
    click.echo(f"mtasts: {label} {one_line(message)}", file=stream, color=colour(stream))


class CommandFailed(click.ClickException):
    """An error already worded for the operator, with the exit code to use."""

    def __init__(self, message: str, code: int = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.exit_code = int(code)  # type: ignore[misc]  # (click: per instance too)

    def show(self, file: object = None) -> None:
        print_error(self.format_message())


def as_failure(exc: BaseException, *, code: ExitCode | None = None) -> CommandFailed | None:
    """``exc`` as a :class:`CommandFailed` (``code`` overrides the table, e.g. ``check``'s
    UNKNOWN); ``None`` when ``exc`` is not an operator's mistake."""
    known = classify(exc)
    if known is None:
        return None
    return CommandFailed(known[1], code if code is not None else known[0])
