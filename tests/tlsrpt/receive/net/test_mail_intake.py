"""The SMTP and LMTP intake against the real service on loopback (RFC 8460 §5.3)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from receive_net_support import (
    failing_receiver,
    metric,
    open_receiver,
    report_mail,
    running_service,
)

pytestmark = pytest.mark.lab


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Any]:
    r = await open_receiver(tmp_path)
    try:
        yield r
    finally:
        await r.close()


def _send(
    port: int,
    raw: bytes,
    rcpts: list[str],
    *,
    lmtp: bool = False,
    tls: ssl.SSLContext | None = None,
) -> Any:
    """One message through smtplib (in a thread); the per-recipient replies for LMTP, the
    (code, text) of DATA for SMTP, or the exception smtplib raised."""
    try:
        if lmtp:
            with smtplib.LMTP("127.0.0.1", port, timeout=30) as client:
                client.ehlo_or_helo_if_needed()
                client.mail("tlsrpt@sender.test")
                for r in rcpts:
                    client.rcpt(r)
                client.putcmd("data")
                code, _ = client.getreply()
                assert code == 354
                lines = [
                    b"." + line if line.startswith(b".") else line for line in raw.split(b"\r\n")
                ]
                client.send(b"\r\n".join(lines) + b"\r\n.\r\n")
                return [client.getreply() for _ in rcpts]
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo("sender.test")
            if tls is not None:
                client.starttls(context=tls)
                client.ehlo("sender.test")
            client.mail("tlsrpt@sender.test")
            for r in rcpts:
                client.rcpt(r)
            return client.data(raw)
    except smtplib.SMTPException as exc:
        return exc


async def test_smtp_report_is_stored_once_and_answered_250(receiver: Any) -> None:
    async with running_service(receiver, http="", smtp="127.0.0.1:0") as service:
        port = service.port("smtp")
        raw = report_mail("mail-1")
        code, text = await asyncio.to_thread(_send, port, raw, ["tls-reports@a.test"])
        assert code == 250
        assert b"stored" in text
        code, text = await asyncio.to_thread(_send, port, raw, ["tls-reports@a.test"])
        assert code == 250
        assert b"duplicate" in text
        rendered = service.metrics.render().decode()
        assert (
            metric(
                rendered,
                "mtasts_tlsrpt_intake_received_total",
                channel="smtp",
                disposition="stored",
            )
            == 1
        )


async def test_mail_that_can_never_be_a_report_is_refused_for_good(receiver: Any) -> None:
    async with running_service(receiver, http="", smtp="127.0.0.1:0") as service:
        raw = b"From: a@b.test\r\nTo: c@d.test\r\nSubject: hello\r\n\r\nnot a report\r\n"
        code, text = await asyncio.to_thread(_send, service.port("smtp"), raw, ["x@a.test"])
        assert 500 <= code < 600, text


async def test_size_is_advertised_and_enforced(receiver: Any) -> None:
    async with running_service(
        receiver, http="", smtp="127.0.0.1:0", max_message=50_000
    ) as service:
        port = service.port("smtp")

        def ehlo_size() -> str:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.ehlo("sender.test")
                return client.esmtp_features["size"]

        assert await asyncio.to_thread(ehlo_size) == "50000"
        big = report_mail("big") + (b"X" * 70 + b"\r\n") * 1000
        code, _ = await asyncio.to_thread(_send, port, big, ["tls-reports@a.test"])
        assert code == 552
        code, _ = await asyncio.to_thread(_send, port, report_mail("small"), ["tls-reports@a.test"])
        assert code == 250


async def test_lmtp_answers_once_per_recipient(receiver: Any) -> None:
    async with running_service(receiver, http="", lmtp="127.0.0.1:0") as service:
        rcpts = ["tls-reports@a.test", "copy@a.test"]
        replies = await asyncio.to_thread(
            _send, service.port("lmtp"), report_mail("l-1"), rcpts, lmtp=True
        )
        assert [code for code, _ in replies] == [250, 250]


async def test_lmtp_on_a_unix_socket(receiver: Any, tmp_path: Path) -> None:
    path = tmp_path / "lmtp.sock"
    async with running_service(receiver, http="", lmtp=f"unix:{path}") as service:
        assert service.describe() == [f"lmtp unix:{path}"]

        def send() -> Any:
            with smtplib.LMTP(str(path), timeout=30) as client:
                client.ehlo_or_helo_if_needed()
                return client.sendmail(
                    "tlsrpt@sender.test", ["tls-reports@a.test"], report_mail("u-1")
                )

        assert await asyncio.to_thread(send) == {}


async def test_starttls_with_the_configured_certificate(receiver: Any, tmp_path: Path) -> None:
    ca = trustme.CA()
    issued = ca.issue_cert("receiver.test")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    for blob in issued.cert_chain_pems[1:]:
        cert.write_bytes(cert.read_bytes() + blob.bytes())
    issued.private_key_pem.write_to_path(str(key))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    client_ctx.check_hostname = False
    async with running_service(
        receiver, http="", smtp="127.0.0.1:0", cert=str(cert), key=str(key)
    ) as service:
        code, _ = await asyncio.to_thread(
            _send, service.port("smtp"), report_mail("tls-1"), ["r@a.test"], tls=client_ctx
        )
        assert code == 250


async def test_a_store_that_fails_is_a_transient_451_and_the_listener_lives() -> None:
    async with (
        failing_receiver() as receiver,
        running_service(receiver, http="", smtp="127.0.0.1:0") as service,
    ):
        answer = await asyncio.to_thread(
            _send, service.port("smtp"), report_mail("down-1"), ["r@a.test"]
        )
        code, text = answer
        assert code == 451, text
        rendered = service.metrics.render().decode()
        assert (
            metric(
                rendered,
                "mtasts_tlsrpt_intake_refused_total",
                channel="smtp",
                reason="store-failed",
            )
            == 1
        )


async def test_sessions_past_the_cap_get_421(receiver: Any) -> None:
    async with running_service(receiver, http="", smtp="127.0.0.1:0", max_connections=2) as service:
        port = service.port("smtp")
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        for reader, _ in held:
            assert (await reader.readline()).startswith(b"220")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"421")
        writer.close()
        for _, w in held:
            w.close()


async def test_a_session_is_cut_at_the_session_timeout(receiver: Any) -> None:
    async with running_service(
        receiver, http="", smtp="127.0.0.1:0", session_timeout=0.5
    ) as service:
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port("smtp"))
        assert (await reader.readline()).startswith(b"220")
        for _ in range(100):  # a client that keeps talking is still cut
            writer.write(b"NOOP\r\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the session outlived session_timeout")
        writer.close()


async def test_a_mail_only_service_serves_metrics_on_its_own_listener(receiver: Any) -> None:
    import httpx

    async with running_service(
        receiver, http="", lmtp="127.0.0.1:0", metrics="127.0.0.1:0"
    ) as service:
        assert service.http is None
        replies = await asyncio.to_thread(
            _send, service.port("lmtp"), report_mail("m-1"), ["r@a.test"], lmtp=True
        )
        assert [code for code, _ in replies] == [250]
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{service.metrics_port}/metrics")).text
        labels = {"channel": "lmtp", "disposition": "stored"}
        assert metric(text, "mtasts_tlsrpt_intake_received_total", **labels) == 1
        assert metric(text, "mtasts_tlsrpt_intake_dkim_total", verdict="none") == 1


async def test_with_a_metrics_listener_the_report_listener_hides_them(receiver: Any) -> None:
    import httpx

    async with running_service(receiver, metrics="127.0.0.1:0") as service:
        async with httpx.AsyncClient() as client:
            public = await client.get(f"http://127.0.0.1:{service.http_port}/metrics")
            private = await client.get(f"http://127.0.0.1:{service.metrics_port}/metrics")
        assert public.status_code == 404
        assert private.status_code == 200


async def test_a_line_past_rfc_5321s_1000_octets_does_not_bounce_the_report(
    receiver: Any,
) -> None:
    async with running_service(receiver, http="", smtp="127.0.0.1:0") as service:
        raw = b"X-Long: " + b"a" * 5000 + b"\r\n" + report_mail("long-line")
        code, text = await asyncio.to_thread(_send, service.port("smtp"), raw, ["r@a.test"])
        assert code == 250, text
