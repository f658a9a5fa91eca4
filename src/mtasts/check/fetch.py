"""The checker's HTTPS fetch of a policy, keeping every piece of evidence.

The sender's fetch turns every problem into one error, as a sender must. An
administrator needs more: the redirect target, every Content-Type header (duplicates
included), Cache-Control, the certificate even when it fails, the TLS version, the
elapsed time, and the first bytes of an oversized body. So this module drives the same
client (:class:`mtasts.net.https.HttpsClient`: our DNS, SNI and Host = the policy host,
redirects off, a byte cap while streaming, deadlines) with ``raw=True`` and a TLS
evidence hook, and records instead of raising.

I/O module.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import replace
from pathlib import Path

from mtasts import __version__
from mtasts.check.evidence import Lookup, PolicyResponse, TlsOutcome
from mtasts.check.tlsinfo import (
    describe,
    hang_up,
    legacy_context,
    outcome_of,
    reading_context,
    verifying_context,
    with_chain_error,
)
from mtasts.clock import Clock, monotonic
from mtasts.errors import DnsError, FetchError
from mtasts.net.dns import DnsClient
from mtasts.net.https import HttpsClient, Timeouts
from mtasts.rfcnames import MAX_POLICY_BYTES, WELL_KNOWN_PATH, policy_host

USER_AGENT = f"mtasts-check/{__version__} (+RFC 8461)"


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


async def _get(
    dns: DnsClient,
    address: str,
    host: str,
    port: int,
    context: ssl.SSLContext,
    seconds: float,
    *,
    chain_ok: bool = False,
) -> PolicyResponse:
    """One GET; the TLS facts are read by the client's hook while the connection is open."""
    facts: list[TlsOutcome] = []
    client = HttpsClient(
        dns,
        context,
        port=port,
        timeouts=Timeouts(connect=seconds, read=seconds, total=seconds),
        max_bytes=MAX_POLICY_BYTES,
        user_agent=USER_AGENT,
    )
    try:
        response = await client.exchange(
            address,
            host,
            WELL_KNOWN_PATH,
            raw=True,
            on_tls=lambda ssl_object: facts.append(outcome_of(ssl_object, chain_ok=chain_ok)),
        )
    finally:
        await client.aclose()
    return PolicyResponse(
        url=response.url,
        host=host,
        addresses=(address,),
        status=response.status,
        headers=response.headers,
        body=response.body,
        truncated=response.truncated,
        tls=facts[0] if facts else None,
    )


async def _legacy_version(address: str, host: str, port: int, seconds: float) -> str:
    with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
        async with asyncio.timeout(seconds):
            _, writer = await asyncio.open_connection(
                address, port, ssl=legacy_context(), server_hostname=host
            )
        ssl_object = writer.get_extra_info("ssl_object")
        version = (ssl_object.version() or "") if ssl_object is not None else ""
        await hang_up(writer)
        return version
    return ""


async def fetch_policy_evidence(
    dns: DnsClient,
    domain: str,
    *,
    port: int = 443,
    ca_file: str | Path | None = None,
    seconds: float = 30.0,
    monotonic: Clock = monotonic,
) -> PolicyResponse:
    """GET ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` from its first address."""
    host = policy_host(domain)
    shown = host if port == 443 else f"{host}:{port}"
    base = PolicyResponse(url=f"https://{shown}{WELL_KNOWN_PATH}", host=host)
    started = monotonic()
    try:
        addresses = await dns.addresses(host)
    except DnsError as exc:
        outcome = Lookup.TIMEOUT if exc.code == "dns.timeout" else Lookup.SERVFAIL
        return replace(base, address_outcome=outcome, error=exc.message, error_kind="dns")
    if not addresses:
        return replace(base, address_outcome=Lookup.NXDOMAIN, error="no address", error_kind="dns")
    address = addresses[0]
    base = replace(base, addresses=addresses)
    try:
        async with asyncio.timeout(seconds):
            result = await _fetch(dns, address, host, port, ca_file, seconds, base)
    except TimeoutError:
        result = replace(
            base, error=f"no complete answer within {seconds:g} s", error_kind="timeout"
        )
    return replace(result, addresses=addresses, elapsed=monotonic() - started)


async def _fetch(
    dns: DnsClient,
    address: str,
    host: str,
    port: int,
    ca_file: str | Path | None,
    seconds: float,
    base: PolicyResponse,
) -> PolicyResponse:
    try:
        return await _get(
            dns, address, host, port, verifying_context(ca_file), seconds, chain_ok=True
        )
    except FetchError as exc:
        verify = _cause(exc, ssl.SSLCertVerificationError)
        other_ssl = _cause(exc, ssl.SSLError)
        cause = exc.__cause__ or exc  # what went wrong, in the words of the TLS/HTTP layer
        if isinstance(verify, ssl.SSLCertVerificationError):
            chain_error = verify
        elif other_ssl is not None:
            legacy = await _legacy_version(address, host, port, min(seconds, 10.0))
            tls = TlsOutcome(handshake_error=describe(other_ssl), legacy_version=legacy)
            return replace(base, tls=tls, error=describe(other_ssl), error_kind="tls")
        elif exc.code in ("fetch.connect-timeout", "fetch.read-timeout", "fetch.timeout"):
            return replace(base, error=f"timed out ({type(cause).__name__})", error_kind="timeout")
        elif exc.code == "fetch.connect":
            # A server that hangs up during the handshake (rather than refusing the
            # connection) may only speak an old TLS version: ask it with one.
            if _cause(exc, ConnectionRefusedError) is None:
                legacy = await _legacy_version(address, host, port, min(seconds, 10.0))
                if legacy:
                    tls = TlsOutcome(handshake_error=describe(cause), legacy_version=legacy)
                    return replace(base, tls=tls, error=describe(cause), error_kind="tls")
            return replace(base, error=describe(cause), error_kind="connect")
        else:
            return replace(base, error=describe(cause), error_kind="http")
    # The chain failed: fetch again without verifying, to show the certificate and the
    # rest of the chain of problems (senders stop at the first one).
    try:
        result = await _get(dns, address, host, port, reading_context(), seconds)
    except FetchError as exc:
        tls = TlsOutcome(chain_ok=False, chain_error=str(chain_error.verify_message))
        return replace(base, tls=tls, error=describe(exc.__cause__ or exc), error_kind="tls")
    return replace(result, tls=with_chain_error(result.tls or TlsOutcome(), chain_error))
