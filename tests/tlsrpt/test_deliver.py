"""Delivery against the lab: https POST and DKIM-signed mail, journaled retries."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import dkim
import dns.resolver
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mtasts.lab.lab import Lab
from mtasts.lab.testing import healthy_domain, running_lab
from mtasts.store.tlsrpt import OutboxReport, TlsRptStore
from mtasts.tlsrpt.aggregate import ReportSettings
from mtasts.tlsrpt.collect.counters import Counters
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome
from mtasts.tlsrpt.deliver import (
    DkimKey,
    Sender,
    SendSettings,
    build_message,
    mailto_address,
    next_retry,
)
from mtasts.tlsrpt.report import read_report
from mtasts.tlsrpt.results import PolicyType

DAY = date(2026, 11, 22)
NOW = int(datetime(2026, 11, 23, 0, 5, tzinfo=UTC).timestamp())
REPORT = ReportSettings("Example Sender", "tlsrpt@sender.test")
LINES = ("version: STSv1", "mode: enforce", "mx: mx1.a.test", "max_age: 86400")


def _key() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(der).decode()


PEM, PUB = _key()


def _counters() -> Counters:
    c = Counters()
    sts = PolicyOutcome(PolicyType.STS, "a.test", LINES, ("mx1.a.test",))
    bad = PolicyOutcome(
        sts.policy_type,
        sts.policy_domain,
        sts.policy_string,
        sts.mx_host,
        True,
        (FailureOutcome("certificate-expired", "192.0.2.1", "mx1.a.test"),),
    )
    for _ in range(7):
        c.add(DAY, SessionOutcome("a.test", "", (sts,)))
    for _ in range(3):
        c.add(DAY, SessionOutcome("a.test", "", (bad,)))
    return c


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with running_lab(healthy_domain("a.test")) as lab:
        lab.set_txt(
            "_smtp._tls.a.test",
            [f"v=TLSRPTv1; rua={lab.tlsrpt_https.url},mailto:tls-reports@lab.test"],
        )
        # The DKIM key, published in the lab DNS with s=tlsrpt (RFC 8460 §3 SHOULD).
        txt = f"v=DKIM1; k=rsa; s=tlsrpt; p={PUB}"
        lab.set_txt(
            "sel._domainkey.sender.test", [tuple(txt[i : i + 255] for i in range(0, len(txt), 255))]
        )
        yield lab


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[TlsRptStore]:  # type: ignore[no-untyped-def]
    s = TlsRptStore.open(f"sqlite:///{tmp_path / 'd.db'}")
    await s.create()
    await s.add_counters(_counters())
    yield s
    await s.close()


def _settings(lab: Lab) -> SendSettings:
    return SendSettings(
        report=REPORT,
        relay=(lab.address("mail.lab.test"), lab.smtp_port),
        dkim=DkimKey("sender.test", "sel", PEM),
        ca_file=str(lab.ca_file),
        nameserver=lab.nameserver,
    )


def _dkim_verify(raw: bytes, lab: Lab) -> bool:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [lab.nameserver[0]]
    resolver.port = lab.nameserver[1]

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        answer = resolver.resolve(name.decode().rstrip("."), "TXT")
        return b"".join(next(iter(answer)).strings)

    return bool(dkim.verify(raw, dnsfunc=dnsfunc, tlsrpt="strict"))


async def test_reports_reach_https_and_mailbox_signed_and_intact(
    lab: Lab, store: TlsRptStore
) -> None:
    sender = Sender(store, _settings(lab), rng=random.Random(1))
    attempts = await sender.send_days([DAY], NOW)
    await sender.aclose()
    assert sorted((a.destination.split(":")[0], a.ok) for a in attempts) == [
        ("https", True),
        ("mailto", True),
    ]
    # https: application/tlsrpt+gzip, parsed back with the same counts
    (post,) = lab.tlsrpt_https.posts
    assert post.method == "POST"
    assert post.header("content-type") == "application/tlsrpt+gzip"
    got = read_report(post.body)
    assert got.valid
    (pol,) = got.value.policies  # type: ignore[union-attr]
    assert (pol.total_successful_session_count, pol.total_failure_session_count) == (7, 3)
    assert pol.policy_string == LINES
    # mail: multipart/report, RFC headers, attachment, DKIM over the TLS-Report headers
    (msg,) = lab.tlsrpt_mailbox.received
    assert msg.rcpt_tos == ("tls-reports@lab.test",)
    parsed = email.message_from_bytes(msg.data, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "tlsrpt"
    assert parsed["TLS-Report-Domain"] == "a.test"
    assert parsed["TLS-Report-Submitter"] == "sender.test"
    assert parsed["TLS-Required"] == "No"
    assert str(parsed["Subject"]) == (
        "Report Domain: a.test Submitter: sender.test Report-ID: <20261122.a.test@sender.test>"
    )
    text, attachment = parsed.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert attachment.get_content_type() == "application/tlsrpt+gzip"
    assert attachment.get_filename() == "sender.test!a.test!1795305600!1795391999.json.gz"
    assert read_report(attachment.get_content()).value == got.value
    sig = parsed["DKIM-Signature"]
    assert "tls-report-domain" in sig.lower()
    assert "tls-report-submitter" in sig.lower()
    assert " l=" not in sig
    assert ";l=" not in sig.replace(" ", "")
    assert await asyncio.to_thread(_dkim_verify, msg.data, lab)
    tampered = msg.data.replace(b"TLS-Report-Domain: a.test", b"TLS-Report-Domain: b.test")
    assert not await asyncio.to_thread(_dkim_verify, tampered, lab)
    # A second run (a restart) sends nothing again.
    sender = Sender(store, _settings(lab))
    assert await sender.send_days([DAY], NOW + 10) == []
    await sender.aclose()
    assert len(lab.tlsrpt_https.posts) == 1
    assert len(lab.tlsrpt_mailbox.received) == 1


async def test_500_then_200_is_retried_and_delivered_once(lab: Lab, store: TlsRptStore) -> None:
    lab.tlsrpt_https.set_statuses([500, 503, 200])
    sender = Sender(store, _settings(lab), rng=random.Random(2))
    first = [a for a in await sender.send_days([DAY], NOW) if a.destination.startswith("https")]
    assert [(a.ok, a.status) for a in first] == [(False, "pending")]
    now = NOW
    delays = []
    for _ in range(10):
        (row,) = [d for d in await store.deliveries() if d.destination.startswith("https")]
        if row.status != "pending":
            break
        delays.append(row.not_before - now)
        now = row.not_before
        await sender.run_due(now - 1)  # not yet due: nothing happens
        await sender.run_due(now)
    await sender.aclose()
    assert row.status == "sent"
    assert row.attempts == 3
    assert len(lab.tlsrpt_https.posts) == 3  # 500, 503, then the one 200
    assert 270 <= delays[0] <= 330
    assert delays[1] > delays[0] * 1.5
    assert len(lab.tlsrpt_mailbox.received) == 1


async def test_gives_up_24_hours_after_the_first_attempt(lab: Lab, store: TlsRptStore) -> None:
    lab.tlsrpt_https.set_statuses([500])
    sender = Sender(store, _settings(lab), rng=random.Random(3))
    await sender.send_days([DAY], NOW)
    now = NOW
    while True:
        (row,) = [d for d in await store.deliveries() if d.destination.startswith("https")]
        if row.status != "pending":
            break
        now = row.not_before
        await sender.run_due(now)
    await sender.aclose()
    assert row.status == "expired"
    assert 20 * 3600 <= now - NOW <= 24 * 3600
    assert 5 <= row.attempts <= 15  # back-off, not a retry storm
    assert "500" in row.last_error


async def test_mail_without_dkim_key_is_not_sent(lab: Lab, store: TlsRptStore) -> None:
    """RFC 8460 §3: receivers MUST ignore unsigned mail reports, so none is sent."""
    settings = _settings(lab)
    unsigned = SendSettings(
        report=REPORT,
        relay=settings.relay,
        ca_file=settings.ca_file,
        nameserver=settings.nameserver,
    )
    sender = Sender(store, unsigned)
    attempts = await sender.send_days([DAY], NOW)
    await sender.aclose()
    (mail,) = [a for a in attempts if a.destination.startswith("mailto")]
    assert (mail.ok, mail.status) == (False, "expired")
    assert "DKIM" in mail.error
    assert lab.tlsrpt_mailbox.received == []


async def test_domain_without_tlsrpt_record_is_journaled_without_destinations(
    lab: Lab, store: TlsRptStore
) -> None:
    lab.set_txt("_smtp._tls.a.test", [])
    sender = Sender(store, _settings(lab))
    assert await sender.send_days([DAY], NOW) == []
    await sender.aclose()
    assert await store.has_outbox(DAY) == {"a.test"}


@pytest.mark.parametrize(
    ("attempts", "low", "high"), [(1, 270, 330), (2, 540, 660), (3, 1080, 1320), (20, 12960, 15840)]
)
def test_next_retry_doubles_up_to_four_hours(attempts: int, low: int, high: int) -> None:
    rng = random.Random(0)
    assert all(low <= next_retry(attempts, 300, 14400, rng) <= high for _ in range(50))


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("mailto:tlsrpt@a.example", "tlsrpt@a.example"),
        ("mailto:tls%2Drpt@a.example", "tls-rpt@a.example"),
        ("mailto:r@a.example?subject=x", "r@a.example"),
    ],
)
def test_mailto_address(uri: str, address: str) -> None:
    assert mailto_address(uri) == address


def test_message_has_no_report_loop_markers_missing() -> None:
    rep = OutboxReport(
        DAY, "a.test", "20261122.a.test@sender.test", "f.json.gz", b"\x1f\x8b", "", ()
    )
    msg = build_message(
        rep, "r@a.test", SendSettings(report=REPORT), datetime(2026, 11, 23, tzinfo=UTC)
    )
    assert msg["TLS-Required"] == "No"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["From"] == "tlsrpt@sender.test"
