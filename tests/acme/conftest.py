"""Fixtures: a lab (DNS), pebble (the CA), and `serve policy --acme`'s parts wired
together in-process, on loopback and ephemeral ports."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

sys.path.insert(0, str(Path(__file__).resolve().parent))

from acme_helpers import dns_for, wait_for
from pebble_peer import Pebble, free_port, require_pebble

from mtasts.acme.manager import CertManager
from mtasts.acme.prechecks import Prechecks
from mtasts.acme.serve import policy_hosts, start_acme_listeners
from mtasts.acme.settings import AcmeSettings, HttpListen
from mtasts.lab import Lab, Scenario
from mtasts.lab.testing import LabPool, policy_text
from mtasts.publish.server import PolicyServer, ServerLimits
from mtasts.publish.site import Site

POLICY = policy_text(("mx1.example.test",)).encode()


@dataclass
class AcmeHost:
    """A running policy host with automatic certificates, and the CA it uses."""

    lab: Lab
    pebble: Pebble
    manager: CertManager
    server: PolicyServer
    port: int
    http_port: int = 0
    extra: list[PolicyServer] = field(default_factory=list)

    async def fetch(self, name: str, *, ca: bytes | None = None) -> tuple[x509.Certificate, bytes]:
        """GET the policy with SNI and Host ``name``: (the server's certificate, response)."""
        context = ssl.create_default_context(cadata=(ca or self.pebble.root_pem()).decode())
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=context, server_hostname=name
        )
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            writer.write(f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
            response = await reader.read()
            return x509.load_der_x509_certificate(der), response
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, OSError):
                await writer.wait_closed()

    async def wait_issued(self, name: str, seconds: float = 20.0) -> None:
        await wait_for(lambda: name in self.manager.certs, seconds, lambda: self.diagnose(name))

    def sample(self, metric: str, **labels: str) -> float:
        value = self.manager.metrics.registry.get_sample_value(metric, labels)
        return 0.0 if value is None else value

    def diagnose(self, name: str) -> str:
        return f"status={self.manager.status.get(name)}\npebble log:\n{self.pebble.log()}"


HostFactory = Callable[..., Awaitable[AcmeHost]]


@pytest.fixture
async def acme_host(tmp_path: Path) -> AsyncIterator[HostFactory]:
    """``host = await acme_host(domains, scenario=..., **settings)`` (pebble started)."""
    require_pebble()
    running: list[AcmeHost] = []
    pool = LabPool()

    async def start(
        domains: tuple[str, ...],
        *,
        scenario: Scenario | None = None,
        pebble: dict[str, Any] | None = None,
        start_pebble: bool = True,
        listen: str = "127.0.0.1",
        port: int = 0,
        dns_timeout: float = 5.0,
        **settings: Any,
    ) -> AcmeHost:
        lab = await pool.start(scenario or sum((dns_for(d) for d in domains), Scenario()))
        lab_ca = lab.pki.ca
        peb = Pebble(
            tmp_path / f"pebble{len(running)}", lab_ca, lab.nameserver, tls_port=0, **(pebble or {})
        )
        values: dict[str, Any] = {
            "directory": peb.url,
            "ca_file": peb.ca_file,
            "state_dir": tmp_path / "state",
            "retry_min": 0.2,
            "retry_max": 1.0,
            "issue_timeout": 20.0,
            **settings,
        }
        if "http-01" in values.get("challenges", ()):
            values["http_listen"] = HttpListen("127.0.0.1", free_port())
        acme = AcmeSettings(**values)
        site = Site({d: POLICY for d in domains})
        manager = CertManager(
            acme,
            policy_hosts(site),
            prechecks=Prechecks(acme, lab.nameserver, timeout=dns_timeout),
            tick=0.2,
        )
        server = PolicyServer(site, manager.server_context, ServerLimits())
        bound = await server.start(listen, port)
        host = AcmeHost(lab, peb, manager, server, bound[1])
        running.append(host)
        if "http-01" in acme.challenges:
            (http, http_bound), *_ = await start_acme_listeners(manager, ServerLimits())
            host.extra, host.http_port = [http], http_bound[1]
            peb.http_port = host.http_port
        peb.tls_port = bound[1]
        if start_pebble:
            await asyncio.to_thread(peb.start)
        manager.start()
        return host

    try:
        yield start
    finally:
        for host in running:
            await host.manager.close()
            await host.server.close()
            for other in host.extra:
                await other.close()
            host.pebble.stop()
        await pool.__aexit__(None, None, None)
