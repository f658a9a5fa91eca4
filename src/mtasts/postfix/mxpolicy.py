"""Which names a ``secure`` answer lets Postfix accept, and when DANE governs (pure).

Postfix < 3.10.5 checks only the MX *certificate* against ``match=``, and its
``.example.com`` form matches names at any depth; RFC 8461 §4.1 lets ``*.example.com``
match exactly one label. So the daemon looks up the domain's MX hosts itself and
renders the exact names of the current MX hosts that the policy matches, plus the
policy's own exact names (:func:`exact_match_names`). A certificate for
``a.b.example.com`` then matches nothing, whatever Postfix's wildcard rules are.

The I/O (MX and TLSA lookups, their cache) is :mod:`mtasts.postfix.mxlookup` and
:mod:`mtasts.postfix.dane`; this module only decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mtasts.names import MxPattern

#: what ``match=`` holds when no current MX host is named by the policy: a name under
#: ``.invalid`` (RFC 6761 §6.4), so no publicly trusted certificate can satisfy it and
#: Postfix defers ("Server certificate not verified") instead of delivering
NO_MATCH = "mx-not-in-mta-sts-policy.invalid"

# A host name Postfix can take as a match= item: lower-case LDH labels, no empty label.
SAFE_HOST = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)


@dataclass(frozen=True, slots=True)
class MxSet:
    """A domain's MX host names as the daemon's resolver saw them.

    ``hosts``: canonical names (lower case, no trailing dot) in preference order; for a
    domain without MX records the domain itself (the implicit MX, RFC 5321 §5.1); empty
    for a null MX (RFC 7505) or a domain that does not exist. ``validated``: the MX
    RRset came with the AD bit (RFC 7672 §2.2.1). ``error``: the lookup failed (then
    ``hosts`` is empty and nothing is known).
    """

    hosts: tuple[str, ...] = ()
    validated: bool = False
    error: str = ""


def host_matches(pattern: MxPattern, host: str) -> bool:
    """RFC 8461 §4.1: exact, or ``*.`` plus exactly one left-most label. ``host`` canonical."""
    if not pattern.wildcard:
        return host == pattern.domain
    first, dot, rest = host.partition(".")
    return bool(first and dot) and rest == pattern.domain


def _renderable(name: str) -> bool:
    # an all-digit last label is an IP address in disguise: Postfix would compare it
    # with an IP SAN (postfix-tlspol #70); such an mx value matches no MX name anyway
    return (
        len(name) <= 253
        and SAFE_HOST.fullmatch(name) is not None
        and not (name.rpartition(".")[2].isdigit())
    )


def exact_match_names(
    patterns: Sequence[MxPattern], mx: MxSet | None
) -> tuple[tuple[str, ...], str]:
    """(``match=`` names, reason when they cannot let any MX through).

    - the current MX hosts the policy matches (a wildcard by one label), in preference
      order, then the policy's exact names: a host Postfix finds in a newer MX set is
      still accepted if the policy names it exactly;
    - MX hosts known and none matched (a spoofed or stale MX set, ``*.d`` with a host
      two labels deep): ``(NO_MATCH,)`` and the reason, so Postfix defers;
    - MX hosts unknown (``mx`` None, or the lookup failed): only the exact names, as
      wildcard matches cannot be resolved; none at all: ``(NO_MATCH,)``.
    """
    exact = [p.domain for p in patterns if not p.wildcard and _renderable(p.domain)]
    if mx is not None and mx.hosts:
        matched = [h for h in mx.hosts if any(host_matches(p, h) for p in patterns)]
        matched = [h for h in matched if _renderable(h)]
        if not matched:
            shown = ", ".join(mx.hosts[:4]) + (" ..." if len(mx.hosts) > 4 else "")
            return (NO_MATCH,), f"no current MX host ({shown}) is named by the policy"
        return _unique([*matched, *exact]), ""
    if exact:
        return _unique(exact), ""
    if mx is not None and mx.error:
        why = f"the MX lookup failed ({mx.error}) and the policy has only wildcard mx values"
    elif mx is not None:
        why = "the domain has no MX host (null MX or no such domain)"
    else:
        why = "the MX hosts are unknown and the policy has only wildcard mx values"
    return (NO_MATCH,), why


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


# --- DANE (RFC 7672) ----------------------------------------------------------------------

#: SHA2-256 and SHA2-512 digest lengths (RFC 6698 §2.1.3, matching types 1 and 2)
_DIGEST_LENGTH = {1: 32, 2: 64}


def tlsa_usable(usage: int, selector: int, mtype: int, data: bytes) -> bool:
    """Whether Postfix can authenticate an SMTP server with this TLSA record.

    RFC 7672 §3.1.3: for SMTP only DANE-TA(2) and DANE-EE(3) are usable; PKIX-TA(0) and
    PKIX-EE(1) are "unusable". Selector 0/1 (RFC 6698 §2.1.2), matching type 0/1/2 with
    data of the digest's length (§2.1.3); anything else is unusable too (RFC 7672 §2.2:
    a TLSA RRset with no usable record means TLS without authentication).
    """
    if usage not in (2, 3) or selector not in (0, 1):
        return False
    if mtype == 0:
        return len(data) > 0
    return len(data) == _DIGEST_LENGTH.get(mtype, -1)


@dataclass(frozen=True, slots=True)
class TlsaResult:
    """What the TLSA lookup of one MX host (``_25._tcp.<host>``) said.

    ``usable``: validated (AD) and at least one usable record. ``failed``: the lookup
    failed (SERVFAIL, timeout). ``ttl``: the RRset's TTL, or for a negative answer the
    SOA minimum (RFC 2308 §5).
    """

    usable: bool
    ttl: int
    failed: bool = False


#: bounds on how long a DANE verdict is reused (seconds); the DNS TTL decides in between
MIN_VERDICT_TTL = 5
MAX_VERDICT_TTL = 3600


def dane_verdict(mx_ttl: int, results: Sequence[TlsaResult]) -> tuple[bool, int]:
    """(DANE applies, seconds to reuse the verdict) for a DNSSEC-validated MX RRset.

    DANE applies when at least one MX host has usable, validated TLSA records (RFC 7672
    §2.2), or when a host's TLSA lookup failed: Postfix repeats it and defers, which is
    what RFC 7672 asks; answering ``secure`` instead would let MTA-STS override DANE
    (RFC 8461 §2). The verdict lives as long as the shortest TTL it rests on, the TLSA
    answers' own (a newly published TLSA counts after its negative TTL) and the MX
    RRset's, within [MIN_VERDICT_TTL, MAX_VERDICT_TTL]; a failed lookup is retried
    after MIN_VERDICT_TTL.
    """
    applies = any(r.usable or r.failed for r in results)
    ttl = min([mx_ttl, *(MIN_VERDICT_TTL if r.failed else r.ttl for r in results)])
    return applies, max(MIN_VERDICT_TTL, min(ttl, MAX_VERDICT_TTL))
