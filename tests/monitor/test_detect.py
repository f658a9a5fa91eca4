"""Monitoring conditions (mtasts.monitor.detect): each change between two snapshots raises
exactly its condition; transitions are computed by key."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.check.finding import Status
from mtasts.monitor.detect import Condition, conditions, transitions
from mtasts.monitor.snapshot import MxState, Snapshot

NOW = datetime(2026, 12, 2, tzinfo=UTC)
FAR = NOW + timedelta(days=90)


def policy(*mx: str, mode: str = "enforce") -> str:
    return "".join(
        f"{line}\r\n"
        for line in (
            "version: STSv1",
            f"mode: {mode}",
            *(f"mx: {m}" for m in mx),
            "max_age: 1209600",
        )
    )


def mx(host: str, **changes: object) -> MxState:
    return replace(MxState(host, True, True, True, FAR), **changes)  # type: ignore[arg-type]


def snap(**changes: object) -> Snapshot:
    base = Snapshot(
        "d.test",
        Status.OK,
        mx=(mx("mx1.d.test"),),
        sts_record="v=STSv1; id=1",
        policy_text=policy("mx1.d.test"),
        policy_host_not_after=FAR,
        tlsrpt_record="v=TLSRPTv1; rua=mailto:r@d.test",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


HEALTHY = snap()
CASES = [
    ("healthy", HEALTHY, {}),
    (
        "MX drift under enforce",
        snap(mx=(mx("mx1.d.test"), mx("mx9.d.test"))),
        {"mx.drift": "critical"},
    ),
    (
        "MX drift under testing",
        snap(mx=(mx("mx9.d.test"),), policy_text=policy("mx1.d.test", mode="testing")),
        {"mx.drift": "warning"},
    ),
    (
        "TXT record gone",
        snap(sts_record=None, sts_absent=True, policy_text=None),
        {"sts-record.gone": "critical"},
    ),
    (
        "policy host gone",
        snap(policy_text=None, policy_host_down=("policy-host.connect",)),
        {"policy-host.gone": "critical"},
    ),
    (
        "TLS-RPT record gone",
        snap(tlsrpt_record=None, tlsrpt_absent=True),
        {"tlsrpt-record.gone": "warning"},
    ),
    (
        "MX without STARTTLS",
        snap(mx=(mx("mx1.d.test", starttls=False, tls12=None, cert_ok=None, not_after=None),)),
        {"mx.starttls:mx1.d.test": "critical"},
    ),
    (
        "MX with TLS 1.0 only",
        snap(mx=(mx("mx1.d.test", tls12=False),)),
        {"mx.tls12:mx1.d.test": "critical"},
    ),
    (
        "MX with a bad certificate",
        snap(mx=(mx("mx1.d.test", cert_ok=False),)),
        {"mx.cert:mx1.d.test": "critical"},
    ),
    (
        "certificate in 29 days",
        snap(mx=(mx("mx1.d.test", not_after=NOW + timedelta(days=29, hours=1)),)),
        {"cert.expiry:mx1.d.test": "warning"},
    ),
    (
        "certificate in 13 days",
        snap(policy_host_not_after=NOW + timedelta(days=13, hours=1)),
        {"cert.expiry:mta-sts.d.test": "warning"},
    ),
    (
        "certificate in 6 days",
        snap(mx=(mx("mx1.d.test", not_after=NOW + timedelta(days=6, hours=1)),)),
        {"cert.expiry:mx1.d.test": "critical"},
    ),
    (
        "certificate expired",
        snap(mx=(mx("mx1.d.test", not_after=NOW - timedelta(days=1)),)),
        {"cert.expiry:mx1.d.test": "critical"},
    ),
]


@pytest.mark.parametrize(("current", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_raises_its_condition(current: Snapshot, expected: dict[str, str]) -> None:
    got = conditions(current, HEALTHY, now=NOW)
    assert {c.key: c.severity for c in got} == expected
    assert all(c.domain == "d.test" and c.summary for c in got)


def test_policy_changed_without_a_new_id() -> None:
    first = policy("mx1.d.test")
    changed = snap(policy_text=policy("mx1.d.test", "mx2.d.test"))
    (cond,) = conditions(changed, HEALTHY, first_policy_for_id=first, now=NOW)
    assert cond.key == "policy.id-unchanged"
    assert "still 1" in cond.summary
    # the same policy with other line ends is no change
    assert (
        conditions(
            snap(policy_text=first.replace("\r\n", "\n")), first_policy_for_id=first, now=NOW
        )
        == ()
    )


def test_drift_names_the_change_of_the_mx_set() -> None:
    (cond,) = conditions(snap(mx=(mx("mx2.d.test"),)), HEALTHY, now=NOW)
    assert "changed from mx1.d.test to mx2.d.test" in cond.summary


def test_an_unfinished_check_keeps_the_previous_conditions() -> None:
    before = (Condition("mx.drift", "d.test", "critical", "x"),)
    failed = snap(checked=False, mx_known=False, problems=("check.timeout",))
    got = conditions(failed, HEALTHY, previous_conditions=before, now=NOW)
    assert [c.key for c in got] == ["mx.drift", "check.incomplete"]
    again = conditions(failed, HEALTHY, previous_conditions=got, now=NOW)
    assert [c.key for c in again] == ["mx.drift", "check.incomplete"]


def test_cert_thresholds_are_configurable() -> None:
    s = snap(mx=(mx("mx1.d.test", not_after=NOW + timedelta(days=50, hours=1)),))
    assert conditions(s, now=NOW) == ()
    (c,) = conditions(s, cert_days=(60, 10), now=NOW)
    assert (c.key, c.severity) == ("cert.expiry:mx1.d.test", "warning")


CONDS = st.builds(
    Condition,
    st.sampled_from(["mx.drift", "sts-record.gone", "cert.expiry:a", "mx.starttls:b"]),
    st.just("d.test"),
    st.sampled_from(["warning", "critical"]),
    st.just("s"),
)


@given(st.lists(CONDS, unique_by=lambda c: c.key), st.lists(CONDS, unique_by=lambda c: c.key))
def test_transitions(before: list[Condition], after: list[Condition]) -> None:
    raised, cleared = transitions(before, after)
    old = {c.key: c.severity for c in before}
    new = {c.key: c.severity for c in after}
    assert {c.key for c in cleared} == set(old) - set(new)
    assert {c.key for c in raised} == {k for k, v in new.items() if old.get(k) != v}
    assert transitions(after, after) == ((), ())
