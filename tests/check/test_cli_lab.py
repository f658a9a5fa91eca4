"""The commands end to end in the lab, as separate processes: `mtasts check` output and
exit codes, and a policy from `mtasts policy generate` served by `mtasts serve policy`
passing `mtasts check`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from tests.commands import MTASTS

from mtasts.lab import Lab, Scenario
from mtasts.lab.scenario import DnsSpec, SmtpSpec
from mtasts.lab.testing import LabPool, healthy_domain

pytestmark = pytest.mark.lab

LabFactory = Callable[[Scenario | str], Awaitable[Lab]]
SERVER_ADDRESS = "127.0.99.99"  # the lab hashes names to addresses; this one is ours


@pytest.fixture
async def lab_factory() -> AsyncIterator[LabFactory]:
    async with LabPool() as pool:
        yield pool.start


async def run(lab: Lab, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *MTASTS,
        *args,
        env={**os.environ, **lab.env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_check_json_and_exit_code_over_several_domains(lab_factory: LabFactory) -> None:
    scenario = healthy_domain("ok.test", max_age=1209600) + healthy_domain(
        "bad.test", max_age=1209600, smtp=SmtpSpec(starttls=False)
    )
    lab = await lab_factory(scenario)
    code, out, err = await run(lab, "check", "ok.test", "bad.test", "--json")
    assert code == 2, err  # CRITICAL: the worst of the two
    reports = json.loads(out)
    assert [(r["domain"], r["status"]) for r in reports] == [
        ("ok.test", "OK"),
        ("bad.test", "CRITICAL"),
    ]
    bad = [f for f in reports[1]["findings"] if f["severity"] != "ok"]
    assert [f["id"] for f in bad] == ["mx.starttls"]
    assert bad[0]["evidence"]["host"] == "mx1.bad.test"
    assert "Traceback" not in err


async def test_check_table_for_people_and_no_traceback_for_bad_input(
    lab_factory: LabFactory,
) -> None:
    lab = await lab_factory(healthy_domain("ok.test", max_age=1209600))
    code, out, err = await run(lab, "check", "ok.test")
    assert code == 0, out + err
    assert "ok.test: OK" in out
    assert "mx.tls" in out
    code, out, err = await run(lab, "check", "not a domain!")
    assert code == 3
    assert "domain.invalid" in out
    assert "Traceback" not in out + err


async def test_generated_policy_served_by_serve_policy_passes_check(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    base = healthy_domain("gen.test", max_age=1209600)
    # No lab policy host and no _mta-sts record yet: mta-sts.gen.test points at our server.
    spec = replace(base.domains[0], sts=None, policy=None, has_policy_host=False)
    scenario = replace(base, domains=(spec,)) + Scenario(
        dns=(DnsSpec("mta-sts.gen.test", a=(SERVER_ADDRESS,)),)
    )
    lab = await lab_factory(scenario)
    policies = tmp_path / "policies"
    policies.mkdir()

    # 1. generate: MX set looked up in the lab's DNS
    code, out, err = await run(
        lab,
        "policy",
        "generate",
        "-d",
        "gen.test",
        "--mode",
        "enforce",
        "--out",
        str(policies),
        "--json",
    )
    assert code == 0, err
    generated = json.loads(out)
    assert (policies / "gen.test.txt").read_bytes().decode() == generated["policy"]
    assert "mx: mx1.gen.test" in generated["policy"]
    record = next(r for r in generated["records"] if r["name"] == "_mta-sts.gen.test.")

    # 2. serve over HTTPS with a lab certificate for mta-sts.gen.test
    chain, key = lab.pki.pem("mta-sts.gen.test", "valid")
    (tmp_path / "cert.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(key)
    server = await asyncio.create_subprocess_exec(
        *MTASTS,
        "serve",
        "policy",
        "--dir",
        str(policies),
        "--listen",
        f"{SERVER_ADDRESS}:{lab.https_port}",
        "--cert",
        str(tmp_path / "cert.pem"),
        "--key",
        str(tmp_path / "key.pem"),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stderr is not None
        banner = await asyncio.wait_for(server.stderr.readline(), 30)
        assert b"serving MTA-STS policies for gen.test" in banner

        # 3. the policy first, the record second (RFC 8461 §8.1)
        lab.set_txt("_mta-sts.gen.test", [record["value"]])

        # 4. check
        code, out, err = await run(lab, "check", "gen.test", "--json")
        (report,) = json.loads(out)
        problems = [(f["id"], f["message"]) for f in report["findings"] if f["severity"] != "ok"]
        assert code == 0, problems
        assert report["status"] == "OK"
        assert "policy.valid" in [f["id"] for f in report["findings"]]
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 10)
    assert server.returncode == 0


async def test_generate_refuses_a_policy_missing_a_live_mx(lab_factory: LabFactory) -> None:
    lab = await lab_factory(healthy_domain("gen.test", mx=("mx1.gen.test", "mx2.gen.test")))
    # --mx alone looks nothing up (issue 10); --check-live-mx compares with the live set
    code, out, err = await run(
        lab, "policy", "generate", "-d", "gen.test", "--mx", "mx1.gen.test", "--check-live-mx"
    )
    assert code == 1
    assert "mx2.gen.test" in err
    assert out == ""
    code, out, _ = await run(
        lab, "policy", "generate", "-d", "gen.test", "--mx", "mx1.gen.test", "--check-live-mx",
        "--force",
    )  # fmt: skip
    assert code == 0
    assert "not covered: mx2.gen.test" in out
