"""`mtasts config show|check|example` and `mtasts init` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mtasts.cli.main import cli

GOOD = """\
nameserver = "127.0.0.1:5353"

[tlsrpt]
organization = "Example Mail"
store = "postgresql://mtasts:hunter2@db.example/tlsrpt"

[daemon.zones.strict]
strict_testing = true
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, text: str, name: str = "mtasts.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_show_prints_values_with_origins_and_masks_secrets(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(tmp_path, GOOD)
    env = {"MTASTS_TLSRPT_CONTACT": "tlsrpt@example.com", "MTASTS_CONFIG": ""}
    done = runner.invoke(cli, ["--config", str(path), "config", "show"], env=env)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert f"# file: {path}" in lines
    assert any(
        line.startswith('nameserver = "127.0.0.1:5353"') and line.endswith(f"# {path}:1")
        for line in lines
    )
    assert any(
        line.startswith('contact = "tlsrpt@example.com"')
        and line.endswith("# environment MTASTS_TLSRPT_CONTACT")
        for line in lines
    )
    assert "[daemon.zones.strict]" in lines
    assert "hunter2" not in done.output
    assert "mtasts:***@db.example" in done.output


def test_show_json_names_each_origin(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    done = runner.invoke(cli, ["--config", str(path), "config", "show", "--json"], env={})
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    by_key = {row["key"]: row for row in doc["settings"]}
    assert doc["file"] == str(path)
    assert by_key["nameserver"] == {
        "key": "nameserver",
        "value": "127.0.0.1:5353",
        "origin": f"{path}:1",
        "source": "file",
    }
    assert by_key["daemon.zones.strict.strict_testing"]["value"] is True
    assert by_key["tlsrpt.send.relay"]["source"] == "default"
    assert by_key["ca_file"]["value"] is None
    assert "hunter2" not in done.output


def test_check_accepts_a_good_file_and_names_the_line_of_a_bad_one(
    runner: CliRunner, tmp_path: Path
) -> None:
    good = write(tmp_path, GOOD)
    done = runner.invoke(cli, ["config", "check", str(good)], env={})
    from mtasts.settings.registry import section_classes

    count = len(section_classes())  # every registered section is checked
    assert (done.exit_code, done.output.strip()) == (0, f"{good}: ok ({count} sections)")
    bad = write(tmp_path, GOOD + '\n[tlsrpt.send]\nrelay = "relay:smtp"\n', "bad.toml")
    done = runner.invoke(cli, ["config", "check", str(bad)], env={})
    assert done.exit_code == 1
    assert f"{bad}:11: tlsrpt.send.relay = 'relay:smtp'" in done.output
    assert len(done.output.strip().splitlines()) == 1  # one line, no traceback
    missing = tmp_path / "absent.toml"
    done = runner.invoke(cli, ["config", "check", str(missing)], env={})
    assert done.exit_code == 1
    assert "cannot read the configuration file" in done.output


def test_init_writes_a_valid_example_and_refuses_to_overwrite(
    runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "etc" / "mtasts.toml"
    done = runner.invoke(cli, ["init", str(target)], env={})
    assert done.exit_code == 0, done.output
    text = target.read_text(encoding="utf-8")
    example = runner.invoke(cli, ["config", "example"], env={})
    assert example.output == text
    assert runner.invoke(cli, ["config", "check", str(target)], env={}).exit_code == 0
    target.write_text("# mine\n")
    done = runner.invoke(cli, ["init", str(target)], env={})
    assert done.exit_code == 1
    assert "exists" in done.output
    assert target.read_text() == "# mine\n"  # nothing lost
    done = runner.invoke(cli, ["--config", str(target), "init", "--force"], env={})
    assert done.exit_code == 0
    assert target.read_text(encoding="utf-8") == text


def test_tlsrpt_reports_needs_no_options_once_configured(runner: CliRunner, tmp_path: Path) -> None:
    """organization and contact from [tlsrpt]: `tlsrpt reports` shows the day's counts."""
    store = f"sqlite:///{tmp_path / 'tlsrpt.db'}"
    path = write(
        tmp_path,
        f'[tlsrpt]\norganization = "Example Mail"\ncontact = "tlsrpt@example.com"\n'
        f'store = "{store}"\n',
    )
    done = runner.invoke(cli, ["--config", str(path), "tlsrpt", "reports", "--json"], env={})
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == []
    unconfigured = write(tmp_path, f'[tlsrpt]\nstore = "{store}"\n', "none.toml")
    done = runner.invoke(cli, ["--config", str(unconfigured), "tlsrpt", "reports"], env={})
    assert done.exit_code == 2
    assert "--organization (or [tlsrpt] organization, MTASTS_TLSRPT_ORGANIZATION)" in done.output
