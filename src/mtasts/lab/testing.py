"""Helpers for tests elsewhere (resolver, checker, delivery) to build and run labs.

Pytest-free on purpose, so any test directory can wrap it in a three-line fixture::

    @pytest.fixture
    async def lab_factory():
        async with LabPool() as pool:
            yield pool.start

    async def test_x(lab_factory):
        broken = healthy_domain("bad.test", policy_host=PolicyHostSpec(status=404))
        lab = await lab_factory(healthy_domain("good.test") + broken)
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mtasts.lab.lab import Lab
from mtasts.lab.scenario import DomainSpec, HostSpec, PolicyHostSpec, Scenario, SmtpSpec


def policy_text(mx: tuple[str, ...], *, mode: str = "enforce", max_age: int = 86400) -> str:
    """A well-formed RFC 8461 §3.2 policy naming ``mx`` (CRLF line ends, as published)."""
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), f"max_age: {max_age}"]
    return "".join(line + "\r\n" for line in lines)


def dkim_key() -> tuple[bytes, str]:
    """A new 2048-bit RSA DKIM key: the private key in PEM (as ``tlsrpt send`` reads it)
    and the public key as a DKIM record's ``p=`` value (base64 of its DER form)."""
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


def publish_dkim_key(lab: Lab, name: str, public: str) -> None:
    """Serve the DKIM record of ``public`` at ``name`` (``selector._domainkey.domain``) in
    the lab's DNS, with ``s=tlsrpt`` (RFC 8460 §3), in strings of 255 octets at most."""
    txt = f"v=DKIM1; k=rsa; s=tlsrpt; p={public}"
    lab.set_txt(name, [tuple(txt[i : i + 255] for i in range(0, len(txt), 255))])


def healthy_domain(
    name: str,
    *,
    mx: tuple[str, ...] | None = None,
    mode: str = "enforce",
    policy_id: str = "1",
    max_age: int = 86400,
    tlsrpt: bool = True,
    smtp: SmtpSpec | None = None,
    policy_host: PolicyHostSpec | None = None,
) -> Scenario:
    """A domain that does everything right: MX with STARTTLS and a valid certificate,
    ``_mta-sts`` record, policy naming its MX, TLS-RPT record. Change one part to break it."""
    mx = mx or (f"mx1.{name}",)
    return Scenario(
        domains=(
            DomainSpec(
                name=name,
                mx=mx,
                sts=((f"v=STSv1; id={policy_id}",),),
                policy=policy_text(mx, mode=mode, max_age=max_age),
                policy_host=policy_host or PolicyHostSpec(),
                has_policy_host=True,
                tlsrpt=((f"v=TLSRPTv1; rua=mailto:tls-reports@{name}",),) if tlsrpt else None,
            ),
        ),
        hosts=tuple(HostSpec(m, smtp or SmtpSpec()) for m in mx),
    )


def as_scenario(scenario: Scenario | str) -> Scenario:
    """A Scenario as is, or TOML text parsed into one."""
    return scenario if isinstance(scenario, Scenario) else Scenario.from_toml(scenario)


async def start_lab(scenario: Scenario | str, **ports: int) -> Lab:
    """Starts a lab; the caller must ``await lab.stop()`` (prefer ``running_lab``)."""
    return await Lab.start(as_scenario(scenario), **ports)


@asynccontextmanager
async def running_lab(scenario: Scenario | str, **ports: int) -> AsyncIterator[Lab]:
    lab = await start_lab(scenario, **ports)
    try:
        yield lab
    finally:
        await lab.stop()


class LabPool:
    """Starts any number of labs and stops all of them on exit."""

    def __init__(self) -> None:
        self.labs: list[Lab] = []

    async def start(self, scenario: Scenario | str, **ports: int) -> Lab:
        lab = await start_lab(scenario, **ports)
        self.labs.append(lab)
        return lab

    async def __aenter__(self) -> LabPool:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for lab in reversed(self.labs):
            await lab.stop()
        self.labs.clear()
