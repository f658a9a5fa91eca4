"""Counters of a day -> one strictly conformant RFC 8460 report per policy domain."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import ConfigError
from mtasts.results import PolicyType
from mtasts.tlsrpt.aggregate import (
    UNDETAILED_REASON,
    ReportSettings,
    build_reports,
    day_range,
    report_domain,
    report_id,
)
from mtasts.tlsrpt.collect.counters import Counters
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome
from mtasts.tlsrpt.report import read_report, report_to_json, write_report_gzip

DAY = date(2026, 11, 22)
SETTINGS = ReportSettings("Example Sender", "tlsrpt@mail.sender.example")
LINES = (
    "version: STSv1",
    "mode: enforce",
    "mx: mx1.a.example",
    "mx: *.b.a.example",
    "max_age: 86400",
)
STS = PolicyOutcome(PolicyType.STS, "a.example", LINES, ("mx1.a.example", "*.b.a.example"))
UNTRUSTED = FailureOutcome(
    "certificate-not-trusted",
    "192.0.2.1",
    "mx1.a.example",
    "",
    "198.51.100.7",
    "",
    "X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT",
)
REC = "v=TLSRPTv1; rua=mailto:tlsrpt@a.example"


def _failed(p: PolicyOutcome, *fs: FailureOutcome) -> PolicyOutcome:
    return PolicyOutcome(p.policy_type, p.policy_domain, p.policy_string, p.mx_host, True, fs)


def test_one_report_per_policy_domain_with_rfc_fields() -> None:
    c = Counters()
    for _ in range(5):
        c.add(DAY, SessionOutcome("a.example", REC, (STS,)))
    for _ in range(2):
        c.add(DAY, SessionOutcome("a.example", REC, (_failed(STS, UNTRUSTED),)))
    c.add(
        DAY,
        SessionOutcome("b.example", "", (PolicyOutcome(PolicyType.NO_POLICY_FOUND, "b.example"),)),
    )
    c.add(date(2026, 11, 23), SessionOutcome("c.example", "", (STS,)))  # other day: not here
    built = build_reports(c, DAY, SETTINGS)
    assert [b.domain for b in built] == ["a.example", "b.example"]
    a = built[0]
    assert a.tlsrpt_record == REC
    assert a.submitter == "mail.sender.example"
    assert a.filename == "mail.sender.example!a.example!1795305600!1795391999.json.gz"
    wire = report_to_json(a.report)
    assert wire["date-range"] == {
        "start-datetime": "2026-11-22T00:00:00Z",
        "end-datetime": "2026-11-22T23:59:59Z",
    }
    assert wire["report-id"] == "20261122.a.example@mail.sender.example"
    assert wire["contact-info"] == "tlsrpt@mail.sender.example"
    (pol,) = wire["policies"]  # type: ignore[misc]
    assert pol["policy"] == {
        "policy-type": "sts",
        "policy-string": list(LINES),
        "policy-domain": "a.example",
        "mx-host": ["mx1.a.example", "*.b.a.example"],
    }
    assert pol["summary"] == {"total-successful-session-count": 5, "total-failure-session-count": 2}
    assert pol["failure-details"] == [
        {
            "result-type": "certificate-not-trusted",
            "sending-mta-ip": "192.0.2.1",
            "receiving-mx-hostname": "mx1.a.example",
            "receiving-ip": "198.51.100.7",
            "failed-session-count": 2,
            "failure-reason-code": "X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT",
        }
    ]
    b = report_to_json(built[1].report)["policies"][0]  # type: ignore[index]
    assert b["policy"]["policy-domain"] == "b.example"  # never missing (E-62)


def test_records_seen_do_not_split_a_policy() -> None:
    """The same policy seen with two TLSRPT records is one policies entry (summed)."""
    c = Counters()
    c.add(DAY, SessionOutcome("a.example", REC, (STS,)))
    c.add(DAY, SessionOutcome("a.example", REC, (STS,)))
    c.add(DAY, SessionOutcome("a.example", "", (STS,)))
    (a,) = build_reports(c, DAY, SETTINGS)
    (p,) = a.report.policies
    assert p.total_successful_session_count == 3
    assert a.tlsrpt_record == REC  # the record seen most


def test_report_round_trips_through_the_tolerant_reader() -> None:
    c = Counters()
    c.add(DAY, SessionOutcome("a.example", REC, (_failed(STS, UNTRUSTED),)))
    (a,) = build_reports(c, DAY, SETTINGS)
    linted = read_report(write_report_gzip(a.report))
    assert linted.valid
    assert linted.warnings == ()
    assert linted.value == a.report


def test_a_success_with_a_failed_mx_counts_that_failure_in_the_summary() -> None:
    """Issue 16: the first MX failed, the second took the mail (libtlsrpt doc/example.txt):
    one successful and one failed connection, and the failure total equals the details."""
    c = Counters()
    success_after_failure = PolicyOutcome(
        STS.policy_type, STS.policy_domain, STS.policy_string, STS.mx_host, False, (UNTRUSTED,)
    )
    c.add(DAY, SessionOutcome("a.example", REC, (success_after_failure,)))
    c.add(DAY, SessionOutcome("a.example", REC, (_failed(STS, UNTRUSTED, UNTRUSTED),)))
    (a,) = build_reports(c, DAY, SETTINGS)
    (p,) = a.report.policies
    assert p.total_successful_session_count == 1
    assert [d.failed_session_count for d in p.failure_details] == [3]
    assert p.total_failure_session_count == 3


def test_failed_sessions_without_details_get_one_catch_all_detail() -> None:
    """A failure the MTA reported without any detail still appears in the details, so the
    summary equals their sum (RFC 8460 §4.3.1 validation-failure, with a reason code)."""
    c = Counters()
    for _ in range(4):
        c.add(DAY, SessionOutcome("a.example", REC, (_failed(STS),)))
    c.add(DAY, SessionOutcome("a.example", REC, (_failed(STS, UNTRUSTED),)))
    (a,) = build_reports(c, DAY, SETTINGS)
    (p,) = a.report.policies
    assert p.total_failure_session_count == 5
    assert [
        (d.result_type, d.failed_session_count, d.failure_reason_code) for d in p.failure_details
    ] == [
        ("certificate-not-trusted", 1, "X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT"),
        ("validation-failure", 4, UNDETAILED_REASON),
    ]


def test_ip_fields_hold_only_canonical_ip_addresses() -> None:
    """Issue 16: IPv4-mapped IPv6 in RFC 5952 §5 form; text that is no IP address (which
    an MTA might pass) never reaches sending-mta-ip / receiving-ip."""
    c = Counters()
    odd = FailureOutcome(
        "starttls-not-supported", "::FFFF:192.0.2.10", "mx1.a.example", "", "unknown", "", "x"
    )
    scoped = FailureOutcome("certificate-expired", "fe80::1%eth0", "", "", "[198.51.100.7]")
    c.add(DAY, SessionOutcome("a.example", REC, (_failed(STS, odd), _failed(STS, scoped))))
    (a,) = build_reports(c, DAY, SETTINGS)
    by_type = {d.result_type: d for p in a.report.policies for d in p.failure_details}
    detail = by_type["starttls-not-supported"]
    assert (detail.sending_mta_ip, detail.receiving_ip) == ("::ffff:192.0.2.10", None)
    detail = by_type["certificate-expired"]
    assert (detail.sending_mta_ip, detail.receiving_ip) == ("fe80::1", None)
    data = report_to_json(a.report)
    (json_detail,) = [
        d
        for p in data["policies"]  # type: ignore[attr-defined]
        for d in p["failure-details"]
        if d["result-type"] == "starttls-not-supported"
    ]
    assert json_detail["sending-mta-ip"] == "::ffff:192.0.2.10"
    assert "receiving-ip" not in json_detail


def test_a_dane_report_is_about_the_tlsa_base_domain() -> None:
    """Postfix names the MX host (the TLSA base domain) as a DANE policy's domain and sends
    the report to the next-hop domain's rua: the report's Policy Domain (file name, and
    the mail's TLS-Report-Domain) is the MX host. A report that also holds d's own policy
    is about d; one about several MX hosts names the busiest."""
    dane = PolicyOutcome(PolicyType.TLSA, "mx1.a.example", ("3 1 1 ABCDEF",), ())
    dane2 = PolicyOutcome(PolicyType.TLSA, "mx2.c.example", ("3 1 1 ABCDEF",), ())
    sts_b = PolicyOutcome(PolicyType.STS, "b.example", LINES, ("mx1.a.example",))
    c = Counters()
    c.add(DAY, SessionOutcome("a.example", REC, (dane,)))
    c.add(DAY, SessionOutcome("b.example", REC, (dane,)))
    c.add(DAY, SessionOutcome("b.example", REC, (sts_b,)))
    c.add(DAY, SessionOutcome("c.example", REC, (dane,)))
    c.add(DAY, SessionOutcome("c.example", REC, (dane2,)), n=2)
    a, b, cc = build_reports(c, DAY, SETTINGS)
    assert report_domain(a.report, a.domain) == "mx1.a.example"
    assert a.filename.split("!")[1] == "mx1.a.example"
    assert a.domain == "a.example"  # still sent to the rua the MTA looked up
    assert report_domain(b.report, b.domain) == "b.example"
    assert b.filename.split("!")[1] == "b.example"
    assert report_domain(cc.report, cc.domain) == "mx2.c.example"


@pytest.mark.parametrize("contact", ["tlsrpt", "@a.example", "tlsrpt@", ""])
def test_contact_without_domain_is_a_config_error(contact: str) -> None:
    with pytest.raises(ConfigError, match="contact-info"):
        _ = ReportSettings("x", contact).submitter


def test_day_range_and_report_id() -> None:
    start, end = day_range(DAY)
    assert (end - start).total_seconds() == 86399
    assert report_id(DAY, "a.example", "s.example") == "20261122.a.example@s.example"


_fail = st.sampled_from([UNTRUSTED, FailureOutcome("starttls-not-supported", "192.0.2.9")])
_pol = st.builds(
    PolicyOutcome,
    st.sampled_from([PolicyType.STS, PolicyType.NO_POLICY_FOUND]),
    st.sampled_from(["a.example", "b.example"]),
    st.sampled_from([(), LINES]),
    st.just(()),
    st.booleans(),
    st.lists(_fail, max_size=2).map(tuple),
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a.example", "b.example", "c.example"]),
            st.sampled_from(["", REC]),
            st.lists(_pol, min_size=1, max_size=2),
        ),
        max_size=30,
    )
)
def test_sum_of_counts_is_preserved(sessions: list[tuple[str, str, list[PolicyOutcome]]]) -> None:
    c = Counters()
    for domain, rec, pols in sessions:
        c.add(DAY, SessionOutcome(domain, rec, tuple(pols)))
    built = build_reports(c, DAY, SETTINGS)
    pols = [p for _, _, ps in sessions for p in ps]
    results = [p for b in built for p in b.report.policies]
    assert sum(p.total_successful_session_count for p in results) == sum(not p.failed for p in pols)
    # Issue 16: in every policy the failure total is the sum of its details (RFC 8460 §4.4
    # counts connections): a successful session may carry a failed MX's detail, and
    # failed sessions without any detail get one validation-failure row.
    for p in results:
        assert p.total_failure_session_count == sum(
            d.failed_session_count for d in p.failure_details
        )
    assert sum(
        d.failed_session_count
        for p in results
        for d in p.failure_details
        if d.failure_reason_code != UNDETAILED_REASON
    ) == sum(len(p.failures) for p in pols)
    failed: Counter[tuple[object, ...]] = Counter()
    detailed: Counter[tuple[object, ...]] = Counter()
    for domain, _, ps in sessions:
        for p in ps:
            ident = (domain, p.policy_type, p.policy_domain, p.policy_string, p.mx_host)
            failed[ident] += p.failed
            detailed[ident] += len(p.failures)
    totals = {
        (b.domain, p.policy_type, p.policy_domain, p.policy_string, p.mx_host): (
            p.total_failure_session_count
        )
        for b in built
        for p in b.report.policies
    }
    assert totals == {i: max(failed[i], detailed[i]) for i in failed}
    assert len(built) == len({d for d, _, _ in sessions})
