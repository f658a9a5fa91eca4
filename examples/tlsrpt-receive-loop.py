"""The TLS-RPT loop on one machine (a `make demo` step; tests/tlsrpt/receive/net/
test_e2e_receive.py checks the same loop).

A lab domain's first MX sits behind an attacker that strips STARTTLS. A sending MTA
probes both MXs and records each session with the Python API (TlsRptRecorder ->
`mtasts tlsrpt collect`); `mtasts tlsrpt send` delivers the day's report by https (the
rua in _smtp._tls) and by DKIM-signed mail to `mtasts tlsrpt receive`, which stores it
once; `mtasts tlsrpt received` shows the failure and `mtasts advise` says NOT READY
(the stripped STARTTLS, reported and live). Run: python examples/tlsrpt-receive-loop.py
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from mtasts.check.probe import probe_mx
from mtasts.cli.exitcodes import colour
from mtasts.lab.scenario import HostSpec, Scenario, SmtpSpec
from mtasts.lab.testing import dkim_key, healthy_domain, publish_dkim_key, running_lab
from mtasts.results import PolicyType, ResultType
from mtasts.tlsrpt.collect.api import TlsRptRecorder

DOMAIN = "a.test"
MX = ("mx1.a.test", "mx2.a.test")
RECEIVER = "tlsrpt.a.test"
POLICY = ("version: STSv1", "mode: enforce", "mx: mx1.a.test", "mx: mx2.a.test", "max_age: 86400")


def say(text: str) -> None:
    # bold on a terminal only, never with NO_COLOR (docs/json.md)
    print(f"\033[1m# {text}\033[0m" if colour(sys.stdout) else f"# {text}", flush=True)


async def mtasts(*args: str, env: dict[str, str], show: bool = True) -> int:
    print("$ mtasts " + " ".join(args), flush=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from mtasts.cli.main import main; main()",
        *args,
        env={**os.environ, **env},
    )
    return await asyncio.wait_for(proc.wait(), 120)


async def main(tmp: Path) -> int:
    base = healthy_domain(DOMAIN, mx=MX)
    scenario = Scenario(
        domains=base.domains,
        hosts=(HostSpec(MX[0], SmtpSpec(), attacker="strip-starttls"), HostSpec(MX[1], SmtpSpec())),
    )
    async with running_lab(scenario) as lab:
        chain, key = lab.pki.pem(RECEIVER, "valid")
        (tmp / "cert.pem").write_bytes(chain)
        (tmp / "key.pem").write_bytes(key)
        pem, public = dkim_key()
        (tmp / "dkim.pem").write_bytes(pem)
        publish_dkim_key(lab, "sel._domainkey.sender.test", public)
        lab.set_records(RECEIVER, "A", ["127.0.0.1"])
        (tmp / "mtasts.toml").write_text(
            f'[receive]\nrequire_dkim = true\nowned_domains = ["{DOMAIN}"]\n'
        )
        env = {**lab.env, "MTASTS_CONFIG": str(tmp / "mtasts.toml")}
        received = f"sqlite:///{tmp / 'received.db'}"
        say("the receiving domain runs `tlsrpt receive` (https + SMTP, DKIM required)")
        args = [
            "tlsrpt",
            "receive",
            "--store",
            received,
            "--http",
            "127.0.0.1:0",
            "--smtp",
            "127.0.0.1:0",
            "--cert",
            str(tmp / "cert.pem"),
            "--key",
            str(tmp / "key.pem"),
        ]
        print("$ mtasts " + " ".join(args), flush=True)
        receiver = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from mtasts.cli.main import main; main()",
            *args,
            env={**os.environ, **env},
            stderr=asyncio.subprocess.PIPE,
        )
        assert receiver.stderr is not None
        ports: dict[str, int] = {}
        try:
            while len(ports) < 2:
                line = (await asyncio.wait_for(receiver.stderr.readline(), 60)).decode()
                if not line:
                    return 1
                print(line, end="", flush=True)
                m = re.search(r"receive: (https|smtp) \S+:(\d+)", line)
                if m:
                    ports[m.group(1)] = int(m.group(2))
            record = (
                f"v=TLSRPTv1; rua=https://{RECEIVER}:{ports['https']}/tlsrpt,"
                f"mailto:tls-reports@{DOMAIN}"
            )
            lab.set_txt(f"_smtp._tls.{DOMAIN}", [record])
            print(f"_smtp._tls.{DOMAIN} TXT {record!r}")

            say(f"a sending MTA delivers to {DOMAIN}; an attacker strips STARTTLS at {MX[0]}")
            sending = f"sqlite:///{tmp / 'sending.db'}"
            sock = tmp / "tlsrpt.sock"
            collector = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "from mtasts.cli.main import main; main()",
                "tlsrpt",
                "collect",
                "--socket",
                str(sock),
                "--store",
                sending,
                env={**os.environ, **lab.env},
                stderr=asyncio.subprocess.DEVNULL,
            )
            for _ in range(500):
                if sock.exists():
                    break
                await asyncio.sleep(0.02)
            with TlsRptRecorder(sock) as rec:
                for _ in range(3):
                    for host in MX:
                        address = lab.address(host)
                        probe = await probe_mx(
                            host, address, port=lab.smtp_port, ca_file=lab.ca_file
                        )
                        failure = (
                            None if probe.starttls_offered else ResultType.STARTTLS_NOT_SUPPORTED
                        )
                        print(f"  session to {host} ({address}): {failure or 'TLS ok'}")
                        rec.record_session(
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
            await collector.wait()

            say("the sender sends today's report: https POST and DKIM-signed mail")
            today = datetime.now(UTC).date().isoformat()
            send_env = {
                **lab.env,
                "MTASTS_TLSRPT_STORE": sending,
                "MTASTS_TLSRPT_ORGANIZATION": "Example Sender",
                "MTASTS_TLSRPT_CONTACT": "tlsrpt@sender.test",
                "MTASTS_TLSRPT_RELAY": f"127.0.0.1:{ports['smtp']}",
                "MTASTS_TLSRPT_DKIM_KEY": str(tmp / "dkim.pem"),
                "MTASTS_TLSRPT_DKIM_SELECTOR": "sel",
            }
            if await mtasts("tlsrpt", "send", "--day", today, "--unfinished", env=send_env):
                return 1

            say("the administrator reads what arrived (one report, stored once)")
            await mtasts("tlsrpt", "received", "--store", received, "--since", today, env=env)
            code = await mtasts(
                "tlsrpt", "received", "--store", received, "--reports", "--since", today, env=env
            )
            say("ready for enforce? mtasts advise replays the reports and checks live (exit 2)")
            await mtasts("advise", DOMAIN, "--store", received, env=env)
            return code
        finally:
            receiver.send_signal(signal.SIGTERM)
            await asyncio.wait_for(receiver.wait(), 30)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="mtasts-receive-demo-") as d:
        sys.exit(asyncio.run(main(Path(d))))
