"""The strict report writer (RFC 8460 §4.4, §5.1, §5.2) and its round trip with the reader."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import ReportError
from mtasts.results import PolicyType, ResultType
from mtasts.tlsrpt.model import canonical_ip
from mtasts.tlsrpt.report import (
    FailureDetail,
    PolicyResult,
    Report,
    format_datetime,
    read_report,
    report_filename,
    report_to_json,
    write_report,
    write_report_gzip,
)

# RFC 8460 Appendix B, verbatim (checklist §5.6), including the raw line break inside the
# additional-information string that makes it invalid JSON as printed.
APPENDIX_B = b"""{
  "organization-name": "Company-X",
  "date-range": {
    "start-datetime": "2016-04-01T00:00:00Z",
    "end-datetime": "2016-04-01T23:59:59Z"
  },
  "contact-info": "sts-reporting@company-x.example",
  "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
  "policies": [{
    "policy": {
      "policy-type": "sts",
      "policy-string": ["version: STSv1","mode: testing",
            "mx: *.mail.company-y.example","max_age: 86400"],
      "policy-domain": "company-y.example",
      "mx-host": "*.mail.company-y.example"
    },
    "summary": {
      "total-successful-session-count": 5326,
      "total-failure-session-count": 303
    },
    "failure-details": [{
      "result-type": "certificate-expired",
      "sending-mta-ip": "2001:db8:abcd:0012::1",
      "receiving-mx-hostname": "mx1.mail.company-y.example",
      "failed-session-count": 100
    }, {
      "result-type": "starttls-not-supported",
      "sending-mta-ip": "2001:db8:abcd:0013::1",
      "receiving-mx-hostname": "mx2.mail.company-y.example",
      "receiving-ip": "203.0.113.56",
      "failed-session-count": 200,
      "additional-information": "https://reports.company-x.example/
        report_info ? id = 5065427 c - 23 d3# StarttlsNotSupported "
    }, {
      "result-type": "validation-failure",
      "sending-mta-ip": "198.51.100.62",
      "receiving-ip": "203.0.113.58",
      "receiving-mx-hostname": "mx-backup.mail.company-y.example",
      "failed-session-count": 3,
      "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
    }]
  }]
}
"""

REQUIRED_TOP = {"organization-name", "date-range", "contact-info", "report-id", "policies"}
ALLOWED_DETAIL = {
    "result-type",
    "sending-mta-ip",
    "receiving-mx-hostname",
    "receiving-mx-helo",
    "receiving-ip",
    "failed-session-count",
    "additional-information",
    "failure-reason-code",
}
_HYPHENATED = re.compile(r"[a-z]+(-[a-z]+)*")
_DATE_TIME_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


def assert_rfc8460_shape(obj: object) -> None:
    """The RFC 8460 §4.4 structure: required keys, types, hyphenated keys, dates in Z."""
    assert isinstance(obj, dict)
    assert set(obj) == REQUIRED_TOP
    for key in ("organization-name", "contact-info", "report-id"):
        assert isinstance(obj[key], str)
    assert set(obj["date-range"]) == {"start-datetime", "end-datetime"}
    for value in obj["date-range"].values():
        assert _DATE_TIME_Z.fullmatch(value)
    assert isinstance(obj["policies"], list)  # MUST be an array (RPT-4-c)
    for entry in obj["policies"]:
        assert set(entry) == {"policy", "summary", "failure-details"}
        policy = entry["policy"]
        assert {"policy-type", "policy-string", "policy-domain"} <= set(policy)
        assert set(policy) <= {"policy-type", "policy-string", "policy-domain", "mx-host"}
        assert policy["policy-type"] in {"tlsa", "sts", "no-policy-found"}
        assert all(isinstance(s, str) for s in policy["policy-string"])
        if policy["policy-type"] == "sts":
            assert isinstance(policy["mx-host"], list)  # erratum 6241
        assert set(entry["summary"]) == {
            "total-successful-session-count",
            "total-failure-session-count",
        }
        for count in entry["summary"].values():
            assert type(count) is int
            assert 0 <= count < 2**53
        for detail in entry["failure-details"]:
            assert {"result-type", "failed-session-count"} <= set(detail) <= ALLOWED_DETAIL
            assert None not in detail.values()  # absent, never null
    _assert_keys_hyphenated(obj)


def _assert_keys_hyphenated(value: object) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            assert _HYPHENATED.fullmatch(key), key
            _assert_keys_hyphenated(inner)
    elif isinstance(value, list):
        for inner in value:
            _assert_keys_hyphenated(inner)


def test_appendix_b_verbatim_reads_on_the_lenient_path() -> None:
    """RFC 8460 App. B as printed: the raw line break and the mx-host string are repaired."""
    linted = read_report(APPENDIX_B)
    assert linted.errors == ()
    codes = sorted(n.code for n in linted.warnings)
    assert codes == [
        "report.ip.not-canonical",
        "report.ip.not-canonical",
        "report.json.control-character",
        "report.mx-host.string",
    ]
    report = linted.value
    assert report is not None
    (policy,) = report.policies
    assert (policy.total_successful_session_count, policy.total_failure_session_count) == (
        5326,
        303,
    )
    assert sum(d.failed_session_count for d in policy.failure_details) == 303
    assert policy.mx_host == ("*.mail.company-y.example",)
    first = policy.failure_details[0]
    assert first.receiving_ip is None
    assert first.failure_reason_code is None


def test_appendix_b_written_back_is_the_corrected_rfc_form() -> None:
    """Written back: mx-host an array, RFC 5952 IPv6, absent fields omitted, Z dates."""
    report = read_report(APPENDIX_B).value
    assert report is not None
    obj = report_to_json(report)
    assert_rfc8460_shape(obj)
    policy = obj["policies"][0]  # type: ignore[index]
    assert policy["policy"]["mx-host"] == ["*.mail.company-y.example"]
    details = policy["failure-details"]
    assert details[0] == {
        "result-type": "certificate-expired",
        "sending-mta-ip": "2001:db8:abcd:12::1",
        "receiving-mx-hostname": "mx1.mail.company-y.example",
        "failed-session-count": 100,
    }
    assert details[2]["failure-reason-code"] == "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
    assert obj["date-range"] == {
        "start-datetime": "2016-04-01T00:00:00Z",
        "end-datetime": "2016-04-01T23:59:59Z",
    }
    again = read_report(write_report(report))
    assert again.value == report
    assert again.warnings == ()  # what we write needs no repair


def test_gzip_output_is_deterministic_and_reads_back() -> None:
    """RPT-5.2-a: gzip output starts with 1f 8b, carries no name or time, and reads back."""
    report = read_report(APPENDIX_B).value
    assert report is not None
    data = write_report_gzip(report)
    assert data[:2] == b"\x1f\x8b"
    assert data == write_report_gzip(report)
    assert gzip.decompress(data) == write_report(report)
    assert read_report(data).value == report


def test_writer_converts_other_offsets_to_utc() -> None:
    """Date-times in another zone are written as the same instant in UTC with Z."""
    plus_two = timezone(timedelta(hours=2))
    report = Report(
        "Org",
        datetime(2024, 1, 2, 2, 0, tzinfo=plus_two),
        datetime(2024, 1, 3, 1, 59, 59, 500000, tzinfo=plus_two),
        "tlsrpt@org.example",
        "id-1",
        (),
    )
    assert report_to_json(report)["date-range"] == {
        "start-datetime": "2024-01-02T00:00:00Z",
        "end-datetime": "2024-01-02T23:59:59.5Z",
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(999, 1, 2, tzinfo=UTC), "0999-01-02T00:00:00Z"),  # strftime wrote "999-..."
        (datetime(1, 1, 1, 0, 0, 1, 5, tzinfo=UTC), "0001-01-01T00:00:01.000005Z"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
    ],
)
def test_format_datetime_always_writes_a_four_digit_year(value: datetime, text: str) -> None:
    """RFC 3339 date-fullyear is 4DIGIT: a year the reader accepts is written padded."""
    assert format_datetime(value) == text


def test_no_policy_found_omits_empty_mx_host_but_keeps_policy_domain() -> None:
    """E-61/E-62: an empty mx-host is omitted for no-policy-found; policy-domain stays."""
    policy = PolicyResult(PolicyType.NO_POLICY_FOUND, (), "example.net", (), 4, 0, ())
    report = Report("Org", _T0, _T1, "r@org.example", "id", (policy,))
    written = report_to_json(report)["policies"][0]  # type: ignore[index]
    assert written["policy"] == {
        "policy-type": "no-policy-found",
        "policy-string": [],
        "policy-domain": "example.net",
    }
    assert written["failure-details"] == []


_T0 = datetime(2016, 4, 1, tzinfo=UTC)
_T1 = datetime(2016, 4, 1, 23, 59, 59, tzinfo=UTC)


FILENAMES = [
    # RFC 8460 §5.1 example
    (
        {"submitter": "mail.sndr.example.com", "policy_domain": "example.net", "unique_id": "001"},
        (1470013207, 1470186007),
        True,
        "mail.sndr.example.com!example.net!1470013207!1470186007!001.json.gz",
    ),
    # no unique-id, plain JSON
    (
        {"submitter": "sndr.example", "policy_domain": "example.net", "unique_id": ""},
        (0, 86399),
        False,
        "sndr.example!example.net!0!86399.json",
    ),
    # U-labels become A-labels (RPT-5.1-b); case and trailing dot are normalised
    (
        {"submitter": "Sndr.Example.", "policy_domain": "bücher.example", "unique_id": "x1"},
        (0, 86399),
        True,
        "sndr.example!xn--bcher-kva.example!0!86399!x1.json.gz",
    ),
]


@pytest.mark.parametrize(("names", "range_", "gz", "expected"), FILENAMES)
def test_report_filename(
    names: dict[str, str], range_: tuple[int, int], gz: bool, expected: str
) -> None:
    """RFC 8460 §5.1 file names: A-labels, Unix seconds, json or json.gz."""
    start, end = (datetime.fromtimestamp(t, UTC) for t in range_)
    report = Report("Org", start, end, "r@sndr.example", "id", ())
    assert report_filename(report, gzip=gz, **names) == expected


@pytest.mark.parametrize(
    ("submitter", "unique_id", "code"),
    [
        ("sndr.example", "0-1", "report.filename.unique-id"),  # '-' is not alphanumeric
        ("sndr!example", "1", "report.filename.domain"),  # '!' would split the name
        ("", "1", "report.filename.domain"),  # empty sender
        ("xn--zz.example", "1", "report.filename.domain"),  # not a valid A-label
    ],
)
def test_report_filename_rejects_bad_parts(submitter: str, unique_id: str, code: str) -> None:
    """A file name part that would break the §5.1 grammar raises ReportError."""
    report = Report("Org", _T0, _T1, "r@sndr.example", "id", ())
    with pytest.raises(ReportError) as info:
        report_filename(report, submitter=submitter, policy_domain="a.example", unique_id=unique_id)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("build", "code"),
    [
        (
            lambda: FailureDetail("x", None, None, None, None, -1, None, None),
            "report.count.negative",
        ),
        (
            lambda: FailureDetail("x", None, None, None, None, 2**53, None, None),
            "report.count.too-large",
        ),
        (lambda: FailureDetail("x", None, None, None, None, True, None, None), "report.count.type"),
        (lambda: FailureDetail("", None, None, None, None, 1, None, None), "report.shape"),
        (lambda: PolicyResult("sts", (), "a.example", (), 0, 0, ()), "report.shape"),  # type: ignore[arg-type]
        (
            lambda: PolicyResult(PolicyType.STS, ("a", 1), "a.example", (), 0, 0, ()),  # type: ignore[arg-type]
            "report.shape",
        ),
        (
            lambda: PolicyResult(PolicyType.STS, (), "a.example", ["mx.a.example"], 0, 0, ()),  # type: ignore[arg-type]
            "report.shape",
        ),
        (lambda: Report("O", datetime(2024, 1, 1), _T1, "c", "i", ()), "report.shape"),  # naive
    ],
)
def test_model_values_are_checked_when_built(build: object, code: str) -> None:
    """The model refuses values the writer could not put on the wire."""
    with pytest.raises(ReportError) as info:
        build()  # type: ignore[operator]
    assert info.value.code == code


# --- hypothesis: generated reports round-trip through the writer and the reader -----------

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_domain = st.lists(st.text(_ALNUM, min_size=1, max_size=8), min_size=2, max_size=3).map(".".join)
_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)
_ip = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
_count = st.integers(min_value=0, max_value=2**53 - 1)
_instant = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
_details = st.builds(
    FailureDetail,
    result_type=st.one_of(st.sampled_from(list(ResultType)).map(str), st.just("new-type-2030")),
    sending_mta_ip=st.none() | _ip,
    receiving_mx_hostname=st.none() | _domain,
    receiving_mx_helo=st.none() | _domain,
    receiving_ip=st.none() | _ip,
    failed_session_count=_count,
    additional_information=st.none() | st.just("https://r.example/info?id=1"),
    failure_reason_code=st.none() | _text,
)
_policies = st.builds(
    PolicyResult,
    policy_type=st.sampled_from(list(PolicyType)),
    # A line that looks like a JSON array would be read as Microsoft's JSON-in-a-string.
    policy_string=st.lists(_text.filter(lambda t: not t.startswith("[")), max_size=4).map(tuple),
    policy_domain=_domain,
    mx_host=st.lists(_domain, max_size=3).map(tuple),
    total_successful_session_count=_count,
    total_failure_session_count=_count,
    failure_details=st.lists(_details, max_size=3).map(tuple),
)
reports = st.builds(
    Report,
    organization_name=_text,
    date_range_start=_instant,
    date_range_end=_instant,
    contact_info=_domain.map(lambda d: "tlsrpt@" + d),
    report_id=_text,
    policies=st.lists(_policies, min_size=1, max_size=3).map(tuple),
)


@given(reports)
def test_generated_reports_round_trip(report: Report) -> None:
    """read_report(write_report(r)).value == r, plain and gzipped; the output is RFC-shaped."""
    data = write_report(report)
    assert_rfc8460_shape(orjson.loads(data))
    assert read_report(data).value == report
    assert read_report(write_report_gzip(report)).value == report


def _a_label_or_error(f: object, name: str) -> str:
    try:
        return str(f(name, "policy domain"))  # type: ignore[operator]
    except ReportError as exc:
        return f"error {exc.code}"


@pytest.mark.parametrize(
    "name",
    [
        "a.example",
        "A.Example.",  # case and one trailing dot
        "mail-1.a.example",
        "123",
        "1.2.3.4",
        "a" * 63 + ".example",
        ".".join(["a" * 63] * 3) + "." + "a" * 61,  # 253 characters
        ".".join(["a" * 63] * 3) + "." + "a" * 62,  # 254 characters
        "a" * 64 + ".example",  # a label too long
        "ab--c.example",  # hyphens in 3rd and 4th position
        "xn--bcher-kva.example",  # a valid A-label
        "xn--zz.example",  # not a valid A-label
        "-a.example",
        "a-.example",
        "a..example",
        "",
        ".",
        "a!b.example",
        "a_b.example",
        "bücher.example",
    ],
)
def test_filename_domain_fast_path_is_the_idna_answer(name: str) -> None:
    """Plain LDH names skip idna (the cost of building 100,000 reports); every name gets
    exactly the answer (value or error code) that the idna path gives."""
    from mtasts.tlsrpt.report import _a_label_domain, _idna_a_label_domain

    assert _a_label_or_error(_a_label_domain, name) == _a_label_or_error(_idna_a_label_domain, name)


@given(st.text(alphabet="abz09-.A", max_size=80))
def test_filename_domain_fast_path_matches_idna_on_any_ldh_text(name: str) -> None:
    from mtasts.tlsrpt.report import _a_label_domain, _idna_a_label_domain

    assert _a_label_or_error(_a_label_domain, name) == _a_label_or_error(_idna_a_label_domain, name)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("192.0.2.10", "192.0.2.10"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("::ffff:192.0.2.10", "::ffff:192.0.2.10"),  # RFC 5952 §5
        ("::ffff:c000:20a", "::ffff:192.0.2.10"),  # Python's str() form of the same
        ("0:0:0:0:0:FFFF:C000:020A", "::ffff:192.0.2.10"),
        ("fe80::1%eth0", "fe80::1"),  # no zone index in RFC 8460's ip-address
        ("::192.0.2.10", "::c000:20a"),  # IPv4-compatible (deprecated) is plain IPv6
        ("", None),
        ("localhost", None),
        ("[192.0.2.10]", None),
        ("IPv6:2001:db8::1", None),
        ("192.0.2.010", None),  # leading zero: ambiguous (octal?)
        (" 192.0.2.10", None),
    ],
)
def test_canonical_ip(text: str, canonical: str | None) -> None:
    assert canonical_ip(text) == canonical


def test_writer_puts_only_ip_addresses_in_the_ip_fields() -> None:
    """Issue 16: IPv4-mapped IPv6 is written ::ffff:a.b.c.d (RFC 5952 §5), and text that
    is not an IP address (a tolerant read keeps it in the model) is left out."""
    mapped = FailureDetail(
        "certificate-expired", "::ffff:c000:20a", None, None, "not an address", 1, None, None
    )
    assert mapped.sending_mta_ip == "::ffff:192.0.2.10"
    policy = PolicyResult(PolicyType.STS, (), "a.example", ("mx.a.example",), 0, 1, (mapped,))
    report = Report(
        "Org", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC),
        "tlsrpt@s.example", "id1", (policy,),
    )  # fmt: skip
    (detail,) = report_to_json(report)["policies"][0]["failure-details"]  # type: ignore[index]
    assert detail["sending-mta-ip"] == "::ffff:192.0.2.10"
    assert "receiving-ip" not in detail
