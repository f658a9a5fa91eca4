"""mtasts alerts run --once | list | test, and `alerts run` as a process: metrics over
HTTP, SIGTERM ends it with status 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner

from mtasts.cli.main import cli

from .conftest import Hook, StoreAt
from .test_evaluate import ingest, report

TODAY = datetime.now(UTC).date()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "mtasts.toml"
    monkeypatch.setenv("MTASTS_CONFIG", str(path))
    path.write_text('[alerts]\ndomains = ["a.test"]\nrules = ["failure-rate"]\n')
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("at", ["sqlite"], indirect=True)
async def test_run_once_list_and_test(
    at: StoreAt, hook: Hook, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with config.open("a") as f:
        f.write(f'[alerts.webhook]\nurl = "{hook.url}"\n')
    await ingest(at, report("g1", TODAY - timedelta(days=1), 50, {"certificate-expired": 950}))

    def cli_steps() -> list[tuple[int, str]]:
        return [
            invoke("alerts", "run", "--once", "--json", "--store", at.url),
            invoke("alerts", "list", "--json", "--store", at.url),
            invoke("alerts", "list", "--store", at.url),
            invoke("alerts", "test", "--json"),
        ]

    ran, listed, table, tested = await asyncio.to_thread(cli_steps)
    assert ran[0] == 0, ran[1]
    result = orjson.loads(ran[1])
    assert result["raised"] == ["failure-rate:a.test"]
    assert result["delivered"]["sent"] == 1
    assert listed[0] == 0
    data = orjson.loads(listed[1])
    assert [c["key"] for c in data["conditions"]] == ["failure-rate:a.test"]
    assert data["conditions"][0]["first_seen"].endswith("Z")  # docs/json.md: RFC 3339 UTC
    assert data["notifications"] == {"sent": 1}
    assert "failure-rate:a.test" in table[1]
    assert "95.0% of 1000 sessions failed" in table[1]
    assert tested[0] == 0, tested[1]
    assert orjson.loads(tested[1]) == {"webhook": {"ok": True, "error": None}}
    assert [b["event"] for b in hook.bodies] == ["raised", "test"]

    hook.script = [(500, 0)]  # the webhook is down: `alerts test` says so, status 1
    code, out = await asyncio.to_thread(invoke, "alerts", "test")
    assert code == 1
    assert "webhook: FAILED: webhook http://127.0.0.1" in out
    assert "HTTP 500" in out


def test_usage_errors(config: Path, tmp_path: Path) -> None:
    code, out = invoke("alerts", "test")
    assert code == 2
    assert "no channel configured" in out
    config.write_text("[alerts]\nfailure_rate = 2\n")
    code, out = invoke("alerts", "run", "--once", "--store", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 78  # a bad setting (docs/exit-codes.md)
    assert "mtasts.toml:2: alerts.failure_rate = 2: expected a number >= 0 and <= 0.99" in out
    config.write_text("")
    code, out = invoke("alerts", "run", "--metrics", "nowhere")
    assert code == 78
    assert "not HOST:PORT" in out


async def test_run_as_a_service_serves_metrics_and_stops_on_sigterm(
    tmp_path: Path, config: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'tlsrpt.db'}"
    env = {**os.environ, "MTASTS_TLSRPT_STORE": store}
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("mtasts")),
        "alerts",
        "run",
        "--metrics",
        "127.0.0.1:0",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = b""
        for _ in range(20):  # log lines may come first
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            if line.startswith(b"listening: ") or not line:
                break
        assert line.startswith(b"listening: metrics http 127.0.0.1:"), line
        port = int(line.split(b":")[-1].split()[0])
        async with httpx.AsyncClient() as client:
            for _ in range(50):  # the first evaluation fills the figures
                body = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                if "mtasts_alerts_last_evaluation_timestamp_seconds " in body:
                    break
                await asyncio.sleep(0.1)
        assert 'mtasts_alerts_notifications{status="pending"} 0.0' in body
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize("at", ["sqlite"], indirect=True)
async def test_list_prints_what_senders_wrote_as_text(at: StoreAt, config: Path) -> None:
    """An organisation named like rich markup ('[/x]') is printed as is, not parsed."""
    from mtasts import alerts
    from mtasts.alerts.model import Condition
    from mtasts.alerts.settings import AlertSettings

    evil = Condition("reporter-stopped", "a.test", "[/x] Evil [bold]", summary="[/x] stopped")
    await alerts.sync(at.store, "rules", [evil], settings=AlertSettings())
    code, out = await asyncio.to_thread(invoke, "alerts", "list", "--store", at.url)
    assert code == 0, out
    assert "[/x] stopped" in out
    assert "reporter-stopped:a.test:[/x] Evil [bold]" in out


@pytest.mark.parametrize("at", ["sqlite"], indirect=True)
async def test_run_once_prints_what_changed(at: StoreAt, hook: Hook, config: Path) -> None:
    with config.open("a") as f:
        f.write(f'[alerts.webhook]\nurl = "{hook.url}"\nretries = 1\n')
    await ingest(at, report("g1", TODAY - timedelta(days=1), 50, {"certificate-expired": 950}))
    hook.script = [(503, 0)]
    code, out = await asyncio.to_thread(invoke, "alerts", "run", "--once", "--store", at.url)
    assert code == 1  # a channel failed: the notification waits in the outbox
    assert "raised 1, still open 0, resolved 0" in out
    assert "raised   failure-rate:a.test" in out
    assert "notifications: 0 sent, 1 failed" in out
    assert "webhook: webhook http://127.0.0.1" in out


async def test_the_service_waits_for_a_store_that_is_not_there_yet(tmp_path: Path) -> None:
    """`alerts run` started before its database: it retries instead of exiting."""
    from mtasts.alerts.store import AlertStore
    from mtasts.cli.alerts import _upgrade_until_ready

    where = tmp_path / "later"
    store = AlertStore.open(f"sqlite:///{where / 'tlsrpt.db'}")
    task = asyncio.create_task(_upgrade_until_ready(store, pause=0.05))
    await asyncio.sleep(0.3)
    assert not task.done()  # still trying
    where.mkdir()
    await asyncio.wait_for(task, 10)
    assert await store.open_conditions() == []
    await store.close()
