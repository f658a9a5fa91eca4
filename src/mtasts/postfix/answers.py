"""The answers of the socketmap daemon: request payload -> wire reply, and what is kept.

A request is parsed once per distinct payload, its lookup (and DANE verdict) taken from
the :class:`PolicySource`, rendered by :func:`mtasts.postfix.socketmap.render` once per
lookup object, counted (metrics, TLS-RPT failure sessions, deferrals) and kept for reuse:
for ``answer_ttl`` seconds (by domain and by the exact request bytes), and as a snapshot
that holds while the resolver's cache entry, the MX set and the DANE verdict do.

:class:`Answers` has no sockets: :class:`mtasts.postfix.server.SocketmapServer` adds the
listeners and the connections that call :meth:`Answers.snapshot` (hot path),
:meth:`Answers.answer_now` (from memory, inside ``data_received``) and
:meth:`Answers.answer` (in the connection's task).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mtasts.clock import Clock, monotonic
from mtasts.postfix.deferrals import DeferralLog
from mtasts.postfix.eager import eager
from mtasts.postfix.metrics import Metrics
from mtasts.postfix.mxpolicy import NO_MATCH
from mtasts.postfix.netstring import DEFAULT_MAX_REQUEST, encode
from mtasts.postfix.socketmap import (
    NOTFOUND,
    LookupLike,
    Reply,
    ReplyOptions,
    SocketmapError,
    Status,
    enforced,
    parse_request,
    policy_domain_for_key,
    render,
)

log = logging.getLogger("mtasts.daemon")


class PolicySource(Protocol):
    """Anything with the resolver's ``lookup``: :class:`mtasts.sts.resolver.Resolver`."""

    async def lookup(self, domain: str) -> LookupLike: ...


#: ``async (domain, lookup) -> bool``: do the MX hosts of an enforce domain publish
#: DNSSEC-validated TLSA records? (see :mod:`mtasts.postfix.dane`)
DaneProbe = Callable[[str, LookupLike], Awaitable[bool]]


class FailureSink(Protocol):
    """Counts failed lookups as TLS-RPT sessions (``postfix.failures.PolicyFailures``)."""

    def count(self, who: int, domain: str, result_type: str, reason_code: str = "") -> bool: ...


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Daemon behaviour; every field has a ``mtasts daemon`` option."""

    zones: Mapping[str, ReplyOptions] = field(default_factory=dict)
    default_zone: ReplyOptions = field(default_factory=ReplyOptions)
    max_request: int = DEFAULT_MAX_REQUEST
    #: above the resolver's whole-fetch limit (60 s) so a slow policy host ends as a
    #: failed fetch (deliver, RFC 8461 §3.3), below Postfix's fixed 100 s
    lookup_timeout: float = 75.0
    #: close a connection idle this long (Postfix closes its own after 10 s)
    idle_timeout: float = 300.0
    #: reuse a rendered answer this long (seconds; 0 = never)
    answer_ttl: float = 1.0
    #: requests waiting on one connection before it is dropped as abusive
    max_pipeline: int = 128
    shutdown_grace: float = 10.0
    #: client connections held at once; at the cap the oldest idle one is closed to
    #: admit a new one. Lowered at start to fit the open-files limit (see
    #: :func:`mtasts.postfix.sockets.connection_cap`). Postfix opens one per smtp(8)
    #: process (default_process_limit 100), so 1,000 leaves room for several Postfix
    #: instances on one daemon.
    max_connections: int = 1000


class Answers:
    """Answers socketmap request payloads from a :class:`PolicySource` (no I/O of its own
    but the source's and the DANE probe's)."""

    def __init__(
        self,
        source: PolicySource,
        settings: ServerSettings,
        *,
        dane: DaneProbe | None = None,
        metrics: Metrics | None = None,
        failures: FailureSink | None = None,
        clock: Clock = monotonic,
    ) -> None:
        self.source = source
        #: the monotonic clock of the kept answers and the MX and DANE caches: when one ends
        self.clock = clock
        self.settings = settings
        self.dane = dane
        #: counts lookups that found a policy but could not use it (RFC 8461 §6)
        self.failures = failures
        self.metrics = metrics or Metrics()
        self._answers: dict[tuple[str, str], tuple[float, bytes]] = {}
        self._reuse = settings.answer_ttl > 0
        #: payload -> (map name, Policy Domain, zone options): see :meth:`_parse`
        self._parsed: dict[bytes, _Parsed] = {}
        #: (map name, domain) -> (lookup, dane, wire, status, deferral reason): the
        #: reply rendered for exactly that lookup object and DANE verdict
        self._rendered: dict[tuple[str, str], tuple[object, bool, bytes, Status, str]] = {}
        #: synchronous views of the source and the DANE verdicts (None: always await)
        self._peek: Callable[[str], tuple[LookupLike, float, object] | None] | None = getattr(
            source, "peek", None
        )
        self._current: Callable[[str], object] | None = getattr(source, "current", None)
        self._dane_peek: Callable[[str], tuple[bool, float] | None] | None = getattr(
            dane, "peek", None
        )
        #: payload -> (until (monotonic), domain, cache entry, wire, status, deferral
        #: reason): the last answer to exactly this payload, see :meth:`answer_now`
        self.snapshots: dict[bytes, tuple[float, str, object, bytes, Status, str]] = {}
        #: answers that defer mail, logged at info level, rate-limited per domain
        self.deferrals = DeferralLog()
        #: the same answers keyed by the request's exact bytes on the wire (hot path);
        #: emptied as a whole every ``answer_ttl`` seconds, so a hit needs no clock
        self.raw_answers: dict[bytes, bytes] = {}
        self._raw_flush: asyncio.TimerHandle | None = None

    def zone(self, name: str) -> ReplyOptions:
        """Reply options for a socketmap name; unknown names get the default zone."""
        return self.settings.zones.get(name, self.settings.default_zone)

    def _parse(self, payload: bytes) -> _Parsed:
        """(map name, Policy Domain or None, the zone's options) of a request payload.

        Parsed and normalised once per distinct payload: Postfix asks about the same
        domains again and again. Raises SocketmapError for a malformed payload.
        """
        parsed = self._parsed.get(payload)
        if parsed is None:
            request = parse_request(payload)
            parsed = (request.name, policy_domain_for_key(request.key), self.zone(request.name))
            if len(self._parsed) >= _PARSED_SIZE:
                self._parsed.clear()
            self._parsed[payload] = parsed
        return parsed

    def answer_now(self, payload: bytes, who: int = 0) -> bytes | None:
        """The wire reply if it can be given from memory, without awaiting anything.

        Called inside ``data_received`` when the request's snapshot (:meth:`snapshot`)
        does not hold: the answer from the cached parts (:meth:`MxAwareSource.peek`, the
        DANE verdict), rendered once per lookup object, and a new snapshot of it. None
        when anything is missing (a cache miss, a backend read, an expired MX set):
        :meth:`answer` then runs in the connection's task.
        """
        try:
            name, domain, options = self._parse(payload)
        except SocketmapError:
            return None  # answer() says why
        if domain is None:
            self.metrics.count_answer("notfound-key", 0.0)
            return _NOTFOUND_WIRE
        if self._reuse:
            hit = self._answers.get((name, domain))
            if hit is not None and hit[0] > self.clock():
                self.metrics.count_answer("answer-cache", 0.0)
                return hit[1]
        peek = self._peek
        if peek is None:
            return None
        got = peek(domain)
        if got is None:
            return None
        lookup, valid, token = got
        dane = False
        if self.dane is not None and enforced(lookup, options):
            verdict = self._dane_peek(domain) if self._dane_peek is not None else None
            if verdict is None:
                return None
            dane, valid = verdict[0], min(valid, verdict[1])
        wire = self._finish(payload, name, domain, options, lookup, dane, who, None)
        self._snapshot(payload, domain, lookup, token, valid, wire)
        return wire

    def _snapshot(
        self, payload: bytes, domain: str, lookup: LookupLike, token: object, valid: float,
        wire: bytes,
    ) -> None:  # fmt: skip
        """Keep ``wire`` for ``payload`` for ``valid`` seconds while ``token`` is current.

        Not for answers whose every request must reach the TLS-RPT failure counter. The
        resolver marked the domain in use
        when it built the answer, at least hourly for a domain still asked (its answers
        hold until the TXT re-check, at most an hour), well within the 7 days after
        which an unused domain is no longer refreshed.
        """
        if valid <= 0 or self._current is None:
            return
        if getattr(lookup, "result_type", None) is not None:
            return
        if getattr(lookup, "refresh_error", None) is not None:
            return
        memo = self._rendered.get(_key_of(self._parsed[payload]))
        if memo is None or memo[2] is not wire:
            return
        if len(self.snapshots) >= _PARSED_SIZE:
            self.snapshots.clear()
        until = self.clock() + valid
        self.snapshots[encode(payload)] = (until, domain, token, wire, memo[3], memo[4])

    def snapshot(self, request: bytes) -> bytes | None:
        """The hot path: the reply kept for this framed request (exactly these bytes on
        the wire), if it still holds -- the resolver's cache entry is the same object (no
        new policy id stored, no purge, no eviction) and none of the resolver's answer,
        the MX set and the DANE verdict has reached the end of its validity."""
        snap = self.snapshots.get(request)
        if snap is None:
            return None
        current = self._current
        assert current is not None  # snapshots are only taken with it
        if snap[0] > self.clock() and current(snap[1]) is snap[2]:
            self.metrics.memory_answers[snap[4]] += 1
            if snap[5]:
                self.deferrals.note(snap[1], snap[5])
            return snap[3]
        del self.snapshots[request]
        return None

    async def answer(self, payload: bytes, who: int = 0) -> bytes:
        """The wire reply for one request payload (``who``: the asking connection)."""
        started = time.perf_counter()
        try:
            name, domain, options = self._parse(payload)
        except SocketmapError as exc:
            self.metrics.count_answer("bad-request", 0.0)
            log.warning("bad socketmap request: %s", exc)
            return Reply(Status.PERM, "malformed socketmap request").encode()
        if domain is None:
            self.metrics.count_answer("notfound-key", 0.0)
            return _NOTFOUND_WIRE
        if self._reuse:
            hit = self._answers.get((name, domain))
            if hit is not None and hit[0] > self.clock():
                self.metrics.count_answer("answer-cache", 0.0)
                return hit[1]
        try:
            lookup, dane = await self._lookup(domain, options)
        except TimeoutError:
            self.metrics.count_answer("timeout", time.perf_counter() - started)
            log.warning(
                "lookup domain=%s timed out after %.0fs", domain, self.settings.lookup_timeout
            )
            self.deferrals.note(domain, "the policy lookup timed out (TIMEOUT)")
            return Reply(Status.TIMEOUT, "MTA-STS policy lookup timed out").encode()
        except Exception:  # a broken backend must defer mail, never downgrade it
            self.metrics.count_answer("error", time.perf_counter() - started)
            log.exception("lookup domain=%s failed", domain)
            self.deferrals.note(domain, "the policy lookup failed (TEMP); see the error above")
            return Reply(Status.TEMP, "MTA-STS policy lookup failed; see the daemon log").encode()
        return self._finish(payload, name, domain, options, lookup, dane, who, started)

    def _finish(
        self,
        payload: bytes,
        name: str,
        domain: str,
        options: ReplyOptions,
        lookup: LookupLike,
        dane: bool,
        who: int,
        started: float | None,
    ) -> bytes:
        """Count, render (or reuse the rendering for the same lookup object) and remember.

        ``started``: when the lookup began (timed into the latency histogram); None for
        an answer given from memory, counted by plain counters folded in at scrape.
        """
        result_type = getattr(lookup, "result_type", None)
        refresh_error = getattr(lookup, "refresh_error", None)
        memo = self._rendered.get((name, domain))
        if memo is not None and memo[0] is lookup and memo[1] is dane:
            wire, status, defers = memo[2], memo[3], memo[4]
        else:
            reply = render(lookup, options, dane=dane)
            wire, status = reply.encode(), reply.status
            defers = _defer_reason(reply)
            if len(self._rendered) >= _RENDERED_SIZE:
                self._rendered.clear()
            self._rendered[(name, domain)] = (lookup, dane, wire, status, defers)
        if started is None and result_type is None and refresh_error is None:
            self.metrics.memory_answers[status] += 1
        else:
            self.metrics.count_lookup(
                str(getattr(lookup, "source", "cache")),
                _optional_str(result_type),
                _optional_str(refresh_error),
            )
            self.metrics.count_answer(
                status.lower(), time.perf_counter() - started if started is not None else 0.0
            )
        reusable = self._reuse
        if result_type is not None and self.failures is not None:
            # RFC 8461 §6: a policy that exists but cannot be used is reported. Each
            # request must reach the counter, so such answers are not reused.
            cause = getattr(lookup, "cause", None)
            self.failures.count(who, domain, str(result_type), str(getattr(cause, "code", "")))
            reusable = False
        if defers:
            self.deferrals.note(domain, defers)
        if reusable and status in (Status.OK, Status.NOTFOUND):
            expires = self.clock() + self.settings.answer_ttl
            self._answers[(name, domain)] = (expires, wire)
            self.raw_answers[encode(payload)] = wire
            if self._raw_flush is None:
                self._raw_flush = asyncio.get_running_loop().call_later(
                    self.settings.answer_ttl, self._flush_raw
                )
            if len(self._answers) > 100_000:
                self._prune_answers()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("lookup map=%s domain=%s -> %s", name, domain, wire.decode(errors="replace"))
        return wire

    async def _lookup(self, domain: str, options: ReplyOptions) -> tuple[LookupLike, bool]:
        """The lookup (and DANE verdict), bounded by ``lookup_timeout``.

        A cached answer completes without ever suspending; it is taken eagerly, so the
        common case pays for no timer. Only a lookup that has to wait runs under
        ``asyncio.timeout``.
        """
        lookup = await eager(self.source.lookup(domain), self.settings.lookup_timeout)
        dane = False
        if self.dane is not None and enforced(lookup, options):
            dane = await eager(self.dane(domain, lookup), self.settings.lookup_timeout)
        return lookup, dane

    def forget(self, domain: str | None = None) -> None:
        """Drop rendered answers (all, or one domain's) so the next request asks the source."""
        self.snapshots.clear()
        if domain is None:
            self._answers.clear()
            self.raw_answers.clear()
            self._rendered.clear()
        else:
            for k in [k for k in self._answers if k[1] == domain]:
                del self._answers[k]
            for k in [k for k in self._rendered if k[1] == domain]:
                del self._rendered[k]
            self.raw_answers.clear()  # lives at most answer_ttl anyway

    def _prune_answers(self) -> None:
        now = self.clock()
        for k in [k for k, (exp, _) in self._answers.items() if exp <= now]:
            del self._answers[k]

    def _flush_raw(self) -> None:
        self.raw_answers.clear()
        self._raw_flush = None

    def _stop_flushing(self) -> None:
        if self._raw_flush is not None:
            self._raw_flush.cancel()
            self._raw_flush = None


_NOTFOUND_WIRE = NOTFOUND.encode()
#: bounds of the per-payload parse memo and the per-domain rendering memo
_PARSED_SIZE = 100_000
_RENDERED_SIZE = 200_000

_Parsed = tuple[str, str | None, ReplyOptions]


def _key_of(parsed: _Parsed) -> tuple[str, str]:
    assert parsed[1] is not None
    return parsed[0], parsed[1]


def _defer_reason(reply: Reply) -> str:
    """Why Postfix will defer mail on this reply ("" if it will not)."""
    if reply.status in (Status.TEMP, Status.TIMEOUT):
        return f"{reply.data} ({reply.status})"
    if reply.status is Status.OK and f"match={NO_MATCH}" in reply.data:
        return (
            "the enforce policy names none of the current MX hosts "
            f"(match={NO_MATCH}); Postfix defers until they agree"
        )
    return ""


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
