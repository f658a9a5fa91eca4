"""Before asking the CA: can this name validate, and may we have a certificate for it?

Each check costs a DNS query or two; a refusal here costs no CA rate limit and says what
to change. For ``mta-sts.<domain>``:

- **the rule**: the domain is on ``[acme] domains``, or it publishes an ``_mta-sts`` TXT
  record (``v=STSv1``) and, in on-demand mode, ``mta-sts.<domain>`` is a CNAME to
  ``cname_target`` (the provider's host) - so a stranger pointing a name at us gets nothing;
- **addresses**: every address of the name is one of ``[acme] addresses`` (skipped when
  none are configured: behind NAT only the operator knows them);
- **CAA** (RFC 8659): the relevant RRset, climbing from the name, allows the CA.

I/O module (the CAA decision is ``mtasts.acme.caa``).
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.resolver

from mtasts.acme.caa import CaaRecord, climb, evaluate
from mtasts.acme.settings import AcmeSettings
from mtasts.errors import DnsError
from mtasts.net.dns import DnsClient, resolver_for
from mtasts.rfcnames import domain_of_policy_host, sts_record_name
from mtasts.sts.record import is_sts_record


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str
    #: a DNS failure, not an answer: try again later rather than refuse for long
    temporary: bool = False


class Prechecks:
    """The checks for one server, with its nameserver and settings."""

    def __init__(
        self,
        settings: AcmeSettings,
        nameserver: tuple[str, int] | None,
        issuers: tuple[str, ...] = (),
        timeout: float = 5.0,
    ) -> None:
        self.settings = settings
        self.dns = DnsClient(nameserver, timeout=timeout)
        self._resolver = resolver_for(nameserver, timeout)
        self.issuers = issuers or settings.caa_identities

    async def check(self, name: str, *, on_demand: bool = False) -> Verdict:
        """All the checks for ``name`` (``mta-sts.<domain>``), first failure wins."""
        domain = domain_of_policy_host(name)
        if domain is None:
            return Verdict(False, f"{name} is not a policy host name (mta-sts.<domain>)")
        try:
            verdict = await self._rule(name, domain, on_demand)
            if verdict.ok:
                verdict = await self._addresses(name)
            if verdict.ok:
                verdict = await self._caa(name)
            if not verdict.ok:
                return verdict
        except DnsError as exc:
            return Verdict(False, exc.message, temporary=True)
        return Verdict(True, "pre-checks passed")

    async def _rule(self, name: str, domain: str, on_demand: bool) -> Verdict:
        if domain in self.settings.domains:
            return Verdict(True, f"{domain} is listed in [acme] domains")
        record = sts_record_name(domain)
        answer = await self.dns.txt(record)
        if not any(is_sts_record(r) for r in answer.records):
            return Verdict(
                False,
                f"{record} has no v=STSv1 TXT record and {domain} is not in "
                "[acme] domains: publish the record (or list the domain) first",
            )
        if not on_demand:
            return Verdict(True, f"{record} is published")
        target = await self._cname(name)
        wanted = self.settings.cname_target
        if not wanted or target != wanted:
            return Verdict(
                False,
                f"{name} is {'a CNAME to ' + target if target else 'no CNAME'}, not a CNAME "
                f"to {wanted or '(no [acme] cname_target set)'}: on-demand certificates are "
                "only for names delegated to us",
            )
        return Verdict(True, f"{name} is delegated to {wanted} and _mta-sts is published")

    async def _cname(self, name: str) -> str | None:
        try:
            answer = await self._resolver.resolve(name, "CNAME", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except (dns.exception.DNSException, OSError) as exc:
            raise DnsError(f"the DNS lookup of CNAME {name} failed: {exc}") from exc
        return str(answer[0].target).rstrip(".").lower()

    async def _addresses(self, name: str) -> Verdict:
        ours = set(self.settings.addresses)
        if not ours:
            return Verdict(True, "no [acme] addresses configured: address check skipped")
        found = await self.dns.addresses(name)
        if not found:
            return Verdict(False, f"{name} has no A or AAAA record: the CA cannot reach it")
        foreign = sorted(set(found) - ours)
        if foreign:
            return Verdict(
                False,
                f"{name} resolves to {', '.join(foreign)}, not one of ours "
                f"({', '.join(sorted(ours))}): the CA would validate elsewhere",
            )
        return Verdict(True, f"{name} resolves to us")

    async def _caa(self, name: str) -> Verdict:
        for candidate in climb(name):
            records = await self._caa_at(candidate)
            if records:
                verdict = evaluate(name, candidate, records, self.issuers)
                return Verdict(verdict.allowed, verdict.reason)
        verdict = evaluate(name, None, (), self.issuers)
        return Verdict(verdict.allowed, verdict.reason)

    async def _caa_at(self, name: str) -> list[CaaRecord]:
        try:
            answer = await self._resolver.resolve(name, "CAA", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.DNSException, OSError) as exc:
            # RFC 8659 §3: a CA must not issue when the CAA lookup fails; neither do we ask
            raise DnsError(f"the DNS lookup of CAA {name} failed: {exc}") from exc
        return [
            CaaRecord(
                int(r.flags),
                r.tag.decode("ascii", "replace"),
                r.value.decode("utf-8", "replace"),
            )
            for r in answer
        ]
