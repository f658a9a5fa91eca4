"""The pure refresh rules of RFC 8461 §3.3 / §5.1: decisions as a function of time."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import Notice
from mtasts.results import ResultType
from mtasts.sts.lookup import LookupStatus, Source
from mtasts.sts.policy import parse_policy
from mtasts.sts.refresh import (
    DEFAULT_RULES,
    Action,
    CacheEntry,
    Freshness,
    TxtKind,
    TxtOutcome,
    after_fetch_failed,
    after_fetch_ok,
    alert_worthy,
    answer,
    backoff_until,
    decide,
    fresh_until,
    freshness,
    policy_answer,
    refresh_at,
)

DAY = 86400.0
T0 = 1_700_000_000.0
ENFORCE = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 604800\n"
NONE_POLICY = "version: STSv1\nmode: none\nmax_age: 86400\n"
FETCH_FAILED = Notice("fetch.status", "GET ... answered HTTP 500")
DNS_FAILED = Notice("dns.servfail", "SERVFAIL")
ABSENT = Notice("sts-record.absent", "_mta-sts.example.com does not exist (NXDOMAIN)")


def record(record_id: str, ttl: float = 300) -> TxtOutcome:
    return TxtOutcome(TxtKind.RECORD, record_id=record_id, ttl=ttl)


NO_RECORD = TxtOutcome(TxtKind.NONE, ttl=600, notice=ABSENT)
DNS_ERROR = TxtOutcome(TxtKind.ERROR, notice=DNS_FAILED)


def cached(
    record_id: str = "A", text: str = ENFORCE, fetched_at: float = T0, checked_at: float = T0
) -> CacheEntry:
    """An entry holding a policy fetched at ``fetched_at`` under ``record_id``."""
    seen = CacheEntry(
        domain="example.com", checked_at=checked_at, recheck_at=checked_at + 300, txt_id=record_id
    )
    entry = after_fetch_ok(seen, record_id, parse_policy(text), text, fetched_at)
    return replace(entry, checked_at=checked_at, recheck_at=checked_at + 300)


def failed(entry: CacheEntry, record_id: str, at: float) -> CacheEntry:
    return after_fetch_failed(
        replace(entry, txt_id=record_id), record_id, FETCH_FAILED,
        ResultType.STS_POLICY_FETCH_ERROR, at,
    )  # fmt: skip


# (name, cached entry, TXT outcome, now, expected action) -- the decision table.
DECISIONS = [
    ("nothing cached, record found -> fetch", None, record("A"), T0, Action.FETCH),
    ("nothing cached, no record -> no policy", None, NO_RECORD, T0, Action.NO_POLICY),
    ("nothing cached, DNS failure -> undetermined", None, DNS_ERROR, T0, Action.UNDETERMINED),
    # STS-3-a: same id, policy fresh -> no HTTPS fetch.
    ("same id, fresh -> use cached", cached("A"), record("A"), T0 + 3600, Action.USE_CACHED),
    # STS-3.1-c: a different id (even a lexically "older" one) -> fetch.
    ("new id -> fetch", cached("A"), record("B"), T0 + 60, Action.FETCH),
    ("older-looking id -> fetch", cached("20200101"), record("20190101"), T0, Action.FETCH),
    # STS-3.2-g: max_age expired, id unchanged -> fetch (pmsr and mox extend instead).
    ("same id, max_age elapsed -> fetch", cached("A"), record("A"), T0 + 7 * DAY, Action.FETCH),
    # STS-3.3-o: proactive refresh of an unchanged policy once a day.
    ("same id, a day old -> refetch", cached("A"), record("A"), T0 + DAY, Action.FETCH),
    # STS-3.1-h / E-11: TXT gone or DNS failing with a fresh policy -> keep it.
    ("TXT removed, fresh policy -> keep", cached("A"), NO_RECORD, T0 + 60, Action.KEEP_CACHED),
    ("SERVFAIL, fresh policy -> keep", cached("A"), DNS_ERROR, T0 + 60, Action.KEEP_CACHED),
    # E-28: max_age elapsed and TXT removed -> no policy.
    ("TXT removed, expired -> no policy", cached("A"), NO_RECORD, T0 + 8 * DAY, Action.NO_POLICY),
    ("SERVFAIL, expired -> undetermined", cached("A"), DNS_ERROR, T0 + 8 * DAY,
     Action.UNDETERMINED),
    # STS-3.3-j: no GET for the same id within five minutes of a failure...
    ("failed 60 s ago, same id -> back off", failed(cached("A"), "B", T0 + 100), record("B"),
     T0 + 160, Action.BACK_OFF),
    ("failed 299 s ago, same id -> back off", failed(cached("A"), "B", T0 + 100), record("B"),
     T0 + 399, Action.BACK_OFF),
    ("failed 300 s ago, same id -> fetch", failed(cached("A"), "B", T0 + 100), record("B"),
     T0 + 400, Action.FETCH),
    # ... but a new id may be fetched at once.
    ("failed for B, now C -> fetch", failed(cached("A"), "B", T0 + 100), record("C"),
     T0 + 160, Action.FETCH),
    ("failed, nothing cached -> back off",
     failed(CacheEntry("example.com", T0, T0), "B", T0), record("B"), T0 + 10, Action.BACK_OFF),
]  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "txt", "now", "action"),
    [pytest.param(e, t, n, a, id=name) for name, e, t, n, a in DECISIONS],
)
def test_decision_table(
    entry: CacheEntry | None, txt: TxtOutcome, now: float, action: Action
) -> None:
    """Each (cached entry, TXT answer, time) gives the RFC 8461 §3.3 / §5.1 action."""
    decision = decide(entry, txt, now, domain="example.com")
    assert decision.action is action, decision.reason


def test_repeated_failures_double_the_backoff_up_to_the_bound() -> None:
    """Consecutive failures for one id wait 5, 10, 20, 40, 60, 60 minutes."""
    entry = CacheEntry("example.com", T0, T0, txt_id="B")
    waits = []
    now = T0
    for _ in range(6):
        entry = after_fetch_failed(entry, "B", FETCH_FAILED, None, now)
        until = backoff_until(entry)
        assert until is not None
        waits.append(until - now)
        now = until
    assert waits == [300, 600, 1200, 2400, 3600, 3600]


def test_a_new_id_resets_the_failure_count() -> None:
    """The back-off is per id: a failure under a new id starts again at five minutes."""
    entry = CacheEntry("example.com", T0, T0, txt_id="B")
    entry = after_fetch_failed(entry, "B", FETCH_FAILED, None, T0)
    entry = after_fetch_failed(entry, "B", FETCH_FAILED, None, T0 + 300)
    entry = after_fetch_failed(entry, "C", FETCH_FAILED, None, T0 + 400)
    assert entry.failures == 1
    assert backoff_until(entry) == T0 + 700


def test_negative_cache_is_bounded_by_the_dns_ttl() -> None:
    """A "no policy" answer is reused for the TTL of the DNS answer, and not longer."""
    decision = decide(None, TxtOutcome(TxtKind.NONE, ttl=120, notice=ABSENT), T0, domain="d.test")
    assert decision.entry is not None
    assert freshness(decision.entry, T0 + 119) is Freshness.FRESH
    lookup = answer(decision.entry, T0 + 119)
    assert lookup is not None
    assert lookup.status is LookupStatus.NO_POLICY
    assert freshness(decision.entry, T0 + 120) is Freshness.MISS


def test_negative_cache_never_exceeds_the_configured_bound() -> None:
    """A huge negative TTL is capped (max_negative, one hour by default)."""
    decision = decide(None, TxtOutcome(TxtKind.NONE, ttl=10**6), T0, domain="d.test")
    assert decision.entry is not None
    assert decision.entry.recheck_at == T0 + DEFAULT_RULES.max_negative


def test_fresh_policy_is_served_and_rechecked_in_background_after_the_ttl() -> None:
    """Before the TXT TTL: fresh. After it: served at once, but stale (background check)."""
    entry = cached("A")
    assert freshness(entry, T0 + 299) is Freshness.FRESH
    assert freshness(entry, T0 + 300) is Freshness.STALE
    lookup = answer(entry, T0 + 300)
    assert lookup is not None
    assert lookup.status is LookupStatus.STS
    assert lookup.source is Source.CACHE


def test_expired_policy_is_not_served() -> None:
    """STS-3.2-g: once max_age has passed, the policy is not used from the cache."""
    entry = cached("A")
    assert freshness(entry, T0 + 604800) is Freshness.MISS
    assert answer(entry, T0 + 604800) is None


def test_failed_refresh_keeps_policy_and_reports_the_failure() -> None:
    """STS-3.3-n / STS-6-b: the cached policy applies; the failure type is kept."""
    entry = failed(cached("A"), "B", T0 + 100)
    lookup = answer(entry, T0 + 200)
    assert lookup is not None
    assert lookup.status is LookupStatus.STS
    assert lookup.record_id == "A"
    assert lookup.refresh_error is ResultType.STS_POLICY_FETCH_ERROR
    assert lookup.result_type is None


def test_failed_fetch_without_cache_is_a_failed_answer_during_backoff() -> None:
    """STS-3.3-m: no cache, fetch failed -> FAILED (deliver as non-STS), result type kept."""
    entry = failed(CacheEntry("example.com", T0, T0 + 300, txt_id="B"), "B", T0)
    lookup = answer(entry, T0 + 10)
    assert lookup is not None
    assert lookup.status is LookupStatus.FAILED
    assert lookup.result_type is ResultType.STS_POLICY_FETCH_ERROR
    assert lookup.policy_type == "sts"
    assert freshness(entry, T0 + 10) is Freshness.FRESH
    assert freshness(entry, T0 + 300) is Freshness.MISS


def test_dns_failure_with_expired_policy_gives_no_answer() -> None:
    """A DNS failure is never "no policy" (pmsr #60): nothing usable is left."""
    entry = decide(cached("A"), DNS_ERROR, T0 + 60, domain="example.com").entry
    assert entry is not None
    assert entry.txt_error == DNS_FAILED
    assert answer(entry, T0 + 604800) is None


def test_txt_removed_then_expired_gives_no_policy() -> None:
    """E-28: after TXT removal the cached policy applies until max_age, then no policy."""
    entry = decide(cached("A"), NO_RECORD, T0 + 604000, domain="example.com").entry
    assert entry is not None
    before = answer(entry, T0 + 604799)
    assert before is not None
    assert before.status is LookupStatus.STS
    after = answer(entry, T0 + 604800)
    assert after is not None
    assert after.status is LookupStatus.NO_POLICY


def test_max_age_zero_policy_applies_once_and_is_never_reused() -> None:
    """E-38: max_age 0 expires at once; the fetching lookup still gets it."""
    text = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 0\n"
    entry = cached("A", text)
    assert policy_answer(entry, Source.FETCHED).status is LookupStatus.STS
    assert freshness(entry, T0) is Freshness.MISS


def test_fetched_none_replaces_cached_enforce_at_once() -> None:
    """E-29 / STS-8.3-a: a fetched mode none replaces enforce; no refresh alerts for it."""
    entry = after_fetch_ok(cached("A"), "B", parse_policy(NONE_POLICY), NONE_POLICY, T0 + 10)
    lookup = answer(entry, T0 + 20)
    assert lookup is not None
    assert lookup.mode == "none"
    assert not alert_worthy(failed(entry, "C", T0 + 30))
    assert alert_worthy(failed(cached("A"), "C", T0 + 30))


def test_refresh_is_daily_or_at_half_max_age() -> None:
    """STS-3.3-o: refetch after min(1 day, max_age / 2)."""
    assert refresh_at(cached("A")) == T0 + DAY
    short = "version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 3600\n"
    assert refresh_at(cached("A", short)) == T0 + 1800


def test_stale_while_backing_off_does_not_recheck_on_every_lookup() -> None:
    """A policy whose refresh failed is not re-checked again before the back-off ends."""
    entry = cached("A")
    due = decide(entry, record("A"), T0 + DAY, domain="example.com")
    assert due.action is Action.FETCH
    assert due.entry is not None
    after = after_fetch_failed(due.entry, "A", FETCH_FAILED, None, T0 + DAY)
    assert freshness(after, T0 + DAY + 10) is Freshness.FRESH
    assert freshness(after, T0 + DAY + 300) is Freshness.STALE


TIMES = st.floats(min_value=0, max_value=40 * DAY, allow_nan=False)
IDS = st.sampled_from(["A", "B", "C"])
TXTS = st.one_of(
    st.builds(record, IDS, st.integers(0, 7200)),
    st.just(NO_RECORD),
    st.just(DNS_ERROR),
)


@st.composite
def entries(draw: st.DrawFn) -> CacheEntry | None:
    if draw(st.booleans()):
        return None
    entry = cached(draw(IDS), fetched_at=T0, checked_at=T0)
    if draw(st.booleans()):
        entry = failed(entry, draw(IDS), T0 + draw(st.floats(0, DAY)))
    return entry


@given(entries(), TXTS, TIMES)
def test_decisions_obey_the_rfc_invariants(
    entry: CacheEntry | None, txt: TxtOutcome, offset: float
) -> None:
    """Whatever the state: an unexpired cached policy is never dropped on a failure,
    a changed id is never answered from the cache, and no GET happens in a back-off."""
    now = T0 + offset
    decision = decide(entry, txt, now, domain="example.com")
    valid = entry is not None and entry.expires_at is not None and now < entry.expires_at
    if txt.kind is not TxtKind.RECORD and valid:
        assert decision.action is Action.KEEP_CACHED
    if txt.kind is TxtKind.RECORD and entry is not None and entry.record_id != txt.record_id:
        assert decision.action in (Action.FETCH, Action.BACK_OFF)
    if decision.action is Action.FETCH and entry is not None and entry.failed_id == txt.record_id:
        until = backoff_until(entry)
        assert until is None or now >= until
    if decision.action is Action.USE_CACHED:
        assert valid
    if decision.entry is not None and decision.action is not Action.FETCH:
        lookup = answer(decision.entry, now)
        if valid:
            assert lookup is not None
            assert lookup.status is LookupStatus.STS


@given(entries(), TXTS, TIMES, TIMES, st.floats(0, 1, exclude_max=True))
def test_an_answer_is_reused_only_while_it_cannot_change(
    entry: CacheEntry | None, txt: TxtOutcome, checked: float, offset: float, share: float
) -> None:
    """fresh_until: at every moment before it (the interval [now, until) is half-open:
    at ``until`` itself the entry may change) the entry is FRESH and gives the same
    answer as at ``now``; it never reaches past the TXT re-check or the max_age expiry."""
    decided = decide(entry, txt, T0 + checked, domain="example.com").entry
    if decided is None:
        return
    now = T0 + checked + offset
    until = fresh_until(decided, now)
    if freshness(decided, now) is not Freshness.FRESH:
        assert until == now
        return
    assert now < until <= decided.recheck_at
    expires = decided.expires_at
    if expires is not None and now < expires:
        assert until <= expires
    first = answer(decided, now)
    # (a share just below 1 can round onto ``until`` itself, outside the interval)
    points = (now, now + (until - now) * share, until - 1e-3 * (until - now))
    for t in (p for p in points if p < until):
        assert freshness(decided, t) is Freshness.FRESH
        assert answer(decided, t) == first


def test_fresh_until_stops_at_the_proactive_refresh_and_after_its_back_off() -> None:
    entry = replace(cached("A"), recheck_at=T0 + 2 * DAY)  # TXT re-check far away
    assert fresh_until(entry, T0 + 10) == T0 + DAY  # refresh_interval (daily)
    waiting = replace(failed(entry, "A", T0 + DAY), recheck_at=T0 + 2 * DAY)
    assert fresh_until(waiting, T0 + DAY + 10) == backoff_until(waiting)
