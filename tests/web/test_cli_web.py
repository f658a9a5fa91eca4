"""`mtasts web` as a process: it announces where it listens, serves, stops on SIGTERM
with status 0; a store without received reports and a non-loopback address without
users are refused with status 78 and a message saying what to do."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from mtasts.cli.main import cli

from .seed import seed


def _env(tmp_path: Path, config: str = "") -> dict[str, str]:
    (tmp_path / "mtasts.toml").write_text(config)
    return {**os.environ, "MTASTS_CONFIG": str(tmp_path / "mtasts.toml"), "COLUMNS": "200"}


def _mtasts(*args: str) -> list[str]:
    return [sys.executable, "-c", "from mtasts.cli.main import main; main()", *args]


def test_serves_until_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    asyncio.run(seed(url))
    config = f'[web]\nstore = "{url}"\nlisten = "127.0.0.1:0"\n'
    with subprocess.Popen(
        _mtasts("web"), env=_env(tmp_path, config), stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "mtasts web: serving" in line, line
            address = line.split(" on ")[-1].strip()
            assert address.startswith("http://127.0.0.1:")
            with httpx.Client(base_url=address, timeout=10) as client:
                assert client.get("/healthz").text == "ok\n"
                body = client.get("/api/domains").json()
                assert [d["domain"] for d in body["domains"]] == ["good.test", "other.test"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0


def test_refuses_an_empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In process (the open-network refusal: tests/web/test_settings_auth.py)."""
    monkeypatch.setenv("MTASTS_CONFIG", str(tmp_path / "mtasts.toml"))
    (tmp_path / "mtasts.toml").write_text("")
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    result = CliRunner().invoke(cli, ["web", "--store", empty, "--listen", "127.0.0.1:0"])
    assert result.exit_code == 78  # a setting (docs/exit-codes.md)
    assert "holds no received reports yet" in result.output
    assert "mtasts tlsrpt import" in result.output
