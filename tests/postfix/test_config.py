"""[daemon] settings and the postfix-mta-sts-resolver YAML translation (as parsed dicts)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from mtasts.errors import ConfigError
from mtasts.postfix.config import DaemonConfig, Listen, daemon_config_from_table
from mtasts.postfix.pmsr import from_pmsr, load_pmsr_file
from mtasts.postfix.socketmap import DaneLevel, ReplyOptions

EXAMPLE = """
[daemon]
listen = ["127.0.0.1:8461", "unix:/var/spool/postfix/private/mtasts"]
unix_mode = "0660"
lookup_timeout = 20
dane = true
dane_level = "dane-only"
metrics = "127.0.0.1:9461"

[daemon.default_zone]
tlsrpt = true

[daemon.zones.strict]
strict_testing = true

[daemon.zones.old]
servername = false

[daemon.zones.p35]
legacy_protocols = true

[daemon.zones.loose]
match_patterns = true
"""


def test_example_config_reads_as_documented() -> None:
    cfg = daemon_config_from_table(tomllib.loads(EXAMPLE)["daemon"])
    assert [str(x) for x in cfg.listen] == [
        "127.0.0.1:8461",
        "unix:/var/spool/postfix/private/mtasts",
    ]
    assert cfg.unix_mode == 0o660
    assert cfg.lookup_timeout == 20.0
    assert cfg.dane
    assert cfg.metrics == "127.0.0.1:9461"
    assert cfg.default_zone == ReplyOptions(tlsrpt=True, dane_level=DaneLevel.DANE_ONLY)
    # zones inherit the default zone, then override
    assert cfg.zones["strict"] == ReplyOptions(tlsrpt=True, strict_testing=True)
    assert cfg.zones["old"].servername is False
    assert cfg.zones["old"].protocols == "protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1"
    assert cfg.zones["p35"].protocols == "protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1"
    assert cfg.zones["loose"].match_patterns is True
    assert cfg.default_zone.protocols == "protocols=>=TLSv1.2"


def test_safe_defaults() -> None:
    """DANE detection on, exact MX names, TLS >= 1.2 (failed on the old main: dane=False)."""
    cfg = DaemonConfig()
    assert cfg.dane is True
    assert cfg.default_zone.match_patterns is False
    assert cfg.default_zone.protocols == "protocols=>=TLSv1.2"


def test_dane_level_dane_is_refused_with_the_reason() -> None:
    """'dane' let Postfix fall back to clear text for MX hosts without usable TLSA."""
    with pytest.raises(ConfigError, match="weaker than the MTA-STS policy"):
        daemon_config_from_table({"dane_level": "dane"})
    with pytest.raises(ConfigError, match="weaker than the MTA-STS policy"):
        daemon_config_from_table({"zones": {"z": {"dane_level": "dane"}}})


def test_empty_table_gives_the_defaults() -> None:
    assert daemon_config_from_table({}) == DaemonConfig()


BAD: list[dict[str, Any]] = [
    {"listen": ["8461"]},  # no host
    {"listen": ["unix:relative.sock"]},  # unix socket path must be absolute
    {"listen": ["127.0.0.1:99999"]},  # port out of range
    {"lookup_timeout": -1},  # negative seconds
    {"lookup_timeout": True},  # a bool is not seconds
    {"dane": "yes"},  # not a boolean
    {"dane_level": "secure"},  # not a DANE level
    {"default_zone": {"match_patterns": "yes"}},  # not a boolean
    {"default_zone": {"legacy_protocols": 1}},  # not a boolean
    {"unix_mode": "rw-rw-rw-"},  # not octal
    {"listne": ["127.0.0.1:8461"]},  # typo: unknown keys are errors
    {"zones": {"x": {"require_sni": False}}},  # pmsr's name, not ours: caught
    {"zones": {"strict": True}},  # a zone must be a table (was a TypeError traceback)
    {"default_zone": ""},  # not a table (was an AttributeError traceback)
    {"default_zone": "strict"},  # not a table
    # the unauthenticated control endpoint has no unix listener: "unix:/PATH" was taken as
    # host "" port 0, i.e. every interface on a random port
    {"metrics": "unix:/run/mtasts/metrics"},
    {"idle_timeout": 0},  # 0 closed every client connection at once
    {"lookup_timeout": 0},  # 0 answered TIMEOUT to every lookup not in the cache
]


@pytest.mark.parametrize("table", BAD)
def test_bad_settings_raise_config_error(table: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        daemon_config_from_table(table)


def test_listen_forms() -> None:
    assert Listen.parse("inet:127.0.0.1:8461") == Listen("127.0.0.1", 8461)
    assert Listen.parse("[::1]:8461") == Listen("::1", 8461)
    assert Listen.parse("unix:/run/m.sock") == Listen(path="/run/m.sock")


# --- postfix-mta-sts-resolver's YAML, as yaml.safe_load returns it -------------------------

PMSR_FULL = {
    "host": "0.0.0.0",
    "port": 18461,
    "reuse_port": True,
    "shutdown_timeout": 20,
    "cache_grace": 60,
    "cache": {"type": "sqlite", "options": {"filename": "/var/lib/mta-sts/cache.db"}},
    "default_zone": {"strict_testing": False, "timeout": 4, "tlsrpt": True},
    "zones": {"myzone": {"strict_testing": True, "timeout": 4, "require_sni": False}},
}


def test_pmsr_full_example_translates() -> None:
    got = from_pmsr(PMSR_FULL)
    assert got.daemon.listen == (Listen("0.0.0.0", 18461),)
    assert got.daemon.shutdown_grace == 20.0
    assert got.daemon.default_zone == ReplyOptions(tlsrpt=True)
    # pmsr fills each named zone from its built-in defaults, not from default_zone
    # (utils.populate_cfg_defaults): myzone has no TLSRPT attributes
    assert got.daemon.zones["myzone"] == ReplyOptions(
        servername=False, tlsrpt=False, strict_testing=True
    )
    assert got.fetch_timeout == 4.0
    assert got.cache_url == "sqlite:////var/lib/mta-sts/cache.mtasts.db"
    assert any(n.startswith("cache_grace") for n in got.notes)


def test_pmsr_named_zones_do_not_inherit_default_zone() -> None:
    """As in pmsr 1.5.1: a named zone's unset options are pmsr's defaults.

    Inheriting default_zone turned a 'relaxed' transport strict (testing policies
    enforced) and sent TLSRPT attributes to a zone kept for an older Postfix, which then
    rejects the whole answer (invalid attribute name) and defers the mail.
    """
    got = from_pmsr(
        {
            "default_zone": {"strict_testing": True, "tlsrpt": True, "require_sni": False},
            "zones": {"relaxed": {}, "old": {"require_sni": False}},
        }
    )
    assert got.daemon.default_zone == ReplyOptions(
        servername=False, tlsrpt=True, strict_testing=True
    )
    assert got.daemon.zones["relaxed"] == ReplyOptions()
    assert got.daemon.zones["old"] == ReplyOptions(servername=False)


PMSR_TABLE = [
    # (pmsr document, listen, cache URL)
    ({}, Listen("127.0.0.1", 8461), None),  # pmsr's defaults
    (
        {"path": "/var/spool/postfix/mta-sts.sock", "mode": 0o666},
        Listen(path="/var/spool/postfix/mta-sts.sock"),
        None,
    ),
    (
        {"cache": {"type": "internal", "options": {"cache_size": 10000}}},
        Listen("127.0.0.1", 8461),
        "memory:?max_entries=10000",
    ),
    (
        {"cache": {"type": "redis", "options": {"url": "redis://127.0.0.1/0"}}},
        Listen("127.0.0.1", 8461),
        "redis://127.0.0.1/0",
    ),
    (
        {"cache": {"type": "postgres", "options": {"dsn": "postgresql://u@h/db"}}},
        Listen("127.0.0.1", 8461),
        "postgresql://u@h/db",
    ),
]


@pytest.mark.parametrize(("doc", "listen", "cache_url"), PMSR_TABLE)
def test_pmsr_table(doc: dict[str, Any], listen: Listen, cache_url: str | None) -> None:
    got = from_pmsr(doc)
    assert got.daemon.listen == (listen,)
    assert got.cache_url == cache_url


PMSR_BAD: list[dict[str, Any]] = [
    {"cache": {"type": "redis_sentinel", "options": {}}},  # not supported: says what to use
    {"cache": {"type": "memcached"}},  # no such pmsr cache type
    {"cache": {"type": "sqlite", "options": {}}},  # sqlite without a filename
    {"path": "relative.sock"},  # unix path not absolute
]


@pytest.mark.parametrize("doc", PMSR_BAD)
def test_pmsr_bad_documents_raise_config_error(doc: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        from_pmsr(doc)


def test_reading_a_pmsr_yaml_file(tmp_path: Path) -> None:
    """The incumbent's YAML file is read as the incumbent reads it (PyYAML safe_load)."""
    cfg = tmp_path / "mta-sts-daemon.yml"
    cfg.write_text("host: 127.0.0.1\nport: 8461\n")
    assert load_pmsr_file(cfg).daemon.listen == (Listen("127.0.0.1", 8461),)


@pytest.mark.parametrize(
    "text",
    [
        "host: [unclosed\n",  # not YAML at all
        "!!python/object/apply:os.system ['true']\n",  # unsafe tag: safe_load refuses it
    ],
)
def test_a_broken_pmsr_yaml_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "mta-sts-daemon.yml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match="cannot read pmsr config"):
        load_pmsr_file(cfg)


def test_a_missing_pmsr_yaml_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read pmsr config"):
        load_pmsr_file(tmp_path / "absent.yml")


def test_cli_refuses_dane_level_dane_before_starting(tmp_path: Path) -> None:
    """`mtasts daemon --dane-level dane` stops with the reason, listening nowhere."""
    from click.testing import CliRunner

    from mtasts.cli.main import cli

    cfg = tmp_path / "mtasts.toml"
    cfg.write_text("")
    result = CliRunner().invoke(
        cli, ["daemon", "--config", str(cfg), "--listen", "127.0.0.1:1", "--dane-level", "dane"]
    )
    assert result.exit_code == 78
    assert "weaker than the MTA-STS policy" in result.output
