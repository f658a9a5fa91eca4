"""Settings: TOML file, then MTASTS_* environment, then CLI options; unknown keys fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtasts.config import Settings, load_settings, parse_hostport
from mtasts.errors import ConfigError

FULL = """
nameserver = "127.0.0.1:5353"
ca_file = "/etc/ssl/lab.pem"
https_port = 8443
smtp_port = 2525

[cache]
url = "sqlite:////var/lib/mtasts/cache.db"

[timeouts]
dns = 2
connect = 3.5
read = 4
total = 30
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mtasts.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment() -> None:
    """No file, no variables: system resolver and trust store, port 443, memory cache."""
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.nameserver is None
    assert settings.cache.url == "memory:"
    assert settings.timeouts.total == 60


def test_file_sets_every_key(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL), environ={})
    assert settings.nameserver == ("127.0.0.1", 5353)
    assert settings.ca_file == Path("/etc/ssl/lab.pem")
    assert (settings.https_port, settings.smtp_port) == (8443, 2525)
    assert settings.cache.url == "sqlite:////var/lib/mtasts/cache.db"
    assert settings.timeouts.connect == 3.5


def test_environment_overrides_file_and_cli_overrides_environment(tmp_path: Path) -> None:
    """Precedence: CLI option > MTASTS_* variable > file > default."""
    env = {
        "MTASTS_CONFIG": str(write(tmp_path, FULL)),
        "MTASTS_NAMESERVER": "127.0.0.9:53",
        "MTASTS_HTTPS_PORT": "9443",
        "MTASTS_CACHE": "memory:",
    }
    settings = load_settings(environ=env, overrides={"cache.url": "redis://r/0", "ca_file": None})
    assert settings.nameserver == ("127.0.0.9", 53)
    assert settings.https_port == 9443
    assert settings.cache.url == "redis://r/0"
    assert settings.ca_file == Path("/etc/ssl/lab.pem")  # None option = not given
    assert settings.timeouts.total == 30


def test_lab_environment_is_honoured() -> None:
    """The variables `mtasts lab run` sets point every command at the lab."""
    env = {
        "MTASTS_NAMESERVER": "127.0.0.2:40000",
        "MTASTS_CA_FILE": "/tmp/lab/ca.pem",
        "MTASTS_HTTPS_PORT": "40001",
        "MTASTS_SMTP_PORT": "40002",
        "MTASTS_LAB_REPORT_URL": "https://reports.lab.test/",  # another tool's: ignored
    }
    settings = load_settings(environ=env)
    assert settings.nameserver == ("127.0.0.2", 40000)
    assert settings.ca_file == Path("/tmp/lab/ca.pem")
    assert (settings.https_port, settings.smtp_port) == (40001, 40002)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('nameservers = "127.0.0.1"', "nameservers"),  # defect: misspelt key
        ('[cache]\nuri = "memory:"', "'uri' in [cache]"),  # defect: unknown key in a section
        ("[timeout]\ntotal = 5", "timeout"),  # defect: unknown section
        ('[timeouts]\ntotal = "soon"', "timeouts.total"),  # defect: not a number
        ("[timeouts]\ntotal = -1", "timeouts.total"),  # defect: not positive
        ("https_port = 70000", "https_port"),  # defect: not a port
        ("https_port = true", "https_port"),  # defect: boolean, not a number
        ('nameserver = "127.0.0.1:fifty"', "nameserver"),  # defect: port not a number
        ("nameserver = 53", "nameserver"),  # defect: not a string
        ("this is not toml", "TOML"),  # defect: syntax
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    assert named in str(caught.value)


def test_bad_environment_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match="https_port"):
        load_settings(environ={"MTASTS_HTTPS_PORT": "https"})


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.toml", environ={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 53)),
        ("::1", ("::1", 53)),
        ("ns.example", ("ns.example", 53)),
    ],
)
def test_parse_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",  # defect: empty
        "127.0.0.1:0",  # defect: port 0
        "127.0.0.1:65536",  # defect: port too large
        "[::1",  # defect: unclosed bracket
        "[::1]x53",  # defect: junk after the bracket
    ],
)
def test_parse_hostport_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_hostport(text)


def test_a_daemon_table_does_not_break_other_commands(tmp_path: Path) -> None:
    """[daemon] belongs to the Postfix daemon: the resolver's settings skip it, so
    `mtasts query` reads the same /etc/mtasts/mtasts.toml the daemon does."""
    cfg = tmp_path / "mtasts.toml"
    cfg.write_text('nameserver = "127.0.0.2:53"\n\n[daemon]\nlisten = ["127.0.0.1:8461"]\n')
    assert load_settings(cfg, environ={}).nameserver == ("127.0.0.2", 53)
