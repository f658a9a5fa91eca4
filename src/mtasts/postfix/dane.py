"""Does DANE govern this domain? TLSA at the MX hosts, as a validating resolver sees it.

RFC 8461 §2: a sender that implements DANE must not let MTA-STS override a failing DANE
check. Postfix implements DANE itself (security level ``dane``/``dane-only``, with
``smtp_dns_support_level = dnssec``); we only decide which level to hand it. We trust
the AD bit of the configured resolver (RFC 6840 §5.8: only from a resolver on a secure
path, e.g. on loopback), as Postfix does.

Decision (RFC 7672 §2.2): DANE applies when the MX RRset is DNSSEC-validated and at least
one MX host has a validated, non-empty ``_25._tcp.<mx>`` TLSA RRset. If such a host's
TLSA lookup fails (SERVFAIL, timeout) we still answer DANE: Postfix repeats the lookup
and defers on failure, which is what RFC 7672 asks; answering ``secure`` instead would
be the override RFC 8461 §2 forbids. If the MX lookup itself fails we answer from
MTA-STS (Postfix cannot deliver without the MX RRset anyway).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.rdatatype
import dns.resolver

from mtasts.net.dns import resolver_for
from mtasts.postfix.socketmap import LookupLike

#: how long a "DANE applies / does not apply" verdict is reused at most (seconds)
MAX_VERDICT_TTL = 3600
MIN_VERDICT_TTL = 60


class DaneProbe:
    """Callable ``await probe(domain, lookup) -> bool`` with a small TTL cache."""

    def __init__(
        self,
        nameserver: tuple[str, int] | None = None,
        *,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        resolver = resolver_for(nameserver, timeout)
        # ask for validation status: AD set in the query (RFC 6840 §5.7), EDNS with DO
        resolver.flags = dns.flags.RD | dns.flags.AD
        resolver.use_edns(0, dns.flags.DO, 1232)
        self._resolver = resolver
        self._clock = clock
        self._verdicts: dict[str, tuple[float, bool]] = {}

    async def __call__(self, domain: str, lookup: LookupLike) -> bool:
        now = self._clock()
        hit = self._verdicts.get(domain)
        if hit is not None and hit[0] > now:
            return hit[1]
        verdict, ttl = await self.probe(domain)
        ttl = max(MIN_VERDICT_TTL, min(ttl, MAX_VERDICT_TTL))
        self._verdicts[domain] = (now + ttl, verdict)
        return verdict

    def forget(self, domain: str) -> None:
        self._verdicts.pop(domain, None)

    async def probe(self, domain: str) -> tuple[bool, int]:
        """(DANE applies, seconds the verdict may be reused)."""
        try:
            mx = await self._resolver.resolve(domain, "MX", search=False)
        except (dns.exception.DNSException, OSError):
            return False, MIN_VERDICT_TTL
        ttl = mx.rrset.ttl if mx.rrset is not None else MIN_VERDICT_TTL
        if not mx.response.flags & dns.flags.AD:
            return False, ttl  # insecure MX RRset: DANE does not apply (RFC 7672 §2.2.1)
        hosts = sorted(
            ((r.preference, r.exchange.to_text(omit_final_dot=True)) for r in mx),
            key=lambda item: item[0],
        )
        for _, host in hosts:
            if host in ("", "."):  # null MX (RFC 7505)
                continue
            try:
                tlsa = await self._resolver.resolve(f"_25._tcp.{host}", "TLSA", search=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except (dns.exception.DNSException, OSError):
                return True, MIN_VERDICT_TTL  # let Postfix's own DANE lookup decide
            if tlsa.response.flags & dns.flags.AD and len(tlsa) > 0:
                tlsa_ttl = tlsa.rrset.ttl if tlsa.rrset is not None else ttl
                return True, min(ttl, tlsa_ttl)
        return False, ttl
