"""Issuance against a real CA (pebble) validating our server on loopback."""

from __future__ import annotations

import asyncio

import pytest
from cryptography import x509

from mtasts.lab.testing import policy_text

POLICY = policy_text(("mx1.example.test",)).encode()

pytestmark = [pytest.mark.lab, pytest.mark.peer]


def _names(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


async def test_tls_alpn_01_on_the_serving_port(acme_host) -> None:
    """pebble validates through tls-alpn-01 on the port that serves the policy; the next
    handshake for that name gets the issued certificate, and the policy is served."""
    host = await acme_host(("alpn.test",))
    await host.wait_issued("mta-sts.alpn.test")
    cert, response = await host.fetch("mta-sts.alpn.test")
    assert _names(cert) == ["mta-sts.alpn.test"]
    assert response.startswith(b"HTTP/1.1 200 OK") and response.endswith(POLICY)
    # the CA's validation connections got the validation certificate (acme-tls/1)
    assert host.sample("mtasts_acme_handshakes_total", kind="tls-alpn-01") >= 1
    mode = (host.manager.store.cert_path("mta-sts.alpn.test").stat().st_mode) & 0o777
    assert mode == 0o600
    assert (host.manager.store.account_path.stat().st_mode & 0o777) == 0o600
