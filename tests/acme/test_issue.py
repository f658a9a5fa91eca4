"""Issuance against a real CA (pebble) validating our server on loopback."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from acme_helpers import dns_for, wait_for
from cryptography import x509

from mtasts.lab.testing import policy_text

POLICY = policy_text(("mx1.example.test",)).encode()

pytestmark = [pytest.mark.lab, pytest.mark.peer]


def _names(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)


async def test_tls_alpn_01_on_the_serving_port(acme_host) -> None:
    """pebble validates through tls-alpn-01 on the port that serves the policy; the next
    handshake for that name gets the issued certificate, and the policy is served."""
    host = await acme_host(("alpn.test",))
    await host.wait_issued("mta-sts.alpn.test")
    cert, response = await host.fetch("mta-sts.alpn.test")
    assert _names(cert) == ["mta-sts.alpn.test"]
    assert response.startswith(b"HTTP/1.1 200 OK")
    assert response.endswith(POLICY)
    # the CA's validation connections got the validation certificate (acme-tls/1)
    assert host.sample("mtasts_acme_handshakes_total", kind="tls-alpn-01") >= 1
    mode = (host.manager.store.cert_path("mta-sts.alpn.test").stat().st_mode) & 0o777
    assert mode == 0o600
    assert (host.manager.store.account_path.stat().st_mode & 0o777) == 0o600


async def test_http_01_on_port_80_listener(acme_host) -> None:
    """With only http-01 allowed, pebble fetches the key authorization from the plain-HTTP
    listener; that listener serves nothing else (no policy over plain HTTP)."""
    host = await acme_host(("web.test",), challenges=("http-01",))
    await host.wait_issued("mta-sts.web.test")
    cert, _ = await host.fetch("mta-sts.web.test")
    assert _names(cert) == ["mta-sts.web.test"]
    assert host.sample("mtasts_acme_handshakes_total", kind="tls-alpn-01") == 0
    reader, writer = await asyncio.open_connection("127.0.0.1", host.http_port)
    writer.write(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.web.test\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 404")
    # the challenge file is removed once the order is done
    assert not list((host.manager.store.root / "challenges" / "http-01").iterdir())


async def test_renewal_replaces_the_certificate_without_dropping_connections(acme_host) -> None:
    """A 6-second certificate is renewed at 2/3 of its life; new handshakes get the new
    one while a connection opened before keeps working."""
    host = await acme_host(("renew.test",), pebble={"validity": 6, "always_valid": True})
    name = "mta-sts.renew.test"
    await host.wait_issued(name)
    first = host.manager.certs[name]
    context = ssl.create_default_context(cadata=host.pebble.root_pem().decode())
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", host.port, ssl=context, server_hostname=name
    )
    await wait_for(lambda: host.manager.certs[name] is not first, 15, lambda: host.diagnose(name))
    # the old connection still gets its answer
    writer.write(f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
    assert (await reader.read()).startswith(b"HTTP/1.1 200 OK")
    writer.close()
    cert, _ = await host.fetch(name)
    new_cert = host.manager.certs[name]
    assert new_cert.life.not_after > first.life.not_after
    assert cert.not_valid_after_utc == new_cert.life.not_after
    assert host.sample("mtasts_acme_issuance_total", result="issued") >= 2


async def test_ca_down_then_back(acme_host) -> None:
    """The CA is unreachable: failures back off and are recorded; once it is back (a new
    pebble that has forgotten our account) the account is registered again and the
    certificate obtained."""
    host = await acme_host(("outage.test",), start_pebble=False, pebble={"always_valid": True})
    name = "mta-sts.outage.test"
    await wait_for(lambda: host.manager.status[name].failures >= 2, 10)
    status = host.manager.status[name]
    assert "cannot reach the CA" in status.last_error
    assert host.manager.store.read_status(name).failures == status.failures
    await asyncio.to_thread(host.pebble.start)
    await host.wait_issued(name)
    assert host.manager.status[name].failures == 0
    # a CA restart loses its accounts: the stored one is replaced, not fatal
    host.pebble.stop()
    await asyncio.to_thread(host.pebble.start)
    before = host.manager.certs[name]
    host.manager.renew_now(name)
    await wait_for(
        lambda: host.manager.certs.get(name) is not before, 15, lambda: host.diagnose(name)
    )


async def test_revoked_certificate_is_replaced(acme_host) -> None:
    """Revoking a certificate (a leaked key) revokes it at the CA and gets a new one."""
    host = await acme_host(("revoke.test",), pebble={"always_valid": True})
    name = "mta-sts.revoke.test"
    await host.wait_issued(name)
    old_cert, _ = await host.fetch(name)
    before = host.manager.certs[name]
    await host.manager.revoke(name)
    status = await asyncio.to_thread(host.pebble.cert_status, old_cert.serial_number)
    assert status["Status"] == "Revoked"
    await wait_for(lambda: host.manager.certs[name] is not before, 15, lambda: host.diagnose(name))
    new_cert, _ = await host.fetch(name)
    assert new_cert.serial_number != old_cert.serial_number


async def test_handshakes_for_names_without_a_certificate_fail_fast(acme_host) -> None:
    """An unknown name, a served name whose certificate is not there yet (the CA is down),
    and a tls-alpn-01 hello with no challenge pending: each refused at once with the TLS
    alert unrecognized_name."""
    host = await acme_host(("fast.test",), start_pebble=False)
    for name in ("unknown.example", "mta-sts.fast.test"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
            await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", host.port, ssl=context, server_hostname=name),
                5,
            )
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["acme-tls/1"])
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        await asyncio.open_connection(
            "127.0.0.1", host.port, ssl=context, server_hostname="mta-sts.fast.test"
        )
    assert host.sample("mtasts_acme_handshakes_total", kind="no-certificate") == 2
    assert host.sample("mtasts_acme_handshakes_total", kind="tls-alpn-01") == 0


async def test_failed_validation_is_recorded_and_retried(acme_host) -> None:
    """The name points at an address where nothing answers (no [acme] addresses to catch
    it first): the CA's validation fails, its problem is the recorded error, and the
    name is retried after the back-off."""
    scenario = dns_for("away.test", address="127.0.0.2")
    host = await acme_host(("away.test",), scenario=scenario, retry_min=30.0, retry_max=60.0)
    name = "mta-sts.away.test"
    await wait_for(lambda: host.manager.status[name].failures == 1, 20, lambda: host.diagnose(name))
    status = host.manager.status[name]
    assert status.last_error.startswith("validation failed: mta-sts.away.test tls-alpn-01")
    assert status.next_try > host.manager.clock() + 20
    assert name not in host.manager.certs
    assert not list((host.manager.store.root / "challenges" / "tls-alpn-01").iterdir())
