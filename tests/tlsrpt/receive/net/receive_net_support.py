"""Helpers for the network intake tests: reports to send, a raw HTTP/1.1 client, the service.

The raw client speaks HTTP/1.1 by hand on purpose: hostile tests need to send what a
well-behaved client library refuses to (a lying Content-Length, a head dripped a byte at
a time, garbage), and a thousand of them at once cost little.
"""

from __future__ import annotations

import asyncio
import gzip
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from tests.pg import PG_URL, fresh_schema, require_pg

from mtasts.tlsrpt.receive.decide import ReceiveSettings
from mtasts.tlsrpt.receive.intake import Receiver
from mtasts.tlsrpt.receive.netconfig import parse_netconfig
from mtasts.tlsrpt.receive.service import ReceiveService

GZIP = "application/tlsrpt+gzip"
JSON = "application/tlsrpt+json"


def report_json(report_id: str, domain: str = "a.test", *, failures: int = 2) -> bytes:
    """A well-formed RFC 8460 report with ``failures`` certificate-expired sessions."""
    body: dict[str, Any] = {
        "organization-name": "Sender Org",
        "date-range": {
            "start-datetime": "2026-11-22T00:00:00Z",
            "end-datetime": "2026-11-22T23:59:59Z",
        },
        "contact-info": "tlsrpt@sender.test",
        "report-id": report_id,
        "policies": [
            {
                "policy": {
                    "policy-type": "sts",
                    "policy-string": ["version: STSv1", "mode: enforce", f"mx: mx1.{domain}"],
                    "policy-domain": domain,
                    "mx-host": [f"mx1.{domain}"],
                },
                "summary": {
                    "total-successful-session-count": 5,
                    "total-failure-session-count": failures,
                },
                "failure-details": [
                    {
                        "result-type": "certificate-expired",
                        "sending-mta-ip": "192.0.2.1",
                        "receiving-mx-hostname": f"mx1.{domain}",
                        "failed-session-count": failures,
                    }
                ],
            }
        ],
    }
    return orjson.dumps(body)


def report_gzip(report_id: str, domain: str = "a.test") -> bytes:
    return gzip.compress(report_json(report_id, domain))


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'received.db'}"


async def open_receiver(tmp_path: Path, **settings: Any) -> Receiver:
    """The real Receiver on a fresh SQLite store in ``tmp_path``."""
    return await Receiver.open(store_url(tmp_path), ReceiveSettings(**settings))


@asynccontextmanager
async def running_service(receiver: Any, **table: Any) -> AsyncIterator[ReceiveService]:
    """The service with ``[receive]`` settings ``table`` (listeners default to loopback,
    any free port)."""
    table.setdefault("http", "127.0.0.1:0")
    config, _ = parse_netconfig(table)
    service = ReceiveService(receiver, config)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


def request_head(path: str, content_type: str | None, length: int | None, extra: str = "") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: receiver.test"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    head = "\r\n".join(lines) + "\r\n" + extra + "\r\n"
    return head.encode()


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    return Answer(status, headers, body)


async def post(
    port: int,
    body: bytes,
    content_type: str | None = GZIP,
    path: str = "/tlsrpt",
    *,
    host: str = "127.0.0.1",
) -> Answer:
    """One POST on its own connection; the answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request_head(path, content_type, len(body)) + body)
        await writer.drain()
        return await read_answer(reader)
    finally:
        writer.close()
        await _closed(writer)


async def _closed(writer: asyncio.StreamWriter) -> None:
    with suppress(ConnectionError, OSError):
        await writer.wait_closed()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 if absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
        if got == wanted:
            return float(m.group(3))
    return 0.0


def now() -> datetime:
    return datetime.now(UTC)


def report_mail(report_id: str, domain: str = "a.test", *, to: str = "tls-reports@a.test") -> bytes:
    """A report e-mail as ``mtasts tlsrpt send`` builds it (RFC 8460 §5.3), unsigned."""
    from datetime import date

    from mtasts.tlsrpt.aggregate import ReportSettings
    from mtasts.tlsrpt.deliver import SendSettings, build_message
    from mtasts.tlsrpt.store import OutboxReport

    outbox = OutboxReport(
        day=date(2026, 11, 22),
        domain=domain,
        report_id=report_id,
        filename=f"sender.test!{domain}!1795305600!1795391999!{report_id}.json.gz",
        body=report_gzip(report_id, domain),
        tlsrpt_record=f"v=TLSRPTv1; rua=mailto:{to}",
        destinations=(f"mailto:{to}",),
    )
    settings = SendSettings(report=ReportSettings("Sender Org", "tlsrpt@sender.test"))
    return build_message(outbox, to, settings, now()).as_bytes()


@asynccontextmanager
async def pg_receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """A Receiver on the real PostgreSQL server, in a schema of its own (dropped after)."""
    async with fresh_schema() as schema:
        receiver = await Receiver.open(PG_URL, ReceiveSettings(), schema=schema)
        try:
            yield receiver, schema
        finally:
            await receiver.close()


@asynccontextmanager
async def failing_receiver() -> AsyncIterator[Receiver]:
    """A Receiver whose PostgreSQL store breaks under it (its schema is dropped after it
    opened): every write then fails as it would with the database gone."""
    import uuid

    import asyncpg

    require_pg()

    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(PG_URL)
    await conn.execute(f"CREATE SCHEMA {schema}")
    receiver = await Receiver.open(PG_URL, ReceiveSettings(), schema=schema)
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    try:
        yield receiver
    finally:
        await receiver.close()
        await conn.close()
