"""What the pages compute from query rows (pure): the reported policy against the
published one, reporters that stopped, the overview's windows, the failed series."""

from __future__ import annotations

from datetime import date

import orjson
import pytest

from mtasts.tlsrpt.receive.summary import Counted
from mtasts.web.views import (
    compare,
    domain_view,
    overview,
    policy_fields,
    reported_policy_list,
    reporter_list,
)


@pytest.mark.parametrize(
    ("lines", "fields"),
    [
        (
            ["version: STSv1", "mode: enforce", "mx: a.example", "max_age: 86400"],
            ("enforce", ["a.example"], "86400"),
        ),
        # the first mode counts (RFC 8461 §3.2); mx values sorted, case and root dot folded
        (
            ["mode: testing", "mode: enforce", "mx: B.example.", "mx: a.example"],
            ("testing", ["a.example", "b.example"], None),
        ),
        (["garbage", "mx:*.example.net"], (None, ["*.example.net"], None)),
        ([], (None, [], None)),
    ],
)
def test_policy_fields(lines: list[str], fields: tuple[object, ...]) -> None:
    assert policy_fields(lines) == fields


def test_compare() -> None:
    pub = ("enforce", ["a.example"], "86400")
    assert compare(pub, pub) == []
    assert compare(("testing", ["a.example"], "86400"), pub) == ["mode"]
    assert compare(("enforce", ["b.example"], "604800"), pub) == ["mx", "max_age"]
    assert compare(pub, None) == []  # nothing published to compare with


def test_reported_policies_grouped_and_flagged() -> None:
    def row(kind: str, lines: list[str], org: str, n: int, day: str) -> dict[str, object]:
        return {
            "policy_type": kind,
            "policy_string": orjson.dumps(lines).decode(),
            "mx_host": "[]",
            "organization": org,
            "reports": n,
            "successful": 10 * n,
            "failed": n,
            "first_day": day,
            "last_day": day,
        }

    enforce = ["version: STSv1", "mode: enforce", "mx: a.example", "max_age: 86400"]
    testing = ["version: STSv1", "mode: testing", "mx: a.example", "max_age: 86400"]
    out = reported_policy_list(
        [
            row("sts", enforce, "A", 2, "2026-11-02"),
            row("sts", enforce, "B", 3, "2026-11-03"),
            row("sts", testing, "C", 1, "2026-10-01"),
            row("tlsa", ["3 1 1 ab"], "B", 3, "2026-11-03"),
        ],
        ("enforce", ["a.example"], "86400"),
        orjson.loads,
    )
    by = {(p.policy_type, p.mode): p for p in out}
    assert by["sts", "enforce"].organizations == ["A", "B"]
    assert by["sts", "enforce"].reports == 5
    assert by["sts", "enforce"].differs == []
    assert by["sts", "testing"].differs == ["mode"]
    assert by["tlsa", None].differs == []  # only sts entries compare with MTA-STS


def test_reporters_that_stopped() -> None:
    rows = [
        {"organization": "A", "first_day": "2026-10-01", "last_day": "2026-11-20", "reports": 50},
        {"organization": "B", "first_day": "2026-10-01", "last_day": "2026-11-17", "reports": 40},
        {"organization": "C", "first_day": "2026-10-01", "last_day": "2026-11-16", "reports": 30},
    ]
    out = reporter_list(rows, date(2026, 11, 20), 3)
    assert [(r.organization, r.silent_days, r.stopped) for r in out] == [
        ("C", 4, True),
        ("B", 3, False),
        ("A", 0, False),
    ]


def _day(day: str, ok: int, bad: int) -> dict[str, object]:
    return {"policy_domain": "a.test", "day": day, "successful": ok, "failed": bad}


def test_overview_windows_and_sparkline() -> None:
    rows = [
        _day("2026-11-20", 90, 10),
        _day("2026-11-01", 100, 0),
        _day("2026-08-01", 100, 100),  # outside 90 days
    ]
    failures = [
        {"policy_domain": "a.test", "result_type": "certificate-expired", "failed": 4},
        {"policy_domain": "a.test", "result_type": "sts-policy-fetch-error", "failed": 6},
    ]
    (h,) = overview(date(2026, 11, 20), {"a.test": "2026-11-20"}, rows, failures)
    assert (h.windows[7].successful, h.windows[7].failed) == (90, 10)
    assert (h.windows[30].successful, h.windows[30].failed) == (190, 10)
    assert h.windows[90] == h.windows[30]
    assert h.rate(7) == pytest.approx(90.0)
    assert h.spark[-1] == pytest.approx(10.0)
    assert h.spark[-20] == 0.0
    assert h.spark[0] is None
    assert h.worst_result_type == "sts-policy-fetch-error"
    assert h.worst_failed == 6


def test_domain_view_failed_series_follows_failure_filters() -> None:
    rows = [_day("2026-11-19", 90, 10), _day("2026-11-20", 50, 5)]
    orgs = [{"organization": "Org", "successful": 140, "failed": 15}]
    fails = {
        "day_result": [{"day": "2026-11-20", "result_type": "certificate-expired", "failed": 2}],
        "result": [{"result_type": "certificate-expired", "failed": 2}],
        "org": [{"organization": "Org", "failed": 2}],
        "mx": [{"receiving_mx_hostname": None, "receiving_ip": "192.0.2.1", "failed": 2}],
        "sender": [{"sending_mta_ip": None, "failed": 2}],
    }
    span = (date(2026, 11, 19), date(2026, 11, 20))
    plain = domain_view("a.test", *span, rows, orgs, fails, failure_filtered=False)
    assert plain.failed == [10, 5]
    assert plain.successful == [90, 50]
    assert plain.failures_per_day == {"certificate-expired": [0, 2]}
    filtered = domain_view("a.test", *span, rows, orgs, fails, failure_filtered=True)
    assert filtered.failed == [0, 2]
    assert filtered.totals.failed == 15
    by = {b.key: b.rows for b in filtered.breakdowns}
    assert by["mx"] == [("- (192.0.2.1)", "-", 2)]
    assert by["sender"] == [("-", "-", 2)]
    assert filtered.organizations == {"Org": Counted(140, 15)}
