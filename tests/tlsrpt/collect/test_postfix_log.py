"""Postfix < 3.10 smtp(8) log lines -> TLS outcomes (lines from the real Postfix harness run,
guides/postfix-harness.md "Log excerpts", Postfix 3.7.11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtasts.results import PolicyType, ResultType
from mtasts.tlsrpt.collect.datagram import PolicyOutcome
from mtasts.tlsrpt.collect.postfix_log import (
    LogOutcome,
    PostfixLogReader,
    classify_verify_failure,
    read_log,
    to_session,
)

MAILLOG = (Path(__file__).parent / "data" / "postfix-3.7.11-harness.maillog").read_text()


def test_real_harness_log_gives_one_outcome_per_tls_connection() -> None:
    assert list(read_log(MAILLOG.splitlines())) == [
        LogOutcome("example.test", "mx1.example.test", "127.0.0.2", None),
        LogOutcome("example.test", "mx1.example.test", "127.0.0.2", None),  # case folded
        LogOutcome(
            "badcert.test",
            "mx.badcert.test",
            "127.0.0.3",
            ResultType.CERTIFICATE_HOST_MISMATCH,
            "num=62:hostname mismatch",
        ),
        LogOutcome(
            "untrusted.test",
            "mx.untrusted.test",
            "127.0.0.5",
            ResultType.CERTIFICATE_NOT_TRUSTED,
            "self-signed certificate",
        ),
        LogOutcome(
            "notls.test",
            "mx.notls.test",
            "127.0.0.4",
            ResultType.STARTTLS_NOT_SUPPORTED,
            "starttls-not-offered",
        ),
        LogOutcome("nopolicy.test", "mx.nopolicy.test", "127.0.0.3", None),
        # tempfail.test: relay=none, no connection, nothing to report (RFC 8460 §4.3.4)
    ]


def test_reused_connection_is_counted_once() -> None:
    """Two recipients after one handshake (Postfix connection cache): one outcome."""
    lines = [*MAILLOG.splitlines()[3:5], lines_second_rcpt()]
    assert len(list(read_log(lines))) == 1


def lines_second_rcpt() -> str:
    return (
        "Nov 23 11:28:42 sender postfix/smtp[31457]: B827F1600BF: to=<other@example.test>, "
        "relay=mx1.example.test[127.0.0.2]:25, delay=0.03, delays=0.01/0.02/0.01/0, "
        "dsn=2.0.0, status=sent (250 2.0.0 OK stored by sink good)"
    )


def test_processes_are_tracked_separately() -> None:
    r = PostfixLogReader()
    assert (
        r.feed(
            "x postfix/smtp[1]: Verified TLS connection established to a.test[192.0.2.1]:25: "
            "TLSv1.3"
        )
        is None
    )
    # another smtp process delivers plain text to another host: not counted
    assert (
        r.feed(
            "x postfix/smtp[2]: Q1: to=<u@b.test>, relay=b.test[192.0.2.2]:25, delay=1, "
            "status=sent (250 ok)"
        )
        is None
    )
    out = r.feed(
        "x postfix/smtp[1]: Q2: to=<u@a.test>, relay=a.test[192.0.2.1]:25, delay=1, "
        "status=sent (250 ok)"
    )
    assert out == LogOutcome("a.test", "a.test", "192.0.2.1", None)


@pytest.mark.parametrize(
    ("why", "result"),
    [
        ("num=62:hostname mismatch", ResultType.CERTIFICATE_HOST_MISMATCH),
        ("num=10:certificate has expired", ResultType.CERTIFICATE_EXPIRED),
        ("self-signed certificate", ResultType.CERTIFICATE_NOT_TRUSTED),
        ("num=20:unable to get local issuer certificate", ResultType.CERTIFICATE_NOT_TRUSTED),
        ("num=26:unsuitable certificate purpose", ResultType.VALIDATION_FAILURE),  # catch-all
    ],
)
def test_verify_failure_classification(why: str, result: ResultType) -> None:
    assert classify_verify_failure(why) is result


@pytest.mark.parametrize(
    "line",
    [
        "",  # empty
        "garbage",  # not syslog
        "Nov 23 11:28:42 sender postfix/smtpd[1]: connect from x[1.2.3.4]",  # smtpd, not smtp
        # a recipient without a domain
        "Nov 23 11:28:42 sender postfix/smtp[1]: Q: to=<nodomain>, relay=a[1.2.3.4]:25, "
        "status=sent (x)",
    ],
)
def test_irrelevant_or_broken_lines_are_ignored(line: str) -> None:
    assert PostfixLogReader().feed(line) is None


def test_to_session_uses_the_policy_that_applied() -> None:
    sts = PolicyOutcome(
        PolicyType.STS, "badcert.test", ("version: STSv1", "mode: enforce"), ("mx.badcert.test",)
    )
    out = LogOutcome(
        "badcert.test",
        "mx.badcert.test",
        "127.0.0.3",
        ResultType.CERTIFICATE_HOST_MISMATCH,
        "num=62:hostname mismatch",
    )
    s = to_session(out, {"badcert.test": sts}.get, "192.0.2.9")
    (p,) = s.policies
    assert (p.policy_type, p.failed, p.policy_string) == (PolicyType.STS, True, sts.policy_string)
    assert p.failures[0].receiving_ip == "127.0.0.3"
    assert p.failures[0].sending_mta_ip == "192.0.2.9"
    none = to_session(LogOutcome("n.test", "mx.n.test", "127.0.0.1", None), lambda _: None)
    assert none.policies[0].policy_type is PolicyType.NO_POLICY_FOUND
    assert not none.policies[0].failed
