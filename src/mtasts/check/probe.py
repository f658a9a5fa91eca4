"""The SMTP STARTTLS probe: connect to an MX, EHLO, STARTTLS, read the TLS facts, QUIT.

Port 25 unless ``MTASTS_SMTP_PORT`` says otherwise (the lab). Every read is bounded in
size (a line of at most 1000 octets, RFC 5321 §4.5.3.1.5, and at most 100 lines per
reply) and in time, so a hostile or broken MX cannot hold the checker.

I/O module.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import replace
from pathlib import Path

from mtasts.check.evidence import SmtpProbe, TlsOutcome
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

MAX_LINE = 1024
MAX_LINES = 100
EHLO_NAME = "mtasts-check.invalid"  # RFC 6761: a name that never resolves to anyone


class SmtpFailure(Exception):
    pass


class HandshakeFailed(Exception):
    """The TLS handshake after STARTTLS failed for a reason other than the certificate
    (no common protocol version, an alert, the server hanging up)."""


async def _reply(reader: asyncio.StreamReader, seconds: float) -> tuple[int, list[str]]:
    """One SMTP reply: its code and text lines (RFC 5321 §4.2)."""
    lines: list[str] = []
    async with asyncio.timeout(seconds):
        while len(lines) < MAX_LINES:
            try:
                raw = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                raise SmtpFailure("the server closed the connection") from exc
            except asyncio.LimitOverrunError as exc:
                raise SmtpFailure("the server sent an over-long line") from exc
            line = raw.decode("latin-1").rstrip("\r\n")
            if len(line) < 3 or not line[:3].isdigit():
                raise SmtpFailure(f"not an SMTP reply: {line[:80]!r}")
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), lines
    raise SmtpFailure("the server sent an endless reply")


async def _open(
    address: str, port: int, seconds: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(seconds):
        return await asyncio.open_connection(address, port, limit=MAX_LINE)


async def _session(
    host: str,
    address: str,
    port: int,
    context: ssl.SSLContext | None,
    seconds: float,
    probe: SmtpProbe,
    *,
    chain_ok: bool = False,
) -> tuple[SmtpProbe, TlsOutcome | None]:
    """One SMTP session up to (and, with ``context``, through) STARTTLS; the TLS facts are
    read while the session is open."""
    reader, writer = await _open(address, port, seconds)
    probe = replace(probe, connected=True)
    try:
        code, lines = await _reply(reader, seconds)
        probe = replace(probe, banner=" ".join(lines)[:200])
        if code != 220:
            raise SmtpFailure(f"greeting {code} {' '.join(lines)[:120]}")
        writer.write(f"EHLO {EHLO_NAME}\r\n".encode())
        code, lines = await _reply(reader, seconds)
        if code != 250:
            raise SmtpFailure(f"EHLO answered {code} {' '.join(lines)[:120]}")
        offered = any(line.upper().split(" ")[0] == "STARTTLS" for line in lines[1:])
        probe = replace(probe, starttls_offered=offered)
        if not offered or context is None:
            return probe, None
        writer.write(b"STARTTLS\r\n")
        code, lines = await _reply(reader, seconds)
        if code != 220:
            return replace(probe, starttls_offered=False, starttls_reply=f"{code}"), None
        try:
            async with asyncio.timeout(seconds):
                await writer.start_tls(context, server_hostname=host)
        except ssl.SSLCertVerificationError:
            raise
        except (ssl.SSLError, OSError) as exc:
            raise HandshakeFailed(describe(exc)) from exc
        outcome = outcome_of(writer.get_extra_info("ssl_object"), chain_ok=chain_ok)
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            writer.write(b"QUIT\r\n")
            async with asyncio.timeout(1.0):
                await writer.drain()
        return probe, outcome
    finally:
        await hang_up(writer)


async def probe_mx(
    host: str,
    address: str,
    *,
    port: int = 25,
    ca_file: str | Path | None = None,
    seconds: float = 20.0,
    monotonic: Clock = monotonic,
) -> SmtpProbe:
    """Probe one MX ``host`` at ``address``; every failure is recorded, never raised."""
    started = monotonic()
    probe = SmtpProbe(host=host, address=address, port=port)
    try:
        probe = await _probe(host, address, port, ca_file, seconds, probe)
    except TimeoutError:
        probe = replace(probe, error=f"no answer within {seconds:g} s", error_kind="timeout")
    except SmtpFailure as exc:
        probe = replace(probe, error=str(exc), error_kind="smtp")
    except (OSError, ssl.SSLError) as exc:
        probe = replace(probe, error=describe(exc), error_kind="connect")
    return replace(probe, elapsed=monotonic() - started)


async def _probe(
    host: str,
    address: str,
    port: int,
    ca_file: str | Path | None,
    seconds: float,
    probe: SmtpProbe,
) -> SmtpProbe:
    try:
        checked, outcome = await _session(
            host, address, port, verifying_context(ca_file), seconds, probe, chain_ok=True
        )
        return checked if outcome is None else replace(checked, tls=outcome)
    except ssl.SSLCertVerificationError as exc:
        chain_error = exc
    except HandshakeFailed as exc:
        handshake_error = str(exc)
        legacy = ""
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError, SmtpFailure, HandshakeFailed):
            _, old = await _session(host, address, port, legacy_context(), seconds, probe)
            legacy = old.version if old is not None else ""
        failed = TlsOutcome(handshake_error=handshake_error, legacy_version=legacy)
        return replace(probe, connected=True, starttls_offered=True, tls=failed)
    # The chain failed: read the certificate without verifying, to show what is wrong.
    checked, read = await _session(host, address, port, reading_context(), seconds, probe)
    return replace(checked, tls=with_chain_error(read or TlsOutcome(), chain_error))
