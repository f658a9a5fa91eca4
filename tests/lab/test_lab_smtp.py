"""MX hosts, attackers and the TLS-RPT mailbox, seen by an independent SMTP client."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mtasts.lab import HostSpec, Lab, Scenario, SmtpSpec
from mtasts.lab.testing import healthy_domain
from mtasts.net.tls import client_context

MX = "mx1.good.test"


def mx_scenario(smtp: SmtpSpec, attacker=None) -> Scenario:
    base = healthy_domain("good.test")
    return Scenario(domains=base.domains, hosts=(HostSpec(MX, smtp, attacker),))


def insecure() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def test_mx_with_starttls_records_message_tls_and_sni(lab_factory, smtp_connect) -> None:
    """A healthy MX offers STARTTLS with a valid certificate and records envelope, data,
    TLS version and the SNI the client sent."""
    lab = await lab_factory(healthy_domain("good.test"))
    client = await smtp_connect(lab.address(MX), lab.smtp_port)
    assert "STARTTLS" in await client.ehlo()
    await client.starttls(client_context(str(lab.ca_file)), MX)
    await client.ehlo()
    await client.send("a@sender.test", "b@good.test", b"Subject: hi\r\n\r\nhello")
    await client.quit()
    (got,) = lab.mx(MX).received
    assert (got.mail_from, got.rcpt_tos) == ("a@sender.test", ("b@good.test",))
    assert b"hello" in got.data
    assert got.tls
    assert got.tls_version in ("TLSv1.2", "TLSv1.3")
    assert got.sni == MX
    assert got.helo == "client.test"


async def test_mx_without_starttls(lab_factory, smtp_connect) -> None:
    """starttls=false: no STARTTLS in EHLO; mail arrives in clear and is recorded so."""
    lab = await lab_factory(mx_scenario(SmtpSpec(starttls=False)))
    client = await smtp_connect(lab.address(MX), lab.smtp_port)
    assert "STARTTLS" not in await client.ehlo()
    await client.send("a@sender.test", "b@good.test", b"clear")
    await client.quit()
    (got,) = lab.mx(MX).received
    assert (got.tls, got.tls_version, got.sni) == (False, None, None)


@pytest.mark.parametrize(
    ("cert", "code"),
    [("wrong-name", 62), ("expired", 10), ("self-signed", 18), ("untrusted", 20), ("cn-only", 62)],
)
async def test_mx_certificate_variants(lab_factory, smtp_connect, cert, code) -> None:
    """An MX certificate variant fails verification after STARTTLS for its reason."""
    lab = await lab_factory(mx_scenario(SmtpSpec(cert=cert)))
    client = await smtp_connect(lab.address(MX), lab.smtp_port)
    await client.ehlo()
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        await client.starttls(client_context(str(lab.ca_file)), MX)
    assert info.value.verify_code == code
    client.writer.close()


async def test_tls10_only_mx(lab_factory, smtp_connect) -> None:
    """A TLS 1.0-only MX refuses a TLS 1.2-minimum client; a TLS 1.0 client gets through."""
    lab = await lab_factory(mx_scenario(SmtpSpec(tls_max_version="1.0")))
    client = await smtp_connect(lab.address(MX), lab.smtp_port)
    await client.ehlo()
    with pytest.raises((ssl.SSLError, ConnectionResetError)):  # reset: see test_lab_https
        await client.starttls(client_context(str(lab.ca_file)), MX)
    client.writer.close()
    client = await smtp_connect(lab.address(MX), lab.smtp_port)
    await client.ehlo()
    old = client_context(str(lab.ca_file), minimum_version=ssl.TLSVersion.TLSv1)
    await client.starttls(old, MX)
    await client.ehlo()
    await client.send("a@sender.test", "b@good.test", b"old")
    await client.quit()
    assert lab.mx(MX).received[0].tls_version == "TLSv1"


async def test_a_refused_handshake_is_recorded_not_logged_as_a_traceback(
    lab_factory, smtp_connect, caplog
) -> None:
    """A client refusing the MX's TLS 1.0 is an expected outcome in the lab: the host
    records it in ``failures``; aiosmtpd's traceback on its "mail.log" logger stays off."""
    lab = await lab_factory(mx_scenario(SmtpSpec(tls_max_version="1.0")))
    client = await smtp_connect(lab.address(MX), lab.smtp_port)
    await client.ehlo()
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await client.starttls(client_context(str(lab.ca_file)), MX)
    client.writer.close()
    for _ in range(100):
        if lab.mx(MX).failures:
            break
        await asyncio.sleep(0.05)
    assert lab.mx(MX).failures
    assert "SSLError" in lab.mx(MX).failures[0]
    assert not [r for r in caplog.records if r.name == "mail.log" and r.exc_info]


async def test_strip_starttls_attacker(lab_factory, smtp_connect) -> None:
    """Through the attacker at the MX's address, EHLO has no STARTTLS and the command is
    refused, while the real MX behind it does offer STARTTLS; mail arrives in clear."""
    lab = await lab_factory(mx_scenario(SmtpSpec(), attacker="strip-starttls"))
    real = lab.mx(MX)
    direct = await smtp_connect(real.address, lab.smtp_port)
    assert "STARTTLS" in await direct.ehlo()
    await direct.quit()

    client = await smtp_connect(lab.address(MX), lab.smtp_port)
    extensions = await client.ehlo()
    assert "STARTTLS" not in extensions
    assert extensions  # the other extensions survive
    code, _ = await client.command("STARTTLS")
    assert code == 502
    await client.send("a@sender.test", "b@good.test", b"STARTTLS\r\nsecret")
    await client.quit()
    (got,) = real.received
    assert not got.tls
    assert b"secret" in got.data
    assert lab.attacker(MX).stripped >= 1


async def test_own_cert_attacker(lab_factory, smtp_connect) -> None:
    """The other attacker answers STARTTLS with its own certificate: it fails against the
    lab CA, and a client that does not verify hands the mail to the attacker."""
    lab = await lab_factory(mx_scenario(SmtpSpec(), attacker="own-cert"))
    client = await smtp_connect(lab.address(MX), lab.smtp_port)
    assert "STARTTLS" in await client.ehlo()
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        await client.starttls(client_context(str(lab.ca_file)), MX)
    assert info.value.verify_code == 20  # unable to get local issuer certificate
    client.writer.close()

    client = await smtp_connect(lab.address(MX), lab.smtp_port)
    await client.ehlo()
    await client.starttls(insecure(), MX)
    der = client.ssl_object.getpeercert(binary_form=True)
    chain, _ = lab.pki.pem(MX, "attacker")
    assert der == x509.load_pem_x509_certificate(chain).public_bytes(Encoding.DER)
    await client.ehlo()
    await client.send("a@sender.test", "b@good.test", b"intercepted")
    await client.quit()
    assert lab.attacker(MX).intercepted == 1
    (got,) = lab.mx(MX).received
    assert got.tls  # the attacker itself spoke TLS to the real MX


async def test_tlsrpt_mailbox_stores_reports(lab_factory, smtp_connect) -> None:
    """The mailbox (MX of lab.test) stores every message sent to it, over STARTTLS."""
    lab = await lab_factory(healthy_domain("good.test"))
    client = await smtp_connect(lab.address("mail.lab.test"), lab.smtp_port)
    await client.ehlo()
    await client.starttls(client_context(str(lab.ca_file)), "mail.lab.test")
    await client.ehlo()
    await client.send("reporter@sender.test", "tls-reports@lab.test", b"Subject: Report\r\n\r\nx")
    await client.quit()
    (got,) = lab.tlsrpt_mailbox.received
    assert got.rcpt_tos == ("tls-reports@lab.test",)
    assert got.tls


async def test_stop_closes_open_sessions(lab_factory, smtp_connect) -> None:
    """Stopping the lab ends SMTP sessions that are still open."""
    lab = await lab_factory(healthy_domain("good.test"))
    client = await smtp_connect(lab.address(MX), lab.smtp_port)
    await client.ehlo()
    await lab.stop()
    assert await client.reader.read() == b""
    client.writer.close()


async def test_fixed_port_in_use_fails_cleanly(lab_factory) -> None:
    """A fixed port that is taken is an OSError, and what had started is stopped again."""
    first = await lab_factory(healthy_domain("good.test"))
    second = Lab(healthy_domain("good.test"), smtp_port=first.smtp_port)
    with pytest.raises(OSError, match="in use"):
        await second.__aenter__()
    assert second.dns_port  # DNS had started before SMTP failed ...
    with socket.socket() as s:  # ... and was stopped again
        s.bind((second.nameserver[0], second.dns_port))
    assert not second.pki.directory.exists()  # its files are gone
