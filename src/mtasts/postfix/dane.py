"""Does DANE govern this domain? Usable TLSA at the MX hosts, as a validating resolver sees it.

RFC 8461 §2: a sender that implements DANE must not let MTA-STS override a failing DANE
check. Postfix implements DANE itself (security level ``dane-only``, with
``smtp_dns_support_level = dnssec``); we only decide when to hand it that level. We trust
the AD bit of the configured resolver (RFC 6840 §5.8: only from a resolver on a secure
path, e.g. on loopback), as Postfix does; :func:`resolver_validates` checks once at start
that it sets one at all.

Decision (RFC 7672 §2.2, :func:`mtasts.postfix.mxpolicy.dane_verdict`): DANE applies when
the MX RRset is DNSSEC-validated and at least one MX host has a validated TLSA RRset with
at least one *usable* record (RFC 7672 §3.1.3: DANE-TA or DANE-EE, known selector and
matching type). A host whose TLSA lookup fails also counts: Postfix repeats the lookup
and defers, as RFC 7672 asks. The answer is then ``dane-only``: hosts without usable TLSA
are skipped by Postfix (partial DANE, docs/postfix.md), never reached with less than
DANE. The verdict is cached for the shortest TTL it rests on: the MX RRset's and each
TLSA answer's own (a negative one's SOA minimum, RFC 2308 §5).
"""

from __future__ import annotations

import logging

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.rdatatype
import dns.resolver

from mtasts.clock import Clock, monotonic
from mtasts.postfix.mxlookup import MxCache, negative_ttl, validating_resolver
from mtasts.postfix.mxpolicy import (
    MAX_VERDICT_TTL,
    MIN_VERDICT_TTL,
    TlsaResult,
    dane_verdict,
    tlsa_usable,
)
from mtasts.postfix.socketmap import LookupLike

log = logging.getLogger("mtasts.daemon")

__all__ = [
    "MAX_VERDICT_TTL",
    "MIN_VERDICT_TTL",
    "DaneProbe",
    "resolver_validates",
    "warn_unless_validating",
]


class DaneProbe:
    """Callable ``await probe(domain, lookup) -> bool`` with a TTL cache of verdicts."""

    def __init__(
        self,
        nameserver: tuple[str, int] | None = None,
        *,
        timeout: float = 5.0,
        clock: Clock = monotonic,
        mx: MxCache | None = None,
    ) -> None:
        self._resolver = mx.resolver if mx is not None else validating_resolver(nameserver, timeout)
        self._mx = mx if mx is not None else MxCache(self._resolver, clock=clock)
        self._clock = clock
        self._verdicts: dict[str, tuple[float, bool]] = {}

    async def __call__(self, domain: str, lookup: LookupLike) -> bool:
        hit = self._verdicts.get(domain)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        verdict, ttl = await self.probe(domain)
        if len(self._verdicts) > 100_000:
            self._verdicts.clear()
        self._verdicts[domain] = (self._clock() + ttl, verdict)
        return verdict

    def peek(self, domain: str) -> tuple[bool, float] | None:
        """(the cached verdict, seconds it still holds) without I/O, or None."""
        hit = self._verdicts.get(domain)
        if hit is not None:
            left = hit[0] - self._clock()
            if left > 0:
                return hit[1], left
        return None

    def forget(self, domain: str) -> None:
        self._verdicts.pop(domain, None)
        self._mx.forget(domain)

    async def probe(self, domain: str) -> tuple[bool, int]:
        """(DANE applies, seconds the verdict may be reused)."""
        mx, mx_ttl = await self._mx.get_with_ttl(domain)
        if mx.error:
            # cannot tell; Postfix cannot deliver without the MX RRset either
            return False, MIN_VERDICT_TTL
        if not mx.validated or not mx.hosts:
            return False, max(MIN_VERDICT_TTL, mx_ttl)  # RFC 7672 §2.2.1: insecure MX
        results = [await self.tlsa(host) for host in mx.hosts]
        return dane_verdict(mx_ttl, results)

    async def tlsa(self, host: str) -> TlsaResult:
        """The TLSA RRset of ``_25._tcp.<host>``, judged (RFC 7672 §2.2, §3.1.3)."""
        try:
            answer = await self._resolver.resolve(f"_25._tcp.{host}", "TLSA", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as exc:
            return TlsaResult(usable=False, ttl=negative_ttl(exc))
        except (dns.exception.DNSException, OSError):
            return TlsaResult(usable=False, ttl=MIN_VERDICT_TTL, failed=True)
        ttl = answer.rrset.ttl if answer.rrset is not None else MIN_VERDICT_TTL
        if not answer.response.flags & dns.flags.AD:
            return TlsaResult(usable=False, ttl=ttl)  # not validated: no DANE
        usable = any(
            tlsa_usable(r.usage, r.selector, r.mtype, r.cert)
            for r in answer
            if r.rdtype == dns.rdatatype.TLSA
        )
        return TlsaResult(usable=usable, ttl=ttl)


async def resolver_validates(resolver: dns.asyncresolver.Resolver) -> bool | None:
    """Whether ``resolver`` sets the AD bit for the signed root zone (None: no answer).

    A validating resolver marks the root's NS RRset as validated; one that does not
    validate (or strips AD) never sets it, and DANE detection then never sees TLSA.
    """
    try:
        answer = await resolver.resolve(".", "NS", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return False  # a resolver without the real root zone cannot validate it
    except (dns.exception.DNSException, OSError):
        return None
    return bool(answer.response.flags & dns.flags.AD)


async def warn_unless_validating(resolver: dns.asyncresolver.Resolver, where: str) -> None:
    """Log once, at start, when DANE detection cannot work with this resolver."""
    validates = await resolver_validates(resolver)
    if validates is False:
        log.warning(
            "DANE detection: the resolver %s does not set the AD bit (it does not validate "
            "DNSSEC, or strips AD); no domain will be seen to publish TLSA and MTA-STS "
            "answers apply everywhere. Point nameserver at a validating resolver on "
            "loopback (e.g. unbound) so DANE can take precedence (RFC 8461 §2)",
            where,
        )
    elif validates is None:
        log.warning(
            "DANE detection: the resolver %s did not answer the root NS query used to "
            "check that it validates DNSSEC; if it does not, DANE cannot take precedence",
            where,
        )
