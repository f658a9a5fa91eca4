"""DNS adapter: TXT and address lookups through dnspython's asyncio resolver.

I/O. Tells "the name has no such record" (NXDOMAIN, NODATA: an answer, with the negative
TTL) apart from "the lookup failed" (SERVFAIL, timeout, refused: :class:`DnsError`),
because RFC 8461 treats them differently once a policy is cached.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from mtasts.errors import DnsError

#: Negative TTL when an NXDOMAIN / NODATA answer carries no SOA (RFC 2308 §5 suggests
#: the SOA minimum; without one we cache the "no record" answer for five minutes).
DEFAULT_NEGATIVE_TTL = 300


def resolver_for(nameserver: tuple[str, int] | None, timeout: float) -> dns.asyncresolver.Resolver:
    """dnspython's stub resolver for one nameserver (host, port), or for resolv.conf.

    ``timeout`` bounds the whole lookup (``lifetime``); one try waits at most 2 s, so a
    lost UDP datagram is retried. Every mtasts DNS client starts from this one.
    """
    if nameserver is None:
        resolver = dns.asyncresolver.Resolver(configure=True)
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [nameserver[0]]
        resolver.port = nameserver[1]
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    return resolver


@dataclass(frozen=True, slots=True)
class TxtAnswer:
    """The TXT records at a name: each record's strings joined with no separator.

    ``exists`` is False for NXDOMAIN or NODATA; ``ttl`` is then the negative TTL.
    """

    name: str
    records: tuple[str, ...]
    ttl: int
    exists: bool
    nxdomain: bool = False


class DnsClient:
    """An asyncio stub resolver bound to one nameserver (host, port), or to resolv.conf."""

    def __init__(self, nameserver: tuple[str, int] | None = None, *, timeout: float = 5.0) -> None:
        self._resolver = resolver_for(nameserver, timeout)
        self.nameserver = nameserver

    async def txt(self, name: str) -> TxtAnswer:
        """The TXT RRset at ``name`` (CNAMEs followed). Raises :class:`DnsError`."""
        try:
            answer = await self._resolver.resolve(name, "TXT", search=False)
        except dns.resolver.NXDOMAIN as exc:
            return TxtAnswer(name, (), _negative_ttl(exc), exists=False, nxdomain=True)
        except dns.resolver.NoAnswer as exc:
            return TxtAnswer(name, (), _negative_ttl(exc), exists=False)
        except dns.resolver.NoNameservers as exc:
            if _cname_loop(exc):
                # a CNAME loop is no live record (checklist E-11), like NODATA; dnspython
                # reports it as a nameserver failure because the chain never ends
                return TxtAnswer(name, (), DEFAULT_NEGATIVE_TTL, exists=False)
            raise _dns_error(name, "TXT", exc) from exc
        except (dns.exception.DNSException, OSError) as exc:
            raise _dns_error(name, "TXT", exc) from exc
        records = tuple(
            b"".join(rdata.strings).decode("ascii", errors="replace") for rdata in answer
        )
        ttl = answer.rrset.ttl if answer.rrset is not None else 0
        return TxtAnswer(name, records, ttl, exists=True)

    async def addresses(self, name: str) -> tuple[str, ...]:
        """IPv4 then IPv6 addresses of ``name``; empty if it has none.

        Raises :class:`DnsError` when both lookups fail rather than answer.
        """
        found: list[str] = []
        errors: list[DnsError] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(name, rdtype, search=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except (dns.exception.DNSException, OSError) as exc:
                errors.append(_dns_error(name, rdtype, exc))
                continue
            found.extend(rdata.to_text() for rdata in answer)
        if not found and len(errors) == 2:
            raise errors[0]
        return tuple(found)


def _negative_ttl(exc: dns.exception.DNSException) -> int:
    """RFC 2308 §5: the negative TTL is min(SOA TTL, SOA MINIMUM) from the authority."""
    responses: list[dns.message.Message] = []
    if isinstance(exc, dns.resolver.NXDOMAIN):
        responses = list(exc.responses().values())  # type: ignore[no-untyped-call]
    elif isinstance(exc, dns.resolver.NoAnswer):
        response = exc.response()  # type: ignore[no-untyped-call]
        if isinstance(response, dns.message.Message):
            responses = [response]
    for response in responses:
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(min(rrset.ttl, min(rdata.minimum for rdata in rrset)))
    return DEFAULT_NEGATIVE_TTL


def _cname_loop(exc: dns.resolver.NoNameservers) -> bool:
    """Every nameserver answered, but with a CNAME chain that never ends."""
    errors = exc.kwargs.get("errors") or []
    return bool(errors) and all(isinstance(error[3], dns.message.ChainTooLong) for error in errors)


def _dns_error(name: str, rdtype: str, exc: BaseException) -> DnsError:
    if isinstance(exc, dns.resolver.LifetimeTimeout | dns.exception.Timeout):
        what, code = "timed out", "dns.timeout"
    elif isinstance(exc, dns.resolver.NoNameservers):
        what, code = "failed (SERVFAIL or refused by every nameserver)", "dns.servfail"
    else:
        what, code = f"failed: {exc}", "dns.failed"
    return DnsError(
        f"the DNS lookup of {rdtype} {name} {what}; this is a temporary failure, "
        "not an answer (check the domain's nameservers)",
        code=code,
    )
