"""One [receive] table configures the listeners and the store side alike."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from tests.commands import MTASTS

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


def test_receive_names_a_bad_setting_and_exits_78(tmp_path: Path) -> None:
    config = tmp_path / "mtasts.toml"
    config.write_text('[receive]\nhttp = "nowhere"\n')
    result = CliRunner().invoke(
        cli, ["tlsrpt", "receive", "--config", str(config)], env={"MTASTS_CONFIG": str(config)}
    )
    assert result.exit_code == 78
    # the file, its line, the key and why (the settings tree's one error format)
    assert f"{config}:2: receive.http = 'nowhere'" in result.output
    assert "is not HOST:PORT or unix:/PATH" in result.output
    config.write_text("[receive]\nmax_bodyy = 5\n")
    result = CliRunner().invoke(
        cli,
        ["tlsrpt", "receive", "--config", str(config), "--store", f"sqlite:///{tmp_path / 'r.db'}"],
        env={"MTASTS_CONFIG": str(config)},
    )
    assert result.exit_code == 78
    assert "max_bodyy" in result.output


async def test_receive_prunes_past_keep_days_when_it_starts(tmp_path: Path) -> None:
    """[receive] keep_days: the running service applies retention (at start, then daily)."""
    import asyncio
    import os
    import signal
    from datetime import date

    from receive_net_support import open_receiver, report_gzip, store_url

    from mtasts.tlsrpt.receive.decide import Channel
    from mtasts.tlsrpt.receive.intake import Arrival
    from mtasts.tlsrpt.receive.query import received_reports

    receiver = await open_receiver(tmp_path)
    try:
        arrival = Arrival(Channel.HTTPS, "192.0.2.1", datetime.now(UTC))
        out = await receiver.ingest_report(report_gzip("old-1"), arrival)  # day 2026-11-22
        assert out.disposition.value == "stored"
    finally:
        await receiver.close()
    since = date(2000, 1, 1)
    assert len(await received_reports(store_url(tmp_path), since=since)) == 1
    config = tmp_path / "mtasts.toml"
    config.write_text("[receive]\nkeep_days = 1\n")
    proc = await asyncio.create_subprocess_exec(
        *MTASTS,
        "tlsrpt",
        "receive",
        "--config",
        str(config),
        "--store",
        store_url(tmp_path),
        "--http",
        "127.0.0.1:0",
        env={**os.environ, "MTASTS_CONFIG": str(config)},
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            if not await received_reports(store_url(tmp_path), since=since):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the report past keep_days was not pruned")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


def test_receive_in_process_runs_until_sigterm(tmp_path: Path) -> None:
    """The command itself (not a subprocess): listeners announced, retention started,
    SIGTERM stops it cleanly with exit status 0."""
    import os
    import signal
    import socket
    import threading
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def stop_once_listening() -> None:
        for _ in range(1200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        # The handler is installed before the listener binds: this never kills pytest.
        os.kill(os.getpid(), signal.SIGTERM)

    config = tmp_path / "mtasts.toml"
    config.write_text("[receive]\nkeep_days = 30\n")
    stopper = threading.Thread(target=stop_once_listening, daemon=True)
    stopper.start()
    result = CliRunner().invoke(
        cli,
        [
            "tlsrpt",
            "receive",
            "--config",
            str(config),
            "--store",
            f"sqlite:///{tmp_path / 'r.db'}",
            "--http",
            f"127.0.0.1:{port}",
            "--smtp",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ],
        env={"MTASTS_CONFIG": str(config)},
    )
    stopper.join(30)
    assert result.exit_code == 0, result.output
    assert f"http 127.0.0.1:{port} POST /tlsrpt" in result.output
    assert "smtp 127.0.0.1:" in result.output
    assert "metrics http 127.0.0.1:" in result.output
    assert "stopped" in result.output
