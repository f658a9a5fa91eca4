"""In-memory pre-aggregation: one counter per (day, policy) and per (day, policy, failure)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import TlsRptError
from mtasts.results import PolicyType
from mtasts.tlsrpt.collect.counters import Counters, PolicyKey, read_spool, spool_lines
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome

DAY = date(2026, 11, 22)
STS = PolicyOutcome(PolicyType.STS, "a.example", ("version: STSv1",), ("mx.a.example",))
MISMATCH = FailureOutcome("certificate-host-mismatch", "192.0.2.1", "mx.a.example")


def _session(*policies: PolicyOutcome) -> SessionOutcome:
    return SessionOutcome("a.example", "v=TLSRPTv1; rua=mailto:r@a.example", policies)


def test_same_policy_same_day_is_one_counter() -> None:
    c = Counters()
    for _ in range(5):
        c.add(DAY, _session(STS))
    c.add(DAY, _session(PolicyOutcome(**{**_fields(STS), "failed": True, "failures": (MISMATCH,)})))
    (key,) = c.policy_keys()
    assert (c.successes[key], c.failures[key], c.details[key, MISMATCH]) == (5, 1, 1)
    assert len(c) == 2  # two upserts: the policy row and the failure row
    assert c.sessions == 6


def test_days_and_policies_are_separate_counters() -> None:
    c = Counters()
    c.add(DAY, _session(STS))
    c.add(date(2026, 11, 23), _session(STS))
    other = PolicyOutcome(PolicyType.STS, "a.example", ("version: STSv1", "mode: enforce"))
    c.add(DAY, _session(other))
    assert len(c.policy_keys()) == 3


def test_success_with_failure_details_counts_details_not_a_failed_session() -> None:
    """libtlsrpt doc/example.txt: a success may carry failures (e.g. first MX failed)."""
    c = Counters()
    c.add(DAY, _session(PolicyOutcome(**{**_fields(STS), "failures": (MISMATCH,)})))
    (key,) = c.policy_keys()
    assert (c.successes[key], c.failures[key], c.details[key, MISMATCH]) == (1, 0, 1)


def test_drain_resets_and_merge_puts_back() -> None:
    c = Counters()
    c.add(DAY, _session(STS))
    snap = c.drain()
    assert not c
    assert c.sessions == 0
    c.add(DAY, _session(STS))
    snap.merge(c)
    assert sum(snap.successes.values()) == 2
    assert snap.sessions == 2


def test_policy_id_is_stable_and_day_independent() -> None:
    k1 = PolicyKey(DAY, "a.example", "", PolicyType.STS, "a.example", ("x",), ())
    k2 = PolicyKey(date(2027, 1, 1), "a.example", "", PolicyType.STS, "a.example", ("x",), ())
    k3 = PolicyKey(DAY, "a.example", "", PolicyType.STS, "a.example", ("x", ""), ())
    assert k1.policy_id == k2.policy_id != k3.policy_id
    assert len(k1.policy_id) == 64


def _fields(p: PolicyOutcome) -> dict[str, object]:
    return {s: getattr(p, s) for s in PolicyOutcome.__slots__}


_pol = st.builds(
    PolicyOutcome,
    st.sampled_from(list(PolicyType)),
    st.sampled_from(["a.example", "b.example"]),
    st.sampled_from([(), ("version: STSv1",)]),
    st.just(()),
    st.booleans(),
    st.lists(st.sampled_from([MISMATCH, FailureOutcome("starttls-not-supported")]), max_size=3).map(
        tuple
    ),
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([DAY, date(2026, 11, 23)]), st.lists(_pol, min_size=1, max_size=3)
        ),
        max_size=40,
    )
)
def test_counts_are_preserved(sessions: list[tuple[date, list[PolicyOutcome]]]) -> None:
    """Sum of counters == number of policy outcomes / failures fed in, whatever the split."""
    c = Counters()
    half = Counters()
    for i, (day, pols) in enumerate(sessions):
        (c if i % 2 else half).add(day, _session(*pols))
    c.merge(half)
    pols = [p for _, ps in sessions for p in ps]
    assert sum(c.successes.values()) == sum(not p.failed for p in pols)
    assert sum(c.failures.values()) == sum(p.failed for p in pols)
    assert sum(c.details.values()) == sum(len(p.failures) for p in pols)
    assert c.sessions == len(sessions)


@given(st.lists(st.tuples(_pol, st.integers(1, 5)), min_size=1, max_size=10))
def test_adding_n_identical_sessions_at_once_is_adding_them_one_by_one(
    sessions: list[tuple[PolicyOutcome, int]],
) -> None:
    """The collector folds n identical datagrams with one add(..., n=n): same counters,
    same session count, same weight as n single adds."""
    at_once, one_by_one = Counters(), Counters()
    for pol, n in sessions:
        at_once.add(DAY, _session(pol), 300, n=n)
        for _ in range(n):
            one_by_one.add(DAY, _session(pol), 300)
    assert at_once == one_by_one


@given(
    st.lists(
        st.tuples(
            st.sampled_from([DAY, date(2026, 11, 23)]), st.lists(_pol, min_size=1, max_size=3)
        ),
        max_size=30,
    )
)
def test_the_spool_gives_back_every_counter(
    sessions: list[tuple[date, list[PolicyOutcome]]],
) -> None:
    """Counters written to the spool at a shutdown with the store down and read back at
    the next start are the same counters, the same sessions."""
    c = Counters()
    for day, pols in sessions:
        c.add(day, _session(*pols))
    back = Counters(sessions=0)
    assert read_spool(b"".join(spool_lines(c)).splitlines(keepends=True), back) == c.sessions
    assert (back.successes, back.failures, back.details) == (c.successes, c.failures, c.details)
    assert back.sessions == c.sessions


HEAD = b'{"format":"mtasts-tlsrpt-counters","version":1,"sessions":1}\n'
_PKEY = PolicyKey(DAY, "a.example", "", PolicyType.STS, "a.example", (), ())
POLICY = (
    b'{"id":"%s","day":"2026-11-22","domain":"a.example","tlsrpt_record":"",'
    b'"policy_type":"sts","policy_domain":"a.example","policy_string":[],"mx_host":[],'
    b'"successful":1,"failed":0}\n' % _PKEY.policy_id.encode()
)
FAILURE = b'{"day":"2026-11-22","p":"%s","count":1}\n' % _PKEY.policy_id.encode()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "line 1: not a mtasts-tlsrpt-counters v1 file"),
        ([b"junk\n"], "line 1: not JSON"),
        ([b'{"format":"mtasts-tlsrpt-counters","version":2}\n'], "line 1: not a mtasts"),
        ([HEAD, b"[]\n"], "line 2: not an object"),
        ([HEAD, POLICY.replace(b"a.example", b"b.example")], "line 2: 'id' is not the policy's"),
        ([HEAD, POLICY.replace(b'"sts"', b'"nope"')], "line 2: 'nope' is not a valid"),
        ([HEAD, POLICY.replace(b"2026-11-22", b"22/11")], "line 2: Invalid isoformat"),
        ([HEAD, POLICY.replace(b'"successful":1', b'"successful":-1')], "'successful' is not"),
        ([HEAD, POLICY.replace(b'"mx_host":[]', b'"mx_host":[1]')], "'mx_host' is not a list"),
        ([HEAD, FAILURE], "line 2: 'day' and 'p' name no policy line"),
        ([HEAD, POLICY, FAILURE], "line 3: 'result_type' is not a string"),
        ([HEAD, b'{"x":1}\n'], "line 2: neither a policy nor a failure line"),
    ],
)
def test_a_damaged_spool_is_refused_naming_the_line(lines: list[bytes], message: str) -> None:
    with pytest.raises(TlsRptError, match="counter spool") as exc:
        read_spool(lines, Counters())
    assert exc.value.code == "collect.spool-invalid"
    assert message in str(exc.value)


def test_iter_policy_keys_yields_each_policy_once() -> None:
    """Sessions only, failures only, both, and failure details with no session count
    (put back by a merge): the spool and the store write one row for each, once."""
    c = Counters()
    a, b = STS, PolicyOutcome(PolicyType.STS, "b.example", ("version: STSv1",))
    failed = PolicyOutcome(**{**_fields(b), "failed": True, "failures": (MISMATCH,)})
    c.add(DAY, _session(a))
    c.add(DAY, _session(failed))
    c.add(DAY, _session(a, failed))
    details_only = Counters()
    other = FailureOutcome("starttls-not-supported", "192.0.2.2", "mx2.a.example")
    for f in (MISMATCH, other):
        details_only.add(
            date(2026, 11, 23), _session(PolicyOutcome(**{**_fields(a), "failures": (f,)}))
        )
    details_only.successes.clear()
    c.merge(details_only)
    keys = list(c.iter_policy_keys())
    assert len(keys) == len(set(keys)) == 3
    assert set(keys) == c.policy_keys()
