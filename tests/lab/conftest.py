"""Fixtures for lab tests: a lab factory and a tiny SMTP client on asyncio streams.

Other test directories can copy the ``lab_factory`` fixture (three lines over
``mtasts.lab.testing.LabPool``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from mtasts.lab import Lab, Scenario
from mtasts.lab.testing import LabPool

LabFactory = Callable[[Scenario | str], Awaitable[Lab]]


@pytest.fixture
async def lab_factory() -> AsyncIterator[LabFactory]:
    """``lab = await lab_factory(scenario_or_toml)``; every lab is stopped after the test."""
    async with LabPool() as pool:
        yield pool.start


@dataclass
class SmtpClient:
    """Just enough SMTP (RFC 5321, RFC 3207) to talk to lab hosts and see what they do."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    replies: list[list[str]] = field(default_factory=list)

    @classmethod
    async def connect(cls, host: str, port: int) -> SmtpClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        client = cls(reader, writer)
        await client.reply()
        return client

    async def reply(self) -> tuple[int, list[str]]:
        lines = []
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), 5)).decode()
            if not line:
                raise ConnectionError("server closed the connection")
            lines.append(line.rstrip("\r\n"))
            if line[3:4] != "-":
                break
        self.replies.append(lines)
        return int(lines[-1][:3]), [line[4:] for line in lines]

    async def command(self, line: str) -> tuple[int, list[str]]:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def ehlo(self) -> list[str]:
        code, lines = await self.command("EHLO client.test")
        assert code == 250
        return [line.upper() for line in lines[1:]]

    async def starttls(self, ctx: ssl.SSLContext, server_hostname: str) -> None:
        code, _ = await self.command("STARTTLS")
        assert code == 220
        await asyncio.wait_for(self.writer.start_tls(ctx, server_hostname=server_hostname), 5)

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        obj = self.writer.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    async def send(self, mail_from: str, rcpt: str, body: bytes) -> None:
        assert (await self.command(f"MAIL FROM:<{mail_from}>"))[0] == 250
        assert (await self.command(f"RCPT TO:<{rcpt}>"))[0] == 250
        assert (await self.command("DATA"))[0] == 354
        self.writer.write(body + b"\r\n.\r\n")
        await self.writer.drain()
        assert (await self.reply())[0] == 250

    async def quit(self) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.command("QUIT")
        self.writer.close()


@pytest.fixture
def smtp_connect() -> Callable[[str, int], Awaitable[SmtpClient]]:
    """``client = await smtp_connect(address, port)``: a fresh SMTP client session."""
    return SmtpClient.connect
