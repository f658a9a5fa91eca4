"""``mtasts policy generate``: the policy file and the exact DNS records to publish.

The record ``id`` is derived from the policy text (a SHA-256 prefix), so it changes
exactly when the policy does: senders refetch on an id change (RFC 8461 §3.1), and a
forgotten id bump after an edit (the most common deployment mistake) cannot happen.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from mtasts.errors import PolicyError, TlsRptRecordError
from mtasts.names import MxPattern, normalize_domain
from mtasts.rfcnames import (
    WELL_KNOWN_PATH,
    policy_host,
    policy_url,
    sts_record_name,
    tlsrpt_record_name,
)
from mtasts.sts.policy import Mode, Policy, format_policy
from mtasts.sts.record import StsRecord, format_sts_record
from mtasts.tlsrpt.record import TlsRptRecord, format_tlsrpt_record

ID_LENGTH = 24  # hex digits: within the 1-32 ALPHA/DIGIT of RFC 8461 §3.1
# Defaults: RFC 8461 §3.2 expects max_age "in the range of weeks or greater"; the mode
# none opt-out (§8.3) wants a short one so senders forget the old policy soon.
DEFAULT_MAX_AGE = {Mode.TESTING: 604800, Mode.ENFORCE: 1209600, Mode.NONE: 86400}
RECORD_TTL = 300  # short while rolling out: a new id reaches senders within minutes


class Layout(Enum):
    """Where ``--out DIR`` puts the policy file."""

    SERVE = "serve"  # DIR/<domain>.txt, for `mtasts serve policy --dir DIR`
    STATIC = "static"  # DIR/<domain>/.well-known/mta-sts.txt, a web server's document root


def policy_path(layout: Layout, domain: str) -> str:
    """The file's path below the output directory, ``/``-separated."""
    if layout is Layout.STATIC:
        return domain + WELL_KNOWN_PATH
    return f"{domain}.txt"


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
    rua: tuple[str, ...] = ()  # the rua URIs as written into the record
    notes: tuple[str, ...] = ()  # what was changed in the given values (encodings)


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


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# RFC 8460 §3: "," "!" and ";" inside a rua URI are percent-encoded ("," separates the
# URIs, ";" the record's fields, "!" is kept from DMARC's size suffix).
_ENCODE = {",": "%2C", ";": "%3B", "!": "%21"}
_SIZE_LIMIT = re.compile(r"!\d+[kmgt]?$", re.IGNORECASE)  # DMARC's rua=mailto:x@y!10m


def rua_uris(values: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ``--rua`` values as the record's URIs, and a note for each value changed.

    A value holding several URIs separated by commas (``mailto:a@x,https://r/``) is split.
    Any other ``,`` ``;`` or ``!`` is percent-encoded, as RFC 8460 §3 requires: for a
    ``mailto:`` with several addresses (``mailto:a@x,b@x``, RFC 6068) ``%2C`` is exactly the
    form the record needs. The URIs are then checked (mailto: with an address, https: with a
    host); duplicates are dropped.
    """
    # RFC 8460 §3 leaves no choice for ',' ';' '!' inside a URI: the record cannot carry
    # them raw. We encode rather than refuse, since the encoded form is the only one that
    # can mean what the administrator wrote; splitting comes first, so two URIs given in
    # one --rua are not glued into one address list.
    uris: list[str] = []
    notes: list[str] = []
    for value in values:
        value = value.strip()
        parts = [p.strip() for p in value.split(",")]
        if len(parts) > 1 and all(_SCHEME.match(p) for p in parts):
            notes.append(f"rua {value!r} holds {len(parts)} URIs: written as {len(parts)}")
        else:
            parts = [value]
        for part in parts:
            size = _SIZE_LIMIT.search(part)
            if size is not None:
                raise TlsRptRecordError(
                    f"rua {part!r}: TLS-RPT has no DMARC-style size limit; remove the "
                    f"{size.group(0)!r} suffix",
                    code="publish.rua-size-limit",
                )
            encoded = "".join(_ENCODE.get(c, c) for c in part)
            if encoded != part:
                notes.append(f"rua {part!r} written as {encoded!r} (RFC 8460 §3 encoding)")
            if not encoded:
                raise TlsRptRecordError("an empty --rua: give a mailto: or https: URI")
            if encoded not in uris:
                uris.append(encoded)
    return tuple(uris), tuple(notes)


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
    uris, notes = rua_uris(rua)
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
            sts_record_name(domain) + ".",
            "TXT",
            format_sts_record(StsRecord(record_id)),
            comment="id derived from the policy text; publish after the policy file",
        ),
        DnsRecord(
            policy_host(domain) + ".",
            "CNAME",
            "<your policy host>.",
            ttl=3600,
            comment=f"or A/AAAA; must serve HTTPS with a certificate for {policy_host(domain)}",
        ),
    ]
    if uris:
        records.insert(
            0,
            DnsRecord(
                tlsrpt_record_name(domain) + ".",
                "TXT",
                format_tlsrpt_record(TlsRptRecord(uris)),
                ttl=3600,
                comment="publish first: reports start before the policy applies",
            ),
        )
    return Publication(domain, policy, text, record_id, tuple(records), missing, uris, notes)


def rollout_steps(pub: Publication, serving: str | None = None) -> tuple[str, ...]:
    """What to do next, for the policy's mode (RFC 8461 §5, §8.1, §8.3; Google's advice).

    ``serving`` says how the written file gets served (the caller knows where it wrote it);
    without it the step names only the URL.
    """
    d = pub.domain
    url = policy_url(d)
    serve = (
        f"Serve the policy at {url} (status 200, Content-Type text/plain, no redirect, a "
        "certificate for that name)" + (f": {serving}." if serving else ".")
    )
    record = (
        "Only then publish the _mta-sts TXT record (policy first, record second: RFC 8461 §8.1)."
    )
    check = f"Run `mtasts check {d}` until it reports OK."
    if pub.rua:
        reports = (
            "Publish the _smtp._tls TXT record and make sure every rua destination accepts "
            f"reports, so {d} hears about TLS failures from the start."
        )
    else:
        reports = (
            f"No --rua given: publish a _smtp._tls record of your own (or generate again "
            f"with --rua mailto:...), or {d} never hears about TLS failures."
        )
    steps: tuple[str, ...]
    if pub.policy.mode is Mode.NONE:
        steps = (
            serve,
            "Then publish the _mta-sts TXT record above: its new id makes senders fetch the "
            "mode none policy, which releases them from the old one.",
            "Wait at least the max_age of the policy you are replacing (the longest one "
            "senders may have cached) before removing the _mta-sts record and the policy "
            "host (RFC 8461 §8.3); removing them earlier leaves senders enforcing the old "
            "policy.",
            "The _smtp._tls record can stay: reports remain useful without MTA-STS.",
        )
    elif pub.policy.mode is Mode.ENFORCE:
        steps = (
            "Before enforcing, read the TLS reports of the testing period: every "
            "validation-failure, certificate-host-mismatch or starttls-not-supported would "
            "now be a refused delivery.",
            reports,
            serve,
            record,
            check,
            "Before any MX change, add the new host to the policy and publish it (with its "
            "new id) first: senders refuse an MX the cached policy does not list.",
        )
    else:
        steps = (
            reports,
            serve,
            record,
            check,
            "Stay in mode testing for about two weeks and read the TLS-RPT reports.",
            "When they are clean, generate again with --mode enforce, publish the new policy, "
            "then the new _mta-sts record (its id changes with the policy).",
        )
    return tuple(f"{n}. {step}" for n, step in enumerate(steps, 1))
