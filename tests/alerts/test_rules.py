"""The rules, pure: observations in, conditions out (tables of cases, and hypothesis for
the failure-rate threshold)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.alerts.rules import (
    Observations,
    Published,
    evaluate,
    failure_rate,
    latest_policies,
    new_result_type,
    no_reports,
    policy_mismatch,
    reporter_stopped,
)
from mtasts.alerts.settings import AlertSettings
from mtasts.sts.policy import parse_policy
from mtasts.tlsrpt.receive.summary import Counted, DaySummary

TODAY = date(2027, 1, 15)
S = AlertSettings()  # 5 % over >= 100 sessions, 2 days; 7 + 30 days; 3 days silent ...
D = "a.example"


def day(d: str, ok: int, failed: int, domain: str = D, **types: int) -> DaySummary:
    return DaySummary(
        domain,
        d,
        Counted(ok, failed),
        1,
        failures_by_result_type={k.replace("_", "-"): v for k, v in types.items()},
    )


def obs(**kw: object) -> Observations:
    return Observations(today=TODAY, domains=(D,), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("summaries", "raised"),
    [
        ([day("2027-01-14", 90, 10)], True),  # 10 % of 100
        ([day("2027-01-15", 95, 5)], False),  # exactly 5 % is not above
        ([day("2027-01-14", 900, 60)], True),  # 6.25 %
        ([day("2027-01-14", 9, 80)], False),  # 89 sessions: below the minimum
        ([day("2027-01-13", 50, 50)], False),  # outside the 2-day window
        ([day("2027-01-14", 90, 10, domain="b.example")], False),  # not evaluated
        ([day("2027-01-14", 0, 0)], False),
    ],
)
def test_failure_rate(summaries: list[DaySummary], raised: bool) -> None:
    found = failure_rate(obs(summaries=tuple(summaries)), S)
    assert bool(found) is raised


def test_failure_rate_names_the_worst_day_and_why() -> None:
    summaries = (
        day("2027-01-14", 90, 10, certificate_expired=10),
        day("2027-01-15", 50, 50, starttls_not_supported=30, certificate_expired=20),
    )
    (c,) = failure_rate(obs(summaries=summaries), S)
    assert c.key == "failure-rate:a.example"
    assert c.severity == "critical"
    assert c.summary == (
        "50.0% of 100 sessions failed on 2027-01-15 "
        "(starttls-not-supported 30, certificate-expired 20)"
    )
    assert c.details["rate"] == 0.5


@given(
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.floats(0, 0.99),
    st.integers(1, 500),
)
def test_failure_rate_fires_exactly_above_the_threshold(
    ok: int, failed: int, rate: float, minimum: int
) -> None:
    s = AlertSettings(failure_rate=rate, failure_min_sessions=minimum)
    found = failure_rate(obs(summaries=(day("2027-01-15", ok, failed),)), s)
    total = ok + failed
    assert bool(found) is (total >= minimum and total > 0 and failed / total > rate)


def days(*ds: str) -> frozenset[str]:
    return frozenset(ds)


@pytest.mark.parametrize(
    ("seen", "raised"),
    [
        (days("2027-01-14"), True),  # first time ever
        (days("2027-01-09", "2027-01-14"), True),  # the recent window is 7 days: 9 .. 15
        (days("2027-01-08", "2027-01-14"), False),  # seen in the baseline before
        (days("2026-12-10", "2027-01-14"), False),  # the first baseline day
        (days("2026-12-09", "2027-01-14"), True),  # older than the baseline: new again
        (days("2027-01-01"), False),  # only in the baseline: not recent
    ],
)
def test_new_result_type(seen: frozenset[str], raised: bool) -> None:
    found = new_result_type(obs(type_days={D: {"certificate-expired": seen}}), S)
    assert bool(found) is raised
    if raised:
        assert found[0].key == "new-result-type:a.example:certificate-expired"


def regular(last: str, n: int = 10) -> frozenset[str]:
    """n consecutive days ending on ``last``."""
    end = date.fromisoformat(last).toordinal()
    return frozenset(date.fromordinal(end - i).isoformat() for i in range(n))


@pytest.mark.parametrize(
    ("reported", "raised"),
    [
        (regular("2027-01-14"), False),  # reported yesterday
        (regular("2027-01-12"), False),  # 13 and 14 missing: 2 days is not 3
        (regular("2027-01-11"), True),  # 12, 13, 14 missing
        (regular("2027-01-05", n=4), False),  # not regular: 4 days of 30
        (regular("2026-12-01"), False),  # dropped out of the baseline
    ],
)
def test_reporter_stopped(reported: frozenset[str], raised: bool) -> None:
    found = reporter_stopped(obs(reporter_days={D: {"Google Inc.": reported}}), S)
    assert bool(found) is raised
    if raised:
        assert found[0].key == "reporter-stopped:a.example:Google Inc."
        assert "last report for 2027-01-11" in found[0].summary


@pytest.mark.parametrize(
    ("last", "raised"),
    [("2027-01-14", False), ("2027-01-12", False), ("2027-01-11", True), (None, True)],
)
def test_no_reports(last: str | None, raised: bool) -> None:
    found = no_reports(obs(last_day={D: last} if last else {}), S)
    assert bool(found) is raised


ENFORCE = parse_policy("version: STSv1\r\nmode: enforce\r\nmx: mx1.a.example\r\nmax_age: 86400\r\n")
LINES = ("version: STSv1", "mode: enforce", "mx: mx1.a.example", "max_age: 604800")


@pytest.mark.parametrize(
    ("reported", "published", "raised", "kept"),
    [
        (LINES, Published("sts", ENFORCE), False, False),  # max_age is not compared
        (
            ("version: STSv1", "mode: testing", "mx: mx1.a.example", "max_age: 1"),
            Published("sts", ENFORCE),
            True,
            False,
        ),
        (
            ("version: STSv1", "mode: enforce", "mx: *.a.example", "max_age: 1"),
            Published("sts", ENFORCE),
            True,
            False,
        ),
        (LINES, Published("none"), True, False),  # reported, but nothing published now
        (LINES, Published("unknown", detail="timeout"), False, True),  # cannot tell: keep
        (("garbage",), Published("sts", ENFORCE), True, False),  # unreadable: differs
    ],
)
def test_policy_mismatch(
    reported: tuple[str, ...], published: Published, raised: bool, kept: bool
) -> None:
    o = obs(
        reported_policies={D: {"Google Inc.": ("2027-01-14", reported)}},
        published={D: published},
    )
    found, keep = policy_mismatch(o, S)
    assert bool(found) is raised
    assert keep == (["policy-mismatch:a.example"] if kept else [])


def test_policy_mismatch_summary_and_old_reports() -> None:
    testing = ("version: STSv1", "mode: testing", "mx: mx1.a.example", "max_age: 1")
    o = obs(
        reported_policies={
            D: {"Google Inc.": ("2027-01-14", testing), "Old Org": ("2027-01-01", testing)}
        },
        published={D: Published("sts", ENFORCE)},
    )
    (c,) = policy_mismatch(o, S)[0]
    assert c.summary == (
        "Google Inc. reports another policy than the one published now "
        "(mode enforce, mx mx1.a.example)"
    )
    assert c.details["reported"] == {"Google Inc.": "mode testing, mx mx1.a.example"}


def test_latest_policies_keeps_each_reporters_newest() -> None:
    rows = [
        {"policy_domain": D, "organization": "G", "day": "2027-01-13", "policy_string": ["a"]},
        {"policy_domain": D, "organization": "G", "day": "2027-01-14", "policy_string": ["b"]},
        {"policy_domain": D, "organization": "G", "day": "2027-01-12", "policy_string": ["c"]},
    ]
    assert latest_policies(rows) == {D: {"G": ("2027-01-14", ("b",))}}


def test_evaluate_runs_only_the_enabled_rules() -> None:
    o = obs(summaries=(day("2027-01-14", 50, 50),), last_day={})
    found, _ = evaluate(o, S)
    assert {c.kind for c in found} == {"failure-rate", "no-reports"}
    found, _ = evaluate(o, AlertSettings(rules=frozenset({"no-reports"})))
    assert {c.kind for c in found} == {"no-reports"}


def test_what_senders_write_is_bounded_so_conditions_always_fit() -> None:
    """Hostile reports: 50 KB organisation names, a hundred reporters, a huge MX list.
    Every rule still gives its conditions (Condition refuses details over 16 KiB)."""
    huge = "Evil " + "x" * 50_000
    orgs = {f"{i} {huge}": regular("2027-01-05") for i in range(100)}
    mxs = tuple(f"mx: mx{i}.{'y' * 50}.example" for i in range(300))
    testing = ("version: STSv1", "mode: testing", *mxs, "max_age: 1")
    o = obs(
        summaries=(
            DaySummary(
                D,
                "2027-01-14",
                Counted(0, 1000),
                1,
                failures_by_result_type={"certificate-expired": 1000},
                failures_by_organization={huge: 1000},
                failures_by_receiving_mx={huge: 1000},
            ),
        ),
        reporter_days={D: orgs},
        reported_policies={D: {k: ("2027-01-14", testing) for k in orgs}},
        published={D: Published("sts", ENFORCE)},
        last_day={D: "2027-01-14"},
    )
    found, _ = evaluate(o, S)
    kinds = [c.kind for c in found]
    assert kinds.count("reporter-stopped") == 100
    assert kinds.count("failure-rate") == 1
    (mismatch,) = [c for c in found if c.kind == "policy-mismatch"]
    assert "… and 97 more report another policy than the one published now" in mismatch.summary
    assert len(mismatch.details["reported"]) == 20
