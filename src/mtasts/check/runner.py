"""Run every check for a domain: DNS, the policy host and all MXs at once.

The DNS questions, the policy fetch and the MX probes run concurrently, and every step
has its own deadline; a whole domain also has one, so a domain is checked in about the
time of its slowest MX and never longer than ``Limits.domain``. Every outcome, failures
included, becomes findings: nothing here raises to the caller.

I/O module.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dns.asyncresolver

from mtasts.check import dnsq
from mtasts.check.acmecert import check_acme_status
from mtasts.check.evidence import Lookup, MxAnswer, PolicyResponse, SmtpProbe, TxtAnswer
from mtasts.check.fetch import fetch_policy_evidence
from mtasts.check.finding import DomainReport, Finding, Severity
from mtasts.check.mxset import (
    check_coverage,
    check_mx_answer,
    check_probe,
    escalate_for_enforce,
    mx_hosts,
)
from mtasts.check.policyhost import check_policy_response
from mtasts.check.probe import probe_mx
from mtasts.check.records import check_sts_record, check_tlsrpt_record
from mtasts.check.tlsinfo import now as wall_clock
from mtasts.errors import DnsError, DomainNameError
from mtasts.names import normalize_domain
from mtasts.net.dns import DnsClient, resolver_for
from mtasts.rfcnames import policy_host, sts_record_name, tlsrpt_record_name

MAX_MX = 10  # probe at most this many MX hosts
MAX_ADDRESSES = 2  # and at most this many addresses of each


@dataclass(frozen=True, slots=True)
class Limits:
    """Seconds."""

    dns: float = 5.0
    https: float = 30.0
    smtp: float = 15.0  # per SMTP step (connect, each reply, the TLS handshake)
    mx: float = 45.0  # one whole MX probe
    domain: float = 90.0  # everything for one domain


@dataclass(frozen=True, slots=True)
class Target:
    """Where to look: the nameserver, the trust store and the ports (the lab sets them)."""

    nameserver: tuple[str, int] | None = None
    ca_file: Path | None = None
    https_port: int = 443
    smtp_port: int = 25
    limits: Limits = Limits()
    #: the state directory of `serve policy --acme` on this host: its status for
    #: mta-sts.<domain> is reported too (policy-host.acme)
    acme_state: Path | None = None


async def _probe_host(client: DnsClient, host: str, target: Target) -> list[SmtpProbe]:
    try:
        addresses = await client.addresses(host)
    except DnsError as exc:
        return [SmtpProbe(host=host, error=exc.message, error_kind="dns-error")]
    if not addresses:
        return [SmtpProbe(host=host, error="no A or AAAA record", error_kind="dns")]
    chosen = addresses[:MAX_ADDRESSES]
    probes = [
        asyncio.wait_for(
            probe_mx(
                host,
                address,
                port=target.smtp_port,
                ca_file=target.ca_file,
                seconds=target.limits.smtp,
            ),
            target.limits.mx,
        )
        for address in chosen
    ]
    results = await asyncio.gather(*probes, return_exceptions=True)
    out: list[SmtpProbe] = []
    for address, result in zip(chosen, results, strict=True):
        if isinstance(result, SmtpProbe):
            out.append(result)
        else:
            timed_out = isinstance(result, TimeoutError)
            error = "no answer in time" if timed_out else f"{type(result).__name__}: {result}"
            out.append(
                SmtpProbe(
                    host=host,
                    address=address,
                    port=target.smtp_port,
                    error=error,
                    error_kind="timeout" if timed_out else "error",
                )
            )
    return out


async def _wrong_names(
    resolver: dns.asyncresolver.Resolver, names: Sequence[str]
) -> list[TxtAnswer]:
    return list(await asyncio.gather(*(dnsq.txt(resolver, n) for n in names)))


async def _check(domain: str, target: Target, now: datetime) -> list[Finding]:
    limits = target.limits
    resolver = resolver_for(target.nameserver, limits.dns)
    client = DnsClient(target.nameserver, timeout=limits.dns)
    mx_task = asyncio.ensure_future(dnsq.mx(resolver, domain))
    sts_task = asyncio.ensure_future(dnsq.txt(resolver, sts_record_name(domain)))
    rpt_task = asyncio.ensure_future(dnsq.txt(resolver, tlsrpt_record_name(domain)))
    fetch_task = asyncio.ensure_future(
        fetch_policy_evidence(
            client, domain, port=target.https_port, ca_file=target.ca_file, seconds=limits.https
        )
    )
    mx_answer: MxAnswer = await mx_task
    if mx_answer.outcome is Lookup.NXDOMAIN:
        for task in (sts_task, rpt_task, fetch_task):
            task.cancel()
        await asyncio.gather(sts_task, rpt_task, fetch_task, return_exceptions=True)
        return [
            Finding.of(
                "domain.not-found",
                Severity.CRITICAL,
                f"{domain} does not exist in DNS (NXDOMAIN). Check the spelling, or the "
                "delegation of the domain.",
                "RFC 8461 §3.1",
                domain=domain,
            )
        ]
    hosts = mx_hosts(mx_answer, domain)[:MAX_MX]
    probe_tasks = [asyncio.ensure_future(_probe_host(client, h, target)) for h in hosts]

    findings: list[Finding] = []
    sts_answer = await sts_task
    elsewhere: list[TxtAnswer] = []
    if not any(r.startswith("v=STSv1") for r in sts_answer.records):
        elsewhere = await _wrong_names(
            resolver, [f"_mta_sts.{domain}", policy_host(domain), domain]
        )
    sts_findings = check_sts_record(sts_answer, elsewhere)
    findings += sts_findings
    record_missing = any(
        f.id in ("sts-record.missing", "sts-record.wrong-name", "sts-record.dangling-cname")
        for f in sts_findings
    )

    response: PolicyResponse = await fetch_task
    policy = None
    if not record_missing:
        host_findings, policy = check_policy_response(response, now)
        findings += host_findings

    findings += check_mx_answer(mx_answer, domain)
    if policy is not None and mx_answer.outcome in (Lookup.ANSWER, Lookup.NODATA):
        findings += check_coverage(hosts, policy)

    for probes in await asyncio.gather(*probe_tasks):
        for probe in probes:
            findings += escalate_for_enforce(check_probe(probe, now), policy, now)

    rpt_answer = await rpt_task
    rpt_elsewhere: list[TxtAnswer] = []
    if not any(r.startswith("v=TLSRPTv1") for r in rpt_answer.records):
        rpt_elsewhere = await _wrong_names(
            resolver, [f"_smtp-tlsrpt.{domain}", f"_tlsrpt.{domain}"]
        )
    findings += check_tlsrpt_record(rpt_answer, rpt_elsewhere)
    if target.acme_state is not None:
        findings += _acme_findings(target.acme_state, policy_host(domain))
    return findings


def _acme_findings(state: Path, name: str) -> list[Finding]:
    """The ACME manager's status for ``name``, when this host serves it."""
    try:
        data = json.loads((state / "certs" / f"{name}.json").read_bytes())
    except (OSError, ValueError):
        return []  # not a name this host's `serve policy --acme` manages
    return check_acme_status(name, data) if isinstance(data, dict) else []


async def check_domain(
    domain: str, target: Target = Target(), *, now: datetime | None = None
) -> DomainReport:
    """Check one domain; failures of any kind come back as findings."""
    try:
        name = normalize_domain(domain)
    except DomainNameError as exc:
        return DomainReport(
            domain,
            (Finding.of("domain.invalid", Severity.UNKNOWN, exc.message, domain=domain),),
        )
    when = now or wall_clock()
    try:
        async with asyncio.timeout(target.limits.domain):
            findings = await _check(name, target, when)
    except TimeoutError:
        findings = [
            Finding.of(
                "check.timeout",
                Severity.UNKNOWN,
                f"checking {name} took longer than {target.limits.domain:g} s; some of its "
                "servers do not answer.",
                domain=name,
            )
        ]
    except Exception as exc:
        findings = [
            Finding.of(
                "check.error",
                Severity.UNKNOWN,
                f"the check of {name} failed unexpectedly: {type(exc).__name__}: {exc}",
                domain=name,
            )
        ]
    return DomainReport(name, tuple(findings))


async def check_domains(
    domains: Sequence[str],
    target: Target = Target(),
    *,
    concurrency: int = 8,
    on_done: Callable[[DomainReport], None] | None = None,
) -> list[DomainReport]:
    """Check several domains, at most ``concurrency`` at a time, reports in input order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(domain: str) -> DomainReport:
        async with gate:
            report = await check_domain(domain, target)
        if on_done is not None:
            on_done(report)
        return report

    return list(await asyncio.gather(*(one(d) for d in domains)))
