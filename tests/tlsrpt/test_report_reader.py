"""The tolerant report reader: each deviation repaired and named, hard failures as errors."""

from __future__ import annotations

import copy
import email
import gzip
import json
import time
import tracemalloc
import zlib
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import Linted
from mtasts.tlsrpt import unpack
from mtasts.tlsrpt.model import Report
from mtasts.tlsrpt.report import read_report, report_from_json, write_report

BASE: dict[str, Any] = {
    "organization-name": "Org",
    "date-range": {
        "start-datetime": "2024-01-09T00:00:00Z",
        "end-datetime": "2024-01-09T23:59:59Z",
    },
    "contact-info": "tlsrpt@org.example",
    "report-id": "r1",
    "policies": [
        {
            "policy": {
                "policy-type": "sts",
                "policy-string": ["version: STSv1", "mode: enforce", "mx: mx.example.net"],
                "policy-domain": "example.net",
                "mx-host": ["mx.example.net"],
            },
            "summary": {"total-successful-session-count": 5, "total-failure-session-count": 2},
            "failure-details": [
                {
                    "result-type": "certificate-expired",
                    "sending-mta-ip": "192.0.2.1",
                    "receiving-mx-hostname": "mx.example.net",
                    "receiving-ip": "198.51.100.7",
                    "failed-session-count": 2,
                }
            ],
        }
    ],
}


def mutate(change: Callable[[dict[str, Any]], object]) -> bytes:
    report = copy.deepcopy(BASE)
    change(report)
    return json.dumps(report).encode()


def _policy(r: dict[str, Any]) -> dict[str, Any]:
    return r["policies"][0]["policy"]  # type: ignore[no-any-return]


def _detail(r: dict[str, Any]) -> dict[str, Any]:
    return r["policies"][0]["failure-details"][0]  # type: ignore[no-any-return]


def test_the_base_report_needs_no_repair() -> None:
    """The fixture every deviation below starts from is conformant."""
    linted = read_report(mutate(lambda r: None))
    assert linted.valid
    assert linted.warnings == ()


REPAIRS: list[tuple[Callable[[dict[str, Any]], object], list[str]]] = [
    # E-63: no time zone (Microsoft 2023)
    (
        lambda r: r["date-range"].update({"start-datetime": "2024-01-09T00:00:00"}),
        ["report.date.no-timezone"],
    ),
    # a space instead of 'T'
    (
        lambda r: r["date-range"].update({"start-datetime": "2024-01-09 00:00:00Z"}),
        ["report.date.not-rfc3339"],
    ),
    # a date with no time
    (
        lambda r: r["date-range"].update({"start-datetime": "2024-01-09"}),
        ["report.date.no-time", "report.date.no-timezone"],
    ),
    # a leap second
    (
        lambda r: r["date-range"].update({"end-datetime": "2016-12-31T23:59:60Z"}),
        ["report.date.leap-second", "report.date-range.reversed"],
    ),
    # E-61: mx-host a string (RFC App. B before erratum 6241)
    (lambda r: _policy(r).update({"mx-host": "mx.example.net"}), ["report.mx-host.string"]),
    # mx-host missing on an sts policy (Microsoft)
    (lambda r: _policy(r).pop("mx-host"), ["report.mx-host.missing"]),
    # the prose name used as the key
    (
        lambda r: _policy(r).update({"mx-host-pattern": _policy(r).pop("mx-host")}),
        ["report.key.alias"],
    ),
    # E-62: policy-domain missing (Postfix + sys4)
    (lambda r: _policy(r).pop("policy-domain"), ["report.policy-domain.missing"]),
    # policy-domain in upper case with a trailing dot
    (
        lambda r: _policy(r).update({"policy-domain": "Example.NET."}),
        ["report.policy-domain.not-canonical"],
    ),
    # E-71: a U-label policy-domain is kept and named
    (
        lambda r: _policy(r).update({"policy-domain": "bücher.example"}),
        ["report.policy-domain.u-label"],
    ),
    # policy-string a bare string
    (
        lambda r: _policy(r).update({"policy-string": "version: STSv1"}),
        ["report.policy-string.string"],
    ),
    # policy-string missing (Mail.ru)
    (lambda r: _policy(r).pop("policy-string"), ["report.policy-string.missing"]),
    # TLSA RRset as JSON inside one string (Microsoft)
    (
        lambda r: _policy(r).update(
            {"policy-type": "tlsa", "mx-host": [], "policy-string": ['["3 1 1 AB","3 1 1 CD"]']}
        ),
        ["report.policy-string.json-encoded"],
    ),
    # policy-type in upper case
    (lambda r: _policy(r).update({"policy-type": "STS"}), ["report.policy-type.case"]),
    # contact-info null (Stalwart) / missing
    (lambda r: r.update({"contact-info": None}), ["report.contact-info.missing"]),
    (lambda r: r.pop("contact-info"), ["report.contact-info.missing"]),
    (lambda r: r.pop("organization-name"), ["report.organization-name.missing"]),
    (lambda r: r.pop("report-id"), ["report.report-id.missing"]),
    # E-66: an unregistered result type is kept
    (
        lambda r: _detail(r).update({"result-type": "quantum-failure"}),
        ["report.result-type.unregistered"],
    ),
    (
        lambda r: _detail(r).update({"result-type": "Certificate-Expired"}),
        ["report.result-type.case"],
    ),
    # E-70: counts that disagree with the details
    (
        lambda r: r["policies"][0]["summary"].update({"total-failure-session-count": 1}),
        ["report.counts.mismatch"],
    ),
    # a count missing from the summary (stalwartlabs rpt03): derived
    (
        lambda r: r["policies"][0]["summary"].pop("total-failure-session-count"),
        ["report.summary.missing"],
    ),
    (lambda r: r["policies"][0].pop("summary"), ["report.summary.missing"]),
    # counts as strings or floats
    (lambda r: _detail(r).update({"failed-session-count": "2"}), ["report.count.string"]),
    (lambda r: _detail(r).update({"failed-session-count": 2.0}), ["report.count.float"]),
    # E-65: empty strings and nulls for optional fields (parsedmarc#915)
    (lambda r: _detail(r).update({"sending-mta-ip": ""}), ["report.value.empty"]),
    (lambda r: _detail(r).update({"receiving-ip": None}), ["report.value.empty"]),
    # E-69: non-canonical IPv6 is read in RFC 5952 form
    (
        lambda r: _detail(r).update({"sending-mta-ip": "2001:DB8:0:0::1"}),
        ["report.ip.not-canonical"],
    ),
    (lambda r: _detail(r).update({"sending-mta-ip": "mx.example"}), ["report.ip.invalid"]),
    # the prose name of additional-information (parsedmarc <= 10)
    (
        lambda r: _detail(r).update({"additional-info-uri": "https://x.example/"}),
        ["report.key.alias"],
    ),
    # E-68: policies as an object
    (lambda r: r.update({"policies": r["policies"][0]}), ["report.policies.object"]),
    (
        lambda r: r["policies"][0].update({"failure-details": _detail(r)}),
        ["report.failure-details.object"],
    ),
    (lambda r: r.update({"policies": []}), ["report.policies.empty"]),
    # unknown keys are ignored and named
    (lambda r: r.update({"x-extra": 1}), ["report.key.unknown"]),
    # a non-string where text is expected
    (lambda r: r.update({"report-id": 12345}), ["report.value.type"]),
]


@pytest.mark.parametrize(("change", "codes"), REPAIRS)
def test_each_deviation_is_repaired_and_named(
    change: Callable[[dict[str, Any]], object], codes: list[str]
) -> None:
    """The reader accepts the deviation and records exactly the repairs it made."""
    linted = read_report(mutate(change))
    assert linted.errors == ()
    assert linted.value is not None
    assert sorted(n.code for n in linted.warnings) == sorted(codes)


ERRORS: list[tuple[bytes, str]] = [
    (b"", "report.format.unknown"),  # nothing at all
    (b"hello world", "report.format.unknown"),  # neither JSON, gzip nor mail
    (b"{not json", "report.json.invalid"),  # broken JSON
    (b"[1, 2]", "report.shape"),  # an array, not a report object
    (b'{"a": NaN}', "report.json.invalid"),  # NaN is not JSON
    (b"[" * 100_000 + b"]" * 100_000, "report.json.too-deep"),  # a nesting bomb
    (gzip.compress(b"{}")[:10] + b"\xff" * 20, "report.gzip.invalid"),  # corrupt deflate data
    (gzip.compress(b'{"a": 1}')[:-12], "report.gzip.truncated"),  # cut-off gzip
    # date-range missing / malformed
    (mutate(lambda r: r.pop("date-range")), "report.date.missing"),
    (mutate(lambda r: r["date-range"].pop("end-datetime")), "report.date.missing"),
    (
        mutate(lambda r: r["date-range"].update({"start-datetime": "yesterday"})),
        "report.date.invalid",
    ),
    (
        mutate(lambda r: r["date-range"].update({"start-datetime": "2024-02-30T00:00:00Z"})),
        "report.date.invalid",
    ),
    (
        mutate(lambda r: r["date-range"].update({"start-datetime": 1704758400})),
        "report.date.invalid",
    ),
    # policies missing or of the wrong type
    (mutate(lambda r: r.pop("policies")), "report.policies.missing"),
    (mutate(lambda r: r.update({"policies": "sts"})), "report.policies.missing"),
    (mutate(lambda r: r["policies"][0].pop("policy")), "report.policy.missing"),
    (mutate(lambda r: _policy(r).update({"policy-type": "dmarc"})), "report.policy-type.unknown"),
    (mutate(lambda r: _policy(r).pop("policy-type")), "report.policy-type.missing"),
    (mutate(lambda r: _policy(r).update({"mx-host": [["nested"]]})), "report.shape"),
    # counts that cannot be repaired
    (mutate(lambda r: _detail(r).update({"failed-session-count": -1})), "report.count.negative"),
    (
        mutate(lambda r: _detail(r).update({"failed-session-count": 2**53})),
        "report.count.too-large",
    ),
    (mutate(lambda r: _detail(r).update({"failed-session-count": 1.5})), "report.count.type"),
    (mutate(lambda r: _detail(r).update({"failed-session-count": True})), "report.count.type"),
    (mutate(lambda r: _detail(r).update({"failed-session-count": "many"})), "report.count.type"),
    # a count as a string must be ASCII digits: str.isdigit() also takes these
    (
        mutate(lambda r: _detail(r).update({"failed-session-count": "\u0661\u0662"})),
        "report.count.type",
    ),
    (mutate(lambda r: _detail(r).update({"failed-session-count": "\u00b2"})), "report.count.type"),
    # a 5000-digit string: beyond 2^53-1, and beyond int()'s 4300-digit limit
    (
        mutate(lambda r: _detail(r).update({"failed-session-count": "9" * 5000})),
        "report.count.too-large",
    ),
    (
        mutate(lambda r: _detail(r).pop("failed-session-count")),
        "report.failed-session-count.missing",
    ),
    (mutate(lambda r: _detail(r).pop("result-type")), "report.result-type.missing"),
    (
        mutate(
            lambda r: r["policies"][0]["summary"].update({"total-successful-session-count": -5})
        ),
        "report.count.negative",
    ),
]


@pytest.mark.parametrize(("data", "code"), ERRORS)
def test_hard_failures_are_errors_not_exceptions(data: bytes, code: str) -> None:
    """What cannot be repaired gives value None and one error with a stable code."""
    linted = read_report(data)
    assert linted.value is None
    assert [n.code for n in linted.errors] == [code]


def test_duplicate_keys_keep_the_first_and_warn() -> None:
    """E-67: I-JSON forbids duplicate names; the first wins and it is never silent."""
    data = write_report(read_report(mutate(lambda r: None)).value)  # type: ignore[arg-type]
    doubled = data.replace(b'"report-id":"r1"', b'"report-id":"r1","report-id":"r2"')
    linted = read_report(doubled)
    assert linted.value is not None
    assert linted.value.report_id == "r1"
    assert [n.code for n in linted.warnings] == ["report.json.duplicate-key"]


def test_bom_and_bad_utf8_are_repaired() -> None:
    """A UTF-8 BOM is dropped and invalid UTF-8 replaced, each with a warning."""
    base = mutate(lambda r: None)
    assert [n.code for n in read_report(b"\xef\xbb\xbf" + base).warnings] == ["report.json.bom"]
    bad = base.replace(b'"Org"', b'"Org\xff"')
    linted = read_report(bad)
    assert linted.value is not None
    assert linted.value.organization_name == "Org\ufffd"
    assert [n.code for n in linted.warnings] == ["report.json.not-utf8"]


def test_lone_surrogates_are_replaced_so_the_report_can_be_written() -> None:
    """I-JSON: a \\ud800 escape is replaced, so the strict writer never fails on it."""
    linted = read_report(mutate(lambda r: r.update({"report-id": "a\ud800b"})))
    assert linted.value is not None
    assert [n.code for n in linted.warnings] == ["report.json.invalid-unicode"]
    write_report(linted.value)


# --- gzip -----------------------------------------------------------------------------------


def _gzip_of_zeros(size: int) -> bytes:
    """A gzip member of ``size`` zero bytes, built by streaming (never in memory whole)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [deflater.compress(block) for _ in range(size // len(block))]
    parts.append(deflater.flush())
    return b"".join(parts)


def test_a_gzip_bomb_is_refused_quickly() -> None:
    """1 GiB of zeros compressed to ~1 MB stops at the cap: report.too-large, fast."""
    bomb = _gzip_of_zeros(1 << 30)
    assert len(bomb) < 2 * 2**20
    started = time.monotonic()
    linted = read_report(bomb)
    assert time.monotonic() - started < 5
    assert [n.code for n in linted.errors] == ["report.too-large"]


def test_max_bytes_applies_to_raw_and_decompressed_sizes() -> None:
    """The bound covers the input itself and what it inflates to."""
    data = mutate(lambda r: None)
    assert read_report(data, max_bytes=len(data)).valid
    assert read_report(data, max_bytes=len(data) - 1).errors[0].code == "report.too-large"
    packed = gzip.compress(data)
    assert read_report(packed, max_bytes=len(data)).valid
    assert read_report(packed, max_bytes=len(data) - 1).errors[0].code == "report.too-large"


def test_multi_member_gzip_and_trailing_data() -> None:
    """E-76: every gzip member is read; bytes after the gzip data are ignored with a warning."""
    data = mutate(lambda r: None)
    half = len(data) // 2
    two_members = gzip.compress(data[:half]) + gzip.compress(data[half:])
    assert read_report(two_members).valid
    linted = read_report(gzip.compress(data) + b"junk")
    assert linted.valid
    assert [n.code for n in linted.warnings] == ["report.gzip.trailing-data"]


def test_many_gzip_members_are_read_in_linear_time() -> None:
    """RPT-7-a: 2 MB of empty gzip members after the report (100 000 members) reads fast.

    Each member once re-copied the rest of the input: minutes of CPU for a 10 MB input.
    """
    data = mutate(lambda r: None)
    packed = gzip.compress(data, mtime=0) + gzip.compress(b"", mtime=0) * 100_000
    started = time.monotonic()
    linted = read_report(packed)
    elapsed = time.monotonic() - started
    assert linted.valid
    assert linted.warnings == ()
    assert elapsed < 2, f"read_report took {elapsed:.1f} s"


def test_gzip_file_name_is_ignored() -> None:
    """RPT-6.3-a: the FNAME in a gzip header (here a path) is never used."""
    import io

    buffer = io.BytesIO()
    with gzip.GzipFile(filename="../../etc/passwd", mode="wb", fileobj=buffer, mtime=0) as f:
        f.write(mutate(lambda r: None))
    linted = read_report(buffer.getvalue())
    assert linted.valid
    assert linted.warnings == ()


# --- e-mail ---------------------------------------------------------------------------------


def _mail(
    payload: bytes,
    maintype: str = "application",
    subtype: str = "tlsrpt+gzip",
    *,
    domain: str | None = "example.net",
    submitter: str | None = "org.example",
    report_type: str = "tlsrpt",
) -> bytes:
    message = EmailMessage()
    message["From"] = "tlsrpt@org.example"
    message["To"] = "reports@example.net"
    message["Subject"] = "Report Domain: example.net Submitter: org.example Report-ID: <r1@org>"
    if domain is not None:
        message["TLS-Report-Domain"] = domain
    if submitter is not None:
        message["TLS-Report-Submitter"] = submitter
    message.set_content("This is an aggregate TLS report.")
    message.add_attachment(payload, maintype=maintype, subtype=subtype, filename="r.json.gz")
    message.replace_header("Content-Type", f'multipart/report; report-type="{report_type}"')
    message.set_boundary("BOUNDARY")
    return message.as_bytes()


def test_a_conformant_report_mail_reads_without_warnings() -> None:
    """RPT-5.3-b: multipart/report with an application/tlsrpt+gzip part."""
    linted = read_report(_mail(gzip.compress(mutate(lambda r: None))))
    assert linted.valid
    assert linted.warnings == ()


MAIL_VARIANTS: list[tuple[dict[str, Any], bool, list[str]]] = [
    ({"subtype": "tlsrpt+json"}, False, []),  # uncompressed JSON part
    ({"subtype": "gzip"}, True, ["report.mail.media-type"]),  # application/gzip
    ({"subtype": "json"}, False, ["report.mail.media-type"]),  # application/json
    ({"subtype": "octet-stream"}, True, ["report.mail.media-type"]),  # generic binary
    ({"subtype": "tlsrpt+gzip"}, False, ["report.mail.media-type-mismatch"]),  # says gzip, is JSON
    ({"report_type": "dmarc"}, True, ["report.mail.report-type"]),  # wrong report-type
    ({"domain": None}, True, ["report.mail.tls-report-domain.missing"]),  # no header (E-72)
    ({"submitter": None}, True, ["report.mail.tls-report-submitter.missing"]),  # no header
    ({"submitter": "other.example"}, True, ["report.mail.submitter-mismatch"]),  # E-72
    ({"domain": "other.example"}, True, ["report.mail.domain-mismatch"]),  # body wins (§5.6)
]


@pytest.mark.parametrize(("options", "compress", "codes"), MAIL_VARIANTS)
def test_report_mail_variants_are_accepted_with_warnings(
    options: dict[str, Any], compress: bool, codes: list[str]
) -> None:
    """E-76: media-type and header deviations real senders show are read and named."""
    body = mutate(lambda r: None)
    linted = read_report(_mail(gzip.compress(body) if compress else body, **options))
    assert linted.valid
    assert [n.code for n in linted.warnings] == codes


def test_missing_policy_domain_is_taken_from_the_mail_header() -> None:
    """E-62: with no policy-domain in the body, TLS-Report-Domain fills it (warned)."""
    body = mutate(lambda r: _policy(r).pop("policy-domain"))
    linted = read_report(_mail(gzip.compress(body)))
    assert linted.value is not None
    assert linted.value.policies[0].policy_domain == "example.net"
    assert [n.code for n in linted.warnings] == ["report.policy-domain.missing"]


def test_a_mail_without_a_report_part_is_an_error() -> None:
    """A mail whose only attachment is text has no report: report.mail.no-report."""
    data = _mail(b"hello", maintype="text", subtype="plain")
    assert [n.code for n in read_report(data).errors] == ["report.mail.no-report"]


def test_a_mail_of_countless_mime_parts_is_refused_before_parsing() -> None:
    """RPT-7-a: 20 000 empty MIME parts (200 KB) are refused at once, not parsed.

    The e-mail parser spends about 0.3 ms per part, so a 10 MB message of empty parts
    once cost a receiver minutes before the 100-part walk limit applied.
    """
    head = b'From: a@example.org\r\nContent-Type: multipart/report; boundary="B"\r\n\r\n'
    data = head + b"--B\r\n\r\nx\r\n" * 20_000 + b"--B--\r\n"
    started = time.monotonic()
    linted = read_report(data)
    elapsed = time.monotonic() - started
    assert [n.code for n in linted.errors] == ["report.mail.too-many-parts"]
    assert elapsed < 1, f"read_report took {elapsed:.1f} s"


def test_a_single_part_report_mail_is_accepted() -> None:
    """A message whose whole body is the gzip report (no multipart) is read, warned."""
    message = EmailMessage()
    message["From"] = "tlsrpt@org.example"
    message["TLS-Report-Domain"] = "example.net"
    message["TLS-Report-Submitter"] = "org.example"
    message.set_content(
        gzip.compress(mutate(lambda r: None)), maintype="application", subtype="tlsrpt+gzip"
    )
    linted = read_report(message.as_bytes())
    assert linted.valid
    assert [n.code for n in linted.warnings] == ["report.mail.not-multipart-report"]


# --- fuzzing --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.binary(max_size=2000))
def test_read_report_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    """Untrusted bytes (RFC 8460 §7) give a Linted value, never an exception."""
    linted = read_report(data)
    assert (linted.value is None) == bool(linted.errors)


@given(st.binary(max_size=300))
def test_read_report_never_raises_on_mail_or_gzip_lookalikes(data: bytes) -> None:
    """Bytes that start like a mail or a gzip stream are handled without exceptions."""
    read_report(b"Content-Type: multipart/report; boundary=x\r\n\r\n--x\r\n" + data)
    read_report(b"\x1f\x8b\x08\x00" + data)


@given(
    st.sampled_from(["organization-name", "date-range", "contact-info", "report-id", "policies"]),
    json_values,
)
def test_report_from_json_never_raises_on_odd_values(key: str, value: object) -> None:
    """Any JSON value in any top-level slot is repaired or refused, never raised."""
    report = copy.deepcopy(BASE)
    report[key] = value
    linted = report_from_json(report)
    assert (linted.value is None) == bool(linted.errors)


@given(json_values)
def test_report_from_json_never_raises_inside_a_policy(value: object) -> None:
    """Any JSON value in place of a policy, summary or detail field never raises."""
    for target in ("policy", "summary", "failure-details"):
        report = copy.deepcopy(BASE)
        report["policies"][0][target] = value
        report_from_json(report)
    for key in ("result-type", "failed-session-count", "sending-mta-ip"):
        report = copy.deepcopy(BASE)
        _detail(report)[key] = value
        report_from_json(report)


@pytest.mark.parametrize("text", ["\u00b2", "\u0661\u0662", "9" * 5000, " 1" + "0" * 4400])
def test_report_from_json_refuses_odd_count_strings_without_raising(text: str) -> None:
    """A count written as a string is read only if it is ASCII digits within 2^53-1."""
    report = copy.deepcopy(BASE)
    _detail(report)["failed-session-count"] = text
    linted = report_from_json(report)
    assert linted.value is None
    assert [n.code for n in linted.errors] in (["report.count.type"], ["report.count.too-large"])


DATES = [
    ("2024-01-09T02:00:00+02:00", "2024-01-09T00:00:00+00:00", []),  # an offset: converted
    ("2024-01-08T19:00:00-05:00", "2024-01-09T00:00:00+00:00", []),  # a negative offset
    ("2024-01-09t00:00:00z", "2024-01-09T00:00:00+00:00", []),  # lower case (RFC 3339 note)
    ("2024-01-09T00:00:00.250Z", "2024-01-09T00:00:00.250000+00:00", []),  # a fraction
    ("2024-01-09T02:00:00+0200", "2024-01-09T00:00:00+00:00", ["report.date.not-rfc3339"]),
    ("2024-01-09T00:00:00 UTC", "2024-01-09T00:00:00+00:00", ["report.date.not-rfc3339"]),
    ("2024-01-09T00:00Z", "2024-01-09T00:00:00+00:00", ["report.date.not-rfc3339"]),  # no secs
    (" 2024-01-09T00:00:00Z\n", "2024-01-09T00:00:00+00:00", ["report.date.not-rfc3339"]),
]


@pytest.mark.parametrize(("text", "instant", "codes"), DATES)
def test_start_datetime_forms(text: str, instant: str, codes: list[str]) -> None:
    """RFC 3339 forms and near misses all become the same UTC instant; misses are named."""
    linted = read_report(mutate(lambda r: r["date-range"].update({"start-datetime": text})))
    assert linted.value is not None
    assert linted.value.date_range_start.isoformat() == instant
    assert [n.code for n in linted.warnings] == codes


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-09T00:00:00+24:00",  # an offset of a whole day
        "2024-01-09T00:00:00+00:60",  # offset minute 60 (time-minute is 00-59)
        "2024-01-09T00:00:00-05:99",  # offset minute 99
        "2024-13-01T00:00:00Z",  # month 13
        "2024-01-09T25:00:00Z",  # hour 25
        "２０２４-01-09T00:00:00Z",  # full-width digits
    ],
)
def test_impossible_datetimes_are_errors(text: str) -> None:
    """A date-time that names no real instant is report.date.invalid."""
    linted = read_report(mutate(lambda r: r["date-range"].update({"start-datetime": text})))
    assert [n.code for n in linted.errors] == ["report.date.invalid"]


# --- bounded cost: each hostile shape is refused before it is materialised ----------------


def _traced_peak(data: bytes) -> tuple[Linted[Report], int]:
    """read_report(data) and the peak of Python memory it allocated, in bytes."""
    tracemalloc.start()
    try:
        linted = read_report(data)
        return linted, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


_HEAD = b"From: a@example.org\r\nTLS-Report-Domain: example.net\r\n"
_WORDS = b" ".join([b"=?utf-8?q?a?="] * 3000)  # 42 KB; the old parse peaked at ~70 MB


@pytest.mark.parametrize(
    "header",
    [
        b"Subject: " + _WORDS + b"\r\nContent-Type: application/tlsrpt+json\r\n",
        b"TLS-Report-Domain: " + _WORDS + b"\r\nContent-Type: application/tlsrpt+json\r\n",
        b'Content-Type: application/tlsrpt+json; name="' + _WORDS + b'"\r\n',
    ],
    ids=["subject", "tls-report-domain", "content-type-parameter"],
)
def test_a_header_of_countless_encoded_words_is_refused_in_bounded_memory(header: bytes) -> None:
    """RPT-7-a: the stdlib header parser is quadratic in RFC 2047 encoded words (20 000
    took 3.3 GB); a field with more than 100 is refused before it is decoded."""
    linted, peak = _traced_peak(_HEAD + header + b"\r\n{}")
    assert [n.code for n in linted.errors] == ["report.mail.header-too-large"]
    assert "3000 MIME encoded words" in linted.errors[0].message
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_a_header_with_a_few_encoded_words_is_read() -> None:
    """Real senders encode a Subject in a few words; 100 in one field are still read."""
    words = " ".join(["=?utf-8?q?r=C3=A9sum=C3=A9?="] * 100)
    message = email.message_from_bytes(_mail(gzip.compress(mutate(lambda r: None))))
    message.replace_header("Subject", words)
    assert read_report(message.as_bytes()).valid


@pytest.mark.parametrize(
    ("header", "what"),
    [
        (b"X-Filler: x\r\n" * 3000, "more than 2000 header fields"),
        (b"X-Filler: " + b"x" * 300_000 + b"\r\n", "more than 262144 bytes"),
        (b"Content-Type: application/json; " + b"p=v; " * 4000 + b"\r\n", "Content-Type"),
        # defect: the structured header parser is quadratic in comments and quoted strings
        # (5,000 comments in 15 KB took 16 s, and it parses again at every look-up)
        (b"Content-Type: application/json; x=" + b"(a)" * 2000 + b"\r\n", "above 512"),
        (b'Content-Disposition: attachment; x="' + b"\\a" * 2000 + b'"\r\n', "above 512"),
        (b"Subject: " + b"a\r\n " * 50_000 + b"\r\n", "Subject field is 200000 bytes, above 8192"),
    ],
    ids=["fields", "bytes", "content-type-parameters", "comments", "quoted", "folded-subject"],
)
def test_an_oversized_header_is_refused(header: bytes, what: str) -> None:
    """Countless header fields cost ~200 bytes each, structured MIME fields are parsed in
    time quadratic in their comments and quoted strings (again at each look-up), a long
    folded Subject costs ~1 KB of memory a line; the header budget of the whole message
    is checked field by field, before any field is decoded."""
    linted = read_report(_HEAD + header + b"\r\n{}")
    assert [n.code for n in linted.errors] == ["report.mail.header-too-large"]
    assert what in linted.errors[0].message


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "bare-cr"])
def test_mime_boundaries_are_counted_however_lines_end(end: bytes) -> None:
    """RPT-7-a: the 400-boundary guard counted only "\\n--", so bare-CR boundaries (which
    the parser honours) cost 60 s of CPU for 3 MB; every line ending counts now."""
    head = b"From: a@example.org" + end + b'Content-Type: multipart/report; boundary="B"' + end
    data = head + end + (b"--B" + end + end + b"x" + end) * 2000 + b"--B--" + end
    linted = read_report(data)
    assert [n.code for n in linted.errors] == ["report.mail.too-many-parts"]
    assert "2001 lines starting with '--'" in linted.errors[0].message


def test_deeply_nested_multiparts_are_refused() -> None:
    """The parser checks every line against each enclosing boundary: 100 nested
    multiparts and 100,000 lines (500 KB) cost seconds; more than 20 are refused."""
    data = b"From: a@example.org\r\n"
    for level in range(100):
        data += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (level, level)
    data += b"Content-Type: application/tlsrpt+json\r\n\r\n" + b"x\r\n" * 100_000
    linted = read_report(data)
    assert [n.code for n in linted.errors] == ["report.mail.too-many-parts"]
    assert "more than 20 multipart sections" in linted.errors[0].message


def test_a_mail_of_countless_lines_is_refused_in_bounded_memory() -> None:
    """The parser keeps every line as an object (~15 bytes each): 32 MB of bare CRs cost
    470 MB and a minute; more than 500 000 lines (38 MB of base64) are refused."""
    linted, peak = _traced_peak(_HEAD + b"\r\n" + b"\r" * 600_000)
    assert [n.code for n in linted.errors] == ["report.mail.too-many-lines"]
    assert peak < 2 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_a_json_of_countless_values_is_refused_before_decoding() -> None:
    """RPT-7-a: 32 MB of empty objects took 872 MB once decoded; the values are counted
    in the bytes first and more than 1.2 million are refused."""
    data = b"[" + b",".join([b"{}"] * 1_300_000) + b"]"
    linted, peak = _traced_peak(data)
    assert [n.code for n in linted.errors] == ["report.json.too-many-values"]
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_counting_json_values_is_linear_on_an_unterminated_string() -> None:
    """Strings are blanked by a pattern that cannot fail once it starts at a quote; one
    that could would be retried from each of these 2.5 million quotes (hours of CPU)."""
    data = b"[" + b"," * 1_300_000 + b'"' + b'\\"' * 2_500_000 + b"\\"
    linted = read_report(data)
    assert [n.code for n in linted.errors] == ["report.json.too-many-values"]


def test_counting_json_values_outside_strings_takes_bounded_memory() -> None:
    """Skipping 1.3 million short strings must not cost a list entry each (a regex
    substitution took 1.2 GB for 32 MB of them); the passes copy the input at most."""
    data = b"[" + b'"ab",' * 1_300_000 + b'"a"]'  # 6.5 MB, no comma inside a string
    linted, peak = _traced_peak(data)
    assert [n.code for n in linted.errors] == ["report.json.too-many-values"]
    assert peak < 3 * len(data), f"peak {peak / 2**20:.0f} MiB"


def test_json_values_are_counted_outside_strings_only() -> None:
    """Commas and brackets inside strings are not values: such a report is still read."""
    text = ',{["\\",' * 200_000
    linted = read_report(
        mutate(
            lambda r: r["policies"][0]["failure-details"][0].update(
                {"additional-information": text}
            )
        )
    )
    assert linted.valid
    assert linted.value is not None
    assert linted.value.policies[0].failure_details[0].additional_information == text


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab,[{"\\\n'),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


def _values(value: object) -> int:
    if isinstance(value, list):
        return 1 + sum(_values(v) for v in value)
    if isinstance(value, dict):
        return 1 + sum(_values(v) for v in value.values())
    return 1


@given(_JSON_VALUES)
def test_the_json_value_count_is_an_upper_bound(value: object) -> None:
    """Commas and brackets inside strings never count, and the count never falls short
    of the values json.loads would build (the slow path, with strings blanked)."""
    raw = json.dumps(value).encode()
    counted = unpack.count_json_values(raw, fast_limit=0)
    assert _values(value) <= counted <= _values(value) + raw.count(b"{}") + raw.count(b"[]")
