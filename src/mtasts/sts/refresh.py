"""The cache and refresh rules of RFC 8461 §3.3 and §5.1 as pure functions of time.

Pure: no I/O, no clock. The resolver passes ``now`` (POSIX seconds) and what DNS and
HTTPS said; these functions say what to do and what to remember.

One domain's state is a :class:`CacheEntry`. Three questions are answered here:

* :func:`freshness` -- may a lookup be answered from the entry, and does it need a
  background re-check?  (:func:`answer` builds that answer.)
* :func:`decide` -- given the entry and a fresh TXT answer, what next: use the cached
  policy, fetch, no policy, keep the cached policy despite a failure, or back off.
* :func:`after_fetch_ok` / :func:`after_fetch_failed` -- the entry after a fetch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from mtasts.errors import Notice
from mtasts.results import ResultType
from mtasts.sts.lookup import LookupStatus, PolicyLookup, Source
from mtasts.sts.policy import Mode, Policy


@dataclass(frozen=True, slots=True)
class RefreshRules:
    """The timing knobs (seconds). The defaults follow RFC 8461's suggestions."""

    #: RFC 8461 §3.3: after a failed GET wait at least five minutes per policy id.
    fetch_backoff: float = 300.0
    #: Repeated failures for the same id double the wait up to this bound.
    max_fetch_backoff: float = 3600.0
    #: Re-check the TXT record of a cached policy no sooner than this, however low its TTL.
    min_recheck: float = 60.0
    #: ... and no later than this, however high its TTL (a new id is noticed this fast).
    max_recheck: float = 3600.0
    #: Upper bound on negative caching ("no policy"); the DNS TTL bounds it first.
    max_negative: float = 3600.0
    #: After a DNS failure (SERVFAIL, timeout) with a cached policy, try again this soon.
    dns_retry: float = 60.0
    #: RFC 8461 §3.3 suggests refreshing cached policies about daily: a policy is refetched
    #: once it is this old, or half its max_age old, whichever comes first.
    refresh_interval: float = 86400.0


DEFAULT_RULES = RefreshRules()


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """What a sender remembers about one Policy Domain.

    ``txt_id`` is the id the ``_mta-sts`` record carried at the last check (``None``: no
    usable record); ``record_id``/``policy``/``raw_text``/``fetched_at`` describe the last
    policy fetched successfully, which may be older than the record (RFC 8461 §3.3 keeps
    applying it until it expires). ``failed_id``/``failed_at``/``failures`` is the back-off
    state of the last failed fetch; ``txt_error`` says why the last TXT check found no
    usable record or failed.
    """

    domain: str
    checked_at: float
    recheck_at: float
    txt_id: str | None = None
    txt_error: Notice | None = None
    record_id: str | None = None
    policy: Policy | None = None
    raw_text: str | None = None
    fetched_at: float | None = None
    failed_id: str | None = None
    failed_at: float | None = None
    failures: int = 0
    failure: Notice | None = None
    failure_type: ResultType | None = None

    @property
    def expires_at(self) -> float | None:
        """RFC 8461 §3.2 / §5.1: a policy is valid for max_age seconds from its fetch."""
        if self.policy is None or self.fetched_at is None:
            return None
        return self.fetched_at + self.policy.max_age


def policy_valid(entry: CacheEntry, now: float) -> bool:
    """Whether the entry holds a policy that has not expired (RFC 8461 §3.2 max_age)."""
    expires = entry.expires_at
    return expires is not None and now < expires


def refresh_at(entry: CacheEntry, rules: RefreshRules = DEFAULT_RULES) -> float | None:
    """When to refetch a cached policy even if its id is unchanged (RFC 8461 §3.3, §10.2).

    RFC 8461 §3.3 says "SHOULD proactively refresh ... before they expire" and suggests
    daily; we refetch after ``min(refresh_interval, max_age / 2)`` so that a failed
    refresh still leaves time for retries (with back-off) before the policy expires.
    """
    if entry.policy is None or entry.fetched_at is None:
        return None
    return entry.fetched_at + min(rules.refresh_interval, entry.policy.max_age / 2)


def _backoff(failures: int, rules: RefreshRules) -> float:
    # RFC 8461 §3.3: "at least five minutes"; doubling per consecutive failure, capped.
    doubled: float = rules.fetch_backoff * 2.0 ** max(failures - 1, 0)
    return min(doubled, rules.max_fetch_backoff)


def backoff_until(entry: CacheEntry, rules: RefreshRules = DEFAULT_RULES) -> float | None:
    """Until when no GET may be sent for ``entry.failed_id`` (RFC 8461 §3.3)."""
    if entry.failed_at is None:
        return None
    return entry.failed_at + _backoff(entry.failures, rules)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(value, high))


# --- answering from the cache --------------------------------------------------------


class Freshness(StrEnum):
    """How a lookup may use a cached entry."""

    MISS = "miss"  # no usable answer: resolve now (the caller waits)
    FRESH = "fresh"  # answer from the cache, nothing to do
    STALE = "stale"  # answer from the cache at once, re-check in the background


def freshness(
    entry: CacheEntry | None, now: float, rules: RefreshRules = DEFAULT_RULES
) -> Freshness:
    """Classify a cached entry at ``now``.

    An unexpired policy is always usable (RFC 8461 §5.1 step 1): past its TXT re-check
    time or its proactive refresh time it is served and re-checked in the background.
    A "no policy" or "fetch failed" answer is usable only until its re-check time (which
    the DNS TTL bounds); after that the lookup re-checks DNS before answering.
    """
    if entry is None:
        return Freshness.MISS
    if policy_valid(entry, now):
        if now >= entry.recheck_at or _refresh_due(entry, now, rules):
            return Freshness.STALE
        return Freshness.FRESH
    if now < entry.recheck_at and answer(entry, now) is not None:
        return Freshness.FRESH
    return Freshness.MISS


def fresh_until(entry: CacheEntry, now: float, rules: RefreshRules = DEFAULT_RULES) -> float:
    """Until when a lookup may reuse the answer the entry gives at ``now`` unchanged.

    For every ``t`` in ``[now, fresh_until(entry, now))``, ``freshness(entry, t)`` is
    FRESH and ``answer(entry, t) == answer(entry, now)``: the resolver keeps the answer
    it built at ``now`` (a :class:`PolicyLookup`) and hands it out again until then,
    instead of re-deriving it per lookup. The bound is the first of the TXT re-check
    (``recheck_at``: a new policy id is noticed), the policy's expiry (RFC 8461 §3.2
    ``max_age``) and the proactive refresh (or the end of its back-off). ``now`` itself
    when the entry is not FRESH at ``now`` (nothing may be reused).
    """
    if freshness(entry, now, rules) is not Freshness.FRESH:
        return now
    expires = entry.expires_at
    if expires is None or now >= expires:
        return entry.recheck_at  # no valid policy: "no policy" / "failed" until re-check
    ends = min(entry.recheck_at, expires)
    due = refresh_at(entry, rules)
    if due is not None:
        if now < due:
            ends = min(ends, due)
        else:  # FRESH past the refresh time: only inside the back-off of a failed refresh
            until = backoff_until(entry, rules)
            assert until is not None
            ends = min(ends, until)
    return ends


def _refresh_due(entry: CacheEntry, now: float, rules: RefreshRules) -> bool:
    due = refresh_at(entry, rules)
    if due is None or now < due:
        return False
    until = backoff_until(entry, rules) if entry.failed_id == entry.record_id else None
    return until is None or now >= until


def answer(entry: CacheEntry, now: float, source: Source = Source.CACHE) -> PolicyLookup | None:
    """The lookup result the entry gives at ``now``, or ``None`` if it gives none."""
    base = PolicyLookup(domain=entry.domain, status=LookupStatus.UNDETERMINED, source=source)
    if policy_valid(entry, now):
        return policy_answer(entry, source)
    if entry.txt_id is None and _dns_failure(entry.txt_error):
        return None  # the last check learned nothing: a DNS failure is not "no policy"
    if entry.txt_id is None:
        return replace(
            base,
            status=LookupStatus.NO_POLICY,
            detail=f"no MTA-STS policy: {_words(entry.txt_error)}",
            cause=entry.txt_error,
        )
    if entry.failed_id == entry.txt_id and entry.failure is not None:
        return replace(
            base,
            status=LookupStatus.FAILED,
            record_id=entry.txt_id,
            result_type=entry.failure_type,
            detail=(
                f"the domain publishes MTA-STS record id {entry.txt_id} but its policy "
                f"cannot be used: {entry.failure.message}; deliver as if it had no policy "
                "(RFC 8461 §3.3)"
            ),
            cause=entry.failure,
        )
    return None


def policy_answer(entry: CacheEntry, source: Source = Source.CACHE) -> PolicyLookup:
    """The STS answer for the entry's policy, whether or not it is still valid.

    The resolver uses it for a policy it has just fetched: even with ``max_age: 0`` that
    policy applies to the lookup that fetched it (it is never reused afterwards).
    """
    assert entry.policy is not None
    base = PolicyLookup(domain=entry.domain, status=LookupStatus.UNDETERMINED, source=source)
    failed_since_fetch = (
        entry.failed_at is not None
        and entry.fetched_at is not None
        and entry.failed_at >= entry.fetched_at
    )
    detail = f"policy id {entry.record_id}, mode {entry.policy.mode}"
    cause: Notice | None = None
    refresh_error: ResultType | None = None
    if failed_since_fetch:
        cause = entry.failure
        refresh_error = entry.failure_type
        detail += f"; the last refresh failed ({_words(entry.failure)}), cached policy applies"
    elif entry.txt_id is None:
        cause = entry.txt_error
        detail += (
            f"; no usable _mta-sts record now ({_words(entry.txt_error)}), "
            "the cached policy applies until it expires (RFC 8461 §3.1, §5.1)"
        )
    elif entry.txt_error is not None:
        cause = entry.txt_error
        detail += f"; the last DNS check failed ({_words(entry.txt_error)})"
    return replace(
        base,
        status=LookupStatus.STS,
        policy=entry.policy,
        record_id=entry.record_id,
        raw_text=entry.raw_text,
        refresh_error=refresh_error,
        detail=detail,
        cause=cause,
        fetched_at=entry.fetched_at,
        expires_at=entry.expires_at,
    )


def _dns_failure(notice: Notice | None) -> bool:
    return notice is not None and notice.code.startswith("dns.")


def _words(notice: Notice | None) -> str:
    return notice.message if notice is not None else "no _mta-sts TXT record"


# --- what DNS said, and what to do next ------------------------------------------------


class TxtKind(StrEnum):
    RECORD = "record"  # exactly one valid STSv1 record
    NONE = "none"  # NXDOMAIN, no TXT, no STSv1 record, several, or an invalid one
    ERROR = "error"  # SERVFAIL, timeout, refused: nothing learned


@dataclass(frozen=True, slots=True)
class TxtOutcome:
    """The result of one ``_mta-sts`` TXT lookup (RFC 8461 §3.1)."""

    kind: TxtKind
    record_id: str | None = None
    ttl: float = 0.0
    notice: Notice | None = None


class Action(StrEnum):
    USE_CACHED = "use-cached"  # the record id equals the cached policy's: no fetch (§3 ¶2)
    FETCH = "fetch"  # new id, nothing cached, expiry, or proactive refresh
    NO_POLICY = "no-policy"  # no usable record and no unexpired cached policy
    KEEP_CACHED = "keep-cached"  # no live record or DNS failure, cached policy applies
    BACK_OFF = "back-off"  # the last GET for this id failed too recently (§3.3)
    UNDETERMINED = "undetermined"  # DNS failed and nothing usable is cached


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do, and the entry to store now (``None``: store nothing)."""

    action: Action
    entry: CacheEntry | None
    reason: str


def decide(
    entry: CacheEntry | None,
    txt: TxtOutcome,
    now: float,
    *,
    domain: str,
    rules: RefreshRules = DEFAULT_RULES,
) -> Decision:
    """The refresh decision of RFC 8461 §3.3 / §5.1 for one TXT answer."""
    valid = entry is not None and policy_valid(entry, now)
    if txt.kind is TxtKind.ERROR:
        if entry is not None and valid:
            # RFC 8461 §3.3: a non-expired cached policy applies when discovery fails.
            recheck = now + rules.dns_retry
            kept = replace(entry, checked_at=now, recheck_at=recheck, txt_error=txt.notice)
            return Decision(Action.KEEP_CACHED, kept, "DNS failed; cached policy applies")
        # Nothing usable: say so; remember nothing (a DNS failure is not "no policy").
        return Decision(Action.UNDETERMINED, None, "DNS failed and nothing is cached")

    if txt.kind is TxtKind.NONE:
        recheck = now + _clamp(txt.ttl, 0.0, rules.max_negative)
        if entry is not None and valid:
            # RFC 8461 §3.1 / §5.1: a missing or invalid record does not evict a cached
            # policy; it applies until max_age runs out (checklist STS-3.1-h, E-11).
            recheck = now + _clamp(txt.ttl, rules.min_recheck, rules.max_recheck)
            kept = replace(
                entry, checked_at=now, recheck_at=recheck, txt_id=None, txt_error=txt.notice
            )
            return Decision(Action.KEEP_CACHED, kept, "no live record; cached policy applies")
        # Negative caching, bounded by the DNS TTL of the answer.
        negative = CacheEntry(
            domain=domain, checked_at=now, recheck_at=recheck, txt_error=txt.notice
        )
        return Decision(Action.NO_POLICY, negative, "no usable _mta-sts record")

    record_id = txt.record_id
    assert record_id is not None
    recheck = now + _clamp(txt.ttl, rules.min_recheck, rules.max_recheck)
    base = entry or CacheEntry(domain=domain, checked_at=now, recheck_at=recheck)
    seen = replace(base, checked_at=now, recheck_at=recheck, txt_id=record_id, txt_error=None)
    if entry is not None and valid and entry.record_id == record_id:
        due = refresh_at(entry, rules)
        if due is None or now < due:
            # RFC 8461 §3 ¶2: the id is unchanged, so the cached policy is current.
            return Decision(Action.USE_CACHED, seen, "record id unchanged")
    if entry is not None and entry.failed_id == record_id:
        until = backoff_until(entry, rules)
        if until is not None and now < until:
            # RFC 8461 §3.3: no new GET for the same id within the back-off.
            held = replace(seen, recheck_at=min(recheck, until))
            return Decision(Action.BACK_OFF, held, "last fetch for this id failed recently")
    if entry is not None and valid and entry.record_id == record_id:
        return Decision(Action.FETCH, seen, "proactive refresh of an unchanged policy")
    if entry is not None and entry.record_id == record_id:
        return Decision(Action.FETCH, seen, "cached policy expired (max_age)")
    return Decision(Action.FETCH, seen, f"new record id {record_id}")


def after_fetch_ok(
    entry: CacheEntry, record_id: str, policy: Policy, raw_text: str, now: float
) -> CacheEntry:
    """The entry after a successful fetch: the new policy replaces the old at once."""
    return replace(
        entry,
        record_id=record_id,
        txt_id=record_id,
        policy=policy,
        raw_text=raw_text,
        fetched_at=now,
        failed_id=None,
        failed_at=None,
        failures=0,
        failure=None,
        failure_type=None,
    )


def after_fetch_failed(
    entry: CacheEntry,
    record_id: str,
    failure: Notice,
    failure_type: ResultType | None,
    now: float,
    rules: RefreshRules = DEFAULT_RULES,
) -> CacheEntry:
    """The entry after a failed fetch: back-off state set, cached policy kept (§3.3)."""
    failures = entry.failures + 1 if entry.failed_id == record_id else 1
    updated = replace(
        entry,
        failed_id=record_id,
        failed_at=now,
        failures=failures,
        failure=failure,
        failure_type=failure_type,
    )
    # Re-check DNS when the back-off ends at the latest: a new id may be fetched at once.
    return replace(updated, recheck_at=min(updated.recheck_at, now + _backoff(failures, rules)))


def alert_worthy(entry: CacheEntry) -> bool:
    """RFC 8461 §3.3 / §10.2: alert on a failed refresh unless the cached mode is none."""
    return entry.policy is not None and entry.policy.mode is not Mode.NONE
