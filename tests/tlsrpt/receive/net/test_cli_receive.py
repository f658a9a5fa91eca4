"""One [receive] table configures the listeners and the store side alike."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from mtasts.cli.main import cli

TABLE = """
[receive]
http = "127.0.0.1:8460"
lmtp = "unix:/run/mtasts/tlsrpt-lmtp.sock"
max_inflight = 8
owned_domains = ["a.test"]

[receive.secrets]
"a.test" = "0123456789abcdef0123"

[receive.imap]
password = "x"
"""


def test_the_store_commands_accept_the_listener_keys(tmp_path: Path) -> None:
    """`tlsrpt import` reads the same [receive] table as `tlsrpt receive`: the keys of
    the listeners are not unknown keys to it (they were, before the two were joined)."""
    config = tmp_path / "mtasts.toml"
    config.write_text(TABLE)
    store = f"sqlite:///{tmp_path / 'r.db'}"
    empty = tmp_path / "nothing-to-import"
    empty.mkdir()
    result = CliRunner().invoke(
        cli,
        ["tlsrpt", "import", "--store", store, "--json", str(empty)],
        env={"MTASTS_CONFIG": str(config)},
    )
    assert result.exit_code == 0, result.output


def test_receive_names_a_bad_setting_and_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "mtasts.toml"
    config.write_text('[receive]\nhttp = "nowhere"\n')
    result = CliRunner().invoke(
        cli, ["tlsrpt", "receive", "--config", str(config)], env={"MTASTS_CONFIG": str(config)}
    )
    assert result.exit_code == 1
    assert "http 'nowhere'" in result.output
    config.write_text("[receive]\nmax_bodyy = 5\n")
    result = CliRunner().invoke(
        cli,
        ["tlsrpt", "receive", "--config", str(config), "--store", f"sqlite:///{tmp_path / 'r.db'}"],
        env={"MTASTS_CONFIG": str(config)},
    )
    assert result.exit_code == 1
    assert "max_bodyy" in result.output
