"""The checker's DNS questions: TXT with the CNAME chain followed, and the MX set.

``mtasts.net.dns.DnsClient`` answers the sender's questions (TXT records, addresses); the
checker also needs the CNAMEs on the way (delegation, dangling CNAMEs) and the MX RRset
(null MX, implicit MX), so it asks those here, with the same nameserver and deadlines,
and uses ``DnsClient.addresses`` for addresses.

I/O module.
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.message
import dns.rdatatype
import dns.resolver

from mtasts.check.evidence import Lookup, MxAnswer, TxtAnswer
from mtasts.errors import DomainNameError
from mtasts.names import normalize_domain


def _cnames(responses: list[dns.message.Message]) -> tuple[str, ...]:
    found: list[str] = []
    for response in responses:
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.CNAME:
                found += [str(r.target).rstrip(".").lower() for r in rrset]
    return tuple(dict.fromkeys(found))


def _failure(exc: BaseException) -> tuple[Lookup, str]:
    if isinstance(exc, dns.resolver.LifetimeTimeout | dns.exception.Timeout):
        return Lookup.TIMEOUT, "timed out"
    if isinstance(exc, dns.resolver.NoNameservers):
        return Lookup.SERVFAIL, "SERVFAIL or refused by every name server"
    return Lookup.SERVFAIL, str(exc) or type(exc).__name__


async def txt(resolver: dns.asyncresolver.Resolver, name: str) -> TxtAnswer:
    """The TXT RRset at ``name``, each record's strings joined (RFC 7208 §3.3)."""
    try:
        answer = await resolver.resolve(name, "TXT", search=False)
    except dns.resolver.NXDOMAIN as exc:
        responses = exc.responses()  # type: ignore[no-untyped-call]
        return TxtAnswer(name, Lookup.NXDOMAIN, cnames=_cnames(list(responses.values())))
    except dns.resolver.NoAnswer as exc:
        response = exc.response()  # type: ignore[no-untyped-call]
        cnames = _cnames([response]) if isinstance(response, dns.message.Message) else ()
        return TxtAnswer(name, Lookup.NODATA, cnames=cnames)
    except (dns.exception.DNSException, OSError) as exc:
        outcome, detail = _failure(exc)
        return TxtAnswer(name, outcome, detail=detail)
    records = tuple(b"".join(rdata.strings).decode("ascii", errors="replace") for rdata in answer)
    return TxtAnswer(name, Lookup.ANSWER, records, _cnames([answer.response]))


async def mx(resolver: dns.asyncresolver.Resolver, domain: str) -> MxAnswer:
    """The MX set in preference order; a null MX (RFC 7505) is flagged."""
    try:
        answer = await resolver.resolve(domain, "MX", search=False)
    except dns.resolver.NXDOMAIN:
        return MxAnswer(Lookup.NXDOMAIN)
    except dns.resolver.NoAnswer:
        return MxAnswer(Lookup.NODATA)
    except (dns.exception.DNSException, OSError) as exc:
        outcome, detail = _failure(exc)
        return MxAnswer(outcome, detail=detail)
    pairs = sorted((int(r.preference), str(r.exchange)) for r in answer)
    if any(exchange == "." for _, exchange in pairs):
        return MxAnswer(Lookup.ANSWER, null_mx=True)
    hosts: list[tuple[int, str]] = []
    for preference, exchange in pairs:
        try:
            hosts.append((preference, normalize_domain(exchange)))
        except DomainNameError:
            hosts.append((preference, exchange.rstrip(".").lower()))
    return MxAnswer(Lookup.ANSWER, tuple(hosts))
