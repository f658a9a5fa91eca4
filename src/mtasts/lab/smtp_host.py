"""Lab MX hosts (and the TLS-RPT mailbox): aiosmtpd servers that record each message,
with whether it came over TLS, the TLS version and the SNI the client sent."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP

from mtasts.lab.certs import sni_of


@dataclass(frozen=True, slots=True)
class Received:
    """One message an MX accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    tls_version: str | None
    sni: str | None
    helo: str | None


class MxHost:
    """An SMTP server at one lab address; ``received`` lists what it accepted."""

    def __init__(self, name: str, tls_context: ssl.SSLContext | None) -> None:
        self.name = name
        self.tls_context = tls_context
        self.received: list[Received] = []
        #: sessions that ended in an exception (a client refusing TLS 1.0 or a bad
        #: certificate mid-handshake, a dropped connection), as "Type: message"
        self.failures: list[str] = []
        self.sessions: set[SMTP] = set()
        self.address = ""

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd's hook for a failed session; without it aiosmtpd logs a traceback.
        In the lab a failed session is an expected outcome of the scenario (the client
        under test refusing an old protocol or a bad certificate), so it is recorded."""
        cause = error.__cause__ or error
        self.failures.append(f"{type(cause).__name__}: {cause}")
        return "421 4.3.0 mtasts lab: session failed"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        ssl_object = (session.ssl or {}).get("ssl_object")
        data = envelope.original_content or envelope.content or b""
        self.received.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=data if isinstance(data, bytes) else data.encode(),
                tls=ssl_object is not None,
                tls_version=ssl_object.version() if ssl_object is not None else None,
                sni=sni_of(ssl_object),
                helo=session.host_name,
            )
        )
        return "250 2.0.0 OK: stored by the mtasts lab"

    def protocol(self) -> SMTP:
        smtp = _TrackedSMTP(
            self,
            hostname=self.name,
            ident="mtasts lab ESMTP",
            tls_context=self.tls_context,
            require_starttls=False,
        )
        return smtp

    async def listen(self, host: str, port: int) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        return await loop.create_server(self.protocol, host, port)

    def close_sessions(self) -> None:
        for session in list(self.sessions):
            transport = getattr(session, "_original_transport", None) or session.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()


class _TrackedSMTP(SMTP):
    """aiosmtpd's protocol, remembered by its host so the lab can close live sessions."""

    def __init__(self, host: MxHost, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._lab_host = host
        host.sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._lab_host.sessions.discard(self)
        super().connection_lost(error)
