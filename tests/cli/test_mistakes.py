"""Common operator mistakes through the real ``mtasts`` entry point (issue 10).

Each one must end in ONE line on standard error, ``mtasts: error: ...``, naming the thing
that is wrong, no traceback, and the exit code docs/exit-codes.md gives for its kind.
Every case gets its own files; the cases run in-process through the ``mtasts`` group
(the console script's ``main`` is that group), a few again as real processes below.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from mtasts.cli.exitcodes import ExitCode
from mtasts.cli.main import cli

DATA = Path(__file__).resolve().parents[1] / "data"
GOOD_POLICY = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n"
UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/test"


@dataclass
class Case:
    """``argv`` and ``env`` may name files of the case's own directory as ``{tmp}``."""

    name: str
    argv: list[str]
    code: ExitCode
    says: str  # what the one line must name
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text
    setup: Callable[[Path], None] | None = None
    missing: tuple[str, ...] = ()  # modules made unimportable (an extra not installed)
    busy_port: bool = False  # {port} is a TCP port another socket listens on


def _ro_file(tmp: Path) -> None:
    (tmp / "file").write_text("a file, not a directory\n")


CONFIG = ExitCode.CONFIG
USAGE = ExitCode.USAGE
TEMPFAIL = ExitCode.TEMPFAIL
UNAVAILABLE = ExitCode.UNAVAILABLE
UNKNOWN = ExitCode.UNKNOWN

CASES = [
    # --- the configuration file and the environment -----------------------------------
    Case(
        "config file missing",
        ["query", "--config", "{tmp}/nope.toml", "a.test"],
        CONFIG,
        "nope.toml",
    ),
    Case(
        "config not TOML",
        ["query", "a.test"],
        CONFIG,
        "mtasts.toml",
        env={"MTASTS_CONFIG": "{tmp}/mtasts.toml"},
        files={"mtasts.toml": "nameserver = \n"},
    ),
    Case(
        "config unknown key",
        ["query", "a.test"],
        CONFIG,
        "nameservr",
        env={"MTASTS_CONFIG": "{tmp}/mtasts.toml"},
        files={"mtasts.toml": 'nameservr = "x"\n'},
    ),
    Case(
        "config bad port",
        ["query", "a.test"],
        CONFIG,
        "https_port",
        env={"MTASTS_CONFIG": "{tmp}/mtasts.toml"},
        files={"mtasts.toml": 'https_port = "x"\n'},
    ),
    Case(
        "env bad nameserver",
        ["query", "a.test"],
        CONFIG,
        "nameserver",
        env={"MTASTS_NAMESERVER": "127.0.0.1:dns"},
    ),
    Case(
        "nameserver given by name",
        ["daemon", "--nameserver", "dns.example"],
        CONFIG,
        "is not an IP address",
    ),
    Case(
        "config nameserver given by name",
        ["query", "a.test"],
        CONFIG,
        "is not an IP address",
        env={"MTASTS_CONFIG": "{tmp}/mtasts.toml"},
        files={"mtasts.toml": 'nameserver = "localhost:53"\n'},
    ),
    Case(
        "env negative timeout",
        ["query", "a.test"],
        CONFIG,
        "timeouts.dns",
        env={"MTASTS_TIMEOUT_DNS": "-1"},
    ),
    Case(
        "check: bad config is UNKNOWN",
        ["check", "a.test"],
        UNKNOWN,
        "nameserver",
        env={"MTASTS_NAMESERVER": "127.0.0.1:dns"},
    ),
    Case(
        "check: missing CA file is UNKNOWN",
        ["check", "a.test"],
        UNKNOWN,
        "nope.pem",
        env={"MTASTS_CA_FILE": "{tmp}/nope.pem", "MTASTS_NAMESERVER": "127.0.0.1:9"},
    ),
    Case(
        "daemon: bad [daemon] value",
        ["daemon", "--config", "{tmp}/mtasts.toml"],
        CONFIG,
        "listen",
        files={"mtasts.toml": "[daemon]\nlisten = 5\n"},
    ),
    Case(
        "daemon: bad pmsr yaml",
        ["daemon", "--pmsr-config", "{tmp}/pmsr.yml"],
        CONFIG,
        "pmsr.yml",
        files={"pmsr.yml": "zones: [\n"},
    ),
    Case(
        "tlsrpt: bad [tlsrpt] store",
        ["tlsrpt", "reports", "--organization", "o", "--contact", "c@o.test"],
        CONFIG,
        "store",
        env={"MTASTS_CONFIG": "{tmp}/mtasts.toml", "MTASTS_TLSRPT_STORE": ""},
        files={"mtasts.toml": "[tlsrpt]\nstore = 5\n"},
    ),
    Case(
        "prune: bad [receive] value",
        ["tlsrpt", "prune", "--store", "sqlite:///{tmp}/r.db"],
        CONFIG,
        "keep_days",
        env={"MTASTS_CONFIG": "{tmp}/mtasts.toml"},
        files={"mtasts.toml": "[receive]\nkeep_days = -3\n"},
    ),
    Case(
        "receive: bad listener",
        ["tlsrpt", "receive", "--http", "nowhere", "--store", "sqlite:///{tmp}/r.db"],
        CONFIG,
        "nowhere",
    ),
    Case(
        "lab: bad scenario",
        ["lab", "run", "--scenario", "{tmp}/s.toml", "--", "true"],
        CONFIG,
        "s.toml",
        files={"s.toml": "[[domain]]\nname = 5\n"},
    ),
    Case(
        "serve policy: config with an unknown key",
        ["serve", "policy", "--config", "{tmp}/p.toml"],
        CONFIG,
        "unknown setting 'x'",
        files={"p.toml": "x = 1\n"},
    ),
    Case(
        "serve policy: empty directory",
        ["serve", "policy", "--dir", "{tmp}/pol"],
        CONFIG,
        "no <domain>.txt",
        setup=lambda t: (t / "pol").mkdir(),
    ),
    Case(
        "serve policy: policy does not lint",
        ["serve", "policy", "--dir", "{tmp}/pol"],
        CONFIG,
        "a.test.txt",
        files={"pol/a.test.txt": "version: STSv1\nmode: enforce\n"},
    ),
    # --- store and cache URLs ----------------------------------------------------------
    Case(
        "query: unknown cache scheme", ["query", "--cache", "bogus:", "a.test"], CONFIG, "cache URL"
    ),
    Case(
        "query: cache dir missing",
        ["query", "--cache", "sqlite:///{tmp}/no/dir/c.db", "a.test"],
        CONFIG,
        "{tmp}/no/dir",
    ),
    Case(
        "query: cache under a file",
        ["query", "--cache", "sqlite:///{tmp}/file/c.db", "a.test"],
        CONFIG,
        "{tmp}/file",
        setup=_ro_file,
    ),
    Case(
        "query: bad memory size",
        ["query", "--cache", "memory:?max_entries=lots", "a.test"],
        CONFIG,
        "max_entries",
    ),
    Case("daemon: unknown cache scheme", ["daemon", "--cache", "bogus:"], CONFIG, "cache URL"),
    Case(
        "daemon: bad tlsrpt store", ["daemon", "--tlsrpt-store", "mysql://x"], CONFIG, "store URL"
    ),
    Case(
        "reports: unknown store scheme",
        ["tlsrpt", "reports", "--store", "bogus:", "--organization", "o", "--contact", "c@o.test"],
        CONFIG,
        "store URL",
    ),
    Case(
        "reports: store dir missing",
        [
            "tlsrpt",
            "reports",
            "--store",
            "sqlite:///{tmp}/no/dir/t.db",
            "--organization",
            "o",
            "--contact",
            "c@o.test",
        ],
        CONFIG,
        "{tmp}/no/dir",
    ),
    Case(
        "send: store under a file",
        [
            "tlsrpt",
            "send",
            "--day",
            "2020-01-01",
            "--store",
            "sqlite:///{tmp}/file/t.db",
            "--organization",
            "o",
            "--contact",
            "c@o.test",
        ],
        CONFIG,
        "{tmp}/file",
        setup=_ro_file,
    ),
    Case(
        "collect: unknown store scheme",
        ["tlsrpt", "collect", "--socket", "{tmp}/s", "--store", "bogus:"],
        CONFIG,
        "store URL",
    ),
    Case(
        "received: unknown store scheme",
        ["tlsrpt", "received", "--store", "bogus:"],
        CONFIG,
        "store URL",
    ),
    Case(
        "import: store dir missing",
        ["tlsrpt", "import", "--store", "sqlite:///{tmp}/no/dir/r.db", "{tmp}"],
        CONFIG,
        "{tmp}/no/dir",
    ),
    Case(
        "cache show: memory cache",
        ["cache", "show", "a.test"],
        CONFIG,
        "memory:",
        env={"MTASTS_CACHE": "memory:"},
    ),
    # --- unreachable or busy -----------------------------------------------------------
    Case(
        "reports: PostgreSQL down",
        [
            "tlsrpt",
            "reports",
            "--store",
            UNREACHABLE_PG,
            "--organization",
            "o",
            "--contact",
            "c@o.test",
        ],
        TEMPFAIL,
        "127.0.0.1:1",
    ),
    Case(
        "received: PostgreSQL down",
        ["tlsrpt", "received", "--store", UNREACHABLE_PG],
        TEMPFAIL,
        "127.0.0.1:1",
    ),
    Case(
        "import: PostgreSQL down",
        ["tlsrpt", "import", "--store", UNREACHABLE_PG, "{tmp}"],
        TEMPFAIL,
        "127.0.0.1:1",
    ),
    Case(
        "cache show: daemon down",
        ["cache", "show", "a.test", "--daemon", "http://127.0.0.1:1"],
        TEMPFAIL,
        "http://127.0.0.1:1",
    ),
    Case(
        "policy generate: DNS down",
        ["policy", "generate", "--domain", "a.test"],
        TEMPFAIL,
        "--mx",
        env={"MTASTS_NAMESERVER": "127.0.0.1:9", "MTASTS_TIMEOUT_DNS": "0.3"},
    ),
    Case(
        "daemon: port in use",
        ["daemon", "--no-uvloop", "--listen", "127.0.0.1:{port}"],
        TEMPFAIL,
        "127.0.0.1:{port}",
        busy_port=True,
    ),
    Case(
        "serve policy: port in use",
        ["serve", "policy", "--dir", "{tmp}/pol", "--listen", "127.0.0.1:{port}"],
        TEMPFAIL,
        "127.0.0.1:{port}",
        busy_port=True,
        files={"pol/a.test.txt": GOOD_POLICY},
    ),
    Case(
        "receive: port in use",
        ["tlsrpt", "receive", "--http", "127.0.0.1:{port}", "--store", "sqlite:///{tmp}/r.db"],
        TEMPFAIL,
        "127.0.0.1:{port}",
        busy_port=True,
    ),
    # --- files and directories -----------------------------------------------------------
    Case(
        "query: CA file missing",
        ["query", "--ca-file", "{tmp}/nope.pem", "a.test"],
        CONFIG,
        "{tmp}/nope.pem",
    ),
    Case(
        "query: CA file not PEM",
        ["query", "--ca-file", "{tmp}/ca.pem", "a.test"],
        CONFIG,
        "{tmp}/ca.pem",
        files={"ca.pem": "not a certificate\n"},
    ),
    Case(
        "serve policy: cert not PEM",
        ["serve", "policy", "--dir", "{tmp}/pol", "--cert", "{tmp}/c.pem", "--key", "{tmp}/k.pem"],
        CONFIG,
        "{tmp}/c.pem",
        files={"pol/a.test.txt": GOOD_POLICY, "c.pem": "x\n", "k.pem": "y\n"},
    ),
    Case(
        "serve policy: cert without key",
        ["serve", "policy", "--dir", "{tmp}/pol", "--cert", "{tmp}/c.pem"],
        CONFIG,
        "cert and key",
        files={"pol/a.test.txt": GOOD_POLICY, "c.pem": "x\n"},
    ),
    Case(
        "serve policy: directory missing", ["serve", "policy", "--dir", "{tmp}/nope"], USAGE, "nope"
    ),
    Case(
        "daemon: socket directory missing",
        ["daemon", "--no-uvloop", "--listen", "unix:{tmp}/no/dir/mtasts.sock"],
        CONFIG,
        "{tmp}/no/dir",
    ),
    Case(
        "collect: socket directory missing",
        ["tlsrpt", "collect", "--socket", "{tmp}/no/dir/s", "--store", "sqlite:///{tmp}/t.db"],
        CONFIG,
        "{tmp}/no/dir",
    ),
    Case(
        "receive: key not PEM",
        [
            "tlsrpt",
            "receive",
            "--http",
            "127.0.0.1:0",
            "--cert",
            "{tmp}/c.pem",
            "--key",
            "{tmp}/k.pem",
            "--store",
            "sqlite:///{tmp}/r.db",
        ],
        CONFIG,
        "{tmp}/c.pem",
        files={"c.pem": "x\n", "k.pem": "y\n"},
    ),
    Case(
        "send: DKIM key not PEM",
        [
            "tlsrpt",
            "send",
            "--day",
            "2020-01-01",
            "--store",
            "sqlite:///{tmp}/t.db",
            "--organization",
            "o",
            "--contact",
            "c@o.test",
            "--dkim-key",
            "{tmp}/dkim.pem",
        ],
        CONFIG,
        "{tmp}/dkim.pem",
        files={"dkim.pem": "not a key\n"},
    ),
    Case(
        "policy generate: out under a file",
        ["policy", "generate", "--domain", "a.test", "--mx", "mx.a.test", "--out", "{tmp}/file/x"],
        CONFIG,
        "{tmp}/file",
        setup=_ro_file,
    ),
    Case("lint: input missing", ["lint", "policy", "{tmp}/nope.txt"], USAGE, "nope.txt"),
    Case(
        "import: source missing",
        ["tlsrpt", "import", "--store", "sqlite:///{tmp}/r.db", "{tmp}/nope.json"],
        USAGE,
        "nope.json",
    ),
    Case(
        "status: unknown store scheme",
        ["tlsrpt", "status", "--store", "bogus:"],
        CONFIG,
        "store URL",
    ),
    Case(
        "collect: postfix log missing",
        ["tlsrpt", "collect", "--postfix-log", "{tmp}/nope.log"],
        USAGE,
        "nope.log",
    ),
    Case(
        "collect: postfix log with the daemon's memory cache",
        ["tlsrpt", "collect", "--postfix-log", "{tmp}/mail.log"],
        CONFIG,
        "--daemon",
        env={"MTASTS_CACHE": "memory:"},
        files={"mail.log": "Dec  2 21:45:07 mx postfix/smtp[1]: x\n"},
    ),
    # --- the command line ----------------------------------------------------------------
    Case("query: bad domain", ["query", "a..test"], USAGE, "a..test"),
    Case("unknown command", ["qurey", "a.test"], USAGE, "qurey"),
    Case(
        "query: timeout not a number", ["query", "--timeout", "soon", "a.test"], USAGE, "--timeout"
    ),
    Case(
        "send: not a day",
        [
            "tlsrpt",
            "send",
            "--day",
            "2020-13-01",
            "--store",
            "sqlite:///{tmp}/t.db",
            "--organization",
            "o",
            "--contact",
            "c@o.test",
        ],
        USAGE,
        "2020-13-01",
    ),
    Case(
        "send: day not over",
        [
            "tlsrpt",
            "send",
            "--day",
            datetime.now(UTC).date().isoformat(),
            "--store",
            "sqlite:///{tmp}/t.db",
            "--organization",
            "o",
            "--contact",
            "c@o.test",
        ],
        USAGE,
        "--unfinished",
    ),
    Case(
        "send: bad relay",
        [
            "tlsrpt",
            "send",
            "--day",
            "2020-01-01",
            "--store",
            "sqlite:///{tmp}/t.db",
            "--organization",
            "o",
            "--contact",
            "c@o.test",
            "--relay",
            "mail:smtp",
        ],
        CONFIG,
        "--relay",
    ),
    Case(
        "collect: bad socket mode",
        ["tlsrpt", "collect", "--socket", "{tmp}/s", "--socket-mode", "rw-rw-rw-"],
        CONFIG,
        "rw-rw-rw-",
    ),
    Case("daemon: bad unix mode", ["daemon", "--unix-mode", "rw"], CONFIG, "--unix-mode"),
    Case(
        "prune: no retention",
        ["tlsrpt", "prune", "--store", "sqlite:///{tmp}/r.db"],
        USAGE,
        "--keep-days",
    ),
    Case(
        "check: thresholds crossed",
        ["check", "--warning-days", "1", "--critical-days", "5", "a.test"],
        UNKNOWN,
        "critical",
    ),
    Case("check: no domain", ["check"], UNKNOWN, "DOMAIN"),
    # --- optional dependencies not installed -------------------------------------------
    Case(
        "query: redis cache without redis",
        ["query", "--cache", "redis://127.0.0.1:1/0", "a.test"],
        UNAVAILABLE,
        "pip install 'mtasts[redis]'",
        missing=("redis",),
    ),
    Case(
        "query: postgres cache without asyncpg",
        ["query", "--cache", UNREACHABLE_PG, "a.test"],
        UNAVAILABLE,
        "pip install 'mtasts[postgres]'",
        missing=("asyncpg",),
    ),
    Case(
        "reports: postgres store without asyncpg",
        [
            "tlsrpt",
            "reports",
            "--store",
            UNREACHABLE_PG,
            "--organization",
            "o",
            "--contact",
            "c@o.test",
        ],
        UNAVAILABLE,
        "pip install 'mtasts[postgres]'",
        missing=("asyncpg",),
    ),
    Case(
        "import: imaps without aioimaplib",
        ["tlsrpt", "import", "--store", "sqlite:///{tmp}/r.db", "imaps://u@127.0.0.1:1/INBOX"],
        UNAVAILABLE,
        "pip install 'mtasts[imap]'",
        missing=("aioimaplib",),
    ),
    Case(
        "receive: https without the web extra",
        ["tlsrpt", "receive", "--store", "sqlite:///{tmp}/r.db"],
        UNAVAILABLE,
        "pip install 'mtasts[web]'",
        missing=("uvicorn", "starlette"),
    ),
]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def _fill(text: str, tmp: Path, port: int) -> str:
    return text.replace("{tmp}", str(tmp)).replace("{port}", str(port))


def _hide(monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...]) -> None:
    """Make ``names`` unimportable, as if their extra were not installed."""
    for loaded in list(sys.modules):
        top = loaded.split(".")[0]
        if top in names or loaded.startswith(("mtasts.sts.cache.", "mtasts.tlsrpt.receive.")):
            monkeypatch.delitem(sys.modules, loaded)
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_at_least_forty_mistakes() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_mistake_is_one_line_and_its_exit_code(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue("busy_port") if case.busy_port else 0
    for name in ("MTASTS_CONFIG", "MTASTS_NAMESERVER", "MTASTS_CA_FILE", "MTASTS_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MTASTS_TLSRPT_STORE", f"sqlite:///{tmp_path}/default.db")
    for rel, text in case.files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    if case.setup is not None:
        case.setup(tmp_path)
    if case.missing:
        _hide(monkeypatch, case.missing)
    argv = [_fill(a, tmp_path, port) for a in case.argv]
    env: dict[str, str | None] = {k: _fill(v, tmp_path, port) or None for k, v in case.env.items()}
    result = CliRunner().invoke(cli, argv, env=env, prog_name="mtasts")
    lines = result.stderr.splitlines()
    assert result.exit_code == case.code, (result.exit_code, result.stderr, result.exception)
    assert "Traceback" not in result.output
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mtasts: error: "), lines[0]
    assert _fill(case.says, tmp_path, port) in lines[0]


REAL = ["config file missing", "query: CA file missing", "daemon: port in use", "unknown command"]


@pytest.mark.parametrize("name", REAL)
def test_the_console_script_says_the_same(
    name: str, tmp_path: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed ``mtasts`` command: one line on stderr, the same exit code."""
    case = next(c for c in CASES if c.name == name)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MTASTS_")}
    argv = [_fill(a, tmp_path, busy_port) for a in case.argv]
    done = subprocess.run(
        [sys.executable, "-c", "from mtasts.cli.main import main; main()", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == case.code, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("mtasts: error: ")
