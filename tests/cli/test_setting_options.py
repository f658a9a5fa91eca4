"""Options that set a key of the settings tree: typed by the key's field, over the file
and the environment, with the option named as the origin; options not given set nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from mtasts.cli.options import given, names, setting_option, values
from mtasts.settings.tree import load
from mtasts.tlsrpt.receive.settings import ReceiveSection


def _command(seen: dict[str, Any], config: Path) -> click.Command:
    @click.command()
    @setting_option("receive.keep_days", "--keep-days", type=int)
    @setting_option("receive.owned_domains", "--owned-domain", multiple=True)
    @setting_option("receive.verify_dkim", "--verify-dkim/--no-verify-dkim", default=None)
    def command() -> None:
        options = given()
        seen["options"] = options
        seen["tree"] = load(config, overrides=values(options), option_names=names(options))

    return command


def test_options_override_the_file_and_name_themselves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "mtasts.toml"
    config.write_text('[receive]\nkeep_days = 30\nowned_domains = ["a.example"]\n')
    monkeypatch.setenv("MTASTS_RECEIVE_VERIFY_DKIM", "false")
    seen: dict[str, Any] = {}
    args = ["--keep-days", "7", "--owned-domain", "b.example", "--owned-domain", "c.example"]
    result = CliRunner().invoke(_command(seen, config), args)
    assert result.exit_code == 0, result.output
    tree = seen["tree"]
    receive = tree.section(ReceiveSection).decide
    assert receive.keep_days == 7
    assert receive.owned_domains == frozenset({"b.example", "c.example"})
    assert receive.verify_dkim is False  # not given: the environment's value stays
    assert str(tree.origin(("receive", "keep_days"))) == "option --keep-days"
    assert str(tree.origin(("receive", "owned_domains"))) == "option --owned-domain"
    assert str(tree.origin(("receive", "verify_dkim"))) == "environment MTASTS_RECEIVE_VERIFY_DKIM"
    assert seen["options"]["receive.verify_dkim"] == ("--verify-dkim", None)


def test_a_bad_option_value_names_the_option(tmp_path: Path) -> None:
    config = tmp_path / "mtasts.toml"
    config.write_text("")
    result = CliRunner().invoke(_command({}, config), ["--keep-days", "0"])
    assert result.exit_code != 0
    assert "option --keep-days: receive.keep_days = 0: expected a whole number >= 1" in str(
        result.exception
    )
