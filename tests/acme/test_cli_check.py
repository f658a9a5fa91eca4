"""`mtasts serve policy --acme` as its own process: pebble issues the certificate of the
lab domain's policy host, and `mtasts check` passes with the lab trusting pebble's root."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest
from acme_helpers import wait_for
from pebble_peer import Pebble, require_pebble
from tests.commands import MTASTS

from mtasts.lab import Scenario
from mtasts.lab.scenario import DnsSpec
from mtasts.lab.testing import healthy_domain, running_lab

pytestmark = [pytest.mark.lab, pytest.mark.peer]

SERVER_ADDRESS = "127.0.98.98"  # the lab hashes names to addresses; this one is ours


async def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *MTASTS, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_pebble_certificate_makes_check_pass(tmp_path: Path) -> None:
    require_pebble()
    base = healthy_domain("cert.test", max_age=1209600)
    # the lab serves the domain's MX, records and DNS; the policy host is ours
    domain = replace(base.domains[0], policy=None, has_policy_host=False)
    scenario = replace(base, domains=(domain,)) + Scenario(
        dns=(
            DnsSpec("mta-sts.cert.test", a=(SERVER_ADDRESS,)),
            # a domain added later by a reload
            DnsSpec("mta-sts.later.test", a=(SERVER_ADDRESS,)),
            DnsSpec("_mta-sts.later.test", txt=(("v=STSv1; id=1",),)),
        )
    )
    async with running_lab(scenario) as lab:
        pebble = Pebble(tmp_path / "pebble", lab.pki.ca, lab.nameserver, tls_port=lab.https_port)
        await asyncio.to_thread(pebble.start)
        try:
            policies = tmp_path / "policies"
            policies.mkdir()
            (policies / "cert.test.txt").write_text(base.domains[0].policy or "")
            state = tmp_path / "state"
            config = tmp_path / "mtasts.toml"
            config.write_text(
                f'[acme]\ndirectory = "{pebble.url}"\nca_file = "{pebble.ca_file}"\n'
                f'state_dir = "{state}"\nemail = "hostmaster@cert.test"\n'
                f'addresses = ["{SERVER_ADDRESS}"]\nretry_min = 1\nretry_max = 2\n'
            )
            env = {**os.environ, **lab.env, "MTASTS_CONFIG": str(config)}
            server = await asyncio.create_subprocess_exec(
                *MTASTS,
                "serve",
                "policy",
                "--acme",
                "--dir",
                str(policies),
                "--listen",
                f"{SERVER_ADDRESS}:{lab.https_port}",
                env=env,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                assert server.stderr is not None
                banner = await asyncio.wait_for(server.stderr.readline(), 30)
                assert b"serving MTA-STS policies for cert.test on https://" in banner
                await wait_for(lambda: (state / "certs" / "mta-sts.cert.test.pem").exists(), 30)
                # the lab's trust: its own CA and pebble's root
                bundle = tmp_path / "trust.pem"
                bundle.write_bytes(lab.ca_file.read_bytes() + pebble.root_pem())
                check_env = {**env, "MTASTS_CA_FILE": str(bundle)}
                code, out, err = await _run(check_env, "check", "cert.test", "--json")
                (report,) = json.loads(out)
                problems = [
                    (f["id"], f["message"]) for f in report["findings"] if f["severity"] != "ok"
                ]
                assert code == 0, (problems, err)
                assert "policy.valid" in [f["id"] for f in report["findings"]]
                # the [acme] table is in the configuration: the manager's status shows too
                (acme,) = [f for f in report["findings"] if f["id"] == "policy-host.acme"]
                assert acme["severity"] == "ok"
                assert acme["evidence"]["state"] == "valid"
                assert acme["evidence"]["failures"] == 0
                # a domain added to the directory gets its certificate after a reload
                (policies / "later.test.txt").write_text(base.domains[0].policy or "")
                server.send_signal(signal.SIGHUP)
                later = state / "certs" / "mta-sts.later.test.pem"
                await wait_for(later.exists, 30)
            finally:
                server.send_signal(signal.SIGTERM)
                await asyncio.wait_for(server.wait(), 15)
            assert server.returncode == 0
        finally:
            pebble.stop()
