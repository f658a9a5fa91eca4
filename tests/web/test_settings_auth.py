"""[web] settings, password hashes and tokens, and the exposure rule (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from mtasts.cli.main import cli
from mtasts.errors import ConfigError
from mtasts.settings.build import build_section
from mtasts.web.auth import (
    hash_password,
    parse_password_hash,
    token_digest,
    token_matches,
    verify_password,
)
from mtasts.web.server import check_exposure
from mtasts.web.settings import ListenAddress, WebSettings

HASH = hash_password("s3cret", salt=b"0123456789abcdef")


def test_password_hash_round_trip() -> None:
    assert HASH.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret", HASH)
    assert not verify_password("s3cret ", HASH)
    assert not verify_password("", HASH)
    assert hash_password("s3cret") != hash_password("s3cret")  # salted


@pytest.mark.parametrize(
    "text",
    [
        "bcrypt$...",  # another scheme
        "scrypt$16384$8$1$c2FsdA",  # no hash
        "scrypt$1000$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",  # N not a power of 2
        "scrypt$4194304$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",  # N too big: memory
        "scrypt$16384$8$1$c2Fs$aGFzaGhhc2hoYXNoaGFzaA",  # salt too short
        "scrypt$16384$8$1$!!!!$aGFzaA",  # not base64
    ],
)
def test_bad_password_hashes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="scrypt"):
        parse_password_hash(text)
    assert not verify_password("x", text)


def test_tokens() -> None:
    digest = token_digest("abc")
    assert len(digest) == 64
    assert token_matches("abc", digest)
    assert not token_matches("abd", digest)


def web(table: dict[str, Any]) -> WebSettings:
    value = build_section(WebSettings, table, ("web",))
    assert isinstance(value, WebSettings)
    return value


def test_settings() -> None:
    s = web(
        {
            "listen": "[::]:8443",
            "policy_timeout": 2,
            "stopped_after_days": 5,
            "users": {
                "alice": {"password": HASH, "domains": ["Example.COM."]},
                "grafana": {"token_sha256": "A" * 64, "domains": ["*"]},
            },
        }
    )
    assert s.listen == ("::", 8443)
    assert s.policy_timeout == 2.0
    assert s.stopped_after_days == 5
    alice, grafana = s.user_list
    assert alice.name == "alice"
    assert alice.domains == frozenset({"example.com"})
    assert alice.may_see("example.com")
    assert not alice.may_see("example.net")
    assert not alice.sees_all
    assert grafana.sees_all
    assert grafana.token_sha256 == "a" * 64
    assert check_exposure(s).port == 8443
    assert web({}).listen == ("127.0.0.1", 8461)
    assert not web({}).auth_required


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"lisen": "x"}, "lisen"),
        ({"listen": 8461}, "listen"),
        ({"listen": "nohost"}, "listen"),
        ({"listen": "unix:/run/web.sock"}, "TCP only"),
        ({"policy_timeout": 0}, "policy_timeout"),
        ({"policy_timeout": True}, "policy_timeout"),
        ({"stopped_after_days": 0}, "stopped_after_days"),
        ({"tls_cert": "/a.pem"}, "go together"),
        ({"store": " "}, "store"),
        ({"users": {"a": {"domains": ["x.example"]}}}, "password \\(hashed\\) or a token_sha256"),
        ({"users": {"a": {"password": "plain", "domains": ["x.example"]}}}, "not an scrypt hash"),
        ({"users": {"a": {"password": HASH, "domains": []}}}, "non-empty list"),
        ({"users": {"a": {"password": HASH}}}, "non-empty list"),
        ({"users": {"a": {"password": HASH, "domains": ["bad..name"]}}}, "domains"),
        ({"users": {"a": {"token_sha256": "abc", "domains": ["x"]}}}, "64 hex digits"),
        ({"users": {"a": {"password": HASH, "domains": ["x"], "admin": True}}}, "admin"),
        ({"users": ["alice"]}, "users"),
    ],
)
def test_bad_settings_are_named(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        web(table)


def test_the_network_needs_users() -> None:
    for host in ("0.0.0.0", "192.0.2.1", "::", "example.com"):
        with pytest.raises(ConfigError, match="not a loopback address"):
            check_exposure(WebSettings(listen=ListenAddress(host, 8461)))
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        check_exposure(WebSettings(listen=ListenAddress(host, 8461)))


def test_cli_hash_password_and_refusal(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["web", "--hash-password"], input="hunter2\n")
    assert result.exit_code == 0, result.output
    assert verify_password("hunter2", result.output.strip())
    monkeypatch.setenv("MTASTS_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    result = runner.invoke(cli, ["web", "--listen", "0.0.0.0:0", "--store", "sqlite:///x.db"])
    assert result.exit_code == 78  # a setting (docs/exit-codes.md)
    assert "not a loopback address" in result.output
    (tmp_path / "none.toml").write_text("[web]\nbogus = 1\n")
    result = runner.invoke(cli, ["web"])
    assert result.exit_code == 78
    assert "unknown setting 'bogus'" in result.output
