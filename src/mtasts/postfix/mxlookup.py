"""The daemon's own MX lookups: cached for the DNS TTL, one query in flight per domain.

The ``secure`` answer names the current MX hosts exactly (:mod:`mtasts.postfix.mxpolicy`),
so the daemon needs each enforce domain's MX RRset. It asks the same resolver as the
policy lookups (``nameserver``, ``timeouts.dns``), with the DO bit so the AD bit of a
validating resolver tells DANE detection (:mod:`mtasts.postfix.dane`) whether the RRset
is DNSSEC-validated; both share this cache.

A cached MX set is served without suspending (the daemon's hot path takes it eagerly).
When the domain's MX set changes, Postfix may see the new set before we do: a new host
is then not in ``match=`` and Postfix defers (fail closed) until the cached set
expires, at most its TTL (capped at :data:`MAX_TTL`) later, when the next lookup sees
the new set (recovers by itself).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.rdatatype
import dns.resolver

from mtasts.clock import Clock, monotonic
from mtasts.net.dns import DEFAULT_NEGATIVE_TTL, resolver_for
from mtasts.postfix.mxpolicy import MxSet, exact_match_names
from mtasts.postfix.socketmap import LookupLike, PolicyLike
from mtasts.sts.lookup import LookupStatus
from mtasts.sts.policy import Mode

log = logging.getLogger("mtasts.daemon")

#: bounds on reusing an MX answer (seconds): the DNS TTL decides in between. The cap
#: bounds how long a changed MX set can be refused; a failed lookup is retried after
#: FAILED_TTL (meanwhile only the policy's exact names are rendered)
MIN_TTL = 5
MAX_TTL = 3600
FAILED_TTL = 10
#: domains kept; beyond this, expired entries are dropped (then all, if none expired)
MAX_ENTRIES = 100_000


def validating_resolver(
    nameserver: tuple[str, int] | None, timeout: float
) -> dns.asyncresolver.Resolver:
    """The policy resolver's settings, asking for DNSSEC status (RFC 6840 §5.7, §5.8)."""
    resolver = resolver_for(nameserver, timeout)
    resolver.flags = dns.flags.RD | dns.flags.AD
    resolver.use_edns(0, dns.flags.DO, 1232)
    return resolver


def negative_ttl(exc: dns.exception.DNSException) -> int:
    """RFC 2308 §5: min(SOA TTL, SOA MINIMUM) of a negative answer's authority section."""
    response: object = None
    if isinstance(exc, dns.resolver.NXDOMAIN):
        responses = list(exc.responses().values())  # type: ignore[no-untyped-call]
        response = responses[0] if responses else None
    elif isinstance(exc, dns.resolver.NoAnswer):
        response = exc.response()  # type: ignore[no-untyped-call]
    if isinstance(response, dns.message.Message):
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(min(rrset.ttl, min(rdata.minimum for rdata in rrset)))
    return DEFAULT_NEGATIVE_TTL


class MxCache:
    """``await cache.get(domain) -> MxSet``, cached for the DNS TTL, single flight."""

    def __init__(
        self,
        resolver: dns.asyncresolver.Resolver,
        *,
        clock: Clock = monotonic,
    ) -> None:
        self.resolver = resolver
        self._clock = clock
        self._entries: dict[str, tuple[float, MxSet, int]] = {}
        self._flights: dict[str, asyncio.Task[tuple[MxSet, int]]] = {}

    @classmethod
    def for_nameserver(cls, nameserver: tuple[str, int] | None, timeout: float) -> MxCache:
        return cls(validating_resolver(nameserver, timeout))

    async def get(self, domain: str) -> MxSet:
        return (await self.get_with_ttl(domain))[0]

    def peek(self, domain: str) -> tuple[MxSet, float] | None:
        """(the cached MX set, seconds it stays fresh) without I/O, or None."""
        hit = self._entries.get(domain)
        if hit is not None:
            left = hit[0] - self._clock()
            if left > 0:
                return hit[1], left
        return None

    async def get_with_ttl(self, domain: str) -> tuple[MxSet, int]:
        """(the MX set, seconds it stays cached); no DNS and no suspension while cached.

        Concurrent misses for one domain share one query, run as its own task so a
        caller that gives up (times out) does not cancel it for the others.
        """
        hit = self._entries.get(domain)
        if hit is not None:
            now = self._clock()
            if hit[0] > now:
                return hit[1], max(0, int(hit[0] - now))
        flight = self._flights.get(domain)
        if flight is None:
            flight = asyncio.get_running_loop().create_task(self._fill(domain))
            self._flights[domain] = flight
        return await asyncio.shield(flight)

    async def _fill(self, domain: str) -> tuple[MxSet, int]:
        try:
            mx, ttl = await self.query(domain)
        except Exception as exc:  # never leave a failed task nobody awaits
            mx, ttl = MxSet(error=type(exc).__name__), FAILED_TTL
        finally:
            self._flights.pop(domain, None)
        self._store(domain, mx, ttl)
        return mx, ttl

    def forget(self, domain: str | None = None) -> None:
        if domain is None:
            self._entries.clear()
        else:
            self._entries.pop(domain, None)

    def _store(self, domain: str, mx: MxSet, ttl: int) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            now = self._clock()
            for key in [k for k, v in self._entries.items() if v[0] <= now]:
                del self._entries[key]
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
        self._entries[domain] = (self._clock() + ttl, mx, ttl)

    async def query(self, domain: str) -> tuple[MxSet, int]:
        """One MX lookup: (MX set, TTL to cache it) -- never raises for DNS failures."""
        try:
            answer = await self.resolver.resolve(domain, "MX", search=False)
        except dns.resolver.NXDOMAIN as exc:
            return MxSet(validated=_ad(exc)), _bounded(negative_ttl(exc))
        except dns.resolver.NoAnswer as exc:
            # no MX RRset: the domain itself is the MX host (RFC 5321 §5.1)
            return MxSet((domain,), validated=_ad(exc)), _bounded(negative_ttl(exc))
        except (dns.exception.DNSException, OSError) as exc:
            reason = type(exc).__name__
            return MxSet(error=reason), FAILED_TTL
        ranked = sorted(
            (r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in answer
        )
        # a null MX (RFC 7505: one record, exchange ".") names no host
        hosts = tuple(dict.fromkeys(h for _, h in ranked if h not in ("", ".")))
        validated = bool(answer.response.flags & dns.flags.AD)
        ttl = answer.rrset.ttl if answer.rrset is not None else MIN_TTL
        return MxSet(hosts, validated=validated), _bounded(ttl)


def _bounded(ttl: int) -> int:
    return max(MIN_TTL, min(int(ttl), MAX_TTL))


def _ad(exc: dns.exception.DNSException) -> bool:
    response: object = None
    if isinstance(exc, dns.resolver.NoAnswer):
        response = exc.response()  # type: ignore[no-untyped-call]
    if isinstance(response, dns.message.Message):
        return bool(response.flags & dns.flags.AD)
    return False


# --- the policy source the daemon serves from -----------------------------------------------


@dataclass(frozen=True, slots=True)
class MxLookup:
    """A resolver lookup plus the domain's current MX set (``current_mx``), which
    :func:`mtasts.postfix.socketmap.render` turns into exact ``match=`` names."""

    lookup: LookupLike
    current_mx: MxSet | None
    #: ``exact_match_names(policy.mx, current_mx)[0]``, computed once per policy and MX set
    exact_names: tuple[str, ...] | None = None

    @property
    def domain(self) -> str:
        return self.lookup.domain

    @property
    def status(self) -> LookupStatus:
        return self.lookup.status

    @property
    def policy(self) -> PolicyLike | None:
        return self.lookup.policy

    @property
    def source(self) -> object:
        return getattr(self.lookup, "source", "cache")

    @property
    def result_type(self) -> object:
        return getattr(self.lookup, "result_type", None)

    @property
    def refresh_error(self) -> object:
        return getattr(self.lookup, "refresh_error", None)

    def __getattr__(self, name: str) -> object:
        # anything else the resolver's lookup carries (e.g. ``cause``, read by the
        # failure counter) reads through, so wrapping it hides nothing
        return getattr(self.lookup, name)


class PolicySourceLike(Protocol):
    """The resolver's ``lookup`` (:class:`mtasts.sts.resolver.Resolver`)."""

    async def lookup(self, domain: str) -> LookupLike: ...


class MxAwareSource:
    """The resolver, with the current MX set attached to every policy that may be enforced.

    Policies in mode ``none`` and domains without a policy need no MX lookup. When the
    policy names none of the current MX hosts, the reason is logged once per MX answer.

    Domains come from the daemon in canonical form: a source with ``lookup_name``
    (the resolver) is asked through it, so the name is not normalised again, and one
    with ``peek`` (no I/O) lets :meth:`peek` answer synchronously.
    """

    def __init__(self, source: PolicySourceLike, mx: MxCache) -> None:
        self.source = source
        self.mx = mx
        self._lookup_name = getattr(source, "lookup_name", source.lookup)
        self._peek_for: Callable[[str], tuple[LookupLike, float, object] | None] | None = getattr(
            source, "peek_for", None
        )
        #: the source's current cache entry of a domain (see :meth:`peek`)
        self.current: Callable[[str], object] | None = getattr(source, "current_entry", None)
        self._warned: dict[str, tuple[tuple[str, ...], str]] = {}
        #: domain -> (resolver lookup, MX set, the MxLookup built from both): rebuilt
        #: only when the resolver or the MX cache hands out another object (hot path:
        #: two ``is`` checks, and the same MxLookup object lets the renderer reuse its
        #: reply)
        self._names: dict[str, tuple[object, MxSet, MxLookup]] = {}

    async def lookup(self, domain: str) -> LookupLike:
        lookup = await self._lookup_name(domain)
        if not _needs_mx(lookup):
            return lookup
        return self._attach(domain, lookup, await self.mx.get(domain))

    def peek(self, domain: str) -> tuple[LookupLike, float, object] | None:
        """:meth:`lookup` from what is cached (no I/O), or None if anything is missing.

        With it: how many seconds this very answer object holds (the shortest of the
        resolver's and the MX set's), and the cache entry it rests on -- the answer also
        ends when :attr:`current` no longer returns that entry (a new policy stored, a
        purge, an eviction).
        """
        if self._peek_for is None:
            return None
        got = self._peek_for(domain)
        if got is None:
            return None
        lookup, valid, token = got
        if not _needs_mx(lookup):
            return got
        hit = self.mx.peek(domain)
        if hit is None:
            return None
        return self._attach(domain, lookup, hit[0]), min(valid, hit[1]), token

    def _attach(self, domain: str, lookup: LookupLike, current: MxSet) -> MxLookup:
        memo = self._names.get(domain)
        if memo is not None and memo[0] is lookup and memo[1] is current:
            return memo[2]
        policy = lookup.policy
        assert policy is not None
        names, why = exact_match_names(policy.mx, current)
        if why and policy.mode is Mode.ENFORCE:
            self._warn(domain, current, why)
        if len(self._names) > MAX_ENTRIES:
            self._names.clear()
        attached = MxLookup(lookup, current, names)
        self._names[domain] = (lookup, current, attached)
        return attached

    def _warn(self, domain: str, current: MxSet, why: str) -> None:
        key = (current.hosts, why)
        if self._warned.get(domain) == key:
            return
        if len(self._warned) > 10_000:
            self._warned.clear()
        self._warned[domain] = key
        log.warning(
            "domain=%s: %s; exact-name answers (the default) make Postfix defer its mail "
            "until the MX set and the policy agree",
            domain,
            why,
        )


def _needs_mx(lookup: LookupLike) -> bool:
    policy = lookup.policy
    return policy is not None and lookup.status is LookupStatus.STS and policy.mode is not Mode.NONE
