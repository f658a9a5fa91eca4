"""Every real-world sample in tests/data/tlsrpt-samples reads, with its repairs recorded.

Each row: the file, the organisation, per policy (type, domain, successes, failures,
number of failure-details), and the warning codes the tolerant reader must record. The
warnings name the sender deviations listed in tests/data/tlsrpt-samples/SOURCES.md.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mtasts.results import ResultType
from mtasts.tlsrpt.report import read_report, report_to_json, write_report

GOOGLE = "Google Inc."
MS = "Microsoft Corporation"

SAMPLES: dict[str, tuple[str, list[tuple[str, str, int, int, int]], list[str]]] = {
    # Microsoft via HTTPS POST, gzip body: no mx-host.
    "Neztore+tls-rpt-monitor/microsoft-report.json.gz": (
        MS,
        [("sts", "josh.scot", 2, 0, 0)],
        ["report.mx-host.missing"],
    ),
    "cry-inc+dmarc-report-viewer/google.json": (GOOGLE, [("sts", "foo-bar.io", 1, 0, 0)], []),
    # Microsoft: TLSA policy-string is a JSON array inside a string; no mx-host.
    "cry-inc+dmarc-report-viewer/microsoft.json": (
        MS,
        [("sts", "random.net", 2, 0, 0), ("tlsa", "random.net", 2, 0, 0)],
        ["report.mx-host.missing", "report.policy-string.json-encoded"],
    ),
    # Stalwart-style: contact-info null, next-midnight end, empty failure-details.
    "cry-inc+dmarc-report-viewer/no-contact.json": (
        "server.com",
        [("sts", "server.com", 1, 0, 0)],
        ["report.contact-info.missing"],
    ),
    "cry-inc+dmarc-report-viewer/no-policy.json": (
        GOOGLE,
        [("no-policy-found", "foo-bar.io", 1, 0, 0)],
        [],
    ),
    # Microsoft: fetch error with no IP, no MX, no policy-string.
    "cry-inc+dmarc-report-viewer/no_ip_and_mx.json": (
        MS,
        [("sts", "xxxxxxxx.xx", 0, 3, 1)],
        ["report.mx-host.missing", "report.policy-string.missing"],
    ),
    "domainaware+parsedmarc/google.com_smtp_tls_report.eml": (
        GOOGLE,
        [("no-policy-found", "cardinalhealth.ca", 48, 0, 0)],
        [],
    ),
    # Mail.ru: summary 1 vs details 2; no IPs; no policy-string.
    "domainaware+parsedmarc/mail.ru.json": (
        "Mail.ru",
        [("sts", "example.com", 0, 1, 2)],
        ["report.mx-host.missing", "report.counts.mismatch", "report.policy-string.missing"],
    ),
    # The RFC example before erratum 6241: mx-host is a string.
    "domainaware+parsedmarc/rfc8460.json": (
        "Company-X",
        [("sts", "company-y.example", 5326, 303, 3)],
        ["report.mx-host.string", "report.ip.not-canonical", "report.ip.not-canonical"],
    ),
    "domainaware+parsedmarc/smtp_tls.json": (
        "Example Inc.",
        [("sts", "example.com", 0, 3, 2)],
        ["report.mx-host.missing"],
    ),
    "isseis+tlsrpt-digest/tlsrpt_failure.eml": (
        GOOGLE,
        [("sts", "example.com", 4523, 2, 1)],
        ["report.mx-host.missing"],
    ),
    "isseis+tlsrpt-digest/tlsrpt_success_google_1.eml": (
        GOOGLE,
        [("sts", "example.com", 1, 0, 0)],
        [],
    ),
    "isseis+tlsrpt-digest/tlsrpt_success_microsoft.eml": (
        MS,
        [("sts", "example.com", 2, 0, 0)],
        ["report.mx-host.missing"],
    ),
    "kravietz+tlsrpt-rs/google1.eml": (GOOGLE, [("sts", "krvtz.net", 1, 0, 0)], []),
    "kravietz+tlsrpt-rs/google2.eml": (GOOGLE, [("sts", "krvtz.net", 2, 0, 0)], []),
    # Mail.ru by mail: TLS-Report-Submitter mail.ru but contact-info at corp.mail.ru.
    "kravietz+tlsrpt-rs/mail.ru.eml": (
        "Mail.ru",
        [("sts", "krvtz.net", 0, 1, 1)],
        [
            "report.mx-host.missing",
            "report.policy-string.missing",
            "report.mail.submitter-mismatch",
        ],
    ),
    "kravietz+tlsrpt-rs/microsoft1.eml": (
        MS,
        [("sts", "krvtz.net", 2, 0, 0), ("tlsa", "krvtz.net", 2, 0, 0)],
        ["report.mx-host.missing", "report.policy-string.json-encoded"],
    ),
    "marcbradshaw+mail-tls-rpt/email.eml": (
        GOOGLE,
        [("no-policy-found", "fastmaildmarc.com", 343, 0, 0)],
        [],
    ),
    "mjl-+mox/example.eml": (GOOGLE, [("sts", "test.xmox.nl", 3, 0, 0)], []),
    # Microsoft 2023: date-times without a time zone.
    "mjl-+mox/microsoft.eml": (
        MS,
        [("sts", "test.xmox.nl", 2, 0, 0)],
        ["report.date.no-timezone", "report.date.no-timezone", "report.mx-host.missing"],
    ),
}


def test_the_table_covers_every_sample_file(samples_dir: Path) -> None:
    """No sample file is left out of the table (new samples must be added to it)."""
    files = {
        str(p.relative_to(samples_dir)) for p in samples_dir.rglob("*") if p.name != "SOURCES.md"
    }
    assert {f for f in files if not (samples_dir / f).is_dir()} == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_sample_reads_with_its_counts_and_repairs(samples_dir: Path, name: str) -> None:
    """The tolerant reader accepts the sample, keeps every count and names every repair."""
    organisation, policies, warnings = SAMPLES[name]
    linted = read_report((samples_dir / name).read_bytes())
    assert linted.errors == ()
    report = linted.value
    assert report is not None
    assert report.organization_name == organisation
    got = [
        (
            str(p.policy_type),
            p.policy_domain,
            p.total_successful_session_count,
            p.total_failure_session_count,
            len(p.failure_details),
        )
        for p in report.policies
    ]
    assert got == policies
    assert Counter(n.code for n in linted.warnings) == Counter(warnings)
    # What was read can be written strictly and read back unchanged.
    again = read_report(write_report(report))
    assert again.value == report


def test_microsoft_tlsa_policy_string_is_unpacked(samples_dir: Path) -> None:
    """Microsoft's JSON-in-a-string TLSA RRset becomes one element per TLSA record."""
    report = read_report((samples_dir / "kravietz+tlsrpt-rs/microsoft1.eml").read_bytes()).value
    assert report is not None
    tlsa = report.policies[1].policy_string
    assert len(tlsa) == 13
    assert tlsa[0] == "2 1 1 025490860B498AB73C6A12F27A49AD5FE230FAFE3AC8F6112C9B7D0AAD46941D"


def test_microsoft_offsetless_dates_are_read_as_utc(samples_dir: Path) -> None:
    """``2023-01-10T00:00:00`` (no zone) is read as UTC and written back with Z (E-63)."""
    report = read_report((samples_dir / "mjl-+mox/microsoft.eml").read_bytes()).value
    assert report is not None
    written = report_to_json(report)["date-range"]
    assert written == {
        "start-datetime": "2023-01-10T00:00:00Z",
        "end-datetime": "2023-01-10T23:59:59Z",
    }


def test_mail_ru_fetch_errors_keep_reason_and_lack_ips(samples_dir: Path) -> None:
    """Mail.ru's fetch-error details have no IPs (kept absent) and a free-text reason."""
    report = read_report((samples_dir / "domainaware+parsedmarc/mail.ru.json").read_bytes()).value
    assert report is not None
    detail = report.policies[0].failure_details[0]
    assert ResultType.parse(detail.result_type) is ResultType.STS_POLICY_FETCH_ERROR
    assert detail.sending_mta_ip is None
    assert detail.receiving_mx_hostname is None
    assert detail.failure_reason_code == "bad https response code: 404"


def test_next_midnight_end_is_accepted_silently(samples_dir: Path) -> None:
    """E-64: an end-datetime at the next midnight is as good as 23:59:59."""
    linted = read_report((samples_dir / "kravietz+tlsrpt-rs/mail.ru.eml").read_bytes())
    assert linted.value is not None
    assert linted.value.date_range_end.isoformat() == "2023-01-26T00:00:00+00:00"
    assert not any(n.code.startswith("report.date") for n in linted.warnings)
