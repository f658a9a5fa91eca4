"""Delivery against the lab: https POST and DKIM-signed mail, journaled retries."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime

import dkim
import dns.resolver
import pytest
from tests.commands import MTASTS

from mtasts.lab.lab import Lab
from mtasts.lab.testing import dkim_key, healthy_domain, publish_dkim_key, running_lab
from mtasts.results import PolicyType
from mtasts.tlsrpt.aggregate import ReportSettings
from mtasts.tlsrpt.collect.counters import Counters
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome
from mtasts.tlsrpt.deliver import (
    DkimKey,
    Sender,
    SendSettings,
    build_message,
    destination,
    mailboxes,
    mailto_address,
    next_retry,
)
from mtasts.tlsrpt.report import read_report
from mtasts.tlsrpt.store import OutboxReport, TlsRptStore

DAY = date(2026, 11, 22)
NOW = int(datetime(2026, 11, 23, 0, 5, tzinfo=UTC).timestamp())
REPORT = ReportSettings("Example Sender", "tlsrpt@sender.test")
LINES = ("version: STSv1", "mode: enforce", "mx: mx1.a.test", "max_age: 86400")


PEM, PUB = dkim_key()


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
        publish_dkim_key(lab, "sel._domainkey.sender.test", PUB)
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


async def test_rua_duplicates_and_scheme_case_give_one_delivery_per_destination(
    lab: Lab, store: TlsRptStore
) -> None:
    """rua URIs are stored as published: the same destination written twice, with an
    upper-case scheme or host, or with a mailto query, is sent to once; a destination
    that cannot be addressed (CR LF in a mailto address, a broken https URL) is left out
    with a warning instead of crashing the sender for every other domain."""
    url = lab.tlsrpt_https.url
    scheme, rest = url.split(":", 1)
    rua = [
        url,
        scheme.upper() + ":" + rest,
        "mailto:tls-reports@lab.test",
        "MAILTO:tls-reports@lab.test",  # the same, upper-case scheme
        "mailto:tls-reports@LAB.test?subject=tlsrpt",  # the same mailbox (domain case)
        "mailto:x%0D%0ARCPT%20TO:%3Cvictim@lab.test%3E@lab.test",  # CR LF: not an address
        "https://[bad/",  # not a URL
    ]
    lab.set_txt("_smtp._tls.a.test", ["v=TLSRPTv1; rua=" + ",".join(rua)])
    sender = Sender(store, _settings(lab), rng=random.Random(4))
    attempts = await sender.send_days([DAY], NOW)
    await sender.aclose()
    assert sorted((a.destination.split(":")[0], a.ok) for a in attempts) == [
        ("https", True),
        ("mailto", True),
    ]
    assert len(lab.tlsrpt_https.posts) == 1
    assert [m.rcpt_tos for m in lab.tlsrpt_mailbox.received] == [("tls-reports@lab.test",)]


async def test_the_daemon_builds_a_day_only_after_its_settle_time(
    lab: Lab, store: TlsRptStore
) -> None:
    """Counters of 23:59:59 may reach the store seconds after midnight (collectors flush
    every few seconds, later while the store is down): the daemon journals a day
    5 minutes after its UTC midnight, not at the first poll after it (it did, and
    counters flushed after the build were never reported)."""
    midnight = int(datetime(2026, 11, 23, tzinfo=UTC).timestamp())
    sender = Sender(store, _settings(lab), rng=random.Random(6))
    wait = await sender.tick(midnight + 30, poll=600)
    assert await store.has_outbox(DAY) == set()
    assert wait == 270  # woken when the day may be built
    await store.add_counters(_counters())  # a collector's late flush of DAY
    await sender.tick(midnight + 300)
    await sender.aclose()
    assert await store.has_outbox(DAY) == {"a.test"}
    (post,) = lab.tlsrpt_https.posts
    (pol,) = read_report(post.body).value.policies  # type: ignore[union-attr]
    assert (pol.total_successful_session_count, pol.total_failure_session_count) == (14, 6)


async def test_a_dns_failure_at_build_time_is_retried_not_journaled_without_rua(
    lab: Lab, store: TlsRptStore
) -> None:
    """SERVFAIL for _smtp._tls at build time is temporary: the report is not journaled
    (it was, with no destination, so it was never sent); the next round looks again."""
    lab.set_dns_fault("_smtp._tls.a.test", "servfail")
    sender = Sender(store, _settings(lab), rng=random.Random(7))
    assert await sender.send_days([DAY], NOW) == []
    assert await store.has_outbox(DAY) == set()
    assert sender.unresolved == {(DAY, "a.test")}
    lab.set_dns_fault("_smtp._tls.a.test", None)
    attempts = await sender.send_days([DAY], NOW + 60)
    await sender.aclose()
    assert sorted((a.destination.split(":")[0], a.ok) for a in attempts) == [
        ("https", True),
        ("mailto", True),
    ]
    assert sender.unresolved == set()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mailto:r@a.example", "mailto:r@a.example"),
        ("MAILTO:r@A.Example", "mailto:r@a.example"),  # scheme and domain case
        ("mailto:r@a.example?subject=x", "mailto:r@a.example"),  # query: same mailbox
        ("mailto:tls%2Drpt@a.example", "mailto:tls-rpt@a.example"),
        ("mailto:a%2Bb@a.example", "mailto:a+b@a.example"),
        ("mailto:100%25@a.example", "mailto:100%25@a.example"),  # '%' stays encoded
        ("HTTPS://R.Example/v1/tlsrpt", "https://r.example/v1/tlsrpt"),
        ("https://r.example:443/x", "https://r.example/x"),
        ("https://r.example:8443/x", "https://r.example:8443/x"),
        ("https://[2001:db8::1]/x", "https://[2001:db8::1]/x"),
        # defects: each is left out
        ("mailto:x%0D%0ARCPT%20TO:v@a.example", None),  # CR LF: SMTP command injection
        ("mailto:a%20b@a.example", None),  # a space
        ("mailto:<r@a.example>", None),  # angle brackets
        ("mailto:a.example", None),  # no '@'
        ("mailto:r@", None),  # no domain
        ("mailto:r@bad_domain!", None),  # not a domain name
        ("https://[bad/", None),  # not a host
        ("https:///x", None),  # no host
        ("http://r.example/x", None),  # RFC 8460 §3: only https and mailto
        ("ftp://r.example/x", None),
    ],
)
def test_destination(uri: str, expected: str | None) -> None:
    """A rua URI -> the journal's destination key, or None if it cannot be sent to."""
    got = destination(uri)
    assert got == expected
    if got is not None and got.startswith("mailto:"):
        assert destination(got) == got  # stable: journaled keys map to themselves


async def test_a_bad_journaled_destination_fails_alone(lab: Lab, store: TlsRptStore) -> None:
    """A destination journaled before destinations were checked (CR LF in the address)
    is expired with the reason; the other destinations are still delivered."""
    bad = "mailto:x%0D%0ARCPT%20TO:v@lab.test"
    await store.enqueue(
        [
            OutboxReport(
                DAY, "a.test", "id", "f.json.gz", b"\x1f\x8b", "", (bad, lab.tlsrpt_https.url)
            )
        ],
        NOW,
    )
    sender = Sender(store, _settings(lab), rng=random.Random(5))
    attempts = await sender.run_due(NOW)
    await sender.aclose()
    assert sorted((a.destination == bad, a.ok, a.status) for a in attempts) == [
        (False, True, "sent"),
        (True, False, "expired"),
    ]
    assert lab.tlsrpt_mailbox.received == []


async def test_a_receiver_trickling_its_answer_is_cut_off_and_retried(
    lab: Lab, store: TlsRptStore
) -> None:
    """A receiver that sends its answer a byte at a time, each byte before the read
    timeout, held the sender forever; the upload now ends at 4 x https_timeout and is
    retried like any failed attempt."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            for _ in range(100000):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()

    context = lab.pki.server_context("slow.test", "valid")
    server = await asyncio.start_server(trickle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    lab.set_records("slow.test", "A", ["127.0.0.1"])
    url = f"https://slow.test:{port}/tlsrpt"
    await store.enqueue(
        [OutboxReport(DAY, "a.test", "id", "f.json.gz", b"\x1f\x8b", "", (url,))], NOW
    )
    sender = Sender(store, replace(_settings(lab), https_timeout=0.25), rng=random.Random(5))
    started = asyncio.get_running_loop().time()
    try:
        (attempt,) = await sender.run_due(NOW)
    finally:
        await sender.aclose()
        server.close()
    assert asyncio.get_running_loop().time() - started < 5.0
    assert (attempt.ok, attempt.status) == (False, "pending")
    assert "did not complete within 1 s" in attempt.error


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


# --- end to end, as processes: collect -> send -> lab receivers ---------------------------


async def _run(lab: Lab, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    import os

    proc = await asyncio.create_subprocess_exec(
        *MTASTS,
        *args,
        env={**os.environ, **lab.env, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_send_refuses_a_day_that_is_not_over(lab: Lab, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`send --day <today>` would journal an incomplete report that is never re-sent:
    it is refused with what to do, and nothing is journaled."""
    store_url = f"sqlite:///{tmp_path / 'u.db'}"
    today = datetime.now(UTC).date().isoformat()
    env = _send_env(lab, tmp_path, store_url)
    code, out = await _run(lab, "tlsrpt", "send", "--day", today, env=env)
    assert code == 2  # the --day asked for cannot be sent: a usage error
    assert "not over yet" in out
    assert "--unfinished" in out
    assert not (tmp_path / "u.db").exists()


def _send_env(lab: Lab, tmp_path, store_url: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    key = tmp_path / "dkim.pem"
    key.write_bytes(PEM)
    return {
        "MTASTS_TLSRPT_STORE": store_url,
        "MTASTS_TLSRPT_ORGANIZATION": "Example Sender",
        "MTASTS_TLSRPT_CONTACT": "tlsrpt@sender.test",
        "MTASTS_TLSRPT_RELAY": f"{lab.address('mail.lab.test')}:{lab.smtp_port}",
        "MTASTS_TLSRPT_DKIM_KEY": str(key),
        "MTASTS_TLSRPT_DKIM_SELECTOR": "sel",
    }


async def test_datagrams_in_reports_out_500_then_200_received_once(lab: Lab, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """libtlsrpt datagrams -> `collect` -> `send` (twice: 500 then 200) -> lab receivers."""
    import os
    import signal
    import socket

    import orjson

    store_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    sock_path = tmp_path / "tlsrpt.sock"
    record = f"v=TLSRPTv1; rua={lab.tlsrpt_https.url},mailto:tls-reports@lab.test"
    ok = orjson.dumps(
        {
            "dpv": "1",
            "d": "a.test",
            "pr": record,
            "policies": [
                {
                    "policy-type": 2,
                    "policy-domain": "a.test",
                    "policy-string": list(LINES),
                    "mx-host": ["mx1.a.test"],
                    "t": 0,
                    "f": 0,
                }
            ],
        }
    )
    bad = orjson.dumps(
        {
            "dpv": "1",
            "d": "a.test",
            "pr": record,
            "policies": [
                {
                    "policy-type": 2,
                    "policy-domain": "a.test",
                    "policy-string": list(LINES),
                    "mx-host": ["mx1.a.test"],
                    "failure-details": [
                        {
                            "c": 203,
                            "s": "192.0.2.1",
                            "n": "mx1.a.test",
                            "r": "127.0.0.9",
                            "f": "X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT",
                        }
                    ],
                    "t": 1,
                    "f": 1,
                }
            ],
        }
    )
    collector = await asyncio.create_subprocess_exec(
        *MTASTS,
        "tlsrpt",
        "collect",
        "--socket",
        str(sock_path),
        "--store",
        store_url,
        env={**os.environ},
        stderr=asyncio.subprocess.PIPE,
    )
    for _ in range(500):
        if sock_path.exists():
            break
        await asyncio.sleep(0.02)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        for d in [ok] * 40 + [bad] * 2:
            s.sendto(d, str(sock_path))
    await asyncio.sleep(0.2)
    collector.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(collector.communicate(), 30)
    assert collector.returncode == 0, err
    assert b"42 datagrams counted" in err

    lab.tlsrpt_https.set_statuses([500, 200])
    env = _send_env(lab, tmp_path, store_url)
    today = datetime.now(UTC).date().isoformat()
    code, out = await _run(
        lab, "tlsrpt", "send", "--day", today, "--unfinished", "--retry-base", "1", env=env
    )
    assert code == 1, out  # the https destination is still pending
    assert "500" in out
    code, out = await _run(lab, "tlsrpt", "status", "--json", env=env)
    assert code == 0, out
    journal = json.loads(out)
    assert journal["totals"] == {"pending": 0, "retrying": 1, "sent": 1, "given_up": 0}
    (day,) = journal["days"]
    assert (day["day"], day["reports"]) == (today, 1)
    retrying = next(d for d in day["deliveries"] if d["state"] == "retrying")
    assert retrying["destination"].startswith("https://")
    assert "500" in retrying["last_error"]
    assert retrying["next_attempt_at"].endswith("Z")
    await asyncio.sleep(1.3)
    code, out = await _run(
        lab, "tlsrpt", "send", "--day", today, "--unfinished", "--retry-base", "1", "--json",
        env=env,
    )  # fmt: skip
    assert code == 0, out
    run = json.loads(out)  # docs/json.md: snake_case keys, nothing else on stdout
    assert run["day"] == today
    assert run["pending"] == 0
    assert run["unresolved"] == []
    (retried,) = run["attempts"]
    assert retried["destination"].startswith("https://")
    assert (retried["sent"], retried["status"], retried["error"]) == (True, "sent", None)
    code, out = await _run(lab, "tlsrpt", "send", "--day", today, "--unfinished", env=env)
    assert code == 0, out
    code, out = await _run(lab, "tlsrpt", "status", env=env)
    assert code == 0, out
    assert f"{today}: 1 reports; 2 sent" in out
    assert len(lab.tlsrpt_https.posts) == 2  # one 500, then the report once
    assert len(lab.tlsrpt_mailbox.received) == 1
    via_https = read_report(lab.tlsrpt_https.posts[-1].body).value
    mail = email.message_from_bytes(
        lab.tlsrpt_mailbox.received[0].data, policy=email.policy.default
    )
    via_mail = read_report(next(iter(mail.iter_attachments())).get_content()).value
    assert via_https == via_mail
    (pol,) = via_https.policies  # type: ignore[union-attr]
    assert (pol.total_successful_session_count, pol.total_failure_session_count) == (40, 2)
    (detail,) = pol.failure_details
    assert (detail.result_type, detail.failed_session_count) == ("certificate-not-trusted", 2)
    assert detail.failure_reason_code == "X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT"
    assert await asyncio.to_thread(_dkim_verify, lab.tlsrpt_mailbox.received[0].data, lab)


async def test_kill_9_of_the_sender_loses_and_duplicates_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`send --daemon` killed with SIGKILL mid-retry, restarted: each report once."""
    import os
    import signal
    from datetime import timedelta

    scenario = healthy_domain("a.test") + healthy_domain("b.test")
    async with running_lab(scenario) as lab:
        lab.set_txt("_smtp._tls.a.test", [f"v=TLSRPTv1; rua={lab.tlsrpt_https.url}"])
        lab.set_txt(
            "_smtp._tls.b.test",
            [f"v=TLSRPTv1; rua={lab.tlsrpt_https.url},mailto:tls-reports@lab.test"],
        )
        publish_dkim_key(lab, "sel._domainkey.sender.test", PUB)
        lab.tlsrpt_https.set_statuses([500, 500, 200])
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        store_url = f"sqlite:///{tmp_path / 'k.db'}"
        store = TlsRptStore.open(store_url)
        await store.create()
        c = Counters()
        for domain in ("a.test", "b.test"):
            pol = PolicyOutcome(PolicyType.STS, domain, LINES, (f"mx1.{domain}",))
            for _ in range(5):
                c.add(yesterday, SessionOutcome(domain, "", (pol,)))
        await store.add_counters(c)
        env = {**os.environ, **lab.env, **_send_env(lab, tmp_path, store_url)}
        args = [
            *MTASTS,
            "tlsrpt",
            "send",
            "--daemon",
            "--spread",
            "0",
            "--settle",
            "0",  # yesterday may be built at once, also in the first minutes after midnight
            "--retry-base",
            "1",
        ]

        async def start() -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )

        daemon = await start()
        for _ in range(1000):
            if lab.tlsrpt_https.posts:
                break
            await asyncio.sleep(0.01)
        daemon.send_signal(signal.SIGKILL)  # mid-run: a 500 answered, retries pending
        await daemon.wait()
        daemon = await start()
        for _ in range(1500):
            rows = await store.deliveries()
            if rows and all(r.status == "sent" for r in rows):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.5)  # anything duplicated would arrive now
        daemon.send_signal(signal.SIGKILL)
        await daemon.wait()
        rows = await store.deliveries()
        await store.close()
        assert sorted((r.domain, r.destination.split(":")[0], r.status) for r in rows) == [
            ("a.test", "https", "sent"),
            ("b.test", "https", "sent"),
            ("b.test", "mailto", "sent"),
        ]
        ids = [read_report(p.body).value.report_id for p in lab.tlsrpt_https.posts]  # type: ignore[union-attr]
        # posts 1-2 were answered 500, posts 3-4 were the only 200s: one per domain
        assert len(ids) == 4
        assert sorted(ids[2:]) == [
            f"{yesterday:%Y%m%d}.a.test@sender.test",
            f"{yesterday:%Y%m%d}.b.test@sender.test",
        ]
        assert len(lab.tlsrpt_mailbox.received) == 1


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mailto:r@a.example", ("mailto:r@a.example",)),
        # RFC 6068 §2: several addresses; the comma is %2C inside a TLS-RPT rua
        ("mailto:r@a.example%2Cs@b.example", ("mailto:r@a.example", "mailto:s@b.example")),
        (
            "mailto:r@a.example%2cs@b.example?subject=x",
            ("mailto:r@a.example", "mailto:s@b.example"),
        ),
        ("MAILTO:r@a.example,s@b.example", ("mailto:r@a.example", "mailto:s@b.example")),
        ("https://r.example/a%2Cb", ("https://r.example/a%2Cb",)),  # only mailto lists
    ],
)
def test_mailboxes_splits_a_mailto_address_list(uri: str, expected: tuple[str, ...]) -> None:
    assert mailboxes(uri) == expected
    assert all(destination(one) is not None for one in expected)


async def test_the_sender_applies_keep_days(store: TlsRptStore) -> None:
    """[tlsrpt] keep_days: the days before today - keep_days are pruned (the daemon's
    round calls this once per UTC day, `send` after each run); without keep_days nothing
    is ever deleted."""
    never = Sender(store, SendSettings(report=REPORT))
    assert await never.prune(NOW + 30 * 86400) == {}
    assert await store.days() == [DAY]
    sender = Sender(store, SendSettings(report=REPORT, keep_days=3))
    try:
        later = NOW + 3 * 86400  # DAY + 4: DAY is older than the last 3 days
        removed = await sender.prune(later)
        assert removed["policy_counters"] == 1
        assert await store.days() == []
        assert sender.retention.pruned_on == datetime.fromtimestamp(later, UTC).date()
    finally:
        await sender.aclose()
        await never.aclose()
