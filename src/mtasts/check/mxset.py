"""Checks of the policy against the live MX set, and of each MX's STARTTLS.

RFC 8461 §4.1: every MX a sender may pick must match an ``mx`` pattern, or under
``enforce`` mail to it is refused; §4.2/§5: each MX must offer STARTTLS with TLS 1.2+
and a valid certificate for its MX name.

Pure: no I/O, no clock (``now`` is an argument).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from mtasts.check.certs import check_tls
from mtasts.check.evidence import Lookup, MxAnswer, SmtpProbe
from mtasts.check.finding import EvidenceValue, Finding, Severity
from mtasts.sts.policy import Mode, Policy

MATCH_RFC = "RFC 8461 §4.1"
#: Under enforce, an MX certificate this close to expiry is CRITICAL, not a warning: once it
#: expires, senders refuse the MX (RFC 8461 §4.2) instead of reporting it.
ENFORCE_EXPIRY_CRITICAL = timedelta(days=7)
TLS_RFC = "RFC 8461 §4.2"


def mx_hosts(answer: MxAnswer, domain: str) -> tuple[str, ...]:
    """The hosts a sender may deliver to: the MX hosts, or the domain itself (implicit MX,
    RFC 5321 §5.1) when it has none; nothing for a null MX (RFC 7505)."""
    if answer.null_mx:
        return ()
    if answer.outcome is Lookup.NODATA:
        return (domain,)
    return tuple(dict.fromkeys(host for _, host in answer.hosts))


def check_mx_answer(answer: MxAnswer, domain: str) -> list[Finding]:
    """The MX lookup itself: failed, null MX, implicit MX."""
    if answer.outcome in (Lookup.TIMEOUT, Lookup.SERVFAIL):
        return [
            Finding.of(
                "mx.dns-error",
                Severity.UNKNOWN,
                f"the MX lookup of {domain} failed ({answer.outcome.value}"
                f"{': ' + answer.detail if answer.detail else ''}); check its name servers.",
                "RFC 5321 §5.1",
                domain=domain,
            )
        ]
    if answer.null_mx:
        return [
            Finding.of(
                "mx.null",
                Severity.OK,
                f"{domain} publishes a null MX (RFC 7505): it accepts no mail, so MTA-STS "
                "protects nothing here.",
                "RFC 7505",
            )
        ]
    if answer.outcome is Lookup.NODATA:
        return [
            Finding.of(
                "mx.implicit",
                Severity.WARNING,
                f"{domain} has no MX record, so senders deliver to {domain} itself (implicit "
                "MX); publish an MX record naming your mail server.",
                "RFC 5321 §5.1",
            )
        ]
    return []


def _coverage_severity(policy: Policy) -> Severity:
    # enforce: mail to the MX is refused; testing: delivered but reported; none: unused.
    return {
        Mode.ENFORCE: Severity.CRITICAL,
        Mode.TESTING: Severity.WARNING,
        Mode.NONE: Severity.OK,
    }[policy.mode]


def check_coverage(hosts: Sequence[str], policy: Policy) -> list[Finding]:
    """Every MX matched by a pattern; patterns matching no MX; wildcards over a TLD."""
    out: list[Finding] = []
    patterns = tuple(str(p) for p in policy.mx)
    for host in hosts:
        if policy.matches_mx(host):
            continue
        severity = _coverage_severity(policy)
        consequence = {
            Mode.ENFORCE: "senders refuse to deliver to it",
            Mode.TESTING: "senders report it as a failure, and will refuse it under enforce",
            Mode.NONE: "this matters once the mode is testing or enforce",
        }[policy.mode]
        out.append(
            Finding.of(
                "mx.not-covered",
                severity,
                f"MX {host} matches no mx line of the policy: {consequence}. Add "
                f"'mx: {host}' (or a wildcard) to the policy and change the record id.",
                MATCH_RFC,
                host=host,
                patterns=patterns,
                mode=policy.mode.value,
            )
        )
    for pattern in policy.mx:
        if hosts and not any(pattern.matches(h) for h in hosts):
            out.append(
                Finding.of(
                    "policy.mx-unused",
                    Severity.WARNING,
                    f"mx {pattern} matches none of the current MX hosts ({', '.join(hosts)}); "
                    "remove stale entries so a host you no longer control cannot receive "
                    "your mail under the policy.",
                    "RFC 8461 §10.4",
                    pattern=str(pattern),
                    mx_hosts=tuple(hosts),
                )
            )
    if hosts and not out:
        out.append(
            Finding.of(
                "mx.covered",
                Severity.OK,
                f"every MX host is covered by the policy: {', '.join(hosts)}",
                MATCH_RFC,
                mx_hosts=tuple(hosts),
                patterns=patterns,
            )
        )
    return out


def check_probe(probe: SmtpProbe, now: datetime) -> list[Finding]:
    """One MX at one address: reachable, STARTTLS offered, TLS 1.2+, certificate."""
    where = f"{probe.host} ({probe.address}:{probe.port})" if probe.address else probe.host
    ev: dict[str, EvidenceValue] = {
        "host": probe.host,
        "address": probe.address,
        "port": probe.port,
    }
    if probe.error_kind == "dns":
        return [
            Finding.of(
                "mx.dns",
                Severity.CRITICAL,
                f"MX host {probe.host} has no address: {probe.error}. Fix the MX record or "
                "publish the host's A/AAAA record.",
                "RFC 5321 §5.1",
                **ev,
            )
        ]
    if probe.error_kind == "dns-error":
        return [
            Finding.of(
                "mx.dns-error",
                Severity.UNKNOWN,
                f"the address lookup of MX {probe.host} failed: {probe.error}",
                "RFC 5321 §5.1",
                **ev,
            )
        ]
    if not probe.connected:
        return [
            Finding.of(
                "mx.unreachable",
                Severity.UNKNOWN,
                f"could not talk SMTP to {where}: {probe.error}. (If this checker runs where "
                "outgoing port 25 is blocked, run it elsewhere.)",
                TLS_RFC,
                error=probe.error,
                **ev,
            )
        ]
    if probe.error_kind == "smtp" and not probe.starttls_offered:
        return [
            Finding.of(
                "mx.smtp",
                Severity.CRITICAL,
                f"{where} did not complete the SMTP greeting: {probe.error}",
                "RFC 5321 §4.3",
                banner=probe.banner,
                error=probe.error,
                **ev,
            )
        ]
    if not probe.starttls_offered or probe.tls is None:
        reply = f" (it answered {probe.starttls_reply!r})" if probe.starttls_reply else ""
        return [
            Finding.of(
                "mx.starttls",
                Severity.CRITICAL,
                f"{where} does not offer STARTTLS{reply}: senders with a policy refuse it "
                "(enforce) or report it (testing). Enable STARTTLS with a certificate for "
                f"{probe.host}.",
                TLS_RFC,
                banner=probe.banner,
                **ev,
            )
        ]
    findings = check_tls(probe.tls, probe.host, now, area="mx", rfc=TLS_RFC)
    return [
        Finding(f.id, f.severity, f.message, (*f.evidence, ("address", probe.address)), f.rfc)
        for f in findings
    ]


def escalate_for_enforce(
    findings: Sequence[Finding], policy: Policy | None, now: datetime
) -> list[Finding]:
    """Under an enforce policy, ``mx.cert-expiry`` within :data:`ENFORCE_EXPIRY_CRITICAL`
    becomes CRITICAL: a lapse then defers mail instead of producing reports."""
    if policy is None or policy.mode is not Mode.ENFORCE:
        return list(findings)
    out = []
    for f in findings:
        value = f.get("not_after")
        if f.id == "mx.cert-expiry" and isinstance(value, str):
            left = datetime.fromisoformat(value) - now
            if left < ENFORCE_EXPIRY_CRITICAL:
                message = (
                    f"{f.message} The policy is in mode enforce: once it expires, senders "
                    "refuse to deliver to this MX."
                )
                f = Finding(f.id, Severity.CRITICAL, message, f.evidence, f.rfc)
        out.append(f)
    return out
