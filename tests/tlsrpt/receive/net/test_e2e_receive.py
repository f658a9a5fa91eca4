"""The whole loop on one machine, as processes on the lab:

a sending MTA probes a domain whose first MX sits behind an attacker stripping STARTTLS
(and whose second MX is healthy) and records each session through the Python API
(``TlsRptRecorder`` -> ``mtasts tlsrpt collect``); ``mtasts tlsrpt send`` delivers the
day's report by https (the rua found in ``_smtp._tls``) and by DKIM-signed mail (through
the relay: our SMTP listener) to ``mtasts tlsrpt receive``, which stores it once (DKIM
required, the key served by the lab DNS); ``mtasts tlsrpt received --json`` shows the
failure with the right result type and counts.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from tests.commands import MTASTS

from mtasts.check.probe import probe_mx
from mtasts.lab.lab import Lab
from mtasts.lab.scenario import HostSpec, SmtpSpec
from mtasts.lab.testing import dkim_key, healthy_domain, publish_dkim_key, running_lab
from mtasts.results import PolicyType, ResultType
from mtasts.tlsrpt.collect.api import TlsRptRecorder

pytestmark = pytest.mark.lab

DOMAIN = "a.test"
MX = ("mx1.a.test", "mx2.a.test")
RECEIVER = "tlsrpt.a.test"
POLICY = ("version: STSv1", "mode: enforce", "mx: mx1.a.test", "mx: mx2.a.test", "max_age: 86400")
ROUNDS = 3


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    scenario = healthy_domain(DOMAIN, mx=MX)
    attacked = HostSpec(MX[0], SmtpSpec(), attacker="strip-starttls")
    scenario = type(scenario)(
        domains=scenario.domains, hosts=(attacked, HostSpec(MX[1], SmtpSpec()))
    )
    async with running_lab(scenario) as lab:
        yield lab


async def _mtasts(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *MTASTS,
        *args,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await _mtasts(*args, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode or 0, out.decode() + err.decode()


async def test_attacked_sessions_reach_tlsrpt_received_by_https_and_signed_mail(
    lab: Lab, tmp_path: Path
) -> None:
    # --- the receiving side: `tlsrpt receive` with https (a lab certificate) and SMTP ---
    chain, key = lab.pki.pem(RECEIVER, "valid")
    (tmp_path / "cert.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(key)
    pem, public = dkim_key()
    (tmp_path / "dkim.pem").write_bytes(pem)
    publish_dkim_key(lab, "sel._domainkey.sender.test", public)
    lab.set_records(RECEIVER, "A", ["127.0.0.1"])
    config = tmp_path / "mtasts.toml"
    config.write_text(f'[receive]\nrequire_dkim = true\nowned_domains = ["{DOMAIN}"]\n')
    received_store = f"sqlite:///{tmp_path / 'received.db'}"
    env = {**lab.env, "MTASTS_CONFIG": str(config)}
    receiver = await _mtasts(
        "tlsrpt",
        "receive",
        "--store",
        received_store,
        "--http",
        "127.0.0.1:0",
        "--smtp",
        "127.0.0.1:0",
        "--cert",
        str(tmp_path / "cert.pem"),
        "--key",
        str(tmp_path / "key.pem"),
        env=env,
    )
    try:
        ports: dict[str, int] = {}
        assert receiver.stderr is not None
        while len(ports) < 2:
            line = (await asyncio.wait_for(receiver.stderr.readline(), 60)).decode()
            assert line, "tlsrpt receive exited"
            m = re.search(r"receive: (https|smtp) \S+:(\d+)", line)
            if m:
                ports[m.group(1)] = int(m.group(2))
        url = f"https://{RECEIVER}:{ports['https']}/tlsrpt"
        record = f"v=TLSRPTv1; rua={url},mailto:tls-reports@{DOMAIN}"
        lab.set_txt(f"_smtp._tls.{DOMAIN}", [record])

        # --- the sending side: real sessions against the lab, recorded, collected ---
        sending_store = f"sqlite:///{tmp_path / 'sending.db'}"
        sock = tmp_path / "tlsrpt.sock"
        collector = await _mtasts(
            "tlsrpt", "collect", "--socket", str(sock), "--store", sending_store, env=lab.env
        )
        for _ in range(500):
            if sock.exists():
                break
            await asyncio.sleep(0.02)
        with TlsRptRecorder(sock) as rec:
            for _ in range(ROUNDS):
                for host in MX:
                    address = lab.address(host)
                    probe = await probe_mx(
                        host, address, port=lab.smtp_port, ca_file=lab.ca_file, seconds=20
                    )
                    failure = None if probe.starttls_offered else ResultType.STARTTLS_NOT_SUPPORTED
                    assert (failure is not None) == (host == MX[0]), probe
                    assert rec.record_session(
                        domain=DOMAIN,
                        policy_type=PolicyType.STS,
                        policy_string=POLICY,
                        mx_host=MX,
                        failure=failure,
                        sending_mta_ip="192.0.2.25",
                        receiving_mx_hostname=host,
                        receiving_ip=address,
                        tlsrpt_record=record,
                    )
        await asyncio.sleep(0.3)
        collector.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(collector.communicate(), 30)
        assert collector.returncode == 0, err.decode(errors="replace")

        today = datetime.now(UTC).date().isoformat()
        send_env = {
            **lab.env,
            "MTASTS_TLSRPT_STORE": sending_store,
            "MTASTS_TLSRPT_ORGANIZATION": "Example Sender",
            "MTASTS_TLSRPT_CONTACT": "tlsrpt@sender.test",
            "MTASTS_TLSRPT_RELAY": f"127.0.0.1:{ports['smtp']}",
            "MTASTS_TLSRPT_DKIM_KEY": str(tmp_path / "dkim.pem"),
            "MTASTS_TLSRPT_DKIM_SELECTOR": "sel",
        }
        code, out = await _run("tlsrpt", "send", "--day", today, "--unfinished", env=send_env)
        assert code == 0, out
        assert out.count("sent") == 2, out  # https and mailto, each acknowledged

        # --- what the administrator sees ---
        code, out = await _run(
            "tlsrpt",
            "received",
            "--store",
            received_store,
            "--domain",
            DOMAIN,
            "--since",
            today,
            "--until",
            today,
            "--json",
            env=env,
        )
        assert code == 0, out
        (day,) = orjson.loads(out)
        assert (day["domain"], day["day"], day["reports"]) == (DOMAIN, today, 1)
        assert (day["successful"], day["failed"]) == (ROUNDS, ROUNDS)
        assert day["failures"]["by_result_type"] == {"starttls-not-supported": ROUNDS}
        assert day["failures"]["by_organization"] == {"Example Sender": ROUNDS}
        code, out = await _run(
            "tlsrpt",
            "received",
            "--store",
            received_store,
            "--reports",
            "--since",
            today,
            "--until",
            today,
            "--json",
            env=env,
        )
        assert code == 0, out
        (report,) = orjson.loads(out)  # one report, though it arrived twice
        assert report["status"] == "stored"
        assert sorted(a["channel"] for a in report["arrivals"]) == ["https", "smtp"]
        assert report["dkim"]["result"] == "pass"
    finally:
        if receiver.returncode is None:
            receiver.send_signal(signal.SIGTERM)
            await asyncio.wait_for(receiver.wait(), 30)
    assert receiver.returncode == 0
