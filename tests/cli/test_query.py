"""``mtasts query`` run as a user runs it: a separate process pointed at the lab by
MTASTS_* variables (or options), with real DNS and HTTPS servers on loopback."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from mtasts.lab.lab import Lab
from mtasts.lab.scenario import DnsSpec, PolicyHostSpec, Scenario
from mtasts.lab.testing import healthy_domain, running_lab

pytestmark = pytest.mark.lab

MTASTS = Path(sys.executable).with_name("mtasts")
SCENARIO = (
    healthy_domain("good.test", mx=("mx1.good.test", "mx2.good.test"), policy_id="20240101")
    + healthy_domain("badcert.test", policy_host=PolicyHostSpec(cert="expired"))
    # Issue 16: trailing blank lines and an IP-like mx value, which senders tolerate.
    + healthy_domain("sloppy.test", policy_host=PolicyHostSpec(body_extra="mx: 192.0.2.1\n\n"))
    + Scenario(
        dns=(
            DnsSpec(name="plain.test", a=("192.0.2.1",)),
            DnsSpec(name="_mta-sts.broken.test", fault="servfail"),
        )
    )
)


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with running_lab(SCENARIO) as running:
        yield running


async def run(
    *args: str, env: dict[str, str] | None = None, lab: Lab | None = None
) -> tuple[int, str, str]:
    """Run ``mtasts ARGS`` in a fresh process; return (exit status, stdout, stderr)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MTASTS_")}
    if lab is not None:
        environ.update(lab.env)
    environ.update(env or {})
    process = await asyncio.create_subprocess_exec(
        str(MTASTS),
        *args,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def query_json(lab: Lab, domain: str, *extra: str) -> tuple[int, dict[str, Any]]:
    status, out, err = await run("query", domain, "--json", *extra, lab=lab)
    assert out, err
    data = orjson.loads(out)
    assert isinstance(data, dict)
    return status, data


async def test_policy_found(lab: Lab) -> None:
    """A healthy domain: exit 0 and every documented JSON key."""
    status, data = await query_json(lab, "Good.Test.")
    assert status == 0
    assert data["domain"] == "good.test"
    assert data["policy_type"] == "sts"
    assert data["mode"] == "enforce"
    assert data["id"] == "20240101"
    assert data["mx"] == ["mx1.good.test", "mx2.good.test"]
    assert data["max_age"] == 86400
    assert data["result_type"] is None
    assert data["source"] == "fetched"
    assert isinstance(data["detail"], str)
    # docs/json.md: instants are RFC 3339 UTC text, max_age apart
    fetched = datetime.strptime(data["fetched_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    expires = datetime.strptime(data["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert (expires - fetched).total_seconds() == 86400
    assert abs((datetime.now(UTC) - fetched).total_seconds()) < 600


async def test_tolerated_deviations_are_warnings_not_failures(lab: Lab) -> None:
    """Fail safe: the enforce policy applies, each deviation is a warning in the JSON
    (and in the text), and the IP-like mx value is listed apart, matching nothing."""
    status, data = await query_json(lab, "sloppy.test")
    assert status == 0
    assert (data["status"], data["mode"], data["result_type"]) == ("sts", "enforce", None)
    assert data["mx"] == ["mx1.sloppy.test"]
    assert data["unmatchable_mx"] == ["192.0.2.1"]
    assert [w["code"] for w in data["warnings"]] == ["policy.mx.numeric", "policy.blank-line"]
    assert all("accepted for sending" in w["message"] for w in data["warnings"])
    _, out, _ = await run("query", "sloppy.test", lab=lab)
    assert "warning:  line 5: mx '192.0.2.1'" in out
    assert "unusable: 192.0.2.1 (match no MX)" in out
    _, good = await query_json(lab, "good.test")
    assert (good["warnings"], good["unmatchable_mx"]) == ([], [])


async def test_no_policy_is_a_determination(lab: Lab) -> None:
    """No _mta-sts record: exit 0, policy_type no-policy-found, mode null."""
    status, data = await query_json(lab, "plain.test")
    assert status == 0
    assert data["policy_type"] == "no-policy-found"
    assert data["mode"] is None
    assert data["mx"] == []
    assert data["result_type"] is None


async def test_unusable_policy_is_a_determination_with_result_type(lab: Lab) -> None:
    """Record published, certificate expired: determined (exit 0), result_type says why."""
    status, data = await query_json(lab, "badcert.test")
    assert status == 0
    assert data["policy_type"] == "sts"
    assert data["mode"] is None
    assert data["result_type"] == "sts-webpki-invalid"
    assert "expired" in data["detail"]


async def test_dns_failure_exits_3(lab: Lab) -> None:
    """SERVFAIL with nothing cached: not determined, exit 3."""
    status, data = await query_json(lab, "broken.test")
    assert status == 3
    assert data["status"] == "undetermined"


async def test_options_instead_of_environment(lab: Lab) -> None:
    """--nameserver and --ca-file do what MTASTS_NAMESERVER and MTASTS_CA_FILE do."""
    host, port = lab.nameserver
    status, out, err = await run(
        "query",
        "good.test",
        "--nameserver",
        f"{host}:{port}",
        "--ca-file",
        str(lab.ca_file),
        env={"MTASTS_HTTPS_PORT": str(lab.https_port)},
    )
    assert status == 0, err
    assert "mode enforce" in out
    assert "mx1.good.test, mx2.good.test" in out


async def test_sqlite_cache_between_runs(lab: Lab, tmp_path: Path) -> None:
    """--cache sqlite:///path: the second run answers from the cache, with no new GET."""
    url = f"sqlite:///{tmp_path}/cache.db"
    first = await query_json(lab, "good.test", "--cache", url)
    second = await query_json(lab, "good.test", "--cache", url)
    assert (first[1]["source"], second[1]["source"]) == ("fetched", "cache")
    assert len(lab.policy_requests("good.test")) == 1


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["query", "bad domain!"], "DOMAIN", 2),  # defect: not a domain name (usage)
        (["query", "good.test", "--cache", "ftp://x"], "cache URL", 78),  # unknown cache
        (["query", "good.test", "--nameserver", "x:y"], "nameserver", 78),  # bad port
    ],
)
async def test_bad_input_exits_2_or_78(lab: Lab, args: list[str], message: str, code: int) -> None:
    """The command line's form is 2; a setting's value (given anywhere) is 78."""
    status, _, err = await run(*args, lab=lab)
    assert status == code
    assert message in err
