"""Every scenario the collector can count, written as a report and as a report mail, and
read back by our own tolerant reader: the same values and not one warning (issue 16).

The scenarios are the libtlsrpt datagrams of libtlsrpt's doc/example.txt (as in
``collect/test_datagram.py``), the outcomes of the real Postfix 3.7 harness log (as in
``collect/test_postfix_log.py``), and the cases issue 16 found wrong: DANE, IPv4-mapped
IPv6, text that is not an IP address, a success that carries a failure, a failure
without details, a libtlsrpt code without text. Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson
import pytest

from mtasts.results import PolicyType
from mtasts.tlsrpt.aggregate import BuiltReport, ReportSettings, build_reports, report_domain
from mtasts.tlsrpt.collect.counters import Counters
from mtasts.tlsrpt.collect.datagram import PolicyOutcome, SessionOutcome, decode_datagram
from mtasts.tlsrpt.collect.postfix_log import read_log, to_session
from mtasts.tlsrpt.deliver import SendSettings, build_message
from mtasts.tlsrpt.report import read_report, write_report, write_report_gzip
from mtasts.tlsrpt.store import OutboxReport

from .collect.test_datagram import EXAMPLE_3, EXAMPLE_4_NO_POLICY, EXAMPLE_6_SUCCESS
from .collect.test_postfix_log import MAILLOG

DAY = date(2026, 11, 22)
SETTINGS = ReportSettings("Example Sender", "tlsrpt@sender.example")
REC = "v=TLSRPTv1; rua=mailto:tlsrpt@company-y.example"
STS_LINES = ["version: STSv1", "mode: enforce", "mx: mx1.a.example", "max_age: 86400"]


def datagram(policies: list[dict[str, object]], domain: str = "a.example") -> bytes:
    return orjson.dumps({"dpv": "1", "d": domain, "pr": REC, "policies": policies})


def sts(failed: int, *failures: dict[str, object], **extra: object) -> dict[str, object]:
    return {
        "policy-type": 2,
        "policy-domain": "a.example",
        "policy-string": STS_LINES,
        "mx-host": ["mx1.a.example"],
        "failure-details": list(failures),
        "t": len(failures),
        "f": failed,
        **extra,
    }


def dane(mx: str, failed: int, *failures: dict[str, object]) -> dict[str, object]:
    # Postfix: the TLSA base domain (the MX host) is the policy domain, no mx-host.
    return {
        "policy-type": 1,
        "policy-domain": mx,
        "policy-string": ["3 1 1 2BB4A9F2D9B1E6C7A8F0D5E4C3B2A19080706050403020100FFEEDDCCBBAA99"],
        "failure-details": list(failures),
        "t": len(failures),
        "f": failed,
    }


MISMATCH = {"c": 202, "s": "192.0.2.1", "n": "mx1.a.example", "r": "198.51.100.7", "f": "62"}
DATAGRAMS: dict[str, list[bytes]] = {
    "libtlsrpt example 3 (sts failures)": [EXAMPLE_3],
    "libtlsrpt example 4 (no policy, old library)": [EXAMPLE_4_NO_POLICY],
    "libtlsrpt example 6 (success)": [EXAMPLE_6_SUCCESS],
    "success after a failed MX": [datagram([sts(0, MISMATCH)])],
    "failed session without details": [datagram([sts(1)]), datagram([sts(1, MISMATCH)])],
    "code without text": [datagram([sts(1, {"c": 203}), sts(1, {"c": 205}), sts(1, {"c": 7})])],
    "IPv4-mapped IPv6": [
        datagram([sts(1, {**MISMATCH, "s": "::ffff:192.0.2.10", "r": "::FFFF:c633:6407"})])
    ],
    "IPv6 with a zone, uncompressed": [
        datagram([sts(1, {**MISMATCH, "s": "fe80:0:0:0:0:0:0:1%eth0", "r": "2001:DB8::7"})])
    ],
    "text that is not an IP address": [
        datagram([sts(1, {**MISMATCH, "s": "localhost", "r": "[198.51.100.7]"})]),
        datagram([sts(1, {**MISMATCH, "s": "", "r": "unknown"})]),
    ],
    "DANE, one MX": [
        datagram([dane("mx1.a.example", 0)]),
        datagram([dane("mx1.a.example", 1, {"c": 304, "n": "mx1.a.example", "f": "no match"})]),
    ],
    "DANE, two MX hosts": [
        datagram([dane("mx1.a.example", 0)]),
        datagram([dane("mx2.a.example", 1, {"c": 306, "n": "mx2.a.example"})]),
    ],
    "DANE and STS for one domain": [datagram([dane("mx1.a.example", 0)]), datagram([sts(0)])],
    "IDN policy domain": [
        orjson.dumps(
            {
                "d": "Bücher.example",
                "policies": [{"policy-type": 2, "policy-domain": "Bücher.example",
                              "mx-host": ["*.Bücher.example"], "t": 0, "f": 0}],
            }
        )
    ],
}  # fmt: skip


def _postfix_log_sessions() -> list[SessionOutcome]:
    def policy_for(domain: str) -> PolicyOutcome | None:
        lines = ("version: STSv1", "mode: enforce", f"mx: *.{domain}", "max_age: 86400")
        return PolicyOutcome(PolicyType.STS, domain, lines, (f"*.{domain}",))

    return [to_session(o, policy_for, "192.0.2.25") for o in read_log(MAILLOG.splitlines())]


def _sessions(name: str) -> list[SessionOutcome]:
    if name == "Postfix 3.7 harness log":
        return _postfix_log_sessions()
    return [decode_datagram(d) for d in DATAGRAMS[name]]


def _built(sessions: list[SessionOutcome]) -> list[BuiltReport]:
    counters = Counters()
    for session in sessions:
        counters.add(DAY, session)
    return build_reports(counters, DAY, SETTINGS)


SCENARIOS = [*DATAGRAMS, "Postfix 3.7 harness log"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_reads_back_without_a_warning(name: str) -> None:
    built = _built(_sessions(name))
    assert built
    for b in built:
        for data in (write_report(b.report), write_report_gzip(b.report)):
            linted = read_report(data)
            assert linted.warnings == (), [w.code for w in linted.warnings]
            assert linted.errors == ()
            assert linted.value == b.report
        for policy in b.report.policies:
            assert policy.total_failure_session_count == sum(
                d.failed_session_count for d in policy.failure_details
            )


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_mail_reads_back_without_a_warning(name: str) -> None:
    """The whole report mail (RFC 8460 §5.3): TLS-Report-Domain is the report's Policy
    Domain, so the reader finds it among the policies (no report.mail.domain-mismatch)."""
    for b in _built(_sessions(name)):
        outbox = OutboxReport(
            DAY, b.domain, b.report.report_id, b.filename, write_report_gzip(b.report), REC, ()
        )
        message = build_message(
            outbox,
            "tlsrpt@a.example",
            SendSettings(report=SETTINGS),
            datetime(2026, 11, 23, tzinfo=UTC),
        )
        linted = read_report(message.as_bytes())
        assert linted.warnings == (), [w.code for w in linted.warnings]
        assert linted.value == b.report
        domain = report_domain(b.report, b.domain)
        assert message["TLS-Report-Domain"] == domain
        assert message["Subject"].startswith(f"Report Domain: {domain} Submitter: ")
        assert b.filename.split("!")[1] == domain


def test_a_dane_mail_names_the_mx_host_as_its_report_domain() -> None:
    """Issue 16: the mail of a DANE report has TLS-Report-Domain equal to the report's
    policy domain (the TLSA base domain), not the next-hop domain whose rua receives it."""
    (b,) = _built(_sessions("DANE, one MX"))
    assert b.domain == "a.example"
    assert {p.policy_domain for p in b.report.policies} == {"mx1.a.example"}
    outbox = OutboxReport(
        DAY, b.domain, b.report.report_id, b.filename, write_report_gzip(b.report), REC, ()
    )
    message = build_message(
        outbox,
        "tlsrpt@a.example",
        SendSettings(report=SETTINGS),
        datetime(2026, 11, 23, tzinfo=UTC),
    )
    assert message["TLS-Report-Domain"] == "mx1.a.example"
    assert "Report Domain: mx1.a.example " in message["Subject"]
