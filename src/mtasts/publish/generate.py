"""``mtasts policy generate``: the policy file and the exact DNS records to publish.

The record ``id`` is derived from the policy text (a SHA-256 prefix), so it changes
exactly when the policy does: senders refetch on an id change (RFC 8461 §3.1), and a
forgotten id bump after an edit (the most common deployment mistake) cannot happen.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from mtasts.errors import PolicyError
from mtasts.names import MxPattern, normalize_domain
from mtasts.sts.policy import Mode, Policy, format_policy
from mtasts.sts.record import StsRecord, format_sts_record
from mtasts.tlsrpt.record import TlsRptRecord, format_tlsrpt_record

ID_LENGTH = 24  # hex digits: within the 1-32 ALPHA/DIGIT of RFC 8461 §3.1
# Defaults: RFC 8461 §3.2 expects max_age "in the range of weeks or greater"; the mode
# none opt-out (§8.3) wants a short one so senders forget the old policy soon.
DEFAULT_MAX_AGE = {Mode.TESTING: 604800, Mode.ENFORCE: 1209600, Mode.NONE: 86400}
RECORD_TTL = 300  # short while rolling out: a new id reaches senders within minutes


@dataclass(frozen=True, slots=True)
class DnsRecord:
    name: str  # fully qualified, with the trailing dot (zone-file form)
    type: str
    value: str
    ttl: int = RECORD_TTL
    comment: str = ""

    def zone_line(self) -> str:
        value = f'"{self.value}"' if self.type == "TXT" else self.value
        line = f"{self.name} {self.ttl} IN {self.type} {value}"
        return f"{line}  ; {self.comment}" if self.comment else line


@dataclass(frozen=True, slots=True)
class Publication:
    """What to publish for one domain: the policy file and the DNS records."""

    domain: str
    policy: Policy
    policy_text: str
    record_id: str
    records: tuple[DnsRecord, ...]
    uncovered: tuple[str, ...] = ()  # live MX hosts the policy does not cover (forced)


def policy_id(policy_text: str) -> str:
    """The record id for a policy: the first 24 hex digits of SHA-256 of its exact text."""
    return hashlib.sha256(policy_text.encode("utf-8")).hexdigest()[:ID_LENGTH]


def patterns_for(mx: Sequence[str]) -> tuple[MxPattern, ...]:
    """``mx`` values (host names or ``*.suffix``) as patterns, duplicates dropped, in order.

    A trailing dot (as MX targets are written in zone files) is dropped here, since the
    administrator is naming hosts, not writing the policy grammar.
    """
    out: list[MxPattern] = []
    for value in mx:
        pattern = MxPattern.parse(value.strip().rstrip("."))
        if pattern not in out:
            out.append(pattern)
    return tuple(out)


def uncovered_hosts(policy: Policy, live_mx: Sequence[str]) -> tuple[str, ...]:
    return tuple(host for host in live_mx if not policy.matches_mx(host))


def generate(
    domain: str,
    mx: Sequence[str],
    mode: Mode,
    *,
    max_age: int | None = None,
    rua: Sequence[str] = (),
    live_mx: Sequence[str] = (),
    force: bool = False,
) -> Publication:
    """Build the policy and records; raise PolicyError when the policy leaves a live MX
    uncovered (``publish.mx-not-covered``) unless ``force``."""
    domain = normalize_domain(domain)
    patterns = patterns_for(mx or live_mx)
    age = DEFAULT_MAX_AGE[mode] if max_age is None else max_age
    policy = Policy(mode=mode, mx=patterns, max_age=age)
    missing = uncovered_hosts(policy, [normalize_domain(h) for h in live_mx])
    if missing and not force:
        raise PolicyError(
            f"the policy does not cover the live MX host(s) {', '.join(missing)}: under "
            "enforce, senders would refuse to deliver to them. Add them with --mx, or pass "
            "--force if they are about to be retired.",
            code="publish.mx-not-covered",
            rfc="RFC 8461 §4.1",
        )
    text = format_policy(policy)
    record_id = policy_id(text)
    records = [
        DnsRecord(
            f"_mta-sts.{domain}.",
            "TXT",
            format_sts_record(StsRecord(record_id)),
            comment="id derived from the policy text; publish after the policy file",
        ),
        DnsRecord(
            f"mta-sts.{domain}.",
            "CNAME",
            "<your policy host>.",
            ttl=3600,
            comment=f"or A/AAAA; must serve HTTPS with a certificate for mta-sts.{domain}",
        ),
    ]
    if rua:
        records.insert(
            0,
            DnsRecord(
                f"_smtp._tls.{domain}.",
                "TXT",
                format_tlsrpt_record(TlsRptRecord(tuple(rua))),
                ttl=3600,
                comment="publish first: reports start before the policy applies",
            ),
        )
    return Publication(domain, policy, text, record_id, tuple(records), missing)


def rollout_steps(pub: Publication) -> tuple[str, ...]:
    """The recommended path from nothing to ``enforce`` (RFC 8461 §5, §8.1; Google's advice)."""
    d = pub.domain
    return (
        f"1. Publish the _smtp._tls TXT record and create its report mailbox, so {d} hears "
        "about TLS failures from the start.",
        f"2. Serve the policy at https://mta-sts.{d}/.well-known/mta-sts.txt (status 200, "
        "Content-Type text/plain, no redirect, a certificate for that name).",
        "3. Only then publish the _mta-sts TXT record (policy first, record second: "
        "RFC 8461 §8.1).",
        f"4. Run `mtasts check {d}` until it reports OK.",
        "5. Stay in mode testing for about two weeks and read the TLS-RPT reports.",
        "6. When they are clean, generate again with --mode enforce, publish the new policy, "
        "then the new _mta-sts record (its id changes with the policy).",
        "7. To retire MTA-STS later, publish mode none with a new id and wait the old max_age "
        "before removing anything (RFC 8461 §8.3).",
    )
